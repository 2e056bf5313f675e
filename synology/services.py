"""Writes to NAS data: declaring NASes and explicit account mappings. The sync lives in synology.sync."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction

from .models import NAS, AccountMapping

log = logging.getLogger(__name__)


def declare_nas(
    nas_id: str,
    *,
    household,
    base_url: str,
    name: str = "",
    verify_tls: bool = True,
    ca_file: str = "",
    service_username: str = "",
    service_password: str = "",
    sync_interval: timedelta = timedelta(hours=1),
    enabled: bool = True,
    managed: bool = False,
) -> NAS:
    nas, _ = NAS.objects.update_or_create(
        pk=nas_id,
        defaults={
            "household": household,
            "base_url": base_url.rstrip("/"),
            "name": name,
            "verify_tls": verify_tls,
            "ca_file": ca_file,
            "service_username": service_username,
            "service_password": service_password,
            "sync_interval": sync_interval,
            "enabled": enabled,
            "managed": managed,
        },
    )
    return nas


@transaction.atomic
def set_account_mappings(nas: NAS, mappings: dict[str, str], *, managed: bool = False) -> None:
    """Make the NAS's explicit mappings exactly `mappings` (email -> DSM account name)."""
    wanted = {email.strip().lower(): name for email, name in mappings.items()}
    current = {m.email: m for m in AccountMapping.objects.filter(nas=nas)}
    for email, mapping in current.items():
        if email not in wanted:
            mapping.delete()
        elif mapping.account_name != wanted[email] or mapping.managed != managed:
            mapping.account_name = wanted[email]
            mapping.managed = managed
            mapping.save(update_fields=["account_name", "managed"])
    AccountMapping.objects.bulk_create(
        [
            AccountMapping(nas=nas, email=e, account_name=n, managed=managed)
            for e, n in wanted.items()
            if e not in current
        ]
    )


QUICK_SYNC_TIMEOUT: tuple[float, float] = (3.0, 3.0)
QUICK_SYNC_MIN_GAP = timedelta(seconds=30)


def quick_sync(nas: NAS) -> bool:
    """One short on-demand sync before refusing a sign-in; True when it ran and succeeded.

    Skipped (False) when the NAS is disabled or has no service account, when any sync attempt of
    this NAS started less than 30 s ago (rate limit shared by every process through the database),
    or when a sync is already running (lock). Every HTTP call has a 3 s connect/read timeout.
    """
    from django.utils import timezone

    from .sync import sync_nas

    if not nas.enabled or not nas.service_username:
        return False
    if _in_transaction():
        # The HTTP calls would hold the caller's transaction (and SQLite's write lock) open.
        log.warning("quick_sync of %s skipped: called inside a database transaction", nas.pk)
        return False
    now = timezone.now()
    recent = NAS.objects.filter(pk=nas.pk, last_attempt_at__gt=now - QUICK_SYNC_MIN_GAP).exists()
    if recent:
        return False
    result = sync_nas(nas.pk, trigger="sign-in", timeout=QUICK_SYNC_TIMEOUT, lock_wait=0)
    return result.ok


def _in_transaction() -> bool:
    """True inside an atomic block other than the ones Django's TestCase wraps each test in."""
    from django.db import connection

    return any(not getattr(block, "_from_testcase", False) for block in connection.atomic_blocks)


def run_housekeeping() -> dict[str, int]:
    """Delete what is past retention: expired OAuth tokens, redeemed codes, old SyncRuns and audit events."""
    from django.conf import settings
    from django.utils import timezone
    from oauth2_provider.models import clear_expired

    from identityhub.models import AuditEvent
    from identityhub.oidc.validator import clear_redeemed_codes

    from .models import SyncRun
    from .sync import LOCK_TTL

    now = timezone.now()
    clear_expired()
    codes = clear_redeemed_codes(timedelta(seconds=settings.HUB_REDEEMED_CODE_RETENTION_SECONDS))
    runs, _ = SyncRun.objects.filter(started__lt=now - timedelta(days=settings.HUB_SYNCRUN_RETENTION_DAYS)).delete()
    events, _ = AuditEvent.objects.filter(time__lt=now - timedelta(days=settings.HUB_AUDIT_RETENTION_DAYS)).delete()
    # A run still "running" long after the lock's TTL belongs to a process that died mid-sync.
    interrupted = SyncRun.objects.filter(
        outcome=SyncRun.Outcome.RUNNING, started__lt=now - timedelta(seconds=LOCK_TTL * 2)
    ).update(outcome=SyncRun.Outcome.ERROR, finished=now, message="interrupted (the process running it stopped)")
    return {"redeemed_codes": codes, "sync_runs": runs, "audit_events": events, "interrupted_runs": interrupted}
