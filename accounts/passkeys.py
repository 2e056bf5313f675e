"""Passkeys (WebAuthn) as plain service functions: options for the browser, verification, storage.

Views call these (accounts/passkey_views.py) and so can other apps (an invitation lets the invitee
create a passkey): every function takes the Django session that holds the ceremony's challenge and
plain JSON-ready dicts, so the browser side is accounts/static/accounts/passkeys.js with any URLs.

- Relying party: its ID is the issuer's host (`settings.HUB_ISSUER`), the origin the issuer's origin.
  Browsers refuse an IP address as RP ID, so on such an issuer passkeys are off (`available()`).
- Credentials are discoverable (resident key required) and user verification is required, at
  creation and at every sign-in: a passkey alone is a complete sign-in.
- The user handle is `user.public_id.bytes` (the stable id that is the OIDC `sub`).
- A challenge lives in the session, bound to its ceremony (and for registration to the person),
  for `CHALLENGE_SECONDS`; a verification takes it out, whatever the outcome (single use).
- Sign-in refusals are audited (`refusal`, reasons passkey_unknown, passkey_invalid,
  passkey_counter, inactive) once a challenge of this session matched, so stray posts leave no
  audit rows. Additions, renames and removals are audited as `admin_change`; no key material ever.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import time
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import generate_challenge, options_to_json_dict
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from identityhub.audit import record_event

from . import selectors
from .models import Passkey, User

REGISTRATION_SESSION_KEY = "hub_passkey_registration"
AUTHENTICATION_SESSION_KEY = "hub_passkey_authentication"
CHALLENGE_SECONDS = 5 * 60  # how long an options answer may be used
TIMEOUT_MS = CHALLENGE_SECONDS * 1000  # the browser's hint
PENDING_CHALLENGES = 4  # per ceremony and session: the autofill request and a button press, two tabs
NAME_MAX_LENGTH = Passkey._meta.get_field("name").max_length

# A few well-known authenticator models (AAGUID → name) for a passkey's default name.
KNOWN_AUTHENTICATORS = {
    "ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4": "Google Password Manager",
    "fbfc3007-154e-4ecc-8c0b-6e020557d7bd": "iCloud Keychain",
    "adce0002-35bc-c60a-648b-0b25f1f05503": "Chrome on Mac",
    "08987058-cadc-4b81-b6e1-30de50dcbe96": "Windows Hello",
    "9ddd1817-af5a-4672-a2b9-3e3dd95000a9": "Windows Hello",
    "6028b017-b1d4-4c02-b4b3-afcdafc96bb2": "Windows Hello",
    "bada5566-a7aa-401f-bd96-45619a55120d": "1Password",
    "d548826e-79b4-db40-a3d8-11116f7e8349": "Bitwarden",
}


class PasskeyError(Exception):
    """A passkey ceremony that did not succeed: `reason` for the audit trail and the code, `message`
    for the person (translated in the active language; English source)."""

    def __init__(self, reason: str, message: str, *, user: User | None = None) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.user = user


# --- the relying party ---------------------------------------------------------------------
def rp_id() -> str:
    """The relying party ID: the issuer's host."""
    return urlsplit(settings.HUB_ISSUER).hostname or ""


def expected_origin() -> str:
    """The origin the browser reports: the issuer's scheme, host and port (never its path)."""
    parts = urlsplit(settings.HUB_ISSUER)
    return f"{parts.scheme}://{parts.netloc}"


def available() -> bool:
    """Passkeys work on this issuer: browsers take a domain name as RP ID, never an IP address."""
    host = rp_id()
    if not host:
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return True
    return False


def any_exist() -> bool:
    """Some passkey exists on the hub (the sign-in page then always offers passkeys)."""
    return Passkey.objects.exists()


# --- encoding ------------------------------------------------------------------------------
def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def from_b64url(value: str) -> bytes:
    if not isinstance(value, str) or not value.isascii():
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as error:
        raise ValueError("not base64url") from error


def _transports(values: Any) -> list[str]:
    known = {t.value for t in AuthenticatorTransport}
    return [v for v in values if isinstance(v, str) and v in known][:8] if isinstance(values, list) else []


# --- challenges in the session ---------------------------------------------------------------
def _remember_challenge(session, key: str, challenge: bytes, **bound: Any) -> None:
    now = int(time.time())
    pending = [c for c in session.get(key, []) if c.get("expires", 0) > now][-(PENDING_CHALLENGES - 1):]
    pending.append({"challenge": b64url(challenge), "expires": now + CHALLENGE_SECONDS, **bound})
    session[key] = pending


def _take_challenge(session, key: str, credential: Any) -> tuple[bytes, dict] | None:
    """The pending challenge this credential answers, taken out of the session (single use)."""
    try:
        client_data = json.loads(from_b64url(credential["response"]["clientDataJSON"]))
        challenge = client_data["challenge"]
    except (KeyError, TypeError, ValueError):
        return None
    if not isinstance(challenge, str):
        return None
    now = int(time.time())
    pending = session.get(key, [])
    match = next((c for c in pending if c.get("challenge") == challenge), None)
    if match is None:
        return None
    session[key] = [c for c in pending if c is not match and c.get("expires", 0) > now]
    if match.get("expires", 0) <= now:
        return None
    return from_b64url(challenge), match


def _expired() -> PasskeyError:
    return PasskeyError("passkey_expired", _("This took too long, or the page was old. Please try again."))


def _invalid(user: User | None = None) -> PasskeyError:
    return PasskeyError("passkey_invalid", _("This passkey could not be checked. Please try again."), user=user)


# --- adding a passkey ------------------------------------------------------------------------
def registration_options(session, user: User) -> dict:
    """Options for `navigator.credentials.create()` (JSON-ready) to add a passkey for `user`; the
    challenge is kept in `session` for `register_passkey`. The person's passkeys are excluded (an
    authenticator that already holds one says so instead of making a second)."""
    challenge = generate_challenge()
    options = generate_registration_options(
        rp_id=rp_id(),
        rp_name=selectors.sign_in_place_name(),
        user_id=user.public_id.bytes,
        user_name=user.email,
        user_display_name=user.name or user.email,
        challenge=challenge,
        timeout=TIMEOUT_MS,
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=[
            PublicKeyCredentialDescriptor(id=from_b64url(p.credential_id),
                                          transports=[AuthenticatorTransport(t) for t in _transports(p.transports)])
            for p in user.passkeys.all()
        ],
    )
    _remember_challenge(session, REGISTRATION_SESSION_KEY, challenge, user=user.pk)
    return options_to_json_dict(options)


def register_passkey(session, user: User, credential: dict, name: str = "") -> Passkey:
    """Verify the browser's answer to `registration_options` (this session's challenge for this
    person, used once) and store the passkey. Raises PasskeyError."""
    taken = _take_challenge(session, REGISTRATION_SESSION_KEY, credential)
    if taken is None or taken[1].get("user") != user.pk:
        raise _expired()
    challenge, _pending = taken
    try:
        verified = verify_registration_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp_id(),
            expected_origin=expected_origin(),
            require_user_verification=True,
        )
    except (WebAuthnException, ValueError, TypeError, KeyError) as error:
        raise PasskeyError("passkey_invalid", _("This passkey could not be added. Please try again.")) from error
    response = credential.get("response") if isinstance(credential, dict) else None
    passkey = Passkey(
        user=user,
        credential_id=b64url(verified.credential_id),
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        name=_clean_name(name) or default_name(user, verified.aaguid),
        transports=_transports(response.get("transports") if isinstance(response, dict) else None),
        aaguid=verified.aaguid if verified.aaguid != "00000000-0000-0000-0000-000000000000" else "",
        backup_eligible=verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE,
        backup_state=verified.credential_backed_up,
    )
    try:
        with transaction.atomic():
            passkey.save()
    except IntegrityError as error:
        raise PasskeyError("passkey_exists", _("This passkey is already added.")) from error
    record_event("admin_change", user=user, action="passkey_added", passkey=passkey.pk, name=passkey.name)
    return passkey


def default_name(user: User, aaguid: str = "") -> str:
    """The authenticator's model when it is a well-known one, else "Passkey 2", "Passkey 3", …"""
    known = KNOWN_AUTHENTICATORS.get(aaguid)
    if known:
        return known
    count = user.passkeys.count()
    return _("Passkey") if count == 0 else _("Passkey %(number)d") % {"number": count + 1}


def _clean_name(name: Any) -> str:
    if not isinstance(name, str):
        return ""
    return " ".join(name.split())[:NAME_MAX_LENGTH]


# --- signing in -------------------------------------------------------------------------------
def authentication_options(session) -> dict:
    """Options for `navigator.credentials.get()` (JSON-ready): any discoverable passkey of this
    hub (no allowCredentials), user verification required; the challenge is kept in `session`."""
    challenge = generate_challenge()
    options = generate_authentication_options(
        rp_id=rp_id(), challenge=challenge, timeout=TIMEOUT_MS,
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    _remember_challenge(session, AUTHENTICATION_SESSION_KEY, challenge)
    answer = options_to_json_dict(options)
    answer.pop("allowCredentials", None)  # discoverable: the authenticator offers what it holds
    return answer


def authenticate_passkey(session, credential: dict) -> User:
    """Verify the browser's answer to `authentication_options` and return the person it signs in.

    Updates the sign counter, the backup flags and when it was last used. Raises PasskeyError:
    passkey_expired (no pending challenge of this session: not audited), passkey_unknown (no such
    passkey: removed, or another hub's), passkey_invalid (bad signature, origin, user handle, no
    user verification), passkey_counter (the counter went backwards: possibly a cloned
    authenticator), inactive (the person may not sign in)."""
    taken = _take_challenge(session, AUTHENTICATION_SESSION_KEY, credential)
    if taken is None:
        raise _expired()
    challenge, _pending = taken
    try:
        return _verify_and_use(credential, challenge)
    except PasskeyError as refusal:
        record_event("refusal", reason=refusal.reason, user=refusal.user, method="passkey")
        raise


def _verify_and_use(credential: dict, challenge: bytes) -> User:
    try:
        credential_id = b64url(from_b64url(credential["id"]))  # as stored: unpadded base64url
    except (KeyError, TypeError, ValueError):
        raise _invalid() from None
    if not credential_id:
        raise _invalid()
    passkey = Passkey.objects.select_related("user").filter(credential_id=credential_id).first()
    if passkey is None:
        raise PasskeyError("passkey_unknown", _(
            "This passkey is not known here: it may have been removed. Sign in another way, or add it again "
            "from your account page."))
    user = passkey.user
    response = credential.get("response")
    user_handle = response.get("userHandle") if isinstance(response, dict) else None
    if user_handle:  # optional in the answer; when given it must be this person's
        try:
            if from_b64url(user_handle) != user.public_id.bytes:
                raise _invalid(user)
        except ValueError:
            raise _invalid(user) from None
    try:
        verified = verify_authentication_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp_id(),
            expected_origin=expected_origin(),
            credential_public_key=bytes(passkey.public_key),
            credential_current_sign_count=0,  # compared below, after the signature is known good
            require_user_verification=True,
        )
    except (WebAuthnException, ValueError, TypeError, KeyError) as error:
        raise _invalid(user) from error
    if (verified.new_sign_count or passkey.sign_count) and verified.new_sign_count <= passkey.sign_count:
        raise PasskeyError("passkey_counter", _(
            "This passkey cannot be trusted any more (its counter went backwards, which happens when a passkey "
            "is copied). Sign in another way and remove it, or ask your household admin."), user=user)
    passkey.sign_count = verified.new_sign_count
    passkey.backup_eligible = verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE
    passkey.backup_state = verified.credential_backed_up
    passkey.last_used_at = timezone.now()
    passkey.save(update_fields=["sign_count", "backup_eligible", "backup_state", "last_used_at"])
    if not user.is_active:
        raise PasskeyError("inactive", _(
            "Your account on this hub is switched off, so you cannot sign in. Ask your household admin."), user=user)
    return user


# --- naming and removing ----------------------------------------------------------------------
def rename_passkey(passkey: Passkey, name: str) -> None:
    """Give the passkey a name the person recognises ("Mum's phone"); an empty name changes nothing."""
    cleaned = _clean_name(name)
    if not cleaned or cleaned == passkey.name:
        return
    previous, passkey.name = passkey.name, cleaned
    passkey.save(update_fields=["name"])
    record_event("admin_change", user=passkey.user, action="passkey_renamed", passkey=passkey.pk,
                 name=cleaned, previous=previous)


def remove_passkey(passkey: Passkey, *, by: User | None) -> None:
    """Remove the passkey (by the person, or by a household admin or operator in the console): it
    signs no one in any more. The authenticator keeps its copy until the person deletes it there."""
    user, pk, name = passkey.user, passkey.pk, passkey.name
    passkey.delete()
    details = {"action": "passkey_removed", "passkey": pk, "name": name}
    if by is not None and by.pk != user.pk:
        details["by"] = by.email
    record_event("admin_change", user=user, **details)
