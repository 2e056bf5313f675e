"""Issue 9, protocol items 1–5 and security item 11: what independent relying parties and a live
review found at the provider's endpoints. Each test failed before its fix."""

from __future__ import annotations

import pytest

from tests.conftest import DSM_SECRET, RP_REDIRECT, authorize_query, exchange, get_code, signed_in

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
