"""Who gets in: the first-login link policy and the refusal pages, through the real upstream fake."""

import pytest
from social_django.models import UserSocialAuth

from accounts.models import User
from identityhub.models import AuditEvent
from tests.conftest import authorize_query, signed_in, upstream_round_trip
from tests.fakes.oidc_upstream import Identity

pytestmark = pytest.mark.django_db


def test_first_login_links_a_declared_person_by_verified_email(client, upstream_provider, google_like, mael):
    upstream_provider.identity = Identity(sub="g-1", email="MAEL@example.com")
    response = upstream_round_trip(client)
    assert response.status_code == 302 and response["Location"] == "/profile/"
    link = UserSocialAuth.objects.get(provider="google")
    assert (link.uid, link.user) == ("g-1", mael)
    assert AuditEvent.objects.filter(kind="sign_in", user=mael, upstream_id="google").exists()


def test_afterwards_the_subject_counts_not_the_email(client, upstream_provider, google_like, mael):
    upstream_provider.identity = Identity(sub="g-1", email="mael@example.com")
    upstream_round_trip(client)
    client.logout()
    upstream_provider.identity = Identity(sub="g-1", email="renamed@gmail.com")
    assert upstream_round_trip(client)["Location"] == "/profile/"
    assert client.session["_auth_user_id"] == str(mael.pk)


@pytest.mark.parametrize(
    ("identity", "reason", "phrase"),
    [
        (Identity(sub="g-9", email="stranger@example.net"), "unknown_person", b"not a member of any household"),
        (Identity(sub="g-9", email="mael@example.com", email_verified=False), "email_unverified", b"has not verified"),
        (Identity(sub="g-9", email=""), "no_email", b"did not tell us your email"),
    ],
)
def test_refusals_show_a_clear_page_record_an_audit_event_and_create_nothing(
    client, upstream_provider, google_like, people, identity, reason, phrase
):
    users_before = User.objects.count()
    upstream_provider.identity = identity
    response = upstream_round_trip(client)
    assert response.status_code == 403
    assert phrase in response.content
    assert "_auth_user_id" not in client.session
    assert User.objects.count() == users_before
    assert not UserSocialAuth.objects.exists()
    assert AuditEvent.objects.filter(kind="refusal", reason=reason).exists()


def test_second_upstream_account_with_the_same_email_is_refused(client, upstream_provider, google_like, mael):
    upstream_provider.identity = Identity(sub="g-1", email="mael@example.com")
    upstream_round_trip(client)
    client.logout()
    upstream_provider.identity = Identity(sub="g-2-impostor", email="mael@example.com")
    response = upstream_round_trip(client)
    assert response.status_code == 403
    assert UserSocialAuth.objects.filter(provider="google").count() == 1


def test_allowed_domains_limit_first_links(client, upstream_provider, google_like, mael):
    google_like.allowed_domains = ["example.org"]
    google_like.save()
    upstream_provider.identity = Identity(sub="g-1", email="mael@example.com")
    response = upstream_round_trip(client)
    assert response.status_code == 403
    assert AuditEvent.objects.filter(reason="domain_not_allowed").exists()


def test_deactivated_person_is_refused_even_when_linked(client, upstream_provider, google_like, mael):
    upstream_provider.identity = Identity(sub="g-1", email="mael@example.com")
    upstream_round_trip(client)
    client.logout()
    User.objects.filter(pk=mael.pk).update(is_active=False)
    assert upstream_round_trip(client).status_code == 403


def test_not_in_household_and_no_nas_account_get_a_clear_page(client, people, dsm_client):
    for who, phrase in (("outsider", b"is not a member of a household"), ("no_nas", b"has no account on")):
        signed_in(client, people[who])
        response = client.get(authorize_query("ds923-dsm"))
        assert response.status_code == 403, who
        assert phrase in response.content
        assert "Location" not in response
        assert b"Use another account" in response.content  # back to this request, signed in afresh
        assert response.context["retry"].startswith("/login/?next=%2Fauthorize%2F%3F")
        assert "prompt=login" in response.context["retry"]
    assert AuditEvent.objects.filter(kind="refusal", reason="not_in_household").exists()
    assert AuditEvent.objects.filter(kind="refusal", reason="no_nas_account").exists()


def test_mock_upstream_is_refused_unless_debug(client, people, settings):
    from accounts.services import declare_upstream

    declare_upstream("mock", "mock")
    assert client.get("/login/mock/").status_code == 404
    assert client.get("/login/mock/mock/").status_code == 404
    assert client.get("/complete/mock/?email=mael@example.com&state=x").status_code == 404
    settings.DEBUG = True
    assert client.get("/login/mock/").status_code == 302


def test_mock_upstream_signs_in_a_declared_person_in_debug(client, people, settings):
    from accounts.services import declare_upstream

    settings.DEBUG = True
    declare_upstream("mock", "mock")
    start = client.get("/login/mock/?next=/profile/")
    form = client.get(start["Location"])
    assert b"mael@example.com" in form.content
    state = form.context["state"]
    done = client.get("/complete/mock/", {"state": state, "email": "mael@example.com"})
    assert done.status_code == 302 and done["Location"] == "/profile/"
    forged = client.get("/complete/mock/", {"state": "forged", "email": "mum@example.com"})
    assert forged.status_code == 400


def test_one_upstream_redirects_straight_to_it_several_offer_a_choice(client, db, upstream_provider):
    from accounts.services import declare_upstream

    declare_upstream("google", "google", client_id="x", client_secret="y")
    response = client.get("/login/?next=/profile/")
    assert response.status_code == 302 and response["Location"] == "/login/google/?next=%2Fprofile%2F"
    declare_upstream("work", "oidc", issuer=upstream_provider.issuer, client_id="a", client_secret="b")
    response = client.get("/login/?next=/profile/")
    assert response.status_code == 200
    assert b'href="/login/work/?next=%2Fprofile%2F"' in response.content


def test_next_cannot_redirect_off_site(client, upstream_provider, google_like, mael):
    upstream_provider.identity = Identity(sub="g-1", email="mael@example.com")
    response = upstream_round_trip(client, next_url="https://evil.example/steal")
    assert response.status_code == 302
    assert "evil.example" not in response["Location"]


def test_admin_is_entered_through_the_upstream_login(client, mael, mum):
    response = client.get("/admin/", follow=False)
    response = client.get(response["Location"])
    assert response.status_code == 302 and response["Location"] == "/login/?next=/admin/"
    signed_in(client, mael)
    assert client.get("/admin/").status_code == 200  # household admin → staff
    client.logout()
    signed_in(client, mum)
    response = client.get("/admin/", follow=True)
    assert response.status_code == 403  # a clear page, not a sign-in loop
    assert b"not an administrator" in response.content


def test_the_upstream_redirect_uri_comes_from_the_issuer_not_the_request(client, upstream_provider, google_like,
                                                                         settings):
    import requests

    settings.HUB_ISSUER = "https://id.example.com"  # the public URL, behind a TLS proxy
    start = client.get("/login/google/", HTTP_HOST="127.0.0.1")  # the request arrives as plain http
    requests.get(start["Location"], allow_redirects=False, timeout=10)
    assert upstream_provider.authorize_requests[-1]["redirect_uri"] == "https://id.example.com/complete/google/"
