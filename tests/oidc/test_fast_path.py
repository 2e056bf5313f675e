"""Issue 11's hot path against DOT's own: the same requests through both (`fastpath.ENABLED` on and off)
give the same answers and store the same rows.

Each scenario runs twice in one test — through DOT / oauthlib / jwcrypto (off), then through the
hub's shortcuts (on), each in a fresh browser session — and records a transcript: statuses, OAuth
errors, redirect parameters, ID-token header and claims, userinfo, and every row written (grant,
tokens, redeemed codes, client sessions, audit events) with the values that differ per run (ids,
random tokens, times) normalised. The two transcripts must be equal.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from jwcrypto import jwk, jwt

from tests.conftest import DSM_SECRET, RP_REDIRECT, authorize_query, signed_in

pytestmark = pytest.mark.django_db

VOLATILE_CLAIMS = {"exp", "iat", "jti", "at_hash", "auth_time", "sid"}


def _basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


class Run:
    """One pass of a scenario: a fresh signed-in browser, and a transcript of what happened."""

    def __init__(self, user, fast: bool, monkeypatch):
        from identityhub.oidc import fastpath

        monkeypatch.setattr(fastpath, "ENABLED", fast)
        self.user = user
        self.browser = signed_in(Client(), user)
        self.client = Client()  # the relying party's back channel
        self.log: list = []
        self.marks = self._marks()

    # --- recording ------------------------------------------------------------------------------
    def note(self, *entry):
        self.log.append(entry)

    @staticmethod
    def _marks() -> dict:
        from oauth2_provider.models import AccessToken, Grant, IDToken, RefreshToken

        from identityhub.models import AuditEvent
        from identityhub.oidc.models import ClientSession, RedeemedCode

        models = [Grant, AccessToken, RefreshToken, IDToken, RedeemedCode, ClientSession, AuditEvent]
        return {m: (m.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) for m in models}

    def sid(self) -> str:
        return self.browser.session.get("hub_sid", "")

    def authorize(self, client_id="ds923-dsm", **params):
        response = self.browser.get(authorize_query(client_id, **params))
        location = response.get("Location", "")
        query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        code = query.pop("code", None)
        self.note("authorize", params, response.status_code, location.split("?")[0],
                  sorted(query.items()), code is not None)
        if code:
            self._note_grant(code)
        return code

    def _note_grant(self, code):
        from oauth2_provider.models import Grant

        grant = Grant.objects.get(code=code)
        claims = json.loads(grant.claims)
        if claims.get("_hub_sid") == self.sid():
            claims["_hub_sid"] = "<session sid>"
        claims.pop("_hub_auth_time", None)
        self.note("grant row", grant.user_id, grant.application_id, grant.redirect_uri, grant.scope,
                  grant.code_challenge, grant.code_challenge_method, grant.nonce, claims, grant.resource,
                  round((grant.expires - grant.created).total_seconds(), -1),  # to 10 s: a slow machine
                  grant.updated >= grant.created)

    def token(self, form: dict, basic: tuple[str, str] | None = None) -> dict:
        headers = {"HTTP_AUTHORIZATION": _basic(*basic)} if basic else {}
        response = self.client.post("/token/", form, **headers)
        body = response.json()
        shown = {k: (v if k in {"error", "token_type", "scope", "expires_in"} else "<value>") for k, v in body.items()}
        self.note("token", sorted(k for k in form if k not in {"code", "refresh_token", "code_verifier"}),
                  response.status_code, shown, response.get("Cache-Control"), response.get("WWW-Authenticate"))
        if "id_token" in body:
            self._note_id_token(body["id_token"])
        return body

    def _note_id_token(self, token: str):
        from identityhub.oidc.keys import keyring

        public = jwk.JWK(**keyring().active.export_public(as_dict=True))
        verified = jwt.JWT(jwt=token, key=public, algs=["RS256"], check_claims={})
        header = json.loads(verified.header)
        claims = json.loads(verified.claims)
        assert claims["sid"] == self.sid()
        assert claims["exp"] > claims["iat"] and isinstance(claims["auth_time"], int)
        self.note("id_token", header, {k: v for k, v in claims.items() if k not in VOLATILE_CLAIMS},
                  sorted(claims))

    def userinfo(self, access_token: str):
        response = self.client.get("/userinfo/", HTTP_AUTHORIZATION=f"Bearer {access_token}")
        self.note("userinfo", response.status_code, response.json() if response.status_code == 200 else None)

    def revoke(self, token: str, hint: str):
        response = self.client.post("/revoke/", {"token": token, "token_type_hint": hint},
                                    HTTP_AUTHORIZATION=_basic("ds923-dsm", DSM_SECRET))
        self.note("revoke", hint, response.status_code)

    def rows(self):
        """Every row written since the run started, normalised."""
        from oauth2_provider.models import AccessToken, Grant, IDToken, RefreshToken

        from identityhub.models import AuditEvent
        from identityhub.oidc.models import ClientSession, RedeemedCode

        m = self.marks
        for t in AccessToken.objects.filter(pk__gt=m[AccessToken]).order_by("pk"):
            self.note("access token", t.user_id, t.application_id, t.scope, t.resource, t.token,
                      len(t.token_checksum), t.id_token_id is not None, t.source_refresh_token_id is not None,
                      round((t.expires - t.created).total_seconds(), -1))
        for t in RefreshToken.objects.filter(pk__gt=m[RefreshToken]).order_by("pk"):
            self.note("refresh token", t.user_id, t.application_id, t.token, len(t.token_checksum),
                      t.revoked is not None, t.access_token_id is not None, t.resource)
        for t in IDToken.objects.filter(pk__gt=m[IDToken]).order_by("pk"):
            self.note("id token row", t.user_id, t.application_id, t.scope,
                      round((t.expires - t.created).total_seconds(), -1))
        self.note("grants left", Grant.objects.filter(pk__gt=m[Grant]).count())
        for r in RedeemedCode.objects.filter(pk__gt=m[RedeemedCode]).order_by("pk"):
            self.note("redeemed", r.application_id, len(r.code_digest), len(r.access_token_checksum),
                      r.token_family is not None, r.auth_time is not None, r.sid == self.sid())
        for s in ClientSession.objects.filter(pk__gt=m[ClientSession]).order_by("pk"):
            self.note("client session", s.user_id, s.application_id, s.sid == self.sid())
        for e in AuditEvent.objects.filter(pk__gt=m[AuditEvent]).order_by("pk"):
            self.note("audit", e.kind, e.reason, e.user_id, e.client_id, e.nas_id, e.details)
        return self.log


def both(monkeypatch, user, scenario):
    transcripts = []
    for fast in (False, True):
        run = Run(user, fast, monkeypatch)
        scenario(run)
        transcripts.append(run.rows())
    dot, hub = transcripts
    assert hub == dot
    return hub


CODE = {"grant_type": "authorization_code", "redirect_uri": RP_REDIRECT}
BASIC = ("ds923-dsm", DSM_SECRET)


def test_the_common_sign_in_and_a_replayed_code(monkeypatch, mael, dsm_client):
    def scenario(run):
        code = run.authorize(scope="openid profile email", state="xyz", nonce="n-0S6_WzA2Mj")
        tokens = run.token({**CODE, "code": code}, basic=BASIC)
        run.userinfo(tokens["access_token"])
        run.token({**CODE, "code": code}, basic=BASIC)  # replay: invalid_grant, and the first tokens go
        run.userinfo(tokens["access_token"])
        run.token({"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}, basic=BASIC)

    log = both(monkeypatch, mael, scenario)
    token_answers = [entry for entry in log if entry[0] == "token"]
    assert [t[2] for t in token_answers] == [200, 400, 400]
    assert token_answers[1][3]["error"] == "invalid_grant"
    assert [e[1] for e in log if e[0] == "userinfo"] == [200, 401]


def test_client_secret_post_pkce_and_its_failures(monkeypatch, mael, dsm_client):
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()

    def scenario(run):
        post = {"client_id": "ds923-dsm", "client_secret": DSM_SECRET}
        code = run.authorize(scope="openid email", code_challenge=challenge, code_challenge_method="S256")
        run.token({**CODE, **post, "code": code, "code_verifier": "x" * 50})  # wrong verifier: code stays
        run.token({**CODE, **post, "code": code})  # no verifier
        run.token({**CODE, **post, "code": code, "code_verifier": verifier})
        # A verifier for a code issued without a challenge (downgrade), a wrong secret, a missing URI.
        plain = run.authorize(scope="openid")
        run.token({**CODE, **post, "code": plain, "code_verifier": verifier})
        run.token({**CODE, "code": plain}, basic=("ds923-dsm", "not-the-secret-" + "x" * 30))
        run.token({"grant_type": "authorization_code", "code": plain}, basic=BASIC)  # redirect_uri was sent
        run.token({**CODE, "code": plain}, basic=BASIC)
        run.authorize(scope="openid", code_challenge=challenge, code_challenge_method="plain")  # refused

    log = both(monkeypatch, mael, scenario)
    assert [t[2] for t in log if t[0] == "token"] == [400, 400, 200, 400, 401, 400, 200]


def test_prompt_max_age_and_hints(monkeypatch, mael, dsm_client):
    def scenario(run):
        run.authorize(scope="openid", prompt="none")
        run.authorize(scope="openid", prompt="login")
        run.authorize(scope="openid", prompt="none login")
        run.authorize(scope="openid", max_age="0")
        run.authorize(scope="openid", max_age="3600", nonce="abc")
        run.authorize(scope="openid", login_hint="someone.else@example.com", prompt="none")
        run.authorize(scope="openid", prompt="consent")
        run.authorize(scope="openid groups", resource="https://api.example.com/")
        run.authorize(scope="openid", response_type="token")  # not the code flow: DOT's answer
        run.authorize(scope="openid", redirect_uri="http://127.0.0.1:9/elsewhere")  # unregistered: a page
        run.authorize(client_id="nobody")
        run.authorize(scope="openid nonsense")

    both(monkeypatch, mael, scenario)


def test_refresh_rotation_replay_and_revocation(monkeypatch, mael, dsm_client):
    def scenario(run):
        code = run.authorize(scope="openid profile email", nonce="n1")
        first = run.token({**CODE, "code": code}, basic=BASIC)
        second = run.token({"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}, basic=BASIC)
        run.userinfo(second["access_token"])
        run.token({"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}, basic=BASIC)  # replay
        run.userinfo(second["access_token"])
        code = run.authorize(scope="openid", nonce="n2")
        third = run.token({**CODE, "code": code}, basic=BASIC)
        run.revoke(third["access_token"], "access_token")
        run.userinfo(third["access_token"])
        run.revoke(third["refresh_token"], "refresh_token")
        run.token({"grant_type": "refresh_token", "refresh_token": third["refresh_token"]}, basic=BASIC)

    both(monkeypatch, mael, scenario)


def test_the_policy_at_the_exchange(monkeypatch, mael, dsm_client):
    """A person who loses their NAS account between the code and the exchange gets no tokens."""
    from synology.models import DSMAccount

    def scenario(run):
        code = run.authorize(scope="openid")
        DSMAccount.objects.filter(user=mael).update(present=False)
        run.token({**CODE, "code": code}, basic=BASIC)
        DSMAccount.objects.filter(user=mael).update(present=True)
        run.token({**CODE, "code": code}, basic=BASIC)

    log = both(monkeypatch, mael, scenario)
    assert [t[2] for t in log if t[0] == "token"] == [400, 200]


def test_public_client_with_pkce(monkeypatch, mael, public_client):
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()

    def scenario(run):
        run.authorize(client_id="immich", scope="openid")  # PKCE required for a public client
        code = run.authorize(client_id="immich", scope="openid email", code_challenge=challenge,
                             code_challenge_method="S256")
        run.token({**CODE, "client_id": "immich", "code": code, "code_verifier": verifier})

    log = both(monkeypatch, mael, scenario)
    assert [t[2] for t in log if t[0] == "token"] == [200]


def test_nothing_listens_to_the_rows_written_with_plain_sql():
    """fastsql sends no model signals: no receiver may exist for the models it writes."""
    from django.db.models import signals
    from oauth2_provider.models import AccessToken, Grant, IDToken, RefreshToken

    from identityhub.models import AuditEvent
    from identityhub.oidc.models import ClientSession, RedeemedCode

    for model in (Grant, AccessToken, RefreshToken, IDToken, RedeemedCode, ClientSession, AuditEvent):
        for signal in (signals.pre_save, signals.post_save, signals.pre_delete, signals.post_delete):
            assert not signal.has_listeners(model), (model, signal)


def test_the_key_rings_signer_makes_jwcryptos_bytes(db):
    """RS256 with PKCS#1 v1.5 is deterministic: the fast signer's token is jwcrypto's, byte for byte."""
    from identityhub.oidc.keys import keyring

    ring = keyring()
    claims = {"iss": "https://id.example.com", "sub": "4c1f", "aud": "ds923-dsm", "iat": 1700000000,
              "exp": 1700003600, "nonce": "n-0S6_WzA2Mj", "name": "Maël Valais", "email_verified": True,
              "at_hash": "77QmUPtjPfzWtF2AnpK9RQ", "auth_time": 1699990000, "sid": "s1d"}
    reference = jwt.JWT(header={"typ": "JWT", "alg": "RS256", "kid": ring.kid}, claims=claims)
    reference.make_signed_token(ring.active)
    assert ring.sign_jwt(claims) == reference.serialize()
