"""Passkey endpoints: signing in with a passkey (`/login/passkey/…`) and the person's own passkeys
(`/account/passkeys/…`). The ceremonies speak JSON with accounts/static/accounts/passkeys.js (an
answer is the options, `{"redirect": URL}` or `{"error": message}`); renaming and removing are
plain form POSTs that come back to the account page. The work is accounts/passkeys.py's."""

from __future__ import annotations

import functools
import json
import time

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from identityhub.ratelimit import limit_per_address

from . import passkeys
from .models import Passkey
from .passkeys import PasskeyError
from .views import AUTH_TIME_SESSION_KEY, PENDING_SIGN_IN_SESSION_SECONDS, login_url_with, start_hub_session

# Adding a passkey gives lasting access: it needs a sign-in this recent (a stolen session cookie
# must not become a passkey of the thief's).
FRESH_SIGN_IN_SECONDS = 15 * 60
MAX_BODY_BYTES = 64 * 1024


def _too_many(request: HttpRequest, retry_after: int) -> HttpResponse:
    return JsonResponse({"error": _("Too many sign-in attempts from your network. Wait %(seconds)d seconds, then "
                                    "try again.") % {"seconds": retry_after}}, status=429)


limit_passkey = limit_per_address("passkey", "HUB_RATELIMIT_PASSKEY", _too_many)


def _body(request: HttpRequest) -> dict:
    if len(request.body) > MAX_BODY_BYTES:
        return {}
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        return {}
    return body if isinstance(body, dict) else {}


def _refused(error: PasskeyError, status: int = 400) -> JsonResponse:
    return JsonResponse({"error": error.message}, status=status)


def _unavailable() -> JsonResponse:
    return JsonResponse({"error": _("Passkeys cannot be used on this hub's address.")}, status=404)


def safe_next(request: HttpRequest, next_url: object) -> str:
    """Where to go after signing in: a URL of this hub (same host and scheme), else the account page."""
    if isinstance(next_url, str) and next_url and url_has_allowed_host_and_scheme(
            next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return next_url
    return reverse("accounts:account")


def account_url() -> str:
    return reverse("accounts:account") + "#passkeys"


# --- signing in ------------------------------------------------------------------------------
@never_cache
@require_POST
@limit_passkey
def sign_in_options(request: HttpRequest) -> HttpResponse:
    """The options for `navigator.credentials.get()`: any passkey of this hub, user verification."""
    if not passkeys.available():
        return _unavailable()
    if not request.user.is_authenticated:  # not a fortnight's session row per anonymous visit
        request.session.set_expiry(PENDING_SIGN_IN_SESSION_SECONDS)
    return JsonResponse(passkeys.authentication_options(request.session))


@never_cache
@require_POST
@limit_passkey
def sign_in_verify(request: HttpRequest) -> HttpResponse:
    """Check the passkey's answer and sign the person in (a fresh sign-in: `prompt=login` and
    `max_age` are satisfied), then `{"redirect": next}` — a URL of this hub only."""
    body = _body(request)
    credential = body.get("credential")
    try:
        user = passkeys.authenticate_passkey(request.session, credential)
    except PasskeyError as refusal:
        answer = {"error": refusal.message}
        if refusal.reason == "passkey_unknown" and isinstance(credential, dict):
            # The browser may then forget it (PublicKeyCredential.signalUnknownCredential).
            answer["unknown_credential"] = {"rpId": passkeys.rp_id(), "credentialId": credential.get("id")}
        return JsonResponse(answer, status=403 if refusal.reason == "inactive" else 400)
    start_hub_session(request, user, method="passkey")
    return JsonResponse({"redirect": safe_next(request, body.get("next"))})


# --- the person's own passkeys ---------------------------------------------------------------
def signed_in_json(view):
    """Like login_required, for the JSON endpoints: a signed-out browser is told where to sign in."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            return JsonResponse({"redirect": login_url_with(account_url())}, status=401)
        return view(request, *args, **kwargs)

    return wrapper


def signed_in_recently(request: HttpRequest) -> bool:
    auth_time = request.session.get(AUTH_TIME_SESSION_KEY) or 0
    return time.time() - auth_time <= FRESH_SIGN_IN_SECONDS


def fresh_sign_in_url() -> str:
    """Sign in again (a fresh sign-in), then come back to the account page's passkeys."""
    return login_url_with(account_url(), prompt="login")


@never_cache
@require_POST
@signed_in_json
def add_options(request: HttpRequest) -> HttpResponse:
    """The options for `navigator.credentials.create()` to add a passkey for the signed-in person."""
    if not passkeys.available():
        return _unavailable()
    if not signed_in_recently(request):
        return JsonResponse({"redirect": fresh_sign_in_url()}, status=401)
    return JsonResponse(passkeys.registration_options(request.session, request.user))


@never_cache
@require_POST
@signed_in_json
def add_verify(request: HttpRequest) -> HttpResponse:
    body = _body(request)
    try:
        passkey = passkeys.register_passkey(request.session, request.user, body.get("credential"),
                                            body.get("name") if isinstance(body.get("name"), str) else "")
    except PasskeyError as error:
        return _refused(error)
    messages.success(request, _("Your passkey “%(name)s” is added. Next time, you can sign in with it.")
                     % {"name": passkey.name})
    return JsonResponse({"redirect": account_url()})


def _own_passkey(request: HttpRequest, pk: int) -> Passkey:
    """One of the signed-in person's passkeys; anyone else's is a 404."""
    return get_object_or_404(Passkey.objects.select_related("user"), pk=pk, user=request.user)


@never_cache
@require_POST
@login_required
def rename(request: HttpRequest, pk: int) -> HttpResponse:
    passkey = _own_passkey(request, pk)
    passkeys.rename_passkey(passkey, request.POST.get("name", ""))
    messages.success(request, _("The passkey is now called “%(name)s”.") % {"name": passkey.name})
    return redirect(account_url())


@never_cache
@require_POST
@login_required
def remove(request: HttpRequest, pk: int) -> HttpResponse:
    passkey = _own_passkey(request, pk)
    name = passkey.name
    passkeys.remove_passkey(passkey, by=request.user)
    messages.success(request, _("The passkey “%(name)s” is removed: it no longer signs you in.") % {"name": name})
    return redirect(account_url())


# --- what the pages show ---------------------------------------------------------------------
def account_context(request: HttpRequest) -> dict:
    """The account page's passkeys section (accounts/templatetags/hub_passkeys.py)."""
    return {"available": passkeys.available(),
            "passkeys": list(request.user.passkeys.all()),
            "may_add": signed_in_recently(request),
            "fresh_sign_in_url": fresh_sign_in_url(),
            "options_url": reverse("accounts:passkey-add-options"),
            "verify_url": reverse("accounts:passkey-add")}
