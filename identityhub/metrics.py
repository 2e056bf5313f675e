"""Prometheus metrics: `/metrics` (text format), the counters behind it, the request-latency middleware.

Two kinds of values, chosen for being right across processes (several gunicorn workers, Celery
workers, `entrypoint.sh all`'s single container, pods):

- **Counted where it happens** — sign-ins, refusals, tokens issued (`count_event`, called by
  `identityhub.audit.record_event`, the one place every such event is recorded) and request latency
  (`RequestMetricsMiddleware`). With `HUB_METRICS_TOKEN` set, prometheus_client runs in multiprocess
  mode: each process adds to its own memory-mapped file in `HUB_METRICS_DIR` (default
  `var/metrics/<hostname>`), and a scrape sums every file of that folder, so the answer is the same
  whichever gunicorn worker serves it and a worker that restarts loses nothing. Without the token
  nothing is exposed and the values stay in the process (cheap, never read).
- **Read from the database at scrape time** — what is already stored exactly for every process and
  pod (the sync: SyncRun and NAS rows). The hub-wide core imports no app, so apps register those
  collectors here (`register_collector`, from their `AppConfig.ready()`), as they do housekeeping jobs.

Labels are bounded: reason codes, client ids, upstream ids, NAS ids, URL names — never a path, an
email, a token or a secret; any label takes at most `MAX_LABEL_VALUES` distinct values per metric,
the rest are counted as `other`.
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache

log = logging.getLogger(__name__)


def _multiprocess_dir() -> str | None:
    """The folder of the per-process files, made ready before prometheus_client is imported."""
    path = getattr(settings, "HUB_METRICS_DIR", None)
    if not path:
        return None
    folder = os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(path))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as error:  # a read-only var/: count per process rather than fail every request
        log.warning("metrics: cannot use %s (%s): each process exposes only its own counts", folder, error)
        del os.environ["PROMETHEUS_MULTIPROC_DIR"]
        return None
    return folder


MULTIPROCESS_DIR = _multiprocess_dir()

from prometheus_client import (  # noqa: E402  (after PROMETHEUS_MULTIPROC_DIR is set)
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    values,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4  # noqa: E402
from prometheus_client.multiprocess import MultiProcessCollector  # noqa: E402

if MULTIPROCESS_DIR and not values.ValueClass._multiprocess:
    # prometheus_client chose its value class when first imported; if anything imported it before the
    # folder was set, switch now (metrics made below pick the class up when their children are made).
    values.ValueClass = values.MultiProcessValue()

disable_created_metrics()  # no `_created` series: multiprocess mode has none either (the same output both ways)

MAX_LABEL_VALUES = 200
OTHER = "other"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# The metrics counted in-process go to this registry (exposed as is without multiprocess mode).
REGISTRY = CollectorRegistry(auto_describe=True)

SIGN_INS = Counter("hub_sign_ins", "Sign-ins to the hub, by method (upstream id or passkey).",
                   ["method"], registry=REGISTRY)
REFUSALS = Counter("hub_refusals", "Refusals (sign-in, authorization, token, userinfo), by reason code.",
                   ["reason"], registry=REGISTRY)
TOKENS_ISSUED = Counter("hub_tokens_issued", "Token responses issued, by client and grant type.",
                        ["client_id", "grant"], registry=REGISTRY)
REQUEST_LATENCY = Histogram("hub_request_duration_seconds",
                            "Time to answer an HTTP request, by URL name, method and status class.",
                            ["view", "method", "status"], buckets=LATENCY_BUCKETS, registry=REGISTRY)


# --- bounded children ----------------------------------------------------------------------------
_children: dict[tuple, object] = {}
_seen: dict[int, dict[int, set[str]]] = {}
_children_lock = threading.Lock()


def _child(metric, *labels: str):
    """`metric.labels(*labels)`, cached (the hot path pays one dict lookup), each label capped at
    MAX_LABEL_VALUES distinct values (the rest become `other`)."""
    key = (id(metric), labels)
    child = _children.get(key)
    if child is not None:
        return child
    with _children_lock:
        seen = _seen.setdefault(id(metric), {})
        bounded = []
        for position, value in enumerate(labels):
            values_seen = seen.setdefault(position, set())
            if value not in values_seen and len(values_seen) >= MAX_LABEL_VALUES:
                value = OTHER
            else:
                values_seen.add(value)
            bounded.append(value)
        child = metric.labels(*bounded)
        _children[key] = child
    return child


def count_event(kind: str, reason: str, client_id: str, upstream_id: str, details: dict) -> None:
    """Called by `record_event` for every audit event: one counter increment for the kinds counted.

    Never raises: a metrics fault must not fail a sign-in or a token response."""
    try:
        if kind == "token_issued":
            _child(TOKENS_ISSUED, client_id or "-", str(details.get("grant") or "-")).inc()
        elif kind == "refusal":
            _child(REFUSALS, reason or "-").inc()
        elif kind == "sign_in":
            _child(SIGN_INS, upstream_id or str(details.get("method") or "-")).inc()
    except Exception:  # pragma: no cover - defensive
        log.exception("metrics: counting a %s event failed", kind)


# --- request latency ------------------------------------------------------------------------------
def view_label(request: HttpRequest) -> str:
    """The URL name (`namespace:name`) the request resolved to; `admin` for the whole console,
    `static` for static files, `unmatched` for anything else (404s): never the raw path."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "static" if request.path.startswith(settings.STATIC_URL) else "unmatched"
    name = match.view_name or "unnamed"
    if name.startswith("admin:"):
        return "admin"
    return name


class RequestMetricsMiddleware:
    """Times every request (first in MIDDLEWARE, so the whole stack is inside)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        start = time.perf_counter()
        response = self.get_response(request)
        try:
            method = request.method if request.method in METHODS else OTHER
            status = f"{response.status_code // 100}xx"
            _child(REQUEST_LATENCY, view_label(request), method, status).observe(time.perf_counter() - start)
        except Exception:  # pragma: no cover - defensive
            log.exception("metrics: timing a request failed")
        return response


# --- scrape-time collectors (registered by the apps) -------------------------------------------------
Collector = Callable[[], Iterable]  # returns prometheus_client metric families
_collectors: dict[str, Collector] = {}


def register_collector(name: str, collect: Collector) -> None:
    """Add (or replace) a collector run at each scrape; it reads what it exposes from the database."""
    _collectors[name] = collect


class _Registered:
    def collect(self):
        for name, collect in list(_collectors.items()):
            try:
                yield from collect()
            except Exception:
                log.exception("metrics collector %s failed", name)


def exposition(*, collectors: bool = True) -> bytes:
    """The Prometheus text format: the counted metrics (summed over every process's file in
    multiprocess mode) and, unless told otherwise, the registered collectors' values."""
    if MULTIPROCESS_DIR:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=os.environ["PROMETHEUS_MULTIPROC_DIR"])
    else:
        registry = CollectorRegistry()
        registry.register(_Local())
    if collectors:
        registry.register(_Registered())
    return generate_latest(registry)


class _Local:
    def collect(self):
        return REGISTRY.collect()


def _authorised(request: HttpRequest, token: str) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given:
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


@never_cache
@login_not_required
def metrics_view(request: HttpRequest) -> HttpResponse:
    """`/metrics`: a 404 unless HUB_METRICS_TOKEN is set; then `Authorization: Bearer <token>` or 401."""
    token = getattr(settings, "HUB_METRICS_TOKEN", None)
    if not token:
        raise Http404("metrics are off (HUB_METRICS_TOKEN is not set)")
    if not _authorised(request, token):
        response = HttpResponse("401 Unauthorized: send Authorization: Bearer $HUB_METRICS_TOKEN\n", status=401,
                                content_type="text/plain; charset=utf-8")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_PLAIN_0_0_4)
