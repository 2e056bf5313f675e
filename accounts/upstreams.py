"""Upstream identity providers as social-auth backends, built from Upstream rows.

social-auth finds backends by class among AUTHENTICATION_BACKENDS; ours come from the database,
so the hub builds one class per upstream (discovery and JWKS caches are per class) and uses its own
strategy, whose `authenticate` calls that backend directly. Django's session then carries
`accounts.auth_backends.UpstreamSessionBackend`, so changing an upstream needs no restart.
"""

from __future__ import annotations

import secrets
import threading
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core.cache import cache
from django.urls import reverse
from social_core.backends.base import BaseAuth
from social_core.backends.open_id_connect import OpenIdConnectAuth
from social_core.exceptions import AuthException
from social_django.utils import load_strategy

from identityhub.loopback import remote_debug_client

from .models import GOOGLE_ISSUER, Upstream, normalize_email

PASSED_ON_PARAMS = ("prompt", "max_age", "login_hint")  # forwarded to the upstream (stack-pitfalls: prompt=login)


class UpstreamUnavailable(Exception):
    """Unknown, disabled or (mock outside debug) refused upstream."""


class UpstreamMixin:
    """Settings come from the Upstream row, not from SOCIAL_AUTH_* settings."""

    upstream: Upstream
    passed_on: dict[str, str]

    def get_key_and_secret(self):
        return self.upstream.client_id, self.upstream.client_secret

    def auth_params(self, state=None):
        params = super().auth_params(state)
        params.update(getattr(self, "passed_on", {}))
        return params


class OidcUpstream(UpstreamMixin, OpenIdConnectAuth):
    """Google or any OIDC issuer, with PKCE (social-auth's generic OIDC leaves it off)."""

    DEFAULT_USE_PKCE = True
    USE_PKCE = True
    EXTRA_DATA: list = []

    def setting(self, name, default=None):
        if name == "USE_PKCE":
            return True
        return super().setting(name, default)

    def oidc_endpoint(self) -> str:
        return (self.upstream.issuer or GOOGLE_ISSUER).rstrip("/")


class MockUpstream(UpstreamMixin, BaseAuth):
    """Development only: a form on the hub that lets you pick a declared person."""

    ID_KEY = "email"

    def auth_url(self) -> str:
        state = secrets.token_urlsafe(24)
        self.strategy.session_set(f"{self.name}_state", state)
        return reverse("accounts:mock-upstream", args=[self.name]) + "?" + urlencode({"state": state})

    def auth_params(self, state=None):
        return {}

    def auth_complete(self, *args, **kwargs):
        if not settings.DEBUG:
            raise AuthException(self, "the mock upstream only works with HUB_DEBUG=1")
        if remote_debug_client(self.strategy.request):  # issue 9 item 15: loopback only
            raise AuthException(self, "the mock upstream only answers on loopback")
        state = self.strategy.session_pop(f"{self.name}_state")
        if not state or state != self.data.get("state"):
            raise AuthException(self, "state mismatch")
        email = normalize_email(self.data.get("email") or "")
        response = {"email": email, "email_verified": True, "sub": f"mock:{email}"}
        kwargs.update({"response": response, "backend": self})
        return self.strategy.authenticate(*args, **kwargs)

    def get_user_details(self, response: dict[str, Any]) -> dict[str, Any]:
        return {"email": response.get("email", ""), "username": response.get("email", "")}

    def get_user_id(self, details, response):
        return response["sub"]


_classes: dict[tuple, type] = {}
_classes_lock = threading.Lock()


def _backend_class(upstream: Upstream) -> type:
    """One class per upstream configuration (social-auth caches discovery/JWKS per class)."""
    base = MockUpstream if upstream.type == Upstream.Type.MOCK else OidcUpstream
    key = (upstream.pk, upstream.type, upstream.issuer)
    with _classes_lock:
        cls = _classes.get(key)
        if cls is None:
            cls = type(f"Upstream_{upstream.pk.replace('-', '_')}", (base,), {"name": upstream.pk})
            _classes[key] = cls
    return cls


def get_upstream(upstream_id: str) -> Upstream:
    upstream = Upstream.objects.filter(pk=upstream_id, enabled=True).first()
    if upstream is None:
        raise UpstreamUnavailable(f"no upstream named {upstream_id!r}")
    if upstream.type == Upstream.Type.MOCK and not settings.DEBUG:
        raise UpstreamUnavailable("the mock upstream is refused unless HUB_DEBUG=1")
    return upstream


def pending_sign_in(request, upstream_id: str) -> bool:
    """Whether this browser's session holds a sign-in started with this upstream: social-core 7 keeps
    the OAuth2 transactions under `<name>_oauth2_transaction_index`; the mock its `<name>_state`.
    Reading an absent session creates nothing."""
    session = request.session
    return bool(session.get(f"{upstream_id}_oauth2_transaction_index") or session.get(f"{upstream_id}_state"))


def _orphan_key(upstream_id: str) -> str:
    return f"hub:orphan_callbacks:{upstream_id}"


def count_orphan_callback(upstream_id: str) -> None:
    """A callback that no sign-in of this browser waits for (a stray or forged `/complete/<id>/`):
    counted in the shared cache (Redis with REDIS_URL) instead of an audit row per request."""
    key = _orphan_key(upstream_id)
    cache.add(key, 0, timeout=None)
    try:
        cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.add(key, 1, timeout=None)


def orphan_callbacks(upstream_id: str) -> int:
    return int(cache.get(_orphan_key(upstream_id)) or 0)


def load_backend(request, upstream: Upstream):
    """A ready social-auth backend for `upstream`, bound to this request."""
    strategy = load_strategy(request)
    redirect_uri = reverse("accounts:complete", args=[upstream.pk])
    backend = _backend_class(upstream)(strategy, redirect_uri)
    backend.upstream = upstream
    backend.passed_on = {}
    return backend
