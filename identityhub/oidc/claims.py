"""The claims a client receives, by scope. One function feeds the ID token, userinfo and `hub claims`."""

from __future__ import annotations

from collections.abc import Iterable

from .policy import AccessDecision

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
