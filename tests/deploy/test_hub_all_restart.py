"""deploy/hub_all.py (the NAS profile's one process) does not end by itself on a broker file, and
its last log line says why it ended.

kombu's filesystem transport creates a message file, then writes it, and its reader takes any message
file it lists: in the one process, beat's thread sends its due tasks on the very instants the worker
polls (at a restart, at once), so the worker read a message still empty now and then, and its
JSONDecodeError ("Unrecoverable error") ended the hub a few seconds after it started. A writer
killed half-way (SIGKILL after `docker stop`'s timeout) leaves such an empty file for the next start,
and an exchange file (kombu's queue bindings) left empty ended every start the same way.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from kombu import Connection
from kombu.transport import filesystem

from identityhub import broker
from tests.deploy.test_entrypoint import ENTRYPOINT, ROOT, _free_port, _get, _real_env

EMPTY_MESSAGE = "1_00000000-0000-0000-0000-000000000000.celery.msg"  # sorts first: read at the first poll


@pytest.fixture
def hub_all(monkeypatch):
    """deploy/hub_all.py as a module; kombu's own filesystem channel methods during the test (the
    hub's Celery app hardened them when the suite imported it), the hub's again after it."""
    spec = importlib.util.spec_from_file_location("hub_all_under_test", ROOT / "deploy" / "hub_all.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    kombu_put, kombu_get = filesystem.Channel.hub_kombu_methods
    monkeypatch.setattr(filesystem.Channel, "_put", kombu_put)
    monkeypatch.setattr(filesystem.Channel, "_get", kombu_get)
    monkeypatch.setattr(filesystem.Channel, "hub_hardened", False)
    return module


def test_every_process_of_the_hub_gets_the_hardened_broker():
    import identityhub  # noqa: F401  (its Celery app, as web, worker and beat import it)

    assert filesystem.Channel.hub_hardened


def _connection(folder: Path) -> Connection:
    for sub in ("queue", "control"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    return Connection("filesystem://", transport_options={
        "data_folder_in": str(folder / "queue"), "data_folder_out": str(folder / "queue"),
        "control_folder": str(folder / "control"), "store_processed": False})


def test_a_message_is_listed_only_once_it_is_complete(hub_all, tmp_path, monkeypatch):
    broker.harden_filesystem_broker()
    queue_dir = tmp_path / "queue"
    real_replace, seen = os.replace, []

    def replace(source, target):  # the moment before the message appears
        listed = [name for name in os.listdir(queue_dir) if name.endswith(".complete.msg")]
        seen.append((listed, Path(source).read_bytes()))
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace)
    with _connection(tmp_path) as connection:
        queue = connection.SimpleQueue("complete")  # one name a test: kombu keeps bindings per process
        queue.put({"n": 1})
        [(listed, written)] = seen
        assert listed == []  # written in full under a name the reader skips, then renamed
        assert json.loads(written)["properties"]["delivery_tag"]
        message = queue.get(timeout=5)
        assert message.payload == {"n": 1}
        message.ack()
        queue.close()
    assert not any(name.endswith(".part") for name in os.listdir(queue_dir))


def test_an_unreadable_message_file_is_dropped_not_fatal(hub_all, tmp_path, caplog):
    broker.harden_filesystem_broker()
    with _connection(tmp_path) as connection:
        queue = connection.SimpleQueue("unreadable")
        (tmp_path / "queue" / "1_a.unreadable.msg").write_bytes(b"")  # a writer killed after creating it
        (tmp_path / "queue" / "2_b.unreadable.msg").write_bytes(b'{"body": ')  # cut short
        queue.put({"n": 2})
        with caplog.at_level(logging.ERROR, logger="identityhub.broker"):
            message = queue.get(timeout=5)
        assert message.payload == {"n": 2}
        message.ack()
        queue.close()
    dropped = [r.getMessage() for r in caplog.records if "dropped an unreadable message file of queue unreadable" in r.message]
    assert len(dropped) == 2
    assert os.listdir(tmp_path / "queue") == []


class FakeServer:
    """waitress's server as main() uses it: run() serves until the process ends (its thread is a daemon)."""

    def __init__(self, fail: bool = False) -> None:
        self.fail, self.drained = fail, False
        self.task_dispatcher = self

    def run(self) -> None:
        if self.fail:
            raise OSError("the listening socket went away")
        threading.Event().wait()  # a return would be the web failing: serve() would SIGTERM this process

    def shutdown(self, cancel_pending: bool, timeout: float) -> None:
        self.drained = True


def _main(hub_all, monkeypatch, caplog, celery, server=None) -> int:
    monkeypatch.setattr(hub_all, "hand_stop_signals_to_celery", lambda: None)  # pytest keeps its handlers
    monkeypatch.setattr(hub_all, "make_server", lambda bind, threads: server or FakeServer())
    monkeypatch.setattr(hub_all, "run_celery", celery)
    monkeypatch.setenv("WEB_DRAIN_SECONDS", "1")
    with caplog.at_level(logging.INFO, logger="identityhub.all"):
        return hub_all.main(["--bind", "127.0.0.1:1", "--", "-A", "identityhub", "worker"])


def _last(caplog) -> logging.LogRecord:
    return [r for r in caplog.records if r.name == "identityhub.all"][-1]


def test_the_last_line_says_the_worker_ended_by_itself(hub_all, monkeypatch, caplog):
    assert _main(hub_all, monkeypatch, caplog, lambda args: 1) == 1
    last = _last(caplog)
    assert last.levelno == logging.ERROR
    assert last.getMessage().startswith("exiting 1: the Celery worker ended by itself, asked by no stop signal")


def test_the_last_line_says_which_signal_stopped_it(hub_all, monkeypatch, caplog):
    from celery.signals import worker_shutting_down

    def celery(args) -> int:  # what Celery's SIGTERM handler announces
        worker_shutting_down.send(sender="worker@here", sig="SIGTERM", how="Warm", exitcode=0)
        return 0

    assert _main(hub_all, monkeypatch, caplog, celery) == 0
    last = _last(caplog)
    assert last.levelno == logging.INFO and last.getMessage().startswith("exiting 0: stopped by SIGTERM")


def test_the_last_line_says_the_web_failed(hub_all, monkeypatch, caplog):
    killed = []
    monkeypatch.setattr(os, "kill", lambda pid, sig: killed.append(sig))  # serve() stops the worker so

    def celery(args) -> int:
        deadline = time.monotonic() + 5
        while not killed and time.monotonic() < deadline:
            time.sleep(0.01)
        return 0

    assert _main(hub_all, monkeypatch, caplog, celery, FakeServer(fail=True)) == 1
    assert killed == [signal.SIGTERM]
    assert _last(caplog).getMessage().startswith("exiting 1: the web server stopped")


def test_the_last_line_names_an_exception_of_the_worker(hub_all, monkeypatch, caplog):
    import celery.bin.celery

    def boom(**_kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(celery.bin.celery.celery, "main", boom)
    with caplog.at_level(logging.ERROR, logger="identityhub.all"):
        assert hub_all.run_celery(["-A", "identityhub", "worker"]) == 1
    assert "the Celery worker failed" in caplog.text and "RuntimeError: boom" in caplog.text


def _broken_schedule(path: Path) -> None:
    """A beat schedule (shelve, dbm.dumb here) whose .dat was overwritten half-way: its index is fine."""
    import shelve

    with shelve.open(str(path)) as store:
        store["entries"] = {}
        store["tz"] = "UTC"
    dat = Path(f"{path}.dat")
    dat.write_bytes(b"\x80" + b"\0" * (dat.stat().st_size - 1))


def test_an_unreadable_beat_schedule_is_removed(hub_all, tmp_path, caplog):
    import shelve

    good, broken = tmp_path / "good-schedule", tmp_path / "broken-schedule"
    with shelve.open(str(good)) as store:
        store["entries"] = {}
    _broken_schedule(broken)
    before = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("good"))
    with caplog.at_level(logging.ERROR, logger="identityhub.all"):
        hub_all.repair_beat_schedule(["-A", "identityhub", "worker", "--beat", "--schedule", str(good)])
        hub_all.repair_beat_schedule(["-A", "identityhub", "worker", "--beat", "--schedule", str(broken)])
        hub_all.repair_beat_schedule(["worker", "--schedule", str(tmp_path / "none-yet")])  # a first start
        hub_all.repair_beat_schedule(["worker"])
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("good")) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("broken")]
    [record] = caplog.records
    assert record.getMessage().startswith(f"beat: removed the unreadable schedule {broken}")


def test_all_for_real_broker_files_left_broken_do_not_stop_the_hub(tmp_path):
    """The regressions, deterministic, with the real hub: what a killed hub leaves in var/broker —
    an empty message file (the first one the worker reads) and an empty exchange file (the worker's
    queue bindings) used to end it with status 1 within a second of ready, the second at every start;
    a beat schedule with garbage in its .dat killed beat's thread, and SIGTERM then never stopped the
    hub. Now each is removed with an error in the log, the worker binds its queue again, beat starts
    afresh, its ticks reach the worker, and SIGTERM stops it."""
    port = _free_port()
    env = {**_real_env(tmp_path, port), "HUB_LOG_LEVEL": "INFO", "HUB_SYNC_TICK_SECONDS": "1"}
    broker = tmp_path / "var" / "broker"
    for sub in ("queue", "control"):
        (broker / sub).mkdir(parents=True)
    (broker / "queue" / EMPTY_MESSAGE).write_bytes(b"")
    (broker / "control" / "celery.exchange").write_bytes(b"")
    (broker / "queue" / f".{EMPTY_MESSAGE}.part").write_bytes(b'{"body": ')  # a hardened writer killed
    _broken_schedule(tmp_path / "var" / "celerybeat-schedule")
    log = tmp_path / "hub.log"
    with log.open("w") as out:
        process = subprocess.Popen(["bash", str(ENTRYPOINT), "all"], env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    expected = ["removed the unreadable exchange file", "dropped an unreadable message file of queue celery",
                "beat: removed the unreadable schedule"]
    # A tick expires after 0.9 of the interval: on a loaded machine some are discarded as expired
    # ("Discarding revoked task"), which is how beat's ticks are meant to behave; one must succeed.
    succeeded = re.compile(r"Task synology\.tasks\.sync_due\[[-0-9a-f]+\] succeeded")
    try:
        deadline = time.monotonic() + 90
        while _get(f"http://127.0.0.1:{port}/readyz")[0] != 200:
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        deadline = time.monotonic() + 30
        while not (all(text in log.read_text() for text in expected) and succeeded.search(log.read_text())):
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        time.sleep(2)  # the worker polls on, every second
        assert process.poll() is None, log.read_text()[-3000:]
        assert not (broker / "queue" / EMPTY_MESSAGE).exists()
        assert not (broker / "queue" / f".{EMPTY_MESSAGE}.part").exists()
        assert json.loads((broker / "control" / "celery.exchange").read_text())  # bound again
        assert _get(f"http://127.0.0.1:{port}/healthz")[0] == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, log.read_text()[-3000:]
        assert "Unrecoverable error" not in log.read_text()
        assert "exiting 0: stopped by SIGTERM" in log.read_text()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
