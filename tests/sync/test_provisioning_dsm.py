"""The DSM client's account-creation calls and the fake's side of them (real HTTP, DSM 7 and 6.2)."""

from __future__ import annotations

import json
import time

import pytest

from synology.dsm import (
    DSMApiError,
    DSMAuthError,
    DSMClient,
    DSMError,
    PasswordPolicy,
    parse_password_policy,
)
from tests.fakes.dsm import DEFAULT_POLICY, FakeDSM

from .conftest import SERVICE_PASSWORD, SERVICE_USER

GOOD_PASSWORD = "Correct-Horse-Battery-9"


def client(fake: FakeDSM, **kwargs) -> DSMClient:
    kwargs.setdefault("timeout", (1.0, 2.0))
    return DSMClient(fake.url, SERVICE_USER, SERVICE_PASSWORD, **kwargs)


@pytest.fixture(params=["dsm7", "dsm6"])
def any_dsm(request):
    fake = FakeDSM(request.param, csrf=True)
    fake.start()
    yield fake
    fake.stop()
    assert fake.open_sessions == []


def test_discovery_asks_for_the_account_apis_and_keeps_their_paths(any_dsm):
    with client(any_dsm) as dsm:
        assert dsm.apis["SYNO.Core.User.PasswordPolicy"].path == "entry.cgi"
        assert dsm.apis["SYNO.Core.User.Group"].max_version == 1
    query = any_dsm.requests[0].params["query"].split(",")
    assert {"SYNO.Core.User.PasswordPolicy", "SYNO.Core.User.Group"} <= set(query)


def test_create_then_get_then_listed(any_dsm):
    with client(any_dsm) as dsm:
        uid = dsm.create_user("Granny.Smith", GOOD_PASSWORD, email="granny@example.com", description="made here")
        user = dsm.get_user("granny.smith")  # DSM's lookup ignores case (inference)
        listed = dsm.list_users()
    assert isinstance(uid, int) and user is not None
    assert (user.name, user.email, user.description, user.expired, user.uid) == (
        "Granny.Smith", "granny@example.com", "made here", False, uid)
    assert [(u.name, u.email, u.expired) for u in listed] == [("Granny.Smith", "granny@example.com", False)]
    create = next(r for r in any_dsm.requests if r.params.get("method") == "create")
    assert create.http_method == "POST" and GOOD_PASSWORD not in create.query and create.query == ""
    assert create.params["password"] == GOOD_PASSWORD and create.params["expired"] == "never"
    get = next(r for r in any_dsm.requests if r.params.get("method") == "get")
    assert json.loads(get.params["additional"]) == ["email", "description", "expired"]


def test_get_user_is_none_for_an_unknown_account(fake_dsm):
    with client(fake_dsm) as dsm:
        assert dsm.get_user("nobody.here") is None


def test_the_fake_refuses_a_taken_name_a_bad_name_and_a_weak_password(fake_dsm):
    fake_dsm.add_user("Granny.Smith")
    with client(fake_dsm) as dsm:
        for name, password, code in [
            ("granny.smith", GOOD_PASSWORD, 3101),
            ("granny@smith", GOOD_PASSWORD, 3102),
            ("a" * 65, GOOD_PASSWORD, 3102),
            ("root", GOOD_PASSWORD, 3102),
            ("grandpa", "short1A", 3103),  # 7 < 8
            ("grandpa", "alllowercase1", 3103),  # mixed case
            ("grandpa", "NoDigitsHere", 3103),
            ("grandpa", "Grandpa-123-xyz", 3103),  # contains the name
            ("grandpa", "A1a" * 43, 3103),  # 129 > 127
        ]:
            with pytest.raises(DSMApiError) as raised:
                dsm.create_user(name, password)
            assert raised.value.code == code, (name, password)
            assert password not in str(raised.value) and password not in repr(raised.value)
        assert "the password does not satisfy the password policy" in str(raised.value)
    assert [u["name"] for u in fake_dsm.users] == ["Granny.Smith"]


def test_the_fake_checks_special_characters_when_its_policy_asks(fake_dsm):
    fake_dsm.password_policy = {**DEFAULT_POLICY, "included_special_char": True}
    with client(fake_dsm) as dsm:
        with pytest.raises(DSMApiError):
            dsm.create_user("grandpa", "NoSpecials123")
        dsm.create_user("grandpa", "With-Special123")


def test_expired_now_makes_an_account_that_cannot_sign_in_in_the_fake(fake_dsm):
    """The reference's pitfall, so a re-read can catch it: the fake honours what it is sent."""
    with client(fake_dsm) as dsm:
        dsm.call("SYNO.Core.User", "create", 1, {"name": "x1", "password": GOOD_PASSWORD, "expired": "now"})
        assert dsm.get_user("x1").expired


def test_set_changes_an_account_and_checks_a_new_password(fake_dsm):
    fake_dsm.add_user("maman", email="old@example.com")
    with client(fake_dsm) as dsm:
        dsm.call("SYNO.Core.User", "set", 1, {"name": "maman", "email": "mum@example.com", "expired": "now"})
        assert dsm.get_user("maman").email == "mum@example.com" and dsm.get_user("maman").expired
        with pytest.raises(DSMApiError) as raised:
            dsm.call("SYNO.Core.User", "set", 1, {"name": "maman", "password": "weak"})
        assert raised.value.code == 3103
        with pytest.raises(DSMApiError) as raised:
            dsm.call("SYNO.Core.User", "set", 1, {"name": "nobody"})
        assert raised.value.code == 3100


def test_password_policy_is_read_and_tolerant_of_missing_keys(any_dsm):
    with client(any_dsm) as dsm:
        assert dsm.password_policy() == PasswordPolicy(8, True, True, True, False, True, 0)
        any_dsm.password_policy = {"min_length": 12}
        policy = dsm.password_policy()
    assert policy == PasswordPolicy(min_length=12) and policy.required_length == 0  # length rule off
    assert parse_password_policy(None) == PasswordPolicy()
    assert parse_password_policy({"min_length": "14", "min_length_enable": "true", "mixed_case": 1,
                                  "included_special_char": None, "history_num": True, "new_rule": "x"}) == \
        PasswordPolicy(min_length=14, min_length_enable=True, mixed_case=True)


def test_join_groups_waits_for_the_task_and_records_the_membership(any_dsm):
    any_dsm.add_user("maman")
    any_dsm.dsm_groups.add("family")
    any_dsm.join_polls = 3
    with client(any_dsm) as dsm:
        dsm.join_groups("maman", ["family", "http"])
    assert any_dsm.groups["maman"] == {"family", "http"}
    status = [r for r in any_dsm.requests if r.params.get("method") == "join_status"]
    assert len(status) == 3 and status[0].params["task_id"].startswith("@administrators/groupbatch")
    join = next(r for r in any_dsm.requests if r.params.get("method") == "join")
    assert (join.params["name"], join.params["join_group"], join.params["leave_group"]) == (
        "maman", '["family", "http"]', "[]")


def test_join_groups_with_no_groups_sends_nothing(fake_dsm):
    with client(fake_dsm) as dsm:
        dsm.join_groups("maman", [])
    assert not any(r.params.get("api") == "SYNO.Core.User.Group" for r in fake_dsm.requests)


def test_join_groups_gives_up_within_the_deadline(fake_dsm):
    fake_dsm.add_user("maman")
    fake_dsm.join_polls = 10**6
    started = time.monotonic()
    with client(fake_dsm, call_deadline=1.0) as dsm, pytest.raises(DSMApiError, match="had not finished"):
        dsm.join_groups("maman", ["http"])
    assert time.monotonic() - started < 3
    assert "http" not in fake_dsm.groups.get("maman", set())


def test_join_groups_refuses_an_unknown_group_or_account(fake_dsm):
    fake_dsm.add_user("maman")
    with client(fake_dsm) as dsm:
        with pytest.raises(DSMApiError) as raised:
            dsm.join_groups("maman", ["no-such-group"])
        assert raised.value.code == 120
        with pytest.raises(DSMApiError) as raised:
            dsm.join_groups("nobody", ["http"])
        assert raised.value.code == 3100 and "no such account" in str(raised.value)


def test_a_non_administrator_gets_105_on_every_account_call(fake_dsm):
    fake_dsm.accounts[SERVICE_USER].admin = False
    fake_dsm.add_user("maman")
    with client(fake_dsm) as dsm:
        for call in (lambda: dsm.get_user("maman"), dsm.password_policy,
                     lambda: dsm.create_user("x1", GOOD_PASSWORD), lambda: dsm.join_groups("maman", ["http"])):
            with pytest.raises(DSMAuthError) as raised:
                call()
            assert raised.value.code == 105 and "administrators group" in str(raised.value)
    assert [u["name"] for u in fake_dsm.users] == ["maman"]


def test_without_the_optional_apis_only_their_calls_fail(fake_dsm):
    fake_dsm.offer_account_apis = False
    fake_dsm.add_user("maman")
    with client(fake_dsm) as dsm:
        assert [u.name for u in dsm.list_users()] == ["maman"]
        assert "SYNO.Core.User.Group" not in dsm.apis
        with pytest.raises(DSMApiError, match="does not offer SYNO.Core.User.PasswordPolicy"):
            dsm.password_policy()
        with pytest.raises(DSMApiError, match="does not offer SYNO.Core.User.Group"):
            dsm.join_groups("maman", ["http"])


def test_the_password_never_goes_over_plain_http_to_another_host():
    dsm = DSMClient("http://192.0.2.1:5000", SERVICE_USER, SERVICE_PASSWORD)
    with pytest.raises(DSMError, match="over plain http") as raised:
        dsm.create_user("x1", GOOD_PASSWORD)
    assert GOOD_PASSWORD not in str(raised.value)
    dsm.close()


def test_the_fake_goes_down_after_answering_and_comes_back(fake_dsm):
    from synology.dsm import DSMUnreachable

    fake_dsm.fault("down_after", api="SYNO.Core.User", method="create", times=1)
    with client(fake_dsm) as dsm:
        dsm.create_user("x1", GOOD_PASSWORD)  # answered
        with pytest.raises(DSMUnreachable, match="connection refused"):
            dsm.get_user("x1")
    assert fake_dsm.open_sessions == []  # a NAS that lost power forgets its sessions
    fake_dsm.start()
    with client(fake_dsm) as dsm:
        assert dsm.get_user("x1") is not None
