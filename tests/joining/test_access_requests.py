"""Ask for access: from a refusal page to a decision, through the real upstream fake.

Nothing is created for the requester before approval; one open request per person and app; the
request goes to the household that owns the app; the person sees its state when they come back.
"""

from __future__ import annotations

import uuid

import pytest
from django.core import mail
from social_django.models import UserSocialAuth

from accounts.models import Membership, User
from identityhub.models import AuditEvent
from joining import services
from joining.models import AccessRequest
from tests.conftest import authorize_query, signed_in, upstream_round_trip
from tests.fakes.oidc_upstream import Identity

pytestmark = pytest.mark.django_db

PKCE = {"code_challenge": "x" * 43, "code_challenge_method": "S256"}  # immich is a public client
STRANGER = Identity(sub="g-granny", email="granny@example.net", name="Granny Smith")


def refused_at_sign_in(client, upstream_provider, client_id: str = "immich", identity: Identity = STRANGER):
    upstream_provider.identity = identity
    return upstream_round_trip(client, next_url=authorize_query(client_id, **PKCE))


def test_a_stranger_refused_at_sign_in_can_ask_and_nothing_is_created(client, upstream_provider, google_like,
                                                                       public_client, people):
    users, links, memberships = User.objects.count(), UserSocialAuth.objects.count(), Membership.objects.count()
    page = refused_at_sign_in(client, upstream_provider)
    assert page.status_code == 403
    assert b'id="ask-for-access"' in page.content and b"Valais family" in page.content
    asked = client.post("/ask-for-access/")
    assert asked.status_code == 302 and asked["Location"] == "/ask-for-access/sent/"
    sent = client.get(asked["Location"])
    assert b"Your request was sent" in sent.content
    assert b"mael@example.com" not in sent.content  # never an admin's address to a stranger

    request = AccessRequest.objects.get()
    assert (request.email, request.name, request.household_id, request.client_id) == (
        "granny@example.net", "Granny Smith", "valais", "immich")
    assert (request.upstream_id, request.subject, request.user) == ("google", "g-granny", None)
    assert request.issuer == upstream_provider.issuer
    assert (User.objects.count(), UserSocialAuth.objects.count(), Membership.objects.count()) == (
        users, links, memberships)
    assert AuditEvent.objects.filter(reason="access_requested", email="granny@example.net").exists()


def test_coming_back_shows_the_state_and_a_second_request_is_not_made(client, upstream_provider, google_like,
                                                                      public_client, people):
    refused_at_sign_in(client, upstream_provider)
    client.post("/ask-for-access/")
    again = refused_at_sign_in(client, upstream_provider)
    assert b'id="access-request-state"' in again.content and b'id="ask-for-access"' not in again.content
    assert client.post("/ask-for-access/").status_code == 400  # nothing kept to ask with any more
    assert AccessRequest.objects.count() == 1
    # Even a direct second request (another session, another browser) is the same open request.
    ask = services.AskContext(email="GRANNY@example.net", name="G", household_id="valais", client_id="immich")
    request, created = services.request_access(ask)
    assert not created and AccessRequest.objects.count() == 1 and request.email == "granny@example.net"


def test_the_form_cannot_choose_the_email_or_identity(client, upstream_provider, google_like, public_client, people):
    refused_at_sign_in(client, upstream_provider)
    client.post("/ask-for-access/", {"email": "mael@example.com", "subject": "g-mael", "household_id": "neighbours"})
    request = AccessRequest.objects.get()
    assert (request.email, request.subject, request.household_id) == ("granny@example.net", "g-granny", "valais")


def test_only_verified_askable_refusals_offer_to_ask(client, upstream_provider, google_like, public_client, people):
    unverified = Identity(sub="g-x", email="someone@example.net", email_verified=False)
    page = refused_at_sign_in(client, upstream_provider, identity=unverified)
    assert page.status_code == 403 and b"ask-for-access" not in page.content
    assert client.post("/ask-for-access/").status_code == 400
    assert not AccessRequest.objects.exists()


def test_an_unknown_app_offers_nothing_when_the_hub_has_several_households(client, upstream_provider, google_like,
                                                                          people):
    page = refused_at_sign_in(client, upstream_provider, client_id="no-such-app")
    assert b"ask-for-access" not in page.content


def test_approval_lets_the_stranger_in_with_the_identity_they_asked_with(client, upstream_provider, google_like,
                                                                         public_client, people, mael):
    refused_at_sign_in(client, upstream_provider)
    client.post("/ask-for-access/")
    request = AccessRequest.objects.get()
    outcome = services.approve_request(request, by=mael)
    assert "granny@example.net joined Valais family" in outcome
    granny = User.objects.get(email="granny@example.net")
    assert granny.name == "Granny Smith"
    membership = Membership.objects.get(user=granny)
    assert (membership.household_id, membership.role, membership.joined_by) == ("valais", "member", "request")
    link = UserSocialAuth.objects.get(user=granny)
    assert (link.provider, link.uid, link.extra_data["iss"]) == ("google", "g-granny", upstream_provider.issuer)
    request.refresh_from_db()
    assert (request.state, request.decided_by, request.user) == ("approved", mael, granny)

    client.logout()
    upstream_provider.identity = STRANGER
    arrived = upstream_round_trip(client, next_url=authorize_query("immich", **PKCE))
    assert arrived.status_code == 302, arrived.content.decode()[-1500:]
    assert arrived["Location"].startswith("/authorize/")
    assert client.session["_auth_user_id"] == str(granny.pk)
    with pytest.raises(services.JoiningError):
        services.approve_request(request, by=mael)  # answered once


def test_decline_is_final_and_shown(client, upstream_provider, google_like, public_client, people, mael):
    refused_at_sign_in(client, upstream_provider)
    client.post("/ask-for-access/")
    request = AccessRequest.objects.get()
    services.decline_request(request, by=mael)
    assert request.state == "declined" and not User.objects.filter(email="granny@example.net").exists()
    again = refused_at_sign_in(client, upstream_provider)
    assert b"declined your request" in again.content and b'id="ask-for-access"' not in again.content
    with pytest.raises(services.JoiningError):
        services.decline_request(request, by=mael)


def test_a_signed_in_person_of_another_household_asks_for_the_app(client, public_client, people):
    outsider = people["outsider"]
    signed_in(client, outsider)
    page = client.get(authorize_query("immich", **PKCE))
    assert page.status_code == 403 and b'id="ask-for-access"' in page.content
    client.post("/ask-for-access/")
    request = AccessRequest.objects.get()
    assert (request.user, request.email, request.upstream_id) == (outsider, "outsider@example.org", "")
    # The request belongs to the app's household: valais's admins decide, not the neighbours'.
    assert request.household_id == "valais"
    services.approve_request(request)
    assert Membership.objects.filter(user=outsider, household_id="valais", joined_by="request").exists()
    assert client.get(authorize_query("immich", **PKCE)).status_code == 302


def test_someone_else_cannot_post_a_signed_in_persons_pending_ask(client, public_client, people):
    signed_in(client, people["outsider"])
    client.get(authorize_query("immich", **PKCE))
    signed_in(client, people["mum"])  # another person now in this browser (Django flushes the session)
    assert client.post("/ask-for-access/").status_code in (302, 400)
    assert not AccessRequest.objects.exists()


def test_admins_are_mailed_when_email_is_set_up(client, upstream_provider, google_like, public_client, people,
                                                settings, eager_celery, django_capture_on_commit_callbacks):
    settings.HUB_EMAIL_ENABLED = True
    refused_at_sign_in(client, upstream_provider)
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/ask-for-access/")
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["mael@example.com"]
    assert "granny@example.net" in message.subject and "/admin/joining/accessrequest/" in message.body


def test_no_mail_without_email_settings(client, upstream_provider, google_like, public_client, people,
                                        settings, eager_celery, django_capture_on_commit_callbacks):
    settings.HUB_EMAIL_ENABLED = False
    refused_at_sign_in(client, upstream_provider)
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/ask-for-access/")
    assert mail.outbox == [] and AccessRequest.objects.count() == 1


def test_asking_is_rate_limited(client, upstream_provider, google_like, public_client, people, settings):
    settings.RATELIMIT_CACHE_PREFIX = f"rl-test-{uuid.uuid4().hex}:"  # the cache is shared with other tests
    settings.HUB_RATELIMIT_ACCESS_REQUEST = "2/h"
    for _ in range(2):
        client.post("/ask-for-access/")
    assert client.post("/ask-for-access/").status_code == 429


def test_the_config_leaves_an_approved_membership_alone(client, public_client, people, mael):
    from accounts.models import Household
    from accounts.services import MemberSpec, set_members

    signed_in(client, people["outsider"])
    client.get(authorize_query("immich", **PKCE))
    client.post("/ask-for-access/")
    services.approve_request(AccessRequest.objects.get(), by=mael)
    household = Household.objects.get(pk="valais")
    set_members(household, [MemberSpec("mael@example.com", "Maël Valais", "admin")], managed=True)
    assert Membership.objects.filter(user=people["outsider"], household=household).exists()
    assert not Membership.objects.filter(user=people["mum"], household=household).exists()  # the file's are
