"""Production-like: the hub's real processes, a scripted sign-in and a sync that beat schedules.

1. The full profile (`deploy/entrypoint.sh web`, `worker`, `beat`: gunicorn, a Celery worker and
   Celery beat, three separate process trees) on the real PostgreSQL (a fresh database, dropped
   after) and Redis (an empty database number, flushed after), HUB_DEBUG=0. Skipped when PostgreSQL or
   Redis cannot be reached, unless HUB_REQUIRE_SERVICES=1 (CI): then it fails.
2. The NAS profile (`deploy/entrypoint.sh all`: one process) on SQLite and the filesystem broker.

In both, the test serves an OpenID Connect upstream (tests/fakes/oidc_upstream.py) and a DSM
(tests/fakes/dsm.py) from its own process. A NAS is declared due; beat's `sync_due` tick
(HUB_SYNC_TICK_SECONDS=1 here, 60 by default) queues its sync and the worker runs it: the test waits
for the SyncRun (trigger `schedule`: no one called the sync directly). Then a person signs in as a
browser would — the app's authorization request, the hub's sign-in page, the upstream, back to the
hub, the code at the app's redirect URI — and the app exchanges the code at /token/; the ID token
names the DSM account the sync found. Everything is stopped with SIGTERM (status 0 expected), and
killed in a `finally` whatever happens. Each part is bounded (PART_SECONDS).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from tests.fakes.dsm import FakeDSM
from tests.fakes.oidc_upstream import FakeOIDCProvider, Identity

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = ROOT / "deploy" / "entrypoint.sh"
PART_SECONDS = 60
CLIENT_ID = "process-test-dsm"
CLIENT_SECRET = "process-test-secret-" + "Q7x9LmP2vR4tK8wZ3nB6yH1cJ5dF0gS"
REDIRECT = "http://127.0.0.1:9/callback"  # never fetched: the code is read from the Location
SYNC_PASSWORD = "process-Pa55word-not-secret"
NAS_ID = "proc-nas"

SETUP = """
import os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "identityhub.settings")
import django
django.setup()
from accounts.services import MemberSpec, declare_household, declare_upstream, set_members
from identityhub.oidc.services import register_client
from synology.services import declare_nas

declare_upstream("google", "oidc", name="Google", issuer={issuer!r}, client_id={upstream_id!r},
                 client_secret={upstream_secret!r})
household = declare_household("family", "The family")
set_members(household, [MemberSpec("alice@example.com", "Alice", "admin")])
nas = declare_nas({nas!r}, household=household, base_url={dsm_url!r}, service_username="hub-sync",
                  service_password={password!r})  # enabled and never synced: due at beat's next tick
register_client({client_id!r}, name="DSM", redirect_uris=[{redirect!r}], client_secret={secret!r}, nas=nas,
                skip_consent=True)
"""


# --- helpers --------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.started = time.monotonic()
        self.at = self.started + seconds

    def left(self) -> float:
        return self.at - time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.started


class Processes:
    """Processes started in their own sessions, their output in files; all killed at the end."""

    def __init__(self, tmp_path: Path, env: dict[str, str]) -> None:
        self.tmp_path, self.env = tmp_path, env
        self.started: dict[str, subprocess.Popen] = {}

    def start(self, name: str, *args: str) -> subprocess.Popen:
        log = (self.tmp_path / f"{name}.log").open("w")
        process = subprocess.Popen(["bash", str(ENTRYPOINT), *args], cwd=ROOT, env=self.env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.started[name] = process
        return process

    def run(self, *argv: str, timeout: float) -> str:
        done = subprocess.run(argv, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, f"{argv[:3]}: {done.stdout[-2000:]}{done.stderr[-3000:]}\n{self.logs()}"
        return done.stdout

    def logs(self) -> str:
        parts = []
        for name in self.started:
            text = (self.tmp_path / f"{name}.log").read_text(errors="replace")
            parts.append(f"--- {name} (last lines) ---\n" + "\n".join(text.splitlines()[-25:]))
        return "\n".join(parts)

    def check_alive(self) -> None:
        for name, process in self.started.items():
            assert process.poll() is None, f"{name} exited with {process.returncode}\n{self.logs()}"

    def stop_all(self, timeout: float) -> dict[str, int | None]:
        """SIGTERM to each; their exit statuses (None: still running after `timeout`)."""
        for process in self.started.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        end = time.monotonic() + timeout
        statuses = {}
        for name, process in self.started.items():
            try:
                statuses[name] = process.wait(timeout=max(end - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                statuses[name] = None
        return statuses

    def kill_all(self) -> None:
        for process in self.started.values():  # the whole session: gunicorn's workers, Celery's pool too
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def hub_env(tmp_path: Path, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUB_", "CELERY_", "WEB_", "FAKE_"))
           and k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "GOOGLE_CLIENT_SECRET",
                         "DSM_CLIENT_SECRET", "SYNO_PASSWORD"}}
    env.update(PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}", HUB_DEBUG="0",
               HUB_ISSUER=f"http://127.0.0.1:{port}", HUB_SECRET_KEY="process-test-secret-key-0123456789abcdefghij",
               HUB_ENCRYPTION_KEY="8mB2kTq3Zy0VQqTeXMyv2H8sCeAJjH0EnQkCLvXb0n0=", HUB_VAR_DIR=str(tmp_path / "var"),
               WEB_PORT=str(port), HUB_LOG_LEVEL="INFO", HUB_SYNC_TICK_SECONDS="1", STOP_TIMEOUT="20")
    env.update(extra)
    return env


def wait_until(predicate, deadline: Deadline, what: str, processes: Processes, every: float = 0.2):
    while deadline.left() > 0:
        processes.check_alive()
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}\n{processes.logs()}")


def ready(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def start_fakes() -> tuple[FakeOIDCProvider, FakeDSM]:
    upstream = FakeOIDCProvider(identity=Identity(sub="google-alice", email="alice@example.com", name="Alice")).start()
    dsm = FakeDSM("dsm7", csrf=True)
    dsm.accounts["hub-sync"].password = SYNC_PASSWORD
    dsm.add_user("alice", email="alice@example.com", description="Alice")
    for i in range(50):
        dsm.add_user(f"user{i:02d}", email=f"user{i}@example.org")
    dsm.start()
    return upstream, dsm


def setup_script(upstream: FakeOIDCProvider, dsm: FakeDSM) -> str:
    return SETUP.format(issuer=upstream.issuer, upstream_id=upstream.client_id, upstream_secret=upstream.client_secret,
                        nas=NAS_ID, dsm_url=dsm.url, password=SYNC_PASSWORD, client_id=CLIENT_ID,
                        redirect=REDIRECT, secret=CLIENT_SECRET)


def sign_in(port: int, upstream: FakeOIDCProvider) -> dict:
    """A browser's sign-in through the upstream, then the app's code exchange: the ID token's claims."""
    hub = f"http://127.0.0.1:{port}"
    browser = requests.Session()
    nonce, state = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
    authorize = "/authorize/?" + urlencode({"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT,
                                            "scope": "openid email", "state": state, "nonce": nonce})

    def get(url: str) -> requests.Response:
        response = browser.get(url if url.startswith("http") else hub + url, allow_redirects=False, timeout=15)
        assert response.status_code == 302, (url, response.status_code, response.text[:500])
        return response

    to_login = urlsplit(get(authorize).headers["Location"])  # not signed in: the sign-in page, next=authorize
    assert to_login.path == "/login/", to_login
    next_url = parse_qs(to_login.query)["next"][0]
    to_upstream = get(f"/login/google/?{urlencode({'next': next_url})}").headers["Location"]
    assert to_upstream.startswith(upstream.issuer + "/authorize"), to_upstream
    back = get(to_upstream).headers["Location"]  # the upstream signs Alice in and sends her back
    assert back.startswith(hub + "/complete/google/"), back
    again = get(back).headers["Location"]  # the hub completes the sign-in: on to the authorization request
    at_app = urlsplit(get(again).headers["Location"])  # the code, at the app's redirect URI
    assert f"{at_app.scheme}://{at_app.netloc}{at_app.path}" == REDIRECT, at_app
    answer = parse_qs(at_app.query)
    assert answer["state"] == [state] and answer["iss"] == [hub], answer

    token = requests.post(f"{hub}/token/", data={"grant_type": "authorization_code", "code": answer["code"][0],
                                                 "redirect_uri": REDIRECT},
                          auth=(CLIENT_ID, CLIENT_SECRET), timeout=15)
    assert token.status_code == 200, token.text
    body = token.json()
    payload = body["id_token"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["iss"] == hub and claims["aud"] == CLIENT_ID and claims["nonce"] == nonce, claims
    assert body["access_token"] and body["token_type"].lower() == "bearer"
    return claims


def check_story(port: int, upstream: FakeOIDCProvider, dsm: FakeDSM, latest_run, processes: Processes,
                deadline: Deadline) -> None:
    """The sync beat schedules, then the sign-in that reads what the worker wrote."""
    run = wait_until(latest_run, deadline, "a SyncRun of the NAS that beat scheduled", processes)
    outcome, trigger, new = run
    assert (outcome, trigger) == ("ok", "schedule"), run
    assert new == 51  # alice and the 50 others
    assert not dsm.open_sessions  # the worker logged out of DSM
    claims = sign_in(port, upstream)
    assert claims["username"] == "alice"  # the DSM account the worker's sync found, read by the web
    assert upstream.token_requests, "the hub never exchanged a code at the upstream"


# --- 1. the full profile on PostgreSQL and Redis -------------------------------------------------------
def _require_services() -> bool:
    return os.environ.get("HUB_REQUIRE_SERVICES") == "1"


def _unavailable(message: str):
    if _require_services():
        pytest.fail(f"HUB_REQUIRE_SERVICES=1 but {message}")
    pytest.skip(message)


def _postgres_admin_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        url = "postgres://postgres@127.0.0.1:5432/postgres"
    return urlsplit(url)._replace(path="/postgres").geturl()


@pytest.fixture
def postgres_database():
    import psycopg

    admin = _postgres_admin_url()
    try:
        connection = psycopg.connect(admin, autocommit=True, connect_timeout=3)
    except psycopg.Error as error:
        _unavailable(f"PostgreSQL is not reachable at {urlsplit(admin).netloc}: {error}")
    name = f"hub_processes_{secrets.token_hex(4)}"
    with connection:
        connection.execute(f'CREATE DATABASE "{name}"')
        try:
            yield urlsplit(admin)._replace(path=f"/{name}").geturl()
        finally:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def redis_database():
    import redis

    base = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    try:
        redis.Redis.from_url(base, socket_timeout=3).ping()
    except redis.RedisError as error:
        _unavailable(f"Redis is not reachable at {urlsplit(base).netloc}: {error}")
    for number in range(11, 16):  # the suite's own REDIS_URL uses 0
        url = urlsplit(base)._replace(path=f"/{number}").geturl()
        client = redis.Redis.from_url(url)
        if client.dbsize() == 0:
            try:
                yield url
            finally:
                client.flushdb()
            return
    pytest.fail("no empty Redis database among 11-15")


@pytest.mark.services
def test_web_worker_and_beat_as_separate_processes(tmp_path, postgres_database, redis_database):
    import psycopg

    deadline = Deadline(PART_SECONDS)
    port = free_port()
    env = hub_env(tmp_path, port, DATABASE_URL=postgres_database, REDIS_URL=redis_database,
                  WEB_WORKERS="2", WEB_THREADS="2")
    upstream, dsm = start_fakes()
    processes = Processes(tmp_path, env)

    def latest_run():
        with psycopg.connect(postgres_database, connect_timeout=3) as db:
            return db.execute("SELECT outcome, trigger, new FROM synology_syncrun WHERE nas_id = %s AND outcome <> "
                              "'running' ORDER BY started DESC LIMIT 1", (NAS_ID,)).fetchone()

    try:
        web = processes.start("web", "web")  # migrates, then gunicorn (2 workers x 2 threads)
        wait_until(lambda: ready(port), deadline, "/readyz of gunicorn", processes)
        processes.run(sys.executable, "-c", setup_script(upstream, dsm), timeout=deadline.left())
        processes.start("worker", "worker", "--concurrency", "1")  # prefork: a pool child runs the tasks
        processes.start("beat", "beat")

        check_story(port, upstream, dsm, latest_run, processes, deadline)
        for role in ("worker", "beat"):  # the image's health check of the Celery roles: a ping over Redis
            processes.run(sys.executable, str(ROOT / "deploy" / "healthcheck.py"), role, timeout=max(deadline.left(), 1))
        assert web.poll() is None

        statuses = processes.stop_all(timeout=max(deadline.left(), 5))
        assert statuses == {"web": 0, "worker": 0, "beat": 0}, f"{statuses}\n{processes.logs()}"
    finally:
        processes.kill_all()
        upstream.stop()
        dsm.stop()
    assert deadline.elapsed() < PART_SECONDS


# --- 2. the NAS profile: entrypoint.sh all on SQLite ---------------------------------------------------
def test_the_nas_profile_in_one_process(tmp_path):
    deadline = Deadline(PART_SECONDS)
    port = free_port()
    env = hub_env(tmp_path, port)
    upstream, dsm = start_fakes()
    processes = Processes(tmp_path, env)
    database = tmp_path / "var" / "hub.sqlite3"

    def latest_run():
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as db:
            return db.execute("SELECT outcome, trigger, new FROM synology_syncrun WHERE nas_id = ? AND outcome != "
                              "'running' ORDER BY started DESC LIMIT 1", (NAS_ID,)).fetchone()

    try:
        hub = processes.start("all", "all")
        wait_until(lambda: ready(port), deadline, "/readyz of entrypoint.sh all", processes)
        processes.run(sys.executable, "-c", setup_script(upstream, dsm), timeout=deadline.left())

        check_story(port, upstream, dsm, latest_run, processes, deadline)

        statuses = processes.stop_all(timeout=max(deadline.left(), 5))
        assert statuses == {"all": 0}, f"{statuses}\n{processes.logs()}"
        assert "stopped (SIGTERM)" in (tmp_path / "all.log").read_text()
        assert hub.returncode == 0
    finally:
        processes.kill_all()
        upstream.stop()
        dsm.stop()
    assert deadline.elapsed() < PART_SECONDS
