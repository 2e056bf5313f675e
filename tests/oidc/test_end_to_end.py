"""The main path over real HTTP: RP → hub → upstream fake → hub → code → token → JWKS → userinfo."""

import secrets

import pytest
import requests

from tests.conftest import DSM_SECRET
from tests.fakes.oidc_upstream import Identity

pytestmark = pytest.mark.django_db(transaction=True)


def test_dsm_sign_in_end_to_end(hub, rp_factory, upstream_provider, google_like, dsm_client, mael):
    upstream_provider.identity = Identity(sub="g-123", email="Mael@Example.com", name="Maël")
    rp = rp_factory("ds923-dsm", DSM_SECRET)
    nonce = secrets.token_urlsafe(8)

    code = rp.code_from(rp.follow(rp.authorize_url(scope="openid email profile", nonce=nonce)))
    response = rp.token(code, auth="post")  # DSM authenticates with client_secret_post
    assert response.status_code == 200, response.text
    tokens = response.json()

    claims = rp.verify_id_token(tokens["id_token"], nonce=nonce)
    assert claims["username"] == "mael.valais"
    assert claims["preferred_username"] == "mael.valais"
    assert claims["sub"] == str(mael.public_id)
    assert claims["email"] == "mael@example.com"
    assert "auth_time" in claims

    for method in ("get", "post"):
        userinfo = getattr(requests, method)(f"{hub}/userinfo/", headers={"Authorization": f"Bearer {tokens['access_token']}"}, timeout=10)
        assert userinfo.status_code == 200, userinfo.text
        assert userinfo.json()["username"] == "mael.valais"
        assert userinfo.json()["sub"] == claims["sub"]

    # The upstream saw PKCE (social-auth's generic OIDC would not send it by default).
    assert upstream_provider.authorize_requests[0]["code_challenge_method"] == "S256"
