""""Ask for access" on refusal pages (registered with accounts.refusals in JoiningConfig.ready)."""

from __future__ import annotations

from django.http import HttpRequest
from django.urls import reverse
from django.utils import formats
from django.utils.translation import gettext as _

from accounts.refusals import RefusalOffer, Refused

from .models import AccessRequest
from .selectors import ask_target, client_id_in
from .services import AskContext, latest_request

ASK_SESSION_KEY = "hub_access_ask"
# Refusals a household admin can fix by letting the person in. Others (unverified email, domain not
# allowed, disabled account, issuer mismatch) are not the household's to approve.
ASKABLE_REASONS = {"unknown_person", "not_in_household", "no_nas_account"}


def ask_for_access_offer(request: HttpRequest, refused: Refused) -> RefusalOffer | None:
    if refused.reason not in ASKABLE_REASONS:
        return None
    if refused.user is None and not refused.identity.get("email"):
        return None  # at sign-in, only an address the upstream verified may ask
    client_id = refused.client_id or client_id_in(refused.next_url)
    target = ask_target(client_id)
    if target is None:
        return None
    email = refused.user.email if refused.user is not None else refused.identity["email"]
    latest = latest_request(email, target.client_id)
    if latest is not None and latest.state == AccessRequest.State.OPEN:
        return RefusalOffer(_("You asked the admins of %(household)s for access on %(date)s. They have not "
                              "answered yet; try again once they have.")
                            % {"household": target.household, "date": formats.date_format(latest.created_at)},
                            element_id="access-request-state")
    if latest is not None and latest.state == AccessRequest.State.DECLINED:
        return RefusalOffer(_("The admins of %(household)s declined your request of %(date)s.")
                            % {"household": target.household, "date": formats.date_format(latest.created_at)},
                            element_id="access-request-state")
    if refused.user is not None:
        ask = AskContext(email=refused.user.email, name=refused.user.name, household_id=target.household_id,
                         client_id=target.client_id, nas_id=target.nas_id, user_id=refused.user.pk)
    else:
        identity = refused.identity
        ask = AskContext(email=identity["email"], name=identity.get("name", ""), household_id=target.household_id,
                         client_id=target.client_id, nas_id=target.nas_id, upstream_id=identity.get("upstream", ""),
                         subject=identity.get("uid", ""), id_key=identity.get("id_key", ""),
                         issuer=identity.get("iss", ""))
    request.session[ASK_SESSION_KEY] = {**ask.as_session(), "next": _local(refused.next_url)}
    return RefusalOffer(
        _("You can ask the admins of %(household)s to let you in. They will see your name and %(email)s.")
        % {"household": target.household, "email": email},
        action_url=reverse("joining:ask"), action_label=_("Ask for access"), element_id="ask-for-access")


def _local(url: str) -> str:
    """Only a path on this hub is kept (no open redirect)."""
    return url if url.startswith("/") and not url.startswith("//") and "\\" not in url else ""
