"""Issue 9 item 15: HUB_DEBUG=1 lets anyone who reaches the hub sign in as anyone (the mock upstream),
so debug stays on loopback — issuer, runserver's address, the image's gunicorn, and the mock views
themselves — unless HUB_DEBUG_ALLOW_REMOTE_I_UNDERSTAND_ANYONE_CAN_SIGN_IN=1 says otherwise (loudly)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OVERRIDE = "HUB_DEBUG_ALLOW_REMOTE_I_UNDERSTAND_ANYONE_CAN_SIGN_IN"


def _env(tmp_path, **env) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("HUB_", "DATABASE_URL", "REDIS_URL", "CELERY_")) and k != OVERRIDE}
    return {**base, "DJANGO_SETTINGS_MODULE": "identityhub.settings", "HUB_VAR_DIR": str(tmp_path), **env}


def _setup(tmp_path, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "import django; django.setup(); print('started')"], cwd=ROOT,
                          env=_env(tmp_path, **env), capture_output=True, text=True, timeout=60)


# --- the issuer ----------------------------------------------------------------------------------
@pytest.mark.parametrize("issuer", ["https://id.example.com", "http://192.168.1.20:8000", "http://0.0.0.0:8000"])
def test_debug_with_a_non_loopback_issuer_does_not_start(tmp_path, issuer):
    done = _setup(tmp_path, HUB_DEBUG="1", HUB_ISSUER=issuer)
    assert done.returncode != 0 and "started" not in done.stdout
    assert "ImproperlyConfigured" in done.stderr
    assert "HUB_DEBUG=1 needs a loopback issuer" in done.stderr and OVERRIDE in done.stderr


@pytest.mark.parametrize("issuer", ["http://127.0.0.1:8000", "http://localhost:8123", "http://[::1]:8000"])
def test_debug_on_a_loopback_issuer_starts_without_a_warning(tmp_path, issuer):
    done = _setup(tmp_path, HUB_DEBUG="1", HUB_ISSUER=issuer)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ANYONE" not in done.stderr


def test_the_override_starts_and_says_so_loudly(tmp_path):
    done = _setup(tmp_path, HUB_DEBUG="1", HUB_ISSUER="https://id.example.com", **{OVERRIDE: "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "WARNING" in done.stderr
    assert "ANYONE WHO CAN REACH THIS HUB CAN SIGN IN AS ANY PERSON" in done.stderr


def test_the_override_means_nothing_without_debug(tmp_path):
    done = _setup(tmp_path, HUB_DEBUG="0", HUB_ISSUER="https://id.example.com", HUB_SECRET_KEY="k" * 50,
                  HUB_ENCRYPTION_KEY="8mB2kTq3Zy0VQqTeXMyv2H8sCeAJjH0EnQkCLvXb0n0=", **{OVERRIDE: "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ANYONE" not in done.stderr


# --- runserver -------------------------------------------------------------------------------------
@pytest.mark.parametrize("addr", ["0.0.0.0", "0", "::", "192.0.2.5", "hub.example.lan"])
def test_runserver_refuses_a_non_loopback_address_in_debug(addr):
    from identityhub.management.commands.runserver import bind_refusal

    refusal = bind_refusal(addr, debug=True, allow_remote=False)
    assert refusal and "loopback" in refusal and OVERRIDE in refusal
    assert bind_refusal(addr, debug=True, allow_remote=True) is None
    assert bind_refusal(addr, debug=False, allow_remote=False) is None  # production settings: not our call


@pytest.mark.parametrize("addr", ["127.0.0.1", "127.0.0.2", "localhost", "::1"])
def test_runserver_accepts_loopback_in_debug(addr):
    from identityhub.management.commands.runserver import bind_refusal

    assert bind_refusal(addr, debug=True, allow_remote=False) is None


def test_manage_py_runserver_is_the_hubs_and_refuses_before_serving(settings):
    from django.core.management import CommandError, call_command, get_commands

    assert get_commands()["runserver"] == "identityhub"  # not staticfiles' or Django's own
    settings.DEBUG = True
    with pytest.raises(CommandError, match="loopback"):
        call_command("runserver", "0.0.0.0:8000", use_reloader=False)


# --- the image's gunicorn --------------------------------------------------------------------------
def _entrypoint(tmp_path, **env) -> subprocess.CompletedProcess:
    stubs = tmp_path / "bin"
    stubs.mkdir(exist_ok=True)
    for name in ("python", "gunicorn"):
        stub = stubs / name
        stub.write_text(f'#!/bin/sh\necho "{name} $*"\n')
        stub.chmod(stub.stat().st_mode | stat.S_IEXEC)
    environment = _env(tmp_path, PATH=f"{stubs}:{os.environ['PATH']}", **env)
    return subprocess.run(["bash", str(ROOT / "deploy" / "entrypoint.sh"), "web"], env=environment,
                          capture_output=True, text=True, timeout=30)


def test_the_image_refuses_to_serve_debug_on_all_interfaces(tmp_path):
    done = _entrypoint(tmp_path, HUB_DEBUG="1")
    assert done.returncode != 0
    assert "gunicorn" not in done.stdout and "migrate" not in done.stdout
    assert "HUB_DEBUG=1" in done.stderr and OVERRIDE in done.stderr


def test_the_image_serves_debug_with_the_override_and_production_as_before(tmp_path):
    loud = _entrypoint(tmp_path, HUB_DEBUG="1", **{OVERRIDE: "1"})
    assert loud.returncode == 0, loud.stderr
    assert "gunicorn identityhub.wsgi" in loud.stdout and "ANYONE" in loud.stderr
    production = _entrypoint(tmp_path, HUB_DEBUG="0")
    assert production.returncode == 0 and "--bind 0.0.0.0:8000" in production.stdout, production.stderr


# --- the mock upstream's own views -----------------------------------------------------------------
@pytest.fixture
def mock_upstream(db, people, settings):
    from accounts.services import declare_upstream

    settings.DEBUG = True
    settings.HUB_DEBUG_ALLOW_REMOTE = False
    declare_upstream("mock", "mock")


def _form(client, remote_addr: str):
    start = client.get("/login/mock/?next=/profile/", REMOTE_ADDR=remote_addr)
    assert start.status_code == 302
    return client.get(start["Location"], REMOTE_ADDR=remote_addr)


def test_the_mock_upstream_refuses_a_remote_address(client, mock_upstream):
    form = _form(client, "192.0.2.5")
    assert form.status_code == 403 and b"mael@example.com" not in form.content
    state = client.session.get("mock_state", "x")
    done = client.get("/complete/mock/", {"state": state, "email": "mael@example.com"}, REMOTE_ADDR="192.0.2.5")
    assert done.status_code != 302 or done["Location"] != "/profile/"
    assert "_auth_user_id" not in client.session


def test_the_mock_upstream_serves_loopback_and_the_override(client, mock_upstream, settings):
    form = _form(client, "127.0.0.1")
    assert form.status_code == 200 and b"mael@example.com" in form.content
    settings.HUB_DEBUG_ALLOW_REMOTE = True
    form = _form(client, "192.0.2.5")
    assert form.status_code == 200
    done = client.get("/complete/mock/", {"state": form.context["state"], "email": "mael@example.com"},
                      REMOTE_ADDR="192.0.2.5")
    assert done.status_code == 302 and done["Location"] == "/profile/"


def test_a_system_check_warns_while_the_override_is_on(settings):
    from identityhub.checks import debug_exposure

    settings.DEBUG, settings.HUB_DEBUG_ALLOW_REMOTE = True, True
    assert [message.id for message in debug_exposure()] == ["identityhub.W001"]
    settings.HUB_DEBUG_ALLOW_REMOTE = False
    assert debug_exposure() == []
