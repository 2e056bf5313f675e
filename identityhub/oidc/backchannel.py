"""Signing out everywhere: OpenID Connect Back-Channel Logout 1.0.

Each code exchange records which client got tokens in which hub session (`ClientSession`: user,
client, `sid` — the ID token's claim). When the session ends — RP-initiated logout at `/logout/`,
the hub's own `/sign-out/` —, when the person signs out everywhere (`/account/`, the console), is
deactivated or leaves a household, `sign_out_everywhere` revokes the tokens of those clients,
forgets the sessions, and queues one Celery job per client session whose client registered a
`backchannel_logout_uri`: it POSTs a signed logout token (`tasks.send_logout_token`), retried a
bounded number of times, each outcome in the audit trail.

How the events reach this module without accounts importing the provider: `connect_receivers()`
(called by `OidcConfig.ready`) connects to accounts' `sign_out_requested` signal, Membership
post_delete and User post_save/pre_delete; the database-triggered ones act after the commit
(`transaction.on_commit`), so a rolled-back change sends nothing.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial

import requests
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models.signals import post_delete, post_save, pre_delete
from django.utils import timezone
from jwcrypto import jwt
from oauth2_provider.models import AccessToken, Application, Grant, RefreshToken
from oauth2_provider.settings import oauth2_settings

from accounts.hub_session import sign_out_requested
from accounts.models import Membership
from identityhub.audit import record_event

from . import keys
from .models import ClientProfile, ClientSession, RedeemedCode
from .policy import check_access
from .validator import revoke_redeemed

log = logging.getLogger(__name__)

LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_TYPE = "logout+jwt"
LOGOUT_TOKEN_LIFETIME = 120  # seconds; a fresh token (new jti, iat, exp) is made for each attempt
TIMEOUT = (3, 5)  # connect, read (seconds)
RETRY_COUNTDOWNS = (10, 60, 300)  # after the first attempt: at most 4 attempts in about 6 minutes


# --- ending client sessions -----------------------------------------------------------------------
def sign_out_everywhere(user, *, sid: str | None = None, applications: Iterable[Application] | None = None,
                        reason: str) -> int:
    """End the person's client sessions — those of one hub session (`sid`), of some clients
    (`applications`), or all — and return how many were ended.

    Revokes the tokens those clients hold (with a `sid`: the tokens that came from codes of that
    session; otherwise every token of the person for those clients) and the codes not yet redeemed,
    deletes the `ClientSession` rows and, after the commit, queues one logout-token delivery per
    ended session whose client has a `backchannel_logout_uri`.
    """
    app_ids = None if applications is None else {a.pk for a in applications}
    if app_ids is not None and not app_ids:
        return 0
    with transaction.atomic():
        sessions = ClientSession.objects.filter(user=user)
        if sid is not None:
            sessions = sessions.filter(sid=sid)
        if app_ids is not None:
            sessions = sessions.filter(application_id__in=app_ids)
        ended = list(sessions.values_list("pk", "application_id", "sid"))
        _revoke_tokens(user, sid=sid, app_ids=app_ids)
        if ended:
            ClientSession.objects.filter(pk__in=[pk for pk, _app, _sid in ended]).delete()
        clients = dict(Application.objects.filter(pk__in={app for _pk, app, _sid in ended})
                       .values_list("pk", "client_id"))
        with_uri = set(ClientProfile.objects.filter(application_id__in=clients).exclude(backchannel_logout_uri="")
                       .values_list("application_id", flat=True))
        for _pk, app_id, session_sid in ended:
            client_id = clients.get(app_id, "")
            notify = app_id in with_uri
            record_event("token_revoked", reason=reason, user=user, client_id=client_id,
                         backchannel="queued" if notify else "not_registered")
            if notify:
                queue_delivery(client_id, user_id=user.pk, sub=str(user.public_id), sid=session_sid, reason=reason)
    return len(ended)


def _revoke_tokens(user, *, sid: str | None, app_ids: set[int] | None) -> None:
    if sid is not None:
        # Only what this hub session produced: another device's session with the same client stays.
        codes = RedeemedCode.objects.filter(sid=sid)
        if app_ids is not None:
            codes = codes.filter(application_id__in=app_ids)
        for redeemed in codes:
            revoke_redeemed(redeemed)
        Grant.objects.filter(user=user, claims__contains=sid).delete()
        return
    scope = {} if app_ids is None else {"application_id__in": app_ids}
    AccessToken.objects.filter(user=user, **scope).delete()
    RefreshToken.objects.filter(user=user, revoked__isnull=True, **scope).update(revoked=timezone.now())
    Grant.objects.filter(user=user, **scope).delete()


def sign_out_disallowed(user, *, reason: str) -> int:
    """After a change of the person's households: end the sessions (and tokens) of every client
    they may no longer use, by the access policy; the others stay signed in."""
    candidates = (set(ClientSession.objects.filter(user=user).values_list("application_id", flat=True))
                  | set(RefreshToken.objects.filter(user=user, revoked__isnull=True)
                        .values_list("application_id", flat=True)))
    if not candidates:
        return 0
    applications = Application.objects.select_related("profile").filter(pk__in=candidates)
    refused = [a for a in applications if not check_access(user, a).allowed]
    return sign_out_everywhere(user, applications=refused, reason=reason) if refused else 0


# --- logout tokens --------------------------------------------------------------------------------
def queue_delivery(client_id: str, *, user_id: int | None, sub: str, sid: str, reason: str) -> None:
    """Queue the delivery once the current transaction commits (at once outside one)."""
    from .tasks import send_logout_token

    transaction.on_commit(partial(send_logout_token.delay, client_id, sub=sub, sid=sid, user_id=user_id,
                                  reason=reason), robust=True)


def issuer() -> str:
    return (oauth2_settings.OIDC_ISS_ENDPOINT or "").rstrip("/")


def make_logout_token(client_id: str, *, sub: str, sid: str) -> str:
    """A logout token (Back-Channel Logout 1.0 §2.4): RS256 with the active key, `kid` and
    `typ: logout+jwt`; iss, aud, iat, exp (short), jti, events, sub and sid; never a nonce."""
    ring = keys.keyring()
    now = int(time.time())
    claims = {
        "iss": issuer(), "aud": client_id, "iat": now, "exp": now + LOGOUT_TOKEN_LIFETIME,
        "jti": secrets.token_urlsafe(16), "events": {LOGOUT_EVENT: {}}, "sub": sub, "sid": sid,
    }
    token = jwt.JWT(header={"alg": "RS256", "typ": LOGOUT_TOKEN_TYPE, "kid": ring.kid}, claims=claims)
    token.make_signed_token(ring.active)
    return token.serialize()


@dataclass(frozen=True)
class DeliveryResult:
    outcome: str  # delivered | failed | skipped
    retry: bool = False  # worth another attempt (network error, timeout, 5xx, 429)
    status: int | None = None
    detail: str = ""


def deliver(client_id: str, *, sub: str, sid: str) -> DeliveryResult:
    """One attempt: POST a fresh logout token to the client's back-channel logout URI (read now,
    so a corrected URI is used by the next attempt). Redirects are never followed; only a 2xx counts."""
    uri = (ClientProfile.objects.filter(application__client_id=client_id)
           .values_list("backchannel_logout_uri", flat=True).first())
    if not uri:
        return DeliveryResult("skipped", detail="no backchannel_logout_uri (client removed or changed)")
    try:
        response = requests.post(
            uri, data={"logout_token": make_logout_token(client_id, sub=sub, sid=sid)}, timeout=TIMEOUT,
            allow_redirects=False, stream=True,  # the body is never read
            headers={"Accept": "application/json", "Cache-Control": "no-store"},
        )
    except requests.Timeout:
        return DeliveryResult("failed", retry=True, detail="timed out")
    except requests.RequestException as error:
        return DeliveryResult("failed", retry=True, detail=f"{type(error).__name__}: {error}"[:300])
    status = response.status_code
    response.close()
    if 200 <= status < 300:
        return DeliveryResult("delivered", status=status)
    if 300 <= status < 400:
        return DeliveryResult("failed", status=status, detail="redirect not followed")
    return DeliveryResult("failed", retry=status >= 500 or status == 429, status=status, detail=f"HTTP {status}")


def record_delivery(result: DeliveryResult, *, client_id: str, user_id: int | None, reason: str,
                    attempts: int) -> None:
    user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    details = {"backchannel": result.outcome, "attempts": attempts}
    if result.status is not None:
        details["status"] = result.status
    if result.detail:
        details["error"] = result.detail
    record_event("token_revoked", reason=reason, user=user, client_id=client_id, **details)
    if result.outcome == "failed":
        log.warning("back-channel logout to %s failed after %d attempts: %s", client_id, attempts, result.detail)


# --- what triggers it -----------------------------------------------------------------------------
def _on_sign_out_requested(sender, *, user, sid=None, reason: str, **kwargs) -> int:
    return sign_out_everywhere(user, sid=sid, reason=reason)


def _on_membership_deleted(sender, instance: Membership, **kwargs) -> None:
    user_id = instance.user_id

    def after_commit() -> None:
        user = get_user_model().objects.filter(pk=user_id).first()
        if user is not None:
            sign_out_disallowed(user, reason="left_household")

    transaction.on_commit(after_commit)


def _on_user_saved(sender, instance, created: bool = False, update_fields=None, **kwargs) -> None:
    if created or instance.is_active or (update_fields is not None and "is_active" not in update_fields):
        return
    user_id = instance.pk

    def after_commit() -> None:
        user = get_user_model().objects.filter(pk=user_id, is_active=False).first()
        if user is not None:
            sign_out_everywhere(user, reason="deactivated")

    transaction.on_commit(after_commit)


def _on_user_deleted(sender, instance, **kwargs) -> None:
    """A deleted person's tokens and sessions go with the row (cascade): tell the clients first."""
    sessions = ClientSession.objects.filter(user=instance).exclude(
        application__profile__backchannel_logout_uri="").values_list("application__client_id", "sid")
    for client_id, sid in sessions:
        queue_delivery(client_id, user_id=None, sub=str(instance.public_id), sid=sid, reason="deleted")


def connect_receivers() -> None:
    user_model = get_user_model()
    sign_out_requested.connect(_on_sign_out_requested, dispatch_uid="oidc.backchannel.sign_out")
    post_delete.connect(_on_membership_deleted, sender=Membership, dispatch_uid="oidc.backchannel.membership")
    post_save.connect(_on_user_saved, sender=user_model, dispatch_uid="oidc.backchannel.user_saved")
    pre_delete.connect(_on_user_deleted, sender=user_model, dispatch_uid="oidc.backchannel.user_deleted")
