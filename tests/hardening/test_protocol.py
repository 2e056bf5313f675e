"""Issue 9, protocol items 1–5 and security item 11: what independent relying parties and a live
review found at the provider's endpoints. Each test failed before its fix."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.conftest import DSM_SECRET, RP_REDIRECT, authorize_query, exchange, get_code, redirect_params, signed_in

pytestmark = pytest.mark.django_db


# --- 1. discovery announces the revocation endpoint ------------------------------------------------
def test_discovery_announces_the_revocation_endpoint(client, settings):
    doc = client.get("/.well-known/openid-configuration").json()
    issuer = settings.OAUTH2_PROVIDER["OIDC_ISS_ENDPOINT"]
    assert doc["revocation_endpoint"] == f"{issuer}/revoke/"
    assert doc["revocation_endpoint_auth_methods_supported"] == doc["token_endpoint_auth_methods_supported"]


def test_the_announced_revocation_endpoint_revokes(client, mael, dsm_client):
    from oauth2_provider.models import AccessToken

    revocation = client.get("/.well-known/openid-configuration").json()["revocation_endpoint"]
    signed_in(client, mael)
    tokens = exchange(client, "ds923-dsm", get_code(client, "ds923-dsm"), DSM_SECRET).json()
    path = revocation.split("://", 1)[1].split("/", 1)[1]
    response = client.post(f"/{path}", {"token": tokens["access_token"], "client_id": "ds923-dsm",
                                        "client_secret": DSM_SECRET})
    assert response.status_code == 200
    assert not AccessToken.objects.filter(user=mael).exists()


# --- 2. hub check and /logout/ agree on post-logout redirect URIs ------------------------------------
PUBLIC_CONFIG_CLIENT = """\
  - client_id: cli
    name: A public CLI
    redirect_uris: [http://127.0.0.1/callback]
    households: [friends]
"""


@pytest.mark.parametrize(("uri", "accepted"), [
    ("http://127.0.0.1:9/bye", True),
    ("http://[::1]/bye", True),
    ("http://localhost:8080/bye", True),
    ("https://cli.example.com/bye", True),
    ("http://cli.example.com/bye", False),
])
def test_hub_check_accepts_loopback_http_post_logout_uris_for_a_public_client(tmp_path, monkeypatch, uri, accepted):
    from identityhub.config.errors import ConfigError
    from identityhub.config.load import load_config
    from identityhub.oidc.services import check_redirect_uri
    from tests.config import conftest as config

    for name, value in [("GOOGLE_CLIENT_SECRET", config.GOOGLE_SECRET), ("SYNO_PASSWORD", config.SYNO_PASSWORD),
                        ("DSM_CLIENT_SECRET", config.DSM_SECRET), ("WEB_CLIENT_SECRET", config.WEB_SECRET)]:
        monkeypatch.setenv(name, value)
    assert PUBLIC_CONFIG_CLIENT in config.CONFIG
    path = tmp_path / "hub.yaml"
    path.write_text(config.CONFIG.replace(
        PUBLIC_CONFIG_CLIENT, PUBLIC_CONFIG_CLIENT + f"    post_logout_redirect_uris: [\"{uri}\"]\n"), encoding="utf-8")
    path = str(path)
    if accepted:
        load_config(path)
        assert check_redirect_uri(uri) is None
    else:
        with pytest.raises(ConfigError) as info:
            load_config(path)
        assert "http is allowed on loopback only" in str(info.value.problems[0])
        assert check_redirect_uri(uri)


@pytest.fixture
def public_app_with_logout(household):
    from identityhub.oidc.services import register_client

    application, _ = register_client(
        "immich", name="Immich", redirect_uris=[RP_REDIRECT], public=True, households=[household],
        skip_consent=True, post_logout_redirect_uris=["http://127.0.0.1:9/bye", "https://immich.example.com/bye"],
    )
    return application


def _public_id_token(client, user) -> str:
    from tests.conftest import pkce_pair

    signed_in(client, user)
    verifier, challenge = pkce_pair()
    code = get_code(client, "immich", code_challenge=challenge, code_challenge_method="S256")
    return exchange(client, "immich", code, code_verifier=verifier).json()["id_token"]


@pytest.mark.parametrize("uri", ["http://127.0.0.1:9/bye", "https://immich.example.com/bye"])
def test_rp_initiated_logout_of_a_public_client_redirects_to_its_loopback_uri(client, mael, public_app_with_logout,
                                                                               uri):
    id_token = _public_id_token(client, mael)
    response = client.get("/logout/", {"id_token_hint": id_token, "post_logout_redirect_uri": uri, "state": "s-9"})
    assert response.status_code == 302, response.content[:300]
    assert response["Location"] == f"{uri}?state=s-9"
    assert "_auth_user_id" not in client.session


def test_logout_refuses_what_hub_check_refuses(client, mael, public_app_with_logout):
    """Even when such a URI sits in the database (written around the services), the endpoint follows
    the config's rule: https, or http on loopback only; and only what is registered."""
    from oauth2_provider.models import Application

    Application.objects.filter(client_id="immich").update(
        post_logout_redirect_uris="http://immich.example.com/bye http://127.0.0.1:9/bye")
    id_token = _public_id_token(client, mael)
    for uri in ["http://immich.example.com/bye", "http://127.0.0.1:9/other", "https://evil.example/"]:
        response = client.get("/logout/", {"id_token_hint": id_token, "post_logout_redirect_uri": uri})
        assert response.status_code == 400, uri
        assert "_auth_user_id" in client.session


# --- 3. redirect_uri at the code exchange; the Basic challenge ---------------------------------------
def _exchange_without_redirect_uri(client, code):
    return client.post("/token/", {"grant_type": "authorization_code", "code": code, "client_id": "ds923-dsm",
                                   "client_secret": DSM_SECRET})


def test_a_code_asked_with_redirect_uri_needs_it_at_the_exchange(client, mael, dsm_client):
    """RFC 6749 §4.1.3. A failed exchange does not consume the code (oauthlib validates everything
    before it invalidates the grant, as for a wrong code_verifier): the same client can still
    redeem it correctly, once; a second redemption is a replay (invalid_grant, tokens revoked)."""
    from oauth2_provider.models import AccessToken

    signed_in(client, mael)
    code = get_code(client, "ds923-dsm")  # authorize_query always sends redirect_uri
    refused = _exchange_without_redirect_uri(client, code)
    assert refused.status_code == 400, refused.content
    assert refused.json()["error"] == "invalid_request"
    assert "redirect_uri" in refused.json()["error_description"]
    assert not AccessToken.objects.exists()

    redeemed = exchange(client, "ds923-dsm", code, DSM_SECRET)
    assert redeemed.status_code == 200
    replay = exchange(client, "ds923-dsm", code, DSM_SECRET)
    assert replay.json()["error"] == "invalid_grant"
    assert not AccessToken.objects.exists()  # the replay revoked the first redemption's tokens


def test_a_code_asked_without_redirect_uri_is_redeemed_without_it(client, mael, dsm_client):
    """The only registered URI is the default (RFC 6749 §3.1.2.3): not sent, not required."""
    from urllib.parse import parse_qs, urlsplit

    signed_in(client, mael)
    response = client.get("/authorize/", {"response_type": "code", "client_id": "ds923-dsm", "scope": "openid",
                                          "state": "s"})
    assert response["Location"].startswith(RP_REDIRECT)
    code = parse_qs(urlsplit(response["Location"]).query)["code"][0]
    assert _exchange_without_redirect_uri(client, code).status_code == 200


def test_a_code_asked_without_redirect_uri_through_the_consent_form_is_redeemed_without_it(client, mael,
                                                                                            household):
    from urllib.parse import urlencode

    from identityhub.oidc.services import register_client

    register_client("photos", redirect_uris=[RP_REDIRECT], client_secret=DSM_SECRET, households=[household])
    signed_in(client, mael)
    url = "/authorize/?" + urlencode({"response_type": "code", "client_id": "photos", "scope": "openid",
                                      "state": "s"})
    page = client.get(url)
    assert page.status_code == 200
    form = {k: v for k, v in page.context["form"].initial.items() if v is not None}
    approved = client.post(url, {**form, "allow": "Authorize"})  # the form posts back to the same URL
    from tests.conftest import redirect_params

    code = redirect_params(approved)["code"]
    response = client.post("/token/", {"grant_type": "authorization_code", "code": code, "client_id": "photos",
                                       "client_secret": DSM_SECRET})
    assert response.status_code == 200, response.content


def test_a_wrong_secret_sent_with_basic_gets_a_basic_challenge(client, mael, dsm_client):
    import base64

    signed_in(client, mael)
    code = get_code(client, "ds923-dsm")
    basic = base64.b64encode(b"ds923-dsm:" + b"wrong-" + DSM_SECRET.encode()).decode()
    response = client.post("/token/", {"grant_type": "authorization_code", "code": code, "redirect_uri": RP_REDIRECT},
                           HTTP_AUTHORIZATION=f"Basic {basic}")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response["WWW-Authenticate"].startswith("Basic realm=")
    assert exchange(client, "ds923-dsm", code, DSM_SECRET).status_code == 200  # the code survived


def test_a_wrong_secret_in_the_form_is_invalid_client_and_never_a_bearer_challenge(client, mael, dsm_client):
    signed_in(client, mael)
    response = exchange(client, "ds923-dsm", get_code(client, "ds923-dsm"), "wrong-" + DSM_SECRET)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert not response.get("WWW-Authenticate", "").startswith("Bearer")


# --- 4. resource indicators and unsupported grant types are answered, never a 500 --------------------
@pytest.mark.parametrize("resource", ["https://api.example.com/", "urn:x:y", "not a uri", ""])
def test_resource_at_the_authorization_endpoint_is_ignored(client, mael, dsm_client, resource):
    """The hub has no resource indicators (RFC 8707): a `resource` is ignored, as for any
    authorization server that does not support them — tokens stay for the client and userinfo."""
    from oauth2_provider.models import AccessToken

    signed_in(client, mael)
    code = get_code(client, "ds923-dsm", resource=resource)
    response = exchange(client, "ds923-dsm", code, DSM_SECRET, resource=resource)
    assert response.status_code == 200, response.content
    assert AccessToken.objects.get().resource in ([], None, "")


@pytest.mark.parametrize("grant_type", [
    "urn:ietf:params:oauth:grant-type:device_code", "password", "client_credentials", "implicit", "token",
    "urn:ietf:params:oauth:grant-type:jwt-bearer", "urn:ietf:params:oauth:grant-type:token-exchange",
    "openid", "nonsense", "",
])
def test_unsupported_grant_types_are_400s(client, dsm_client, public_client, grant_type):
    for credentials in [{"client_id": "ds923-dsm", "client_secret": DSM_SECRET}, {"client_id": "immich"}, {}]:
        response = client.post("/token/", {"grant_type": grant_type, "device_code": "x", "username": "mael",
                                           "password": "p", "scope": "openid", **credentials})
        assert response.status_code in (400, 401), (grant_type, credentials, response.status_code)
        assert response.json()["error"] in {"unsupported_grant_type", "invalid_request", "invalid_client",
                                            "unauthorized_client"}, (grant_type, response.content)
    assert client.post("/token/", {"grant_type": grant_type, "client_id": "ds923-dsm",
                                   "client_secret": DSM_SECRET}).json()["error"] in {
        "unsupported_grant_type", "invalid_request"}


def test_the_device_code_grant_is_unsupported(client, dsm_client):
    response = client.post("/token/", {"grant_type": "urn:ietf:params:oauth:grant-type:device_code",
                                       "device_code": "x", "client_id": "ds923-dsm", "client_secret": DSM_SECRET})
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


# --- 11. prompt=login / max_age re-authenticate without signing anyone out -----------------------------
def _login_redirect(response) -> dict[str, str]:
    assert response.status_code == 302, response.content[:300]
    location = urlsplit(response["Location"])
    assert location.path == "/login/", response["Location"]
    return {k: v[0] for k, v in parse_qs(location.query).items()}


def _follow_sign_in_through_the_upstream(client, login_query: dict[str, str], upstream_provider):
    """/login/ → /login/google/ → the fake upstream → /complete/google/ → back to `next`."""
    from urllib.parse import urlencode

    import requests

    response = client.get("/login/?" + urlencode(login_query))
    response = client.get(response["Location"])  # /login/google/?…
    at_upstream = requests.get(response["Location"], allow_redirects=False, timeout=10)
    back = urlsplit(at_upstream.headers["Location"])
    completed = client.get(f"{back.path}?{back.query}")
    assert completed.status_code == 302, completed.content[:300]
    return completed["Location"]


@pytest.mark.parametrize("params", [{"prompt": "login"}, {"max_age": "0"}])
def test_a_cross_site_prompt_login_link_signs_no_one_out(client, mael, dsm_client, params):
    """`<img src="https://hub/authorize/?…&prompt=login">` on any page: the member stays signed in."""
    signed_in(client, mael)
    query = _login_redirect(client.get(authorize_query("ds923-dsm", **params)))
    assert query.get("prompt") == params.get("prompt") and query.get("max_age") == params.get("max_age")
    assert "prompt" not in query["next"] and "max_age" not in query["next"]  # no loop after signing in
    assert client.session["_auth_user_id"] == str(mael.pk)
    account = client.get("/account/")
    assert account.status_code == 200 and account.context["user"] == mael


def test_coming_back_without_signing_in_again_is_sent_to_sign_in_again(client, mael, dsm_client):
    signed_in(client, mael, auth_time=int(time.time()) - 60)
    query = _login_redirect(client.get(authorize_query("ds923-dsm", prompt="login")))
    again = _login_redirect(client.get(query["next"]))  # the person skipped the sign-in
    assert again["prompt"] == "login" and again["next"] == query["next"]
    assert client.get("/account/").status_code == 200  # still signed in


def test_a_completed_re_authentication_lets_the_request_proceed_once_no_loop(client, mael, dsm_client,
                                                                            google_like, upstream_provider):
    from tests.fakes.oidc_upstream import Identity

    upstream_provider.identity = Identity(sub="g-mael", email="mael@example.com")
    signed_in(client, mael, auth_time=int(time.time()) - 3600)
    query = _login_redirect(client.get(authorize_query("ds923-dsm", prompt="login", max_age="60", nonce="n-11")))
    back = _follow_sign_in_through_the_upstream(client, query, upstream_provider)
    sent = upstream_provider.authorize_requests[-1]
    assert sent["prompt"] == "login" and sent["max_age"] == "60"
    assert back == query["next"]
    code = redirect_params(client.get(back))["code"]
    id_token = exchange(client, "ds923-dsm", code, DSM_SECRET).json()["id_token"]
    from tests.oidc.test_prompt_and_discovery import decode

    claims = decode(id_token)
    assert claims["auth_time"] >= int(time.time()) - 5 and claims["nonce"] == "n-11"
    assert redirect_params(client.get(back))["code"]  # the same URL again: no further sign-in asked


def test_abandoning_the_re_authentication_leaves_the_person_signed_in(client, mael, dsm_client):
    signed_in(client, mael)
    _login_redirect(client.get(authorize_query("ds923-dsm", prompt="login", state="abandoned")))
    # Another app's ordinary request in the same browser is not held up by the pending one.
    assert get_code(client, "ds923-dsm", state="other")


# --- 5. id_token_hint and login_hint at the authorization endpoint ------------------------------------
def _id_token_of(client, user) -> str:
    signed_in(client, user)
    return exchange(client, "ds923-dsm", get_code(client, "ds923-dsm"), DSM_SECRET).json()["id_token"]


def test_a_hint_for_the_signed_in_person_changes_nothing(client, mael, dsm_client):
    hint = _id_token_of(client, mael)
    assert get_code(client, "ds923-dsm", id_token_hint=hint)
    assert get_code(client, "ds923-dsm", id_token_hint=hint, prompt="none")
    assert get_code(client, "ds923-dsm", login_hint="MAEL@example.com", prompt="none")
    assert get_code(client, "ds923-dsm", login_hint="not-an-email")  # names no one: only passed on


@pytest.mark.parametrize("hint", ["id_token_hint", "login_hint"])
def test_a_hint_for_another_person_means_a_fresh_sign_in(client, mael, mum, dsm_client, hint):
    value = _id_token_of(client, mum) if hint == "id_token_hint" else "mum@example.com"
    signed_in(client, mael)
    silent = redirect_params(client.get(authorize_query("ds923-dsm", prompt="none", **{hint: value})))
    assert silent["error"] == "login_required" and "code" not in silent
    query = _login_redirect(client.get(authorize_query("ds923-dsm", **{hint: value})))
    assert query["prompt"] == "login"
    if hint == "login_hint":
        assert query["login_hint"] == "mum@example.com"  # on to the upstream
    assert client.get("/account/").context["user"] == mael  # nobody signed out yet
    # Mum signs in (on the hub: a new session for another person), the request proceeds as her.
    signed_in(client, mum)
    code = redirect_params(client.get(query["next"]))["code"]
    claims = _claims(exchange(client, "ds923-dsm", code, DSM_SECRET).json()["id_token"])
    assert claims["sub"] == str(mum.public_id)


def _claims(id_token: str) -> dict:
    from tests.oidc.test_prompt_and_discovery import decode

    return decode(id_token)


def test_signing_in_again_as_someone_else_than_the_id_token_hint_is_login_required(client, mael, mum, dsm_client):
    """OIDC Core 3.1.2.1: the hinted person is not the one signed in, even after asking: an error,
    not another round (no loop). A login_hint is only a hint: whoever signed in proceeds."""
    hint = _id_token_of(client, mum)
    signed_in(client, mael, auth_time=int(time.time()) - 30)
    query = _login_redirect(client.get(authorize_query("ds923-dsm", id_token_hint=hint)))
    signed_in(client, mael, auth_time=int(time.time()) + 1)  # Maël signs in again, as himself
    assert redirect_params(client.get(query["next"]))["error"] == "login_required"

    signed_in(client, mael, auth_time=int(time.time()) - 30)
    query = _login_redirect(client.get(authorize_query("ds923-dsm", login_hint="mum@example.com")))
    signed_in(client, mael, auth_time=int(time.time()) + 1)
    assert redirect_params(client.get(query["next"]))["code"]


@pytest.mark.parametrize("make_hint", [
    lambda good: "garbage",
    lambda good: "a.b.c",
    lambda good: good[:-6] + ("AAAAAA" if not good.endswith("AAAAAA") else "BBBBBB"),  # bad signature
    lambda good: _signed_by_a_stranger(),
])
def test_an_id_token_hint_that_does_not_verify_is_invalid_request(client, mael, dsm_client, make_hint):
    hint = make_hint(_id_token_of(client, mael))
    for extra in [{}, {"prompt": "none"}]:
        params = redirect_params(client.get(authorize_query("ds923-dsm", id_token_hint=hint, **extra)))
        assert params["error"] == "invalid_request" and params["state"] == "st4te" and "code" not in params


def _signed_by_a_stranger() -> str:
    from jwcrypto import jwk, jwt
    from oauth2_provider.settings import oauth2_settings

    key = jwk.JWK.generate(kty="RSA", size=2048, kid="stranger")
    token = jwt.JWT(header={"alg": "RS256", "kid": "stranger"},
                    claims={"iss": oauth2_settings.OIDC_ISS_ENDPOINT, "sub": "x", "aud": "ds923-dsm",
                            "exp": 2**31})
    token.make_signed_token(key)
    return token.serialize()




def test_an_expired_id_token_hint_from_a_retiring_key_still_names_the_person(client, mael, mum, dsm_client,
                                                                             fresh_keyring):
    """A hint names a past session: expired is fine (RPs send the last ID token they have), and it
    verifies against every published key, as at /logout/."""
    from jwcrypto import jwt
    from oauth2_provider.settings import oauth2_settings

    from identityhub.oidc.keys import keyring, reload_keyring, rotate

    def keys_published():
        return sorted(k.get("kid") for k in keyring().published["keys"])

    ring = keyring()
    claims = {"iss": oauth2_settings.OIDC_ISS_ENDPOINT, "aud": "ds923-dsm", "iat": 1_500_000_000,
              "exp": 1_500_003_600}
    hints = {}
    for person in (mael, mum):
        token = jwt.JWT(header={"alg": "RS256", "kid": ring.kid}, claims={**claims, "sub": str(person.public_id)})
        token.make_signed_token(ring.active)
        hints[person] = token.serialize()
    rotate()
    reload_keyring()  # as every process does within a second
    assert keyring().kid != ring.kid  # the hints' key now only retires
    signed_in(client, mael)
    answer = redirect_params(client.get(authorize_query("ds923-dsm", id_token_hint=hints[mael], prompt="none")))
    assert "code" in answer, (answer, keys_published())  # says why if it ever fails
    assert redirect_params(client.get(authorize_query("ds923-dsm", id_token_hint=hints[mum],
                                                      prompt="none")))["error"] == "login_required"


def test_login_hint_reaches_the_upstream(client, google_like, upstream_provider):
    from urllib.parse import urlencode

    import requests

    response = client.get("/login/?" + urlencode({"next": "/account/", "prompt": "login",
                                                  "login_hint": "mum@example.com"}))
    response = client.get(response["Location"])
    requests.get(response["Location"], allow_redirects=False, timeout=10)
    assert upstream_provider.authorize_requests[-1]["login_hint"] == "mum@example.com"
