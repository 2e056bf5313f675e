"""Reads of the joining app: where an access request goes, what an invitation page shows."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from accounts.models import Household
from accounts.selectors import Contact, household_admins
from identityhub.oidc.selectors import load_client

from .models import AccessRequest, Invitation


@dataclass(frozen=True)
class AskTarget:
    """Whose admins decide an access request for an app, and the NAS an account is needed on."""

    household_id: str
    household: str
    client_id: str = ""
    app: str = ""  # the app's name
    nas_id: str = ""


def client_id_in(url: str) -> str:
    """The `client_id` of an authorization request URL ("" when there is none)."""
    values = parse_qs(urlsplit(url or "").query).get("client_id") or [""]
    return values[0][:100]


def ask_target(client_id: str) -> AskTarget | None:
    """The household that owns the app: its NAS's household (when the app may be used there),
    else the first household the app lists. Without an app, the hub's only household. None when
    nobody could decide (an unknown or unconfigured app, several households and no app)."""
    if not client_id:
        households = list(Household.objects.all()[:2])
        if len(households) != 1:
            return None
        return AskTarget(households[0].pk, str(households[0]))
    application = load_client(client_id)
    profile = getattr(application, "profile", None) if application is not None else None
    if profile is None:
        return None
    allowed = sorted(profile.households.values_list("id", flat=True))
    nas_household = profile.nas.household_id if profile.nas_id else ""
    if nas_household and (not allowed or nas_household in allowed):
        owner = nas_household
    elif allowed:
        owner = allowed[0]
    else:
        return None
    household = Household.objects.get(pk=owner)
    return AskTarget(owner, str(household), client_id, application.name or client_id,
                     profile.nas_id if nas_household == owner else "")


def admins_deciding(request: AccessRequest | Invitation) -> list[Contact]:
    return household_admins([request.household_id])
