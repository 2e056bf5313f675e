"""synology.provisioning.provision_account against the real HTTP fake: every outcome, and the retry."""

from __future__ import annotations

import json
import logging

import pytest
from django.db import transaction
from django.db.transaction import TransactionManagementError

from synology.provisioning import ProvisioningError, account_marker, provision_account
from synology.sync import sync_nas

from .conftest import SERVICE_PASSWORD, SERVICE_USER

pytestmark = pytest.mark.django_db

NAME = "granny.smith"
EMAIL = "granny@example.com"


def provision(nas, **kwargs):
    kwargs.setdefault("name", NAME)
    kwargs.setdefault("email", EMAIL)
    return provision_account(nas, **kwargs)


def refused(nas, outcome: str, **kwargs) -> ProvisioningError:
    with pytest.raises(ProvisioningError) as raised:
        provision(nas, **kwargs)
    assert raised.value.outcome == outcome, raised.value.message
    return raised.value


def calls(fake, method: str, api: str = "SYNO.Core.User") -> list:
    return [r for r in fake.requests if r.params.get("api") == api and r.params.get("method") == method]


def rows(nas) -> list[str]:
    from synology.models import DSMAccount

    return list(DSMAccount.objects.filter(nas=nas).values_list("name", flat=True))


def no_account_created_event() -> bool:
    from identityhub.models import AuditEvent

    return not AuditEvent.objects.filter(reason="account_created").exists()


def everything_stored() -> str:
    """Every audit event, DSM account, sync run and NAS row, as text."""
    from identityhub.models import AuditEvent
    from synology.models import NAS, DSMAccount, SyncRun

    stored = [list(AuditEvent.objects.values()), list(DSMAccount.objects.values()), list(SyncRun.objects.values()),
              list(NAS.objects.values("last_message", "new_account_groups"))]
    return json.dumps(stored, default=str)


# --- success --------------------------------------------------------------------------------------
def test_creates_the_account_joins_the_groups_and_returns_the_synced_unlinked_row(nas_ds923, fake_dsm, caplog):
    from identityhub.models import AuditEvent
    from synology.models import SyncRun

    caplog.set_level(logging.DEBUG)
    fake_dsm.dsm_groups |= {"family", "photos"}
    fake_dsm.password_policy = {"min_length": 30, "min_length_enable": True, "mixed_case": True,
                                "included_numeric_char": True, "included_special_char": True,
                                "exclude_username": True, "history_num": 3}
    nas_ds923.new_account_groups = ["family", "photos"]
    nas_ds923.save()

    row = provision(nas_ds923, email="Granny@Example.COM", display_name="Granny Smith")

    assert (row.name, row.present, row.expired, row.user_id) == (NAME, True, False, None)
    assert row.email == EMAIL and row.description == f"Created by Identity Hub for {EMAIL}"
    assert row.uid is not None and row.pk is not None
    assert fake_dsm.find_user(NAME)["expired"] == "normal"
    assert fake_dsm.groups[NAME] == {"users", "family", "photos"}
    password = fake_dsm.passwords[NAME]
    assert fake_dsm.password_problem(NAME, password) is None
    assert len(password) == 30 and NAME not in password.lower()
    assert any(c.islower() for c in password) and any(c.isupper() for c in password)
    assert any(c.isdigit() for c in password) and not password.isalnum()

    create = calls(fake_dsm, "create")[0]
    assert create.http_method == "POST" and password not in create.query and "password" not in create.query
    assert create.params["password"] == password and create.params["expired"] == "never"
    assert (create.params["passwd_never_expire"], create.params["cannot_chg_passwd"],
            create.params["notify_by_email"], create.params["send_password"]) == ("true", "false", "false", "false")
    join = calls(fake_dsm, "join", "SYNO.Core.User.Group")[0]
    assert json.loads(join.params["join_group"]) == ["family", "photos"] and join.params["leave_group"] == "[]"
    assert len(calls(fake_dsm, "join_status", "SYNO.Core.User.Group")) == fake_dsm.join_polls
    login = next(r for r in fake_dsm.requests if r.params.get("method") == "login")
    assert login.params["session"] == "IdentityHubProvision"

    assert SyncRun.objects.get().trigger == "new-account"
    event = AuditEvent.objects.get(reason="account_created")
    assert (event.kind, event.nas_id, event.email) == ("sync", "ds923", EMAIL)
    assert event.details["account"] == NAME and event.details["adopted"] is False
    assert event.details["groups"] == ["family", "photos"]
    # The password is nowhere but on the NAS.
    assert password not in everything_stored()
    assert password not in caplog.text and SERVICE_PASSWORD not in caplog.text
    assert "created DSM account granny.smith on ds923" in caplog.text
    assert fake_dsm.logouts == fake_dsm.logins  # and the fixture checks no session is left open


def test_the_groups_argument_overrides_the_nas_setting_and_no_groups_means_no_join(nas_ds923, fake_dsm):
    fake_dsm.dsm_groups.add("family")
    nas_ds923.new_account_groups = ["family"]
    nas_ds923.save()
    provision(nas_ds923, groups=[])
    assert calls(fake_dsm, "join", "SYNO.Core.User.Group") == []
    assert fake_dsm.groups[NAME] == {"users"}
    provision(nas_ds923, name="grandpa", email="grandpa@example.com", groups=["http"])
    assert fake_dsm.groups["grandpa"] == {"users", "http"}


def test_the_default_policy_of_the_fake_gets_a_24_character_password(nas_ds923, fake_dsm):
    provision(nas_ds923)
    assert len(fake_dsm.passwords[NAME]) == 24


def test_a_person_with_that_email_is_linked_by_the_syncs_email_rule(nas_ds923, fake_dsm, make_person):
    """The row comes from a listing: its usual email rule applies (callers link it otherwise)."""
    granny = make_person(EMAIL)
    row = provision(nas_ds923)
    assert row.user == granny and row.linked_by == "email"


def test_works_with_dsm_6(sync_household):
    from synology.services import declare_nas
    from tests.fakes.dsm import FakeDSM

    with FakeDSM("dsm6") as fake:
        fake.accounts = {SERVICE_USER: fake.accounts["hub-sync"]}
        nas = declare_nas("ds6", household=sync_household, base_url=fake.url, service_username=SERVICE_USER,
                          service_password=SERVICE_PASSWORD)
        assert provision(nas).name == NAME
        assert fake.open_sessions == []


# --- refused before anything is created ------------------------------------------------------------
def test_a_name_taken_in_the_last_listing_is_refused_case_insensitively_without_a_call(nas_ds923, fake_dsm):
    fake_dsm.add_user("Granny.Smith", email="someone@example.com")
    assert sync_nas(nas_ds923.pk).ok
    fake_dsm.requests.clear()
    error = refused(nas_ds923, "name_taken")
    assert "Granny.Smith" in error.message and "last sync" in error.message and error.code is None
    assert fake_dsm.requests == []
    # an absent account keeps its name taken
    fake_dsm.set_users([])
    assert sync_nas(nas_ds923.pk).ok
    fake_dsm.requests.clear()
    refused(nas_ds923, "name_taken", name="GRANNY.SMITH")
    assert fake_dsm.requests == [] and no_account_created_event()


def test_a_name_taken_on_the_nas_but_not_yet_listed_is_dsms_refusal(nas_ds923, fake_dsm):
    fake_dsm.add_user("Granny.Smith", email=EMAIL, description="Granny's own account")
    error = refused(nas_ds923, "name_taken")
    assert error.code == 3101 and "(DSM error 3101)" in error.message and "Granny.Smith" in error.message
    assert rows(nas_ds923) == [] and len(fake_dsm.users) == 1
    assert fake_dsm.find_user(NAME)["description"] == "Granny's own account"
    assert calls(fake_dsm, "join", "SYNO.Core.User.Group") == [] and no_account_created_event()


def test_a_name_kept_for_someone_else_by_an_explicit_mapping_is_taken(nas_ds923, fake_dsm):
    from synology.services import set_account_mappings

    set_account_mappings(nas_ds923, {"someone@example.com": "Granny.Smith"})
    error = refused(nas_ds923, "name_taken")
    assert "someone@example.com" in error.message and fake_dsm.requests == []
    set_account_mappings(nas_ds923, {EMAIL: NAME})  # her own mapping: fine
    assert provision(nas_ds923).user_id is None


@pytest.mark.parametrize("name", ["granny@smith", "granny smith", "", "-granny", ".granny", "a" * 65, "admin",
                                  "Root", "grä", "granny/smith", "granny\x00"])
def test_a_bad_name_is_refused_without_a_call(nas_ds923, fake_dsm, name):
    refused(nas_ds923, "bad_name", name=name)
    assert fake_dsm.requests == [] and rows(nas_ds923) == []


def test_a_name_dsm_refuses_is_bad_name_with_its_code(nas_ds923, fake_dsm):
    fake_dsm.fault("code", api="SYNO.Core.User", method="create", code=3102)
    error = refused(nas_ds923, "bad_name")
    assert error.code == 3102 and "(DSM error 3102)" in error.message
    assert fake_dsm.users == [] and rows(nas_ds923) == [] and no_account_created_event()


def test_a_policy_the_generator_cannot_meet_is_weak_password_before_any_create(nas_ds923, fake_dsm):
    fake_dsm.password_policy = {"min_length": 200, "min_length_enable": True}
    error = refused(nas_ds923, "weak_password")
    assert "200" in error.message and "Control Panel" in error.message
    assert calls(fake_dsm, "create") == [] and fake_dsm.users == [] and no_account_created_event()


def test_a_password_dsm_refuses_is_weak_password_with_its_code(nas_ds923, fake_dsm):
    fake_dsm.fault("code", api="SYNO.Core.User", method="create", code=3103)
    error = refused(nas_ds923, "weak_password")
    assert error.code == 3103 and "(DSM error 3103)" in error.message
    assert fake_dsm.users == [] and rows(nas_ds923) == []
    sent = calls(fake_dsm, "create")[0].params["password"]
    assert sent not in error.message and sent not in everything_stored()


def test_a_service_account_that_is_not_an_administrator_is_no_permission(nas_ds923, fake_dsm):
    fake_dsm.accounts[SERVICE_USER].admin = False
    error = refused(nas_ds923, "no_permission")
    assert error.code == 105 and "(DSM error 105)" in error.message and "administrators" in error.message
    assert fake_dsm.users == [] and rows(nas_ds923) == [] and no_account_created_event()


def test_a_wrong_service_password_is_auth_failed(nas_ds923, fake_dsm):
    fake_dsm.accounts[SERVICE_USER].password = "changed-on-the-nas"
    error = refused(nas_ds923, "auth_failed")
    assert error.code == 400 and "(DSM error 400)" in error.message and SERVICE_PASSWORD not in error.message


def test_a_nas_that_does_not_answer_in_time_is_unreachable(nas_ds923, fake_dsm):
    import time

    fake_dsm.fault("sleep", api="SYNO.Core.User", method="create", seconds=5, times=1)
    started = time.monotonic()
    error = refused(nas_ds923, "unreachable", timeout=(1.0, 0.5))
    assert time.monotonic() - started < 3
    assert "timed out" in error.message and error.code is None
    assert rows(nas_ds923) == [] and no_account_created_event()
    fake_dsm._wake.set()  # let the sleeping answer go (it finds its session logged out)


def test_a_nas_that_is_down_is_unreachable(nas_ds923, fake_dsm):
    fake_dsm.stop()
    error = refused(nas_ds923, "unreachable")
    assert "connection refused" in error.message
    assert rows(nas_ds923) == [] and no_account_created_event()


def test_without_the_account_apis_the_error_is_clear(nas_ds923, fake_dsm):
    fake_dsm.offer_account_apis = False
    error = refused(nas_ds923, "error")
    assert "does not offer SYNO.Core.User.PasswordPolicy" in error.message
    assert fake_dsm.users == []
    assert sync_nas(nas_ds923.pk).ok  # the sync does not need them


def test_no_service_account_and_a_disabled_nas_make_no_call(fake_dsm, sync_household):
    from synology.services import declare_nas

    bare = declare_nas("bare", household=sync_household, base_url=fake_dsm.url)
    error = refused(bare, "no_service_account")
    assert "no service account" in error.message
    off = declare_nas("off", household=sync_household, base_url=fake_dsm.url, service_username=SERVICE_USER,
                      service_password=SERVICE_PASSWORD, enabled=False)
    assert "disabled" in refused(off, "error").message
    assert fake_dsm.requests == []


def test_refuses_to_run_inside_a_transaction(nas_ds923, fake_dsm):
    with transaction.atomic(), pytest.raises(TransactionManagementError, match="outside any database transaction"):
        provision(nas_ds923)
    assert fake_dsm.requests == []


def test_a_bad_email_is_refused(nas_ds923, fake_dsm):
    refused(nas_ds923, "error", email="granny")
    assert fake_dsm.requests == []


# --- half-way failures and the retry ---------------------------------------------------------------
def test_nas_down_after_the_create_then_a_retry_adopts_the_account(nas_ds923, fake_dsm):
    from identityhub.models import AuditEvent

    fake_dsm.dsm_groups.add("family")
    nas_ds923.new_account_groups = ["family"]
    nas_ds923.save()
    fake_dsm.fault("down_after", api="SYNO.Core.User", method="create", times=1)
    error = refused(nas_ds923, "unreachable")
    assert "was created on DS923+" in error.message and "the retry finishes it" in error.message
    assert rows(nas_ds923) == [] and no_account_created_event()
    assert fake_dsm.find_user(NAME) is not None and fake_dsm.groups[NAME] == {"users"}  # not joined yet
    first_password = fake_dsm.passwords[NAME]

    fake_dsm.start()  # the NAS is back
    fake_dsm.requests.clear()
    row = provision(nas_ds923)
    assert row.name == NAME and row.present and row.user_id is None
    assert fake_dsm.groups[NAME] == {"users", "family"}
    assert len(fake_dsm.users) == 1 and fake_dsm.passwords[NAME] == first_password  # adopted, not re-created
    event = AuditEvent.objects.get(reason="account_created")
    assert event.details["adopted"] is True and event.details["account"] == NAME


def test_nas_down_before_the_listing_is_not_listed_then_a_retry_adopts_it(nas_ds923, fake_dsm):
    from synology.models import SyncRun

    fake_dsm.fault("down_after", api="SYNO.Core.User", method="get", times=1)  # the re-read, then down
    error = refused(nas_ds923, "not_listed")
    assert error.message.startswith("“granny.smith” was created on DS923+ but the NAS could not be listed")
    assert error.message.endswith("try again when it answers.")
    assert "connection refused" in error.message
    assert rows(nas_ds923) == [] and no_account_created_event()
    assert SyncRun.objects.get().outcome == "unreachable"

    fake_dsm.start()
    row = provision(nas_ds923)
    assert row.name == NAME and row.present and rows(nas_ds923) == [NAME]


def test_a_listed_account_made_by_the_hub_for_that_email_is_adopted_without_a_create(nas_ds923, fake_dsm):
    fake_dsm.dsm_groups.add("family")
    fake_dsm.add_user(NAME, email=EMAIL, description=account_marker(EMAIL))
    assert sync_nas(nas_ds923.pk).ok
    fake_dsm.requests.clear()
    row = provision(nas_ds923, groups=["family"])
    assert row.name == NAME and calls(fake_dsm, "create") == []
    assert fake_dsm.groups[NAME] == {"family"}


@pytest.mark.parametrize("description", ["Granny's photos", "", account_marker("someone@example.com"),
                                         f"{account_marker(EMAIL)} (moved)"])
def test_a_retry_never_adopts_an_account_the_hub_did_not_make_for_that_email(nas_ds923, fake_dsm, description):
    fake_dsm.add_user(NAME, email=EMAIL, description=description)
    error = refused(nas_ds923, "name_taken")
    assert error.code == 3101
    assert fake_dsm.find_user(NAME)["description"] == description and rows(nas_ds923) == []
    assert calls(fake_dsm, "join", "SYNO.Core.User.Group") == []
    # nor once it is listed
    assert sync_nas(nas_ds923.pk).ok
    refused(nas_ds923, "name_taken")


def test_a_listed_hub_account_linked_to_someone_else_is_not_adopted(nas_ds923, fake_dsm, make_person):
    from synology.services import link_account

    fake_dsm.add_user(NAME, email=EMAIL, description=account_marker(EMAIL))
    assert sync_nas(nas_ds923.pk).ok
    from synology.models import DSMAccount

    link_account(DSMAccount.objects.get(name=NAME), make_person("grandpa@example.com"))
    refused(nas_ds923, "name_taken")


def test_an_adopted_account_that_cannot_sign_in_is_an_error(nas_ds923, fake_dsm):
    """DSM is re-read after the create: an account left expired ("now") is not handed to a caller."""
    fake_dsm.add_user(NAME, email=EMAIL, description=account_marker(EMAIL), expired=True)
    error = refused(nas_ds923, "error")
    assert "expired" in error.message and rows(nas_ds923) == [] and no_account_created_event()


def test_a_group_that_does_not_exist_fails_after_the_create_and_the_retry_finishes(nas_ds923, fake_dsm):
    nas_ds923.new_account_groups = ["family"]
    nas_ds923.save()
    error = refused(nas_ds923, "error")
    assert "was created on DS923+" in error.message and "120" in error.message
    fake_dsm.dsm_groups.add("family")  # the admin creates the group in DSM
    assert provision(nas_ds923).name == NAME and fake_dsm.groups[NAME] == {"users", "family"}


def test_a_sync_holding_the_lock_too_long_is_not_listed(nas_ds923, fake_dsm, monkeypatch):
    from identityhub.locks import sync_lock
    from synology import provisioning

    monkeypatch.setattr(provisioning, "LISTING_LOCK_WAIT", 0.2)
    lock = sync_lock(nas_ds923.pk, ttl=60)
    assert lock.acquire()
    try:
        error = refused(nas_ds923, "not_listed")
    finally:
        lock.release()
    assert "another sync of ds923 is running" in error.message
    assert provision(nas_ds923).name == NAME  # the retry adopts it
