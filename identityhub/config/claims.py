"""Per-client extra claims: a small vocabulary, evaluated without executing anything from the file.

A rule is `{"value": <name>}` or `{"const": <JSON scalar or list>}`, optionally with
`"scope": <scope>` (released only when the client was granted that scope). Rules that are
malformed or name a reserved claim are skipped here; `hub check` rejects them up front.
"""

from __future__ import annotations

from typing import Any

from .schema import CLAIM_VALUES

_MISSING = object()


def _value(name: str, user, decision) -> Any:
    if name == "person.email":
        return user.email
    if name == "person.name":
        return user.name or _MISSING
    if name == "person.id":
        return str(user.public_id)
    if name == "nas.username":
        return decision.dsm_username if decision.dsm_username is not None else _MISSING
    roles: dict[str, str] = dict(decision.household_roles or {})
    if name == "households":
        return sorted(roles)
    if name == "household_roles":
        return dict(sorted(roles.items()))
    if name == "admin_of":
        return sorted(household for household, role in roles.items() if role == "admin")
    return _MISSING


def evaluate_extra_claims(rules: dict, *, user, decision, scopes: set[str]) -> dict:
    """The extra claims `rules` release to a client for `user` with the granted `scopes`."""
    from .validate import RESERVED_CLAIMS

    claims: dict[str, Any] = {}
    if not isinstance(rules, dict):
        return claims
    for name, rule in sorted(rules.items()):
        if not isinstance(name, str) or name in RESERVED_CLAIMS or not isinstance(rule, dict):
            continue
        scope = rule.get("scope")
        if scope is not None and scope not in scopes:
            continue
        if "value" in rule:
            if rule["value"] not in CLAIM_VALUES:
                continue
            value = _value(rule["value"], user, decision)
            if value is not _MISSING:
                claims[name] = value
        elif "const" in rule:
            claims[name] = rule["const"]
    return claims


def rule_to_json(rule) -> dict:
    """A validated ClaimRuleSpec as stored in ClientProfile.extra_claims."""
    stored: dict[str, Any] = {"value": rule.value} if rule.value is not None else {"const": rule.const}
    if rule.scope is not None:
        stored["scope"] = rule.scope
    return stored
