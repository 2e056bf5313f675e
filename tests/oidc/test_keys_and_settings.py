"""Signing keys (race-free first start, never silently replaced) and issuer-driven settings."""

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.db import connection

from identityhub.crypto import DecryptionError
from identityhub.oidc import keys
from identityhub.oidc.models import SigningKey

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_starts_agree_on_one_key():
    if connection.vendor == "sqlite" and connection.settings_dict["NAME"].startswith(("file:", ":memory:")):
        pytest.skip("in-memory SQLite is one connection; the race needs real concurrent connections (CI: PostgreSQL)")
    SigningKey.objects.all().delete()
    barrier = threading.Barrier(4)
    kids: list[str] = []

    def start() -> None:
        barrier.wait()
        try:
            kids.append(keys.ensure_active_key().kid)
        finally:
            connection.close()

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(kids) == 4 and len(set(kids)) == 1
    assert SigningKey.objects.filter(active=True).count() == 1


@pytest.mark.django_db
def test_first_key_is_created_once_and_stored_encrypted():
    SigningKey.objects.all().delete()
    first = keys.ensure_active_key()
    assert keys.ensure_active_key().kid == first.kid
    with connection.cursor() as cursor:
        cursor.execute("SELECT private_pem FROM oidc_signingkey WHERE kid = %s", [first.kid])
        stored = cursor.fetchone()[0]
    assert "PRIVATE KEY" not in stored and stored.startswith("gAAAA")  # Fernet token


@pytest.mark.django_db
def test_a_key_that_cannot_be_decrypted_is_an_error_not_a_new_key(settings):
    from identityhub import crypto

    SigningKey.objects.all().delete()
    keys.ensure_active_key()
    settings.HUB_ENCRYPTION_KEYS = ["Zm9yZWlnbi1rZXktZm9yZWlnbi1rZXktZm9yZWlnbjE="]
    crypto._fernet.cache_clear()
    try:
        with pytest.raises(DecryptionError):
            keys.load_keyring()
        assert SigningKey.objects.count() == 1
    finally:
        crypto._fernet.cache_clear()


def _hub_process(env_extra: dict, script: str) -> dict:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "identityhub.settings", "DATABASE_URL": "sqlite:///:memory:",
           **env_extra}
    env.pop("HUB_CONFIG", None)
    code = ("import django, json; django.setup()\n"
            "from django.core.management import call_command; call_command('migrate', verbosity=0)\n" + script)
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_issuer_with_a_path_mounts_every_url_under_it():
    doc = _hub_process({"HUB_ISSUER": "https://id.example.com/hub", "HUB_BEHIND_PROXY": "1"}, (
        "from django.test import Client\n"
        "c = Client(HTTP_HOST='id.example.com', HTTP_X_FORWARDED_PROTO='https')\n"
        "assert c.get('/.well-known/openid-configuration').status_code == 404\n"
        "r = c.get('/hub/.well-known/openid-configuration')\n"
        "print(json.dumps(r.json()))\n"
    ))
    assert doc["issuer"] == "https://id.example.com/hub"
    assert doc["authorization_endpoint"] == "https://id.example.com/hub/authorize/"
    assert doc["jwks_uri"] == "https://id.example.com/hub/.well-known/jwks.json"


def test_allowed_hosts_default_to_the_issuer_host_and_loopback():
    values = _hub_process({"HUB_ISSUER": "https://id.example.com"}, (
        "from django.conf import settings\n"
        "print(json.dumps({'hosts': settings.ALLOWED_HOSTS, 'secure': settings.SESSION_COOKIE_SECURE,"
        " 'proxy': getattr(settings, 'SECURE_PROXY_SSL_HEADER', None)}))\n"
    ))
    assert values == {"hosts": ["id.example.com", "127.0.0.1", "localhost"], "secure": True, "proxy": None}


def test_production_refuses_to_start_without_its_secrets():
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(DJANGO_SETTINGS_MODULE="identityhub.settings", HUB_ISSUER="https://id.example.com")
    result = subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "HUB_SECRET_KEY is required" in result.stderr
