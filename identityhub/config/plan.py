"""The difference between a config file and the database, per object and field.

`build_plan` reads only. Its output is the contract of `hub plan` (see ../shared/DESIGN.md):
`+ client ds923-dsm`, `~ nas ds923: sync_interval, service_account.password (secret changed)`,
`- household x`, `~ operators: +mael@example.com -old@example.com` (the operator set is one object,
always a change), then `Plan: 1 to create, 1 to change, 0 to remove.` or `No changes.`. Secrets
are compared (decrypted, or against DOT's hash) and never shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.contrib.auth.hashers import check_password
from django.db.models import Q
from oauth2_provider.models import Application

from accounts.models import Household, Membership, Upstream, User, normalize_domain, normalize_email
from accounts.services import links_dropped_by
from synology.models import NAS, AccountMapping

from .claims import rule_to_json
from .errors import ConfigError, Problem
from .load import LoadedConfig, PathKey
from .validate import ca_path

KINDS = ("upstream", "household", "person", "operators", "nas", "client")


# --- what the file wants, normalised the way the services store it ------------------------------
@dataclass
class UpstreamWant:
    id: str
    type: str
    name: str
    issuer: str
    client_id: str
    client_secret: str
    allowed_domains: list[str]
    position: int
    path: PathKey


@dataclass
class PersonWant:
    email: str
    name: str  # "" = keep whatever the database has
    path: PathKey


@dataclass
class HouseholdWant:
    id: str
    name: str
    members: dict[str, str]  # email -> role
    path: PathKey


@dataclass
class OperatorsWant:
    emails: list[str]  # sorted, normalised; exactly these managed people are superusers
    path: PathKey


@dataclass
class NASWant:
    id: str
    name: str
    household: str
    base_url: str
    verify_tls: bool
    ca_file: str
    service_username: str
    service_password: str
    sync_interval: timedelta
    enabled: bool
    accounts: dict[str, str]
    new_account_groups: list[str]
    path: PathKey


@dataclass
class ClientWant:
    client_id: str
    name: str
    client_secret: str | None  # None: public client
    redirect_uris: list[str]
    post_logout_redirect_uris: list[str]
    backchannel_logout_uri: str
    nas: str | None
    households: list[str]  # [] = the bound NAS's household
    skip_consent: bool
    claims: dict
    path: PathKey


@dataclass
class Desired:
    upstreams: list[UpstreamWant] = field(default_factory=list)
    people: list[PersonWant] = field(default_factory=list)
    households: list[HouseholdWant] = field(default_factory=list)
    operators: OperatorsWant = field(default_factory=lambda: OperatorsWant([], ("operators",)))
    nases: list[NASWant] = field(default_factory=list)
    clients: list[ClientWant] = field(default_factory=list)

    def person_name(self, email: str) -> str:
        return next((p.name for p in self.people if p.email == email), "")


def desired_state(loaded: LoadedConfig) -> Desired:
    config = loaded.config
    desired = Desired()
    for i, u in enumerate(config.upstreams):
        desired.upstreams.append(
            UpstreamWant(
                id=u.id, type=u.type, name=u.name, issuer=(u.issuer or "").rstrip("/"), client_id=u.client_id,
                client_secret=u.client_secret or "",
                allowed_domains=sorted({normalize_domain(d) for d in u.allowed_domains}), position=i,
                path=("upstreams", i, "id"),
            )
        )
    people: dict[str, PersonWant] = {}
    for i, h in enumerate(config.households):
        members: dict[str, str] = {}
        for j, m in enumerate(h.members):
            email = normalize_email(m.email)
            members[email] = m.role
            person = people.setdefault(email, PersonWant(email, "", ("households", i, "members", j, "email")))
            person.name = person.name or m.name
        desired.households.append(HouseholdWant(h.id, h.name or h.id, members, ("households", i, "id")))
    desired.people = list(people.values())
    desired.operators = OperatorsWant(sorted({normalize_email(e) for e in config.operators}), ("operators",))
    for i, n in enumerate(config.nas):
        tls = n.verify_tls
        desired.nases.append(
            NASWant(
                id=n.id, name=n.name, household=n.household, base_url=n.url.rstrip("/"),
                verify_tls=tls if isinstance(tls, bool) else True,
                ca_file=str(ca_path(loaded, tls)) if isinstance(tls, str) else "",
                service_username=n.service_account.username if n.service_account else "",
                service_password=(n.service_account.password or "") if n.service_account else "",
                sync_interval=n.sync_interval, enabled=n.enabled,
                accounts={normalize_email(e): a for e, a in n.accounts.items()}, path=("nas", i, "id"),
                new_account_groups=list(n.new_account_groups),
            )
        )
    for i, c in enumerate(config.clients):
        desired.clients.append(
            ClientWant(
                client_id=c.client_id, name=c.name or c.client_id, client_secret=c.client_secret,
                redirect_uris=list(dict.fromkeys(c.redirect_uris)),
                post_logout_redirect_uris=list(dict.fromkeys(c.post_logout_redirect_uris)),
                backchannel_logout_uri=c.backchannel_logout_uri,
                nas=c.nas, households=sorted(set(c.households or [])), skip_consent=c.skip_consent,
                claims={name: rule_to_json(rule) for name, rule in c.claims.items()}, path=("clients", i, "client_id"),
            )
        )
    return desired


# --- the plan -------------------------------------------------------------------------------------
@dataclass
class Change:
    action: str  # "+" create, "~" change, "-" remove
    kind: str
    key: str
    fields: list[str] = field(default_factory=list)
    note: str = ""
    path: PathKey = ()
    want: Any = None  # the *Want for creates and changes
    adopt: bool = False

    def __str__(self) -> str:
        if self.action == "~" and not self.key:  # a singleton: `~ operators: +a@x -b@y`
            return f"~ {self.kind}: {', '.join(self.fields)}"
        if self.action == "~":
            return f"~ {self.kind} {self.key}: {', '.join(self.fields)}"
        if self.note:
            return f"{self.action} {self.kind} {self.key} ({self.note})"
        return f"{self.action} {self.kind} {self.key}"


@dataclass
class Plan:
    changes: list[Change]
    desired: Desired

    def count(self, action: str) -> int:
        return sum(1 for c in self.changes if c.action == action)

    @property
    def has_changes(self) -> bool:
        return bool(self.changes)

    def summary(self) -> str:
        if not self.changes:
            return "No changes."
        return f"Plan: {self.count('+')} to create, {self.count('~')} to change, {self.count('-')} to remove."

    def lines(self) -> list[str]:
        return [str(c) for c in self.changes] + [self.summary()]

    def of(self, kind: str, action: str | None = None) -> list[Change]:
        return [c for c in self.changes if c.kind == kind and (action is None or c.action == action)]


def _secret_note(old: str, new: str) -> str | None:
    if old == new:
        return None
    if not old:
        return "secret added"
    if not new:
        return "secret removed"
    return "secret changed"


def _diff(current: dict, wanted: dict) -> list[str]:
    return [name for name, value in wanted.items() if current.get(name) != value]


def _members_note(current: dict[str, str], wanted: dict[str, str]) -> str | None:
    parts = [f"+ {e}" for e in wanted if e not in current]
    parts += [f"- {e}" for e in current if e not in wanted]
    parts += [f"~ {e} role" for e in wanted if e in current and current[e] != wanted[e]]
    return f"members ({', '.join(parts)})" if parts else None


def _operators_note(current: list[str], wanted: list[str]) -> str | None:
    parts = [f"+{e}" for e in wanted if e not in current] + [f"-{e}" for e in current if e not in wanted]
    return " ".join(parts) or None


def _issuer_note(fields: list[str], dropped: int) -> list[str]:
    """A changed issuer drops the upstream's sign-in links (they are bound to it): say how many."""
    if not dropped:
        return fields
    note = f"issuer (its {dropped} sign-in link{'s' if dropped != 1 else ''} will be dropped)"
    if "issuer" in fields:
        return [note if f == "issuer" else f for f in fields]
    return [*fields, note]  # the type changed the effective issuer (google <-> oidc)


def _accounts_note(current: dict[str, tuple[str, bool]], wanted: dict[str, str]) -> str | None:
    parts = [f"+ {e}" for e in wanted if e not in current]
    parts += [f"- {e}" for e in current if e not in wanted]
    parts += [f"~ {e}" for e in wanted if e in current and current[e] != (wanted[e], True)]
    return f"accounts ({', '.join(parts)})" if parts else None


class _Builder:
    def __init__(self, loaded: LoadedConfig, adopt: bool):
        self.loaded = loaded
        self.adopt = adopt
        self.changes: list[Change] = []
        self.problems: list[Problem] = []

    def object(self, kind: str, key: str, want, exists: bool, managed: bool, fields: list[str]) -> None:
        if not exists:
            self.changes.append(Change("+", kind, key, path=want.path, want=want))
            return
        adopt = False
        if not managed:
            if not self.adopt:
                self.problems.append(self.loaded.problem(want.path, f"{kind} {key} exists and is not managed"))
                return
            adopt = True
            fields = ["managed (adopted)", *fields]
        if fields:
            self.changes.append(Change("~", kind, key, fields, path=want.path, want=want, adopt=adopt))


def build_plan(loaded: LoadedConfig, *, prune: bool = False, adopt: bool = False) -> Plan:
    """Compare the file with the database. Raises ConfigError for clashes with admin-made objects."""
    desired = desired_state(loaded)
    b = _Builder(loaded, adopt)

    # upstreams
    upstreams = {u.pk: u for u in Upstream.objects.all()}
    for w in desired.upstreams:
        u = upstreams.get(w.id)
        fields: list[str] = []
        if u is not None:
            fields = _diff(
                {"type": u.type, "name": u.name, "issuer": u.issuer, "client_id": u.client_id,
                 "allowed_domains": list(u.allowed_domains or []), "position": u.position, "enabled": u.enabled},
                {"type": w.type, "name": w.name, "issuer": w.issuer, "client_id": w.client_id,
                 "allowed_domains": w.allowed_domains, "position": w.position, "enabled": True},
            )
            note = _secret_note(u.client_secret or "", w.client_secret)
            if note:
                fields.append(f"client_secret ({note})")
            fields = _issuer_note(fields, links_dropped_by(u, w.type, w.issuer))
        b.object("upstream", w.id, w, u is not None, bool(u and u.managed), fields)

    # households
    households = {h.pk: h for h in Household.objects.all()}
    memberships: dict[str, dict[str, str]] = {}
    # Memberships from joining through the hub are not the file's: apply leaves them (set_members).
    joined = Membership.objects.exclude(joined_by="")
    for household_id, email, role in Membership.objects.filter(joined_by="").values_list(
            "household_id", "user__email", "role"):
        memberships.setdefault(household_id, {})[email] = role
    declared = {(w.id, email) for w in desired.households for email in w.members}
    for household_id, email, role in joined.values_list("household_id", "user__email", "role"):
        if (household_id, email) in declared:  # the file takes it over: a role change shows as usual
            memberships.setdefault(household_id, {})[email] = role
    for w in desired.households:
        h = households.get(w.id)
        fields = []
        if h is not None:
            fields = _diff({"name": h.name}, {"name": w.name})
            note = _members_note(memberships.get(w.id, {}), w.members)
            if note:
                fields.append(note)
        b.object("household", w.id, w, h is not None, bool(h and h.managed), fields)

    # people
    users = {u.email: u for u in User.objects.filter(email__in=[p.email for p in desired.people])}
    for w in desired.people:
        user = users.get(w.email)
        fields = []
        if user is not None:
            if w.name and user.name != w.name:
                fields.append("name")
            if not user.is_active:
                fields.append("active")
        b.object("person", w.email, w, user is not None, bool(user and user.managed), fields)

    # operators: the superusers among the people the file manages, counting those it is about to adopt
    # (a bootstrap superuser adopted without being listed is demoted, and the plan says so)
    wanted_operators = desired.operators
    current_operators = sorted(
        User.objects.filter(is_superuser=True)
        .filter(Q(managed=True) | Q(email__in=[p.email for p in desired.people]))
        .values_list("email", flat=True)
    )
    note = _operators_note(current_operators, wanted_operators.emails)
    if note:
        b.changes.append(Change("~", "operators", "", [note], path=wanted_operators.path, want=wanted_operators))

    # NASes
    nases = {n.pk: n for n in NAS.objects.all()}
    mappings: dict[str, dict[str, tuple[str, bool]]] = {}
    for m in AccountMapping.objects.all():
        mappings.setdefault(m.nas_id, {})[m.email] = (m.account_name, m.managed)
    for w in desired.nases:
        n = nases.get(w.id)
        fields = []
        if n is not None:
            fields = _diff(
                {"name": n.name, "household": n.household_id, "url": n.base_url,
                 "verify_tls": (n.verify_tls, n.ca_file), "service_account.username": n.service_username,
                 "sync_interval": n.sync_interval, "enabled": n.enabled,
                 "new_account_groups": list(n.new_account_groups or [])},
                {"name": w.name, "household": w.household, "url": w.base_url,
                 "verify_tls": (w.verify_tls, w.ca_file), "service_account.username": w.service_username,
                 "sync_interval": w.sync_interval, "enabled": w.enabled,
                 "new_account_groups": w.new_account_groups},
            )
            note = _secret_note(n.service_password or "", w.service_password)
            if note:
                fields.append(f"service_account.password ({note})")
            note = _accounts_note(mappings.get(w.id, {}), w.accounts)
            if note:
                fields.append(note)
        b.object("nas", w.id, w, n is not None, bool(n and n.managed), fields)

    # clients
    declared_ids = [c.client_id for c in desired.clients]
    found = Application.objects.select_related("profile").filter(client_id__in=declared_ids)
    applications = {a.client_id: a for a in found}
    for w in desired.clients:
        a = applications.get(w.client_id)
        profile = getattr(a, "profile", None) if a is not None else None
        fields = []
        if a is not None:
            public = a.client_type == Application.CLIENT_PUBLIC
            current = {
                "name": a.name,
                "redirect_uris": a.redirect_uris.split(),
                "post_logout_redirect_uris": a.post_logout_redirect_uris.split(),
                "backchannel_logout_uri": profile.backchannel_logout_uri if profile else "",
                "skip_consent": a.skip_authorization,
                "grant_type": a.authorization_grant_type,
                "algorithm": a.algorithm,
                "nas": profile.nas_id if profile else None,
                "households": sorted(profile.households.values_list("pk", flat=True)) if profile else [],
                "claims": (profile.extra_claims or {}) if profile else {},
            }
            wanted = {
                "name": w.name,
                "redirect_uris": w.redirect_uris,
                "post_logout_redirect_uris": w.post_logout_redirect_uris,
                "backchannel_logout_uri": w.backchannel_logout_uri,
                "skip_consent": w.skip_consent,
                "grant_type": Application.GRANT_AUTHORIZATION_CODE,
                "algorithm": Application.RS256_ALGORITHM,
                "nas": w.nas,
                "households": w.households,
                "claims": w.claims,
            }
            fields = _diff(current, wanted)
            if w.client_secret is None and not public:
                fields.append("client_secret (secret removed: public client)")
            elif w.client_secret is not None and public:
                fields.append("client_secret (secret added: confidential client)")
            elif w.client_secret is not None and not (
                a.hash_client_secret and check_password(w.client_secret, a.client_secret)
            ):
                fields.append("client_secret (secret changed)")
        b.object("client", w.client_id, w, a is not None, bool(profile and profile.managed), fields)

    if b.problems:
        raise ConfigError(sorted(b.problems, key=lambda p: (p.line or 0, p.column or 0)))

    changes = sorted(b.changes, key=lambda c: KINDS.index(c.kind))
    if prune:
        changes += _removals(desired)
    return Plan(changes, desired)


def _removals(desired: Desired) -> list[Change]:
    """Managed objects the file no longer declares (only with --prune)."""
    removals = []
    declared = {w.id for w in desired.upstreams}
    for u in Upstream.objects.filter(managed=True).exclude(pk__in=declared).order_by("pk"):
        removals.append(Change("-", "upstream", u.pk))
    declared = {w.id for w in desired.households}
    for h in Household.objects.filter(managed=True).exclude(pk__in=declared).order_by("pk"):
        removals.append(Change("-", "household", h.pk))
    declared = {w.email for w in desired.people}
    for user in User.objects.filter(managed=True, is_active=True).exclude(email__in=declared).order_by("email"):
        removals.append(Change("-", "person", user.email, note="deactivated, not deleted"))
    declared = {w.id for w in desired.nases}
    for n in NAS.objects.filter(managed=True).exclude(pk__in=declared).order_by("pk"):
        removals.append(Change("-", "nas", n.pk))
    declared = {w.client_id for w in desired.clients}
    for client_id in (
        Application.objects.filter(profile__managed=True).exclude(client_id__in=declared)
        .order_by("client_id").values_list("client_id", flat=True)
    ):
        removals.append(Change("-", "client", client_id))
    return removals
