"""A tiny relying party inside the hub, for `make run` only: click through the whole login and
see the decoded, verified ID token with its `username` claim. Mounted only when HUB_DEBUG=1.

Like a real relying party, it keeps its pending sign-in (state, nonce, PKCE verifier) in its own
signed cookie, not in the hub's session: the hub flushes its session when someone signs in as another
person ("Use another account" on a refusal), which would lose the demo's state ("state mismatch").
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from urllib.parse import urlencode

import requests
from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from jwcrypto import jwk, jwt

DEMO_CLIENT_ID = "demo-dsm"
PENDING_COOKIE = "demo_rp_pending"
PENDING_SALT = "identityhub.demo.pending"
PENDING_MAX_AGE = 600  # seconds a started sign-in may take
PENDING_KEEP = 5  # started sign-ins remembered at once (several tabs)


def demo_redirect_uri() -> str:
    return f"{settings.HUB_ISSUER}/demo/callback/"


def demo_client_secret() -> str:
    """Generated once into var/ (development only; never a real secret)."""
    path = settings.VAR_DIR / "demo_client_secret"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def index(request: HttpRequest) -> HttpResponse:
    return render(request, "demo/index.html", {"client_id": DEMO_CLIENT_ID})


def _pending(request: HttpRequest) -> dict[str, dict[str, str]]:
    """The demo's started sign-ins, by state (empty when the cookie is missing, expired or forged)."""
    try:
        pending = signing.loads(request.COOKIES.get(PENDING_COOKIE, ""), salt=PENDING_SALT, max_age=PENDING_MAX_AGE)
    except (ValueError, signing.BadSignature):
        return {}
    return pending if isinstance(pending, dict) else {}


def _store_pending(response: HttpResponse, pending: dict[str, dict[str, str]]) -> None:
    if not pending:
        response.delete_cookie(PENDING_COOKIE, path=reverse("demo:index"))
        return
    # signing.dumps: URL-safe characters only, so the value needs no cookie quoting.
    response.set_cookie(
        PENDING_COOKIE, signing.dumps(pending, salt=PENDING_SALT), max_age=PENDING_MAX_AGE, path=reverse("demo:index"),
        httponly=True, samesite="Lax", secure=settings.HUB_ISSUER.startswith("https:"),
    )


def start(request: HttpRequest) -> HttpResponse:
    state, nonce, verifier = secrets.token_urlsafe(16), secrets.token_urlsafe(16), secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = {
        "response_type": "code", "client_id": DEMO_CLIENT_ID, "redirect_uri": demo_redirect_uri(),
        "scope": request.GET.get("scope", "openid email profile groups"), "state": state,
        "nonce": nonce, "code_challenge": challenge, "code_challenge_method": "S256",
    }
    if request.GET.get("prompt"):
        query["prompt"] = request.GET["prompt"]
    pending = _pending(request)
    pending[state] = {"nonce": nonce, "verifier": verifier}
    response = redirect(f"{settings.HUB_ISSUER}/authorize/?{urlencode(query)}")
    _store_pending(response, dict(list(pending.items())[-PENDING_KEEP:]))
    return response


def callback(request: HttpRequest) -> HttpResponse:
    started = _pending(request)
    pending = started.pop(request.GET.get("state", ""), None)
    response = _callback(request, pending)
    _store_pending(response, started)  # each started sign-in completes once
    return response


def _callback(request: HttpRequest, pending: dict[str, str] | None) -> HttpResponse:
    context: dict = {"params": dict(request.GET.items())}
    if "error" in request.GET:
        return render(request, "demo/result.html", {**context, "error": request.GET["error"]})
    if not pending:
        return render(request, "demo/result.html", {**context, "error": "state mismatch: start again"}, status=400)
    token_response = requests.post(
        f"{settings.HUB_ISSUER}/token/",
        data={"grant_type": "authorization_code", "code": request.GET.get("code", ""),
              "redirect_uri": demo_redirect_uri(), "code_verifier": pending["verifier"]},
        auth=(DEMO_CLIENT_ID, demo_client_secret()), timeout=10,
    )
    if token_response.status_code != 200:
        return render(request, "demo/result.html", {**context, "error": token_response.text}, status=502)
    tokens = token_response.json()
    discovery = requests.get(f"{settings.HUB_ISSUER}/.well-known/openid-configuration", timeout=10).json()
    keys = jwk.JWKSet.from_json(requests.get(discovery["jwks_uri"], timeout=10).text)
    verified = jwt.JWT(jwt=tokens["id_token"], key=keys, algs=["RS256"],
                       check_claims={"iss": settings.HUB_ISSUER, "aud": DEMO_CLIENT_ID, "exp": None,
                                     "nonce": pending["nonce"]})
    userinfo = requests.get(discovery["userinfo_endpoint"], timeout=10,
                            headers={"Authorization": f"Bearer {tokens['access_token']}"}).json()
    return render(request, "demo/result.html", {
        **context,
        "id_token_header": json.dumps(json.loads(verified.header), indent=2),
        "id_token_claims": json.dumps(json.loads(verified.claims), indent=2, ensure_ascii=False),
        "userinfo": json.dumps(userinfo, indent=2, ensure_ascii=False),
        "username": json.loads(verified.claims).get("username"),
    })
