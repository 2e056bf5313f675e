"""The console's invitation pages: the form saves through `services.invite`, the link is shown once
(never stored, never shown again), revoking, and the household scope on every page and POST."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from accounts.models import Membership, User
from identityhub.models import AuditEvent
from joining import services
from joining.models import Invitation
from synology.models import DSMAccount
from tests.joining.fixtures_console import *  # noqa: F403

pytestmark = pytest.mark.django_db

ADD_URL = "/admin/joining/invitation/add/"
LIST_URL = "/admin/joining/invitation/"


def invite_form(**overrides) -> dict:
    return {"email": "granny@example.net", "name": "Granny Smith", "household": "valais", "role": "member",
            "nas": "", "account": "", "create_account": "", "lifetime_days": "7", **overrides}


def shown_link(page: str) -> str:
    match = re.search(r'<code class="hub-secret" id="invitation-link">([^<]+)</code>', page)
    assert match, page[:3000]
    return match.group(1)


def change_url(invitation: Invitation) -> str:
    return reverse("admin:joining_invitation_change", args=[invitation.pk])


# --- the form -------------------------------------------------------------------------------------
def test_the_form_offers_only_the_admins_households_nases_and_free_accounts(mael_console, nas, free_account,
                                                                            neighbour_nas):
    page = mael_console.get(ADD_URL).content.decode()
    assert '<option value="valais" selected>' in page  # the admin's only household, chosen already
    assert 'value="neighbours"' not in page
    assert 'value="ds923"' in page and 'value="ds220"' not in page
    assert 'value="ds923:photos"' in page  # present, unlinked
    assert "ds923:mael.valais" not in page and "ds923:maman" not in page  # linked already
    assert "ds220:admin" not in page
    assert "random password nobody sees" in page


def test_the_dashboard_link_chooses_the_household(operator, household, other_household):
    from django.test import Client

    from tests.conftest import signed_in

    page = signed_in(Client(), operator).get(ADD_URL + "?household=neighbours").content.decode()
    assert '<option value="neighbours" selected>' in page


def test_inviting_shows_the_link_once_and_keeps_only_a_digest(mael_console, household):
    response = mael_console.post(ADD_URL, invite_form())
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    page = response.content.decode()
    link = shown_link(page)
    token = link.rsplit("/invite/", 1)[1].strip("/")
    assert page.count(link) == 1 and 'data-copy="invitation-link"' in page
    assert "will not be shown again" in page
    assert "<script>" not in page and "style=" not in page  # CSP: no inline script or style

    invitation = Invitation.objects.get()
    assert invitation.token_digest == services.token_digest(token) and token not in invitation.token_digest
    assert (invitation.person.email, invitation.household_id, invitation.role, invitation.created_by.email) == (
        "granny@example.net", "valais", "member", "mael@example.com")
    assert invitation.state == Invitation.State.PENDING
    assert services.find_invitation(token) == invitation

    # Never again: not on the change page, the list, the history, the session, messages or the audit trail.
    for url in (change_url(invitation), LIST_URL, reverse("admin:joining_invitation_history",
                                                          args=[invitation.pk]), "/admin/"):
        later = mael_console.get(url)
        assert later.status_code == 200 and token not in later.content.decode(), url
    assert token not in str(dict(mael_console.session.items()))
    assert not any(token in str(e.change_message) + e.object_repr for e in LogEntry.objects.all())
    assert not any(token in json.dumps(e.details) for e in AuditEvent.objects.all())


def test_the_link_works_and_the_lifetime_is_the_one_chosen(mael_console, household):
    from django.utils import timezone

    page = mael_console.post(ADD_URL, invite_form(lifetime_days="2", role="admin")).content.decode()
    link = shown_link(page)
    invitation = Invitation.objects.get()
    assert invitation.role == "admin"
    assert abs((invitation.expires_at - timezone.now()).total_seconds() - 2 * 86400) < 60
    path = "/" + link.split("/", 3)[3]
    assert mael_console.get(path).status_code == 200


def test_linking_an_existing_account(mael_console, nas, free_account):
    page = mael_console.post(ADD_URL, invite_form(nas="ds923", account="ds923:photos")).content.decode()
    assert shown_link(page)
    invitation = Invitation.objects.get()
    assert (invitation.nas_id, invitation.account_name) == ("ds923", "photos")
    free_account.refresh_from_db()
    assert free_account.user.email == "granny@example.net"


def test_the_account_alone_says_which_nas(mael_console, nas, free_account):
    shown_link(mael_console.post(ADD_URL, invite_form(account="ds923:photos")).content.decode())
    assert Invitation.objects.get().nas_id == "ds923"


def test_creating_an_account_on_the_nas(mael_console, live_nas, fake_dsm):
    page = mael_console.post(ADD_URL, invite_form(nas="ds923", create_account="granny")).content.decode()
    assert shown_link(page)
    assert fake_dsm.find_user("granny")["email"] == "granny@example.net"
    account = DSMAccount.objects.get(nas=live_nas, name="granny")
    assert account.user.email == "granny@example.net" and account.present
    assert Invitation.objects.get().account_name == "granny"
    assert fake_dsm.passwords.get("granny") and fake_dsm.passwords["granny"] not in page


def test_a_nas_that_does_not_answer_is_a_form_error_and_nothing_is_made(mael_console, live_nas, fake_dsm):
    fake_dsm.stop()
    response = mael_console.post(ADD_URL, invite_form(nas="ds923", create_account="granny"))
    page = response.content.decode()
    assert response.status_code == 200 and 'class="errornote"' in page
    assert "Could not create" in page and 'id="invitation-link"' not in page
    assert not Invitation.objects.exists()
    assert not DSMAccount.objects.filter(name="granny").exists()


@pytest.mark.parametrize(("overrides", "error"), [
    ({"nas": "ds923", "account": "ds923:photos", "create_account": "granny"}, "not both"),
    ({"nas": "ds923"}, "to link, or type a name for a new one"),
    ({"create_account": "granny"}, "Choose the NAS to create the account on"),
    ({"nas": "ds923", "create_account": "mael.valais"}, "is taken on"),
    ({"nas": "ds923", "create_account": "admin"}, "keeps for itself"),
    ({"nas": "ds923", "create_account": "gr@nny"}, "cannot be a DSM account name"),
    ({"lifetime_days": "91"}, "less than or equal to 90"),
    ({"email": "not-an-address"}, "valid email"),
])
def test_bad_choices_are_form_errors(mael_console, nas, free_account, overrides, error):
    response = mael_console.post(ADD_URL, invite_form(**overrides))
    page = response.content.decode()
    assert response.status_code == 200 and error in page, page[page.find('class="errornote"'):][:1500]
    assert not Invitation.objects.exists()


def test_a_service_refusal_is_a_form_error(mael_console, household):
    """Whatever `services.invite` refuses (here: a disabled person) is shown, and nothing is made."""
    User.objects.create_user("granny@example.net", name="Granny", is_active=False)
    page = mael_console.post(ADD_URL, invite_form()).content.decode()
    assert "is disabled on this hub" in page and 'id="invitation-link"' not in page
    assert not Invitation.objects.exists()


def test_forged_household_and_nas_choices_are_refused(mael_console, nas, neighbour_nas, other_household):
    page = mael_console.post(ADD_URL, invite_form(household="neighbours")).content.decode()
    assert "Select a valid choice" in page
    page = mael_console.post(ADD_URL, invite_form(nas="ds220", account="ds220:admin")).content.decode()
    assert "Select a valid choice" in page
    assert not Invitation.objects.exists()
    assert not DSMAccount.objects.get(nas=neighbour_nas, name="admin").user_id


def test_an_operator_cannot_pick_a_nas_of_another_household(operator, nas, free_account, other_household):
    from django.test import Client

    from tests.conftest import signed_in

    page = signed_in(Client(), operator).post(ADD_URL, invite_form(household="neighbours", nas="ds923",
                                                                  account="ds923:photos")).content.decode()
    assert "does not belong to The neighbours" in page
    assert not Invitation.objects.exists()


# --- list, change page, revoke -------------------------------------------------------------------------
def test_the_list_shows_states_and_filters(mael_console, household, mael):
    from django.utils import timezone

    waiting = services.invite(household, "a@example.net", by=mael)[0]
    used = services.invite(household, "b@example.net", by=mael)[0]
    Invitation.objects.filter(pk=used.pk).update(used_at=timezone.now())
    expired = services.invite(household, "c@example.net", by=mael)[0]
    Invitation.objects.filter(pk=expired.pk).update(expires_at=timezone.now())
    revoked = services.invite(household, "d@example.net")[0]
    services.revoke_invitation(revoked)
    page = mael_console.get(LIST_URL).content.decode()
    for email, state in (("a@", "waiting"), ("b@", "used"), ("c@", "expired"), ("d@", "revoked")):
        row = next(line for line in page.split("<tr") if email in line)
        assert f">{state}</span>" in row, row
    assert "the hub command" in page  # d@ was invited by `hub invite`
    for state, only in (("pending", waiting), ("used", used), ("expired", expired), ("revoked", revoked)):
        page = mael_console.get(f"{LIST_URL}?state={state}").content.decode()
        shown = [i for i in (waiting, used, expired, revoked) if f"/{i.pk}/change/" in page]
        assert shown == [only], state


def test_the_change_page_is_read_only_and_revoke_works(mael_console, valais_invitation, mael):
    page = mael_console.get(change_url(valais_invitation)).content.decode()
    assert 'id="tool-revoke-invitation"' in page
    assert 'name="_save"' not in page and 'name="email"' not in page
    assert mael_console.post(change_url(valais_invitation), {"role": "admin"}).status_code == 403

    revoke = reverse("admin:joining_invitation_revoke", args=[valais_invitation.pk])
    assert mael_console.get(revoke).status_code == 405
    response = mael_console.post(revoke, follow=True)
    assert b"its link no longer works" in response.content
    valais_invitation.refresh_from_db()
    assert valais_invitation.state == Invitation.State.REVOKED
    assert b'id="tool-revoke-invitation"' not in mael_console.get(change_url(valais_invitation)).content
    again = mael_console.post(revoke, follow=True)
    assert b"nothing to revoke" in again.content


def test_household_admins_cannot_delete_invitations(mael_console, valais_invitation):
    url = reverse("admin:joining_invitation_delete", args=[valais_invitation.pk])
    assert mael_console.get(url).status_code == 403
    assert Invitation.objects.filter(pk=valais_invitation.pk).exists()


# --- the neighbour's admin ------------------------------------------------------------------------------
def test_the_neighbour_sees_none_of_valais_invitations(neighbour_console, valais_invitation):
    listing = neighbour_console.get(LIST_URL)
    assert listing.status_code == 200 and b"granny@example.net" not in listing.content
    for url in (change_url(valais_invitation), reverse("admin:joining_invitation_history",
                                                       args=[valais_invitation.pk])):
        assert neighbour_console.get(url).status_code == 404, url
    revoke = reverse("admin:joining_invitation_revoke", args=[valais_invitation.pk])
    assert neighbour_console.post(revoke).status_code == 404
    assert neighbour_console.post(reverse("admin:joining_invitation_delete", args=[valais_invitation.pk]),
                                  {"post": "yes"}).status_code in {403, 404}
    valais_invitation.refresh_from_db()
    assert valais_invitation.state == Invitation.State.PENDING
    # The household filter offers only the neighbour's own household.
    assert b"Valais family" not in neighbour_console.get(LIST_URL).content


def test_a_member_who_is_no_admin_reaches_nothing(client, mum, valais_invitation):
    from tests.conftest import signed_in

    signed_in(client, mum)
    for url in (LIST_URL, ADD_URL, change_url(valais_invitation)):
        assert client.get(url).status_code in {302, 403}, url
    client.post(reverse("admin:joining_invitation_revoke", args=[valais_invitation.pk]))
    valais_invitation.refresh_from_db()
    assert valais_invitation.state == Invitation.State.PENDING


def test_membership_is_made_only_when_the_link_is_used(mael_console, household):
    mael_console.post(ADD_URL, invite_form())
    person = User.objects.get(email="granny@example.net")
    assert not Membership.objects.filter(user=person).exists()
