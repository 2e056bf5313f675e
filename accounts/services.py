"""Writes to people data. The config apply, the admin and the demo data all come through here."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction
from social_django.models import UserSocialAuth

from .models import Household, Membership, Upstream, User, issuer_of, normalize_domain, normalize_email
from .roles import sync_staff_flag


@dataclass(frozen=True)
class MemberSpec:
    email: str
    name: str = ""
    role: str = Membership.Role.MEMBER


def declare_upstream(
    upstream_id: str,
    type: str,
    *,
    name: str = "",
    issuer: str = "",
    client_id: str = "",
    client_secret: str = "",
    allowed_domains: Iterable[str] = (),
    position: int = 0,
    managed: bool = False,
) -> Upstream:
    if type not in Upstream.Type.values:
        raise ValueError(f"unknown upstream type {type!r} (google | oidc | mock)")
    if type == Upstream.Type.OIDC and not issuer:
        raise ValueError(f"upstream {upstream_id}: type oidc needs an issuer")
    previous = Upstream.objects.filter(pk=upstream_id).first()
    upstream, _ = Upstream.objects.update_or_create(
        pk=upstream_id,
        defaults={
            "type": type,
            "name": name,
            "issuer": issuer.rstrip("/"),
            "client_id": client_id,
            "client_secret": client_secret,
            "allowed_domains": sorted({normalize_domain(d) for d in allowed_domains}),
            "position": position,
            "managed": managed,
            "enabled": True,
        },
    )
    if previous is not None:
        drop_links_on_issuer_change(upstream, previous.effective_issuer)
    return upstream


def links_dropped_by(upstream: Upstream | None, type: str, issuer: str) -> int:
    """How many sign-in links changing `upstream` to (`type`, `issuer`) would drop: all of them when
    its effective issuer changes (a link is bound to the issuer it was made under), else none."""
    if upstream is None or upstream.effective_issuer == issuer_of(type, issuer):
        return 0
    return UserSocialAuth.objects.filter(provider=upstream.pk).count()


@transaction.atomic
def drop_links_on_issuer_change(upstream: Upstream, previous_issuer: str) -> int:
    """After `upstream` was saved: if its effective issuer is no longer `previous_issuer`, delete its
    sign-in links (the new issuer's subjects are not the old one's; people link again by verified
    email on their next sign-in). Returns how many were dropped. Used by `hub apply` (through
    `declare_upstream`) and by the console."""
    if upstream.effective_issuer == previous_issuer:
        return 0
    dropped, _ = UserSocialAuth.objects.filter(provider=upstream.pk).delete()
    return dropped


def declare_household(household_id: str, name: str, *, managed: bool = False) -> Household:
    household, _ = Household.objects.update_or_create(pk=household_id, defaults={"name": name, "managed": managed})
    return household


def declare_person(email: str, name: str = "", *, managed: bool = False) -> User:
    """Create or update a person by email (case-insensitive). A declared person is active."""
    email = normalize_email(email)
    user = User.objects.filter(email=email).first()
    if user is None:
        return User.objects.create_user(email=email, name=name, managed=managed)
    changed = []
    for field, value in (("name", name or user.name), ("managed", managed or user.managed), ("is_active", True)):
        if getattr(user, field) != value:
            setattr(user, field, value)
            changed.append(field)
    if changed:
        user.save(update_fields=changed)
    return user


@transaction.atomic
def set_members(household: Household, members: Iterable[MemberSpec], *, managed: bool = False) -> None:
    """Make the household's members exactly `members` (declaring people as needed).

    Memberships a person got by joining through the hub (an invitation or an approved access
    request, `joined_by`) are left alone unless `members` names that person, who is then the
    file's like any other member: the config never undoes an admin's approval at the next apply.
    """
    wanted: dict[int, str] = {}
    for spec in members:
        user = declare_person(spec.email, spec.name, managed=managed)
        wanted[user.pk] = spec.role
    current = {m.user_id: m for m in Membership.objects.filter(household=household)}
    for user_id, membership in current.items():
        if user_id not in wanted:
            if not membership.joined_by:
                membership.delete()
        elif membership.role != wanted[user_id] or membership.joined_by:
            membership.role = wanted[user_id]
            membership.joined_by = ""
            membership.save(update_fields=["role", "joined_by"])
    Membership.objects.bulk_create(
        [Membership(household=household, user_id=uid, role=role) for uid, role in wanted.items() if uid not in current]
    )
    for user in User.objects.filter(pk__in=set(wanted) | set(current)):
        sync_staff_flag(user)


@transaction.atomic
def add_member(household: Household, email: str, name: str = "", role: str = Membership.Role.MEMBER) -> User:
    """Declare a person (by email) and make them a member of `household` with `role`."""
    user = declare_person(email, name)
    Membership.objects.update_or_create(user=user, household=household, defaults={"role": role})
    sync_staff_flag(user)
    return user


def refresh_staff_flag(user: User) -> None:
    """Kept for callers of the old name: staff mirrors the role; household admins are never superusers."""
    sync_staff_flag(user)


@transaction.atomic
def set_operators(emails: Iterable[str]) -> list[User]:
    """Make exactly these declared people operators (superusers) among the config-managed people.

    People the config does not manage (a `createsuperuser` bootstrap account) keep their flags.
    Returns the operators. Unknown emails raise ValueError (the config validator catches them first).
    """
    wanted = {normalize_email(e) for e in emails}
    found = {u.email: u for u in User.objects.filter(email__in=wanted)}
    missing = sorted(wanted - set(found))
    if missing:
        raise ValueError(f"operators must be declared people: {', '.join(missing)}")
    for user in User.objects.filter(managed=True, is_superuser=True).exclude(email__in=wanted):
        user.is_superuser = False
        user.save(update_fields=["is_superuser"])
        sync_staff_flag(user)
    for user in found.values():
        if not (user.is_superuser and user.is_staff):
            user.is_superuser = user.is_staff = True
            user.save(update_fields=["is_superuser", "is_staff"])
    return list(found.values())


def deactivate_person(user: User) -> None:
    """Pruned people are deactivated, never deleted (their audit trail stays)."""
    if user.is_active:
        user.is_active = False
        user.save(update_fields=["is_active"])
