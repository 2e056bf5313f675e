"""Secrets never reach the logs, even at DEBUG: client secrets, upstream secrets, codes, tokens."""

import logging

import pytest

from tests.conftest import DSM_SECRET, exchange, get_code, signed_in, upstream_round_trip
from tests.fakes.oidc_upstream import Identity

pytestmark = pytest.mark.django_db


def test_a_whole_sign_in_logs_no_secret(client, caplog, upstream_provider, google_like, dsm_client, mael):
    caplog.set_level(logging.DEBUG)
    upstream_provider.identity = Identity(sub="g-1", email="mael@example.com")
    upstream_round_trip(client)
    signed_in(client, mael)
    code = get_code(client, "ds923-dsm", scope="openid offline_access")
    tokens = exchange(client, "ds923-dsm", code, DSM_SECRET).json()
    exchange(client, "ds923-dsm", code, DSM_SECRET)  # a replay, logged as a refusal
    exchange(client, "ds923-dsm", get_code(client, "ds923-dsm"), DSM_SECRET[:-1] + "x")  # wrong secret
    client.post("/token/", {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
                            "client_id": "ds923-dsm", "client_secret": DSM_SECRET})
    client.get("/userinfo/", HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}")
    logged = caplog.text
    assert logged  # the flow did log (audit lines), so the check below means something
    for secret in (DSM_SECRET, DSM_SECRET[:-1] + "x", upstream_provider.client_secret, code,
                   tokens["access_token"], tokens["refresh_token"], tokens["id_token"]):
        assert secret not in logged
