"""The NAS profile's footprint: `deploy/entrypoint.sh all` started for real, measured from outside.

    .venv/bin/python bench/footprint.py [--users 10000] [--burst-seconds 20] [--connections 4]
    make bench-footprint

Starts `deploy/entrypoint.sh all` as the container would (SQLite and the filesystem broker in a
temporary var/ folder, HUB_DEBUG=0, a free port) and reports:

- ready: seconds from the start to the first `/readyz` 200 — a first start (empty var/: the
  migrations run) and a restart (SIGTERM, then start again);
- PSS at rest: the whole hub (every process of the tree under the entrypoint, bash included; PSS
  from /proc/<pid>/smaps_rollup, so pages shared between processes are counted once), a few seconds
  after the restart is ready;
- peak PSS during load: sampled every 0.1 s while a burst of sign-ins (a signed-in person's
  authorize → code → token cycles, client_secret_basic, over keep-alive connections) runs at the
  same time as a sync of a DSM fake with 10,000 users (tests/fakes/dsm.py, served from this process).
  The sync goes through the hub: a NAS is declared due and the embedded beat's `sync_due` tick
  (HUB_SYNC_TICK_SECONDS=2 here) queues it for the worker, as on the NAS;
- PSS at rest again after the load (what the allocator kept), and a clean SIGTERM stop (status 0).

Budget (issue 10): ≤ 150 MB at rest, ≤ 200 MB peak, ready ≤ 5 s. Exits 1 if one is missed
(`--no-budget` reports only). `--env NAME=VALUE` passes extra variables to the hub (to compare
variants, e.g. `--env MALLOC_ARENA_MAX=8`).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
ENTRYPOINT = ROOT / "deploy" / "entrypoint.sh"
BUDGET = {"rest_mb": 150, "peak_mb": 200, "ready_s": 5.0}

CLIENT_ID = "footprint-app"
SECRET = "footprint-secret-" + "Zq8mW2xK5vN9pR3tY7bL1cF4hJ6gD0s"
REDIRECT = "http://127.0.0.1:9/cb"
NAS_ID = "footprint-nas"
SYNC_PASSWORD = "footprint-Pa55word-not-secret"


# --- measuring ----------------------------------------------------------------------------------
def tree(pid: int) -> list[int]:
    """pid and all its descendants (threads' children included)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            with contextlib.suppress(OSError):
                todo += [int(c) for c in (task / "children").read_text().split()]
    return found


def pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def describe(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_text().split("\0")
    except OSError:
        return "?"
    argv = [Path(a).name if a.startswith("/") else a for a in argv if a]
    return " ".join(argv[:3])


def snapshot(pid: int) -> dict:
    parts = {p: pss_kib(p) for p in tree(pid)}
    return {"total_kib": sum(parts.values()), "processes": {f"{p} {describe(p)}": k for p, k in parts.items()}}


def mb(kib: int) -> float:
    return round(kib / 1024, 1)


class Sampler(threading.Thread):
    def __init__(self, pid: int, every: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.peak: dict = {"total_kib": 0, "processes": {}}
        self.samples = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            current = snapshot(self.pid)
            self.samples += 1
            if current["total_kib"] > self.peak["total_kib"]:
                self.peak = current
            self._halt.wait(self.every)

    def stop(self) -> dict:
        self._halt.set()
        self.join()
        return self.peak


# --- the hub ------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status_of(port: int, path: str) -> int | None:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", path)
        status = conn.getresponse().status
        conn.close()
        return status
    except (OSError, http.client.HTTPException):
        return None


class Hub:
    def __init__(self, workdir: Path, port: int, extra_env: dict[str, str]) -> None:
        self.port = port
        self.var = workdir / "var"
        self.log_path = workdir / "hub.log"
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("HUB_", "CELERY_", "WEB_", "FAKE_")) and k not in {"DATABASE_URL", "REDIS_URL"}}
        env.update(
            PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}", HUB_DEBUG="0",
            HUB_ISSUER=f"http://127.0.0.1:{port}", HUB_SECRET_KEY="footprint-secret-key-0123456789abcdefghijklmn",
            HUB_ENCRYPTION_KEY="8mB2kTq3Zy0VQqTeXMyv2H8sCeAJjH0EnQkCLvXb0n0=", HUB_VAR_DIR=str(self.var),
            WEB_PORT=str(port), HUB_LOG_LEVEL="WARNING", HUB_SYNC_TICK_SECONDS="2", STOP_TIMEOUT="30",
        )
        env.update(extra_env)
        self.env = env
        self.process: subprocess.Popen | None = None

    def start(self) -> float:
        """Start `entrypoint.sh all`; seconds until /readyz answers 200."""
        log = self.log_path.open("a")
        started = time.monotonic()
        self.process = subprocess.Popen(["bash", str(ENTRYPOINT), "all"], cwd=ROOT, env=self.env, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        while status_of(self.port, "/readyz") != 200:
            if self.process.poll() is not None or time.monotonic() - started > 120:
                self.kill()
                raise SystemExit(f"the hub did not get ready:\n{self.log_tail()}")
            time.sleep(0.05)
        return time.monotonic() - started

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=60)
        finally:
            self.kill()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def django(self, code: str) -> str:
        """Run Django code against the hub's database (another process: the hub's memory is not touched)."""
        script = "import django, json; django.setup()\n" + code
        done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env={**self.env, "PYTHONPATH": str(ROOT),
                              "DJANGO_SETTINGS_MODULE": "identityhub.settings"}, capture_output=True, text=True,
                              timeout=120)
        if done.returncode != 0:
            raise SystemExit(f"setup failed:\n{done.stderr[-3000:]}")
        return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


SETUP = f"""
import time
from django.conf import settings
from django.utils import timezone
from django.utils.module_loading import import_string
from accounts.models import User
from accounts.services import MemberSpec, declare_household, set_members
from identityhub.oidc.services import register_client
from synology.models import DSMAccount
from synology.services import declare_nas

household = declare_household("footprint", "Footprint family")
set_members(household, [MemberSpec("alice@example.com", "Alice", "admin")])
user = User.objects.get(email="alice@example.com")
app_nas = declare_nas("footprint-app-nas", household=household, base_url="https://192.0.2.1:5001", enabled=False)
now = timezone.now()
DSMAccount.objects.update_or_create(nas=app_nas, name="alice", defaults={{
    "email": user.email, "user": user, "linked_by": "email", "present": True, "first_seen": now, "last_seen": now}})
register_client({CLIENT_ID!r}, name="Footprint app", redirect_uris=[{REDIRECT!r}], client_secret={SECRET!r},
                nas=app_nas, skip_consent=True)
session = import_string(settings.SESSION_ENGINE + ".SessionStore")()
session["_auth_user_id"] = str(user.pk)
session["_auth_user_backend"] = "accounts.auth_backends.UpstreamSessionBackend"
session["_auth_user_hash"] = user.get_session_auth_hash()
session["hub_auth_time"] = int(time.time())
session["hub_sid"] = "footprint-sid-0123456789abcdef"
session.create()
print(json.dumps({{"cookie": settings.SESSION_COOKIE_NAME, "session_key": session.session_key}}))
"""

DECLARE_DUE_NAS = """
from accounts.models import Household
from synology.services import declare_nas
declare_nas({nas_id!r}, household=Household.objects.get(pk="footprint"), base_url={url!r},
            service_username="hub-sync", service_password={password!r})  # enabled, never synced: due now
"""


# --- the load -----------------------------------------------------------------------------------
class Burst:
    """Sign-in cycles on `connections` keep-alive connections until stopped."""

    def __init__(self, port: int, session: dict, connections: int) -> None:
        self.port, self.session = port, session
        self.cycles = self.errors = 0
        self.lock = threading.Lock()
        self._halt = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True) for i in range(connections)]

    def start(self) -> None:
        self.started = time.monotonic()
        for thread in self.threads:
            thread.start()

    def stop(self) -> dict:
        self._halt.set()
        for thread in self.threads:
            thread.join()
        seconds = time.monotonic() - self.started
        return {"cycles": self.cycles, "errors": self.errors, "seconds": round(seconds, 1),
                "cycles_per_s": round(self.cycles / seconds, 1)}

    def run(self, index: int) -> None:
        cookie = f"{self.session['cookie']}={self.session['session_key']}"
        basic = "Basic " + base64.b64encode(f"{CLIENT_ID}:{SECRET}".encode()).decode()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        n = 0
        while not self._halt.is_set():
            n += 1
            nonce = f"{index}-{n}"
            query = urlencode({"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT,
                               "scope": "openid profile email", "state": "st" + nonce, "nonce": nonce})
            ok = False
            try:
                conn.request("GET", f"/authorize/?{query}", headers={"Cookie": cookie})
                response = conn.getresponse()
                response.read()
                code = parse_qs(urlsplit(response.getheader("Location", "")).query).get("code", [None])[0]
                if response.status == 302 and code:
                    form = urlencode({"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT})
                    conn.request("POST", "/token/", body=form, headers={
                        "Authorization": basic, "Content-Type": "application/x-www-form-urlencoded"})
                    response = conn.getresponse()
                    ok = response.status == 200 and b"id_token" in response.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            with self.lock:
                if ok:
                    self.cycles += 1
                else:
                    self.errors += 1


def sync_run(database: Path) -> tuple | None:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10) as db:
        return db.execute("SELECT outcome, new, duration_ms FROM synology_syncrun WHERE nas_id = ? AND outcome != "
                          "'running' ORDER BY started DESC LIMIT 1", (NAS_ID,)).fetchone()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000, help="DSM users of the fake NAS")
    parser.add_argument("--burst-seconds", type=float, default=20, help="sign-ins at least this long")
    parser.add_argument("--connections", type=int, default=4, help="concurrent sign-in connections")
    parser.add_argument("--settle", type=float, default=5, help="seconds of rest before the rest figures")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="extra hub environment")
    parser.add_argument("--no-budget", action="store_true", help="report only: never exit 1 for a missed budget")
    parser.add_argument("--json", action="store_true", help="print the result as JSON too")
    args = parser.parse_args()

    from tests.fakes.dsm import FakeDSM

    extra = dict(item.split("=", 1) for item in args.env)
    result: dict = {"env": extra}
    with tempfile.TemporaryDirectory(prefix="hub-footprint-") as workdir:
        hub = Hub(Path(workdir), free_port(), extra)
        try:
            result["ready_first_s"] = round(hub.start(), 2)  # empty var/: the migrations run
            assert hub.stop() == 0, hub.log_tail()
            session = json.loads(hub.django(SETUP))
            result["ready_restart_s"] = round(hub.start(), 2)
            time.sleep(args.settle)
            if hub.process.poll() is not None:
                raise SystemExit(f"the hub stopped (status {hub.process.returncode}):\n{hub.log_tail()}")
            rest = snapshot(hub.process.pid)
            result["rest"] = rest

            fake = FakeDSM("dsm7", csrf=True)
            fake.accounts = {"hub-sync": fake.accounts["hub-sync"]}
            fake.accounts["hub-sync"].password = SYNC_PASSWORD
            for i in range(args.users):
                fake.add_user(f"User.{i:05d}", email=f"user{i}@example.org" if i % 4 else "", description=f"user {i}")
            with fake:
                sampler = Sampler(hub.process.pid)
                burst = Burst(hub.port, session, args.connections)
                sampler.start()
                burst.start()
                started = time.monotonic()
                hub.django(DECLARE_DUE_NAS.format(nas_id=NAS_ID, url=fake.url, password=SYNC_PASSWORD))
                run = None
                while run is None and time.monotonic() - started < 300:
                    if hub.process.poll() is not None:
                        raise SystemExit(f"the hub stopped (status {hub.process.returncode}):\n{hub.log_tail()}")
                    time.sleep(0.2)
                    run = sync_run(hub.var / "hub.sqlite3")
                result["sync"] = {"outcome": run and run[0], "new": run and run[1], "duration_ms": run and run[2],
                                  "declared_to_done_s": round(time.monotonic() - started, 1)}
                while time.monotonic() - started < args.burst_seconds:
                    time.sleep(0.1)
                result["burst"] = burst.stop()
                result["peak"] = sampler.stop()
                result["samples"] = sampler.samples
            time.sleep(args.settle)
            result["rest_after"] = snapshot(hub.process.pid)
            result["stop_status"] = hub.stop()
        finally:
            hub.kill()

    print(f"ready: first start {result['ready_first_s']} s (with migrations), restart {result['ready_restart_s']} s")
    for label in ("rest", "peak", "rest_after"):
        snap = result[label]
        parts = ", ".join(f"{name} {mb(kib)}" for name, kib in snap["processes"].items())
        print(f"PSS {label:<10} {mb(snap['total_kib']):6.1f} MB  ({parts})")
    print(f"burst: {result['burst']}; sync: {result['sync']}; samples: {result['samples']}; "
          f"stop status: {result['stop_status']}")
    if args.json:
        print(json.dumps(result))

    missed = []
    if mb(result["rest"]["total_kib"]) > BUDGET["rest_mb"]:
        missed.append(f"at rest {mb(result['rest']['total_kib'])} MB > {BUDGET['rest_mb']} MB")
    if mb(result["peak"]["total_kib"]) > BUDGET["peak_mb"]:
        missed.append(f"peak {mb(result['peak']['total_kib'])} MB > {BUDGET['peak_mb']} MB")
    for key in ("ready_first_s", "ready_restart_s"):
        if result[key] > BUDGET["ready_s"]:
            missed.append(f"{key} {result[key]} s > {BUDGET['ready_s']} s")
    if result["sync"]["outcome"] != "ok" or result["sync"]["new"] != args.users:
        missed.append(f"the sync did not complete: {result['sync']}")
    if result["burst"]["errors"] or not result["burst"]["cycles"]:
        missed.append(f"sign-in errors: {result['burst']}")
    if result["stop_status"] != 0:
        missed.append(f"SIGTERM stop exited {result['stop_status']}")
    for line in missed:
        print(f"MISSED: {line}")
    hard = [m for m in missed if m.startswith(("the sync", "sign-in", "SIGTERM"))]
    return 1 if hard or (missed and not args.no_budget) else 0


if __name__ == "__main__":
    sys.exit(main())
