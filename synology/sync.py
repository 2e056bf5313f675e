"""The user sync: list a NAS's local accounts, reconcile them into DSMAccount, link them to people.

Two layers:

* :func:`reconcile` takes one complete, validated listing and makes the NAS's DSMAccount rows match
  it in one transaction with bulk writes and a fixed number of queries. Rows are never deleted:
  accounts missing from the listing are marked ``present=False`` and come back when they reappear.
* :func:`sync_nas` runs one attempt: lock, SyncRun row, DSM login / paged listing / logout (no
  database transaction is open during the HTTP calls), reconcile, status and next run time on the
  NAS (exponential backoff while it fails), audit event. A failed or partial listing changes no
  account.

Linking rules (applied to every row at every sync, so a mapping may name an account that appears
later): an ``admin`` link is never touched; an explicit AccountMapping wins; otherwise a present
account is linked to the active person whose email equals the account's email (case-insensitive,
compared in Python), only when exactly one present account on the NAS carries that email and the
person is not mapped explicitly or admin-linked to another account on that NAS.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import User, normalize_email
from identityhub.audit import record_event
from identityhub.crypto import DecryptionError
from identityhub.locks import sync_lock

from .dsm import DEFAULT_TIMEOUT, DSMBadResponse, DSMClient, DSMError, DSMUser, Timeout
from .models import NAS, AccountMapping, DSMAccount, SyncRun

log = logging.getLogger(__name__)

BACKOFF_BASE = timedelta(minutes=1)
CLAIM_LEASE = timedelta(minutes=10)  # sync_due pushes next_sync_at this far while a run is queued
LOCK_TTL = 15 * 60.0  # seconds; longer than any sync (SYNC_DEADLINE bounds the whole conversation)
SYNC_DEADLINE = 10 * 60.0  # seconds for a scheduled sync's whole conversation with the NAS
NO_SERVICE_ACCOUNT = "no service account: set its user name and password"
DISABLED = "enable it to sync it"  # summary: `ds923: disabled: enable it to sync it`
WRITE_BATCH = 1000

# Fields reconcile may change on an existing row (user is compared through user_id).
MUTABLE_FIELDS = ["uid", "email", "description", "expired", "present", "last_seen", "user", "linked_by", "link_note"]
NAME_MAX = DSMAccount._meta.get_field("name").max_length
EMAIL_MAX = DSMAccount._meta.get_field("email").max_length
DESCRIPTION_MAX = DSMAccount._meta.get_field("description").max_length
NOTE_MAX = DSMAccount._meta.get_field("link_note").max_length

Progress = Callable[[str], None]


@dataclass
class Counts:
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    absent: int = 0
    written: int = field(default=0, compare=False)  # rows inserted or updated

    def __str__(self) -> str:
        return f"new={self.new} changed={self.changed} unchanged={self.unchanged} absent={self.absent}"


@dataclass
class SyncResult:
    nas_id: str
    outcome: str  # ok | unreachable | auth_failed | error (recorded) | busy | disabled | skipped (not recorded)
    counts: Counts | None = None
    duration: float = 0.0
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome == SyncRun.Outcome.OK

    def summary(self) -> str:
        """The `hub sync` line: `ds923: ok new=3 changed=1 unchanged=9996 absent=0 1.84s`."""
        if self.ok:
            return f"{self.nas_id}: ok {self.counts} {self.duration:.2f}s"
        return f"{self.nas_id}: {self.outcome}: {self.message}"


# --- reconcile ----------------------------------------------------------------------------------
def validate_listing(users: Sequence[DSMUser]) -> list[DSMUser]:
    """Check a complete listing before anything is written; return it with over-long fields trimmed."""
    seen: set[str] = set()
    clean: list[DSMUser] = []
    for user in users:
        if not isinstance(user, DSMUser) or not isinstance(user.name, str) or not user.name.strip():
            raise DSMBadResponse("malformed user list: an entry has no name")
        if len(user.name) > NAME_MAX:
            raise DSMBadResponse(f"malformed user list: account name longer than {NAME_MAX} characters")
        if user.name in seen:
            raise DSMBadResponse(f"malformed user list: {user.name!r} is listed twice")
        seen.add(user.name)
        email = user.email if isinstance(user.email, str) and len(user.email) <= EMAIL_MAX else ""
        description = (user.description or "")[:DESCRIPTION_MAX]
        if email != user.email or description != user.description:
            user = DSMUser(user.name, email, description, bool(user.expired), user.uid)
        clean.append(user)
    return clean


def _state(row: DSMAccount) -> tuple:
    return tuple(row.user_id if f == "user" else getattr(row, f) for f in MUTABLE_FIELDS)


def _note(text: str) -> str:
    return text if len(text) <= NOTE_MAX else text[: NOTE_MAX - 1] + "…"


@transaction.atomic
def reconcile(nas: NAS, users: Sequence[DSMUser], *, now: datetime | None = None) -> Counts:
    """Make `nas`'s DSMAccount rows match one complete listing. Queries: 4 reads + batched writes.

    A repeated identical listing writes nothing. Raises DSMBadResponse (before writing) on a
    malformed listing.
    """
    listing = validate_listing(users)
    now = now or timezone.now()
    counts = Counts()

    rows = {row.name: row for row in DSMAccount.objects.select_for_update().filter(nas=nas)}
    before = {name: _state(row) for name, row in rows.items()}
    mappings = list(AccountMapping.objects.filter(nas=nas).values_list("email", "account_name"))
    active: dict[str, int] = {}
    for pk, email in User.objects.filter(is_active=True).values_list("pk", "email"):
        active[normalize_email(email)] = pk
    active_email_by_pk = {pk: email for email, pk in active.items()}
    previous_success = NAS.objects.filter(pk=nas.pk).values_list("last_success_at", flat=True).first()

    # 1. DSM-side fields.
    listed: set[str] = set()
    new_rows: list[DSMAccount] = []
    for user in listing:
        listed.add(user.name)
        row = rows.get(user.name)
        if row is None:
            row = DSMAccount(nas=nas, name=user.name, first_seen=now, last_seen=now, uid=user.uid)
            rows[user.name] = row
            new_rows.append(row)
        elif not row.present:
            row.present = True
            row.last_seen = now
        row.email = user.email
        row.description = user.description
        row.expired = bool(user.expired)
        if user.uid is not None:
            row.uid = user.uid
    for name, row in rows.items():
        if name not in listed and row.present:
            row.present = False
            # Unchanged present rows are not rewritten each sync (a repeated sync writes nothing), so
            # the last sighting of an account that vanishes is the previous successful listing.
            if previous_success and (row.last_seen is None or previous_success > row.last_seen):
                row.last_seen = previous_success

    # 2. Links.
    lower_names: dict[str, list[str]] = defaultdict(list)
    for name in rows:
        lower_names[name.lower()].append(name)
    mapped_to: dict[str, list[str]] = defaultdict(list)  # account name -> emails mapped to it
    mapping_of_email: dict[str, str] = {}
    for email, account_name in mappings:
        email = normalize_email(email)
        mapping_of_email[email] = account_name
        target = account_name if account_name in rows else None
        if target is None and len(lower_names.get(account_name.lower(), [])) == 1:
            target = lower_names[account_name.lower()][0]
        if target is not None:
            mapped_to[target].append(email)
    admin_users = {row.user_id for row in rows.values() if row.linked_by == DSMAccount.LinkedBy.ADMIN and row.user_id}
    present_by_email: dict[str, list[str]] = defaultdict(list)
    for row in rows.values():
        if row.present and normalize_email(row.email):
            present_by_email[normalize_email(row.email)].append(row.name)

    for row in rows.values():
        if row.linked_by == DSMAccount.LinkedBy.ADMIN and row.user_id:
            continue  # an admin's decision is never overwritten
        user_id, how, note = _desired_link(
            row, mapped_to, mapping_of_email, active, active_email_by_pk, admin_users, present_by_email
        )
        row.user_id, row.linked_by, row.link_note = user_id, how, _note(note)

    # 3. Bulk writes of what differs.
    changed_rows = []
    for name, row in rows.items():
        if name not in before:
            continue
        differs = _state(row) != before[name]
        if name in listed:
            if differs:
                counts.changed += 1
            else:
                counts.unchanged += 1
        else:
            counts.absent += 1
        if differs:
            changed_rows.append(row)
    counts.new = len(new_rows)
    if new_rows:
        DSMAccount.objects.bulk_create(new_rows, batch_size=WRITE_BATCH)
    if changed_rows:
        DSMAccount.objects.bulk_update(changed_rows, MUTABLE_FIELDS, batch_size=WRITE_BATCH)
    counts.written = len(new_rows) + len(changed_rows)
    return counts


def _desired_link(
    row: DSMAccount,
    mapped_to: dict[str, list[str]],
    mapping_of_email: dict[str, str],
    active: dict[str, int],
    active_email_by_pk: dict[int, str],
    admin_users: set[int],
    present_by_email: dict[str, list[str]],
) -> tuple[int | None, str, str]:
    """(user_id, linked_by, link_note) for one row that carries no admin link."""
    if row.name in mapped_to:
        emails = sorted(mapped_to[row.name])
        if len(emails) > 1:
            return None, "", f"several explicit mappings name this account ({', '.join(emails)}): linked to none"
        if emails[0] in active:
            return active[emails[0]], DSMAccount.LinkedBy.EXPLICIT, ""
        return None, "", f"mapped to {emails[0]}, but no active person has that email"

    email = normalize_email(row.email)
    if not row.present:
        # Absent accounts keep a still-valid email link (claims ignore absent accounts anyway) but
        # gain no new one; when they come back, the present-account rules apply again.
        keep = (
            row.linked_by == DSMAccount.LinkedBy.EMAIL
            and row.user_id is not None
            and active_email_by_pk.get(row.user_id) == email
            and email not in mapping_of_email
            and row.user_id not in admin_users
        )
        if keep:
            return row.user_id, DSMAccount.LinkedBy.EMAIL, ""
        return None, "", row.link_note if row.user_id is None and not row.linked_by else ""
    if not email:
        return None, "", "no email on the NAS"
    sharing = present_by_email.get(email, [])
    if len(sharing) > 1:
        names = ", ".join(sorted(sharing))
        return None, "", f"{email} is on several DSM accounts ({names}): linked to none; add an explicit mapping"
    if email in mapping_of_email:
        return None, "", f"{email} is mapped explicitly to account {mapping_of_email[email]!r}"
    user_id = active.get(email)
    if user_id is None:
        return None, "", f"no active person with email {email}"
    if user_id in admin_users:
        return None, "", f"{email} is linked by an admin to another account"
    return user_id, DSMAccount.LinkedBy.EMAIL, ""


# --- one sync attempt ----------------------------------------------------------------------------
def retry_delay(failures: int, interval: timedelta) -> timedelta:
    """Backoff after `failures` consecutive failures: 1, 2, 4, 8 ... minutes, capped at the interval."""
    if failures <= 0:
        return interval
    return min(interval, BACKOFF_BASE * (2 ** min(failures - 1, 30)))


def sync_nas(
    nas: NAS | str,
    *,
    trigger: str = "schedule",
    timeout: Timeout = DEFAULT_TIMEOUT,
    deadline: float = SYNC_DEADLINE,
    progress: Progress | None = None,
    lock_wait: float = 0.0,
    page_size: int | None = None,
) -> SyncResult:
    """One sync attempt of one NAS, under its lock. Never raises for NAS faults: see the outcome.

    Returns outcome ``busy`` (and records nothing) when another sync of this NAS holds the lock, and
    ``disabled`` (records nothing, no network call) for a disabled NAS. A NAS without a service account
    is a recorded ``error`` (no network call), retried after a full interval like a wrong password.
    """
    nas_id = nas if isinstance(nas, str) else nas.pk
    lock = sync_lock(nas_id, ttl=LOCK_TTL)
    if not lock.acquire(wait=lock_wait):
        return SyncResult(nas_id, "busy", message=f"another sync of {nas_id} is running")
    try:
        # The password is decrypted on first use, inside the attempt: a key that no longer decrypts
        # it is a recorded failure, not a crash of the worker or of `hub sync`.
        fresh = NAS.objects.select_related("household").defer("service_password").get(pk=nas_id)
        if not fresh.enabled:
            return SyncResult(nas_id, "disabled", message=DISABLED)
        return _sync_locked(fresh, trigger=trigger, timeout=timeout, deadline=deadline, progress=progress,
                            page_size=page_size)
    finally:
        lock.release()


def _sync_locked(
    nas: NAS, *, trigger: str, timeout: Timeout, deadline: float, progress: Progress | None, page_size: int | None
) -> SyncResult:
    started = timezone.now()
    clock = time.monotonic()
    NAS.objects.filter(pk=nas.pk).update(last_attempt_at=started)
    run = SyncRun.objects.create(nas=nas, started=started, trigger=trigger)
    counts: Counts | None = None
    password = ""
    config_error = False
    try:
        password = nas.service_password or ""
        if not nas.service_username or not password:
            raise _ConfigError(NO_SERVICE_ACCOUNT)
        kwargs = {"page_size": page_size} if page_size else {}
        with DSMClient(
            nas.base_url,
            nas.service_username,
            password,
            verify=nas.tls_verify,
            timeout=timeout,
            deadline=deadline,
            progress=progress,
            **kwargs,
        ) as dsm:
            users = dsm.list_users()
        # Logged out by now: the database work below holds no HTTP call.
        if progress:
            progress(f"reconciling {len(users)} accounts")
        counts = reconcile(nas, users, now=started)
        outcome, message = SyncRun.Outcome.OK, ""
    except DSMError as error:
        outcome, message = error.outcome, str(error)
    except _ConfigError as error:
        outcome, message, config_error = SyncRun.Outcome.ERROR, str(error), True
    except DecryptionError as error:
        outcome, message = SyncRun.Outcome.ERROR, str(error)
    except Exception as error:  # a bug or a database fault: record it, keep the worker alive
        log.exception("sync of %s failed", nas.pk)
        outcome, message = SyncRun.Outcome.ERROR, f"internal error: {type(error).__name__}: {error}"
    if password and password in message:  # defence in depth: never store or print the secret
        message = message.replace(password, "***")
    message = " ".join(message.split())  # one line: `hub sync` prints one line per NAS (DB errors span several)
    duration = time.monotonic() - clock
    result = SyncResult(nas.pk, str(outcome), counts, duration, message[:2000])
    _finish(nas, run, result, wait_full_interval=config_error)
    return result


class _ConfigError(Exception):
    """The NAS itself is not set up to be synced (no service account): nothing to retry soon."""


@transaction.atomic
def _finish(nas: NAS, run: SyncRun, result: SyncResult, *, wait_full_interval: bool = False) -> None:
    """Record the attempt: SyncRun, NAS status and next run time, audit event."""
    now = timezone.now()
    counts = result.counts or Counts()
    run.finished = now
    run.outcome = result.outcome
    run.new, run.changed, run.unchanged, run.absent = counts.new, counts.changed, counts.unchanged, counts.absent
    run.duration_ms = int(result.duration * 1000)
    run.message = result.message if not result.ok else str(counts)
    run.save()

    current = NAS.objects.select_for_update().defer("service_password").get(pk=nas.pk)
    current.last_status = result.outcome
    if result.ok:
        current.last_message = str(counts)
        current.last_success_at = now
        current.failing_since = None
        current.consecutive_failures = 0
        current.next_sync_at = now + current.sync_interval
    else:
        current.last_message = result.message
        current.consecutive_failures += 1
        if current.failing_since is None:
            current.failing_since = run.started
        if result.outcome == SyncRun.Outcome.AUTH_FAILED or wait_full_interval:
            # Retrying a wrong password soon only gets the hub's IP blocked (DSM error 407); a NAS
            # without a service account stays so until someone sets one.
            current.next_sync_at = now + current.sync_interval
        else:
            current.next_sync_at = now + retry_delay(current.consecutive_failures, current.sync_interval)
    current.save(
        update_fields=[
            "last_status", "last_message", "last_success_at", "failing_since", "consecutive_failures", "next_sync_at"
        ]
    )
    record_event(
        "sync",
        nas_id=nas.pk,
        outcome=result.outcome,
        trigger=run.trigger,
        new=counts.new,
        changed=counts.changed,
        unchanged=counts.unchanged,
        absent=counts.absent,
        duration_ms=run.duration_ms,
        message=result.message,
    )


# --- scheduling -----------------------------------------------------------------------------------
def due_filter(now: datetime) -> Q:
    return Q(enabled=True) & (Q(next_sync_at__isnull=True) | Q(next_sync_at__lte=now))


def claim_due_nases(now: datetime | None = None) -> list[str]:
    """NAS ids whose sync is due; each is claimed by moving next_sync_at a lease ahead (compare-and-set),
    so the next beat tick does not queue it again while its run waits in the queue."""
    now = now or timezone.now()
    claimed = []
    for nas_id, interval in NAS.objects.filter(due_filter(now)).values_list("pk", "sync_interval"):
        lease = now + min(interval, CLAIM_LEASE)
        if NAS.objects.filter(due_filter(now), pk=nas_id).update(next_sync_at=lease):
            claimed.append(nas_id)
    return claimed
