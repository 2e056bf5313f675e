"""accounts.passkeys: the options the browser gets, and what the hub accepts — verified by py_webauthn
against a real software authenticator (tests/passkeys/authenticator.py)."""

from __future__ import annotations

import copy
import uuid

import pytest

from accounts import passkeys
from accounts.models import Passkey
from accounts.passkeys import PasskeyError
from identityhub.models import AuditEvent
from tests.passkeys.authenticator import SoftAuthenticator, b64url, from_b64url
from tests.passkeys.conftest import ISSUER, Session

pytestmark = pytest.mark.django_db


def register(user, authenticator, name=""):
    session = Session()
    options = passkeys.registration_options(session, user)
    return passkeys.register_passkey(session, user, authenticator.create(options), name=name)


def assertion(authenticator, **kwargs):
    session = Session()
    options = passkeys.authentication_options(session)
    return session, authenticator.get(options, **kwargs)


def refusals():
    return list(AuditEvent.objects.filter(kind="refusal").values_list("reason", "user__email", "details"))


# --- the options -----------------------------------------------------------------------------
def test_the_relying_party_is_the_issuers_host_and_origin(settings):
    assert passkeys.rp_id() == "localhost" and passkeys.expected_origin() == ISSUER and passkeys.available()
    settings.HUB_ISSUER = "https://id.example.com/hub"
    assert passkeys.rp_id() == "id.example.com" and passkeys.expected_origin() == "https://id.example.com"
    settings.HUB_ISSUER = "http://127.0.0.1:8000"  # browsers refuse an IP address as RP ID
    assert not passkeys.available()


def test_registration_options_ask_for_a_discoverable_user_verified_passkey(mael, mum, authenticator):
    other = register(mum, SoftAuthenticator(origin=ISSUER))
    first = register(mael, authenticator)
    session = Session()
    options = passkeys.registration_options(session, mael)

    assert options["rp"] == {"id": "localhost", "name": "Identity Hub"}
    assert options["user"] == {"id": b64url(mael.public_id.bytes), "name": "mael@example.com",
                               "displayName": "Maël Valais"}
    assert options["authenticatorSelection"] == {"residentKey": "required", "requireResidentKey": True,
                                                 "userVerification": "required"}
    assert options["attestation"] == "none"
    assert {"type": "public-key", "alg": -7} in options["pubKeyCredParams"]
    # Only Maël's own passkeys are excluded (an authenticator holding one says so), with their transports.
    assert options["excludeCredentials"] == [
        {"id": first.credential_id, "type": "public-key", "transports": ["internal", "hybrid"]}]
    assert other.credential_id not in str(options)
    assert session[passkeys.REGISTRATION_SESSION_KEY][-1]["challenge"] == options["challenge"]
    assert len(from_b64url(options["challenge"])) >= 32


def test_authentication_options_are_discoverable_and_require_user_verification(registered):
    session = Session()
    options = passkeys.authentication_options(session)
    assert options["rpId"] == "localhost" and options["userVerification"] == "required"
    assert "allowCredentials" not in options  # any passkey of this hub: the authenticator offers its own
    assert session[passkeys.AUTHENTICATION_SESSION_KEY][-1]["challenge"] == options["challenge"]


# --- adding a passkey ------------------------------------------------------------------------
def test_a_registered_passkey_is_stored_with_its_counter_and_backup_flags(mael, authenticator):
    passkey = register(mael, authenticator)
    assert passkey.user == mael and passkey.credential_id == authenticator.id
    assert passkey.sign_count == 0 and passkey.backup_eligible and passkey.backup_state
    assert passkey.aaguid == "ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4"
    assert passkey.name == "Google Password Manager"  # a well-known authenticator names itself
    assert passkey.transports == ["internal", "hybrid"] and passkey.last_used_at is None
    event = AuditEvent.objects.get(kind="admin_change", user=mael)
    assert event.details == {"action": "passkey_added", "passkey": passkey.pk, "name": passkey.name}

    unknown_model = SoftAuthenticator(origin=ISSUER, aaguid=bytes(16), backup_eligible=False, backed_up=False)
    second = register(mael, unknown_model)
    assert second.name == "Passkey 2" and second.aaguid == "" and not second.backup_eligible
    assert register(mael, SoftAuthenticator(origin=ISSUER), name="  Mum's   tablet ").name == "Mum's tablet"


def test_a_registration_challenge_is_used_once(mael, authenticator):
    session = Session()
    credential = authenticator.create(passkeys.registration_options(session, mael))
    passkeys.register_passkey(session, mael, credential)
    with pytest.raises(PasskeyError) as replay:
        passkeys.register_passkey(session, mael, copy.deepcopy(credential))
    assert replay.value.reason == "passkey_expired"
    assert Passkey.objects.count() == 1


def test_a_registration_challenge_is_bound_to_its_person(mael, mum, authenticator):
    session = Session()
    credential = authenticator.create(passkeys.registration_options(session, mael))
    with pytest.raises(PasskeyError) as error:
        passkeys.register_passkey(session, mum, credential)
    assert error.value.reason == "passkey_expired" and not Passkey.objects.exists()


def test_a_registration_challenge_expires(mael, authenticator):
    session = Session()
    credential = authenticator.create(passkeys.registration_options(session, mael))
    session[passkeys.REGISTRATION_SESSION_KEY][-1]["expires"] = 0
    with pytest.raises(PasskeyError) as error:
        passkeys.register_passkey(session, mael, credential)
    assert error.value.reason == "passkey_expired"


@pytest.mark.parametrize("case", ["no_user_verification", "other_origin", "other_rp"])
def test_a_registration_that_does_not_verify_is_refused(mael, case):
    session = Session()
    options = passkeys.registration_options(session, mael)
    authenticator = SoftAuthenticator(origin=ISSUER, user_verified=case != "no_user_verification")
    if case == "other_rp":
        options = {**options, "rp": {"id": "evil.example", "name": "x"}}
    credential = authenticator.create(options, origin="http://evil.example:8000" if case == "other_origin" else None)
    with pytest.raises(PasskeyError) as error:
        passkeys.register_passkey(session, mael, credential)
    assert error.value.reason == "passkey_invalid" and not Passkey.objects.exists()


def test_the_same_credential_cannot_be_added_twice(mael, mum, authenticator):
    register(mael, authenticator)
    with pytest.raises(PasskeyError) as error:
        register(mum, authenticator)  # no excludeCredentials for Mum: the hub itself refuses
    assert error.value.reason == "passkey_exists"


def test_garbage_is_refused_without_a_500(mael):
    for credential in (None, "x", {}, {"response": "x"}, {"response": {"clientDataJSON": "!!"}}):
        with pytest.raises(PasskeyError):
            passkeys.register_passkey(Session(), mael, credential)
        with pytest.raises(PasskeyError):
            passkeys.authenticate_passkey(Session(), credential)
    assert refusals() == []  # no pending challenge: nothing audited


# --- signing in ------------------------------------------------------------------------------
def test_a_passkey_signs_its_person_in_and_its_state_is_kept(registered, authenticator, mael):
    session, credential = assertion(authenticator)
    assert passkeys.authenticate_passkey(session, credential) == mael
    registered.refresh_from_db()
    assert registered.sign_count == 1 and registered.last_used_at is not None

    authenticator.backed_up = False  # the backup state follows each use
    session, credential = assertion(authenticator)
    passkeys.authenticate_passkey(session, credential)
    registered.refresh_from_db()
    assert registered.sign_count == 2 and registered.backup_eligible and not registered.backup_state


def test_an_authentication_challenge_is_used_once(registered, authenticator):
    session, credential = assertion(authenticator)
    passkeys.authenticate_passkey(session, credential)
    with pytest.raises(PasskeyError) as replay:
        passkeys.authenticate_passkey(session, copy.deepcopy(credential))
    assert replay.value.reason == "passkey_expired"


def test_the_autofill_request_and_the_button_may_both_be_pending(registered, authenticator):
    session = Session()
    autofill = passkeys.authentication_options(session)
    button = passkeys.authentication_options(session)
    passkeys.authenticate_passkey(session, authenticator.get(button))
    passkeys.authenticate_passkey(session, authenticator.get(autofill))
    for _ in range(10):  # a session keeps a few, never an unbounded list
        passkeys.authentication_options(session)
    assert len(session[passkeys.AUTHENTICATION_SESSION_KEY]) == passkeys.PENDING_CHALLENGES


def test_an_unknown_passkey_is_refused_and_audited(db, people):
    stranger = SoftAuthenticator(origin=ISSUER)
    stranger.rp_id, stranger.user_handle = "localhost", uuid.uuid4().bytes
    session, credential = assertion(stranger)
    with pytest.raises(PasskeyError) as error:
        passkeys.authenticate_passkey(session, credential)
    assert error.value.reason == "passkey_unknown"
    assert refusals() == [("passkey_unknown", None, {"method": "passkey"})]


def test_a_bad_signature_is_refused(registered, authenticator, mael):
    session, credential = assertion(authenticator)
    signature = bytearray(from_b64url(credential["response"]["signature"]))
    signature[-1] ^= 1
    credential["response"]["signature"] = b64url(bytes(signature))
    with pytest.raises(PasskeyError) as error:
        passkeys.authenticate_passkey(session, credential)
    assert error.value.reason == "passkey_invalid"
    assert refusals() == [("passkey_invalid", "mael@example.com", {"method": "passkey"})]
    registered.refresh_from_db()
    assert registered.sign_count == 0 and registered.last_used_at is None


@pytest.mark.parametrize("case", ["no_user_verification", "other_origin", "other_rp", "other_user_handle"])
def test_an_assertion_that_does_not_verify_is_refused(registered, authenticator, case):
    authenticator.user_verified = case != "no_user_verification"
    if case == "other_user_handle":
        authenticator.user_handle = uuid.uuid4().bytes
    session, credential = assertion(authenticator, origin="http://evil.example" if case == "other_origin" else None,
                                    rp_id="evil.example" if case == "other_rp" else None)
    with pytest.raises(PasskeyError) as error:
        passkeys.authenticate_passkey(session, credential)
    assert error.value.reason == "passkey_invalid"


def test_a_counter_that_goes_backwards_is_refused_as_a_possible_clone(registered, authenticator):
    session, credential = assertion(authenticator, sign_count=5)
    passkeys.authenticate_passkey(session, credential)
    for count in (5, 3):  # the same count again, or lower: another copy of the key is being used
        session, credential = assertion(authenticator, sign_count=count)
        with pytest.raises(PasskeyError) as error:
            passkeys.authenticate_passkey(session, credential)
        assert error.value.reason == "passkey_counter"
    registered.refresh_from_db()
    assert registered.sign_count == 5
    assert [r[0] for r in refusals()] == ["passkey_counter", "passkey_counter"]


def test_a_passkey_without_a_counter_always_signs_in(mael):
    synced = SoftAuthenticator(origin=ISSUER, counts=False)  # many synced passkeys always say 0
    register(mael, synced)
    for _ in range(3):
        session, credential = assertion(synced)
        assert passkeys.authenticate_passkey(session, credential) == mael


def test_an_inactive_person_is_refused(registered, authenticator, mael):
    mael.is_active = False
    mael.save()
    session, credential = assertion(authenticator)
    with pytest.raises(PasskeyError) as error:
        passkeys.authenticate_passkey(session, credential)
    assert error.value.reason == "inactive" and "switched off" in error.value.message
    assert refusals() == [("inactive", "mael@example.com", {"method": "passkey"})]


# --- naming and removing ---------------------------------------------------------------------
def test_rename_and_remove_are_audited_without_key_material(registered, mael, neighbour_admin):
    passkeys.rename_passkey(registered, "  Kitchen   tablet ")
    registered.refresh_from_db()
    assert registered.name == "Kitchen tablet"
    passkeys.rename_passkey(registered, "   ")  # an empty name changes nothing
    registered.refresh_from_db()
    assert registered.name == "Kitchen tablet"
    pk = registered.pk
    passkeys.remove_passkey(registered, by=neighbour_admin)
    assert not Passkey.objects.filter(pk=pk).exists()
    events = list(AuditEvent.objects.filter(kind="admin_change", user=mael).order_by("time", "pk")
                  .values_list("details", flat=True))
    assert events[1:] == [
        {"action": "passkey_renamed", "passkey": pk, "name": "Kitchen tablet", "previous": "Maël's phone"},
        {"action": "passkey_removed", "passkey": pk, "name": "Kitchen tablet", "by": neighbour_admin.email},
    ]
    for details in events:
        assert not {"public_key", "credential_id"} & set(details)
        assert registered.credential_id not in str(details)


@pytest.fixture
def neighbour_admin(people):
    return people["outsider"]
