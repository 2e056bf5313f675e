"""Fixtures for the declarative config: a valid file, its secrets in the environment, and `hub` runs."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.management import call_command

# Strong, random-looking secrets (never printed by any command: tests grep for them).
GOOGLE_SECRET = "GOCSPX-g00gleUpstreamSecretVal4e"
SYNO_PASSWORD = "Syn0-p4ss:with#chars"
DSM_SECRET = "hJ7kQ2xV9mN4pR8tW3zB6cF1gL5sD0aY"
WEB_SECRET = "Zt5Wq8Ne3Rb6Ym1Kc9Hv4Jx7Pd2Lf0Gs"
ALL_SECRETS = (GOOGLE_SECRET, SYNO_PASSWORD, DSM_SECRET, WEB_SECRET)

CONFIG = """\
version: 1
issuer: http://127.0.0.1:8000
upstreams:
  - id: google
    type: google
    client_id: "1234.apps.googleusercontent.com"
    client_secret: ${GOOGLE_CLIENT_SECRET}
    allowed_domains: [example.com]
households:
  - id: valais
    name: Valais family
    members:
      - {email: mael@example.com, name: Maël Valais, role: admin}
      - {email: mum@example.com, name: Mum}
  - id: friends
    name: Friends
    members:
      - {email: mum@example.com}
      - {email: pal@example.com, name: Pal}
nas:
  - id: ds923
    name: DS923+
    household: valais
    url: https://192.168.1.20:5001
    verify_tls: false
    service_account: {username: hub-sync, password: ${SYNO_PASSWORD}}
    sync_interval: 1h
    accounts: {mum@example.com: maman}
clients:
  - client_id: ds923-dsm
    name: DSM on DS923+
    client_secret: ${DSM_CLIENT_SECRET}
    redirect_uris: [https://ds923.example.com:5001]
    nas: ds923
    skip_consent: true
    claims:
      nas_user: {value: nas.username}
      roles: {value: household_roles, scope: groups}
      tier: {const: 3}
  - client_id: photos
    client_secret: ${WEB_CLIENT_SECRET}
    redirect_uris: [https://photos.example.com/callback]
    post_logout_redirect_uris: [https://photos.example.com/]
    households: [valais, friends]
  - client_id: cli
    name: A public CLI
    redirect_uris: [http://127.0.0.1/callback]
    households: [friends]
"""


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def output(self) -> str:
        return self.out + self.err


@pytest.fixture
def secrets_env(monkeypatch):
    monkeypatch.setenv("GOOGLE_CLIENT_SECRET", GOOGLE_SECRET)
    monkeypatch.setenv("SYNO_PASSWORD", SYNO_PASSWORD)
    monkeypatch.setenv("DSM_CLIENT_SECRET", DSM_SECRET)
    monkeypatch.setenv("WEB_CLIENT_SECRET", WEB_SECRET)


@pytest.fixture
def write(tmp_path):
    """write(text, name="edited.yaml") -> the path as a string (`config_file` is hub.yaml)."""

    def make(text: str, name: str = "edited.yaml") -> str:
        path = Path(tmp_path) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return str(path)

    return make


@pytest.fixture
def config_file(write, secrets_env) -> str:
    return write(CONFIG, "hub.yaml")


def call_hub(*args: str) -> Result:
    out, err = io.StringIO(), io.StringIO()
    code = 0
    try:
        call_command("hub", *args, stdout=out, stderr=err)
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    return Result(code, out.getvalue(), err.getvalue())


@pytest.fixture
def run_hub(db):
    return call_hub
