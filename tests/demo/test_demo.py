"""The development demo (`make run PORT=N`) as a real server on a random port, driven over HTTP.

The issuer follows the port (HUB_ISSUER=http://127.0.0.1:N, as the Makefile sets it), re-running
`manage.py demo` on another port moves the demo client's redirect URI there, and "Use another
account" on a refusal ends in a completed sign-in, not "state mismatch".
"""

from __future__ import annotations

import html
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def hub_env(tmp: Path, port: int) -> dict[str, str]:
    env = {**os.environ, "HUB_DEBUG": "1", "HUB_ISSUER": f"http://127.0.0.1:{port}",
           "DATABASE_URL": f"sqlite:///{tmp / 'hub.sqlite3'}", "HUB_VAR_DIR": str(tmp)}
    for name in ("REDIS_URL", "CELERY_BROKER_URL", "HUB_CONFIG", "HUB_ALLOWED_HOSTS"):
        env.pop(name, None)
    return env


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return done


def demo_redirect_uris(env: dict[str, str]) -> str:
    return manage(env, "shell", "--no-imports", "-c", "from oauth2_provider.models import Application; "
                  "print(Application.objects.get(client_id='demo-dsm').redirect_uris)").stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def demo_hub(tmp_path_factory):
    """migrate + demo on one port, demo again on another, then runserver there (what `make run PORT=N` does)."""
    tmp = tmp_path_factory.mktemp("demo")
    first, port = free_port(), free_port()
    manage(hub_env(tmp, first), "migrate", "--noinput", "-v0")
    manage(hub_env(tmp, first), "demo")
    assert demo_redirect_uris(hub_env(tmp, first)) == f"http://127.0.0.1:{first}/demo/callback/"
    env = hub_env(tmp, port)
    out = manage(env, "demo").stdout
    assert f"http://127.0.0.1:{port}/demo/" in out
    assert demo_redirect_uris(env) == f"http://127.0.0.1:{port}/demo/callback/"  # moved with the port
    server = subprocess.Popen([sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"runserver did not start: {server.stderr.read() if server.stderr else ''}")
            time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()


def pick_person(session: requests.Session, page: requests.Response, email: str) -> requests.Response:
    """Submit the mock upstream's form as `email`."""
    assert page.status_code == 200 and "/mock/" in page.url, (page.status_code, page.url)
    action = html.unescape(re.search(r'<form[^>]*action="([^"]+)"', page.text).group(1))
    state = html.unescape(re.search(r'name="state" value="([^"]*)"', page.text).group(1))
    return session.get(urljoin(page.url, action), params={"state": state, "email": email}, timeout=20)


def test_demo_sign_in_on_another_port(demo_hub):
    session = requests.Session()
    discovery = session.get(f"{demo_hub}/.well-known/openid-configuration", timeout=10).json()
    assert discovery["issuer"] == demo_hub
    page = session.get(f"{demo_hub}/demo/start/", timeout=20)
    result = pick_person(session, page, "alice@example.com")
    assert result.status_code == 200, result.text[-2000:]
    assert result.url.startswith(f"{demo_hub}/demo/callback/")
    assert re.search(r'<code id="username">alice</code>', result.text), result.text[-2000:]
    assert f"&quot;iss&quot;: &quot;{demo_hub}&quot;" in result.text
    replay = session.get(result.url, timeout=20)  # a started sign-in completes once
    assert replay.status_code == 400 and "state mismatch" in replay.text


def test_demo_callback_refuses_an_unknown_state(demo_hub):
    session = requests.Session()
    session.get(f"{demo_hub}/demo/start/", timeout=20, allow_redirects=False)  # one pending sign-in, other state
    response = session.get(f"{demo_hub}/demo/callback/", params={"state": "forged", "code": "x"}, timeout=20)
    assert response.status_code == 400 and "state mismatch" in response.text


def test_use_another_account_after_a_refusal_completes_the_demo_sign_in(demo_hub):
    session = requests.Session()
    page = session.get(f"{demo_hub}/demo/start/", timeout=20)
    refused = pick_person(session, page, "carol@example.com")  # declared, but no account on the demo NAS
    assert refused.status_code == 403 and 'id="refusal"' in refused.text
    retry = html.unescape(re.search(r'href="([^"]+)" id="retry"', refused.text).group(1))
    page = session.get(urljoin(refused.url, retry), timeout=20)
    result = pick_person(session, page, "bob@example.com")
    assert "state mismatch" not in result.text
    assert result.status_code == 200, result.text[-2000:]
    assert re.search(r'<code id="username">Bob.Builder</code>', result.text)


def test_make_run_passes_the_port_to_the_issuer_and_the_server():
    """`make run PORT=N` (dry run): migrate, demo and runserver all see HUB_ISSUER=http://127.0.0.1:N."""
    import shutil

    if not shutil.which("make"):
        pytest.skip("make is not installed")
    lines = subprocess.run(["make", "-n", "run", "worker", "beat", "PORT=8123"], cwd=ROOT, capture_output=True,
                           text=True, timeout=30, check=True).stdout.splitlines()
    issuer = "HUB_DEBUG=1 HUB_ISSUER=http://127.0.0.1:8123 "
    for command in ("manage.py migrate", "manage.py demo", "manage.py runserver 127.0.0.1:8123",
                    "celery -A identityhub worker", "celery -A identityhub beat"):
        assert any(line.startswith(issuer) and command in line for line in lines), (command, lines)
