"""The claims a client receives, by scope. One function feeds the ID token, userinfo and `hub claims`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .policy import AccessDecision, Refusal, check_access

# claim -> the scope that releases it. `username` rides on `openid` alone: DSM asks for it
# with whatever scopes its admin typed, and the claim is the whole point of a DSM client.
CLAIM_SCOPES: dict[str, str] = {
    "sub": "openid",
    "username": "openid",
    "preferred_username": "openid",
    "email": "email",
    "email_verified": "email",
    "name": "profile",
    "groups": "groups",
}
SUPPORTED_CLAIMS = sorted(CLAIM_SCOPES)


def build_claims(user, decision: AccessDecision, scopes: Iterable[str], application=None) -> dict:
    """Userinfo claims (no iss/aud/exp/nonce) for an allowed decision."""
    scopes = set(scopes)
    claims: dict = {"sub": str(user.public_id)}
    if decision.dsm_username is not None:
        claims["username"] = decision.dsm_username
        claims["preferred_username"] = decision.dsm_username
    if "email" in scopes:
        claims["email"] = user.email
        claims["email_verified"] = True  # only verified emails ever link a person
    if "profile" in scopes and user.name:
        claims["name"] = user.name
    if "groups" in scopes:
        claims["groups"] = sorted(decision.household_roles)
    if application is not None:
        claims.update(extra_claims(user, decision, scopes, application))
    return claims


def extra_claims(user, decision: AccessDecision, scopes: set[str], application) -> dict:
    """Per-client extra claims declared in the config (identityhub.config extends this vocabulary)."""
    profile = getattr(application, "profile", None)
    rules = getattr(profile, "extra_claims", None) or {}
    if not rules:
        return {}
    from identityhub.config.claims import evaluate_extra_claims

    return evaluate_extra_claims(rules, user=user, decision=decision, scopes=scopes)


# Claims every ID token carries whose values belong to one sign-in (DOT and oauthlib set them);
# `nonce` only when the client sent one.
PER_SIGN_IN_CLAIMS = ("exp", "iat", "auth_time", "jti", "at_hash", "nonce", "sid")


@dataclass(frozen=True)
class ClaimsPreview:
    """What `application` would be told about `user` for `scopes`, or why the person is refused."""

    scopes: tuple[str, ...]
    refusal: Refusal | None = None
    userinfo: dict = field(default_factory=dict)
    id_token: dict = field(default_factory=dict)  # without PER_SIGN_IN_CLAIMS

    @property
    def allowed(self) -> bool:
        return self.refusal is None


def all_scopes() -> list[str]:
    """Every scope a client may request (the default of `hub claims` and of the console's preview)."""
    from django.conf import settings

    return list(settings.OAUTH2_PROVIDER["SCOPES"])


def issuer() -> str:
    """The issuer the discovery document and every ID token name."""
    from django.conf import settings
    from oauth2_provider.settings import oauth2_settings

    return (oauth2_settings.OIDC_ISS_ENDPOINT or settings.HUB_ISSUER).rstrip("/")


def preview_claims(user, application, scopes: Iterable[str] | None = None) -> ClaimsPreview:
    """The policy decision and the claims of the ID token and of userinfo — the same functions the
    token and userinfo endpoints call (`check_access`, `build_claims`). Behind `hub claims` and the
    console's claims preview."""
    scopes = tuple(scopes) if scopes is not None else tuple(all_scopes())
    decision = check_access(user, application)
    if not decision.allowed:
        return ClaimsPreview(scopes=scopes, refusal=decision.refusal)
    userinfo = build_claims(user, decision, scopes, application)
    id_token = {**userinfo, "iss": issuer(), "aud": application.client_id}
    return ClaimsPreview(scopes=scopes, userinfo=userinfo, id_token=id_token)
