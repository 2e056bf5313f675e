"""Optional apply at start: `HUB_CONFIG` set and `HUB_APPLY_ON_START=1` (called from identityhub/wsgi.py).

Several web processes may start at once; one applies at a time under a lock (a session advisory
lock on PostgreSQL, an exclusive file lock beside the database otherwise), and the ones that
follow find `No changes.`. The apply never prunes and never adopts: that stays an operator's
decision (`hub apply --prune/--adopt`). A broken file stops the process with the problems listed:
the operator asked for the file to be in force, so serving without it would be a silent lie.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from .apply import APPLY_LOCK_ID, apply_config
from .errors import ConfigError
from .load import load_config

log = logging.getLogger("identityhub.config")


def enabled() -> bool:
    return os.environ.get("HUB_APPLY_ON_START", "0").strip().lower() in {"1", "true", "yes", "on"}


@contextlib.contextmanager
def start_lock() -> Iterator[None]:
    """One starting process at a time, across processes."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [APPLY_LOCK_ID])
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [APPLY_LOCK_ID])
        return
    import fcntl

    lock_dir = Path(settings.VAR_DIR)
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / "config-apply.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file is closed, even if the process dies
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def apply_on_start() -> bool:
    """Apply HUB_CONFIG when asked to; True when an apply ran. Raises ImproperlyConfigured on problems."""
    if not enabled():
        return False
    file = settings.HUB_CONFIG
    if not file:
        raise ImproperlyConfigured("HUB_APPLY_ON_START=1 needs HUB_CONFIG")
    try:
        with start_lock():
            plan = apply_config(load_config(file), source="start")
    except ConfigError as error:
        for problem in error.problems:
            log.error("config: %s", problem)
        raise ImproperlyConfigured(f"HUB_CONFIG {file} was not applied:\n{error}") from None
    for line in plan.lines():
        log.info("config: %s", line)
    return True
