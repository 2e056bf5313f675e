"""Who may use which client, and what the client is told about them.

One decision function, `check_access`, runs at the authorization endpoint, at every token
exchange and refresh, at userinfo and in `hub claims`: a person who left the household or lost
their NAS account stops getting tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Exists, OuterRef, Subquery
from oauth2_provider.models import Application

from accounts.models import Membership
from synology.selectors import dsm_username_for, linked_account_names

from .models import ClientProfile


@dataclass(frozen=True)
class Refusal:
    reason: str  # machine-readable, recorded in the audit trail
    message: str  # what the person sees
    advice: str = ""  # what to do about it


@dataclass
class AccessDecision:
    refusal: Refusal | None = None
    dsm_username: str | None = None
    household_roles: dict[str, str] = field(default_factory=dict)  # household id -> role
    nas_id: str = ""

    @property
    def allowed(self) -> bool:
        return self.refusal is None


def check_access(user, application: Application, *, allow_quick_sync: bool = False) -> AccessDecision:
    """Decide whether `user` may sign in to `application`, and find their NAS account name.

    One query: the person's memberships, each marked allowed or not for this client, with their
    account name on the client's NAS alongside (the application arrives with profile and NAS).
    """
    if user is None or not user.is_active:
        return AccessDecision(Refusal("inactive", "This account is disabled.", "Ask your household admin."))
    label = application.name or application.client_id
    try:
        profile = application.profile
    except Application.profile.RelatedObjectDoesNotExist:
        return AccessDecision(Refusal("client_unconfigured", f"{label} is not set up for sign-in.",
                                      "Ask your household admin to give this app its households."))

    client_households = ClientProfile.households.through.objects.filter(clientprofile_id=profile.pk)
    rows = Membership.objects.filter(user=user).annotate(
        listed=Exists(client_households.filter(household_id=OuterRef("household_id"))),
        any_listed=Exists(client_households),
    )
    if profile.nas_id:
        rows = rows.annotate(dsm_username=Subquery(linked_account_names(profile.nas_id, user.pk)[:1]))
    rows = list(rows.values_list("household_id", "role", "listed", "any_listed",
                                 *(["dsm_username"] if profile.nas_id else [])))

    decision = AccessDecision(household_roles={row[0]: row[1] for row in rows}, nas_id=profile.nas_id or "")
    nas_household = profile.nas.household_id if profile.nas_id else None
    allowed = any(row[2] or (not row[3] and row[0] == nas_household) for row in rows)
    if not allowed:
        decision.refusal = Refusal(
            "not_in_household",
            f"{user.email} is not a member of a household that may use {label}.",
            "Ask your household admin to add you.",
        )
        return decision
    if profile.nas_id:
        username = rows[0][4]
        if username is None and allow_quick_sync:
            username = dsm_username_for(profile.nas, user, allow_quick_sync=True)
        if username is None:
            decision.refusal = Refusal(
                "no_nas_account",
                f"{user.email} has no account on {profile.nas}.",
                "Ask your household admin to create a DSM account with your email address, "
                "or to map your email to your existing account.",
            )
            return decision
        decision.dsm_username = username
    return decision
