"""synology.services.test_connection and request_sync, over HTTP against the DSM fake."""

from __future__ import annotations

import dataclasses
import logging
import socket

import pytest

from identityhub.models import AuditEvent
from synology import services
from synology.models import NAS, SyncRun
from synology.services import ConnectionReport, SyncRefused, request_sync
from tests.fakes.dsm import FakeDSM, self_signed_cert

from .conftest import SERVICE_PASSWORD, SERVICE_USER

pytestmark = pytest.mark.django_db

FAST = (1.0, 1.0)


def check(nas) -> ConnectionReport:
    return services.test_connection(NAS.objects.get(pk=nas.pk), timeout=FAST)


def test_connection_reports_the_dsm_version_and_the_listing_right(nas_ds923, fake_dsm):
    fake_dsm.dsm_version = "DSM 7.2.2-72806 Update 3"
    for i in range(3):
        fake_dsm.add_user(f"u{i}")
    report = check(nas_ds923)
    assert report == ConnectionReport(
        True, "DSM 7.2.2-72806 Update 3",
        "ds923: ok: DSM 7.2.2-72806 Update 3; signed in as hub-sync, who may list users (3 local accounts)",
        "ok",
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.ok = False  # type: ignore[misc]
    calls = [(r.params.get("api"), r.params.get("method")) for r in fake_dsm.requests]
    assert calls == [("SYNO.API.Info", "query"), ("SYNO.API.Auth", "login"), ("SYNO.DSM.Info", "getinfo"),
                     ("SYNO.Core.User", "list"), ("SYNO.API.Auth", "logout")]
    listing = fake_dsm.requests[3].params
    assert listing["limit"] == "1" and listing["type"] == "local"
    assert fake_dsm.requests[1].params["session"] == "IdentityHubTest"  # never a running sync's session
    assert fake_dsm.logouts == 1 and fake_dsm.open_sessions == []
    event = AuditEvent.objects.get(kind="sync", reason="test_connection")
    assert event.nas_id == "ds923" and event.details["ok"] is True
    assert event.details["dsm_version"] == "DSM 7.2.2-72806 Update 3" and event.details["message"] == report.message
    assert not SyncRun.objects.exists()  # a test is not a sync
    assert NAS.objects.get(pk="ds923").last_status == "never"


def test_connection_on_dsm_6_follows_the_reported_info_path(sync_household):
    with FakeDSM("dsm6", csrf=False) as fake:
        nas = services.declare_nas("old", household=sync_household, base_url=fake.url,
                                   service_username=SERVICE_USER, service_password=SERVICE_PASSWORD)
        report = check(nas)
        assert report.ok and report.dsm_version == "DSM 6.2.4-25556 Update 7", report
        info = next(r for r in fake.requests if r.params.get("api") == "SYNO.DSM.Info")
        assert info.path == "/webapi/dsm/info.cgi" and info.params["version"] == "2"
        assert fake.open_sessions == []


def test_connection_without_the_info_api_still_checks_the_account(nas_ds923, fake_dsm):
    fake_dsm.offer_info = False
    report = check(nas_ds923)
    assert report.ok and report.dsm_version == ""
    assert "DSM version not reported" in report.message


@pytest.mark.parametrize(
    ("setup", "outcome", "expected"),
    [
        (lambda f: setattr(f.accounts[SERVICE_USER], "password", "changed"), "auth_failed",
         "wrong account or password for the service account 'hub-sync' (DSM error 400)"),
        (lambda f: setattr(f.accounts[SERVICE_USER], "otp", True), "auth_failed",
         "requires a 2-step verification code; use a service account without 2FA (DSM error 403)"),
        (lambda f: setattr(f.accounts[SERVICE_USER], "admin", False), "auth_failed",
         "is not an administrator (listing users needs the administrators group) (DSM error 105)"),
        (lambda f: setattr(f.accounts[SERVICE_USER], "disabled", True), "auth_failed",
         "is disabled on the NAS (DSM error 401)"),
        (lambda f: f.fault("code", api="SYNO.Core.User", code=117), "error",
         "DSM answered error 117 (internal error) to SYNO.Core.User list"),
        (lambda f: f.fault("nonjson", api="SYNO.API.Info"), "error", "the answer is not JSON"),
    ],
    ids=["wrong-password", "2fa", "not-admin", "disabled-account", "api-error", "not-dsm"],
)
def test_connection_reports_the_exact_dsm_error(nas_ds923, fake_dsm, setup, outcome, expected):
    setup(fake_dsm)
    report = check(nas_ds923)
    assert not report.ok and report.outcome == outcome
    assert report.message.startswith("ds923") and expected in report.message, report.message
    assert "\n" not in report.message
    assert fake_dsm.open_sessions == []  # logged out also after a failure
    event = AuditEvent.objects.get(reason="test_connection")
    assert event.details["ok"] is False and event.details["message"] == report.message


def test_connection_names_the_version_when_the_listing_is_refused(nas_ds923, fake_dsm):
    fake_dsm.accounts[SERVICE_USER].admin = False
    report = check(nas_ds923)
    assert report.dsm_version == "DSM 7.2.2-72806 Update 3"
    assert report.message.startswith("ds923 (DSM 7.2.2-72806 Update 3): auth_failed: the service account")


def test_connection_refused(nas_ds923, fake_dsm):
    fake_dsm.stop()
    report = check(nas_ds923)
    assert report == ConnectionReport(
        False, "", f"ds923: unreachable: cannot connect to {fake_dsm.url}: connection refused", "unreachable"
    )


def test_connection_timeout(nas_ds923, fake_dsm):
    fake_dsm.fault("sleep", api="SYNO.API.Info", seconds=2.0, times=1)
    report = services.test_connection(NAS.objects.get(pk="ds923"), timeout=(0.5, 0.3))
    assert report.outcome == "unreachable" and "timed out while waiting for an answer" in report.message


def test_connection_tls_error_says_why(sync_household, tmp_path):
    with FakeDSM("dsm7", tls=self_signed_cert(str(tmp_path))) as fake:
        nas = services.declare_nas("tls", household=sync_household, base_url=fake.url,
                                   service_username=SERVICE_USER, service_password=SERVICE_PASSWORD)
        report = check(nas)
        assert report.outcome == "unreachable" and "TLS handshake" in report.message
        assert "certificate not trusted" in report.message
        nas.verify_tls = False
        nas.save()
        assert check(nas).ok


@pytest.mark.parametrize("missing", ["service_username", "service_password"])
def test_connection_without_service_account_makes_no_network_call(sync_household, missing):
    values = {"service_username": SERVICE_USER, "service_password": SERVICE_PASSWORD, missing: ""}
    with FakeDSM("dsm7") as fake:
        nas = services.declare_nas("bare", household=sync_household, base_url=fake.url, **values)
        report = check(nas)
        assert fake.requests == []
    assert report == ConnectionReport(False, "", "bare: no service account: set its user name and password",
                                      "no_account")
    assert AuditEvent.objects.get(reason="test_connection").details["outcome"] == "no_account"


def test_connection_never_logs_or_records_the_password(nas_ds923, fake_dsm, caplog):
    caplog.set_level(logging.DEBUG)
    check(nas_ds923)
    fake_dsm.accounts[SERVICE_USER].password = "other"
    check(nas_ds923)
    fake_dsm.stop()
    check(nas_ds923)
    text = caplog.text + repr(list(AuditEvent.objects.values_list("details", flat=True)))
    assert SERVICE_PASSWORD not in text
    queries = [r for r in fake_dsm.requests if SERVICE_PASSWORD in r.query]
    assert queries == []  # only ever in a POST body


def test_connection_with_an_undecryptable_password_is_a_report(nas_ds923, fake_dsm):
    """A changed HUB_ENCRYPTION_KEY: a failed report naming the problem, no call, no exception."""
    from django.db import connection

    with connection.cursor() as cursor:  # a token no configured key decrypts
        cursor.execute("UPDATE synology_nas SET service_password = %s WHERE id = %s", ["gAAAAABnot-a-token", "ds923"])
    nas = NAS.objects.defer("service_password").get(pk="ds923")  # as the admin would load it
    report = services.test_connection(nas, timeout=FAST)
    assert not report.ok and report.outcome == "error"
    assert report.message.startswith("ds923: a stored secret cannot be decrypted"), report.message
    assert fake_dsm.requests == []


# --- request_sync --------------------------------------------------------------------------------
@pytest.fixture
def eager(settings):
    from identityhub.celery import app

    settings.CELERY_TASK_ALWAYS_EAGER = True
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield app
    app.conf.task_always_eager = previous


def test_request_sync_queues_the_task_and_the_worker_records_the_run(nas_ds923, fake_dsm, eager):
    fake_dsm.add_user("alice", email="alice@example.com")
    assert request_sync(NAS.objects.get(pk="ds923")) == "Sync of ds923 queued"
    run = SyncRun.objects.get(nas_id="ds923")
    assert run.outcome == "ok" and run.trigger == "admin" and run.new == 1
    nas = NAS.objects.get(pk="ds923")
    assert nas.last_status == "ok" and nas.accounts.get().name == "alice"
    assert request_sync("ds923", trigger="manual") == "Sync of ds923 queued"
    assert list(SyncRun.objects.values_list("trigger", flat=True)) == ["manual", "admin"]


def test_request_sync_puts_one_message_on_a_real_queue(nas_ds923, fake_dsm, tmp_path):
    """Not eager: one synology.tasks.sync_nas message (NAS id, trigger) lands on a filesystem broker;
    nothing runs until a worker takes it."""
    import base64
    import json

    from celery import Celery

    from identityhub.celery import app

    folder = tmp_path / "queue"
    folder.mkdir()
    broker = Celery("queue-only", broker="filesystem://", set_as_current=False)
    broker.conf.broker_transport_options = {
        "data_folder_in": str(folder), "data_folder_out": str(folder), "control_folder": str(tmp_path / "control"),
    }
    broker.set_current()
    try:
        assert request_sync(nas_ds923, trigger="admin") == "Sync of ds923 queued"
    finally:
        app.set_current()
        broker.close()
    messages = [json.loads(path.read_text()) for path in folder.iterdir()]
    assert len(messages) == 1
    assert messages[0]["headers"]["task"] == "synology.tasks.sync_nas"
    args, kwargs, _ = json.loads(base64.b64decode(messages[0]["body"]))
    assert args == ["ds923", "admin"] and kwargs == {}
    assert not SyncRun.objects.exists() and fake_dsm.requests == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"enabled": False}, "ds923 is disabled: enable it to sync it"),
        ({"service_username": ""}, "ds923: no service account: set its user name and password"),
        ({"service_password": ""}, "ds923: no service account: set its user name and password"),
        ({"enabled": False, "service_username": "", "service_password": ""}, "ds923 is disabled"),
    ],
)
def test_request_sync_refuses_and_queues_nothing(nas_ds923, fake_dsm, eager, change, message):
    nas = NAS.objects.get(pk="ds923")
    for field, value in change.items():
        setattr(nas, field, value)
    nas.save()
    with pytest.raises(SyncRefused) as refused:
        request_sync(nas)
    assert str(refused.value).startswith(message)
    assert isinstance(refused.value, ValueError)
    assert not SyncRun.objects.exists() and fake_dsm.requests == []


def test_request_sync_of_an_unknown_nas(db):
    with pytest.raises(SyncRefused, match="unknown NAS 'nope'"):
        request_sync("nope")


def test_request_sync_when_the_queue_is_unreachable(nas_ds923, fake_dsm):
    """A broker nobody listens on: a clear refusal, not a 500 in the admin."""
    from celery import Celery

    from identityhub.celery import app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    unreachable = Celery("unreachable", broker=f"redis://127.0.0.1:{port}/0", set_as_current=False)
    unreachable.conf.broker_connection_timeout = 1
    unreachable.set_current()  # shared tasks resolve to the current app
    try:
        with pytest.raises(SyncRefused, match="could not be queued: the task queue is unreachable"):
            request_sync(nas_ds923)
    finally:
        app.set_current()
        unreachable.close()
    assert not SyncRun.objects.exists() and fake_dsm.requests == []
