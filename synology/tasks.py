"""Celery tasks (thin: the work lives in synology.sync and synology.services).

Beat (settings.CELERY_BEAT_SCHEDULE) ticks `sync_due` every minute. `housekeeping` here is an alias
of the hub-wide `identityhub.tasks.housekeeping`, kept so existing beat schedules keep working.
Failures are not retried by Celery: the next run time on the NAS (with backoff) is the retry.
"""

from __future__ import annotations

import logging

from celery import shared_task

from . import sync

log = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def sync_due() -> list[str]:
    """Queue one `sync_nas` per enabled NAS whose next sync is due (or never scheduled)."""
    claimed = sync.claim_due_nases()
    for nas_id in claimed:
        sync_nas.delay(nas_id, "schedule")
    return claimed


@shared_task(ignore_result=True)
def sync_nas(nas_id: str, trigger: str = "schedule") -> str:
    """Sync one NAS; returns the outcome (busy when another sync of it is running, disabled when the
    NAS was switched off after the sync was queued: nothing is recorded then)."""
    from .models import NAS

    if not NAS.objects.filter(pk=nas_id).exists():
        log.warning("sync_nas: NAS %s no longer exists", nas_id)
        return "skipped"
    result = sync.sync_nas(nas_id, trigger=trigger)
    log.info("%s", result.summary())
    return result.outcome


@shared_task(ignore_result=True)
def housekeeping() -> dict[str, int]:
    """Alias of identityhub.tasks.housekeeping: every app's cleanup past retention (tokens, redeemed
    codes, SyncRuns, audit events). synology only calls the hub-wide runner; it imports no provider code."""
    from identityhub import housekeeping as jobs

    return jobs.run()
