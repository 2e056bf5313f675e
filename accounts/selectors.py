"""Reads about people for the family pages: who to ask, what someone may open, how they sign in.

Plain typed functions returning plain records, so the views stay thin and the templates never
walk relations. The provider's and the NASes' tables are reached through reverse relations and
the app registry, never by importing `identityhub.oidc` or `synology` (accounts depends on the
hub core only).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.apps import apps
from django.db.models import Q
from social_django.models import UserSocialAuth

from .models import Household, Membership, Upstream, User, normalize_email

HUB_NAME = "Identity Hub"


@dataclass(frozen=True)
class Contact:
    """Someone a person can ask for help (a household admin)."""

    name: str
    email: str


@dataclass(frozen=True)
class HouseholdRole:
    household_id: str
    household: str
    role: str  # Membership.Role value

    @property
    def is_admin(self) -> bool:
        return self.role == Membership.Role.ADMIN


@dataclass(frozen=True)
class LinkedSignIn:
    upstream: str  # the upstream's label, as on the sign-in buttons
    subject: str  # the upstream's identifier for the person


@dataclass(frozen=True)
class NasAccount:
    nas: str
    account: str
    expired: bool


@dataclass(frozen=True)
class LaunchableApp:
    client_id: str
    name: str
    url: str  # where the app lives: its first redirect URI's origin ("" when it has none)
    host: str
    nas: str  # the bound NAS's name, "" when the app is not bound to one
    has_account: bool  # False for a NAS-bound app where the person has no usable DSM account


def sign_in_place_name() -> str:
    """What the sign-in page says you sign in to: the household when the hub has only one."""
    households = list(Household.objects.all()[:2])
    if len(households) == 1:
        return str(households[0])
    return HUB_NAME


def household_admins(household_ids: Iterable[str]) -> list[Contact]:
    """The active admins of these households, each once, by name."""
    ids = list(household_ids)
    if not ids:
        return []
    rows = (
        Membership.objects.filter(household_id__in=ids, role=Membership.Role.ADMIN, user__is_active=True)
        .values_list("user__name", "user__email")
        .distinct()
    )
    return sorted({Contact(name or email, email) for name, email in rows}, key=lambda c: (c.name.lower(), c.email))


def admins_of_person(email: str) -> list[Contact]:
    """The admins of the households of the declared person with this email (none when undeclared)."""
    household_ids = Membership.objects.filter(user__email=normalize_email(email)).values_list("household_id", flat=True)
    return household_admins(household_ids)


def households_of(user: User) -> list[HouseholdRole]:
    return [
        HouseholdRole(m.household_id, str(m.household), m.role)
        for m in user.memberships.select_related("household").order_by("household__name", "household_id")
    ]


def linked_sign_ins(user: User) -> list[LinkedSignIn]:
    links = list(UserSocialAuth.objects.filter(user=user).order_by("provider", "uid").values_list("provider", "uid"))
    labels = {u.pk: u.label for u in Upstream.objects.filter(pk__in={provider for provider, _ in links})}
    return [LinkedSignIn(labels.get(provider, provider), uid) for provider, uid in links]


def nas_accounts(user: User) -> list[NasAccount]:
    """The person's DSM accounts that the last listing of each NAS still showed."""
    accounts = user.dsm_accounts.filter(present=True).select_related("nas").order_by("nas__name", "nas_id", "name")
    return [NasAccount(str(a.nas), a.name, a.expired) for a in accounts]


def launchable_apps(user: User) -> list[LaunchableApp]:
    """The apps of the person's households, as the access policy sees them: a client's households,
    or, when it lists none, its bound NAS's household. The link is the origin of the app's first
    redirect URI (there is no separate launch URL)."""
    household_ids = list(user.memberships.values_list("household_id", flat=True))
    if not household_ids:
        return []
    client_profile = apps.get_model("oidc", "ClientProfile")  # the provider's table, without importing it
    profiles = (
        client_profile.objects.filter(
            Q(households__in=household_ids) | Q(households__isnull=True, nas__household_id__in=household_ids)
        )
        .select_related("application", "nas")
        .distinct()
    )
    usable_nases = set(user.dsm_accounts.filter(present=True, expired=False).values_list("nas_id", flat=True))
    launchable = []
    for profile in profiles:
        application = profile.application
        url = _origin(application.redirect_uris.split()[0]) if application.redirect_uris.split() else ""
        launchable.append(LaunchableApp(
            client_id=application.client_id,
            name=application.name or application.client_id,
            url=url,
            host=urlsplit(url).netloc if url else "",
            nas=str(profile.nas) if profile.nas_id else "",
            has_account=not profile.nas_id or profile.nas_id in usable_nases,
        ))
    return sorted(launchable, key=lambda app: (app.name.lower(), app.client_id))


def _origin(uri: str) -> str:
    parts = urlsplit(uri)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        return ""
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}"  # never a user:password@ part
