"""A small but real OpenID Connect provider on 127.0.0.1, standing in for Google in tests.

It signs RS256 ID tokens with its own key, serves discovery, JWKS, token and userinfo, checks
client authentication and PKCE, and records every authorization request so tests can assert
what the hub passed on (prompt, max_age, code_challenge).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

from jwcrypto import jwk, jwt


@dataclass
class Identity:
    sub: str
    email: str
    email_verified: bool = True
    name: str = ""


@dataclass
class FakeOIDCProvider:
    client_id: str = "hub-at-upstream"
    client_secret: str = "upstream-secret-0123456789-abcdefghijkl"
    identity: Identity | None = None
    authorize_requests: list[dict] = field(default_factory=list)
    token_requests: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.key = jwk.JWK.generate(kty="RSA", size=2048, kid="upstream-key-1")
        self._codes: dict[str, dict] = {}
        self._tokens: dict[str, Identity] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeOIDCProvider:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- protocol ------------------------------------------------------------------------------
    def discovery(self) -> dict:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
        }

    def authorize(self, params: dict[str, str]) -> tuple[int, dict[str, str]]:
        self.authorize_requests.append(params)
        redirect_uri = params["redirect_uri"]
        if params.get("client_id") != self.client_id or self.identity is None:
            return 302, {"Location": f"{redirect_uri}?{urlencode({'error': 'access_denied', 'state': params.get('state', '')})}"}
        code = secrets.token_urlsafe(16)
        self._codes[code] = {"params": params, "identity": self.identity}
        return 302, {"Location": f"{redirect_uri}?{urlencode({'code': code, 'state': params.get('state', '')})}"}

    def token(self, form: dict[str, str], headers) -> tuple[int, dict]:
        self.token_requests.append(form)
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        auth = headers.get("Authorization", "")
        if auth.startswith("Basic "):
            client_id, client_secret = base64.b64decode(auth[6:]).decode().split(":", 1)
        if client_id != self.client_id or client_secret != self.client_secret:
            return 401, {"error": "invalid_client"}
        grant = self._codes.pop(form.get("code", ""), None)
        if grant is None or grant["params"]["redirect_uri"] != form.get("redirect_uri"):
            return 400, {"error": "invalid_grant"}
        challenge = grant["params"].get("code_challenge")
        if challenge:
            verifier = form.get("code_verifier", "")
            computed = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if computed != challenge:
                return 400, {"error": "invalid_grant", "error_description": "PKCE verification failed"}
        identity: Identity = grant["identity"]
        now = int(time.time())
        claims = {
            "iss": self.issuer, "sub": identity.sub, "aud": self.client_id, "iat": now, "exp": now + 300,
            "email": identity.email, "email_verified": identity.email_verified, "name": identity.name,
        }
        if grant["params"].get("nonce"):
            claims["nonce"] = grant["params"]["nonce"]
        token = jwt.JWT(header={"alg": "RS256", "kid": self.key.get("kid")}, claims=claims)
        token.make_signed_token(self.key)
        access_token = secrets.token_urlsafe(24)
        self._tokens[access_token] = identity
        return 200, {"access_token": access_token, "token_type": "Bearer", "expires_in": 300,
                     "id_token": token.serialize()}

    def userinfo(self, headers) -> tuple[int, dict]:
        identity = self._tokens.get(headers.get("Authorization", "").removeprefix("Bearer "))
        if identity is None:
            return 401, {"error": "invalid_token"}
        return 200, {"sub": identity.sub, "email": identity.email, "email_verified": identity.email_verified,
                     "name": identity.name}

    def _handler_class(self):
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _json(self, status: int, body: dict) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                params = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path == "/.well-known/openid-configuration":
                    return self._json(200, provider.discovery())
                if url.path == "/jwks":
                    return self._json(200, {"keys": [provider.key.export_public(as_dict=True)]})
                if url.path == "/authorize":
                    status, headers = provider.authorize(params)
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                if url.path == "/userinfo":
                    return self._json(*provider.userinfo(self.headers))
                return self._json(404, {"error": "not_found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                if self.path == "/token":
                    return self._json(*provider.token(form, self.headers))
                if self.path == "/userinfo":
                    return self._json(*provider.userinfo(self.headers))
                return self._json(404, {"error": "not_found"})

        return Handler
