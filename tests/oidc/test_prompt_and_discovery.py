"""prompt / max_age / auth_time, consent, discovery, JWKS and RP-initiated logout."""

import json
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from jwcrypto import jwk, jwt
from oauth2_provider.models import Application

from identityhub.oidc.keys import keyring
from identityhub.oidc.models import Consent
from identityhub.oidc.services import register_client
from tests.conftest import DSM_SECRET, RP_REDIRECT, authorize_query, exchange, get_code, redirect_params, signed_in

pytestmark = pytest.mark.django_db


def decode(id_token: str) -> dict:
    keys = jwk.JWKSet()
    for key in keyring().published:
        keys.add(key)
    return json.loads(jwt.JWT(jwt=id_token, key=keys, algs=["RS256"]).claims)


def test_prompt_none_signed_in_returns_a_code_not_a_500(client, mael, dsm_client):
    signed_in(client, mael)
    code = get_code(client, "ds923-dsm", prompt="none")
    assert exchange(client, "ds923-dsm", code, DSM_SECRET).status_code == 200


def test_prompt_none_anonymous_answers_login_required(client, dsm_client, settings):
    params = redirect_params(client.get(authorize_query("ds923-dsm", prompt="none")))
    assert params == {"error": "login_required", "state": "st4te", "iss": settings.HUB_ISSUER}


def test_prompt_none_refused_person_answers_access_denied(client, people, dsm_client):
    signed_in(client, people["no_nas"])
    response = client.get(authorize_query("ds923-dsm", prompt="none"))
    assert response["Location"].startswith(RP_REDIRECT)
    assert redirect_params(response)["error"] == "access_denied"


def test_prompt_none_without_consent_answers_consent_required(client, mael, household):
    register_client("photos", redirect_uris=[RP_REDIRECT], client_secret=DSM_SECRET, households=[household])
    signed_in(client, mael)
    assert redirect_params(client.get(authorize_query("photos", prompt="none")))["error"] == "consent_required"


def test_consent_is_asked_once_and_remembered(client, mael, household):
    register_client("photos", redirect_uris=[RP_REDIRECT], client_secret=DSM_SECRET, households=[household])
    signed_in(client, mael)
    page = client.get(authorize_query("photos", scope="openid email"))
    assert page.status_code == 200 and b"Allow" in page.content
    form = {name: field.initial for name, field in page.context["form"].fields.items() if field.initial is not None}
    form.update(page.context["form"].initial)
    form = {k: v for k, v in form.items() if v is not None}
    approved = client.post(authorize_query("photos", scope="openid email"), {**form, "allow": "Authorize"})
    assert redirect_params(approved)["code"]
    assert Consent.objects.get(user=mael).scopes == "openid email"
    assert get_code(client, "photos", scope="openid email", prompt="none")
    # a wider request asks again
    assert redirect_params(client.get(authorize_query("photos", scope="openid email profile", prompt="none")))["error"] == "consent_required"


def test_prompt_login_passes_prompt_on_and_keeps_the_session(client, mael, dsm_client):
    """The session is not ended before the new sign-in completes (issue 9 item 11: a cross-site link
    signed members out); tests/hardening/test_protocol.py follows the whole re-authentication."""
    signed_in(client, mael)
    response = client.get(authorize_query("ds923-dsm", prompt="login"))
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert location.path == "/login/"
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert query["prompt"] == "login"
    assert "prompt" not in parse_qs(urlsplit(query["next"]).query)  # no loop after signing in again
    assert client.session["_auth_user_id"] == str(mael.pk)


def test_prompt_login_and_max_age_reach_the_upstream(client, upstream_provider, google_like, mael):
    from tests.fakes.oidc_upstream import Identity

    upstream_provider.identity = Identity(sub="g-1", email="mael@example.com")
    response = client.get("/login/?prompt=login&max_age=0&next=/profile/")
    response = client.get(response["Location"])
    import requests

    requests.get(response["Location"], allow_redirects=False, timeout=10)
    sent = upstream_provider.authorize_requests[-1]
    assert sent["prompt"] == "login" and sent["max_age"] == "0"


def test_max_age_forces_a_fresh_sign_in_and_auth_time_is_the_session_time(client, mael, dsm_client):
    signed_in(client, mael, auth_time=int(time.time()) - 600)
    stale = client.get(authorize_query("ds923-dsm", max_age="300"))
    assert urlsplit(stale["Location"]).path == "/login/"
    assert "max_age=300" in stale["Location"]

    fresh_time = int(time.time()) - 5
    signed_in(client, mael, auth_time=fresh_time)
    code = get_code(client, "ds923-dsm", max_age="300", nonce="n-1")
    claims = decode(exchange(client, "ds923-dsm", code, DSM_SECRET).json()["id_token"])
    assert claims["auth_time"] == fresh_time
    assert claims["nonce"] == "n-1"


def test_username_released_with_openid_alone_other_claims_by_scope(client, mael, dsm_client, household):
    signed_in(client, mael)
    tokens = exchange(client, "ds923-dsm", get_code(client, "ds923-dsm", scope="openid"), DSM_SECRET).json()
    claims = decode(tokens["id_token"])
    assert claims["username"] == "mael.valais" and "email" not in claims and "groups" not in claims
    userinfo = client.get("/userinfo/", HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}").json()
    assert userinfo == {"sub": str(mael.public_id), "username": "mael.valais", "preferred_username": "mael.valais"}

    tokens = exchange(client, "ds923-dsm", get_code(client, "ds923-dsm", scope="openid email profile groups"), DSM_SECRET).json()
    userinfo = client.get("/userinfo/", HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}").json()
    assert userinfo["email"] == "mael@example.com" and userinfo["email_verified"] is True
    assert userinfo["name"] == "Maël Valais"
    assert userinfo["groups"] == ["valais"]


def test_client_without_nas_gets_no_username(client, mael, public_client):
    from tests.conftest import pkce_pair

    signed_in(client, mael)
    verifier, challenge = pkce_pair()
    code = get_code(client, "immich", code_challenge=challenge, code_challenge_method="S256")
    claims = decode(exchange(client, "immich", code, code_verifier=verifier).json()["id_token"])
    assert "username" not in claims and claims["sub"] == str(mael.public_id)


def test_discovery_document(client, settings):
    doc = client.get("/.well-known/openid-configuration").json()
    issuer = settings.OAUTH2_PROVIDER["OIDC_ISS_ENDPOINT"]
    assert doc["issuer"] == issuer
    assert doc["authorization_endpoint"] == f"{issuer}/authorize/"
    assert doc["token_endpoint"] == f"{issuer}/token/"
    assert doc["userinfo_endpoint"] == f"{issuer}/userinfo/"
    assert doc["jwks_uri"] == f"{issuer}/.well-known/jwks.json"
    assert doc["end_session_endpoint"] == f"{issuer}/logout/"
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    assert {"username", "preferred_username", "email", "email_verified", "name", "groups", "sub"} <= set(doc["claims_supported"])
    assert {"client_secret_basic", "client_secret_post"} <= set(doc["token_endpoint_auth_methods_supported"])
    assert "S256" in doc["code_challenge_methods_supported"]


def test_jwks_keys_carry_kid_and_match_token_headers(client, mael, dsm_client):
    keys = client.get("/.well-known/jwks.json").json()["keys"]
    assert keys and all(k["kid"] and k["kty"] == "RSA" and "d" not in k for k in keys)
    signed_in(client, mael)
    id_token = exchange(client, "ds923-dsm", get_code(client, "ds923-dsm"), DSM_SECRET).json()["id_token"]
    header = json.loads(jwt.JWT(jwt=id_token, key=jwk.JWK(**keys[0]), algs=["RS256"]).header)
    assert header["kid"] == keys[0]["kid"] and header["alg"] == "RS256"


def test_rp_initiated_logout_with_id_token_hint(client, mael, dsm_client):
    from oauth2_provider.models import Application

    Application.objects.filter(client_id="ds923-dsm").update(post_logout_redirect_uris="http://127.0.0.1:9/bye")
    signed_in(client, mael)
    id_token = exchange(client, "ds923-dsm", get_code(client, "ds923-dsm"), DSM_SECRET).json()["id_token"]
    response = client.get("/logout/", {"id_token_hint": id_token, "post_logout_redirect_uri": "http://127.0.0.1:9/bye",
                                       "state": "s"})
    assert response.status_code == 302 and response["Location"].startswith("http://127.0.0.1:9/bye")
    assert "_auth_user_id" not in client.session
    # an unregistered post-logout URI is not followed
    signed_in(client, mael)
    response = client.get("/logout/", {"id_token_hint": id_token, "post_logout_redirect_uri": "https://evil.example/"})
    assert "evil.example" not in response.get("Location", "")


def test_authorization_responses_carry_the_issuer(client, mael, dsm_client, people, settings):
    """RFC 9207: a client can tell which provider answered (mix-up defence)."""
    signed_in(client, mael)
    assert redirect_params(client.get(authorize_query("ds923-dsm")))["iss"] == settings.HUB_ISSUER
    signed_in(client, people["no_nas"])
    refused = redirect_params(client.get(authorize_query("ds923-dsm", prompt="none")))
    assert refused["error"] == "access_denied" and refused["iss"] == settings.HUB_ISSUER
    assert client.get("/.well-known/openid-configuration").json()["authorization_response_iss_parameter_supported"]


def test_error_redirects_carry_the_issuer_too(client, mael, dsm_client, household, settings):
    """RFC 9207 §2: `iss` is in error responses as well; an RP that sees
    authorization_response_iss_parameter_supported must reject a response without it."""
    # anonymous prompt=none (DOT's handle_no_permission)
    anonymous = redirect_params(client.get(authorize_query("ds923-dsm", prompt="none")))
    assert anonymous["error"] == "login_required" and anonymous["iss"] == settings.HUB_ISSUER
    signed_in(client, mael)
    for params, error in [({"scope": "openid nonsense"}, "invalid_scope"),
                          ({"response_type": "token"}, "unauthorized_client"),
                          ({"prompt": "none login"}, "invalid_request")]:
        answer = redirect_params(client.get(authorize_query("ds923-dsm", **params)))
        assert answer["error"] == error and answer["iss"] == settings.HUB_ISSUER, params
    register_client("photos", redirect_uris=[RP_REDIRECT], client_secret=DSM_SECRET[::-1], households=[household])
    silent = redirect_params(client.get(authorize_query("photos", prompt="none")))
    assert silent["error"] == "consent_required" and silent["iss"] == settings.HUB_ISSUER
    form = {"client_id": "photos", "redirect_uri": RP_REDIRECT, "response_type": "code", "scope": "openid",
            "state": "s"}
    denied = redirect_params(client.post("/authorize/", form))  # consent form submitted without "allow"
    assert denied["error"] == "access_denied" and denied["iss"] == settings.HUB_ISSUER
    allowed = client.post("/authorize/", {**form, "allow": "Authorize"})
    assert parse_qs(urlsplit(allowed["Location"]).query)["iss"] == [settings.HUB_ISSUER]  # exactly once


def test_prompt_consent_asks_again_except_for_trusted_clients(client, mael, dsm_client, household):
    register_client("photos", redirect_uris=[RP_REDIRECT], client_secret=DSM_SECRET[::-1], households=[household])
    Consent.objects.create(user=mael, application=Application.objects.get(client_id="photos"), scopes="openid")
    signed_in(client, mael)
    assert get_code(client, "photos")  # remembered
    page = client.get(authorize_query("photos", prompt="consent"))
    assert page.status_code == 200 and b"Allow" in page.content
    assert get_code(client, "ds923-dsm", prompt="consent")  # trusted: consent is implied


def test_a_refreshed_id_token_keeps_the_original_auth_time(client, mael, dsm_client):
    from accounts.models import User

    signed_in(client, mael, auth_time=int(time.time()) - 1000)
    tokens = exchange(client, "ds923-dsm", get_code(client, "ds923-dsm", scope="openid offline_access"),
                      DSM_SECRET).json()
    original = decode(tokens["id_token"])["auth_time"]
    # Mael signs in again on another device: last_login moves, this session's auth_time must not.
    from django.utils import timezone

    User.objects.filter(pk=mael.pk).update(last_login=timezone.now())
    refreshed = client.post("/token/", {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
                                        "client_id": "ds923-dsm", "client_secret": DSM_SECRET}).json()
    assert decode(refreshed["id_token"])["auth_time"] == original
