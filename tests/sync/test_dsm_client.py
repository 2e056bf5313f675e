"""synology.dsm.DSMClient against the real HTTP fake (DSM 7 and 6.2)."""

from __future__ import annotations

import pytest

from synology.dsm import DSMApiError, DSMAuthError, DSMBadResponse, DSMClient, DSMUnreachable
from tests.fakes.dsm import FakeDSM, self_signed_cert

from .conftest import SERVICE_PASSWORD, SERVICE_USER


def client(fake: FakeDSM, password: str = SERVICE_PASSWORD, **kwargs) -> DSMClient:
    kwargs.setdefault("timeout", (1.0, 1.0))
    return DSMClient(fake.url, SERVICE_USER, password, **kwargs)


def list_users(fake: FakeDSM, **kwargs):
    with client(fake, **kwargs) as dsm:
        return dsm.list_users()


@pytest.fixture(params=["dsm7", "dsm6"])
def any_dsm(request):
    fake = FakeDSM(request.param, csrf=True)
    fake.start()
    yield fake
    fake.stop()
    assert fake.open_sessions == []


def test_lists_every_user_across_pages_and_logs_out(any_dsm):
    for i in range(25):
        any_dsm.add_user(f"User.{i}", email=f"User{i}@Example.com", description=f"d{i}", expired=i == 3)
    users = list_users(any_dsm, page_size=10)
    assert [u.name for u in users] == [f"User.{i}" for i in range(25)]  # names exactly as listed
    assert users[0].email == "User0@Example.com" and users[0].description == "d0"
    assert users[3].expired and not users[4].expired
    assert users[0].uid is None  # list does not return uid here; that is fine
    lists = [r for r in any_dsm.requests if r.params.get("method") == "list"]
    assert [r.params["offset"] for r in lists] == ["0", "10", "20"]
    assert lists[0].params["type"] == "local"
    assert lists[0].params["additional"] == '["email", "description", "expired"]'
    assert any_dsm.logins == 1 and any_dsm.logouts == 1


def test_uses_discovered_paths_and_versions(any_dsm):
    list_users(any_dsm)
    login = next(r for r in any_dsm.requests if r.params.get("method") == "login")
    if any_dsm.mode == "dsm6":
        assert login.path == "/webapi/auth.cgi" and login.params["version"] == "6"
    else:
        assert login.path == "/webapi/entry.cgi" and login.params["version"] == "7"
    assert any_dsm.requests[0].path == "/webapi/query.cgi"
    assert login.params["session"] and login.params["enable_syno_token"] == "yes"
    assert login.params["format"] == "sid"


def test_password_travels_in_post_body_only_and_token_in_header(fake_dsm):
    fake_dsm.add_user("a")
    list_users(fake_dsm)
    for r in fake_dsm.requests:
        assert SERVICE_PASSWORD not in r.query
    login = next(r for r in fake_dsm.requests if r.params.get("method") == "login")
    assert login.http_method == "POST" and login.params["passwd"] == SERVICE_PASSWORD
    listing = next(r for r in fake_dsm.requests if r.params.get("method") == "list")
    assert listing.headers.get("X-SYNO-TOKEN")
    assert listing.http_method == "POST" and "_sid" not in listing.query


def test_uid_is_taken_when_listed():
    with FakeDSM(include_uid=True) as fake:
        fake.add_user("a", uid=1030)
        assert list_users(fake)[0].uid == 1030
        assert fake.open_sessions == []


@pytest.mark.parametrize(
    ("setup", "error", "words"),
    [
        (lambda f: None, DSMAuthError, "wrong account or password"),
        (lambda f: setattr(f.accounts[SERVICE_USER], "otp", True), DSMAuthError, "without 2FA"),
        (lambda f: setattr(f.accounts[SERVICE_USER], "disabled", True), DSMAuthError, "disabled"),
        (lambda f: setattr(f.accounts[SERVICE_USER], "locked", True), DSMAuthError, "locked"),
        (lambda f: f.fault("code", method="login", code=407), DSMAuthError, "blocked"),
    ],
    ids=["wrong-password", "2fa", "disabled", "locked", "ip-blocked"],
)
def test_login_failures_are_typed_and_readable(fake_dsm, setup, error, words):
    setup(fake_dsm)
    password = "wrong-password-123" if words.startswith("wrong") else SERVICE_PASSWORD
    with pytest.raises(error) as raised:
        list_users(fake_dsm, password=password)
    assert words in str(raised.value)
    assert password not in str(raised.value) and SERVICE_PASSWORD not in repr(raised.value)
    assert raised.value.outcome == "auth_failed"


def test_non_admin_gets_a_clear_message_and_is_logged_out(fake_dsm):
    fake_dsm.accounts[SERVICE_USER].admin = False
    with pytest.raises(DSMAuthError, match="not an administrator"):
        list_users(fake_dsm)
    assert fake_dsm.logouts == 1


def test_expired_session_logs_in_again_once(fake_dsm):
    for i in range(5):
        fake_dsm.add_user(f"u{i}")
    fake_dsm.fault("expire_session", api="SYNO.Core.User", page=1, times=1)
    assert len(list_users(fake_dsm, page_size=2)) == 5
    assert fake_dsm.logins == 2


def test_session_expiring_twice_is_an_error(fake_dsm):
    fake_dsm.add_user("u")
    fake_dsm.fault("expire_session", api="SYNO.Core.User")
    with pytest.raises(DSMApiError, match="119"):
        list_users(fake_dsm)
    assert fake_dsm.logins == 2


def test_missing_csrf_token_is_refused_by_the_fake(fake_dsm):
    """The fake really enforces the SynoToken: a client that does not send it fails."""
    import requests

    fake_dsm.add_user("u")
    with client(fake_dsm) as dsm:
        sid = dsm._sid
        answer = requests.post(
            f"{fake_dsm.url}/webapi/entry.cgi",
            data={"api": "SYNO.Core.User", "version": "1", "method": "list", "_sid": sid},
            timeout=2,
        ).json()
        assert answer == {"success": False, "error": {"code": 119}}
        assert len(dsm.list_users()) == 1


@pytest.mark.parametrize(
    ("kind", "kwargs", "error", "words"),
    [
        ("http500", {"api": "SYNO.Core.User"}, DSMBadResponse, "HTTP 500"),
        ("nonjson", {"api": "SYNO.Core.User"}, DSMBadResponse, "not JSON"),
        ("no_data", {"api": "SYNO.Core.User"}, DSMBadResponse, "no 'data'"),
        ("no_code", {"api": "SYNO.Core.User"}, DSMBadResponse, "without an error code"),
        ("no_code", {"method": "login"}, DSMBadResponse, "without an error code"),
        ("nonjson", {"api": "SYNO.API.Info"}, DSMBadResponse, "not JSON"),
        ("malformed", {"api": "SYNO.Core.User"}, DSMBadResponse, "malformed"),
        ("code", {"api": "SYNO.Core.User", "code": 117}, DSMApiError, "117 (internal error)"),
        ("http500", {"api": "SYNO.Core.User", "page": 2}, DSMBadResponse, "HTTP 500"),
    ],
)
def test_bad_answers_raise_and_still_log_out(fake_dsm, kind, kwargs, error, words):
    for i in range(7):
        fake_dsm.add_user(f"u{i}")
    fake_dsm.fault(kind, **kwargs)
    with pytest.raises(error) as raised:
        list_users(fake_dsm, page_size=3)
    assert words in str(raised.value)
    assert fake_dsm.open_sessions == []


def test_list_changing_between_pages_is_rejected(fake_dsm):
    for i in range(6):
        fake_dsm.add_user(f"u{i}")

    original = fake_dsm._take_fault

    def grow(api, method, page):
        if page == 1:
            fake_dsm.add_user(f"late{len(fake_dsm.users)}")
        return original(api, method, page)

    fake_dsm._take_fault = grow
    with pytest.raises(DSMBadResponse, match="changed while"):
        list_users(fake_dsm, page_size=3)


def test_connection_refused_is_unreachable():
    fake = FakeDSM().start()
    fake.stop()
    with pytest.raises(DSMUnreachable, match="connection refused") as raised:
        list_users(fake)
    assert raised.value.outcome == "unreachable"


def test_timeouts_are_unreachable_and_bounded(fake_dsm):
    import time

    fake_dsm.add_user("u")
    fake_dsm.fault("sleep", api="SYNO.Core.User", seconds=5)
    started = time.monotonic()
    with pytest.raises(DSMUnreachable, match="timed out"):
        list_users(fake_dsm, timeout=(0.5, 0.3))
    assert time.monotonic() - started < 3
    fake_dsm.clear_faults()
    # the session opened before the slow call was logged out
    assert fake_dsm.open_sessions == []


def test_tls_verify_on_by_default_ca_bundle_or_off(tmp_path):
    cert, key = self_signed_cert(str(tmp_path))
    with FakeDSM(tls=(cert, key)) as fake:
        fake.add_user("u")
        with pytest.raises(DSMUnreachable, match="TLS"):
            list_users(fake)
        assert len(list_users(fake, verify=cert)) == 1
        with pytest.warns(Warning):  # urllib3's InsecureRequestWarning: off is loud, as it should be
            assert len(list_users(fake, verify=False)) == 1
        assert fake.open_sessions == []


def test_nas_tls_policy_maps_to_requests_verify(sync_household):
    from synology.models import NAS

    assert NAS(verify_tls=True).tls_verify is True
    assert NAS(verify_tls=False).tls_verify is False
    assert NAS(verify_tls=True, ca_file="/etc/ca.pem").tls_verify == "/etc/ca.pem"


def test_repr_never_shows_the_password(fake_dsm):
    dsm = client(fake_dsm)
    assert SERVICE_PASSWORD not in repr(dsm) and SERVICE_PASSWORD not in str(vars(dsm).get("base_url"))


def test_redirects_are_not_followed_so_the_password_stays_put(fake_dsm):
    """A 307/308 makes requests re-send the POST body; the login must not follow it anywhere."""
    other = FakeDSM("dsm7")
    other.start()
    try:
        fake_dsm.fault("redirect", api="SYNO.API.Auth", location=f"{other.url}/webapi/entry.cgi?x=1")
        with pytest.raises(DSMBadResponse) as info:
            list_users(fake_dsm)
        assert str(info.value) == (
            f"login (SYNO.API.Auth): {fake_dsm.url} redirects to {other.url}; "
            "set the NAS url to the address DSM redirects to"
        )
        assert other.requests == []
        assert SERVICE_PASSWORD not in str(info.value)
    finally:
        other.stop()
