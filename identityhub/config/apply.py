"""Making the database match a config file: the plan, executed through the domain services, all or nothing.

Shared by `hub apply`, the start-up apply and (later) the admin. The plan is computed inside the
transaction (under a lock on PostgreSQL; SQLite's IMMEDIATE transactions already serialise
writers), so two concurrent applies never act on a stale plan.
"""

from __future__ import annotations

import zlib

from django.db import connection, transaction
from oauth2_provider.models import Application

from accounts import services as accounts_services
from accounts.models import Household, Membership, Upstream, User
from accounts.roles import sync_staff_flag
from identityhub.audit import record_event
from identityhub.oidc import services as oidc_services
from synology import services as synology_services
from synology.models import NAS

from .errors import ConfigError, Problem
from .load import LoadedConfig
from .plan import Change, ClientWant, HouseholdWant, NASWant, PersonWant, Plan, UpstreamWant, build_plan

APPLY_LOCK_ID = zlib.crc32(b"identityhub.config.apply")


def lock_for_apply() -> None:
    """Inside a transaction: serialise applies across processes (PostgreSQL advisory lock)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [APPLY_LOCK_ID])


def plan_config(loaded: LoadedConfig, *, prune: bool = False, adopt: bool = False) -> Plan:
    """The plan alone (reads only)."""
    return build_plan(loaded, prune=prune, adopt=adopt)


def apply_config(loaded: LoadedConfig, *, prune: bool = False, adopt: bool = False, source: str = "cli") -> Plan:
    """Apply `loaded` in one transaction; return the plan that was carried out. Raises ConfigError."""
    step: list[Change | None] = [None]
    try:
        with transaction.atomic():
            lock_for_apply()
            plan = build_plan(loaded, prune=prune, adopt=adopt)
            _execute(plan, step)
            record_event(
                "config_apply",
                file=loaded.file,
                source=source,
                prune=prune,
                adopt=adopt,
                created=plan.count("+"),
                changed=plan.count("~"),
                removed=plan.count("-"),
                changes=[str(c) for c in plan.changes],  # plan lines never carry secret values
            )
    except ConfigError:
        raise
    except Exception as error:  # any failure: the transaction is rolled back, nothing changed
        change = step[0]
        what = f"{' '.join(filter(None, (change.kind, change.key)))}: " if change is not None else ""
        message = f"{what}{error.__class__.__name__}: {error}; nothing was changed"
        if change is not None and change.path:
            problem = loaded.problem(change.path, message)
        else:
            problem = Problem(loaded.file, message)
        raise ConfigError([problem]) from error
    return plan


def _declared(plan: Plan, kind: str, step: list):
    """The wanted state of each `kind` object the plan creates or changes; `step` tracks the current one."""
    for change in plan.of(kind):
        if change.action != "-":
            step[0] = change
            yield change.want


def _execute(plan: Plan, step: list) -> None:
    desired = plan.desired
    w: UpstreamWant
    for w in _declared(plan, "upstream", step):
        accounts_services.declare_upstream(
            w.id, w.type, name=w.name, issuer=w.issuer, client_id=w.client_id, client_secret=w.client_secret,
            allowed_domains=w.allowed_domains, position=w.position, managed=True,
        )
    p: PersonWant
    for p in _declared(plan, "person", step):
        accounts_services.declare_person(p.email, p.name, managed=True)
    h: HouseholdWant
    for h in _declared(plan, "household", step):
        household = accounts_services.declare_household(h.id, h.name, managed=True)
        specs = [accounts_services.MemberSpec(e, desired.person_name(e), role) for e, role in h.members.items()]
        accounts_services.set_members(household, specs, managed=True)
    # Every time (a no-op when the plan shows no operators line): exactly the listed people are superusers
    # among the managed ones; after the memberships, so a demoted operator's staff flag sees them.
    step[0] = next(iter(plan.of("operators")), None)
    accounts_services.set_operators(desired.operators.emails)
    n: NASWant
    for n in _declared(plan, "nas", step):
        nas = synology_services.declare_nas(
            n.id, household=Household.objects.get(pk=n.household), base_url=n.base_url, name=n.name,
            verify_tls=n.verify_tls, ca_file=n.ca_file, service_username=n.service_username,
            service_password=n.service_password, sync_interval=n.sync_interval, enabled=n.enabled, managed=True,
            new_account_groups=n.new_account_groups,
        )
        synology_services.set_account_mappings(nas, n.accounts, managed=True)
    c: ClientWant
    for c in _declared(plan, "client", step):
        oidc_services.register_client(
            c.client_id, name=c.name, redirect_uris=c.redirect_uris, client_secret=c.client_secret,
            public=c.client_secret is None, nas=NAS.objects.get(pk=c.nas) if c.nas else None,
            households=list(Household.objects.filter(pk__in=c.households)), skip_consent=c.skip_consent,
            post_logout_redirect_uris=c.post_logout_redirect_uris, extra_claims=c.claims, managed=True,
            backchannel_logout_uri=c.backchannel_logout_uri,
        )

    # --prune: clients first (they hold NASes), NASes before households (they hold households).
    for change in plan.of("client", "-"):
        step[0] = change
        Application.objects.filter(client_id=change.key, profile__managed=True).delete()
    for change in plan.of("nas", "-"):
        step[0] = change
        NAS.objects.filter(pk=change.key, managed=True).delete()
    for change in plan.of("household", "-"):
        step[0] = change
        member_ids = list(Membership.objects.filter(household_id=change.key).values_list("user_id", flat=True))
        Household.objects.filter(pk=change.key, managed=True).delete()
        for user in User.objects.filter(pk__in=member_ids):
            sync_staff_flag(user)
    for change in plan.of("upstream", "-"):
        step[0] = change
        Upstream.objects.filter(pk=change.key, managed=True).delete()
    for change in plan.of("person", "-"):
        step[0] = change
        accounts_services.deactivate_person(User.objects.get(email=change.key))
    step[0] = None
