"""Benchmark helper: the SSO cycle in-process, through Django's WSGI handler exactly as gunicorn calls
it (request_started/finished included, so connection handling is the server's), without HTTP.

Run by bench/sso_cycles.py --profile in a subprocess with the variant's settings (cwd = the tree under
test) after _sso_setup.py. Prints JSON: CPU ms per cycle (time.process_time, no profiler) and a
per-layer split from a CPU-time sampling profiler (ITIMER_PROF, 0.5 ms): each sample goes to the
first layer found walking the stack outwards, except that anything under a database connect/close
is "connection" and anything under jwcrypto/cryptography (or the key ring's sign_jwt) is "signing".
"""

from __future__ import annotations

import base64
import collections
import io
import json
import os
import signal
import sys
import time
from urllib.parse import parse_qs, urlencode, urlsplit

sys.path.insert(0, os.getcwd())
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "identityhub.settings")

from identityhub.wsgi import application  # noqa: E402

setup = json.loads(os.environ["BENCH_SETUP"])
host = urlsplit(os.environ["HUB_ISSUER"]).netloc
cookie = f"{setup['cookie']}={setup['session_key']}"
basic = "Basic " + base64.b64encode(f"{setup['client_id']}:{setup['secret']}".encode()).decode()


def environ(method: str, path: str, query: str = "", body: bytes = b"", **headers) -> dict:
    env = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query, "SCRIPT_NAME": "",
        "SERVER_NAME": host.split(":")[0], "SERVER_PORT": host.split(":")[1] if ":" in host else "80",
        "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": host, "REMOTE_ADDR": "127.0.0.1",
        "wsgi.input": io.BytesIO(body), "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr,
        "wsgi.version": (1, 0), "wsgi.multithread": True, "wsgi.multiprocess": True, "wsgi.run_once": False,
    }
    if body:
        env["CONTENT_TYPE"] = "application/x-www-form-urlencoded"
        env["CONTENT_LENGTH"] = str(len(body))
    env.update(headers)
    return env


def call(env: dict) -> tuple[str, dict, bytes]:
    captured = {}

    def start_response(status, response_headers, exc_info=None):
        captured["status"] = status
        captured["headers"] = dict(response_headers)

    result = application(env, start_response)
    try:
        body = b"".join(result)
    finally:
        result.close()  # request_finished: what closes (or keeps) the database connection
    return captured["status"], captured["headers"], body


def cycle(i: int) -> None:
    params = {"response_type": "code", "client_id": setup["client_id"], "redirect_uri": setup["redirect_uri"],
              "scope": setup["scope"], "state": f"st{i}", "nonce": f"n{i}"}
    if setup["pkce"]:
        params |= {"code_challenge": setup["challenge"], "code_challenge_method": "S256"}
    status, headers, _ = call(environ("GET", "/authorize/", urlencode(params), HTTP_COOKIE=cookie))
    code = parse_qs(urlsplit(headers.get("Location", "")).query).get("code", [None])[0]
    assert status.startswith("302") and code, (status, headers)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": setup["redirect_uri"]}
    extra = {}
    if setup["auth"] == "basic":
        extra["HTTP_AUTHORIZATION"] = basic
    else:
        form |= {"client_id": setup["client_id"], "client_secret": setup["secret"]}
    if setup["pkce"]:
        form["code_verifier"] = setup["verifier"]
    status, _, body = call(environ("POST", "/token/", body=urlencode(form).encode(), **extra))
    assert status.startswith("200") and b"id_token" in body, (status, body[:300])


LAYERS = ["connection", "DB", "ORM", "signing", "oauthlib/DOT", "hub", "Django", "cache/session (Redis)", "other"]


DRIVER_CALLS = {"execute", "executemany", "_execute", "_execute_with_wrappers", "fetchone", "fetchall",
                "fetchmany", "_commit", "commit", "_savepoint"}


def classify(frame) -> str:
    found = None
    f = frame
    while f is not None:
        path = f.f_code.co_filename
        name = f.f_code.co_name
        if "/django/db/backends/" in path and name in {"connect", "close", "_close", "get_new_connection",
                                                      "init_connection_state", "ensure_connection"}:
            return "connection"
        if "/jwcrypto/" in path or "/cryptography/" in path or name == "sign_jwt":
            return "signing"
        if found is None:
            if "/psycopg" in path or ("sqlite3" in path and "/django/" not in path) or (
                    "/django/db/backends/" in path and name in DRIVER_CALLS):
                found = "DB"
            elif "/django/db/" in path:
                found = "ORM"
            elif "/oauthlib/" in path or "/oauth2_provider/" in path:
                found = "oauthlib/DOT"
            elif "/redis/" in path or "/django/core/cache/" in path or "identityhub/cache.py" in path:
                found = "cache/session (Redis)"
            elif "/django/" in path or "/csp/" in path or "/django_ratelimit/" in path or "/whitenoise/" in path:
                found = "Django"
            elif "/site-packages/" not in path and ("/identityhub/" in path or "/accounts/" in path
                                                   or "/synology/" in path):
                found = "hub"
        f = f.f_back
    return found or "other"


def main() -> None:
    cycles = int(os.environ.get("BENCH_PROFILE_CYCLES", "600"))
    for i in range(50):  # warm-up: imports, caches, key ring
        cycle(-i - 1)
    started = time.process_time()
    for i in range(cycles):
        cycle(i)
    cpu_ms = 1000 * (time.process_time() - started) / cycles
    if os.environ.get("BENCH_CPROFILE"):  # function-level detail for development: a pstats file
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
        for i in range(cycles):
            cycle(2 * cycles + i)
        profiler.disable()
        profiler.dump_stats(os.environ["BENCH_CPROFILE"])

    samples = collections.Counter()

    def on_sample(_signum, frame):
        samples[classify(frame)] += 1

    interval = 0.0005
    signal.signal(signal.SIGPROF, on_sample)
    signal.setitimer(signal.ITIMER_PROF, interval, interval)
    sampled_started = time.process_time()
    for i in range(cycles):
        cycle(cycles + i)
    sampled_cpu = time.process_time() - sampled_started
    signal.setitimer(signal.ITIMER_PROF, 0, 0)
    total = sum(samples.values()) or 1
    # Scale the shares to the unprofiled CPU time per cycle.
    split = {layer: round(cpu_ms * samples[layer] / total, 2) for layer in LAYERS}
    print(json.dumps({"cycles": cycles, "cpu_ms_per_cycle": round(cpu_ms, 2),
                      "sampled_cpu_ms_per_cycle": round(1000 * sampled_cpu / cycles, 2),
                      "samples": total, "split_ms": split}))


if __name__ == "__main__":
    main()
