"""A real HTTP fake of relying parties' back-channel logout endpoints (127.0.0.1, random port).

Every POST is recorded (path, headers, form); `tokens(path)` gives the `logout_token`s a path got.
Each path answers 200 unless switched (`fake.answer(path, ...)`): another status (500, 400, a 302
with `location`), or `hang` seconds of silence before answering (a timeout).

    with RPReceiver() as rp:
        rp.url("/cloud/backchannel")  # http://127.0.0.1:PORT/cloud/backchannel
        rp.answer("/cloud/backchannel", status=500)
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs


@dataclass
class Answer:
    status: int = 200
    location: str = ""
    hang: float = 0.0


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    form: dict[str, list[str]]
    at: float = field(default_factory=time.monotonic)


class RPReceiver:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self._answers: dict[str, Answer] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self.port = 0

    def start(self) -> RPReceiver:
        fake = self

        class Handler(_Handler):
            receiver = fake

        self._wake.clear()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self._wake.set()  # hanging handlers give up
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> RPReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(self, path: str, status: int = 200, *, location: str = "", hang: float = 0.0) -> None:
        with self._lock:
            self._answers[path] = Answer(status, location, hang)

    def answer_for(self, path: str) -> Answer:
        with self._lock:
            return self._answers.get(path, Answer())

    def record(self, item: Received) -> None:
        with self._lock:
            self.received.append(item)

    def requests_to(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == path]

    def tokens(self, path: str) -> list[str]:
        return [token for r in self.requests_to(path) for token in r.form.get("logout_token", [])]


class _Handler(BaseHTTPRequestHandler):
    receiver: RPReceiver

    def log_message(self, format: str, *args) -> None:  # noqa: A002 — quiet test output
        pass

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace")
        form = parse_qs(body, keep_blank_values=True) \
            if self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded") else {}
        self.receiver.record(Received(self.path, dict(self.headers.items()), form))
        answer = self.receiver.answer_for(self.path)
        if answer.hang:
            self.receiver._wake.wait(answer.hang)
        self.send_response(answer.status)
        if answer.location:
            self.send_header("Location", answer.location)
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:  # noqa: N802 — a followed redirect would arrive as a GET
        self.receiver.record(Received(self.path, dict(self.headers.items()), {}))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
