"""Hub-wide Celery tasks (thin). Beat: settings.CELERY_BEAT_SCHEDULE."""

from __future__ import annotations

from celery import shared_task

from . import housekeeping as jobs


@shared_task(ignore_result=True)
def housekeeping() -> dict[str, int]:
    """Every app's cleanup past retention (identityhub.housekeeping)."""
    return jobs.run()
