"""Issue 9 item 10: tokens are stored hashed (RFC 9700 §4.14 / DOT's COMPLIANT_BCP_RFC9700_TOKEN_STORAGE)
and an access token in a query string is refused (RFC 9700 §4.3.2, RFC 6750 §5.3); refresh, revocation,
code-replay revocation and userinfo keep working, and tokens issued before the change keep working."""

from __future__ import annotations

import hashlib
import importlib

import pytest
from django.apps import apps as django_apps
from django.db import connection

from tests.conftest import DSM_SECRET, exchange, get_code, signed_in

pytestmark = pytest.mark.django_db

FORM = {"client_id": "ds923-dsm", "client_secret": DSM_SECRET}


def _all_token_text() -> str:
    """Every column of every access/refresh/ID-token row, as the database holds it."""
    from oauth2_provider.models import AccessToken, IDToken, RefreshToken

    text = []
    with connection.cursor() as cursor:
        for model in (AccessToken, RefreshToken, IDToken):
            cursor.execute(f"SELECT * FROM {model._meta.db_table}")  # noqa: S608
            text.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(text)


def _issue(client, mael):
    signed_in(client, mael)
    response = exchange(client, "ds923-dsm", get_code(client, "ds923-dsm", scope="openid offline_access"), DSM_SECRET)
    assert response.status_code == 200, response.content
    return response.json()


def _userinfo(client, access_token: str):
    return client.get("/userinfo/", HTTP_AUTHORIZATION=f"Bearer {access_token}")


def test_the_database_holds_no_issued_token_after_an_exchange_and_a_refresh(client, mael, dsm_client):
    from oauth2_provider.models import AccessToken, RefreshToken

    first = _issue(client, mael)
    refreshed = client.post("/token/", {"grant_type": "refresh_token", "refresh_token": first["refresh_token"], **FORM})
    assert refreshed.status_code == 200, refreshed.content
    second = refreshed.json()
    stored = _all_token_text()
    for value in (first["access_token"], first["refresh_token"], second["access_token"], second["refresh_token"]):
        assert value not in stored
    assert set(AccessToken.objects.values_list("token", flat=True)) == {""}
    assert set(RefreshToken.objects.values_list("token", flat=True)) == {""}
    # what is kept is the lookup checksum (SHA-256 of the value), which DOT and the hub look tokens up by
    checksum = hashlib.sha256(second["access_token"].encode()).hexdigest()
    assert AccessToken.objects.filter(token_checksum=checksum).exists()
    assert _userinfo(client, second["access_token"]).status_code == 200


def test_userinfo_refuses_an_access_token_in_the_query_string(client, mael, dsm_client):
    tokens = _issue(client, mael)
    for method in (client.get, client.post):
        refused = method(f"/userinfo/?access_token={tokens['access_token']}")
        assert refused.status_code == 401, (method, refused.content)
        assert "Bearer" in refused.get("WWW-Authenticate", "")
    # also when a valid header comes with it: a client that leaks the token into URLs is told so
    both = client.get(f"/userinfo/?access_token={tokens['access_token']}",
                      HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}")
    assert both.status_code == 401
    ok = _userinfo(client, tokens["access_token"])
    assert ok.status_code == 200 and ok.json()["username"] == "mael.valais"
    assert client.post("/userinfo/", {"access_token": tokens["access_token"]}).status_code == 200  # RFC 6750 §2.2


def test_revocation_still_works_with_hashed_tokens(client, mael, dsm_client):
    from oauth2_provider.models import RefreshToken

    tokens = _issue(client, mael)
    assert client.post("/revoke/", {"token": tokens["access_token"], **FORM}).status_code == 200
    assert _userinfo(client, tokens["access_token"]).status_code == 401
    tokens = _issue(client, mael)
    assert client.post("/revoke/", {"token": tokens["refresh_token"], "token_type_hint": "refresh_token",
                                    **FORM}).status_code == 200
    assert RefreshToken.objects.filter(revoked__isnull=True).count() == 0
    refresh = client.post("/token/", {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], **FORM})
    assert refresh.status_code == 400 and refresh.json()["error"] == "invalid_grant"


def test_code_replay_still_revokes_what_the_code_issued(client, mael, dsm_client):
    signed_in(client, mael)
    code = get_code(client, "ds923-dsm", scope="openid offline_access")
    tokens = exchange(client, "ds923-dsm", code, DSM_SECRET).json()
    assert exchange(client, "ds923-dsm", code, DSM_SECRET).status_code == 400
    assert _userinfo(client, tokens["access_token"]).status_code == 401
    refresh = client.post("/token/", {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], **FORM})
    assert refresh.status_code == 400


# --- the migration: tokens stored in plain text before it keep working after it -------------------
def _migration():
    return importlib.import_module("identityhub.oidc.migrations.0005_hash_stored_tokens")


def _plain_tokens(mael, dsm_client):
    """An access + refresh token pair as the hub stored them before item 10 (plain `token` column)."""
    from datetime import timedelta

    from django.utils import timezone
    from oauth2_provider.models import AccessToken, RefreshToken

    access = AccessToken.objects.create(user=mael, application=dsm_client, token="plain-access-" + "a" * 30,
                                        expires=timezone.now() + timedelta(hours=1), scope="openid offline_access")
    refresh = RefreshToken.objects.create(user=mael, application=dsm_client, token="plain-refresh-" + "r" * 30,
                                          access_token=access, token_family="8a4f7c1e-1111-4a4a-9b9b-000000000001")
    assert AccessToken.objects.get(pk=access.pk).token == access.token  # really stored in plain text
    return access.token, refresh.token


def test_the_migration_hashes_stored_tokens_and_they_still_authenticate(client, mael, dsm_client):
    from oauth2_provider.models import AccessToken, RefreshToken

    access, refresh = _plain_tokens(mael, dsm_client)
    _migration().hash_stored_tokens(django_apps, None)
    stored = _all_token_text()
    assert access not in stored and refresh not in stored
    assert AccessToken.objects.get().token_checksum == hashlib.sha256(access.encode()).hexdigest()
    assert RefreshToken.objects.get().token_checksum == hashlib.sha256(refresh.encode()).hexdigest()
    # a session that started before the migration goes on
    assert _userinfo(client, access).status_code == 200
    rotated = client.post("/token/", {"grant_type": "refresh_token", "refresh_token": refresh, **FORM})
    assert rotated.status_code == 200, rotated.content
    assert _userinfo(client, rotated.json()["access_token"]).status_code == 200
    assert _migration().hash_stored_tokens(django_apps, None) == 0  # idempotent: nothing left to hash


def test_the_migration_repairs_a_checksum_that_does_not_match_the_stored_value(mael, dsm_client):
    from oauth2_provider.models import AccessToken

    access, _ = _plain_tokens(mael, dsm_client)
    AccessToken.objects.update(token_checksum="0" * 64)  # e.g. a row written by hand or by old code
    _migration().hash_stored_tokens(django_apps, None)
    row = AccessToken.objects.get()
    assert row.token == "" and row.token_checksum == hashlib.sha256(access.encode()).hexdigest()


# --- item 12: HSTS for https issuers, the CSP behind the proxy ------------------------------------
_HEADERS_PROBE = """
import json, django
django.setup()
from django.conf import settings
from django.test import Client
response = Client().get("/healthz", HTTP_HOST="id.example.com", HTTP_X_FORWARDED_PROTO="https")
print(json.dumps({"hsts_seconds": settings.SECURE_HSTS_SECONDS,
                  "sts": response.get("Strict-Transport-Security"),
                  "csp": response.get("Content-Security-Policy")}))
"""


def _hub_env(tmp_path, **env):
    import os

    base = {k: v for k, v in os.environ.items() if not k.startswith(("HUB_", "DATABASE_URL", "REDIS_URL"))}
    return {**base, "DJANGO_SETTINGS_MODULE": "identityhub.settings", "HUB_DEBUG": "0",
            "HUB_SECRET_KEY": "test-secret-key-not-for-production-0123456789abcdef-xyz",
            "HUB_ENCRYPTION_KEY": "8mB2kTq3Zy0VQqTeXMyv2H8sCeAJjH0EnQkCLvXb0n0=",
            "HUB_VAR_DIR": str(tmp_path), "HUB_ALLOWED_HOSTS": "id.example.com,127.0.0.1", **env}


def _probe(tmp_path, **env) -> dict:
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", _HEADERS_PROBE], cwd=root, env=_hub_env(tmp_path, **env),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_an_https_issuer_behind_the_proxy_sends_hsts_and_the_csp(tmp_path):
    found = _probe(tmp_path, HUB_ISSUER="https://id.example.com", HUB_BEHIND_PROXY="1")
    assert found["hsts_seconds"] == 31536000
    assert found["sts"] == "max-age=31536000"  # no includeSubDomains unless asked (see operations.md)
    assert "default-src 'self'" in found["csp"] and "frame-ancestors 'none'" in found["csp"]
    assert "unsafe-inline" not in found["csp"]


def test_hsts_follows_hub_hsts_seconds_and_may_include_subdomains(tmp_path):
    found = _probe(tmp_path, HUB_ISSUER="https://id.example.com", HUB_BEHIND_PROXY="1", HUB_HSTS_SECONDS="600",
                   HUB_HSTS_INCLUDE_SUBDOMAINS="1")
    assert found["sts"] == "max-age=600; includeSubDomains"
    off = _probe(tmp_path, HUB_ISSUER="https://id.example.com", HUB_BEHIND_PROXY="1", HUB_HSTS_SECONDS="0")
    assert off["sts"] is None


def test_an_http_loopback_issuer_sends_no_hsts(tmp_path):
    found = _probe(tmp_path, HUB_ISSUER="http://127.0.0.1:8000", HUB_HSTS_SECONDS="31536000")
    assert found["hsts_seconds"] == 0 and found["sts"] is None
    assert "frame-ancestors 'none'" in found["csp"]  # the CSP does not depend on https


def test_check_deploy_finds_hsts_set_for_an_https_issuer(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "manage.py", "check", "--deploy"], cwd=root, capture_output=True,
                          text=True, timeout=60, env=_hub_env(tmp_path, HUB_ISSUER="https://id.example.com"))
    assert "security.W004" not in done.stdout + done.stderr  # "You have not set SECURE_HSTS_SECONDS"


def test_the_proxy_examples_add_hsts_and_keep_the_hubs_csp():
    from pathlib import Path

    proxy = Path(__file__).resolve().parents[2] / "deploy" / "proxy"
    caddy, nginx = (proxy / "Caddyfile").read_text(), (proxy / "nginx.conf").read_text()
    assert caddy.count('Strict-Transport-Security "max-age=31536000"') == 2  # both sites
    assert nginx.count('add_header Strict-Transport-Security "max-age=31536000" always;') == 2
    assert nginx.count("proxy_hide_header Strict-Transport-Security;") == 2  # one header, not two
    for text in (caddy, nginx):
        assert "Content-Security-Policy" in text  # the comments say why it is left alone …
        directives = "\n".join(line for line in text.splitlines() if not line.strip().startswith("#"))
        assert "Content-Security-Policy" not in directives  # … and nothing strips, replaces or adds one
