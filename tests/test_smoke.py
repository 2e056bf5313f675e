from django.conf import settings


def test_settings_come_from_test_env():
    assert settings.DEBUG is False
    assert settings.HUB_ISSUER == "http://127.0.0.1:8000"
