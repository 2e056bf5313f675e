"""synology.sync.sync_nas end to end over HTTP: faults change nothing, status, runs, audit, backoff."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from identityhub.models import AuditEvent
from synology.models import NAS, DSMAccount, SyncRun
from synology.sync import claim_due_nases, retry_delay, sync_nas

from .conftest import SERVICE_PASSWORD, SERVICE_USER, accounts_snapshot

pytestmark = pytest.mark.django_db

FAST = (0.5, 0.5)


def seed(fake, n=7):
    for i in range(n):
        fake.add_user(f"user{i}", email=f"user{i}@example.com", description=f"d{i}")


def test_first_sync_then_unchanged(nas_ds923, fake_dsm, make_person):
    mael = make_person("user1@example.com")
    seed(fake_dsm)
    result = sync_nas(nas_ds923.pk, timeout=FAST, page_size=3)
    assert result.ok and (result.counts.new, result.counts.unchanged) == (7, 0)
    assert DSMAccount.objects.get(name="user1").user == mael
    again = sync_nas(nas_ds923.pk, timeout=FAST)
    assert again.ok and (again.counts.new, again.counts.changed, again.counts.unchanged) == (0, 0, 7)
    assert again.summary().startswith("ds923: ok new=0 changed=0 unchanged=7 absent=0 ")
    assert again.summary().endswith("s")
    runs = list(SyncRun.objects.filter(nas=nas_ds923).order_by("started"))
    assert [r.outcome for r in runs] == ["ok", "ok"] and runs[-1].unchanged == 7 and runs[-1].duration_ms is not None
    nas = NAS.objects.get(pk=nas_ds923.pk)
    assert nas.last_status == "ok" and nas.failing_since is None and nas.consecutive_failures == 0
    assert nas.next_sync_at - nas.last_success_at == timedelta(hours=1)
    event = AuditEvent.objects.filter(kind="sync", nas_id="ds923").first()
    assert event.details["outcome"] == "ok" and event.details["unchanged"] == 7
    assert SERVICE_PASSWORD not in str(event.details)


def test_unchanged_full_sync_writes_no_account_row(nas_ds923, fake_dsm, make_person):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    make_person("user1@example.com")
    seed(fake_dsm, 30)
    sync_nas(nas_ds923.pk, timeout=FAST)
    with CaptureQueriesContext(connection) as ctx:
        assert sync_nas(nas_ds923.pk, timeout=FAST).counts.unchanged == 30
    account_writes = [
        q["sql"] for q in ctx.captured_queries
        if "synology_dsmaccount" in q["sql"] and not q["sql"].lstrip().upper().startswith("SELECT")
    ]
    assert account_writes == []
    assert len(ctx.captured_queries) <= 25  # reads + lock + SyncRun + NAS status + audit event


def test_absent_then_back_over_http(nas_ds923, fake_dsm):
    seed(fake_dsm, 3)
    sync_nas(nas_ds923.pk, timeout=FAST)
    fake_dsm.users.pop(1)
    r = sync_nas(nas_ds923.pk, timeout=FAST)
    assert (r.counts.absent, r.counts.unchanged) == (1, 2)
    assert DSMAccount.objects.get(name="user1").present is False
    seed(fake_dsm, 0)
    fake_dsm.add_user("user1", email="user1@example.com", description="d1")
    r = sync_nas(nas_ds923.pk, timeout=FAST)
    assert (r.counts.changed, r.counts.absent) == (1, 0)
    assert DSMAccount.objects.get(name="user1").present is True


FAULTS = {
    "refused": None,
    "timeout": ("sleep", {"api": "SYNO.Core.User", "seconds": 3}),
    "discovery-timeout": ("sleep", {"api": "SYNO.API.Info", "seconds": 3}),
    "http500": ("http500", {"api": "SYNO.Core.User"}),
    "non-json": ("nonjson", {"api": "SYNO.Core.User"}),
    "no-data": ("no_data", {"api": "SYNO.Core.User"}),
    "no-code": ("no_code", {"api": "SYNO.Core.User"}),
    "malformed": ("malformed", {"api": "SYNO.Core.User"}),
    "page-2-fails": ("code", {"api": "SYNO.Core.User", "page": 2, "code": 117}),
    "page-1-http500": ("http500", {"api": "SYNO.Core.User", "page": 1}),
    "session-expires-twice": ("expire_session", {"api": "SYNO.Core.User"}),
    "wrong-password": ("code", {"method": "login", "code": 400}),
    "2fa": ("code", {"method": "login", "code": 403}),
    "not-admin": ("code", {"api": "SYNO.Core.User", "code": 105}),
}
EXPECTED = {
    "refused": "unreachable", "timeout": "unreachable", "discovery-timeout": "unreachable",
    "wrong-password": "auth_failed", "2fa": "auth_failed", "not-admin": "auth_failed",
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_every_fault_leaves_accounts_as_they_were(nas_ds923, fake_dsm, make_person, fault):
    make_person("user2@example.com")
    seed(fake_dsm)
    assert sync_nas(nas_ds923.pk, timeout=FAST, page_size=3).ok
    before = accounts_snapshot(nas_ds923)
    # the NAS changed meanwhile: a faulty listing must not apply any of it
    fake_dsm.users.pop(0)
    fake_dsm.users[0]["email"] = "changed@example.com"
    fake_dsm.add_user("newcomer")
    if FAULTS[fault] is None:
        fake_dsm.stop()
    else:
        kind, kwargs = FAULTS[fault]
        fake_dsm.fault(kind, **kwargs)
    result = sync_nas(nas_ds923.pk, timeout=FAST, page_size=3)
    fake_dsm._wake.set()
    assert result.outcome == EXPECTED.get(fault, "error"), result.message
    assert accounts_snapshot(nas_ds923) == before
    assert SERVICE_PASSWORD not in result.message and result.message
    assert result.summary() == f"ds923: {result.outcome}: {result.message}"
    run = SyncRun.objects.filter(nas=nas_ds923).first()
    assert run.outcome == result.outcome and run.message == result.message and run.finished
    nas = NAS.objects.get(pk=nas_ds923.pk)
    assert nas.last_status == result.outcome and nas.failing_since is not None and nas.consecutive_failures == 1
    assert nas.last_message == result.message


@pytest.mark.parametrize("missing", ["service_username", "service_password"])
def test_missing_service_account_is_a_clear_error_without_network(nas_ds923, fake_dsm, missing):
    """Issue 7: not "authentication failed" — the NAS is not set up; nothing is sent to it."""
    nas = NAS.objects.get(pk=nas_ds923.pk)
    setattr(nas, missing, "")
    nas.save()
    before = timezone.now()
    result = sync_nas(nas_ds923.pk)
    assert result.outcome == "error"
    assert result.summary() == "ds923: error: no service account: set its user name and password"
    assert fake_dsm.requests == []
    run = SyncRun.objects.get(nas_id="ds923")
    assert run.outcome == "error" and run.message == "no service account: set its user name and password"
    nas = NAS.objects.get(pk="ds923")
    assert nas.last_status == "error" and nas.last_message == run.message
    # Nothing to retry until someone sets the account: the next try is a full interval away.
    assert nas.next_sync_at >= before + nas.sync_interval
    sync_nas("ds923")
    assert NAS.objects.get(pk="ds923").next_sync_at >= before + nas.sync_interval


def test_a_disabled_nas_is_not_synced_and_nothing_is_recorded(nas_ds923, fake_dsm):
    NAS.objects.filter(pk="ds923").update(enabled=False, service_username="", service_password="")
    result = sync_nas("ds923")
    assert result.outcome == "disabled" and not result.ok
    assert result.summary() == "ds923: disabled: enable it to sync it"
    assert fake_dsm.requests == [] and not SyncRun.objects.exists()
    assert NAS.objects.get(pk="ds923").last_status == "never"


def test_backoff_schedule_while_unreachable_capped_at_interval(nas_ds923, fake_dsm):
    fake_dsm.stop()
    first_failure = None
    delays = []
    for _ in range(8):
        result = sync_nas(nas_ds923.pk, timeout=FAST)
        assert result.outcome == "unreachable"
        nas = NAS.objects.get(pk=nas_ds923.pk)
        first_failure = first_failure or nas.failing_since
        assert nas.failing_since == first_failure  # "unreachable since" stays at the first failure
        last_run = SyncRun.objects.filter(nas=nas_ds923).first()
        delays.append(round((nas.next_sync_at - last_run.finished).total_seconds() / 60))
    assert delays == [1, 2, 4, 8, 16, 32, 60, 60]
    assert nas.consecutive_failures == 8


def test_recovery_clears_the_failure_streak(nas_ds923, fake_dsm):
    fake_dsm.fault("http500", times=1)
    assert sync_nas(nas_ds923.pk, timeout=FAST).outcome == "error"
    assert sync_nas(nas_ds923.pk, timeout=FAST).ok
    nas = NAS.objects.get(pk=nas_ds923.pk)
    assert nas.failing_since is None and nas.consecutive_failures == 0 and nas.last_status == "ok"


def test_auth_failures_are_not_retried_quickly(nas_ds923, fake_dsm):
    NAS.objects.filter(pk=nas_ds923.pk).update(service_password="wrong-password-0000")
    for _ in range(3):
        assert sync_nas(nas_ds923.pk, timeout=FAST).outcome == "auth_failed"
    nas = NAS.objects.get(pk=nas_ds923.pk)
    assert nas.next_sync_at - nas.last_attempt_at >= timedelta(minutes=59)
    assert fake_dsm.logins == 0


def test_retry_delay():
    hour = timedelta(hours=1)
    assert [retry_delay(n, hour).total_seconds() / 60 for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert retry_delay(3, timedelta(minutes=3)) == timedelta(minutes=3)
    assert retry_delay(10_000, hour) == hour


def test_claim_due_nases(nas_ds923, sync_household):
    from synology.services import declare_nas

    later = declare_nas("later", household=sync_household, base_url="http://192.0.2.1:5000")
    off = declare_nas("off", household=sync_household, base_url="http://192.0.2.2:5000", enabled=False)
    now = timezone.now()
    NAS.objects.filter(pk=later.pk).update(next_sync_at=now + timedelta(minutes=5))
    NAS.objects.filter(pk=nas_ds923.pk).update(next_sync_at=None)
    assert claim_due_nases(now) == ["ds923"]
    assert claim_due_nases(now) == []  # claimed: not queued again by the next tick
    NAS.objects.filter(pk=off.pk).update(next_sync_at=now - timedelta(days=1))
    assert claim_due_nases(now + timedelta(minutes=6)) == ["later"]


def test_dsm6_mode_and_no_csrf(nas_ds923, fake_dsm):
    from tests.fakes.dsm import FakeDSM

    with FakeDSM("dsm6", csrf=False) as old:
        old.accounts = {SERVICE_USER: fake_dsm.accounts[SERVICE_USER]}
        seed(old, 4)
        NAS.objects.filter(pk=nas_ds923.pk).update(base_url=old.url)
        assert sync_nas(nas_ds923.pk, timeout=FAST).counts.new == 4
        assert old.open_sessions == []
