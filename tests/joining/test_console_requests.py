"""The console's access-request pages: the list (open by default), the facts, Approve — linking an
existing NAS account, creating one on the (fake) NAS, or failing with the request left open — and
Decline; nothing added or deleted by hand; the household scope on every page and POST."""

from __future__ import annotations

import pytest
from django.urls import reverse
from social_django.models import UserSocialAuth

from accounts.models import Membership, User
from joining.models import AccessRequest
from synology.models import DSMAccount
from tests.joining.fixtures_console import *  # noqa: F403
from tests.joining.fixtures_console import ask

pytestmark = pytest.mark.django_db

LIST_URL = "/admin/joining/accessrequest/"


def change_url(request: AccessRequest) -> str:
    return reverse("admin:joining_accessrequest_change", args=[request.pk])


def decide_url(request: AccessRequest) -> str:
    return reverse("admin:joining_accessrequest_decide", args=[request.pk])


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def assert_untouched(request: AccessRequest) -> None:
    request.refresh_from_db()
    assert request.state == AccessRequest.State.OPEN and request.decided_at is None
    assert not User.objects.filter(email=request.email).exists()
    assert not UserSocialAuth.objects.filter(uid=request.subject).exists()


# --- list and facts --------------------------------------------------------------------------------
def test_the_list_shows_open_requests_by_default(mael_console, nas_request, app_request):
    from joining import services

    services.decline_request(app_request)
    page = mael_console.get(LIST_URL).content.decode()
    assert f"/{nas_request.pk}/change/" in page and f"/{app_request.pk}/change/" not in page
    for column in ("granny@example.net", "Granny Smith", "Valais family", "ds923-dsm", "DS923+"):
        assert column in page
    declined = mael_console.get(LIST_URL + "?state=declined").content.decode()
    assert f"/{app_request.pk}/change/" in declined and f"/{nas_request.pk}/change/" not in declined
    every = mael_console.get(LIST_URL + "?state=all").content.decode()
    assert f"/{app_request.pk}/change/" in every and f"/{nas_request.pk}/change/" in every


def test_the_change_page_shows_the_facts_and_the_decision(mael_console, nas_request):
    page = mael_console.get(change_url(nas_request)).content.decode()
    for fact in ("Granny Smith &lt;granny@example.net&gt;", "google <code>g-granny</code>",
                 "DSM on DS923+ (<code>ds923-dsm</code>)", "not yet: approving declares them",
                 "waiting for an answer"):
        assert fact in page, fact
    assert 'id="decision-form"' in page and f'action="{decide_url(nas_request)}"' in page
    assert 'value="granny.smith"' in page  # the suggested name for a new account
    assert '<option value="photos">photos</option>' in page  # a free account to link
    assert "mael.valais</option>" not in page  # a linked one is never offered
    assert 'id="approve"' in page and 'id="decline"' in page
    assert 'name="_save"' not in page


def test_a_request_cannot_be_added_edited_or_deleted_by_a_household_admin(mael_console, nas_request):
    assert mael_console.get("/admin/joining/accessrequest/add/").status_code == 403
    assert mael_console.post(change_url(nas_request), {"state": "approved"}).status_code == 403
    delete = reverse("admin:joining_accessrequest_delete", args=[nas_request.pk])
    assert mael_console.get(delete).status_code == 403
    assert mael_console.post(delete, {"post": "yes"}).status_code == 403
    assert_untouched(nas_request)
    assert b"add/" not in mael_console.get(LIST_URL).content.split(b'id="changelist"')[0]


def test_an_operator_may_delete_but_not_add(operator, nas_request):
    from django.test import Client

    from tests.conftest import signed_in

    console = signed_in(Client(), operator)
    assert console.get("/admin/joining/accessrequest/add/").status_code == 403
    console.post(reverse("admin:joining_accessrequest_delete", args=[nas_request.pk]), {"post": "yes"})
    assert not AccessRequest.objects.filter(pk=nas_request.pk).exists()


# --- approve -----------------------------------------------------------------------------------------
def test_approving_with_an_existing_account(mael_console, nas_request, free_account):
    response = mael_console.post(decide_url(nas_request), {"decision": "approve", "choice": "link",
                                                           "account": "photos"}, follow=True)
    assert response.redirect_chain[-1][0] == LIST_URL
    assert messages_of(response) == [
        "Approved: granny@example.net joined Valais family with the account photos on DS923+."]
    nas_request.refresh_from_db()
    assert nas_request.state == AccessRequest.State.APPROVED and nas_request.decided_by.email == "mael@example.com"
    person = User.objects.get(email="granny@example.net")
    assert Membership.objects.get(user=person, household_id="valais").role == "member"
    assert UserSocialAuth.objects.get(provider="google", uid="g-granny").user == person
    free_account.refresh_from_db()
    assert free_account.user == person
    page = mael_console.get(change_url(nas_request)).content.decode()
    assert 'id="decision-form"' not in page and "with the account photos" in page


def test_approving_by_creating_an_account_on_the_nas(mael_console, nas_request, live_nas, fake_dsm):
    response = mael_console.post(decide_url(nas_request), {"decision": "approve", "choice": "create",
                                                           "new_name": "granny"}, follow=True)
    assert messages_of(response) == [
        "Approved: granny@example.net joined Valais family with the new account granny on DS923+."]
    created = fake_dsm.find_user("granny")
    assert created and created["email"] == "granny@example.net"
    account = DSMAccount.objects.get(nas=live_nas, name="granny")
    assert account.present and account.user.email == "granny@example.net"
    nas_request.refresh_from_db()
    assert nas_request.state == AccessRequest.State.APPROVED
    assert fake_dsm.passwords["granny"] not in response.content.decode()


def test_a_nas_that_fails_leaves_the_request_open_with_the_reason(mael_console, nas_request, live_nas, fake_dsm):
    fake_dsm.stop()
    response = mael_console.post(decide_url(nas_request), {"decision": "approve", "choice": "create",
                                                           "new_name": "granny"}, follow=True)
    [message] = messages_of(response)
    assert message.startswith("Nothing was done: Could not create “granny” on DS923+")
    assert response.redirect_chain[-1][0].startswith(change_url(nas_request) + "?")
    assert_untouched(nas_request)
    assert nas_request.outcome.startswith("Could not create “granny”")
    page = response.content.decode()
    assert 'value="granny"' in page  # the typed name is kept for the retry
    assert "Last attempt" in page and 'id="decision-form"' in page

    fake_dsm.start()  # the NAS is back: the same decision now works
    response = mael_console.post(decide_url(nas_request), {"decision": "approve", "choice": "create",
                                                           "new_name": "granny"}, follow=True)
    assert messages_of(response)[-1].endswith("with the new account granny on DS923+.")


@pytest.mark.parametrize(("form", "error"), [
    ({"choice": "link", "account": ""}, "Choose the account to link."),
    ({"choice": "link", "account": "mael.valais"}, "Select a valid choice."),
    ({"choice": "create", "new_name": "maman"}, "is taken on DS923+"),
    ({"choice": "create", "new_name": ""}, "Type a name for the new account."),
    ({"choice": "create", "new_name": "root"}, "keeps for itself"),
    ({}, "Choose what to do about their account on DS923+."),
])
def test_bad_decisions_change_nothing(mael_console, nas_request, form, error):
    response = mael_console.post(decide_url(nas_request), {"decision": "approve", **form}, follow=True)
    assert any(error in m for m in messages_of(response)), messages_of(response)
    assert_untouched(nas_request)
    assert DSMAccount.objects.get(name="mael.valais").user.email == "mael@example.com"


def test_a_service_refusal_leaves_the_request_open(mael_console, nas_request, free_account, people):
    """The upstream identity is linked to someone else meanwhile: approve_request refuses."""
    UserSocialAuth.objects.create(user=people["mum"], provider="google", uid="g-granny")
    response = mael_console.post(decide_url(nas_request), {"decision": "approve", "choice": "link",
                                                           "account": "photos"}, follow=True)
    assert messages_of(response) == [
        "Nothing was done: This google account is already linked to mum@example.com."]
    nas_request.refresh_from_db()
    assert nas_request.state == AccessRequest.State.OPEN
    free_account.refresh_from_db()
    assert free_account.user is None


def test_approving_a_request_without_a_nas(mael_console, app_request):
    response = mael_console.post(decide_url(app_request), {"decision": "approve"}, follow=True)
    assert messages_of(response) == ["Approved: granny@example.net joined Valais family."]
    app_request.refresh_from_db()
    assert app_request.state == AccessRequest.State.APPROVED


def test_keeping_the_account_a_known_person_has(mael_console, dsm_client, nas, people):
    """no_nas_account, then the NAS synced: the person already has an account — keep it."""
    request = ask("valais", dsm_client.client_id, nas.pk, email="mum@example.com", name="Mum",
                  user_id=people["mum"].pk, upstream_id="", subject="")
    page = mael_console.get(change_url(request)).content.decode()
    assert "Keep their account maman" in page and "yes: open the person" in page
    response = mael_console.post(decide_url(request), {"decision": "approve", "choice": "keep"}, follow=True)
    assert messages_of(response) == ["Approved: mum@example.com joined Valais family."]


def test_an_answered_request_cannot_be_decided_again(mael_console, app_request):
    mael_console.post(decide_url(app_request), {"decision": "decline"}, follow=True)
    response = mael_console.post(decide_url(app_request), {"decision": "approve"}, follow=True)
    assert messages_of(response) == ["This request was already answered (declined)."]
    assert 'id="decision-form"' not in response.content.decode()
    app_request.refresh_from_db()
    assert app_request.state == AccessRequest.State.DECLINED
    assert not User.objects.filter(email="granny@example.net").exists()


# --- decline -----------------------------------------------------------------------------------------
def test_declining(mael_console, nas_request):
    response = mael_console.post(decide_url(nas_request), {"decision": "decline", "choice": "create",
                                                           "new_name": ""}, follow=True)
    assert messages_of(response) == ["The request of granny@example.net was declined."]
    nas_request.refresh_from_db()
    assert nas_request.state == AccessRequest.State.DECLINED and nas_request.decided_by.email == "mael@example.com"
    assert not User.objects.filter(email="granny@example.net").exists()


def test_get_and_unknown_decisions_do_nothing(mael_console, nas_request):
    assert mael_console.get(decide_url(nas_request)).status_code == 405
    response = mael_console.post(decide_url(nas_request), {"decision": "maybe"}, follow=True)
    assert messages_of(response) == ["Choose Approve or Decline."]
    assert_untouched(nas_request)


# --- the neighbour's admin ------------------------------------------------------------------------------
def test_the_neighbour_reaches_none_of_valais_requests(neighbour_console, mael_console, nas_request,
                                                        neighbour_request, free_account):
    listing = neighbour_console.get(LIST_URL + "?state=all").content.decode()
    assert "granny@example.net" not in listing and "cousin@example.org" in listing
    assert "Valais family" not in listing  # not even in the household filter
    for url in (change_url(nas_request), reverse("admin:joining_accessrequest_history", args=[nas_request.pk])):
        assert neighbour_console.get(url).status_code == 404, url
    for decision in ({"decision": "approve", "choice": "link", "account": "photos"}, {"decision": "decline"}):
        assert neighbour_console.post(decide_url(nas_request), decision).status_code == 404
    assert_untouched(nas_request)
    free_account.refresh_from_db()
    assert free_account.user is None
    # valais's admin does not see the neighbours' request either
    assert mael_console.get(change_url(neighbour_request)).status_code == 404
    assert "cousin@example.org" not in mael_console.get(LIST_URL + "?state=all").content.decode()


def test_the_neighbour_cannot_link_an_account_of_another_nas(neighbour_console, neighbour_request, nas,
                                                             free_account):
    """A forged account name on the neighbours' own request: only their NAS's free accounts count —
    and this request is not NAS-bound, so no account at all."""
    response = neighbour_console.post(decide_url(neighbour_request), {"decision": "approve", "choice": "link",
                                                                      "account": "photos"}, follow=True)
    free_account.refresh_from_db()
    assert free_account.user is None
    assert response.status_code == 200
