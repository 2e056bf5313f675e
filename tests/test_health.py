import pytest


def test_healthz_answers_without_a_database(client):
    assert client.get("/healthz").json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_checks_database_key_and_redis(client, settings):
    response = client.get("/readyz")
    assert response.status_code == 200
    expected = {"database", "signing_key"} | ({"redis"} if settings.REDIS_URL else set())
    assert set(response.json()["checks"]) == expected
    assert response["Cache-Control"].startswith("max-age=0")


@pytest.mark.django_db
def test_readyz_reports_an_unreadable_signing_key(client, settings):
    from identityhub import crypto
    from identityhub.oidc import keys

    keys.ensure_active_key()
    settings.HUB_ENCRYPTION_KEYS = ["Zm9yZWlnbi1rZXktZm9yZWlnbi1rZXktZm9yZWlnbjE="]
    crypto._fernet.cache_clear()
    keys._loaded = None  # as a fresh process would start
    try:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["checks"]["signing_key"] == "failed"
        assert "Fernet" not in response.content.decode() and "decrypt" not in response.content.decode()
    finally:
        crypto._fernet.cache_clear()
        keys._loaded = None
