"""Issue 11: persistent database connections, and what must keep holding with them."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def settings_for(url: str) -> dict:
    code = ("import json; from django.conf import settings as s; d = s.DATABASES['default'];"
            "print(json.dumps({'age': d['CONN_MAX_AGE'], 'checks': d['CONN_HEALTH_CHECKS'],"
            " 'options': d.get('OPTIONS', {})}))")
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "identityhub.settings",
           "HUB_SECRET_KEY": "x" * 50, "HUB_DEBUG": "0", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", f"import django; django.setup(); {code}"], env=env, cwd=ROOT,
                         check=True, capture_output=True, text=True).stdout
    import json

    return json.loads(out.strip().splitlines()[-1])


def test_sqlite_connections_persist_with_wal_immediate_and_busy_timeout(tmp_path):
    db = settings_for(f"sqlite:///{tmp_path / 'hub.sqlite3'}")
    assert db["age"] > 0
    assert "journal_mode=WAL" in db["options"]["init_command"]
    assert db["options"]["transaction_mode"] == "IMMEDIATE"
    assert db["options"]["timeout"] >= 5


def test_postgresql_connections_persist_with_health_checks():
    db = settings_for("postgres://postgres@127.0.0.1:5432/identityhub")
    assert db["age"] > 0 and db["checks"] is True


def test_loading_the_wsgi_app_leaves_no_open_connection(tmp_path):
    """With gunicorn --preload, identityhub.wsgi runs in the master before fork: the connection the
    key-ring load opened must be closed, never inherited by the workers."""
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'hub.sqlite3'}", "HUB_DEBUG": "0",
           "DJANGO_SETTINGS_MODULE": "identityhub.settings", "HUB_SECRET_KEY": "x" * 50, "PYTHONPATH": str(ROOT),
           "HUB_ENCRYPTION_KEY": "8mB2kTq3Zy0VQqTeXMyv2H8sCeAJjH0EnQkCLvXb0n0="}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], env=env, cwd=ROOT, check=True)
    code = ("import identityhub.wsgi; from django.db import connections;"
            "print([c.alias for c in connections.all(initialized_only=True) if c.connection is not None])")
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True, capture_output=True, text=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
