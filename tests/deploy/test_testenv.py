"""The suite ignores the caller's HUB_* environment (issue 10 item 6): `HUB_ISSUER=https://x.example
make test` used to fail 34 tests. A small pytest run with hostile HUB_* values sees the test settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = {
    "HUB_ISSUER": "https://x.example",
    "HUB_DEBUG": "1",
    "HUB_CONFIG": "/nonexistent/hub.yaml",
    "HUB_EMAIL_URL": "smtp://bad",
    "HUB_EMAIL_FROM": "hostile@x.example",
    "HUB_METRICS_TOKEN": "hostile-token",
    "HUB_LOG_FORMAT": "json",
    "HUB_SECRET_KEY": "hostile-secret-key",
    "HUB_ENCRYPTION_KEY": "Zm9yZWlnbi1rZXktZm9yZWlnbi1rZXktZm9yZWlnbjE=",
    "HUB_VAR_DIR": "/nonexistent/var",
    "HUB_BEHIND_PROXY": "1",
    "HUB_ALLOWED_HOSTS": "x.example",
    "HUB_RATELIMIT_LOGIN": "1/m",
    "HUB_APPLY_ON_START": "1",
    "HUB_SOMETHING_NEW": "whatever",  # a name nobody has listed yet is dropped too
    "HUB_REQUIRE_SERVICES": "kept",  # the allowlist: CI sets it
}
PROBE = '''
import json, os
from django.conf import settings

def test_probe():
    print("PROBE " + json.dumps({
        "issuer": settings.HUB_ISSUER, "debug": settings.DEBUG, "config": settings.HUB_CONFIG,
        "email": settings.HUB_EMAIL_ENABLED, "secret": settings.SECRET_KEY,
        "encryption": settings.HUB_ENCRYPTION_KEYS, "var": str(settings.VAR_DIR),
        "proxy": settings.HUB_BEHIND_PROXY, "hosts": settings.ALLOWED_HOSTS,
        "login_rate": settings.HUB_RATELIMIT_LOGIN,
        "hub_env": {k: v for k, v in sorted(os.environ.items()) if k.startswith("HUB_")},
        "database_url": os.environ.get("DATABASE_URL"),
    }))
'''


def test_a_hostile_hub_environment_does_not_reach_the_suite(tmp_path):
    (tmp_path / "test_probe.py").write_text(PROBE)
    env = {**os.environ, **HOSTILE, "DATABASE_URL": f"sqlite:///{tmp_path / 'kept.sqlite3'}"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(ROOT), "-q", "-s",
         str(tmp_path / "test_probe.py")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    seen = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("PROBE "))[6:])
    assert seen["issuer"] == "http://127.0.0.1:8000"
    assert seen["debug"] is False
    assert seen["config"] is None
    assert seen["email"] is False
    assert seen["secret"] == "test-secret-key-not-for-production-0123456789abcdef"
    assert seen["encryption"] == ["8mB2kTq3Zy0VQqTeXMyv2H8sCeAJjH0EnQkCLvXb0n0="]
    assert seen["var"] == str(ROOT / "var" / "test")
    assert seen["proxy"] is False
    assert "x.example" not in seen["hosts"] and seen["hosts"][:3] == ["127.0.0.1", "127.0.0.1", "localhost"]
    assert seen["login_rate"] == "100000/m"
    assert seen["database_url"] == env["DATABASE_URL"]  # not HUB_*: CI's PostgreSQL URL stays
    leaked = {k: v for k, v in seen["hub_env"].items() if v in HOSTILE.values() and k != "HUB_REQUIRE_SERVICES"}
    assert leaked == {}
    assert seen["hub_env"]["HUB_REQUIRE_SERVICES"] == "kept"
    assert "HUB_SOMETHING_NEW" not in seen["hub_env"] and "HUB_METRICS_TOKEN" not in seen["hub_env"]


def test_this_process_saw_no_caller_hub_variable_either():
    from django.conf import settings

    assert settings.HUB_ISSUER == "http://127.0.0.1:8000" and not settings.DEBUG and settings.HUB_CONFIG is None
