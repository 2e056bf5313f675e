"""Sign-in pages: choose an upstream, start it (GET), complete it, or explain a refusal."""

from __future__ import annotations

import functools
import time
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import login as django_login
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from social_core.actions import do_auth, do_complete
from social_core.exceptions import SocialAuthBaseException

from identityhub.audit import record_event

from .models import Upstream, User
from .pipeline import SignInRefused
from .upstreams import PASSED_ON_PARAMS, UpstreamUnavailable, get_upstream, load_backend

SESSION_BACKEND = "accounts.auth_backends.UpstreamSessionBackend"
AUTH_TIME_SESSION_KEY = "hub_auth_time"


def _visible_upstreams():
    upstreams = Upstream.objects.filter(enabled=True)
    if not settings.DEBUG:
        upstreams = upstreams.exclude(type=Upstream.Type.MOCK)
    return list(upstreams)


@never_cache
def login_choice(request: HttpRequest) -> HttpResponse:
    """One upstream: go straight to it. Several: let the person choose."""
    upstreams = _visible_upstreams()
    query = request.GET.urlencode()
    if len(upstreams) == 1:
        url = reverse("accounts:login-upstream", args=[upstreams[0].pk])
        return redirect(f"{url}?{query}" if query else url)
    choices = [
        (u, reverse("accounts:login-upstream", args=[u.pk]) + (f"?{query}" if query else "")) for u in upstreams
    ]
    return render(request, "accounts/login.html", {"choices": choices}, status=200 if upstreams else 503)


def with_upstream(view):
    """Resolve the URL's upstream id to an enabled upstream, or answer with a clear 404 page."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, upstream_id: str) -> HttpResponse:
        try:
            upstream = get_upstream(upstream_id)
        except UpstreamUnavailable as error:
            return render(request, "accounts/refused.html", {"message": str(error), "advice": ""}, status=404)
        return view(request, upstream)

    return wrapper


@never_cache
@with_upstream
def login_upstream(request: HttpRequest, upstream: Upstream) -> HttpResponse:
    """GET starts the upstream login (social-auth's own begin view is POST-only)."""
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
    assert set(passed) <= set(PASSED_ON_PARAMS)
    return passed


@never_cache
@with_upstream
def mock_upstream(request: HttpRequest, upstream: Upstream) -> HttpResponse:
    """The development upstream's sign-in form: pick a declared person."""
    if upstream.type != Upstream.Type.MOCK:
        raise Http404
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
@with_upstream
def complete(request: HttpRequest, upstream: Upstream) -> HttpResponse:
    backend = load_backend(request, upstream)

    def sign_in(backend, user, social_user) -> None:
        django_login(request, user, backend=SESSION_BACKEND)
        request.session[AUTH_TIME_SESSION_KEY] = int(time.time())
        request.session["hub_upstream"] = upstream.pk
        record_event("sign_in", user=user, upstream_id=upstream.pk)

    try:
        return do_complete(backend, sign_in, user=None, redirect_name="next")
    except SignInRefused as refusal:
        record_event("refusal", reason=refusal.reason, email=refusal.email, upstream_id=upstream.pk)
        return render(
            request,
            "accounts/refused.html",
            {"message": refusal.message, "advice": refusal.advice, "retry": reverse("accounts:login")},
            status=403,
        )
    except SocialAuthBaseException as error:
        return _failed(request, upstream, error)


def _failed(request: HttpRequest, upstream: Upstream, error: Exception) -> HttpResponse:
    record_event("refusal", reason="upstream_error", upstream_id=upstream.pk, error=str(error)[:300])
    return render(
        request,
        "accounts/refused.html",
        {
            "message": f"Signing in with {upstream.label} did not work: {error}",
            "advice": "Try again. If it keeps failing, tell your household admin.",
            "retry": reverse("accounts:login"),
        },
        status=400,
    )


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    user = request.user
    return render(
        request,
        "accounts/profile.html",
        {
            "memberships": user.memberships.select_related("household"),
            "accounts": user.dsm_accounts.select_related("nas").filter(present=True),
            "logout_url": reverse("oauth2_provider:rp-initiated-logout"),
        },
    )


def parse_max_age(value: str) -> int | None:
    """An OIDC `max_age` (ASCII digits) as seconds, or None. `str.isdigit` alone also accepts
    digits such as '²' that int() refuses, and int() refuses more than 4300 digits: both were 500s."""
    if value.isascii() and value.isdigit() and len(value) <= 12:
        return int(value)
    return None


def login_url_with(next_url: str, **params: str) -> str:
    query = {"next": next_url, **{k: v for k, v in params.items() if v}}
    return f"{reverse('accounts:login')}?{urlencode(query)}"
