"""What the console's pages say and refuse: NAS form rules, sync health lines, config-managed
objects, the person page, and the dashboard's fix links."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

pytestmark = pytest.mark.django_db


def nas_form(nas, **changes) -> dict:
    form = {"name": nas.name, "household": nas.household_id, "base_url": nas.base_url, "verify_tls": "on",
            "ca_file": "", "service_username": nas.service_username, "service_password": "",
            "sync_interval": "01:00:00", "enabled": "on",
            "mappings-TOTAL_FORMS": "0", "mappings-INITIAL_FORMS": "0"}
    form.update(changes)
    return form


@pytest.fixture
def nas_with_account(nas):
    nas.service_username = "hub-sync"
    nas.service_password = "old-password"
    nas.save()
    return nas


def test_a_plain_http_nas_url_is_refused_as_hub_check_refuses_it(mael_console, nas_with_account):
    from synology.models import NAS

    url = reverse("admin:synology_nas_change", args=[nas_with_account.pk])
    response = mael_console.post(url, nas_form(nas_with_account, base_url="http://192.0.2.10:5000",
                                               service_password="x"))
    assert response.status_code == 200
    assert "https" in response.content.decode()
    assert NAS.objects.get(pk=nas_with_account.pk).base_url == "https://192.0.2.10:5001"
    response = mael_console.post(url, nas_form(nas_with_account, base_url="https://u:p@192.0.2.10:5001",
                                               service_password="x"))
    assert "No user name or password in the URL" in response.content.decode()


def test_changing_the_url_asks_for_the_service_password_again(mael_console, nas_with_account):
    from synology.models import NAS

    url = reverse("admin:synology_nas_change", args=[nas_with_account.pk])
    response = mael_console.post(url, nas_form(nas_with_account, base_url="https://192.0.2.99:5001"))
    assert response.status_code == 200
    assert "type the service password again" in response.content.decode()
    assert NAS.objects.get(pk=nas_with_account.pk).base_url == "https://192.0.2.10:5001"

    response = mael_console.post(url, nas_form(nas_with_account, base_url="https://192.0.2.99:5001",
                                               service_password="new-password"))
    assert response.status_code == 302
    stored = NAS.objects.get(pk=nas_with_account.pk)
    assert stored.base_url == "https://192.0.2.99:5001" and stored.service_password == "new-password"


def test_an_untouched_password_field_keeps_the_stored_password(mael_console, nas_with_account):
    from synology.models import NAS

    url = reverse("admin:synology_nas_change", args=[nas_with_account.pk])
    page = mael_console.get(url).content.decode()
    assert "old-password" not in page
    response = mael_console.post(url, nas_form(nas_with_account, name="Renamed"))
    assert response.status_code == 302
    stored = NAS.objects.get(pk=nas_with_account.pk)
    assert stored.name == "Renamed" and stored.service_password == "old-password"


def test_sync_now_on_a_disabled_nas_says_so_and_queues_nothing(mael_console, nas_with_account):
    from synology.models import SyncRun

    nas_with_account.enabled = False
    nas_with_account.save()
    response = mael_console.post(f"/admin/synology/nas/{nas_with_account.pk}/sync/", follow=True)
    assert "disabled" in response.content.decode()
    assert not SyncRun.objects.filter(nas=nas_with_account).exists()


def test_test_connection_without_a_service_account_makes_no_call(mael_console, nas):
    response = mael_console.post(f"/admin/synology/nas/{nas.pk}/test/", follow=True)
    assert "no service account" in response.content.decode().lower()


def test_the_object_tools_need_a_post(mael_console, nas):
    assert mael_console.get(f"/admin/synology/nas/{nas.pk}/test/").status_code == 405
    assert mael_console.get(f"/admin/synology/nas/{nas.pk}/sync/").status_code == 405


@pytest.mark.parametrize(("status", "failing_for", "expected"), [
    ("ok", None, "ok 4"),
    ("unreachable", timedelta(minutes=50), "unreachable since "),
    ("auth_failed", timedelta(minutes=5), "authentication failed since "),
    ("never", None, "never synced"),
])
def test_sync_health_reads_at_a_glance(nas, status, failing_for, expected):
    from synology.selectors import sync_health

    now = timezone.now()
    nas.last_status = status
    nas.last_success_at = now - timedelta(minutes=4)
    nas.failing_since = now - failing_for if failing_for else None
    nas.next_sync_at = now + timedelta(minutes=30)
    line = sync_health(nas, now)
    assert line.startswith(expected), line
    if failing_for:
        since = timezone.localtime(nas.failing_since).strftime("%H:%M")
        next_try = timezone.localtime(nas.next_sync_at).strftime("%H:%M")
        assert since in line and f"next try {next_try}" in line


def test_sync_health_of_a_disabled_nas(nas):
    from synology.selectors import sync_health

    nas.enabled = False
    assert sync_health(nas) == "disabled"


def test_config_managed_objects_are_read_only_with_a_note(mael_console, nas, household):
    from synology.models import NAS

    NAS.objects.filter(pk=nas.pk).update(managed=True)
    url = reverse("admin:synology_nas_change", args=[nas.pk])
    page = mael_console.get(url).content.decode()
    assert 'id="config-managed-note"' in page and "hub apply" in page
    assert 'name="base_url"' not in page  # read-only: no input
    mael_console.post(url, nas_form(nas, base_url="https://192.0.2.77:5001", service_password="x"))
    assert NAS.objects.get(pk=nas.pk).base_url == "https://192.0.2.10:5001"
    assert 'id="tool-test-connection"' in page  # the actions still work on a managed NAS


def test_adding_a_person_makes_them_a_member_of_the_admins_household(mael_console, household):
    from accounts.models import Membership, User

    page = mael_console.get(reverse("admin:accounts_user_add")).content.decode()
    assert 'value="valais" selected' in page and 'value="neighbours"' not in page
    response = mael_console.post(reverse("admin:accounts_user_add"),
                                 {"email": "Granny@Example.com", "name": "Granny", "household": "valais",
                                  "role": "member"})
    assert response.status_code == 302, response.content.decode()[:2000]
    granny = User.objects.get(email="granny@example.com")
    assert Membership.objects.filter(user=granny, household=household, role="member").exists()


def test_a_household_admin_cannot_add_a_person_to_another_household(mael_console, other_household):
    from accounts.models import User

    response = mael_console.post(reverse("admin:accounts_user_add"),
                                 {"email": "spy@example.com", "name": "Spy", "household": "neighbours",
                                  "role": "admin"})
    assert response.status_code == 200
    assert not User.objects.filter(email="spy@example.com").exists()


def test_linking_a_dsm_account_by_hand_is_an_admin_link(mael_console, nas, mum):
    from synology.models import DSMAccount

    account = DSMAccount.objects.create(nas=nas, name="granny", email="")
    url = reverse("admin:synology_dsmaccount_change", args=[account.pk])
    response = mael_console.post(url, {"user": mum.pk})
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.user == mum and account.linked_by == "admin"
    mael_console.post(url, {"user": ""})
    account.refresh_from_db()
    assert account.user is None and account.linked_by == "" and account.link_note == "admin link removed"


def test_a_dsm_account_can_only_go_to_a_member_of_the_nas_household(mael_console, nas, mael, other_household):
    """A valais admin who is also in another household still can't give ds923's account to its members."""
    from accounts.models import Membership, User
    from synology.models import DSMAccount

    Membership.objects.create(user=mael, household=other_household, role="admin")
    outsider = User.objects.get(email="outsider@example.org")
    account = DSMAccount.objects.create(nas=nas, name="spare", email="")
    response = mael_console.post(reverse("admin:synology_dsmaccount_change", args=[account.pk]),
                                 {"user": outsider.pk})
    assert response.status_code == 200 and "Only members of" in response.content.decode()
    account.refresh_from_db()
    assert account.user_id is None


def test_refusals_link_to_the_page_that_fixes_them(mael_console, nas, dsm_client, people):
    from identityhub.audit import record_event

    record_event("refusal", reason="no_nas_account", user=people["no_nas"], client_id=dsm_client.client_id,
                 nas_id=nas.pk)
    record_event("refusal", reason="not_in_household", email="stranger@example.com",
                 client_id=dsm_client.client_id)
    page = mael_console.get(reverse("admin:index")).content.decode()
    assert "/admin/synology/dsmaccount/?nas__id__exact=ds923" in page
    assert "/admin/accounts/user/add/?email=stranger%40example.com" in page


def test_the_upstream_page_shows_the_redirect_uri_to_register(operator, client, google_like, settings):
    from tests.conftest import signed_in

    console = signed_in(client, operator)
    page = console.get(reverse("admin:accounts_upstream_change", args=["google"])).content.decode()
    assert f"{settings.HUB_ISSUER}/complete/google/" in page


def test_a_config_managed_upstream_is_read_only_for_operators_too(operator, client, google_like, upstream_provider):
    from accounts.models import Upstream
    from tests.conftest import signed_in

    Upstream.objects.filter(pk="google").update(managed=True)
    console = signed_in(client, operator)
    url = reverse("admin:accounts_upstream_change", args=["google"])
    page = console.get(url).content.decode()
    assert 'id="config-managed-note"' in page and 'name="client_id"' not in page
    console.post(url, {"id": "google", "type": "oidc", "name": "Google", "issuer": upstream_provider.issuer,
                       "client_id": "changed", "client_secret": "", "allowed_domains": "[]", "enabled": "on",
                       "position": "0"})
    assert Upstream.objects.get(pk="google").client_id == upstream_provider.client_id
