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
import time
from collections.abc import Callable
from urllib.parse import unquote_plus

from django.conf import settings
from django.core.cache import caches
from django.http import HttpRequest, HttpResponse, JsonResponse
from django_ratelimit.core import ALL, _get_window, _make_cache_key, _split_rate, get_usage

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
        retry_after = _over_limit(counters)
        if retry_after is not None:
            return too_many_token_failures(retry_after)
        response = post(self, request, *args, **kwargs)
        if response.status_code == 401:
            for group, setting, value in counters:
                _usage(request, group, setting, value, increment=True)
        return response

    return wrapper


def _over_limit(counters) -> int | None:
    """Seconds to wait when a counter already holds its limit of failures, else None.

    django-ratelimit's `get_usage(increment=False)` makes one cache write per counter (`add` of a 0)
    and then a read; on every token request — the sign-in hot path — that was two Redis round trips.
    This reads the same keys (django-ratelimit's own key and window functions) with one `get_many`:
    a missing key is a count of 0, as `get_usage` reports it. Failures are still counted by
    `get_usage(increment=True)`, so both agree on the keys. Fails open, like RATELIMIT_FAIL_OPEN."""
    if not getattr(settings, "RATELIMIT_ENABLE", True):
        return None
    windows = {}
    for group, setting, value in counters:
        rate = getattr(settings, setting, None)
        if not rate:
            continue
        limit, period = _split_rate(rate)
        window = _get_window(value, period)
        windows[_make_cache_key(group, window, rate, value, ALL)] = (limit, window)
    if not windows:
        return None
    try:
        counts = caches[getattr(settings, "RATELIMIT_USE_CACHE", "default")].get_many(list(windows))
    except Exception:
        if getattr(settings, "RATELIMIT_FAIL_OPEN", False):  # a cache that cannot count locks no one out
            return None
        raise
    for key, (limit, window) in windows.items():
        if (counts.get(key) or 0) >= limit:  # this many failures already
            return max(1, window - int(time.time()))
    return None
