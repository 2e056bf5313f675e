"""Rate limits per client address and per client (django-ratelimit counting in the default cache).

`/login*` and `/complete*` count every request per address (`HUB_RATELIMIT_LOGIN`,
`HUB_RATELIMIT_COMPLETE`); the token endpoint counts only *failed client authentications* (401),
per address (`HUB_RATELIMIT_TOKEN_FAILURES`) and per client_id (`HUB_RATELIMIT_TOKEN_CLIENT_FAILURES`),
so successful exchanges — the sign-in hot path — are never refused. Over a limit the answer is 429
with `Retry-After` (the seconds left in django-ratelimit's fixed window).

Rates are read from settings at each request (`"30/m"`, `"100/5m"`; `None` = no limit). The counters
live in the default cache: Redis with REDIS_URL (shared by every process, atomic INCR); without it,
LocMemCache, so each web process counts on its own (see docs/operations.md).

The hub-wide core imports no app: the caller gives the response to send when a limit is hit.
"""

from __future__ import annotations

import base64
import functools
import ipaddress
from collections.abc import Callable
from urllib.parse import unquote_plus

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django_ratelimit.core import get_usage

TooMany = Callable[[HttpRequest, int], HttpResponse]


def client_address(request: HttpRequest) -> str:
    """The address to count for: REMOTE_ADDR, or behind the reverse proxy (HUB_BEHIND_PROXY=1) the
    last X-Forwarded-For hop — the one the proxy appended; earlier hops are the client's to invent.
    IPv6 addresses count per /64 (one host usually holds the whole prefix)."""
    candidates = []
    if getattr(settings, "HUB_BEHIND_PROXY", False):
        candidates.append(request.META.get("HTTP_X_FORWARDED_FOR", "").rsplit(",", 1)[-1].strip())
    candidates.append(request.META.get("REMOTE_ADDR", ""))
    for candidate in candidates:
        try:
            address = ipaddress.ip_address(candidate)
        except ValueError:
            continue
        if address.version == 6:
            return str(ipaddress.ip_network(f"{address}/64", strict=False).network_address)
        return str(address)
    return "unknown"


def _usage(request: HttpRequest, group: str, setting: str, value: str, *, increment: bool) -> dict | None:
    rate = getattr(settings, setting, None)
    if not rate:
        return None
    return get_usage(request, group=group, key=lambda _group, _request: value, rate=rate, increment=increment)


def _retry_after(usage: dict) -> int:
    return max(1, int(usage.get("time_left", 1)))


def limit_per_address(group: str, setting: str, too_many: TooMany):
    """View decorator: every request counts for its client address; over the limit → `too_many`."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            usage = _usage(request, group, setting, client_address(request), increment=True)
            if usage is not None and usage["should_limit"]:
                response = too_many(request, _retry_after(usage))
                response["Retry-After"] = str(_retry_after(usage))
                return response
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def token_client_id(request: HttpRequest) -> str:
    """The client_id a token request authenticates as: HTTP Basic (form-encoded, RFC 6749 §2.3.1)
    or the form body."""
    auth = request.META.get("HTTP_AUTHORIZATION", "")
    if auth[:6].lower() == "basic ":
        try:
            user = base64.b64decode(auth[6:].strip(), validate=True).decode("utf-8").split(":", 1)[0]
            return unquote_plus(user)
        except (ValueError, UnicodeDecodeError):
            return ""
    return request.POST.get("client_id", "")


def too_many_token_failures(retry_after: int) -> HttpResponse:
    """RFC 6749 §5.2 has no "slow down" for the token endpoint (`slow_down` is the device grant's,
    `temporarily_unavailable` the authorization endpoint's): `invalid_request` is the registered error
    that fits, and 429 + Retry-After say when to come back (RFC 6585)."""
    return JsonResponse(
        {"error": "invalid_request",
         "error_description": "too many failed client authentications; retry after the Retry-After delay"},
        status=429, headers={"Retry-After": str(retry_after), "Cache-Control": "no-store", "Pragma": "no-cache"},
    )


def limit_failed_client_authentication(post):
    """For the token view's `post`: refuse (429) while the address or the client_id is over its limit
    of failed client authentications; count a request only when it is answered 401."""

    @functools.wraps(post)
    def wrapper(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        counters = [("token-failures-address", "HUB_RATELIMIT_TOKEN_FAILURES", client_address(request))]
        client_id = token_client_id(request)
        if client_id:
            counters.append(("token-failures-client", "HUB_RATELIMIT_TOKEN_CLIENT_FAILURES", client_id))
        for group, setting, value in counters:
            usage = _usage(request, group, setting, value, increment=False)
            if usage is not None and usage["count"] >= usage["limit"]:  # this many failures already
                return too_many_token_failures(_retry_after(usage))
        response = post(self, request, *args, **kwargs)
        if response.status_code == 401:
            for group, setting, value in counters:
                _usage(request, group, setting, value, increment=True)
        return response

    return wrapper
