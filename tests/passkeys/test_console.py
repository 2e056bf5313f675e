"""Passkeys in the household console: listed on the Person page (read-only), removable by the
person's household admins — and by no one else's."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import Membership, Passkey
from identityhub.models import AuditEvent
from tests.conftest import signed_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def mums_passkey(mum):
    return Passkey.objects.create(user=mum, credential_id="mums-credential", public_key=b"cose", name="Mum's phone",
                                  backup_eligible=True, backup_state=True)


@pytest.fixture
def mael_console(client, mael):
    return signed_in(client, mael)


@pytest.fixture
def neighbour_console(people, other_household):
    from django.test import Client

    Membership.objects.filter(household=other_household, user=people["outsider"]).update(role="admin")
    return signed_in(Client(), people["outsider"])


def person_form(person, **extra) -> dict:
    """The Person change form as the console posts it (every inline's management form)."""
    form = {"name": person.name, "email": person.email, "is_active": "on"}
    for prefix in ("memberships", "social_auth", "passkeys"):
        form.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"})
    form.update(extra)
    return form


def test_the_person_page_lists_their_passkeys_read_only(mael_console, mum, mums_passkey):
    page = mael_console.get(reverse("admin:accounts_user_change", args=[mum.pk])).content.decode()
    assert "Mum&#x27;s phone" in page and f'id="remove-passkey-{mums_passkey.pk}"' in page
    assert 'name="passkeys-0-name"' not in page  # not editable in the console
    assert "Add another passkey" not in page  # only the person adds one, from their own device
    assert "mums-credential" not in page and "cose" not in page


def test_a_household_admin_removes_a_members_passkey(mael_console, mael, mum, mums_passkey):
    url = reverse("admin:accounts_passkey_delete", args=[mums_passkey.pk])
    assert mael_console.get(url).status_code == 200
    response = mael_console.post(url, {"post": "yes"})
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:accounts_user_change", args=[mum.pk])
    assert not Passkey.objects.exists()
    event = AuditEvent.objects.get(kind="admin_change", user=mum)
    assert event.details == {"action": "passkey_removed", "passkey": mums_passkey.pk, "name": "Mum's phone",
                             "by": mael.email}


def test_the_inline_delete_box_removes_it_too(mael_console, mael, mum, mums_passkey):
    url = reverse("admin:accounts_user_change", args=[mum.pk])
    membership = Membership.objects.get(user=mum)
    form = person_form(mum, **{
        "memberships-TOTAL_FORMS": "1", "memberships-INITIAL_FORMS": "1", "memberships-0-id": membership.pk,
        "memberships-0-user": mum.pk, "memberships-0-household": membership.household_id,
        "memberships-0-role": membership.role,
        "passkeys-TOTAL_FORMS": "1", "passkeys-INITIAL_FORMS": "1", "passkeys-0-id": mums_passkey.pk,
        "passkeys-0-user": mum.pk, "passkeys-0-DELETE": "on"})
    response = mael_console.post(url, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert not Passkey.objects.exists()
    assert AuditEvent.objects.get(kind="admin_change", user=mum).details["by"] == mael.email


def test_a_config_managed_persons_passkey_can_still_be_removed(mael_console, mum, mums_passkey):
    mum.managed = True
    mum.save()
    response = mael_console.post(reverse("admin:accounts_passkey_delete", args=[mums_passkey.pk]), {"post": "yes"})
    assert response.status_code == 302 and not Passkey.objects.exists()


def test_the_neighbours_admin_cannot_remove_it(neighbour_console, mum, mums_passkey):
    assert neighbour_console.get(reverse("admin:accounts_user_change", args=[mum.pk])).status_code == 404
    url = reverse("admin:accounts_passkey_delete", args=[mums_passkey.pk])
    assert neighbour_console.get(url).status_code == 404
    assert neighbour_console.post(url, {"post": "yes"}).status_code == 404
    assert neighbour_console.get(reverse("admin:accounts_passkey_change", args=[mums_passkey.pk])).status_code == 404
    changelist = neighbour_console.get(reverse("admin:accounts_passkey_changelist")).content.decode()
    assert "Mum&#x27;s phone" not in changelist
    assert Passkey.objects.filter(pk=mums_passkey.pk).exists()


def test_a_forged_inline_row_cannot_reach_another_households_passkey(neighbour_console, people, mums_passkey):
    """The neighbour posts their own member's page with Mum's passkey id in the passkeys formset."""
    outsider = people["outsider"]
    membership = Membership.objects.get(user=outsider)
    form = person_form(outsider, **{
        "memberships-TOTAL_FORMS": "1", "memberships-INITIAL_FORMS": "1", "memberships-0-id": membership.pk,
        "memberships-0-user": outsider.pk, "memberships-0-household": membership.household_id,
        "memberships-0-role": membership.role,
        "passkeys-TOTAL_FORMS": "1", "passkeys-INITIAL_FORMS": "1", "passkeys-0-id": mums_passkey.pk,
        "passkeys-0-user": outsider.pk, "passkeys-0-DELETE": "on"})
    neighbour_console.post(reverse("admin:accounts_user_change", args=[outsider.pk]), form)
    assert Passkey.objects.filter(pk=mums_passkey.pk).exists()


def test_passkeys_are_not_a_console_menu_entry(mael_console):
    assert "/admin/accounts/passkey/" not in mael_console.get(reverse("admin:index")).content.decode()
