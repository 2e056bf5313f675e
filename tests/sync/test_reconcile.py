"""synology.sync.reconcile: counts, absence, linking rules, bulk writes, bounded queries."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from synology.dsm import DSMBadResponse, DSMUser
from synology.models import AccountMapping, DSMAccount
from synology.sync import reconcile

from .conftest import accounts_snapshot

pytestmark = pytest.mark.django_db


def U(name, email="", description="", expired=False, uid=None):  # noqa: N802
    return DSMUser(name, email, description, expired, uid)


def acct(nas, name) -> DSMAccount:
    return DSMAccount.objects.get(nas=nas, name=name)


def writes(queries) -> list[str]:
    return [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))]


def test_counts_new_changed_unchanged_absent(nas_ds923):
    c = reconcile(nas_ds923, [U("a", "a@x.org"), U("b"), U("c")])
    assert (c.new, c.changed, c.unchanged, c.absent) == (3, 0, 0, 0)
    c = reconcile(nas_ds923, [U("a", "a2@x.org"), U("b"), U("d")])
    assert (c.new, c.changed, c.unchanged, c.absent) == (1, 1, 1, 1)
    assert str(c) == "new=1 changed=1 unchanged=1 absent=1"


def test_absent_accounts_are_kept_and_come_back(nas_ds923, make_person):
    mael = make_person("mael@example.com")
    reconcile(nas_ds923, [U("Mael.Valais", "mael@example.com", uid=1026), U("b")])
    first_seen = acct(nas_ds923, "Mael.Valais").first_seen
    reconcile(nas_ds923, [U("b")])
    gone = acct(nas_ds923, "Mael.Valais")
    assert gone.present is False and gone.user == mael  # kept, link kept, claims ignore absent accounts
    c = reconcile(nas_ds923, [U("b"), U("Mael.Valais", "mael@example.com")])
    back = acct(nas_ds923, "Mael.Valais")
    assert back.present and back.user == mael and back.uid == 1026 and back.first_seen == first_seen
    assert (c.new, c.changed, c.unchanged, c.absent) == (0, 1, 1, 0)
    assert DSMAccount.objects.filter(nas=nas_ds923).count() == 2


def test_names_kept_exactly_and_uid_optional(nas_ds923):
    reconcile(nas_ds923, [U("MiXed.Case", uid=None), U("other", uid=1030)])
    assert acct(nas_ds923, "MiXed.Case").uid is None
    reconcile(nas_ds923, [U("MiXed.Case"), U("other")])  # a listing without uid keeps the known one
    assert acct(nas_ds923, "other").uid == 1030


def test_email_links_case_insensitive_for_ascii_letters_only(nas_ds923, make_person):
    """Issue 9 item 8: ASCII letters fold, nothing else does (a KELVIN SIGN is not a "k")."""
    elodie = make_person("élodie@example.com")
    make_person("kate@example.com")
    reconcile(nas_ds923, [U("elodie", "éLODIE@Example.COM "), U("kelvin", "\u212aATE@example.com"),
                          U("elodie2", "ÉLODIE@example.com")])
    row = acct(nas_ds923, "elodie")
    assert row.user == elodie and row.linked_by == "email" and row.link_note == ""
    assert acct(nas_ds923, "kelvin").user is None
    assert acct(nas_ds923, "elodie2").user is None


def test_inactive_or_unknown_people_are_not_linked(nas_ds923, make_person):
    make_person("gone@example.com", active=False)
    reconcile(nas_ds923, [U("gone", "gone@example.com"), U("stranger", "who@example.com"), U("noemail")])
    assert acct(nas_ds923, "gone").user is None
    assert "no active person" in acct(nas_ds923, "gone").link_note
    assert acct(nas_ds923, "stranger").user is None
    assert acct(nas_ds923, "noemail").link_note == "no email on the NAS"


def test_two_accounts_with_one_email_link_neither(nas_ds923, make_person):
    mum = make_person("mum@example.com")
    reconcile(nas_ds923, [U("maman", "mum@example.com"), U("mum2", "MUM@example.com")])
    for name in ("maman", "mum2"):
        row = acct(nas_ds923, name)
        assert row.user is None and "several DSM accounts" in row.link_note and "maman, mum2" in row.link_note
    reconcile(nas_ds923, [U("maman", "mum@example.com")])  # the duplicate left: link again
    assert acct(nas_ds923, "maman").user == mum
    assert acct(nas_ds923, "mum2").user is None


def test_mapping_before_the_account_exists_links_when_it_appears(nas_ds923, make_person):
    mum = make_person("mum@example.com")
    AccountMapping.objects.create(nas=nas_ds923, email="Mum@Example.com", account_name="maman")
    reconcile(nas_ds923, [U("other")])
    reconcile(nas_ds923, [U("other"), U("maman", "")])
    row = acct(nas_ds923, "maman")
    assert row.user == mum and row.linked_by == "explicit"


def test_mapping_wins_over_email_and_blocks_a_second_email_link(nas_ds923, make_person):
    mum, dad = make_person("mum@example.com"), make_person("dad@example.com")
    AccountMapping.objects.create(nas=nas_ds923, email="mum@example.com", account_name="maman")
    # `maman` carries dad's email, `mum.old` carries mum's: the mapping decides both.
    reconcile(nas_ds923, [U("maman", "dad@example.com"), U("mum.old", "mum@example.com")])
    assert acct(nas_ds923, "maman").user == mum and acct(nas_ds923, "maman").linked_by == "explicit"
    old = acct(nas_ds923, "mum.old")
    assert old.user is None and "mapped explicitly to account 'maman'" in old.link_note
    assert not DSMAccount.objects.filter(user=dad).exists()


def test_removed_mapping_falls_back_to_email(nas_ds923, make_person):
    mum = make_person("mum@example.com")
    m = AccountMapping.objects.create(nas=nas_ds923, email="mum@example.com", account_name="maman")
    reconcile(nas_ds923, [U("maman"), U("mum", "mum@example.com")])
    m.delete()
    reconcile(nas_ds923, [U("maman"), U("mum", "mum@example.com")])
    assert acct(nas_ds923, "maman").user is None
    assert acct(nas_ds923, "mum").user == mum and acct(nas_ds923, "mum").linked_by == "email"


def test_admin_links_are_never_overwritten(nas_ds923, make_person):
    mum, dad = make_person("mum@example.com"), make_person("dad@example.com")
    reconcile(nas_ds923, [U("shared", "mum@example.com")])
    DSMAccount.objects.filter(name="shared").update(user=dad, linked_by="admin")
    AccountMapping.objects.create(nas=nas_ds923, email="mum@example.com", account_name="shared")
    reconcile(nas_ds923, [U("shared", "mum@example.com")])
    row = acct(nas_ds923, "shared")
    assert row.user == dad and row.linked_by == "admin"
    # dad is admin-linked: another account with his email is not linked to him as well
    reconcile(nas_ds923, [U("shared", "mum@example.com"), U("dad", "dad@example.com")])
    assert acct(nas_ds923, "dad").user is None
    assert mum.dsm_accounts.count() == 0


def test_email_change_on_the_nas_moves_the_link(nas_ds923, make_person):
    mum, dad = make_person("mum@example.com"), make_person("dad@example.com")
    reconcile(nas_ds923, [U("x", "mum@example.com")])
    reconcile(nas_ds923, [U("x", "dad@example.com")])
    assert acct(nas_ds923, "x").user == dad
    assert not mum.dsm_accounts.exists()


def test_malformed_listing_changes_nothing(nas_ds923):
    reconcile(nas_ds923, [U("a"), U("b")])
    before = accounts_snapshot(nas_ds923)
    with pytest.raises(DSMBadResponse):
        reconcile(nas_ds923, [U("a"), U("a")])
    with pytest.raises(DSMBadResponse):
        reconcile(nas_ds923, [U("a"), U("")])
    assert accounts_snapshot(nas_ds923) == before


def _listing(n: int, *, people: int = 0) -> list[DSMUser]:
    return [U(f"user{i:05d}", f"user{i}@example.com" if i % 3 else "", f"desc {i}", False) for i in range(n)]


@pytest.mark.parametrize("n", [10, 400])
def test_unchanged_sync_writes_nothing_with_bounded_queries(nas_ds923, make_person, n):
    for i in range(0, min(n, 30), 2):
        make_person(f"user{i}@example.com")
    AccountMapping.objects.create(nas=nas_ds923, email="user4@example.com", account_name="user00007")
    listing = _listing(n)
    reconcile(nas_ds923, listing)
    with CaptureQueriesContext(connection) as ctx:
        counts = reconcile(nas_ds923, listing)
    assert counts.unchanged == n and counts.written == 0
    assert writes(ctx.captured_queries) == []
    assert not any(q["sql"].upper().startswith("UPDATE") for q in ctx.captured_queries)
    assert len(ctx.captured_queries) <= 8, [q["sql"][:80] for q in ctx.captured_queries]


def test_query_count_does_not_grow_with_users(nas_ds923):
    def queries(listing):
        with CaptureQueriesContext(connection) as ctx:
            reconcile(nas_ds923, listing)
        return len(ctx.captured_queries)

    small = queries(_listing(5))
    DSMAccount.objects.all().delete()
    large = queries(_listing(600))
    assert large - small <= 12  # only the insert batches differ (batched by the backend's parameter limit)
    # unchanged re-run: same fixed number of reads for 5 or 600 accounts
    assert queries(_listing(600)) == queries(_listing(600))


def test_one_percent_change_updates_only_those_rows(nas_ds923):
    listing = _listing(500)
    reconcile(nas_ds923, listing)
    changed = [U(u.name, u.email, u.description + " (edited)") if i % 100 == 0 else u for i, u in enumerate(listing)]
    with CaptureQueriesContext(connection) as ctx:
        c = reconcile(nas_ds923, changed)
    assert (c.changed, c.unchanged, c.written) == (5, 495, 5)
    assert len(writes(ctx.captured_queries)) == 1  # one bulk UPDATE
