"""Account names and passwords for new DSM accounts: checks, suggestions, linkable accounts, the generator,
and the NAS's "groups for new accounts" on its console page."""

from __future__ import annotations

import pytest

from synology.dsm import PasswordPolicy
from synology.provisioning import (
    account_marker,
    check_new_account_name,
    generate_password,
    linkable_accounts,
    made_by_hub_for,
    suggest_account_name,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def bare_nas(sync_household):
    from synology.services import declare_nas

    return declare_nas("ds923", household=sync_household, base_url="https://192.0.2.10:5001", name="DS923+")


def account(nas, name: str, **fields):
    """A row as a listing would have left it (these tests make no NAS call)."""
    from django.utils import timezone

    from synology.models import DSMAccount

    return DSMAccount.objects.create(nas=nas, name=name, first_seen=timezone.now(), last_seen=timezone.now(), **fields)


def test_check_accepts_a_plain_name_and_names_the_problem_otherwise(bare_nas):
    assert check_new_account_name(bare_nas, "granny.smith") is None
    assert check_new_account_name(bare_nas, "Granny_Smith-2") is None
    assert "no @" in check_new_account_name(bare_nas, "granny@example.com")
    assert "longer than 64" in check_new_account_name(bare_nas, "g" * 65)
    assert check_new_account_name(bare_nas, "g" * 64) is None
    assert "keeps for itself" in check_new_account_name(bare_nas, "Admin")
    assert check_new_account_name(bare_nas, "") == "An account name is needed."
    for bad in (" granny", "granny ", "gr anny", "-granny", "_granny", "granny!", "grânny", "granny\n"):
        assert check_new_account_name(bare_nas, bad) is not None, bad


def test_check_sees_the_last_listing_case_insensitively_absent_rows_included(bare_nas):
    account(bare_nas, "Granny.Smith", present=False)
    problem = check_new_account_name(bare_nas, "granny.SMITH")
    assert problem == "“granny.SMITH” is taken on DS923+ (account “Granny.Smith”, as of its last sync)."
    assert check_new_account_name(bare_nas, "granny_smith") is None  # LIKE wildcards are not wildcards


def test_check_lets_the_hubs_own_half_made_account_through_for_that_email(bare_nas):
    account(bare_nas, "granny.smith", description=account_marker("granny@example.com"))
    assert check_new_account_name(bare_nas, "granny.smith") is not None
    assert check_new_account_name(bare_nas, "granny.smith", email="Granny@Example.com") is None
    assert check_new_account_name(bare_nas, "granny.smith", email="other@example.com") is not None


def test_check_sees_explicit_mappings_for_someone_else(bare_nas):
    from synology.services import set_account_mappings

    set_account_mappings(bare_nas, {"granny@example.com": "Granny.Smith"})
    assert "granny@example.com" in check_new_account_name(bare_nas, "granny.smith")
    assert check_new_account_name(bare_nas, "granny.smith", email="granny@example.com") is None


def test_the_marker_names_the_email_and_nothing_else(bare_nas):
    marker = account_marker("Granny@Example.com")
    assert marker == "Created by Identity Hub for granny@example.com"
    assert made_by_hub_for(marker, "GRANNY@example.com") and made_by_hub_for(f"  {marker} ", "granny@example.com")
    assert not made_by_hub_for(marker, "grandpa@example.com")
    assert not made_by_hub_for("created by identity hub for granny@example.com", "granny@example.com")
    assert not made_by_hub_for("", "granny@example.com") and not made_by_hub_for(marker, "")


@pytest.mark.parametrize(("email", "name", "expected"), [
    ("granny@example.com", "Granny Smith", "granny.smith"),
    ("mael@example.com", "Maël Valais", "mael.valais"),
    ("x@example.com", "Jean-Luc  O'Brien", "jean-luc.o.brien"),
    ("Granny.Smith+photos@Example.com", "", "granny.smith"),
    ("g_s@example.com", "!!!", "g_s"),
    ("...@example.com", "", "user"),
    ("admin@example.com", "", "admin2"),
])
def test_suggestions_come_from_the_name_or_the_email(bare_nas, email, name, expected):
    suggestion = suggest_account_name(bare_nas, email, name)
    assert suggestion == expected
    assert check_new_account_name(bare_nas, suggestion) is None


def test_a_taken_suggestion_gets_the_next_free_number(bare_nas):
    from synology.services import set_account_mappings

    account(bare_nas, "Granny.Smith")
    account(bare_nas, "granny.smith2", present=False)
    set_account_mappings(bare_nas, {"other@example.com": "granny.smith3"})
    assert suggest_account_name(bare_nas, "granny@example.com", "Granny Smith") == "granny.smith4"


def test_a_long_suggestion_stays_within_64_characters_with_its_number(bare_nas):
    long_name = "Wolfeschlegelsteinhausenbergerdorff " * 3
    first = suggest_account_name(bare_nas, "w@example.com", long_name)
    assert len(first) <= 64 and not first.endswith(".")
    account(bare_nas, first)
    second = suggest_account_name(bare_nas, "w@example.com", long_name)
    assert len(second) <= 64 and second.endswith("2") and check_new_account_name(bare_nas, second) is None


def test_linkable_accounts_are_present_unexpired_and_unlinked(bare_nas, make_person):
    account(bare_nas, "free")
    account(bare_nas, "gone", present=False)
    account(bare_nas, "locked", expired=True)
    account(bare_nas, "taken", user=make_person("mum@example.com"), linked_by="admin")
    assert [a.name for a in linkable_accounts(bare_nas)] == ["free"]


@pytest.mark.parametrize("policy", [PasswordPolicy(), PasswordPolicy(8, True, True, True, True, True),
                                    PasswordPolicy(40, True, True, True, True, True), PasswordPolicy(127, True)])
def test_generated_passwords_meet_the_policy_and_avoid_the_name(policy):
    from tests.fakes.dsm import FakeDSM

    fake = FakeDSM()  # not started: its password check only
    fake.password_policy = {"min_length": policy.min_length, "min_length_enable": policy.min_length_enable,
                            "mixed_case": True, "included_numeric_char": True, "included_special_char": True,
                            "exclude_username": True}
    seen = set()
    for _ in range(50):
        password = generate_password(policy, "ab")
        assert fake.password_problem("ab", password) is None
        assert len(password) == max(24, policy.required_length)
        seen.add(password)
    assert len(seen) == 50


def test_a_one_letter_name_is_still_avoided():
    for _ in range(50):
        assert "a" not in generate_password(PasswordPolicy(), "a").lower()


def test_a_policy_longer_than_dsm_allows_cannot_be_met():
    with pytest.raises(ValueError, match="at most 127"):
        generate_password(PasswordPolicy(128, True), "granny")


# --- the console: groups for new accounts ------------------------------------------------------------
def test_the_nas_form_reads_and_writes_groups_as_one_line(bare_nas):
    from synology.admin import NASForm

    bare_nas.new_account_groups = ["family", "photos"]
    bare_nas.save()
    form = NASForm(instance=bare_nas)
    assert 'value="family, photos"' in str(form["new_account_groups"])
    data = {"id": bare_nas.pk, "name": bare_nas.name, "household": bare_nas.household_id,
            "base_url": bare_nas.base_url, "verify_tls": "on", "sync_interval": "01:00:00", "enabled": "on",
            "new_account_groups": " family ,Photo  Club,, family "}
    form = NASForm(data, instance=bare_nas)
    assert form.is_valid(), form.errors
    form.save()
    bare_nas.refresh_from_db()
    assert bare_nas.new_account_groups == ["family", "Photo Club"]
    form = NASForm({**data, "new_account_groups": "family, [admins]"}, instance=bare_nas)
    assert not form.is_valid() and "not a DSM group name" in str(form.errors["new_account_groups"])
    form = NASForm({**data, "new_account_groups": ""}, instance=bare_nas)
    assert form.is_valid() and form.save().new_account_groups == []


def test_the_nas_page_shows_the_field(client, bare_nas):
    from django.urls import reverse

    from accounts.models import User
    from tests.conftest import signed_in

    operator = User.objects.create_superuser("root@example.net", name="Op Erator")
    page = signed_in(client, operator).get(reverse("admin:synology_nas_change", args=[bare_nas.pk]))
    assert page.status_code == 200
    assert 'name="new_account_groups"' in page.content.decode()
