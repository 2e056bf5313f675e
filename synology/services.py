"""NAS operations: declaring NASes and mappings, testing a connection, queuing a sync, quick sync.

The sync itself lives in synology.sync; the Celery tasks in synology.tasks.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext, ngettext

from accounts.models import normalize_email
from identityhub.audit import record_event
from identityhub.crypto import DecryptionError

from .dsm import DSMClient, DSMError, Timeout
from .models import NAS, AccountMapping, DSMAccount
from .sync import NO_SERVICE_ACCOUNT

log = logging.getLogger(__name__)

TEST_TIMEOUT: tuple[float, float] = (5.0, 10.0)  # someone is waiting on a button
TEST_DEADLINE = 15.0  # seconds for the whole test (log in, version, list right, log out)
TEST_SESSION = "IdentityHubTest"  # its own DSM session name: never ends a running sync's session
_ASCII_SPACES = re.compile(r"[ \t\r\n\f\v]+")


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
    new_account_groups: list[str] | None = None,
) -> NAS:
    extra = {} if new_account_groups is None else {"new_account_groups": list(new_account_groups)}
    nas, _ = NAS.objects.update_or_create(
        pk=nas_id,
        defaults={
            **extra,
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
    wanted = {normalize_email(email): name for email, name in mappings.items()}
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
QUICK_SYNC_DEADLINE = 3.0  # seconds for the whole quick sync: someone is waiting to sign in
QUICK_SYNC_MIN_GAP = timedelta(seconds=30)


def quick_sync(nas: NAS) -> bool:
    """One short on-demand sync before refusing a sign-in; True when it ran and succeeded.

    Skipped (False) when the NAS is disabled or has no service account, when any sync attempt of
    this NAS started less than 30 s ago (rate limit shared by every process through the database),
    or when a sync is already running (lock). The whole conversation with the NAS (discovery, login,
    listing, logout) has 3 s: a NAS that answers slowly, or drips its answer, is cut off at 3 s.
    """
    from django.utils import timezone

    from .sync import sync_nas

    if not nas.enabled or not has_service_account(nas):
        return False
    if _in_transaction():
        # The HTTP calls would hold the caller's transaction (and SQLite's write lock) open.
        log.warning("quick_sync of %s skipped: called inside a database transaction", nas.pk)
        return False
    now = timezone.now()
    recent = NAS.objects.filter(pk=nas.pk, last_attempt_at__gt=now - QUICK_SYNC_MIN_GAP).exists()
    if recent:
        return False
    result = sync_nas(nas.pk, trigger="sign-in", timeout=QUICK_SYNC_TIMEOUT, deadline=QUICK_SYNC_DEADLINE,
                      lock_wait=0)
    return result.ok


def _in_transaction() -> bool:
    """True inside an atomic block other than the ones Django's TestCase wraps each test in."""
    from django.db import connection

    return any(not getattr(block, "_from_testcase", False) for block in connection.atomic_blocks)


def housekeeping() -> dict[str, int]:
    """Synology's housekeeping job (registered with identityhub.housekeeping in SynologyConfig.ready):
    SyncRuns older than HUB_SYNCRUN_RETENTION_DAYS, and runs left "running" by a process that died."""
    from django.conf import settings
    from django.utils import timezone

    from .models import SyncRun
    from .sync import LOCK_TTL

    now = timezone.now()
    runs, _ = SyncRun.objects.filter(started__lt=now - timedelta(days=settings.HUB_SYNCRUN_RETENTION_DAYS)).delete()
    # A run still "running" long after the lock's TTL belongs to a process that died mid-sync.
    interrupted = SyncRun.objects.filter(
        outcome=SyncRun.Outcome.RUNNING, started__lt=now - timedelta(seconds=LOCK_TTL * 2)
    ).update(outcome=SyncRun.Outcome.ERROR, finished=now, message="interrupted (the process running it stopped)")
    return {"sync_runs": runs, "interrupted_runs": interrupted}


# --- test connection ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ConnectionReport:
    """What `test_connection` found. `message` is one human line, never a secret.

    `outcome`: ok | no_account | unreachable | auth_failed | error (the sync's outcomes, plus
    no_account for a NAS without a service account).
    """

    ok: bool
    dsm_version: str = ""
    message: str = ""
    outcome: str = ""


def has_service_account(nas: NAS) -> bool:
    """True when the NAS has both a service user name and a password. Never raises: a stored password
    the current keys cannot decrypt counts as set (the sync or the test then reports the key problem)."""
    if not nas.service_username:
        return False
    try:
        return bool(nas.service_password)
    except DecryptionError:
        return True


def test_connection(nas: NAS, *, timeout: Timeout = TEST_TIMEOUT, deadline: float = TEST_DEADLINE) -> ConnectionReport:
    """Log in with the NAS's service account, read the DSM version, check it may list users, log out.

    Never raises for a NAS-side fault (or a password the current keys cannot decrypt): the report
    says what went wrong, with DSM's error code and its meaning. No network call without a service
    account. Records an audit event (kind sync, reason test_connection). The report's message is in
    the active language (the console's); the audit trail keeps it in English.
    """
    password = ""
    try:
        password = nas.service_password or ""
        if not nas.service_username or not password:
            found = _Found(False, "", "no_account", _fixed(f"{nas.pk}: {NO_SERVICE_ACCOUNT}"))
        else:
            found = _test_signed_in(nas, password, timeout, deadline)
    except DecryptionError as error:
        found = _Found(False, "", "error", _fixed(f"{nas.pk}: {error}"))

    def line() -> str:
        message = _ASCII_SPACES.sub(" ", found.describe()).strip()  # keeps French no-break spaces
        if password and password in message:  # defence in depth: never show or store the secret
            message = message.replace(password, "***")
        return message

    with translation.override("en"):
        recorded = line()
    report = ConnectionReport(found.ok, found.dsm_version, line(), found.outcome)
    record_event("sync", reason="test_connection", nas_id=nas.pk, ok=report.ok, outcome=report.outcome,
                 dsm_version=report.dsm_version, message=recorded)
    return report


# pytest would collect a module-level `test_*` function imported into a test module.
test_connection.__test__ = False  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class _Found:
    """What a connection test found; `describe()` says it in the active language."""

    ok: bool
    dsm_version: str
    outcome: str
    describe: Callable[[], str]


def _fixed(text: str) -> Callable[[], str]:
    """A line that is the same in every language (DSM's and the sync's own English)."""
    return lambda: text


def _test_signed_in(nas: NAS, password: str, timeout: Timeout, deadline: float) -> _Found:
    version = ""
    try:
        with DSMClient(nas.base_url, nas.service_username, password, verify=nas.tls_verify, timeout=timeout,
                       deadline=deadline, session_name=TEST_SESSION) as dsm:
            version = dsm.dsm_version()
            total = dsm.count_users()
    except DSMError as error:
        where = f" ({version})" if version else ""
        return _Found(False, version, error.outcome, _fixed(f"{nas.pk}{where}: {error.outcome}: {error}"))

    def describe() -> str:
        accounts = ngettext("%(count)s local account", "%(count)s local accounts", total) % {"count": total}
        return gettext("%(nas)s: ok: %(version)s; signed in as %(user)s, who may list users (%(accounts)s)") % {
            "nas": nas.pk, "version": version or gettext("DSM version not reported"),
            "user": nas.service_username, "accounts": accounts,
        }

    return _Found(True, version, "ok", describe)


# --- sync now -------------------------------------------------------------------------------------
class SyncRefused(ValueError):
    """`request_sync` queued nothing; the message says why (fit to show as is, in the active language)."""


def request_sync(nas: NAS | str, *, trigger: str = "admin") -> str:
    """Queue one sync of the NAS to the worker (`synology.tasks.sync_nas`); return "Sync of ds923 queued".

    Raises SyncRefused, queuing nothing, when the NAS is disabled, has no service account, or the
    task queue cannot be reached. The outcome lands in the NAS's status and a SyncRun when it runs.
    """
    if isinstance(nas, str):
        found = NAS.objects.filter(pk=nas).first()
        if found is None:
            raise SyncRefused(gettext("unknown NAS %(nas)s") % {"nas": repr(nas)})
        nas = found
    if not nas.enabled:
        raise SyncRefused(gettext("%(nas)s is disabled: enable it to sync it") % {"nas": nas.pk})
    if not has_service_account(nas):
        raise SyncRefused(f"{nas.pk}: {NO_SERVICE_ACCOUNT}")
    from kombu.exceptions import OperationalError

    from .tasks import sync_nas as sync_task

    try:
        sync_task.apply_async((nas.pk, trigger), retry=False)
    except OperationalError as error:
        log.warning("sync of %s not queued: %s", nas.pk, error)
        raise SyncRefused(gettext("the sync of %(nas)s could not be queued: the task queue is unreachable")
                          % {"nas": nas.pk}) from None
    return gettext("Sync of %(nas)s queued") % {"nas": nas.pk}


# --- admin links ----------------------------------------------------------------------------------
def link_account(account: DSMAccount, user) -> DSMAccount:
    """Link a DSM account to a person by hand (an admin link the sync never overwrites), or hand it
    back to the sync with `user=None`. The caller has checked the person may own it."""
    account.user = user
    account.linked_by = DSMAccount.LinkedBy.ADMIN if user is not None else ""
    account.link_note = "" if user is not None else "admin link removed"
    account.save(update_fields=["user", "linked_by", "link_note"])
    record_event("admin_change", user=None, nas_id=account.nas_id, account=account.name,
                 linked_to=getattr(user, "email", ""))
    return account
