"""quick_sync (sign-in), housekeeping, selectors and the admin pages."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from identityhub.locks import sync_lock
from identityhub.models import AuditEvent
from synology.models import NAS, DSMAccount, SyncRun
from synology.selectors import dsm_username_for
from synology.services import quick_sync

from .conftest import SERVICE_PASSWORD

pytestmark = pytest.mark.django_db


def test_quick_sync_finds_a_new_account_at_sign_in(nas_ds923, fake_dsm, make_person):
    person = make_person("new@example.com")
    fake_dsm.add_user("NewBie", email="New@Example.com")
    assert dsm_username_for(nas_ds923, person) is None
    assert dsm_username_for(nas_ds923, person, allow_quick_sync=True) == "NewBie"
    assert SyncRun.objects.get().trigger == "sign-in"


def test_quick_sync_is_rate_limited(nas_ds923, fake_dsm):
    assert quick_sync(nas_ds923) is True
    assert quick_sync(nas_ds923) is False  # less than 30 s ago
    NAS.objects.filter(pk="ds923").update(last_attempt_at=timezone.now() - timedelta(seconds=31))
    assert quick_sync(nas_ds923) is True
    assert fake_dsm.logins == 2


def test_quick_sync_does_not_run_while_a_sync_runs(nas_ds923, fake_dsm):
    lock = sync_lock("ds923")
    assert lock.acquire()
    try:
        assert quick_sync(nas_ds923) is False
    finally:
        lock.release()
    assert fake_dsm.logins == 0 and not SyncRun.objects.exists()


def test_quick_sync_is_short_on_a_sleeping_nas(nas_ds923, fake_dsm):
    import time

    fake_dsm.fault("sleep", seconds=10)
    started = time.monotonic()
    assert quick_sync(nas_ds923) is False
    assert time.monotonic() - started < 4.5
    fake_dsm._wake.set()


def test_quick_sync_skips_a_nas_without_service_account(sync_household):
    from synology.services import declare_nas

    nas = declare_nas("bare", household=sync_household, base_url="https://192.0.2.10:5001")
    assert quick_sync(nas) is False
    assert not SyncRun.objects.exists()


def test_quick_sync_never_holds_a_transaction_across_http(nas_ds923, fake_dsm):
    from django.db import transaction

    with transaction.atomic():
        assert quick_sync(nas_ds923) is False
    assert fake_dsm.logins == 0


def test_housekeeping_deletes_only_what_is_past_retention(nas_ds923, settings):
    settings.HUB_SYNCRUN_RETENTION_DAYS = 30
    settings.HUB_AUDIT_RETENTION_DAYS = 365
    now = timezone.now()
    old = SyncRun.objects.create(nas=nas_ds923, started=now - timedelta(days=31), outcome="ok")
    new = SyncRun.objects.create(nas=nas_ds923, started=now - timedelta(days=29), outcome="ok")
    e_old = AuditEvent.objects.create(kind="sync")
    AuditEvent.objects.filter(pk=e_old.pk).update(time=now - timedelta(days=366))
    e_new = AuditEvent.objects.create(kind="sync")
    stuck = SyncRun.objects.create(nas=nas_ds923, started=now - timedelta(hours=1))
    from identityhub import housekeeping

    assert set(housekeeping.registered()) == {"hub", "provider", "accounts", "synology"}  # each app registers its own job
    result = housekeeping.run()
    assert result == {"audit_events": 1, "redeemed_codes": 0, "client_sessions": 0, "sync_runs": 1,
                      "interrupted_runs": 1, "expired_sessions": 0, "sign_in_leftovers": 0}
    stuck.refresh_from_db()
    assert stuck.outcome == "error" and "interrupted" in stuck.message
    assert set(SyncRun.objects.values_list("pk", flat=True)) == {new.pk, stuck.pk}
    assert not AuditEvent.objects.filter(pk=old.pk).exists() and AuditEvent.objects.filter(pk=e_new.pk).exists()


def test_admin_pages_never_show_the_password(nas_ds923, fake_dsm, admin_client):
    fake_dsm.add_user("u1", email="u1@example.com")
    from synology.sync import sync_nas

    sync_nas("ds923")
    for url in ("/admin/synology/nas/", "/admin/synology/nas/ds923/change/", "/admin/synology/dsmaccount/",
                "/admin/synology/syncrun/", "/admin/synology/accountmapping/"):
        response = admin_client.get(url)
        assert response.status_code == 200, url
        assert SERVICE_PASSWORD.encode() not in response.content
    account = DSMAccount.objects.get(name="u1")
    assert admin_client.get(f"/admin/synology/dsmaccount/{account.pk}/change/").status_code == 200


def test_admin_status_and_sync_now(nas_ds923, fake_dsm, admin_client):
    """Sync now is queued to the worker (run eagerly here); its outcome shows on the NAS pages."""
    from identityhub.celery import app

    fake_dsm.stop()
    app.conf.task_always_eager = True
    try:
        response = admin_client.post("/admin/synology/nas/", {"action": "sync_now", "_selected_action": ["ds923"]},
                                     follow=True)
    finally:
        app.conf.task_always_eager = False
    assert b"Sync of ds923 queued" in response.content
    assert SyncRun.objects.get(nas_id="ds923").outcome == "unreachable"
    page = admin_client.get("/admin/synology/nas/ds923/change/").content.decode()
    assert "cannot connect" in page
    page = admin_client.get("/admin/synology/nas/").content.decode()
    assert "unreachable since " in page


def test_admin_keeps_the_password_when_left_empty(nas_ds923, admin_client):
    data = {
        "name": "DS923+", "household": "synchome", "base_url": nas_ds923.base_url, "verify_tls": "on",
        "ca_file": "", "service_username": "hub-sync", "service_password": "", "sync_interval": "01:00:00",
        "enabled": "on", "mappings-TOTAL_FORMS": "0", "mappings-INITIAL_FORMS": "0",
    }
    response = admin_client.post("/admin/synology/nas/ds923/change/", data)
    assert response.status_code == 302, response.content[:2000]
    assert NAS.objects.get(pk="ds923").service_password == SERVICE_PASSWORD


def test_admin_link_from_the_admin_is_kept_by_the_sync(nas_ds923, fake_dsm, admin_client, make_person):
    from accounts.models import Membership

    dad = make_person("dad@example.com")
    make_person("mum@example.com")
    Membership.objects.create(user=dad, household=nas_ds923.household)  # only members may own its accounts
    fake_dsm.add_user("shared", email="mum@example.com")
    from synology.sync import sync_nas

    sync_nas("ds923")
    account = DSMAccount.objects.get(name="shared")
    response = admin_client.post(f"/admin/synology/dsmaccount/{account.pk}/change/", {"user": dad.pk})
    assert response.status_code == 302
    sync_nas("ds923")
    account.refresh_from_db()
    assert account.user == dad and account.linked_by == "admin"


def test_admin_form_refuses_credentials_in_the_nas_url(sync_household):
    from synology.admin import NASForm

    form = NASForm(data={
        "id": "ds1", "household": sync_household.pk, "base_url": "https://hub:pw@192.168.1.20:5001",
        "verify_tls": "on", "sync_interval": "01:00:00", "enabled": "on",
    })
    assert not form.is_valid()
    assert list(form.errors) == ["base_url"] and "pw" not in str(form.errors)
