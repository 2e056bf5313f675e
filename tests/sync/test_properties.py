"""Property test: any sequence of listings and faults, synced over HTTP through the fake DSM, leaves no
account lost, applies no faulty listing, and never links an account to the wrong person."""

from __future__ import annotations

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import User
from synology.models import AccountMapping, DSMAccount
from synology.sync import sync_nas

from .conftest import accounts_snapshot

NAMES = ["alice", "Bob.B", "carol", "dave", "Eve"]
EMAILS = ["p1@example.com", "P1@Example.COM", "p2@example.com", "", "p3@example.com", "p4@example.com"]
PEOPLE = {"p1@example.com": True, "p2@example.com": True, "p3@example.com": False}  # email -> active
FAULTS = [
    ("stop", {}),
    ("sleep", {"api": "SYNO.Core.User", "seconds": 2}),
    ("http500", {"api": "SYNO.Core.User", "page": 1}),
    ("nonjson", {"api": "SYNO.Core.User"}),
    ("malformed", {"api": "SYNO.Core.User"}),
    ("code", {"api": "SYNO.Core.User", "page": 1, "code": 117}),
    ("expire_session", {"api": "SYNO.Core.User"}),
    ("code", {"method": "login", "code": 400}),
]

user_entry = st.tuples(st.sampled_from(EMAILS), st.sampled_from(["", "x", "y"]), st.booleans())
listing = st.dictionaries(st.sampled_from(NAMES), user_entry, max_size=len(NAMES))
step = st.one_of(
    st.tuples(st.just("ok"), listing, st.just(None)),
    st.tuples(st.just("fault"), listing, st.sampled_from(range(len(FAULTS)))),
)
mappings = st.dictionaries(st.sampled_from(["p1@example.com", "p2@example.com", "p3@example.com", "p9@x.org"]),
                           st.sampled_from([*NAMES, "zed"]), max_size=3)


def check_links(nas, people_by_pk, maps, admin_link):
    rows = list(DSMAccount.objects.filter(nas=nas))
    present_emails = [r.email.strip().lower() for r in rows if r.present and r.email.strip()]
    for row in rows:
        if row.user_id is None:
            continue
        email, active = people_by_pk[row.user_id]
        if row.linked_by == "admin":
            assert admin_link == (row.name, row.user_id)
            continue
        assert active, f"{row.name} linked to inactive {email}"
        if row.linked_by == "explicit":
            assert maps.get(email) == row.name, f"{row.name} explicitly linked to {email} without a mapping"
        else:
            assert row.linked_by == "email"
            assert row.email.strip().lower() == email, f"{row.name} email-linked to {email}"
            assert email not in maps
            if row.present:
                assert present_emails.count(email) == 1, f"{row.name} linked though {email} is ambiguous"


@pytest.mark.django_db
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, min_size=1, max_size=5), maps=mappings, admin=st.booleans())
def test_any_sequence_of_listings_and_faults(nas_ds923, fake_dsm, steps, maps, admin):
    with transaction.atomic():
        _run(nas_ds923, fake_dsm, steps, maps, admin)
        transaction.set_rollback(True)
    fake_dsm.clear_faults()
    fake_dsm._wake.set()
    if fake_dsm._server is None:
        fake_dsm._wake.clear()
        fake_dsm.start()


def _run(nas, fake, steps, maps, admin):
    people = {User.objects.create_user(e, is_active=a).pk: (e, a) for e, a in PEOPLE.items()}
    for email, name in maps.items():
        AccountMapping.objects.create(nas=nas, email=email, account_name=name)
    admin_link = None
    fake._wake.clear()
    known: dict[str, tuple] = {}
    present: set[str] = set()
    for kind, users, fault in steps:
        fake.clear_faults()
        fake.set_users([
            {"name": n, "email": e, "description": d, "expired": "now" if x else "normal"}
            for n, (e, d, x) in users.items()
        ])
        before = accounts_snapshot(nas)
        if kind == "fault" and FAULTS[fault][1].get("page", 0) * 2 >= max(len(users), 1):
            kind = "ok"  # a fault on page 2 of a one-page listing never fires
        if kind == "fault":
            fkind, kwargs = FAULTS[fault]
            if fkind == "stop":
                fake.stop()
            else:
                fake.fault(fkind, **kwargs)
        result = sync_nas(nas.pk, timeout=(0.3, 0.3), page_size=2)
        if fake._server is None:
            fake._wake.clear()
            fake.start()  # same port: the NAS woke up
        fake._wake.set()
        fake._wake.clear()
        if kind == "fault":
            assert not result.ok
            assert accounts_snapshot(nas) == before, "a faulty listing changed accounts"
        else:
            assert result.ok, result.message
            known.update({n: (e.strip(), d, x) for n, (e, d, x) in users.items()})
            present = set(users)
        rows = {r.name: r for r in DSMAccount.objects.filter(nas=nas)}
        assert set(rows) == set(known), "an account was lost or invented"
        for name, row in rows.items():
            assert row.present == (name in present)
            if name in present:
                assert (row.email, row.description, row.expired) == known[name]
        if admin and admin_link is None and rows:
            name = sorted(rows)[0]
            p2 = next(pk for pk, (e, _) in people.items() if e == "p2@example.com")
            DSMAccount.objects.filter(nas=nas, name=name).update(user_id=p2, linked_by="admin")
            admin_link = (name, p2)
        check_links(nas, people, {e.lower(): n for e, n in maps.items()}, admin_link)
