from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.views import defaults
from django.views.decorators.cache import never_cache

log = logging.getLogger(__name__)


@login_not_required
def favicon(request: HttpRequest) -> HttpResponse:
    """The hub's icon, for browsers that ask /favicon.ico (a redirect sets no cookie)."""
    response = HttpResponsePermanentRedirect(static("hub/favicon.svg"))
    response["Cache-Control"] = "public, max-age=86400"
    return response


@login_not_required
def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness: the process answers."""
    return JsonResponse({"status": "ok"})


@never_cache
@login_not_required
def readyz(request: HttpRequest) -> HttpResponse:
    """Readiness: the database answers, the signing key is loaded and, with REDIS_URL, Redis answers.

    Says which check failed, never why in detail (that goes to the log)."""
    from identityhub.oidc.keys import keyring

    checks: dict[str, str] = {}
    probes = {"database": _database, "signing_key": lambda: keyring()}
    if settings.REDIS_URL:
        probes["redis"] = _redis
    for name, probe in probes.items():
        try:
            probe()
            checks[name] = "ok"
        except Exception:  # a readiness probe reports every failure, whatever its kind
            log.exception("readiness check %s failed", name)
            checks[name] = "failed"
    ready = all(state == "ok" for state in checks.values())
    return JsonResponse({"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503)


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _redis() -> None:
    cache.set("identityhub:readyz", "1", 5)
    if cache.get("identityhub:readyz") != "1":
        raise RuntimeError("cache round trip failed")


def home(request: HttpRequest) -> HttpResponse:
    return redirect("accounts:account")


# --- error pages (handler400/403/404/500 in urls.py; templates 400.html …) -------------------
def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    return defaults.bad_request(request, exception, template_name="400.html")


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    return defaults.permission_denied(request, exception, template_name="403.html")


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    return defaults.page_not_found(request, exception, template_name="404.html")


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's own: 500.html rendered with an empty context, so it cannot fail on the request."""
    return defaults.server_error(request, template_name="500.html")


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: an expired or foreign form, explained (Django's page has inline styles)."""
    log.info("CSRF failure on %s: %s", request.path, reason)
    return render(request, "403_csrf.html", status=403)
