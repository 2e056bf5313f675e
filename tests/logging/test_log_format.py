"""HUB_LOG_FORMAT: text (default) or json, one object per line; never a secret in either."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import DSM_SECRET, exchange, get_code, upstream_round_trip
from tests.fakes.dsm import FakeDSM
from tests.fakes.oidc_upstream import Identity

SNIPPET = textwrap.dedent("""
    import logging
    import django
    django.setup()
    logging.getLogger("identityhub.probe").info("hello %s", "world", extra={"nas": "ds923", "password": "hunter2"})
""")


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "identityhub.settings", **env}
    return subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=60,
                          cwd=os.getcwd())


def test_json_is_one_object_per_line_with_the_records_extra_fields():
    result = run_python(SNIPPET, HUB_LOG_FORMAT="json")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if "identityhub.probe" in line]
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert list(record)[:4] == ["time", "level", "logger", "message"]
    assert record["level"] == "INFO" and record["logger"] == "identityhub.probe" and record["message"] == "hello world"
    assert record["time"].endswith("+00:00") and "T" in record["time"]
    assert record["nas"] == "ds923"
    assert record["password"] == "[redacted]"
    assert "hunter2" not in result.stderr


def test_text_is_the_default():
    result = run_python(SNIPPET)
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stderr.splitlines() if "identityhub.probe" in line)
    assert line.split(" ", 2)[2] == "INFO identityhub.probe hello world"
    assert "hunter2" not in result.stderr


def test_celery_workers_keep_the_hubs_handlers_in_json():
    probe = "import django; django.setup(); from django.conf import settings; print(settings.CELERY_WORKER_HIJACK_ROOT_LOGGER)"
    assert run_python(probe, HUB_LOG_FORMAT="json").stdout.strip() == "False"
    assert run_python(probe).stdout.strip() == "True"  # text: the worker's own format, as before


@pytest.mark.parametrize("bad", ["yaml", "JSONL", "1"])
def test_an_invalid_value_is_improperly_configured_naming_the_variable(bad):
    result = run_python("import django; django.setup()", HUB_LOG_FORMAT=bad)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert f"HUB_LOG_FORMAT must be text or json, got {bad!r}" in result.stderr


def test_an_exception_is_in_the_object():
    from identityhub.logs import JsonFormatter

    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.getLogger("x").makeRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    data = json.loads(JsonFormatter().format(record))
    assert data["message"] == "failed" and "ValueError: boom" in data["exc_info"]


def test_a_django_request_is_reduced_to_its_method_and_path(rf):
    from identityhub.logs import JsonFormatter

    request = rf.get("/complete/google/?code=the-one-time-code&state=s")
    record = logging.getLogger("django.request").makeRecord(
        "django.request", logging.WARNING, __file__, 1, "Not Found: %s", (request.path,), None,
        extra={"status_code": 404, "request": request})
    line = JsonFormatter().format(record)
    assert "the-one-time-code" not in line
    data = json.loads(line)
    assert data["request"] == {"method": "GET", "path": "/complete/google/"} and data["status_code"] == 404


# --- real flows, both formats ---------------------------------------------------------------------------
@pytest.fixture(params=["plain", "json"])
def captured(request, settings):
    """Every log record of the test, formatted by the hub's own formatter (the settings' LOGGING),
    with the root logger at DEBUG (stricter than production's INFO: HUB_LOG_LEVEL=DEBUG is allowed)."""
    import logging.config

    config = settings.LOGGING["formatters"][request.param]
    formatter = (logging.config.DictConfigurator({}).configure_custom(dict(config)) if "()" in config
                 else logging.Formatter(config["format"]))
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield request.param, stream
    root.removeHandler(handler)
    root.setLevel(level)


@pytest.mark.django_db
def test_a_sign_in_a_token_exchange_and_a_sync_log_no_secret(captured, client, upstream_provider, google_like, mael,
                                                               dsm_client, nas):
    from synology.services import test_connection
    from synology.sync import sync_nas

    log_format, stream = captured
    password = "Sync-Pa55word-never-logged!"
    upstream_provider.identity = Identity(sub="g-1", email="mael@example.com")
    assert upstream_round_trip(client).status_code == 302
    code = get_code(client, "ds923-dsm")
    tokens = exchange(client, "ds923-dsm", code, DSM_SECRET).json()
    assert exchange(client, "ds923-dsm", code, DSM_SECRET).status_code == 400  # a replay: logged, refused
    assert exchange(client, "ds923-dsm", "forged-code", "wrong-" + DSM_SECRET).status_code == 401
    client.get(f"/complete/google/?code={code}&state=forged")  # a stray callback carrying a code
    with FakeDSM("dsm7") as fake:
        fake.accounts["hub-sync"].password = password
        fake.add_user("mael.valais", email="mael@example.com")
        nas.base_url, nas.service_username, nas.service_password = fake.url, "hub-sync", password
        nas.save()
        assert sync_nas(nas.pk, timeout=(2, 2)).ok
        assert test_connection(nas).ok
        fake.accounts["hub-sync"].password = "changed-on-the-nas"
        assert sync_nas(nas.pk, timeout=(2, 2)).outcome == "auth_failed"
    output = stream.getvalue()
    assert "audit sign_in" in output and "audit token_issued" in output and "audit sync" in output
    secrets = [password, DSM_SECRET, "wrong-" + DSM_SECRET, upstream_provider.client_secret, code,
               tokens["access_token"], tokens["refresh_token"], tokens["id_token"]]
    for secret in secrets:
        assert secret not in output, f"{log_format}: a secret in the logs"
    if log_format == "json":
        for line in output.splitlines():
            if line.startswith("{"):
                record = json.loads(line)
                assert {"time", "level", "logger", "message"} <= set(record)
