"""One sync per NAS at a time (two concurrent syncs), the database lock, and the Celery tasks."""

from __future__ import annotations

import os
import threading
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from identityhub.locks import DatabaseLock, sync_lock
from identityhub.models import Lock
from synology.models import NAS, DSMAccount, SyncRun


def _in_thread(fn, results, index):
    try:
        results[index] = fn()
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_syncs_of_one_nas_run_once(nas_ds923, fake_dsm):
    from synology.sync import sync_nas

    for i in range(20):
        fake_dsm.add_user(f"u{i}")
    fake_dsm.fault("sleep", api="SYNO.Core.User", seconds=0.6, times=1)  # keep the first sync busy
    results: list = [None, None]
    threads = [
        threading.Thread(target=_in_thread, args=(lambda: sync_nas("ds923", timeout=(2, 2)), results, i))
        for i in range(2)
    ]
    for t in threads:
        t.start()
        time.sleep(0.1)
    for t in threads:
        t.join(10)
    outcomes = sorted(r.outcome for r in results)
    assert outcomes == ["busy", "ok"], [r.summary() for r in results]
    assert fake_dsm.logins == 1
    assert SyncRun.objects.count() == 1 and DSMAccount.objects.count() == 20
    assert not Lock.objects.exists()  # released (database flavour) / never used (Redis flavour)


@pytest.mark.django_db(transaction=True)
def test_lock_blocks_a_second_holder_until_released():
    first, second = sync_lock("nas-x", ttl=30), sync_lock("nas-x", ttl=30)
    assert first.acquire()
    assert not second.acquire()
    started = time.monotonic()
    assert not second.acquire(wait=0.3)
    assert time.monotonic() - started >= 0.3
    first.release()
    assert second.acquire()
    second.release()
    other = sync_lock("nas-y", ttl=30)
    assert other.acquire()
    other.release()


@pytest.mark.django_db(transaction=True)
def test_database_lock_compare_and_set_and_ttl():
    a, b = DatabaseLock("nas-z", ttl=30), DatabaseLock("nas-z", ttl=30)
    assert a.acquire() and not b.acquire()
    b.release()  # not the holder: releases nothing
    assert Lock.objects.get(name="nas-z").holder == a.token
    Lock.objects.filter(name="nas-z").update(expires=timezone.now() - timedelta(seconds=1))  # holder died
    assert b.acquire()
    assert not a.extend()  # a lost it
    a.release()  # and cannot release b's lock
    assert Lock.objects.get(name="nas-z").holder == b.token
    assert b.extend()
    b.release()
    assert not Lock.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_sync_lock_is_a_named_hub_lock(nas_ds923):
    """The database flavour names the row `sync:<nas>`, as the Redis key; any other name is independent."""
    from identityhub.locks import named_lock

    if settings.REDIS_URL:
        pytest.skip("the database flavour only")
    lock = sync_lock("ds923", ttl=30)
    assert lock.acquire()
    row = Lock.objects.get()
    assert row.name == "sync:ds923" and row.holder == lock.token
    assert str(row).startswith("lock sync:ds923 until ")
    other = named_lock("config-apply", ttl=30)
    assert other.acquire()
    other.release()
    from synology.sync import sync_nas

    assert sync_nas("ds923").outcome == "busy"  # the sync honours the row
    lock.release()
    with pytest.raises(ValueError, match="longer than 150"):
        DatabaseLock("x" * 151, ttl=1)


@pytest.mark.django_db(transaction=True)
def test_database_lock_race_has_one_winner():
    winners = []
    barrier = threading.Barrier(4)

    def contend():
        lock = DatabaseLock("race", ttl=30)
        barrier.wait()
        if lock.acquire():
            winners.append(lock)

    threads = [threading.Thread(target=_in_thread, args=(contend, [None] * 4, i)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(winners) == 1




@pytest.mark.django_db
def test_beat_schedule_and_eager_tasks(nas_ds923, fake_dsm, eager_celery):
    from synology import tasks

    schedule = settings.CELERY_BEAT_SCHEDULE
    assert schedule["sync-due"]["task"] == "synology.tasks.sync_due" and schedule["sync-due"]["schedule"] == 60.0
    assert schedule["housekeeping"]["task"] == "identityhub.tasks.housekeeping"  # the hub-wide runner
    eager_celery.loader.import_default_modules()  # what a worker does at start: autodiscovery
    assert set(eager_celery.tasks) >= {"synology.tasks.sync_due", "synology.tasks.sync_nas",
                                       "synology.tasks.housekeeping", "identityhub.tasks.housekeeping"}
    fake_dsm.add_user("u1")
    NAS.objects.filter(pk="ds923").update(next_sync_at=None)
    assert tasks.sync_due.delay().get() == ["ds923"]
    assert DSMAccount.objects.filter(nas_id="ds923").count() == 1
    assert NAS.objects.get(pk="ds923").next_sync_at > timezone.now() + timedelta(minutes=59)
    assert tasks.sync_due.delay().get() == []  # not due any more
    assert tasks.sync_nas.delay("gone").get() == "skipped"
    NAS.objects.filter(pk="ds923").update(enabled=False)  # switched off after the sync was queued
    runs = SyncRun.objects.count()
    assert tasks.sync_nas.delay("ds923", "admin").get() == "disabled"
    assert SyncRun.objects.count() == runs
    assert tasks.housekeeping.delay().get()["sync_runs"] == 0
    # The hub-wide task and its synology alias (the current beat entry) run the same jobs.
    hub_wide = eager_celery.tasks["identityhub.tasks.housekeeping"].delay().get()
    assert hub_wide == tasks.housekeeping.delay().get()
    assert set(hub_wide) == {"audit_events", "redeemed_codes", "client_sessions", "sync_runs", "interrupted_runs",
                             "expired_sessions", "sign_in_leftovers"}


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL: runs a real Celery worker on Redis")
@pytest.mark.django_db(transaction=True)
def test_real_worker_on_redis(nas_ds923, fake_dsm):
    from celery.contrib.testing.worker import start_worker

    from identityhub.celery import app
    from synology import tasks

    assert app.conf.broker_url.startswith("redis://")
    fake_dsm.add_user("from-worker", email="w@example.com")
    NAS.objects.filter(pk="ds923").update(next_sync_at=None)
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        tasks.sync_due.delay()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not SyncRun.objects.exclude(outcome="running").exists():
            time.sleep(0.1)
    run = SyncRun.objects.get()
    assert run.outcome == "ok" and run.trigger == "schedule"
    assert DSMAccount.objects.filter(name="from-worker").exists()
