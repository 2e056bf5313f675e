"""Who may use which client, and what the client is told about them.

One decision function, `check_access`, runs at the authorization endpoint, at every token
exchange and refresh, at userinfo and in `hub claims`: a person who left the household or lost
their NAS account stops getting tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from oauth2_provider.models import Application

from accounts.models import Membership


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


def allowed_household_ids(application: Application) -> set[str]:
    profile = getattr(application, "profile", None)
    if profile is None:
        return set()
    ids = {household.pk for household in profile.households.all()}
    if not ids and profile.nas_id:
        ids = {profile.nas.household_id}
    return ids


def check_access(user, application: Application, *, allow_quick_sync: bool = False) -> AccessDecision:
    """Decide whether `user` may sign in to `application`, and find their NAS account name."""
    from synology.selectors import dsm_username_for

    if user is None or not user.is_active:
        return AccessDecision(Refusal("inactive", "This account is disabled.", "Ask your household admin."))
    try:
        profile = application.profile
    except Application.profile.RelatedObjectDoesNotExist:
        return AccessDecision(
            Refusal("client_unconfigured", f"{application.name or application.client_id} is not set up for sign-in.",
                    "Ask your household admin to give this app its households.")
        )
    allowed = allowed_household_ids(application)
    roles = dict(Membership.objects.filter(user=user).values_list("household_id", "role"))
    decision = AccessDecision(household_roles=roles, nas_id=profile.nas_id or "")
    if not allowed & roles.keys():
        decision.refusal = Refusal(
            "not_in_household",
            f"{user.email} is not a member of a household that may use {application.name or application.client_id}.",
            "Ask your household admin to add you.",
        )
        return decision
    if profile.nas_id:
        username = dsm_username_for(profile.nas, user, allow_quick_sync=allow_quick_sync)
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
