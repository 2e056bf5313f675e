"""SSO cycles per second: a signed-in person's authorization request → code → token exchange.

The flow of issue 11: a confidential client authenticating with client_secret_basic (HTTP Basic),
scope `openid profile email`, `state` and `nonce`, consent skipped (a trusted client), over
keep-alive connections, against gunicorn (default 2 workers; `--worker-class gthread|sync`). Options:
`--auth post` (client_secret_post), `--pkce` (S256), `--variant stock` (the same project on stock
django-oauth-toolkit settings, bench/stock_settings.py), `--tree DIR` (serve another checkout, e.g.
a worktree of the commit before, with this same load generator — for back-to-back comparisons).

Reports cycles/s, server CPU per cycle (utime + stime of the gunicorn processes; the database
server's own CPU is not included), the load generator's and the machine's CPU per cycle, queries
per cycle, the web workers' RSS, and with `--profile` an in-process per-layer split of the same flow
(bench/_sso_profile.py: Django's WSGI handler called as gunicorn calls it; "HTTP server" is the
server CPU per cycle minus the in-process CPU per cycle).

    .venv/bin/python bench/sso_cycles.py [--seconds 15] [--worker-class gthread] [--server-threads 2] [--profile]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/hub REDIS_URL=redis://127.0.0.1:6379/6 \\
        .venv/bin/python bench/sso_cycles.py

Database: DATABASE_URL if set (a scratch database `<name>_bench_<variant>` is created next to it
on PostgreSQL), else SQLite under var/bench/. REDIS_URL is passed through (sessions, cache).
"""
from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database_url(variant: str) -> str:
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        import psycopg

        parts = urlsplit(url)
        name = f"{parts.path.lstrip('/') or 'hub'}_bench_{variant}"
        admin = parts._replace(path="/postgres").geturl()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        return parts._replace(path=f"/{name}").geturl()
    path = ROOT / "var" / "bench" / f"sso-{variant}.sqlite3"
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{path}"


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its children (threads included)."""
    total = 0.0
    pids = [pid] + [int(p) for p in (Path(f"/proc/{pid}/task/{pid}/children").read_text().split())]
    for p in pids:
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / CLK_TCK
    return total


def machine_busy_seconds() -> float:
    """CPU time the whole machine spent busy (all processes: hub, database, load generator)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / CLK_TCK


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def worker_pids(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def load_worker(port: int, setup: dict, seconds: float, threads: int, results) -> None:
    import base64

    stop_at = time.monotonic() + seconds
    counts = [0] * threads
    errors = [0] * threads
    base = {"response_type": "code", "client_id": setup["client_id"], "redirect_uri": setup["redirect_uri"],
            "scope": setup["scope"]}
    if setup["pkce"]:
        base |= {"code_challenge": setup["challenge"], "code_challenge_method": "S256"}
    cookie = f"{setup['cookie']}={setup['session_key']}"
    basic = "Basic " + base64.b64encode(f"{setup['client_id']}:{setup['secret']}".encode()).decode()

    def run(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        n = 0
        while time.monotonic() < stop_at:
            n += 1
            nonce = f"{os.getpid()}-{index}-{n}"
            try:
                conn.request("GET", "/authorize/?" + urlencode({**base, "state": "st" + nonce, "nonce": nonce}),
                             headers={"Cookie": cookie})
                response = conn.getresponse()
                response.read()
                location = response.getheader("Location", "")
                code = parse_qs(urlsplit(location).query).get("code", [None])[0]
                if response.status != 302 or code is None:
                    errors[index] += 1
                    continue
                form = {"grant_type": "authorization_code", "code": code, "redirect_uri": setup["redirect_uri"]}
                headers = {"Content-Type": "application/x-www-form-urlencoded"}
                if setup["auth"] == "basic":
                    headers["Authorization"] = basic
                else:
                    form |= {"client_id": setup["client_id"], "client_secret": setup["secret"]}
                if setup["pkce"]:
                    form["code_verifier"] = setup["verifier"]
                conn.request("POST", "/token/", body=urlencode(form), headers=headers)
                response = conn.getresponse()
                payload = response.read()
                if response.status == 200 and b"id_token" in payload:
                    counts[index] += 1
                else:
                    errors[index] += 1
            except (OSError, http.client.HTTPException):
                errors[index] += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    pool = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    results.put((sum(counts), sum(errors), time.process_time()))


def bench_variant(variant: str, args) -> dict:
    tree = Path(args.tree).resolve() if args.tree else ROOT
    py = str(tree / ".venv" / "bin" / "python") if (tree / ".venv" / "bin" / "python").exists() else PY
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.stock_settings" if variant == "stock" else "identityhub.settings",
        "HUB_DEBUG": "0",
        "HUB_SECRET_KEY": "bench-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
        "HUB_ENCRYPTION_KEY": "8mB2kTq3Zy0VQqTeXMyv2H8sCeAJjH0EnQkCLvXb0n0=",
        "HUB_ISSUER": f"http://127.0.0.1:{port}",
        "HUB_LOG_LEVEL": "WARNING",
        "DATABASE_URL": database_url(variant + (f"_{tree.name}" if args.tree else "")),
        "PYTHONPATH": str(tree),
        "BENCH_AUTH": args.auth,
        "BENCH_PKCE": "1" if args.pkce else "0",
    }
    subprocess.run([py, "manage.py", "migrate", "-v0"], cwd=tree, env=env, check=True)
    setup = json.loads(subprocess.run([py, str(ROOT / "bench" / "_sso_setup.py")], cwd=tree, env=env, check=True,
                                      capture_output=True, text=True).stdout.strip().splitlines()[-1])
    profile = None
    if args.profile:
        out = subprocess.run([py, str(ROOT / "bench" / "_sso_profile.py")], cwd=tree, check=True,
                             env={**env, "BENCH_SETUP": json.dumps(setup),
                                  "BENCH_PROFILE_CYCLES": str(args.profile_cycles)},
                             capture_output=True, text=True).stdout
        profile = json.loads(out.strip().splitlines()[-1])
        if args.profile_only:
            return {"variant": variant, "tree": str(tree), "database": env["DATABASE_URL"].split(":", 1)[0],
                    "queries": setup["queries"], **profile}
    command = [str(Path(py).parent / "gunicorn"), "identityhub.wsgi", "-k", args.worker_class,
               "--workers", str(args.workers), "--bind", f"127.0.0.1:{port}", "--keep-alive", "30",
               "--log-level", "warning"]
    if args.worker_class == "gthread":
        command += ["--threads", str(args.server_threads)]
    if args.preload:
        command += ["--preload"]
    command += args.gunicorn_arg
    server = subprocess.Popen(command, cwd=tree, env=env)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        queue = multiprocessing.Queue()
        # warm-up (imports, key load, connections) — not measured
        warm = multiprocessing.Process(target=load_worker, args=(port, setup, 2.0, 2, queue))
        warm.start()
        warm.join()
        queue.get()

        cpu_before = process_cpu_seconds(server.pid)
        machine_before = machine_busy_seconds()
        started = time.monotonic()
        clients = [multiprocessing.Process(target=load_worker, args=(port, setup, args.seconds, args.threads, queue))
                   for _ in range(args.clients)]
        for c in clients:
            c.start()
        for c in clients:
            c.join()
        elapsed = time.monotonic() - started
        cpu_after = process_cpu_seconds(server.pid)
        machine_after = machine_busy_seconds()
        outcomes = [queue.get() for _ in clients]
        rss = [rss_kib(p) for p in worker_pids(server.pid)]
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    cycles = sum(o[0] for o in outcomes)
    errors = sum(o[1] for o in outcomes)
    client_cpu = sum(o[2] for o in outcomes)
    server_ms = 1000 * (cpu_after - cpu_before) / max(cycles, 1)
    row = {
        "variant": variant,
        "tree": str(tree),
        "server": f"{args.worker_class} {args.workers}x{args.server_threads if args.worker_class == 'gthread' else 1}",
        "database": env["DATABASE_URL"].split(":", 1)[0],
        "cycles": cycles,
        "errors": errors,
        "seconds": round(elapsed, 2),
        "cycles_per_s": round(cycles / elapsed, 1),
        "server_cpu_ms_per_cycle": round(server_ms, 2),
        "client_cpu_ms_per_cycle": round(1000 * client_cpu / max(cycles, 1), 2),
        "machine_cpu_ms_per_cycle": round(1000 * (machine_after - machine_before) / max(cycles, 1), 2),
        "queries_authorize": setup["queries"][0],
        "queries_token": setup["queries"][1],
        "worker_rss_mib": [round(r / 1024, 1) for r in rss],
    }
    if profile is not None:
        row["inprocess_cpu_ms_per_cycle"] = profile["cpu_ms_per_cycle"]
        row["split_ms"] = {**profile["split_ms"],
                           "HTTP server (by difference)": round(server_ms - profile["cpu_ms_per_cycle"], 2)}
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--clients", type=int, default=2, help="load-generator processes")
    parser.add_argument("--threads", type=int, default=4, help="connections per load-generator process")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--worker-class", choices=["gthread", "sync"], default="gthread")
    parser.add_argument("--server-threads", type=int, default=2, help="gthread threads per gunicorn worker")
    parser.add_argument("--preload", action="store_true", help="gunicorn --preload (as `entrypoint.sh all`)")
    parser.add_argument("--gunicorn-arg", action="append", default=[], help="one more gunicorn argument")
    parser.add_argument("--auth", choices=["basic", "post"], default="basic", help="client_secret_basic or _post")
    parser.add_argument("--pkce", action="store_true", help="send a PKCE S256 challenge and verifier")
    parser.add_argument("--profile", action="store_true", help="also the in-process per-layer split")
    parser.add_argument("--profile-cycles", type=int, default=600)
    parser.add_argument("--profile-only", action="store_true", help="only the in-process split (no gunicorn)")
    parser.add_argument("--tree", help="serve this checkout (default: this one)")
    parser.add_argument("--variant", choices=["hub", "stock", "both"], default="hub")
    args = parser.parse_args()
    variants = ["hub", "stock"] if args.variant == "both" else [args.variant]
    args.profile = args.profile or args.profile_only
    rows = [bench_variant(v, args) for v in variants]
    if args.profile_only:
        print(json.dumps(rows, indent=1))
        return
    header = ["variant", "server", "database", "cycles_per_s", "server_cpu_ms_per_cycle", "client_cpu_ms_per_cycle",
              "machine_cpu_ms_per_cycle",
              "queries_authorize", "queries_token", "cycles", "errors", "seconds", "worker_rss_mib"]
    print(" | ".join(header))
    for row in rows:
        print(" | ".join(str(row[h]) for h in header))
        if "split_ms" in row:
            print(f"  in-process {row['inprocess_cpu_ms_per_cycle']} ms/cycle:",
                  ", ".join(f"{k} {v}" for k, v in row["split_ms"].items()))
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
