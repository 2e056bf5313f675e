"""The NAS profile's one process (`deploy/entrypoint.sh all`): the web, the Celery worker and beat.

    python deploy/hub_all.py --migrate --bind 0.0.0.0:8000 --threads 4 -- -A identityhub worker --beat …

Everything after `--` is `celery`'s own command line. One Python process, Django loaded once:

- `--migrate`: once Django is set up (no connection open, no thread started), a forked child runs
  `migrate` and exits; the process serves only once it succeeded (its failure is the exit status).
  One interpreter start instead of two (≈ 0.6 s of every start), and the migration framework's memory
  leaves with the child. A SIGTERM/SIGINT during the migrations waits for them, then exits 143/130.

- web: waitress (a pure-Python WSGI server, threads, no fork) serves identityhub.wsgi from a thread
  with `--threads` request threads. It binds before anything else starts, so a busy port fails the
  start at once.
- the Celery worker (solo pool) runs in the main thread, as `celery worker` itself: its signal
  handlers are the process's (SIGTERM/SIGINT: warm shutdown, the running task finishes).
- beat runs in a thread of the worker (`--beat`): Celery's -B forks a beat process unless
  `celery.beat._Process` is None, then it runs the very same service in a thread (celery.beat._Threaded).

Three processes before (gunicorn master + worker, Celery with beat) cost ≈ 170 MB of PSS; this one
≈ 80 MB (bench/footprint.py, bench/README.md). When Celery stops (asked by a signal, or by itself)
the web's request threads get up to WEB_DRAIN_SECONDS (10) to finish, then the process exits with
Celery's status. When the web server thread fails, the worker is stopped the same way and the
process exits 1. Its last log line says which part ended and the exit status. deploy/entrypoint.sh
supervises this process (the container exits non-zero when it ends by itself). The full profile
(`web`/`worker`/`beat`) still runs gunicorn and Celery separately.

The filesystem broker (kombu's, in var/broker) is hardened (identityhub.broker, for every process): kombu
creates a message file, then writes it, and its reader takes any file it lists, so a message being
written by another thread was read empty and the JSONDecodeError ended the worker, the hub with it;
and an unreadable exchange file left by a killed start is removed before Celery starts
(repair_filesystem_broker), which otherwise ended every start the same way. An unreadable beat
schedule is removed too (repair_beat_schedule): beat's thread died on it, and a stop then hung.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "identityhub.settings")
log = logging.getLogger("identityhub.all")
WEB_FAILED = 1  # our exit status when the web server thread died


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    if "--" not in argv:
        raise SystemExit("usage: hub_all.py [--bind HOST:PORT] [--threads N] -- CELERY ARGS")
    split = argv.index("--")
    parser = argparse.ArgumentParser(prog="hub_all.py")
    parser.add_argument("--bind", default="0.0.0.0:8000")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--migrate", action="store_true", help="run the migrations first (in a forked child)")
    return parser.parse_args(argv[:split]), argv[split + 1:]


def migrate() -> None:
    """`manage.py migrate --noinput` in a forked child of this (single-threaded) process; SystemExit
    with its status if it failed, or 128 + the signal if asked to stop meanwhile (after it finished)."""
    import traceback

    import django
    from django.db import connections

    django.setup()
    connections.close_all()  # nothing may cross the fork
    asked: list[int] = []
    previous = {signum: signal.signal(signum, lambda signum, _frame: asked.append(signum))
                for signum in (signal.SIGTERM, signal.SIGINT)}
    pid = os.fork()
    if pid == 0:  # the child: migrate, never interrupted (the parent waits for it)
        code = 1
        try:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            from django.core.management import call_command

            call_command("migrate", interactive=False)
            code = 0
        except BaseException:  # noqa: BLE001 - reported, and the status says it
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _pid, status = os.waitpid(pid, 0)
    for signum, handler in previous.items():
        signal.signal(signum, handler)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        log.error("migrate failed (status %s): not serving", code)
        raise SystemExit(code if code > 0 else 1)
    if asked:
        raise SystemExit(128 + asked[0])


def make_server(bind: str, threads: int):
    from waitress import create_server

    from identityhub.wsgi import application  # Django set up, config applied, signing key loaded

    host, _, port = bind.rpartition(":")
    return create_server(
        application, host=host or "0.0.0.0", port=int(port), threads=threads,  # noqa: S104 - the container's port
        ident=None,  # no Server header
        # Leave X-Forwarded-* to Django (HUB_BEHIND_PROXY decides, as behind gunicorn): waitress would
        # otherwise delete them from every peer that is not its own `trusted_proxy`.
        clear_untrusted_proxy_headers=False,
        channel_timeout=60,  # idle keep-alive connections
        connection_limit=100,
        max_request_body_size=10 * 1024 * 1024,
        # Waitress buffers a whole request before a thread sees it (slow clients cost no thread).
    )


def serve(server, failed: threading.Event) -> None:
    try:
        server.run()
    except BaseException:  # noqa: BLE001 - any end of the web is the end of the process
        log.exception("web server failed")
    failed.set()  # run() only returns when the server stopped: that is a failure too
    log.error("web server stopped: stopping the worker, exiting %d", WEB_FAILED)
    os.kill(os.getpid(), signal.SIGTERM)  # Celery's warm shutdown


def drain(server, seconds: float) -> None:
    """Let the request threads finish what they are doing (their answers are sent by the server thread)."""
    server.task_dispatcher.shutdown(cancel_pending=True, timeout=seconds)
    time.sleep(0.2)  # the server thread writes out the last answers


def repair_filesystem_broker() -> None:
    """Before Celery starts, remove what a killed hub left broken in the filesystem broker's folders:
    an exchange file (control/*.exchange, the queue bindings kombu keeps as JSON, rewritten in place)
    that is not JSON, e.g. left empty by a first start killed while creating it, ended every start
    with a JSONDecodeError (a crash loop); the worker declares its bindings again. Unfinished
    messages (queue/.*.part, see harden_filesystem_broker) are removed too."""
    from django.conf import settings
    from kombu.utils.json import loads

    if getattr(settings, "CELERY_BROKER_URL", None) != "filesystem://":
        return
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    for path in Path(options["control_folder"]).glob("*.exchange"):
        try:
            loads(path.read_bytes().decode())
            continue
        except (OSError, ValueError) as error:
            log.error("broker: removed the unreadable exchange file %s (%r): the worker binds its queues again",
                      path, error)
        path.unlink(missing_ok=True)
    for path in Path(options["data_folder_out"]).glob(".*.part"):
        path.unlink(missing_ok=True)


def repair_beat_schedule(celery_args: list[str]) -> None:
    """Before Celery starts, remove a beat schedule (`--schedule FILE`, a shelve of dbm.dumb files) that
    cannot be read: its .dat file is written in place, and garbage there (a hub killed mid-write)
    raised EOFError in beat's thread, which Celery does not recover from: beat died at the start
    (no syncs, no housekeeping, the worker running on) and a stop then waited for it forever.
    Beat starts afresh instead (every entry due from now)."""
    import shelve

    path = next((celery_args[i + 1] for i, arg in enumerate(celery_args[:-1]) if arg == "--schedule"), None)
    if path is None or not any(Path(path + suffix).exists() for suffix in ("", ".dat", ".dir", ".db")):
        return
    try:
        with shelve.open(path, flag="r") as store:  # noqa: S301 - beat's own file, which beat unpickles anyway
            for key in list(store.keys()):
                store[key]  # noqa: B018 - unpickles it
    except Exception as error:  # noqa: BLE001 - whatever it is, beat cannot read it either
        log.error("beat: removed the unreadable schedule %s (%r): beat starts afresh", path, error)
        for suffix in ("", ".db", ".dat", ".bak", ".dir"):
            Path(path + suffix).unlink(missing_ok=True)


def run_celery(celery_args: list[str]) -> int:
    import celery.beat
    from celery.bin.celery import celery as celery_command

    celery.beat._Process = None  # `worker --beat`: EmbeddedService() then returns the threaded service
    try:
        celery_command.main(args=celery_args, prog_name="celery", standalone_mode=True)
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    except Exception:  # noqa: BLE001 - reported; the process ends with 1
        log.exception("the Celery worker failed")
        return 1
    return 0


def record_stop_signals() -> list[str]:
    """The stop signals Celery's own handlers receive from now on (SIGTERM…): a worker that ends with
    none received ended by itself."""
    from celery.signals import worker_shutting_down

    received: list[str] = []

    def shutting_down(sig=None, **_kwargs) -> None:
        received.append(str(sig))

    worker_shutting_down.connect(shutting_down, weak=False)
    return received


def why(status: int, web_failed: bool, stop_signals: list[str]) -> str:
    """The process's last log line: which part ended, and the exit status."""
    if web_failed:
        return f"exiting {status}: the web server stopped (see above), the worker was stopped"
    if stop_signals:
        return f"exiting {status}: stopped by {stop_signals[0]} (the Celery worker's warm shutdown)"
    return (f"exiting {status}: the Celery worker ended by itself, asked by no stop signal "
            f"(its status {status}; the reason is logged above)")


def hand_stop_signals_to_celery() -> None:
    """A SIGTERM/SIGINT that arrives before Celery installed its handlers (it boots after the web is
    up) is passed on to them once they are: a stop during the start is a clean stop too."""

    def early(signum, _frame) -> None:
        def resend() -> None:
            while signal.getsignal(signum) is early:
                time.sleep(0.05)
            os.kill(os.getpid(), signum)

        threading.Thread(target=resend, name="resend-stop-signal", daemon=True).start()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, early)


def main(argv: list[str]) -> int:
    options, celery_args = parse(argv)
    if options.migrate:
        migrate()
    hand_stop_signals_to_celery()
    from identityhub.broker import harden_filesystem_broker

    harden_filesystem_broker()  # identityhub.celery does it at import too; explicit before Celery starts
    repair_filesystem_broker()
    repair_beat_schedule(celery_args)
    stop_signals = record_stop_signals()
    server = make_server(options.bind, options.threads)
    failed = threading.Event()
    web = threading.Thread(target=serve, args=(server, failed), name="web", daemon=True)
    web.start()
    log.info("web: serving on http://%s with %d threads", options.bind, options.threads)

    status = run_celery(celery_args)

    if failed.is_set():
        status = WEB_FAILED
    asked = bool(stop_signals) and not failed.is_set() and status == 0  # a clean stop: no error
    (log.info if asked else log.error)(why(status, failed.is_set(), stop_signals))
    drain(server, float(os.environ.get("WEB_DRAIN_SECONDS", "10")))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
