"""What the metrics add to a request: the record_event hook (`identityhub.metrics.count_event`, one
counter increment per sign-in, refusal or token) and the request-latency middleware's own work, with
prometheus_client in-process (HUB_METRICS_TOKEN unset) and in multiprocess mode (set: one mmap file
per process). Each mode runs in a fresh process; nothing touches a database.

    .venv/bin/python bench/metrics_cost.py [--rounds 200000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def measure(rounds: int) -> None:
    import django

    django.setup()
    from django.test import RequestFactory

    from identityhub import metrics

    request = RequestFactory().post("/token/")

    class Match:
        view_name = "oauth2_provider:token"

    request.resolver_match = Match()

    class Response:
        status_code = 200

    middleware = metrics.RequestMetricsMiddleware(lambda r: Response())
    details = {"grant": "authorization_code"}
    cases = {
        "count_event(token_issued)": lambda: metrics.count_event("token_issued", "", "ds923-dsm", "", details),
        "count_event(sync: not counted)": lambda: metrics.count_event("sync", "", "", "", details),
        "middleware (timing + observe)": lambda: middleware(request),
        "baseline (empty call)": lambda: None,
    }
    mode = "multiprocess" if metrics.MULTIPROCESS_DIR else "in-process"
    for name, case in cases.items():
        case()  # the first call makes the label child (and, in multiprocess mode, the file)
        best = min(timeit.repeat(case, number=rounds, repeat=5)) / rounds
        print(f"{mode:13} {name:32} {best * 1e6:6.2f} µs")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=200_000)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        measure(args.rounds)
        return
    with tempfile.TemporaryDirectory() as scratch:
        base = {**os.environ, "DJANGO_SETTINGS_MODULE": "identityhub.settings", "HUB_DEBUG": "1",
                "HUB_VAR_DIR": scratch, "PYTHONPATH": str(ROOT)}
        for name in ("HUB_METRICS_TOKEN", "HUB_METRICS_DIR", "PROMETHEUS_MULTIPROC_DIR"):
            base.pop(name, None)
        for env in (base, {**base, "HUB_METRICS_TOKEN": "bench", "HUB_METRICS_DIR": f"{scratch}/metrics"}):
            subprocess.run([sys.executable, __file__, "--child", "--rounds", str(args.rounds)], env=env, check=True,
                           cwd=ROOT)


if __name__ == "__main__":
    main()
