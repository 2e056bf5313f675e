"""The joining pages: an invitation (sign in with an upstream or create a passkey), the welcome
page, and "Ask for access" from a refusal page. Thin: the work is in services."""

from __future__ import annotations

import json
import time

from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import formats
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from accounts import passkeys
from accounts.models import Upstream
from accounts.views import render_refusal, start_hub_session, visible_upstreams
from identityhub.ratelimit import limit_per_address

from . import services
from .models import AccessRequest, Invitation
from .offers import ASK_SESSION_KEY
from .pipeline import INVITATION_SESSION_KEY
from .selectors import admins_deciding

ASKED_SESSION_KEY = "hub_access_request"
MAX_PASSKEY_BODY = 64 * 1024


def _too_many(request: HttpRequest, retry_after: int) -> HttpResponse:
    return render_refusal(request, message=_("Too many requests from your network."),
                          advice=_("Wait %(seconds)d seconds, then try again.") % {"seconds": retry_after},
                          status=429)


limit_asks = limit_per_address("access_request", "HUB_RATELIMIT_ACCESS_REQUEST", _too_many)
limit_invitations = limit_per_address("invitation", "HUB_RATELIMIT_LOGIN", _too_many)


def _unusable(request: HttpRequest, invitation: Invitation | None) -> HttpResponse:
    """The page for a link that does not (or no longer) work: what happened, whom to ask."""
    if invitation is None:
        return render_refusal(request, message=_("This invitation link is not valid."),
                              advice=_("Check that you opened the whole link, or ask for a new invitation."),
                              status=404)
    contacts = admins_deciding(invitation)
    state = invitation.state
    if state == Invitation.State.USED:
        return render_refusal(
            request, message=_("This invitation was already used on %(date)s.") % {
                "date": formats.date_format(invitation.used_at)},
            advice=_("If it was you, just sign in. If not, tell your household admin."),
            retry=reverse("accounts:login"), retry_label=_("Sign in"), contacts=contacts, status=410)
    if state == Invitation.State.EXPIRED:
        return render_refusal(
            request, message=_("This invitation expired on %(date)s.") % {
                "date": formats.date_format(invitation.expires_at)},
            advice=_("Ask your household admin for a new one."), contacts=contacts, status=410)
    return render_refusal(request, message=_("This invitation was withdrawn."),
                          advice=_("Ask your household admin for a new one."), contacts=contacts, status=410)


def _waiting(token: str) -> tuple[Invitation | None, bool]:
    invitation = services.find_invitation(token)
    return invitation, invitation is not None and invitation.state == Invitation.State.PENDING


@never_cache
@limit_invitations
def invitation(request: HttpRequest, token: str) -> HttpResponse:
    invitation, waiting = _waiting(token)
    if not waiting:
        return _unusable(request, invitation)
    signed_in = request.user if request.user.is_authenticated else None
    choices = [(u, reverse("joining:invitation-upstream", args=[token, u.pk])) for u in visible_upstreams()]
    return render(request, "joining/invitation.html", {
        "invitation": invitation,
        "token": token,
        "inviter": invitation.created_by.get_full_name() if invitation.created_by else "",
        "choices": choices,
        "signed_in": signed_in,
        "is_invited_person": signed_in is not None and signed_in.pk == invitation.person_id,
        "passkeys_available": passkeys.available(),
        "passkey_options_url": reverse("joining:invitation-passkey-options", args=[token]),
        "passkey_verify_url": reverse("joining:invitation-passkey", args=[token]),
    })


@require_POST
@limit_invitations
def invitation_upstream(request: HttpRequest, token: str, upstream_id: str) -> HttpResponse:
    """Redeem with an upstream: remember the invitation in this browser's session, then sign in;
    the sign-in pipeline links whatever account comes back to the invited person."""
    invitation, waiting = _waiting(token)
    if not waiting:
        return _unusable(request, invitation)
    if not Upstream.objects.filter(pk=upstream_id, enabled=True).exists():
        return redirect("joining:invitation", token=token)
    request.session[INVITATION_SESSION_KEY] = {"id": invitation.pk, "digest": invitation.token_digest,
                                               "at": int(time.time())}
    query = urlencode({"next": reverse("joining:welcome")})
    return redirect(f"{reverse('accounts:login-upstream', args=[upstream_id])}?{query}")


@require_POST
@limit_invitations
def invitation_join(request: HttpRequest, token: str) -> HttpResponse:
    """Already signed in as the invited person: join with one button."""
    invitation, waiting = _waiting(token)
    if not waiting:
        return _unusable(request, invitation)
    if not request.user.is_authenticated or request.user.pk != invitation.person_id:
        return redirect("joining:invitation", token=token)
    try:
        with transaction.atomic():
            claimed = services.claim_invitation(invitation, used_with=request.session.get("hub_upstream") or "session")
    except services.JoiningError:
        claimed = False
    if not claimed:
        return _unusable(request, services.find_invitation(token))
    return redirect("joining:welcome")


def _json_body(request: HttpRequest) -> dict | None:
    if len(request.body) > MAX_PASSKEY_BODY:
        return None
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


@require_POST
@limit_invitations
def invitation_passkey_options(request: HttpRequest, token: str) -> JsonResponse:
    invitation, waiting = _waiting(token)
    if not waiting:
        return JsonResponse({"error": _("This invitation can no longer be used.")}, status=410)
    return JsonResponse(passkeys.registration_options(request.session, invitation.person))


@require_POST
@limit_invitations
def invitation_passkey(request: HttpRequest, token: str) -> JsonResponse:
    """Redeem with a new passkey: the passkey, the invitation's use and the sign-in, all or nothing."""
    invitation, waiting = _waiting(token)
    if not waiting:
        return JsonResponse({"error": _("This invitation can no longer be used.")}, status=410)
    body = _json_body(request)
    if body is None:
        return JsonResponse({"error": _("The browser sent something the hub could not read.")}, status=400)
    credential = body.get("credential", body)
    try:
        with transaction.atomic():
            passkeys.register_passkey(request.session, invitation.person, credential, name=str(body.get("name", "")))
            if not services.claim_invitation(invitation, used_with="passkey"):
                raise services.JoiningError(_("This invitation can no longer be used."))
    except passkeys.PasskeyError as error:
        return JsonResponse({"error": str(error.message)}, status=400)
    except services.JoiningError as error:
        return JsonResponse({"error": str(error)}, status=410)
    start_hub_session(request, invitation.person, method="passkey")
    return JsonResponse({"redirect": reverse("joining:welcome")})


@never_cache
@login_required
def welcome(request: HttpRequest) -> HttpResponse:
    from accounts import selectors as people

    return render(request, "joining/welcome.html", {
        "households": people.households_of(request.user),
        "apps": people.launchable_apps(request.user),
    })


@require_POST
@limit_asks
def ask(request: HttpRequest) -> HttpResponse:
    """Record an access request from what the refusal page kept in this session (never from the
    form: the email and the upstream identity are what the upstream or the session proved)."""
    pending = request.session.get(ASK_SESSION_KEY)
    if not isinstance(pending, dict):
        return render_refusal(request, message=_("There is nothing to ask for any more."),
                              advice=_("Sign in again; if you are still refused, the page will offer to ask."),
                              retry=reverse("accounts:login"), status=400)
    next_url = pending.pop("next", "")
    ask = services.AskContext(**pending)
    if ask.user_id is not None and request.user.pk != ask.user_id:
        request.session.pop(ASK_SESSION_KEY, None)
        return redirect("accounts:login")
    access_request, _created = services.request_access(ask)
    request.session.pop(ASK_SESSION_KEY, None)
    request.session[ASKED_SESSION_KEY] = {"id": access_request.pk, "next": next_url}
    return redirect("joining:asked")


@never_cache
def asked(request: HttpRequest) -> HttpResponse:
    kept = request.session.get(ASKED_SESSION_KEY)
    access_request = None
    if isinstance(kept, dict):
        access_request = AccessRequest.objects.select_related("household").filter(pk=kept.get("id")).first()
    if access_request is None:
        return redirect("accounts:login")
    return render(request, "joining/asked.html", {
        "access_request": access_request,
        # Admins' addresses only for a person the hub knows: never tell a stranger an admin's address.
        "contacts": admins_deciding(access_request) if access_request.user_id else [],
        "retry": kept.get("next") or reverse("accounts:login"),
    })
