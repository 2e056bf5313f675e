"""Cross-process locks with a time-to-live: Redis when REDIS_URL is set, else a database row.

The database flavour is a compare-and-set on the hub-wide ``identityhub.Lock`` (SQLite has no SELECT
... FOR UPDATE): take the row when it is missing or expired, release it only while still the holder. Each
step is one short statement; no transaction is held while the lock is held, so callers may do slow
work (HTTP calls) under the lock.

    lock = sync_lock("ds923", ttl=900)
    if lock.acquire(wait=0):
        try: ...
        finally: lock.release()
"""

from __future__ import annotations

import contextlib
import time
import uuid
from datetime import timedelta
from functools import cache
from types import TracebackType
from typing import Protocol

from django.conf import settings
from django.db import IntegrityError, OperationalError, transaction
from django.utils import timezone

from .models import Lock as LockRow


class LockBusy(Exception):
    """The lock is held by someone else."""


class Lock(Protocol):
    key: str

    def acquire(self, wait: float = 0.0) -> bool: ...
    def release(self) -> None: ...
    def extend(self) -> bool: ...


class _LockBase:
    key: str
    ttl: float

    def acquire(self, wait: float = 0.0) -> bool:
        deadline = time.monotonic() + wait
        while True:
            if self._try_acquire():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))

    def _try_acquire(self) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def release(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def extend(self) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def __enter__(self):
        if not self.acquire():
            raise LockBusy(self.key)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


NAME_MAX = LockRow._meta.get_field("name").max_length


class DatabaseLock(_LockBase):
    """An ``identityhub.Lock`` row: (name, holder token, expiry)."""

    def __init__(self, key: str, ttl: float) -> None:
        if len(key) > NAME_MAX:
            raise ValueError(f"lock name longer than {NAME_MAX} characters: {key[:40]!r}…")
        self.key = key
        self.ttl = ttl
        self.token = uuid.uuid4().hex

    def _try_acquire(self) -> bool:
        now = timezone.now()
        expires = now + timedelta(seconds=self.ttl)
        try:
            # Take over an expired row (compare-and-set on the expiry) ...
            if LockRow.objects.filter(name=self.key, expires__lt=now).update(holder=self.token, expires=expires):
                return True
            # ... or create the row; the primary key makes exactly one creator win.
            with transaction.atomic():
                LockRow.objects.create(name=self.key, holder=self.token, expires=expires)
        except IntegrityError:
            return False
        except OperationalError:  # SQLite: another writer holds the database past the busy timeout
            return False
        return True

    def extend(self) -> bool:
        expires = timezone.now() + timedelta(seconds=self.ttl)
        return bool(LockRow.objects.filter(name=self.key, holder=self.token).update(expires=expires))

    def release(self) -> None:
        LockRow.objects.filter(name=self.key, holder=self.token).delete()


@cache
def _redis(url: str):
    import redis

    return redis.Redis.from_url(url)


class RedisLock(_LockBase):
    """``redis-py``'s Lock (SET NX PX with a token; release and extend check the token)."""

    def __init__(self, key: str, ttl: float, url: str) -> None:
        self.key = key
        self.ttl = ttl
        self._lock = _redis(url).lock(f"identityhub:{_database_name()}:lock:{key}", timeout=ttl, blocking=False)

    def _try_acquire(self) -> bool:
        return bool(self._lock.acquire(blocking=False))

    def extend(self) -> bool:
        from redis.exceptions import LockError

        try:
            return bool(self._lock.reacquire())
        except LockError:
            return False

    def release(self) -> None:
        from redis.exceptions import LockError

        with contextlib.suppress(LockError):  # expired or taken over meanwhile: nothing of ours to release
            self._lock.release()


def _database_name() -> str:
    """Locks guard rows of one database: hubs (or parallel test runs) sharing a Redis never collide."""
    from django.db import connection

    return str(connection.settings_dict["NAME"]).rsplit("/", 1)[-1]


def named_lock(name: str, ttl: float = 900.0) -> DatabaseLock | RedisLock:
    """A cross-process lock called `name`: Redis when REDIS_URL is set, else an identityhub.Lock row."""
    if settings.REDIS_URL:
        return RedisLock(name, ttl, settings.REDIS_URL)
    return DatabaseLock(name, ttl)


def sync_lock(nas_id: str, ttl: float = 900.0) -> DatabaseLock | RedisLock:
    """The one-sync-per-NAS lock (``sync:<nas id>``, the same name in Redis and in the database)."""
    return named_lock(f"sync:{nas_id}", ttl)
