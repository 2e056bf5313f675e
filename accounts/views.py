"""The family's pages: sign in (choose an upstream, start it, complete it), refusals, the account
page, signing out and the signed-out page."""

from __future__ import annotations

import functools
import time
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import login as django_login
from django.contrib.auth import logout as django_logout
from django.contrib.auth.decorators import login_not_required, login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from social_core.actions import do_auth, do_complete
from social_core.exceptions import AuthSessionError, SocialAuthBaseException

from identityhub.audit import record_event
from identityhub.loopback import remote_debug_client
from identityhub.ratelimit import limit_per_address

from . import passkeys, selectors
from .hub_session import SID_SESSION_KEY, end_hub_sessions, new_sid, request_sign_out, session_sid
from .models import Upstream, User
from .pipeline import SignInRefused
from .refusals import Refused, offers_for
from .upstreams import (
    PASSED_ON_PARAMS,
    UpstreamUnavailable,
    count_orphan_callback,
    get_upstream,
    load_backend,
    pending_sign_in,
)

SESSION_BACKEND = "accounts.auth_backends.UpstreamSessionBackend"
AUTH_TIME_SESSION_KEY = "hub_auth_time"


def visible_upstreams() -> list[Upstream]:
    """The upstreams the sign-in and invitation pages offer (the mock one only in development)."""
    upstreams = Upstream.objects.filter(enabled=True)
    if not settings.DEBUG:
        upstreams = upstreams.exclude(type=Upstream.Type.MOCK)
    return list(upstreams)


def _too_many(request: HttpRequest, retry_after: int) -> HttpResponse:
    return render_refusal(
        request, message=_("Too many sign-in attempts from your network."),
        advice=_("Wait %(seconds)d seconds, then try again.") % {"seconds": retry_after}, status=429)


# Per client address (issue 9 item 9): every /login* and /complete* request counts.
limit_login = limit_per_address("login", "HUB_RATELIMIT_LOGIN", _too_many)
limit_complete = limit_per_address("complete", "HUB_RATELIMIT_COMPLETE", _too_many)
# An anonymous visitor's session that only holds a pending sign-in: social-auth's state lives 30 min.
PENDING_SIGN_IN_SESSION_SECONDS = 3600


@never_cache
@limit_login
def login_choice(request: HttpRequest) -> HttpResponse:
    """The upstreams' buttons and, once the hub has a passkey (or when it has no upstream), "Sign in
    with a passkey". One upstream and no passkey anywhere: go straight to the upstream."""
    upstreams = visible_upstreams()
    query = request.GET.urlencode()
    offer_passkeys = passkeys.available() and (not upstreams or passkeys.any_exist())
    if len(upstreams) == 1 and not offer_passkeys:
        url = reverse("accounts:login-upstream", args=[upstreams[0].pk])
        return redirect(f"{url}?{query}" if query else url)
    choices = [
        (u, reverse("accounts:login-upstream", args=[u.pk]) + (f"?{query}" if query else "")) for u in upstreams
    ]
    passkey = {"options_url": reverse("accounts:passkey-sign-in-options"),
               "verify_url": reverse("accounts:passkey-sign-in"),
               "next": request.GET.get("next", "")} if offer_passkeys else None
    return render(request, "accounts/login.html",
                  {"choices": choices, "passkey": passkey, "place": selectors.sign_in_place_name()},
                  status=200 if upstreams or passkey else 503)


def render_refusal(request: HttpRequest, *, message: str, advice: str = "", retry: str = "", retry_label: str = "",
                   contacts: list[selectors.Contact] | None = None, status: int = 403,
                   language_next: str = "", refused: Refused | None = None) -> HttpResponse:
    """The one refusal page: what happened, what to do, whom to ask (shared with the provider), and
    what the registered offers add for this refusal (`refused`; "Ask for access")."""
    return render(request, "accounts/refused.html", {
        "message": message, "advice": advice, "retry": retry, "retry_label": retry_label,
        "contacts": contacts or [], "language_next": language_next or retry,
        "offers": offers_for(request, refused),
    }, status=status)


def with_upstream(view):
    """Resolve the URL's upstream id to an enabled upstream, or answer with a clear 404 page."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, upstream_id: str) -> HttpResponse:
        try:
            upstream = get_upstream(upstream_id)
        except UpstreamUnavailable:
            return render_refusal(
                request, message=_("There is no way to sign in called “%(upstream)s” on this hub.") % {
                    "upstream": upstream_id},
                advice=_("Go back to the sign-in page and pick one of the buttons there."),
                retry=reverse("accounts:login"), retry_label=_("Go to the sign-in page"), status=404)
        return view(request, upstream)

    return wrapper


@never_cache
@limit_login
@with_upstream
def login_upstream(request: HttpRequest, upstream: Upstream) -> HttpResponse:
    """GET starts the upstream login (social-auth's own begin view is POST-only)."""
    if not request.user.is_authenticated:  # not a fortnight's row per anonymous visit
        request.session.set_expiry(PENDING_SIGN_IN_SESSION_SECONDS)
    backend = load_backend(request, upstream)
    backend.passed_on = reauth_params(request)
    try:
        return do_auth(backend, redirect_name="next")
    except SocialAuthBaseException as error:
        return _failed(request, upstream, error)


def reauth_params(request: HttpRequest) -> dict[str, str]:
    """The request's `prompt=login` and `max_age`, to pass on: the hub hands them to /login/, and
    /login/<id>/ to the upstream — or the upstream's own session signs people straight back in."""
    passed = {}
    if "login" in request.GET.get("prompt", "").split():
        passed["prompt"] = "login"
    max_age = parse_max_age(request.GET.get("max_age", ""))
    if max_age is not None:
        passed["max_age"] = str(max_age)
    login_hint = request.GET.get("login_hint", "")  # OIDC: which account the app expects
    if login_hint and len(login_hint) <= 320 and login_hint.isprintable():
        passed["login_hint"] = login_hint
    assert set(passed) <= set(PASSED_ON_PARAMS)
    return passed


@never_cache
@limit_login
@with_upstream
def mock_upstream(request: HttpRequest, upstream: Upstream) -> HttpResponse:
    """The development upstream's sign-in form: pick a declared person."""
    if upstream.type != Upstream.Type.MOCK:
        raise Http404
    if remote_debug_client(request):  # anyone could pick anyone: loopback only (issue 9 item 15)
        raise PermissionDenied("the mock upstream only answers on loopback")
    people = User.objects.filter(is_active=True).order_by("email")
    return render(
        request,
        "accounts/mock_upstream.html",
        {
            "upstream": upstream,
            "people": people,
            "state": request.GET.get("state", ""),
            "action": reverse("accounts:complete", args=[upstream.pk]),
        },
    )


@never_cache
@csrf_exempt  # the upstream posts back here (form_post); social-auth checks `state`
@limit_complete
@with_upstream
def complete(request: HttpRequest, upstream: Upstream) -> HttpResponse:
    backend = load_backend(request, upstream)
    if not pending_sign_in(request, upstream.pk):
        # No sign-in of this browser waits for this callback (stray, replayed or forged): the same
        # page social-auth's check would give, counted instead of one audit row per request.
        count_orphan_callback(upstream.pk)
        error = AuthSessionError(backend, "state", code="session_context_missing", stage="callback")
        return _failed(request, upstream, error, audit=False)

    def sign_in(backend, user, social_user) -> None:
        start_hub_session(request, user, method=upstream.pk)

    try:
        return do_complete(backend, sign_in, user=None, redirect_name="next")
    except SignInRefused as refusal:
        record_event("refusal", reason=refusal.reason, email=refusal.email, upstream_id=upstream.pk)
        # Whom to ask, only when the upstream proved who this is (an existing link, or a verified
        # address already linked elsewhere): never tell a stranger an admin's address.
        proven = refusal.reason in {"inactive", "already_linked"}
        refused = Refused(reason=refusal.reason, email=refusal.email, identity=refusal.identity,
                          next_url=request.session.get("next", ""))
        return render_refusal(request, message=refusal.message, advice=refusal.advice,
                              retry=reverse("accounts:login"),
                              contacts=selectors.admins_of_person(refusal.email) if proven else [],
                              refused=refused)
    except SocialAuthBaseException as error:
        return _failed(request, upstream, error)


def start_hub_session(request: HttpRequest, user: User, *, method: str) -> None:
    """Sign `user` in to the hub: every way of signing in ends here (an upstream, a passkey, an
    invitation). `method` is the upstream id or "passkey"; it is kept in the session and audited."""
    django_login(request, user, backend=SESSION_BACKEND)
    request.session.set_expiry(None)  # signed in: the normal session age, not the pending sign-in's
    request.session[AUTH_TIME_SESSION_KEY] = int(time.time())
    request.session["hub_upstream"] = method
    # The hub session's id (ID tokens' `sid`); kept when the same person signs in again here.
    request.session.setdefault(SID_SESSION_KEY, new_sid())
    if method == "passkey":
        record_event("sign_in", user=user, method="passkey")
    else:
        record_event("sign_in", user=user, upstream_id=method)


def _failed(request: HttpRequest, upstream: Upstream, error: Exception, *, audit: bool = True) -> HttpResponse:
    if audit:
        record_event("refusal", reason="upstream_error", upstream_id=upstream.pk, error=str(error)[:300])
    return render_refusal(
        request,
        message=_("Signing in with %(upstream)s did not work: %(error)s") % {"upstream": upstream.label,
                                                                            "error": error},
        advice=_("Try again. If it keeps failing, tell your household admin."),
        retry=reverse("accounts:login"),
        status=400,
    )


@never_cache
@login_required
def account(request: HttpRequest) -> HttpResponse:
    """The person's own page: their apps, NAS accounts, households and how they sign in."""
    user = request.user
    return render(request, "accounts/account.html", {
        "apps": selectors.launchable_apps(user),
        "nas_accounts": selectors.nas_accounts(user),
        "households": selectors.households_of(user),
        "sign_ins": selectors.linked_sign_ins(user),
    })


def profile(request: HttpRequest) -> HttpResponse:
    """The old address of the account page."""
    return redirect("accounts:account")


@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    """Sign out of the hub (a CSRF-protected POST), and the apps signed in through this hub session
    (back-channel logout; apps of the person's other devices stay signed in)."""
    sid = session_sid(request.session, create=False)
    if sid:
        request_sign_out(request.user, sid=sid, reason="sign_out")
    django_logout(request)
    return redirect("accounts:logged-out")


@require_POST
def sign_out_everywhere(request: HttpRequest) -> HttpResponse:
    """Sign out of every app, on every device (a CSRF-protected POST): the apps get logout tokens and
    lose their tokens, the person's other hub sessions end, then this one."""
    request_sign_out(request.user, reason="sign_out_everywhere")
    end_hub_sessions(request.user)
    django_logout(request)
    return redirect("accounts:logged-out")


@never_cache
@login_not_required
def logged_out(request: HttpRequest) -> HttpResponse:
    """Where every sign-out lands. It never redirects: a link starts the next sign-in."""
    return render(request, "accounts/logged_out.html")


def parse_max_age(value: str) -> int | None:
    """An OIDC `max_age` (ASCII digits) as seconds, or None. `str.isdigit` alone also accepts
    digits such as '²' that int() refuses, and int() refuses more than 4300 digits: both were 500s."""
    if value.isascii() and value.isdigit() and len(value) <= 12:
        return int(value)
    return None


def login_url_with(next_url: str, **params: str) -> str:
    query = {"next": next_url, **{k: v for k, v in params.items() if v}}
    return f"{reverse('accounts:login')}?{urlencode(query)}"
