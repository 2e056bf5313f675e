"""`hub check FILE` is a validator: it runs without HUB_SECRET_KEY, HUB_ENCRYPTION_KEY, HUB_ISSUER
or a database, and reports problems as lines, never as a traceback (issue 10 item 6)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = "deploy/hub.example.yaml"
SECRETS = {"GOOGLE_CLIENT_SECRET": "GOCSPX-example", "SYNO_PASSWORD": "sync password",
           "DSM_CLIENT_SECRET": "tq3Zy0VQqTeXMyv2H8sCeAJjH0EnQkCLvXb0n0="}


def clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without any HUB_* variable, database, Redis or Celery setting."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HUB_", "CELERY_", "DJANGO_")) and k not in {"DATABASE_URL", "REDIS_URL"}
           and k not in SECRETS}
    return {**env, **extra}


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=clean_env(**env),
                          capture_output=True, text=True, timeout=120)


def test_the_example_checks_with_no_hub_variable_at_all():
    done = manage("hub", "check", EXAMPLE, **SECRETS)
    assert (done.returncode, done.stdout.strip()) == (0, f"{EXAMPLE}: ok"), done.stderr
    assert "Traceback" not in done.stderr


def test_problems_are_lines_not_tracebacks():
    done = manage("hub", "check", EXAMPLE)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert sorted(done.stderr.splitlines()) == [
        f"{EXAMPLE}:24:20: environment variable GOOGLE_CLIENT_SECRET is not set",
        f"{EXAMPLE}:49:53: environment variable SYNO_PASSWORD is not set",
        f"{EXAMPLE}:58:20: environment variable DSM_CLIENT_SECRET is not set",
    ]


def _literal_issuer_copy(tmp_path: Path, issuer: str = "https://id.example.com") -> Path:
    text = (ROOT / EXAMPLE).read_text()
    assert "issuer: ${HUB_ISSUER:-https://id.example.com}" in text
    path = tmp_path / "hub.yaml"
    path.write_text(text.replace("issuer: ${HUB_ISSUER:-https://id.example.com}", f"issuer: {issuer}"))
    return path


def test_a_file_that_sets_its_issuer_validates_without_hub_issuer(tmp_path):
    path = _literal_issuer_copy(tmp_path)
    done = manage("hub", "check", str(path), **SECRETS)
    assert done.returncode == 0, done.stderr


def test_an_explicit_hub_issuer_that_differs_stays_an_error(tmp_path):
    path = _literal_issuer_copy(tmp_path)
    done = manage("hub", "check", str(path), HUB_ISSUER="https://other.example.com", **SECRETS)
    assert done.returncode == 1
    assert done.stderr.strip() == (f"{path}:17:9: issuer 'https://id.example.com' differs from HUB_ISSUER "
                                   "'https://other.example.com'")


def test_a_bad_issuer_in_hub_config_is_reported_by_the_check_not_by_the_settings(tmp_path):
    path = _literal_issuer_copy(tmp_path, issuer="ftp://id.example.com")
    done = manage("hub", "check", HUB_CONFIG=str(path), **SECRETS)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith(f"{path}:17:9: issuer 'ftp://id.example.com' must be an absolute https URL")


def test_schema_needs_no_secret_either():
    done = manage("hub", "schema")
    assert done.returncode == 0, done.stderr
    assert done.stdout.lstrip().startswith("{")


def test_every_other_command_still_requires_the_secrets():
    for args in (("hub", "plan", EXAMPLE), ("hub", "sync"), ("migrate", "--plan")):
        done = manage(*args, HUB_ISSUER="https://id.example.com", **SECRETS)
        assert done.returncode != 0, args
        assert "HUB_SECRET_KEY is required unless HUB_DEBUG=1" in done.stderr, args
