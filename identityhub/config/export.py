"""`hub export`: the database as a config file, with every secret replaced by a `${VAR}` placeholder.

Exported values are escaped for interpolation (`$` -> `$$`), so the file reads back as the
database holds it. What a config file cannot express is left out and said so in a comment:
inactive people, operators in no household (a bootstrap superuser), clients without households or
redirect URIs, and non-authorization-code clients.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from django.conf import settings
from oauth2_provider.models import Application

from accounts.models import Household, Membership, Upstream, User
from synology.models import NAS, AccountMapping

from .load import STR_TAG
from .schema import format_duration


def env_name(*parts: str) -> str:
    name = re.sub(r"[^A-Za-z0-9]+", "_", "_".join(parts)).strip("_").upper()
    return name if re.match(r"^[A-Z_]", name) else f"X_{name}"


class _Dumper(yaml.SafeDumper):
    """Indented lists; strings quoted whenever another YAML reader could take them for something else."""

    def increase_indent(self, flow: bool = False, indentless: bool = False):
        return super().increase_indent(flow, False)


class _Quoted(str):
    """A string always written in double quotes (claim constants: `"1e5"` must not read back as a number)."""


_Dumper.add_representer(_Quoted, lambda dumper, value: dumper.represent_scalar(STR_TAG, value, style='"'))


def _esc(value: str) -> str:
    return value.replace("$", "$$")


def export_config() -> tuple[str, list[str]]:
    """(YAML text, names of the environment variables its placeholders need)."""
    variables: list[str] = []
    skipped: list[str] = []

    def placeholder(*parts: str) -> str:
        name = base = env_name(*parts)
        suffix = 2
        while name in variables:
            name, suffix = f"{base}_{suffix}", suffix + 1
        variables.append(name)
        return "${" + name + "}"

    data: dict[str, Any] = {"version": 1, "issuer": _esc(settings.HUB_ISSUER)}

    upstreams = []
    for u in Upstream.objects.order_by("position", "id"):
        item: dict[str, Any] = {"id": u.pk, "type": u.type}
        if u.name:
            item["name"] = _esc(u.name)
        if u.issuer:
            item["issuer"] = _esc(u.issuer)
        if u.client_id:
            item["client_id"] = _esc(u.client_id)
        if u.client_secret:
            item["client_secret"] = placeholder(u.pk, "client_secret")
        if u.allowed_domains:
            item["allowed_domains"] = [_esc(d) for d in u.allowed_domains]
        upstreams.append(item)
    data["upstreams"] = upstreams

    households = []
    members: dict[str, list[Membership]] = {}
    for m in Membership.objects.select_related("user").order_by("user__email"):
        members.setdefault(m.household_id, []).append(m)
    for h in Household.objects.order_by("id"):
        listed = []
        for m in members.get(h.pk, []):
            if not m.user.is_active:
                skipped.append(f"{m.user.email} in household {h.pk}: the person is deactivated")
                continue
            entry: dict[str, Any] = {"email": _esc(m.user.email)}
            if m.user.name:
                entry["name"] = _esc(m.user.name)
            if m.role != Membership.Role.MEMBER:
                entry["role"] = m.role
            listed.append(entry)
        households.append({"id": h.pk, "name": _esc(h.name), "members": listed})
    data["households"] = households

    # Operators: active superusers listed in an exported household (a config may only name those).
    exported_people = {m.user.email for listed in members.values() for m in listed if m.user.is_active}
    operators = []
    for user in User.objects.filter(is_superuser=True, is_active=True).order_by("email"):
        if user.email in exported_people:
            operators.append(_esc(user.email))
        else:
            skipped.append(f"{user.email}: an operator in no household (e.g. made with createsuperuser)")
    if operators:
        data["operators"] = operators

    nases = []
    mappings: dict[str, dict[str, str]] = {}
    for mapping in AccountMapping.objects.order_by("email"):
        mappings.setdefault(mapping.nas_id, {})[_esc(mapping.email)] = _esc(mapping.account_name)
    for n in NAS.objects.order_by("id"):
        item = {"id": n.pk}
        if n.name:
            item["name"] = _esc(n.name)
        item["household"] = n.household_id
        item["url"] = _esc(n.base_url)
        item["verify_tls"] = _esc(n.ca_file) if n.ca_file else n.verify_tls
        if n.service_username or n.service_password:
            item["service_account"] = {"username": _esc(n.service_username)}
            if n.service_password:
                item["service_account"]["password"] = placeholder(n.pk, "service_password")
        item["sync_interval"] = format_duration(n.sync_interval)
        if not n.enabled:
            item["enabled"] = False
        if n.new_account_groups:
            item["new_account_groups"] = [_esc(group) for group in n.new_account_groups]
        if mappings.get(n.pk):
            item["accounts"] = mappings[n.pk]
        nases.append(item)
    data["nas"] = nases

    clients = []
    for a in Application.objects.select_related("profile", "profile__nas").order_by("client_id"):
        profile = getattr(a, "profile", None)
        household_ids = sorted(profile.households.values_list("pk", flat=True)) if profile else []
        if a.authorization_grant_type != Application.GRANT_AUTHORIZATION_CODE:
            skipped.append(f"client {a.client_id}: grant type {a.authorization_grant_type}")
            continue
        if not a.redirect_uris.split():
            skipped.append(f"client {a.client_id}: no redirect URIs")
            continue
        if profile is None or (not profile.nas_id and not household_ids):
            skipped.append(f"client {a.client_id}: no NAS and no households (nobody may use it)")
            continue
        item = {"client_id": _esc(a.client_id)}
        if a.name and a.name != a.client_id:
            item["name"] = _esc(a.name)
        if a.client_type == Application.CLIENT_CONFIDENTIAL:
            item["client_secret"] = placeholder(a.client_id, "client_secret")
        item["redirect_uris"] = [_esc(uri) for uri in a.redirect_uris.split()]
        if a.post_logout_redirect_uris.split():
            item["post_logout_redirect_uris"] = [_esc(uri) for uri in a.post_logout_redirect_uris.split()]
        if profile.backchannel_logout_uri:
            item["backchannel_logout_uri"] = _esc(profile.backchannel_logout_uri)
        if profile.nas_id:
            item["nas"] = profile.nas_id
        if household_ids:
            item["households"] = household_ids
        item["skip_consent"] = a.skip_authorization
        if profile.extra_claims:
            item["claims"] = _escape_claims(profile.extra_claims)
        clients.append(item)
    data["clients"] = clients

    body = yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False, width=120)
    header = ["# Identity Hub configuration, exported by `hub export`.", "#"]
    if variables:
        header.append("# Secrets are not exported. Set these environment variables before `hub apply`:")
        header += [f"#   {name}" for name in variables]
    else:
        header.append("# No secrets to set.")
    if skipped:
        header += ["#", "# Not exported (a config file cannot express them):"]
        header += [f"#   {line}" for line in skipped]
    return "\n".join(header) + "\n" + body, variables


def _escape_claims(rules: dict) -> dict:
    def escape(value: Any) -> Any:
        if isinstance(value, str):
            return _Quoted(_esc(value))
        if isinstance(value, list):
            return [escape(v) for v in value]
        if isinstance(value, dict):
            return {k: escape(v) for k, v in value.items()}
        return value

    return {name: escape(rule) for name, rule in sorted(rules.items())}
