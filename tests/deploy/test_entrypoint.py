"""deploy/entrypoint.sh, every role, with fake `python`, `gunicorn` and `celery` first on PATH.
(`python deploy/hub_all.py ARGS`, the NAS profile's one process, is recorded as the program `hub_all`.)

The fakes record their argv and environment and then behave as told (FAKE_<NAME>): exit at once with
a status, run until SIGTERM, run a while then exit, or ignore SIGTERM. Docker is not needed: this is
the script the image runs, run by bash as the image would run it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = ROOT / "deploy" / "entrypoint.sh"
OVERRIDE = "HUB_DEBUG_ALLOW_REMOTE_I_UNDERSTAND_ANYONE_CAN_SIGN_IN"

FAKE = r"""#!/usr/bin/env bash
# A fake program: records argv and environment, then does what FAKE_<NAME> says.
name="$(basename "$0")"
# `python deploy/hub_all.py ARGS` is the NAS profile's one process (web + worker + beat): record it as hub_all.
if [[ "$name" == python && "${1:-}" == */hub_all.py ]]; then name=hub_all; fi
id="$name.$(date +%s%N).$$"
printf '%s\0' "$@" > "$FAKE_DIR/$id.argv"
env -0 > "$FAKE_DIR/$id.env"
echo "$name start $*" >> "$FAKE_DIR/events"
var="FAKE_${name^^}"
how="${!var:-exit:0}"
case "$how" in
  exit:*) exit "${how#exit:}" ;;
  run) trap 'echo "$name TERM" >> "$FAKE_DIR/events"; exit 0' TERM
       trap 'echo "$name INT" >> "$FAKE_DIR/events"; exit 0' INT
       while :; do sleep 0.05; done ;;
  run-then-exit:*) trap 'echo "$name TERM" >> "$FAKE_DIR/events"; exit 0' TERM
       sleep 0.5; echo "$name exits ${how#run-then-exit:}" >> "$FAKE_DIR/events"; exit "${how#run-then-exit:}" ;;
  ignore-term) trap 'echo "$name TERM ignored" >> "$FAKE_DIR/events"' TERM
       while :; do sleep 0.05; done ;;
esac
"""


class Fakes:
    def __init__(self, tmp_path: Path):
        self.dir = tmp_path / "fake"
        self.bin = tmp_path / "bin"
        self.var = tmp_path / "var"
        self.dir.mkdir()
        self.bin.mkdir()
        for name in ("python", "gunicorn", "celery"):
            path = self.bin / name
            path.write_text(FAKE)
            path.chmod(0o755)

    def env(self, **extra: str) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(("HUB_", "FAKE_", "WEB_", "CELERY_", "STOP_"))
                and k not in {"DATABASE_URL", "REDIS_URL", "GOOGLE_CLIENT_SECRET", "DSM_CLIENT_SECRET",
                              "SYNO_PASSWORD", OVERRIDE}}
        return {**base, "PATH": f"{self.bin}:{os.environ['PATH']}", "FAKE_DIR": str(self.dir),
                "HUB_VAR_DIR": str(self.var), **extra}

    def run(self, *args: str, timeout: float = 30, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", str(ENTRYPOINT), *args], env=self.env(**env), capture_output=True,
                              text=True, timeout=timeout)

    def start(self, *args: str, **env: str) -> subprocess.Popen:
        return subprocess.Popen(["bash", str(ENTRYPOINT), *args], env=self.env(**env), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def calls(self, name: str) -> list[list[str]]:
        files = sorted(self.dir.glob(f"{name}.*.argv"), key=lambda p: int(p.name.split(".")[1]))
        return [p.read_text().split("\0")[:-1] for p in files]

    def environ(self, name: str, index: int = -1) -> dict[str, str]:
        files = sorted(self.dir.glob(f"{name}.*.env"), key=lambda p: int(p.name.split(".")[1]))
        pairs = [item.split("=", 1) for item in files[index].read_text().split("\0") if "=" in item]
        return dict(pairs)

    def events(self) -> list[str]:
        path = self.dir / "events"
        return path.read_text().splitlines() if path.exists() else []

    def wait_for_event(self, predicate, timeout: float = 10) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            events = self.events()
            if predicate(events):
                return events
            time.sleep(0.05)
        raise AssertionError(f"timed out; events: {self.events()}")


@pytest.fixture
def fakes(tmp_path) -> Fakes:
    return Fakes(tmp_path)


MIGRATE = ["manage.py", "migrate", "--noinput"]


# --- the one-process roles ------------------------------------------------------------------------
def test_web_migrates_then_execs_gunicorn(fakes):
    done = fakes.run("web", "--timeout", "60")
    assert done.returncode == 0, done.stderr
    assert fakes.calls("python") == [MIGRATE]
    assert fakes.calls("gunicorn") == [["identityhub.wsgi", "-k", "gthread", "--workers", "2", "--threads", "2",
                                        "--bind", "0.0.0.0:8000", "--keep-alive", "5", "--timeout", "60"]]
    assert [e.split()[0] for e in fakes.events()] == ["python", "gunicorn"]
    assert fakes.calls("celery") == []


def test_web_is_the_default_and_takes_its_sizes_from_the_environment(fakes):
    done = fakes.run(WEB_WORKERS="3", WEB_THREADS="8", WEB_PORT="8123")
    assert done.returncode == 0, done.stderr
    argv = fakes.calls("gunicorn")[0]
    assert argv[argv.index("--workers") + 1] == "3" and argv[argv.index("--threads") + 1] == "8"
    assert argv[argv.index("--bind") + 1] == "0.0.0.0:8123"


def test_web_can_leave_the_migrations_to_someone_else(fakes):
    assert fakes.run("web", WEB_MIGRATE="0").returncode == 0
    assert fakes.calls("python") == [] and len(fakes.calls("gunicorn")) == 1
    assert fakes.run("web", WEB_MIGRATE="1").returncode == 0
    assert fakes.calls("python") == [MIGRATE]


def test_the_exit_status_of_the_execd_program_is_the_containers(fakes):
    assert fakes.run("web", FAKE_GUNICORN="exit:3").returncode == 3
    assert fakes.run("web", FAKE_PYTHON="exit:2").returncode == 2  # a failed migrate: no gunicorn
    assert len(fakes.calls("gunicorn")) == 1


def test_worker(fakes):
    done = fakes.run("worker", "--concurrency", "2")
    assert done.returncode == 0, done.stderr
    assert fakes.calls("celery") == [["-A", "identityhub", "worker", "--loglevel=INFO", "--hostname", "worker@%h",
                                      "--concurrency", "2"]]
    assert fakes.calls("python") == []  # web migrates; the worker does not


def test_beat_keeps_its_schedule_in_the_var_dir(fakes):
    done = fakes.run("beat", HUB_LOG_LEVEL="WARNING")
    assert done.returncode == 0, done.stderr
    assert fakes.calls("celery") == [["-A", "identityhub", "beat", "--loglevel=WARNING", "--schedule",
                                      f"{fakes.var}/celerybeat-schedule", "--enable-remote-control",
                                      "--hostname", "beat@%h"]]
    assert fakes.var.is_dir()


def test_hub_and_manage_run_manage_py(fakes):
    assert fakes.run("hub", "check", "/etc/identityhub/hub.yaml").returncode == 0
    assert fakes.run("manage", "showmigrations", "oidc").returncode == 0
    assert fakes.calls("python") == [["manage.py", "hub", "check", "/etc/identityhub/hub.yaml"],
                                     ["manage.py", "showmigrations", "oidc"]]
    assert fakes.run("hub", "plan", FAKE_PYTHON="exit:2").returncode == 2


@pytest.mark.parametrize("args", [("hub",), ("manage",), ("nonsense",), ("help",), ("all", "--preload")])
def test_usage_errors(fakes, args):
    done = fakes.run(*args)
    assert done.returncode == 64
    assert "usage: entrypoint.sh web | worker [ARGS] | beat [ARGS] | all | hub ARGS | manage ARGS" in done.stderr
    assert fakes.calls("python") == [] and fakes.calls("gunicorn") == []


# --- secrets from files -----------------------------------------------------------------------------
def _file_vars(script: str) -> list[str]:
    match = re.search(r"^FILE_VARS=\(([^)]*)\)", script, re.MULTILINE)
    return match.group(1).split()


def test_every_file_var_is_read_from_its_file(fakes, tmp_path):
    names = _file_vars(ENTRYPOINT.read_text())
    assert {"HUB_SECRET_KEY", "HUB_ENCRYPTION_KEY", "DATABASE_URL", "GOOGLE_CLIENT_SECRET", "DSM_CLIENT_SECRET",
            "SYNO_PASSWORD"} <= set(names)
    env = {}
    for name in names:
        path = tmp_path / name.lower()
        path.write_text(f"  value of {name} with $dollar and 'quotes' \n\n")
        env[f"{name}_FILE"] = str(path)
    for role in ("web", "worker", "beat", "hub"):
        args = (role, "check") if role == "hub" else (role,)
        assert fakes.run(*args, **env).returncode == 0
        program = {"web": "gunicorn", "worker": "celery", "beat": "celery", "hub": "python"}[role]
        seen = fakes.environ(program)
        for name in names:
            assert seen[name] == f"value of {name} with $dollar and 'quotes'", (role, name)
            assert f"{name}_FILE" not in seen, (role, name)


def test_the_healthcheck_reads_the_same_file_vars():
    healthcheck = (ROOT / "deploy" / "healthcheck.py").read_text()
    match = re.search(r"^FILE_VARS = \(([^)]*)\)", healthcheck, re.MULTILINE | re.DOTALL)
    assert re.findall(r'"([A-Z_]+)"', match.group(1)) == _file_vars(ENTRYPOINT.read_text())


def test_a_secret_set_twice_is_refused(fakes, tmp_path):
    (tmp_path / "key").write_text("from-file\n")
    done = fakes.run("web", HUB_SECRET_KEY="inline", HUB_SECRET_KEY_FILE=str(tmp_path / "key"))
    assert done.returncode == 1
    assert "both HUB_SECRET_KEY and HUB_SECRET_KEY_FILE are set; set only one" in done.stderr
    assert fakes.calls("python") == []


def test_a_missing_or_empty_secret_file_is_refused(fakes, tmp_path):
    done = fakes.run("all", SYNO_PASSWORD_FILE=str(tmp_path / "missing"))
    assert done.returncode == 1 and f"SYNO_PASSWORD_FILE={tmp_path / 'missing'} is not a readable file" in done.stderr
    (tmp_path / "empty").write_text(" \n")
    done = fakes.run("worker", GOOGLE_CLIENT_SECRET_FILE=str(tmp_path / "empty"))
    assert done.returncode == 1 and "is empty" in done.stderr
    assert fakes.calls("python") == [] and fakes.calls("celery") == []


# --- HUB_DEBUG=1 on 0.0.0.0 ---------------------------------------------------------------------------
@pytest.mark.parametrize("role", ["web", "all"])
def test_debug_mode_is_refused_where_gunicorn_listens_on_every_interface(fakes, role):
    done = fakes.run(role, HUB_DEBUG="1")
    assert done.returncode == 1
    assert "HUB_DEBUG=1" in done.stderr and OVERRIDE in done.stderr
    assert fakes.calls("python") == [] and fakes.calls("gunicorn") == [] and fakes.calls("celery") == []


def test_debug_mode_with_the_override_is_served_loudly(fakes):
    done = fakes.run("all", HUB_DEBUG="yes", FAKE_HUB_ALL="exit:0", **{OVERRIDE: "1"})
    assert "ANYONE WHO CAN REACH THIS HUB CAN SIGN IN AS ANY PERSON" in done.stderr
    assert fakes.calls("hub_all")


# --- all: the NAS profile -------------------------------------------------------------------------------
HUB_ALL = "hub (web + celery worker --beat)"


def _start_all(fakes: Fakes, **env: str) -> subprocess.Popen:
    process = fakes.start("all", **{"FAKE_HUB_ALL": "run", **env})
    fakes.wait_for_event(lambda events: "hub_all" in {e.split()[0] for e in events})
    return process


def test_all_migrates_then_runs_one_process_with_web_worker_and_beat(fakes, tmp_path):
    (tmp_path / "key").write_text("secret-from-file\n")
    process = _start_all(fakes, HUB_SECRET_KEY_FILE=str(tmp_path / "key"))
    try:
        assert fakes.calls("python") == []  # hub_all.py --migrate runs the migrations itself (tested for real)
        assert fakes.calls("gunicorn") == [] and fakes.calls("celery") == []
        [argv] = fakes.calls("hub_all")
        assert argv[0] == str(ROOT / "deploy" / "hub_all.py")
        split = argv.index("--")
        assert argv[1:split] == ["--migrate", "--bind", "0.0.0.0:8000", "--threads", "4"]  # the web, in threads
        worker = argv[split + 1:]  # celery's own command line
        assert worker[:3] == ["-A", "identityhub", "worker"]
        assert "--beat" in worker
        assert worker[worker.index("--schedule") + 1] == f"{fakes.var}/celerybeat-schedule"
        assert worker[worker.index("--pool") + 1] == "solo" and worker[worker.index("--concurrency") + 1] == "1"
        assert worker[worker.index("--hostname") + 1] == "worker@%h"
        seen = fakes.environ("hub_all")
        assert seen["HUB_SECRET_KEY"] == "secret-from-file" and "HUB_SECRET_KEY_FILE" not in seen
        assert "DATABASE_URL" not in seen and "REDIS_URL" not in seen  # SQLite + filesystem broker
        assert seen["MALLOC_ARENA_MAX"] == "2"
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=15)


def test_all_takes_the_web_port_and_threads_from_the_environment(fakes):
    process = _start_all(fakes, WEB_THREADS="2", WEB_PORT="8123", MALLOC_ARENA_MAX="4")
    try:
        [argv] = fakes.calls("hub_all")
        assert argv[1:argv.index("--")] == ["--migrate", "--bind", "0.0.0.0:8123", "--threads", "2"]
        assert fakes.environ("hub_all")["MALLOC_ARENA_MAX"] == "4"  # a value set is kept
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=15)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_stops_it_cleanly(fakes, sig):
    process = _start_all(fakes)
    process.send_signal(sig)
    _out, err = process.communicate(timeout=15)
    assert process.returncode == 0, err
    assert "hub_all TERM" in fakes.events()  # SIGINT is passed on as SIGTERM
    assert f"SIG{sig.name[3:]} received" in err and "stopped" in err


def test_a_failure_takes_the_container_down_with_its_status(fakes):
    process = fakes.start("all", FAKE_HUB_ALL="run-then-exit:3")
    _out, err = process.communicate(timeout=15)
    assert process.returncode == 3
    assert HUB_ALL in err and "exited with status 3" in err


def test_an_exit_without_being_asked_still_takes_the_container_down_non_zero(fakes):
    process = fakes.start("all", FAKE_HUB_ALL="run-then-exit:0")
    _out, err = process.communicate(timeout=15)
    assert process.returncode == 1
    assert HUB_ALL in err and "exited with status 0" in err


def _copied(dockerfile: str) -> list[str]:
    """Every source path of the Dockerfile's COPY lines after the requirements (the project itself)."""
    paths = []
    for line in dockerfile.splitlines():
        if line.startswith("COPY ") and "requirements" not in line:
            paths += line.split()[1:-1]
    return paths


def test_the_image_ships_every_app_the_settings_install(tmp_path):
    """The Dockerfile's COPY list, replayed into a folder: the build's collectstatic step and a
    production `check` pass there (Docker itself does not run here)."""
    import shutil
    import sys

    copied = _copied((ROOT / "deploy" / "Dockerfile").read_text())
    assert {"deploy/entrypoint.sh", "deploy/healthcheck.py", "deploy/hub_all.py",
            "locale"} <= set(copied)
    image = tmp_path / "app"
    for path in copied:
        source, target = ROOT / path, image / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUB_", "CELERY_"))
           and k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(HUB_DEBUG="0", HUB_SECRET_KEY="collectstatic-build-only-not-a-secret",
               HUB_ENCRYPTION_KEY="AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", HUB_ISSUER="https://build.invalid",
               HUB_VAR_DIR=str(tmp_path / "var"))
    for args in (["collectstatic", "--noinput", "--verbosity", "0"], ["check"]):
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=image, env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, (args, done.stderr[-2000:])
    assert (tmp_path / "var" / "static" / "hub").is_dir()
    assert list((image / "locale").glob("*/LC_MESSAGES/django.mo"))


# --- all, for real: gunicorn and Celery on SQLite and the filesystem broker ------------------------------
def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")


def _get(url: str):
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback test URL
            return response.status, response.read().decode()
    except OSError as error:
        return None, str(error)


def _real_env(tmp_path: Path, port: int) -> dict[str, str]:
    import sys

    (tmp_path / "secret_key").write_text("real-all-test-secret-key-0123456789abcdefghij\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUB_", "CELERY_", "WEB_", "FAKE_"))
           and k not in {"DATABASE_URL", "REDIS_URL", OVERRIDE}}
    env.update(PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}", HUB_DEBUG="0",
               HUB_ISSUER=f"http://127.0.0.1:{port}", HUB_SECRET_KEY_FILE=str(tmp_path / "secret_key"),
               HUB_ENCRYPTION_KEY="8mB2kTq3Zy0VQqTeXMyv2H8sCeAJjH0EnQkCLvXb0n0=", HUB_VAR_DIR=str(tmp_path / "var"),
               WEB_PORT=str(port), HUB_LOG_LEVEL="WARNING", STOP_TIMEOUT="20")
    return env


def test_all_for_real_a_stop_signal_during_the_migrations_stops_after_them(tmp_path):
    import sys
    import threading

    port = _free_port()
    env = _real_env(tmp_path, port)
    process = subprocess.Popen(["bash", str(ENTRYPOINT), "all"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while not any("Applying" in line for line in lines) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert any("Applying" in line for line in lines), "".join(lines)[-3000:]
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        reader.join(timeout=10)
        assert process.returncode == 143, "".join(lines)[-3000:]
        assert _get(f"http://127.0.0.1:{port}/healthz")[0] is None  # it never served
        check_env = {**env, "HUB_SECRET_KEY": (tmp_path / "secret_key").read_text().strip()}
        check = subprocess.run([sys.executable, "manage.py", "migrate", "--check"], cwd=ROOT, env=check_env,
                               capture_output=True, text=True, timeout=60)
        assert check.returncode == 0, check.stdout + check.stderr  # the migrations were not cut short
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_all_for_real_a_failed_migration_serves_nothing(tmp_path):
    port = _free_port()
    env = {**_real_env(tmp_path, port), "DATABASE_URL": "postgres://postgres@127.0.0.1:1/nothing"}
    done = subprocess.run(["bash", str(ENTRYPOINT), "all"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "migrate failed" in done.stderr and "not serving" in done.stderr
    assert "exited with status 1" in done.stderr


def test_all_for_real(tmp_path):
    """The NAS profile with the real programs: one process serves the web and runs the Celery worker
    and beat (nothing forked), the health check passes; that process killed takes the container
    down non-zero; SIGTERM stops it with status 0."""
    import sys

    port = _free_port()
    env = _real_env(tmp_path, port)

    def start() -> subprocess.Popen:
        process = subprocess.Popen(["bash", str(ENTRYPOINT), "all"], env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, start_new_session=True)
        deadline = time.monotonic() + 90
        while _get(f"http://127.0.0.1:{port}/healthz")[0] != 200:
            if process.poll() is not None or time.monotonic() > deadline:
                os.killpg(process.pid, signal.SIGKILL)
                raise AssertionError(process.communicate()[0][-3000:])
            time.sleep(0.25)
        return process

    process = start()
    try:
        status, body = _get(f"http://127.0.0.1:{port}/readyz")
        assert status == 200 and '"database": "ok"' in body, body
        [hub] = _children(process.pid)
        assert "hub_all.py" in _cmdline(hub)
        deadline = time.monotonic() + 30
        while not list((tmp_path / "var").glob("celerybeat-schedule*")) and time.monotonic() < deadline:
            time.sleep(0.25)
        assert list((tmp_path / "var").glob("celerybeat-schedule*")), "beat never wrote its schedule"
        assert _children(hub) == []  # web threads, the worker, beat in a thread: no other process
        check = subprocess.run([sys.executable, str(ROOT / "deploy" / "healthcheck.py"), "all"], env=env,
                               capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, check.stderr

        os.kill(hub, signal.SIGKILL)  # the hub dies: the container goes down, non-zero
        output = process.communicate(timeout=60)[0]
        assert process.returncode != 0
        assert HUB_ALL in output and "exited with status 137" in output
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()

    process = start()  # migrations already applied: a restart serves again
    try:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=60)[0]
        assert process.returncode == 0, output[-3000:]
        assert "stopped (SIGTERM)" in output
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
