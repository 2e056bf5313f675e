"""The sync's Prometheus metrics, read from the database at each scrape (`identityhub.metrics`).

SyncRun and NAS rows are written by whichever process ran the sync (a Celery worker, `hub sync`,
the quick sync of a web process, on any host or pod), so reading them is exact everywhere: no
counter lives in the worker. Two queries per scrape.

The run counters and the duration histogram count the runs that finished since 00:00 UTC today and
start again from zero at midnight, with `_created` saying so: Prometheus reads that as a counter
reset (as after a restart), so `rate()` and `increase()` stay right. Counting every kept row instead
would make the counters go down whenever housekeeping drops SyncRuns older than
HUB_SYNCRUN_RETENTION_DAYS — a decrease Prometheus would read as a reset plus a burst of runs.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.db.models import Count, Q, Sum
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from .models import NAS, SyncRun

DURATION_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


def _window_start(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def collect_sync_metrics():
    now = timezone.now()
    start = _window_start(now)
    created = start.timestamp()
    buckets = {f"le_{i}": Count("id", filter=Q(duration_ms__lte=int(bound * 1000)))
               for i, bound in enumerate(DURATION_BUCKETS)}
    rows = (SyncRun.objects.filter(finished__gte=start).exclude(outcome=SyncRun.Outcome.RUNNING)
            .order_by().values("nas_id", "outcome").annotate(n=Count("id"), ms=Sum("duration_ms"), **buckets))

    runs = CounterMetricFamily("hub_sync_runs", "Sync runs finished since 00:00 UTC (reset daily), by NAS and "
                               "outcome.", labels=["nas", "outcome"])
    per_nas: dict[str, dict] = {}
    for row in rows:
        runs.add_metric([row["nas_id"], row["outcome"]], row["n"], created=created)
        total = per_nas.setdefault(row["nas_id"], {"n": 0, "ms": 0, "le": [0] * len(DURATION_BUCKETS)})
        total["n"] += row["n"]
        total["ms"] += row["ms"] or 0
        for i in range(len(DURATION_BUCKETS)):
            total["le"][i] += row[f"le_{i}"]
    durations = HistogramMetricFamily("hub_sync_duration_seconds", "Duration of the sync runs finished since "
                                      "00:00 UTC (reset daily), by NAS.", labels=["nas"])
    for nas_id, total in sorted(per_nas.items()):
        points = [(repr(bound), total["le"][i]) for i, bound in enumerate(DURATION_BUCKETS)]
        durations.add_metric([nas_id], points + [("+Inf", total["n"])], sum_value=total["ms"] / 1000)
    yield runs
    yield durations

    last_success = GaugeMetricFamily("hub_sync_last_success_timestamp_seconds", "When each NAS last synced "
                                     "successfully (seconds since the epoch; 0: never).", labels=["nas"])
    failures = GaugeMetricFamily("hub_sync_consecutive_failures", "Failed sync attempts since the last "
                                 "success, by NAS.", labels=["nas"])
    enabled = GaugeMetricFamily("hub_nas_enabled", "1 for a NAS the hub syncs, 0 for a disabled one.",
                                labels=["nas"])
    for nas_id, success_at, failed, on in NAS.objects.order_by("id").values_list(
            "id", "last_success_at", "consecutive_failures", "enabled"):
        last_success.add_metric([nas_id], success_at.timestamp() if success_at else 0)
        failures.add_metric([nas_id], failed)
        enabled.add_metric([nas_id], 1 if on else 0)
    yield last_success
    yield failures
    yield enabled
