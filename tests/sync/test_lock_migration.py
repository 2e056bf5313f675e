"""synology 0002: a sync lock held across the upgrade keeps its holder and expiry as identityhub.Lock."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE = [("synology", "0001_initial"), ("identityhub", "0001_initial")]
AFTER = [("synology", "0002_move_sync_lock_to_hub_lock"), ("identityhub", "0002_lock")]


@pytest.mark.django_db(transaction=True)
def test_held_sync_locks_move_to_the_hub_lock_and_back():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    expires = timezone.now() + timedelta(minutes=10)
    old.get_model("synology", "SyncLock").objects.create(nas_id="ds923", holder="a" * 32, expires=expires)
    try:
        executor = MigrationExecutor(connection)
        executor.migrate(AFTER)
        new = executor.loader.project_state(AFTER).apps
        row = new.get_model("identityhub", "Lock").objects.get()
        assert (row.name, row.holder, row.expires) == ("sync:ds923", "a" * 32, expires)

        executor = MigrationExecutor(connection)
        executor.migrate(BEFORE)  # reversible
        back = executor.loader.project_state(BEFORE).apps.get_model("synology", "SyncLock").objects.get()
        assert (back.nas_id, back.holder, back.expires) == ("ds923", "a" * 32, expires)
        back.delete()
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
