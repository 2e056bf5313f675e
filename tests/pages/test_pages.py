"""The family pages render, calmly and safely: status codes, CSP, no inline code, the right content."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.template import loader
from django.test import RequestFactory

from identityhub.models import AuditEvent
from tests.conftest import DSM_SECRET, RP_REDIRECT, authorize_query, exchange, get_code, signed_in
from tests.pages.conftest import assert_family_page, parse

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_upstreams(db):
    from accounts.services import declare_upstream

    return [
        declare_upstream("google", "google", name="Google", client_id="g", client_secret="g-secret-0123456789abcdefghij"),
        declare_upstream("work", "oidc", name="Work", issuer="https://login.example.org", client_id="hub",
                         client_secret="work-secret-0123456789-abcdefghijkl", position=1),
    ]


@pytest.fixture
def neighbours_app(other_household):
    from identityhub.oidc.services import register_client

    application, _ = register_client("neighbours-cloud", name="Neighbours' cloud",
                                     redirect_uris=["https://cloud.neighbours.example/cb"], client_secret=DSM_SECRET,
                                     households=[other_household])
    return application


# --- the shared look ------------------------------------------------------------------------
def test_the_stylesheet_is_a_static_file_of_the_hub():
    path = finders.find("hub/hub.css")
    assert path and "max-width: 30rem" in Path(path).read_text()  # the phone layout


def test_every_family_page_uses_the_stylesheet_the_csp_and_no_inline_code(
        client, two_upstreams, people, nas, dsm_client, public_client):
    pages = {"/login/": 200, "/logged-out/": 200, "/no/such/page/": 404}
    for url, status in pages.items():
        response = client.get(url)
        assert response.status_code == status, url
        assert_family_page(response)

    signed_in(client, people["mael"])
    for url, status in {"/account/": 200, "/logout/": 200, authorize_query("nope"): 400,
                        authorize_query("ds923-dsm", redirect_uri="https://x.example/"): 400}.items():
        response = client.get(url)
        assert response.status_code == status, url
        assert_family_page(response)

    signed_in(client, people["no_nas"])
    refusal = client.get(authorize_query("ds923-dsm"))
    assert refusal.status_code == 403
    assert_family_page(refusal)


def test_the_consent_page_may_redirect_to_the_client_and_nowhere_else(client, mael, household):
    from identityhub.oidc.services import register_client

    register_client("photos", name="Family Photos", redirect_uris=[RP_REDIRECT], client_secret=DSM_SECRET,
                    households=[household])
    signed_in(client, mael)
    response = client.get(authorize_query("photos", scope="openid email"))
    assert response.status_code == 200
    page = assert_family_page(response)
    assert "allow" in page.ids and "cancel" in page.ids
    assert "form-action 'self' http://127.0.0.1:9;" in response["Content-Security-Policy"] + ";"
    assert "Allow Family Photos? · Identity Hub" in response.content.decode()
    assert "See your email address" in response.content.decode()


def test_error_pages_are_never_titled_allow_question(client, mael, dsm_client):
    signed_in(client, mael)
    for url in (authorize_query("nope"), authorize_query("ds923-dsm", redirect_uri="https://evil.example/")):
        content = client.get(url).content.decode()
        assert "Allow ?" not in content and "Allow  ?" not in content
        assert "<title>Sign-in link not valid · Identity Hub</title>" in content


# --- sign-in --------------------------------------------------------------------------------
def test_sign_in_page_names_the_household_when_there_is_only_one(client, household, two_upstreams):
    response = client.get("/login/?next=/account/")
    page = assert_family_page(response)
    assert "Sign in to Valais family" in response.content.decode()
    assert page.ids["upstream-google"]["href"] == "/login/google/?next=%2Faccount%2F"
    assert "Continue with Work" in response.content.decode()


def test_sign_in_page_names_the_hub_when_there_are_several_households(client, people, two_upstreams):
    assert "Sign in to Identity Hub" in client.get("/login/").content.decode()


def test_sign_in_with_one_upstream_goes_straight_to_it(client, household, two_upstreams):
    two_upstreams[1].delete()
    response = client.get("/login/?next=/account/")
    assert response.status_code == 302 and response["Location"] == "/login/google/?next=%2Faccount%2F"


def test_no_upstream_is_a_clear_503(client, household):
    response = client.get("/login/")
    assert response.status_code == 503 and "no-upstream" in parse(response).ids


def test_an_unknown_upstream_is_a_clear_404(client):
    response = client.get("/login/nope/")
    assert response.status_code == 404
    assert "There is no way to sign in called “nope”" in response.content.decode()
    assert_family_page(response)


# --- refusals: what happened, what to do, whom to ask -------------------------------------
def test_a_refusal_names_the_admins_of_the_apps_household(client, people, nas, dsm_client):
    signed_in(client, people["no_nas"])
    response = client.get(authorize_query("ds923-dsm"))
    page = parse(response)
    assert {"refusal-message", "refusal-advice", "retry", "refusal-contacts"} <= set(page.ids)
    content = response.content.decode()
    assert "no.nas@example.com has no account on DS923+." in content
    assert "Maël Valais" in content and 'href="mailto:mael@example.com"' in content
    assert "Mum" not in content  # members are not admins


def test_a_refusal_for_an_outsider_names_the_admins_of_the_apps_household_not_theirs(client, people, nas, dsm_client):
    from accounts.models import Membership

    Membership.objects.filter(user=people["outsider"]).update(role="admin")
    signed_in(client, people["outsider"])
    content = client.get(authorize_query("ds923-dsm")).content.decode()
    assert "outsider@example.org is not a member of a household that may use DSM on DS923+." in content
    assert "mael@example.com" in content
    assert 'href="mailto:outsider@example.org"' not in content


def test_a_stranger_refused_at_sign_in_is_told_no_admin_address(client, upstream_provider, google_like, people):
    from tests.conftest import upstream_round_trip
    from tests.fakes.oidc_upstream import Identity

    upstream_provider.identity = Identity(sub="g-9", email="stranger@example.net")
    response = upstream_round_trip(client)
    assert response.status_code == 403
    assert "refusal-contacts" not in parse(response).ids and "mael@example.com" not in response.content.decode()
    assert_family_page(response)


def test_a_disabled_person_refused_at_sign_in_is_told_whom_to_ask(client, upstream_provider, google_like, people):
    from tests.conftest import upstream_round_trip
    from tests.fakes.oidc_upstream import Identity

    upstream_provider.identity = Identity(sub="g-2", email="mum@example.com")
    upstream_round_trip(client)
    client.logout()
    people["mum"].is_active = False
    people["mum"].save()
    response = upstream_round_trip(client)
    assert response.status_code == 403
    assert "The account mum@example.com is disabled." in response.content.decode()
    assert "refusal-contacts" in parse(response).ids and "mailto:mael@example.com" in response.content.decode()


# --- the invalid authorization request ------------------------------------------------------
def test_an_unknown_client_page_names_what_was_sent_escaped_and_is_audited(client, mael):
    signed_in(client, mael)
    sent_client = 'nope<script>alert("x")</script>'
    sent_uri = 'https://evil.example/cb?a=1&b="<i>"'
    response = client.get(authorize_query(sent_client, redirect_uri=sent_uri))
    assert response.status_code == 400 and "Location" not in response
    content = response.content.decode()
    assert "<script>alert" not in content and "<i>" not in content
    page = parse(response)
    assert "sent-client-id" in page.ids and "sent-redirect-uri" in page.ids
    assert "nope&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in content
    assert "https://evil.example/cb?a=1&amp;b=&quot;&lt;i&gt;&quot;" in content
    assert "No app with this client ID is registered" in content
    event = AuditEvent.objects.get(kind="refusal", reason="invalid_request")
    assert event.client_id == sent_client and event.details["redirect_uri"] == sent_uri and event.user == mael


def test_an_unregistered_redirect_uri_page_names_the_app_and_its_admins(client, people, dsm_client):
    signed_in(client, people["mum"])
    response = client.get(authorize_query("ds923-dsm", redirect_uri="https://evil.example/cb"))
    assert response.status_code == 400 and "Location" not in response
    content = response.content.decode()
    assert "not one registered for DSM on DS923+" in content
    assert "https://evil.example/cb" in content and "ds923-dsm" in content
    assert "mailto:mael@example.com" in content
    event = AuditEvent.objects.get(kind="refusal", reason="invalid_request")
    assert event.client_id == "ds923-dsm" and event.details["redirect_uri"] == "https://evil.example/cb"
    assert event.user == people["mum"]


def test_a_consent_post_for_an_unknown_client_is_audited_too(client, mael):
    signed_in(client, mael)
    form = {"client_id": "nope", "redirect_uri": "https://evil.example/", "response_type": "code",
            "scope": "openid", "state": "s", "allow": "Authorize"}
    assert client.post("/authorize/", form).status_code == 400
    assert AuditEvent.objects.filter(kind="refusal", reason="invalid_request", client_id="nope").exists()


# --- signing out ----------------------------------------------------------------------------
def test_the_logged_out_page_never_redirects(client, mael):
    response = client.get("/logged-out/")
    assert response.status_code == 200 and "Location" not in response
    page = assert_family_page(response)
    assert page.ids["sign-in-again"]["href"] == "/login/"
    signed_in(client, mael)
    response = client.get("/logged-out/")
    assert response.status_code == 200 and page.ids  # signed in again: a link to the account, still no redirect
    assert "to-account" in parse(response).ids


def test_sign_out_from_the_account_page_is_a_csrf_protected_post(client, mael):
    from django.test import Client

    strict = signed_in(Client(enforce_csrf_checks=True), mael)
    refused = strict.post("/sign-out/")
    assert refused.status_code == 403 and "_auth_user_id" in strict.session
    assert "This form has expired" in refused.content.decode()
    assert_family_page(refused)

    account = strict.get("/account/")
    token = parse(account).ids  # the form carries Django's token
    assert "sign-out" in token
    csrf = strict.cookies["csrftoken"].value
    response = strict.post("/sign-out/", {"csrfmiddlewaretoken": csrf})
    assert response.status_code == 302 and response["Location"] == "/logged-out/"
    assert "_auth_user_id" not in strict.session
    assert client.get("/sign-out/").status_code == 405


def test_rp_initiated_logout_without_a_return_address_lands_on_logged_out(client, mael, dsm_client):
    signed_in(client, mael)
    id_token = exchange(client, "ds923-dsm", get_code(client, "ds923-dsm"), DSM_SECRET).json()["id_token"]
    response = client.get("/logout/", {"id_token_hint": id_token})
    assert response.status_code == 302 and response["Location"] == "/logged-out/"
    assert "_auth_user_id" not in client.session
    # already signed out: straight to the signed-out page, not to "/" → /account/ → /login/
    response = client.get("/logout/")
    assert response.status_code == 302 and response["Location"] == "/logged-out/"


def test_logout_without_a_hint_asks_then_lands_on_logged_out(client, mael):
    signed_in(client, mael)
    confirm = client.get("/logout/")
    assert confirm.status_code == 200
    page = assert_family_page(confirm)
    assert {"confirm-sign-out", "stay"} <= set(page.ids)
    stay = client.post("/logout/", {})
    assert stay.status_code == 400 and "You are still signed in" in stay.content.decode()
    assert "_auth_user_id" in client.session
    response = client.post("/logout/", {"allow": "on"})
    assert response.status_code == 302 and response["Location"] == "/logged-out/"
    assert "_auth_user_id" not in client.session


def test_the_logout_confirmation_may_redirect_to_the_registered_return_address(client, mael, dsm_client):
    from oauth2_provider.models import Application

    Application.objects.filter(client_id="ds923-dsm").update(post_logout_redirect_uris="https://ds923.example.com/bye")
    signed_in(client, mael)
    response = client.get("/logout/", {"client_id": "ds923-dsm", "post_logout_redirect_uri": "https://ds923.example.com/bye"})
    assert response.status_code == 200
    assert "form-action 'self' https://ds923.example.com" in response["Content-Security-Policy"]


def test_the_admins_sign_out_lands_on_logged_out(client, mael):
    signed_in(client, mael)
    response = client.post("/admin/logout/")
    assert response.status_code == 302 and response["Location"] == "/logged-out/"


# --- the account page -----------------------------------------------------------------------
def test_account_page_shows_the_persons_apps_and_not_other_households(client, people, nas, dsm_client, public_client,
                                                                       neighbours_app):
    from social_django.models import UserSocialAuth

    from accounts.services import declare_upstream

    declare_upstream("google", "google", name="Google", client_id="g", client_secret="g-secret-0123456789abcdefghij")
    UserSocialAuth.objects.create(user=people["mael"], provider="google", uid="g-subject-1", extra_data={})
    signed_in(client, people["mael"])
    response = client.get("/account/")
    assert response.status_code == 200
    page = assert_family_page(response)
    assert page.ids["app-ds923-dsm"]["href"] == "http://127.0.0.1:9"
    assert page.ids["app-immich"]["href"] == "http://127.0.0.1:9"
    assert "app-neighbours-cloud" not in page.ids
    content = response.content.decode()
    assert "Neighbours" not in content
    assert "mael.valais" in content and "DS923+" in content  # NAS account
    assert "Valais family" in content and "The neighbours" not in content
    assert "g-subject-1" in content and "Google" in content  # linked sign-in
    assert "sign-out" in page.ids

    signed_in(client, people["outsider"])
    page = parse(client.get("/account/"))
    assert page.ids["app-neighbours-cloud"]["href"] == "https://cloud.neighbours.example"
    assert "app-ds923-dsm" not in page.ids and "app-immich" not in page.ids


def test_account_page_says_when_a_nas_app_has_no_account_yet(client, people, nas, dsm_client):
    signed_in(client, people["no_nas"])
    content = client.get("/account/").content.decode()
    assert "No account on DS923+ yet" in content and "no-nas-accounts" in parse(client.get("/account/")).ids


def test_profile_is_the_old_address_of_the_account_page(client, mael, settings):
    from django.shortcuts import resolve_url

    signed_in(client, mael)
    response = client.get("/profile/")
    assert response.status_code == 302 and response["Location"] == "/account/"
    assert resolve_url(settings.LOGIN_REDIRECT_URL) == "/account/"
    assert client.get("/")["Location"] == "/account/"


def test_account_page_needs_a_signed_in_person(client):
    response = client.get("/account/")
    assert response.status_code == 302 and response["Location"].startswith("/login/?next=/account/")


# --- error pages ----------------------------------------------------------------------------
def test_the_404_is_a_styled_page(client):
    response = client.get("/nothing/here/")
    assert response.status_code == 404
    assert_family_page(response)
    assert "There is no page here" in response.content.decode()
    assert "<title>Page not found · Identity Hub</title>" in response.content.decode()


@pytest.mark.parametrize(("handler", "status", "text"), [
    ("bad_request", 400, "This request could not be understood"),
    ("permission_denied", 403, "You may not open this page"),
    ("page_not_found", 404, "There is no page here"),
])
def test_the_error_handlers_render_the_hubs_pages(handler, status, text, rf_request):
    from identityhub import views

    response = getattr(views, handler)(rf_request, Exception("x"))
    assert response.status_code == status and text in response.content.decode()
    assert "/static/hub/hub.css" in response.content.decode()


def test_the_500_page_needs_no_request(rf_request):
    from identityhub import urls, views

    assert (urls.handler400, urls.handler403, urls.handler404, urls.handler500) == (
        "identityhub.views.bad_request", "identityhub.views.permission_denied", "identityhub.views.page_not_found",
        "identityhub.views.server_error")
    bare = loader.get_template("500.html").render()  # no context at all: what Django does
    assert "Something went wrong on the hub" in bare and "/static/hub/hub.css" in bare and 'lang="en"' in bare
    assert "csrfmiddlewaretoken" not in bare
    response = views.server_error(rf_request)
    assert response.status_code == 500 and "Something went wrong on the hub" in response.content.decode()


def test_a_crashing_view_answers_the_styled_500(client, monkeypatch):
    from accounts import views

    def boom(request):
        raise RuntimeError("boom")

    monkeypatch.setattr(views.selectors, "sign_in_place_name", boom)
    client.raise_request_exception = False
    response = client.get("/login/")
    assert response.status_code == 500
    assert "Something went wrong on the hub" in response.content.decode()
    assert "Content-Security-Policy" in response


@pytest.fixture
def rf_request(db):
    from django.contrib.auth.models import AnonymousUser

    request = RequestFactory().get("/somewhere/")
    request.user = AnonymousUser()
    return request


def test_favicon_ico_is_a_cookie_less_redirect_to_the_icon(client, db):
    """A 404 for /favicon.ico rendered a page with a CSRF token: the browser's parallel request,
    sent before the page's CSRF cookie was stored, replaced the cookie and the page's first form
    post failed as 'expired' (seen in the console on PostgreSQL + Redis)."""
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"].endswith("/hub/favicon.svg")
    assert not response.cookies
