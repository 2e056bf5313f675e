"""Benchmark: sync 10,000 DSM users of one NAS from the HTTP fake (tests/fakes/dsm.py).

    .venv/bin/python bench/sync_users.py            # scratch SQLite under var/bench/
    DATABASE_URL=postgres://... .venv/bin/python bench/sync_users.py

Runs a first sync, a repeated unchanged sync (must write no DSMAccount row), and a sync with 1% of
the accounts changed; prints wall time, SQL statements by kind and rows written for each.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "identityhub.settings")
os.environ.setdefault("HUB_DEBUG", "1")
os.environ.setdefault("HUB_LOG_LEVEL", "WARNING")
if not os.environ.get("DATABASE_URL"):
    scratch = ROOT / "var" / "bench" / "sync.sqlite3"
    scratch.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{scratch}{suffix}").unlink(missing_ok=True)
    os.environ["DATABASE_URL"] = f"sqlite:///{scratch}"

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from accounts.models import Household, User  # noqa: E402
from synology.models import NAS, AccountMapping, DSMAccount  # noqa: E402
from synology.services import declare_nas  # noqa: E402
from synology.sync import sync_nas  # noqa: E402
from tests.fakes.dsm import FakeDSM  # noqa: E402

PASSWORD = "bench-Pa55word-not-secret"


class StatementCounter:
    """connection.execute_wrapper: counts statements by kind and those that write DSMAccount."""

    def __init__(self) -> None:
        self.kinds: Counter[str] = Counter()
        self.account_writes = 0

    def __call__(self, execute, sql, params, many, context):
        kind = sql.lstrip().split(None, 1)[0].upper()
        self.kinds[kind] += 1
        if kind in ("INSERT", "UPDATE", "DELETE") and "synology_dsmaccount" in sql:
            self.account_writes += 1
        return execute(sql, params, many, context)


def run(label: str, nas_id: str) -> None:
    counter = StatementCounter()
    started = time.perf_counter()
    with connection.execute_wrapper(counter):
        result = sync_nas(nas_id, trigger="manual")
    wall = time.perf_counter() - started
    assert result.ok, result.summary()
    c = result.counts
    kinds = " ".join(f"{k}={v}" for k, v in sorted(counter.kinds.items()))
    print(f"{label:<22} {wall:6.2f}s  statements={sum(counter.kinds.values()):<4} ({kinds})")
    print(f"{'':<22} {c}  DSMAccount rows written={c.written}  DSMAccount write statements={counter.account_writes}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--people", type=int, default=200, help="hub people whose email matches a DSM account")
    args = parser.parse_args()

    call_command("migrate", verbosity=0, interactive=False)
    NAS.objects.filter(pk="bench").delete()
    User.objects.filter(email__endswith="@bench.example").delete()
    household, _ = Household.objects.get_or_create(id="bench", defaults={"name": "Bench"})

    fake = FakeDSM("dsm7", csrf=True)
    fake.accounts = {"hub-sync": fake.accounts["hub-sync"]}
    fake.accounts["hub-sync"].password = PASSWORD
    for i in range(args.users):
        fake.add_user(f"User.{i:05d}", email=f"user{i}@bench.example" if i % 4 else "", description=f"user {i}")
    User.objects.bulk_create([User(email=f"user{i}@bench.example", name=f"U{i}") for i in range(1, args.people * 4, 4)])
    with fake:
        declare_nas("bench", household=household, base_url=fake.url, service_username="hub-sync",
                    service_password=PASSWORD)
        AccountMapping.objects.create(nas_id="bench", email="user5@bench.example", account_name="User.00002")
        vendor = connection.vendor
        print(f"database: {vendor} ({connection.settings_dict['NAME']}), {args.users} DSM users, page size 1000")
        run("first sync", "bench")
        run("unchanged sync", "bench")
        for i in range(0, args.users, 100):  # 1%: description edits, plus a few e-mails and removals
            fake.users[i]["description"] += " (edited)"
        removed = fake.users.pop(1)
        fake.users[3]["email"] = "moved@bench.example"
        run("1% changed sync", "bench")
        linked = DSMAccount.objects.filter(nas_id="bench", user__isnull=False).count()
        print(f"linked accounts: {linked}; absent: {removed['name']}; open DSM sessions: {len(fake.open_sessions)}")
        assert not fake.open_sessions


if __name__ == "__main__":
    main()
