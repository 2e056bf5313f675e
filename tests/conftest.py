"""Shared fixtures: named people, a household, a NAS with accounts, clients, and the real fakes.

Named fixture users (Zulip style): `mael` (household admin, DSM account `mael.valais`), `mum`
(member, DSM account `maman`), `outsider` (declared, but only in another household), `no_nas`
(member with no account on the NAS).
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from jwcrypto import jwk, jwt

from tests.fakes.dsm import FakeDSM
from tests.fakes.oidc_upstream import FakeOIDCProvider

DSM_SECRET = "dsm-secret-" + "Q7x9LmP2vR4tK8wZ3nB6yH1cJ5dF0gS"
RP_REDIRECT = "http://127.0.0.1:9/callback"  # never fetched: the RP "receives" the code from the Location


def pytest_configure(config):
    if os.environ.get("HUB_REQUIRE_SERVICES") == "1":
        from django.conf import settings

        engine = settings.DATABASES["default"]["ENGINE"]
        if "postgresql" not in engine:
            raise pytest.UsageError(f"HUB_REQUIRE_SERVICES=1 but the database engine is {engine}")
        if not settings.REDIS_URL:
            raise pytest.UsageError("HUB_REQUIRE_SERVICES=1 but REDIS_URL is not set")
        import redis

        redis.Redis.from_url(settings.REDIS_URL).ping()  # raises loudly if Redis is down


@pytest.fixture(autouse=True)
def _default_language():
    """Each test starts and ends in the default language (English): LocaleMiddleware activates a
    request's language on the thread and leaves it active, and services translate their messages."""
    from django.utils import translation

    translation.deactivate()
    yield
    translation.deactivate()


# --- domain fixtures ------------------------------------------------------------------------
@pytest.fixture
def household(db):
    from accounts.services import declare_household

    return declare_household("valais", "Valais family")


@pytest.fixture
def other_household(db):
    from accounts.services import declare_household

    return declare_household("neighbours", "The neighbours")


@pytest.fixture
def people(household, other_household):
    from accounts.services import MemberSpec, set_members

    set_members(household, [
        MemberSpec("mael@example.com", "Maël Valais", "admin"),
        MemberSpec("mum@example.com", "Mum"),
        MemberSpec("no.nas@example.com", "No NAS"),
    ])
    set_members(other_household, [MemberSpec("outsider@example.org", "Out Sider")])
    from accounts.models import User

    return {u.email.split("@")[0].replace(".", "_"): u for u in User.objects.all()}


@pytest.fixture
def mael(people):
    return people["mael"]


@pytest.fixture
def mum(people):
    return people["mum"]


@pytest.fixture
def nas(household, people):
    from django.utils import timezone

    from synology.models import DSMAccount
    from synology.services import declare_nas

    nas = declare_nas("ds923", household=household, base_url="https://192.0.2.10:5001", name="DS923+")
    now = timezone.now()
    DSMAccount.objects.create(nas=nas, name="mael.valais", email="mael@example.com", user=people["mael"],
                              linked_by="email", first_seen=now, last_seen=now)
    DSMAccount.objects.create(nas=nas, name="maman", email="", user=people["mum"], linked_by="explicit",
                              first_seen=now, last_seen=now)
    return nas


@pytest.fixture
def dsm_client(nas):
    from identityhub.oidc.services import register_client

    application, _ = register_client(
        "ds923-dsm", name="DSM on DS923+", redirect_uris=[RP_REDIRECT], client_secret=DSM_SECRET,
        nas=nas, skip_consent=True,
    )
    return application


@pytest.fixture
def public_client(household):
    from identityhub.oidc.services import register_client

    application, _ = register_client(
        "immich", name="Immich", redirect_uris=[RP_REDIRECT], public=True, households=[household],
        skip_consent=True,
    )
    return application


@pytest.fixture
def eager_celery():
    """Celery tasks run in the calling process (as a worker would run them), restored afterwards."""
    from identityhub.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield app
    app.conf.task_always_eager = previous


@pytest.fixture
def fresh_keyring(db):
    """No signing key and no key ring cached from another test (a fresh hub's first start)."""
    from identityhub.oidc import keys
    from identityhub.oidc.models import SigningKey

    SigningKey.objects.all().delete()
    keys._loaded = None
    yield
    keys._loaded = None


# --- the real fakes and the live hub -------------------------------------------------------
@pytest.fixture
def make_upstream_provider():
    """Start fake OIDC providers (each its own issuer); all stop at the end of the test."""
    started: list[FakeOIDCProvider] = []

    def make() -> FakeOIDCProvider:
        started.append(FakeOIDCProvider().start())
        return started[-1]

    yield make
    for provider in started:
        provider.stop()


@pytest.fixture
def upstream_provider(make_upstream_provider):
    return make_upstream_provider()


def declare_fake_upstream(upstream_id: str, provider: FakeOIDCProvider, name: str):
    """An `oidc` upstream row pointing at a fake provider."""
    from accounts.services import declare_upstream

    return declare_upstream(upstream_id, "oidc", name=name, issuer=provider.issuer, client_id=provider.client_id,
                            client_secret=provider.client_secret)


@pytest.fixture
def google_like(db, upstream_provider):
    """An `oidc` upstream pointing at the fake provider."""
    return declare_fake_upstream("google", upstream_provider, "Google")


@pytest.fixture
def hub(live_server, settings):
    """The hub on a live port, with its issuer set to that URL (as HUB_ISSUER would)."""
    from oauth2_provider.settings import oauth2_settings

    settings.HUB_ISSUER = live_server.url
    previous = oauth2_settings.OIDC_ISS_ENDPOINT
    oauth2_settings.OIDC_ISS_ENDPOINT = live_server.url
    yield live_server.url
    oauth2_settings.OIDC_ISS_ENDPOINT = previous


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


@dataclass
class RelyingParty:
    """A minimal, independent relying party driving the hub over HTTP with a browser-like session."""

    hub: str
    client_id: str
    client_secret: str | None = None
    redirect_uri: str = RP_REDIRECT
    browser: requests.Session = field(default_factory=requests.Session)

    def authorize_url(self, scope: str = "openid", **params: str) -> str:
        query = {"response_type": "code", "client_id": self.client_id, "redirect_uri": self.redirect_uri,
                 "scope": scope, "state": secrets.token_urlsafe(8), **params}
        return f"{self.hub}/authorize/?{urlencode(query)}"

    def follow(self, url: str, max_hops: int = 15) -> requests.Response:
        """Follow redirects like a browser until one leaves for the RP (or a page is shown)."""
        response = None
        for _ in range(max_hops):
            if url.startswith(self.redirect_uri):
                return _Arrived(url)
            response = self.browser.get(url, allow_redirects=False, timeout=10)
            if response.status_code not in (301, 302, 303):
                return response
            url = requests.compat.urljoin(url, response.headers["Location"])
        raise AssertionError(f"too many redirects, last {url}")

    def code_from(self, arrived) -> str:
        assert isinstance(arrived, _Arrived), f"expected a redirect to the RP, got {getattr(arrived, 'status_code', arrived)}: {getattr(arrived, 'text', '')[:500]}"
        params = arrived.params
        assert "code" in params, params
        return params["code"]

    def token(self, code: str, verifier: str | None = None, auth: str = "basic", **extra) -> requests.Response:
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": self.redirect_uri, **extra}
        if verifier:
            form["code_verifier"] = verifier
        kwargs = {}
        if self.client_secret and auth == "basic":
            kwargs["auth"] = (self.client_id, self.client_secret)
        else:
            form["client_id"] = self.client_id
            if self.client_secret:
                form["client_secret"] = self.client_secret
        return requests.post(f"{self.hub}/token/", data=form, timeout=10, **kwargs)

    def jwks(self) -> jwk.JWKSet:
        discovery = requests.get(f"{self.hub}/.well-known/openid-configuration", timeout=10).json()
        return jwk.JWKSet.from_json(requests.get(discovery["jwks_uri"], timeout=10).text)

    def verify_id_token(self, id_token: str, nonce: str | None = None) -> dict:
        import json

        token = jwt.JWT(jwt=id_token, key=self.jwks(), algs=["RS256"],
                        check_claims={"iss": self.hub, "aud": self.client_id, "exp": None})
        claims = json.loads(token.claims)
        if nonce is not None:
            assert claims["nonce"] == nonce
        return claims


class _Arrived:
    def __init__(self, url: str) -> None:
        self.url = url
        self.params = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        self.status_code = "arrived"


@pytest.fixture
def rp_factory(hub):
    def make(client_id: str, client_secret: str | None = None) -> RelyingParty:
        return RelyingParty(hub=hub, client_id=client_id, client_secret=client_secret)

    return make


# --- a NAS on the DSM fake with its DSM app (joining tests, in-process and in Chromium) -----
@pytest.fixture
def fake_nas():
    """A real DSM 7 fake (CSRF on) with Maël's account; no DSM session may be left open."""
    fake = FakeDSM("dsm7", csrf=True)
    fake.accounts = {"hub-sync": fake.accounts["hub-sync"]}
    fake.add_user("mael.valais", email="mael@example.com")
    fake.start()
    yield fake
    fake.stop()
    assert fake.open_sessions == []


@pytest.fixture
def dsm_on_fake(household, people, fake_nas):
    """NAS ds923 on the fake, synced once, and the DSM app `ds923-dsm` bound to it."""
    from identityhub.oidc.services import register_client
    from synology.services import declare_nas
    from synology.sync import sync_nas

    nas = declare_nas("ds923", household=household, base_url=fake_nas.url, name="DS923+",
                      service_username="hub-sync", service_password=fake_nas.accounts["hub-sync"].password)
    assert sync_nas(nas.pk).ok
    register_client("ds923-dsm", name="DSM on DS923+", redirect_uris=[RP_REDIRECT], client_secret=DSM_SECRET,
                    nas=nas, skip_consent=True)
    return nas


# --- in-process helpers (Django test client) -----------------------------------------------
def signed_in(client, user, auth_time: int | None = None):
    """A browser session signed in as `user` through an upstream (as accounts.views.complete does)."""
    import time

    client.force_login(user, backend="accounts.auth_backends.UpstreamSessionBackend")
    session = client.session
    session["hub_auth_time"] = auth_time if auth_time is not None else int(time.time())
    session.save()
    return client


def authorize_query(client_id: str, scope: str = "openid", redirect_uri: str = RP_REDIRECT, **params) -> str:
    query = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "scope": scope,
             "state": "st4te", **params}
    return f"/authorize/?{urlencode(query)}"


def redirect_params(response) -> dict[str, str]:
    assert response.status_code == 302, (response.status_code, response.content[:500])
    return {k: v[0] for k, v in parse_qs(urlsplit(response["Location"]).query).items()}


def get_code(client, client_id: str, **params) -> str:
    response = client.get(authorize_query(client_id, **params))
    location = response.get("Location", "")
    assert location.startswith(RP_REDIRECT), (response.status_code, location, response.content[:500])
    return redirect_params(response)["code"]


def exchange(client, client_id: str, code: str, secret: str | None = None, **extra):
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": RP_REDIRECT, "client_id": client_id,
            **extra}
    if secret:
        form["client_secret"] = secret
    return client.post("/token/", form)


def upstream_round_trip(client, upstream_id: str = "google", next_url: str = "/profile/"):
    """Start the upstream login on the hub, let the fake upstream answer, and complete on the hub."""
    start = client.get(f"/login/{upstream_id}/?{urlencode({'next': next_url})}")
    assert start.status_code == 302, start.content[:300]
    at_upstream = requests.get(start["Location"], allow_redirects=False, timeout=10)
    back = urlsplit(at_upstream.headers["Location"])
    return client.get(f"{back.path}?{back.query}")
