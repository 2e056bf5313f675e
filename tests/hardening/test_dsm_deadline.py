"""Issue 9 item 13: every DSM call has a total deadline and a response-size cap.

Timeouts used to apply per socket read, so a NAS dripping one byte every 2 s held a sign-in (the "3 s"
quick sync) for 40 s, and a longer drip had no bound. Tested against the real fake DSM on 127.0.0.1
with its `drip`/`drip_body`/`oversize` faults.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest

from synology.dsm import MAX_RESPONSE_BYTES, DSMBadResponse, DSMClient, DSMUnreachable
from tests.fakes.dsm import FakeDSM

USER, PASSWORD = "hub-sync", "s3cret-Pa55word!"


@pytest.fixture
def fake():
    fake = FakeDSM("dsm7", csrf=True).start()
    yield fake
    fake.stop()


@pytest.fixture
def nas(fake, db):
    from accounts.models import Household
    from synology.services import declare_nas

    household = Household.objects.create(id="drip", name="Drip home")
    return declare_nas("ds-drip", household=household, base_url=fake.url, service_username=USER,
                       service_password=PASSWORD, sync_interval=timedelta(hours=1))


def _elapsed(started: float) -> float:
    return time.monotonic() - started


@pytest.mark.parametrize("kind", ["drip", "drip_body"])
def test_a_dripping_nas_is_cut_at_the_conversation_deadline(fake, kind):
    """A byte every 0.3 s never trips a per-read timeout (3 s here): only a total deadline stops it."""
    fake.fault(kind, api="SYNO.API.Info", seconds=0.3)
    started = time.monotonic()
    with pytest.raises(DSMUnreachable) as raised, DSMClient(fake.url, USER, PASSWORD, timeout=(3.0, 3.0), deadline=2.0):
        pass
    assert _elapsed(started) < 2.0 + 1.0
    assert str(raised.value) == f"{fake.url} did not answer within 2 s (API discovery (SYNO.API.Info))"


def test_a_nas_dripping_over_tls_is_cut_too(tmp_path):
    """Over HTTPS the socket the watchdog shuts down is under the TLS layer (its own duplicate)."""
    from tests.fakes.dsm import self_signed_cert

    tls_fake = FakeDSM("dsm7", tls=self_signed_cert(str(tmp_path))).start()
    try:
        tls_fake.fault("drip_body", api="SYNO.API.Info", seconds=0.3)
        started = time.monotonic()
        with (pytest.raises(DSMUnreachable, match="did not answer within 1.5 s"),
              DSMClient(tls_fake.url, USER, PASSWORD, verify=False, timeout=(3.0, 3.0), deadline=1.5)):
            pass
        assert _elapsed(started) < 1.5 + 1.0
    finally:
        tls_fake.stop()


def test_every_call_has_a_deadline_of_its_own(fake):
    fake.add_user("mael.valais")
    fake.fault("drip_body", api="SYNO.Core.User", method="list", seconds=0.3)
    with DSMClient(fake.url, USER, PASSWORD, timeout=(3.0, 3.0), call_deadline=1.5) as dsm:
        started = time.monotonic()
        with pytest.raises(DSMUnreachable, match=r"did not answer within 1\.5 s \(SYNO.Core.User list\)"):
            dsm.list_users()
        assert _elapsed(started) < 1.5 + 1.0
    assert fake.logouts == 1  # the session is still ended: logout has its own (short) deadline


def test_the_default_call_deadline_is_bounded():
    from synology.dsm import DEFAULT_CALL_DEADLINE

    client = DSMClient("https://192.0.2.1:5001", USER, PASSWORD)
    assert client.call_deadline == DEFAULT_CALL_DEADLINE <= 60
    assert client.max_response_bytes == MAX_RESPONSE_BYTES == 32 * 1024 * 1024


def test_quick_sync_holds_a_sign_in_for_its_3_s_at_most(fake, nas):
    """The issue's case: a NAS dripping one byte every 2 s held the 3 s quick sync for 40 s."""
    from synology.models import SyncRun
    from synology.services import QUICK_SYNC_DEADLINE, quick_sync

    assert QUICK_SYNC_DEADLINE == 3.0
    fake.add_user("mael.valais")
    fake.fault("drip_body", api="SYNO.Core.User", method="list", seconds=2.0)
    started = time.monotonic()
    assert quick_sync(nas) is False
    assert _elapsed(started) < QUICK_SYNC_DEADLINE + 1.0
    run = SyncRun.objects.get(nas=nas)
    assert run.outcome == "unreachable"
    assert run.message == f"{fake.url} did not answer within 3 s (SYNO.Core.User list)"


def test_test_connection_has_a_total_deadline(fake, nas):
    from synology.services import TEST_DEADLINE, test_connection

    assert TEST_DEADLINE <= 20
    fake.fault("drip", api="SYNO.API.Auth", method="login", seconds=0.3)
    started = time.monotonic()
    report = test_connection(nas, deadline=2.0)
    assert _elapsed(started) < 2.0 + 1.0
    assert not report.ok and report.outcome == "unreachable"
    assert report.message == f"ds-drip: unreachable: {fake.url} did not answer within 2 s (login (SYNO.API.Auth))"


@pytest.mark.parametrize("kind", ["oversize", "oversize_declared"])
def test_an_endless_answer_stops_at_the_size_cap(fake, kind):
    fake.fault(kind, api="SYNO.API.Info")
    cap = 1024 * 1024
    started = time.monotonic()
    with pytest.raises(DSMBadResponse) as raised, DSMClient(fake.url, USER, PASSWORD, max_response_bytes=cap):
        pass
    assert str(raised.value) == (
        f"API discovery (SYNO.API.Info): the answer from {fake.url} is larger than 1 MiB; stopped reading"
    )
    assert _elapsed(started) < 5
    time.sleep(0.2)  # let the fake notice the closed connection
    # socket buffers on loopback hold a few MiB; without the cap the client reads on forever
    assert fake.bytes_sent < 16 * 1024 * 1024


def test_a_ten_thousand_user_page_fits_well_under_the_cap(fake):
    """Measured: 10,000 accounts with email and description in one page (limit=10000) is ~1.9 MB."""
    for i in range(10_000):
        fake.add_user(f"user{i:05d}.family-name", email=f"user{i:05d}.family-name@example-household.com",
                      description=f"Family member {i} (synced from the household's directory)")
    with DSMClient(fake.url, USER, PASSWORD, page_size=10_000) as dsm:
        users = dsm.list_users()
        body = dsm.last_response_bytes
    assert len(users) == 10_000
    print(f"10,000-user page: {body} bytes")
    assert body < MAX_RESPONSE_BYTES / 8
    assert json.dumps({"n": 1})  # the listing itself is plain JSON
