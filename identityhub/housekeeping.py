"""Hub-wide housekeeping: each app registers its own cleanup job; `run()` runs them all.

The hub-wide core imports no app (house rule: config → provider → synology → accounts → hub-wide).
So the apps come to it: each registers a job in its ``AppConfig.ready()``::

    from identityhub import housekeeping
    housekeeping.register("synology", services.housekeeping)

A job deletes what is past its retention and returns counts by name. Beat runs `run()` every 6 h
(task ``identityhub.tasks.housekeeping``; ``synology.tasks.housekeeping`` stays as an alias).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from .models import AuditEvent

log = logging.getLogger(__name__)

Job = Callable[[], dict[str, int]]
_jobs: dict[str, Job] = {}


def register(name: str, job: Job) -> None:
    """Add (or replace) the job called `name`; jobs run in registration order."""
    _jobs[name] = job


def registered() -> list[str]:
    return list(_jobs)


def clear_audit_events() -> dict[str, int]:
    """Audit events older than HUB_AUDIT_RETENTION_DAYS."""
    cutoff = timezone.now() - timedelta(days=settings.HUB_AUDIT_RETENTION_DAYS)
    deleted, _ = AuditEvent.objects.filter(time__lt=cutoff).delete()
    return {"audit_events": deleted}


def run() -> dict[str, int]:
    """Run every registered job; one failing job does not stop the others (it is logged, then raised)."""
    counts: dict[str, int] = {}
    failed: list[str] = []
    for name, job in list(_jobs.items()):
        try:
            counts.update(job())
        except Exception:
            log.exception("housekeeping job %s failed", name)
            failed.append(name)
    if failed:
        raise RuntimeError(f"housekeeping failed for: {', '.join(failed)} (the other jobs ran: {counts})")
    return counts


register("hub", clear_audit_events)
