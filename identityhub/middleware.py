"""Request hygiene that every view relies on."""

from __future__ import annotations

import functools

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject, CSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import JsonResponse


class RefuseNulBytesMiddleware:
    """A NUL byte in a query or form parameter is a 400 (`invalid_request`).

    No OAuth/OIDC parameter may hold one, and PostgreSQL refuses them in text values: a client_id,
    code or token with a NUL reached the database as a DataError, a 500 (SQLite merely found no row).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if _has_nul(request.GET) or (request.method == "POST" and _has_nul(request.POST)):
            # The OAuth error shape, so the token endpoint's clients can read it too.
            return JsonResponse({"error": "invalid_request", "error_description": "NUL byte in a parameter"},
                                status=400)
        return self.get_response(request)


def _has_nul(params) -> bool:
    return any("\x00" in key or any("\x00" in value for value in values) for key, values in params.lists())


class HubCSPMiddleware(CSPMiddleware):
    """django-csp's middleware, with the settings' policy built once instead of per response.

    django-csp builds the header on every response (`dataclasses.asdict`, which deep-copies, and
    `build_policy`): ~45 µs, twice per sign-in. A response with its own policy parts (`_csp_update`,
    `_csp_replace`, `_csp_config`, e.g. `allow_form_redirect`) or a request that used `csp_nonce`
    goes through django-csp unchanged; every other one gets the same two strings django-csp would
    build from the settings (rebuilt when a setting changes), under django-csp's own rules (debug
    404/500, `_csp_exempt`, EXCLUDE_URL_PREFIXES, the nonce guard)."""

    _PARTS = ("_csp_config", "_csp_update", "_csp_replace", "_csp_config_ro", "_csp_update_ro", "_csp_replace_ro")

    def process_response(self, request, response):
        if getattr(request, "_csp_nonce", None) is not None or any(
                getattr(response, name, None) is not None for name in self._PARTS):
            return super().process_response(request, response)
        if response.status_code in (500, 404) and settings.DEBUG:
            return response
        csp, csp_ro = _default_policies()
        for header, value, exempt, setting in ((HEADER, csp, "_csp_exempt", "CONTENT_SECURITY_POLICY"),
                                               (HEADER_REPORT_ONLY, csp_ro, "_csp_exempt_ro",
                                                "CONTENT_SECURITY_POLICY_REPORT_ONLY")):
            if not value or header in response or getattr(response, exempt, False) is not False:
                continue
            prefixes = (getattr(settings, setting, None) or {}).get("EXCLUDE_URL_PREFIXES", None) or ()
            if not request.path_info.startswith(tuple(prefixes)):
                response[header] = value
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)
        return response


@functools.cache
def _default_policies() -> tuple[str, str]:
    return build_policy(), build_policy(report_only=True)


@receiver(setting_changed)
def _policy_setting_changed(setting, **kwargs):
    if setting.startswith("CONTENT_SECURITY_POLICY"):
        _default_policies.cache_clear()
