"""The passkey endpoints and pages through Django's test client: signing in (the same policy as any
sign-in, a fresh auth time, `next` kept on this hub), the sign-in page with and without upstreams,
the account page's passkeys (each person only their own), the rate limit."""

from __future__ import annotations

import time
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest

from accounts.models import Passkey
from identityhub.models import AuditEvent
from tests.conftest import RP_REDIRECT, authorize_query, exchange, signed_in
from tests.passkeys.authenticator import SoftAuthenticator
from tests.passkeys.conftest import ISSUER, add_passkey_through_account, post_json, sign_in_with_passkey

pytestmark = pytest.mark.django_db


class Page(HTMLParser):
    def __init__(self, html: str) -> None:
        super().__init__()
        self.ids: dict[str, dict] = {}
        self.scripts: list[dict] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        attributes["tag"] = tag
        if "id" in attributes:
            self.ids[attributes["id"]] = attributes
        if tag == "script":
            self.scripts.append(attributes)


def page(response) -> Page:
    return Page(response.content.decode())


def upstream(upstream_id="google"):
    from accounts.services import declare_upstream

    return declare_upstream(upstream_id, "oidc", name=upstream_id.title(), issuer=f"https://{upstream_id}.example",
                            client_id="hub", client_secret="upstream-secret-0123456789-abcdefghij")


# --- the sign-in page ------------------------------------------------------------------------
def test_with_no_upstream_the_sign_in_page_offers_passkeys(client, household):
    response = client.get("/login/?next=/admin/")
    assert response.status_code == 200  # was a 503 "no way to sign in"
    ids = page(response).ids
    assert "no-upstream" not in ids and ids["passkey-sign-in"]["tag"] == "button"
    form = ids["passkey-form"]
    assert "data-passkey-sign-in" in form and "data-conditional" in form
    assert form["data-options-url"] == "/login/passkey/options/" and form["data-verify-url"] == "/login/passkey/verify/"
    assert form["data-next"] == "/admin/"
    assert ids["passkey-username"]["autocomplete"] == "username webauthn"
    assert [s["src"] for s in page(response).scripts] == ["/static/accounts/passkeys.js"]
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert "<script>" not in response.content.decode() and "style=" not in response.content.decode()


def test_on_an_ip_address_issuer_passkeys_are_off_and_no_upstream_stays_a_503(client, household, settings):
    settings.HUB_ISSUER = "http://127.0.0.1:8000"
    response = client.get("/login/")
    assert response.status_code == 503 and "no-upstream" in page(response).ids
    assert "passkey-form" not in page(response).ids
    assert client.post("/login/passkey/options/").status_code == 404


def test_one_upstream_goes_straight_to_it_until_the_hub_has_a_passkey(client, household, mael, authenticator):
    upstream("google")
    response = client.get("/login/?next=/account/")
    assert response.status_code == 302 and response["Location"] == "/login/google/?next=%2Faccount%2F"

    add_passkey_through_account(signed_in(type(client)(), mael), authenticator)
    response = client.get("/login/?next=/account/&prompt=login")
    assert response.status_code == 200
    ids = page(response).ids
    assert ids["upstream-google"]["href"] == "/login/google/?next=%2Faccount%2F&prompt=login"
    assert "passkey-sign-in" in ids and ids["passkey-form"]["data-next"] == "/account/"


def test_with_several_upstreams_and_no_passkey_only_the_upstreams_are_offered(client, household):
    upstream("google")
    upstream("work")
    ids = page(client.get("/login/")).ids
    assert {"upstream-google", "upstream-work"} <= set(ids) and "passkey-form" not in ids


# --- signing in with a passkey ---------------------------------------------------------------
def test_a_passkey_sign_in_is_a_fresh_audited_sign_in_that_goes_to_next(client, registered, authenticator, mael):
    before = int(time.time())
    response = sign_in_with_passkey(client, authenticator, next_url="/admin/")
    assert response.status_code == 200 and response.json() == {"redirect": "/admin/"}
    session = client.session
    assert session["_auth_user_id"] == str(mael.pk) and session["hub_auth_time"] >= before
    assert session["hub_upstream"] == "passkey" and session["hub_sid"]
    event = AuditEvent.objects.filter(kind="sign_in").get()
    assert event.user == mael and event.details == {"method": "passkey"}
    assert client.get("/account/").status_code == 200
    assert response["Cache-Control"].startswith("max-age=0")


@pytest.mark.parametrize("next_url", ["https://evil.example/", "//evil.example/x", "javascript:alert(1)", "", None,
                                      ["/admin/"]])
def test_next_stays_on_this_hub(client, registered, authenticator, next_url):
    response = sign_in_with_passkey(client, authenticator, next_url=next_url)
    assert response.json() == {"redirect": "/account/"}


def test_a_refused_passkey_answers_a_message_and_signs_no_one_in(client, registered, authenticator, mael):
    mael.is_active = False
    mael.save()
    response = sign_in_with_passkey(client, authenticator)
    assert response.status_code == 403 and "switched off" in response.json()["error"]
    assert "_auth_user_id" not in client.session

    stranger = SoftAuthenticator(origin=ISSUER)
    stranger.rp_id, stranger.user_handle = "localhost", b"\x01" * 16
    response = sign_in_with_passkey(client, stranger)
    assert response.status_code == 400 and "not known here" in response.json()["error"]
    assert response.json()["unknown_credential"] == {"rpId": "localhost", "credentialId": stranger.id}
    assert list(AuditEvent.objects.filter(kind="refusal").values_list("reason", flat=True)) == [
        "passkey_unknown", "inactive"]
    assert not AuditEvent.objects.filter(kind="sign_in").exists()


def test_sign_in_endpoints_are_post_only_and_need_the_csrf_token(registered, authenticator):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    assert browser.get("/login/passkey/options/").status_code == 405
    assert browser.get("/login/passkey/verify/").status_code == 405
    assert post_json(browser, "/login/passkey/options/").status_code == 403  # no CSRF token
    browser.get("/login/")  # the page sets the CSRF cookie; the script sends it back as X-CSRFToken
    token = browser.cookies["csrftoken"].value
    response = browser.post("/login/passkey/options/", data="{}", content_type="application/json",
                            headers={"X-CSRFToken": token})
    assert response.status_code == 200 and response.json()["userVerification"] == "required"


def test_an_anonymous_visit_leaves_a_short_lived_session(client, registered):
    post_json(client, "/login/passkey/options/")
    assert client.session.get_expiry_age() <= 3600


def test_the_sign_in_endpoints_are_rate_limited_per_address(client, registered, settings):
    from django.core.cache import cache

    cache.clear()
    settings.HUB_RATELIMIT_PASSKEY = "3/m"
    answers = [post_json(client, "/login/passkey/options/") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    limited = post_json(client, "/login/passkey/verify/", {})
    assert limited.status_code == 429 and int(limited["Retry-After"]) >= 1
    assert "Too many sign-in attempts" in limited.json()["error"]
    cache.clear()


# --- prompt=login and max_age at the authorization endpoint ----------------------------------
def test_prompt_login_is_satisfied_by_a_passkey_sign_in(client, registered, authenticator, mael, dsm_client):
    signed_in(client, mael, auth_time=int(time.time()) - 3600)
    ask = client.get(authorize_query("ds923-dsm", prompt="login"))
    location = urlsplit(ask["Location"])
    assert ask.status_code == 302 and location.path == "/login/"
    login_query = parse_qs(location.query)
    assert login_query["prompt"] == ["login"]
    next_url = login_query["next"][0]
    assert "prompt" not in next_url

    login_page = client.get(f"/login/?{location.query}")
    assert page(login_page).ids["passkey-form"]["data-next"] == next_url
    response = sign_in_with_passkey(client, authenticator, next_url=next_url)
    assert response.json() == {"redirect": next_url}
    back = client.get(next_url)
    assert back["Location"].startswith(RP_REDIRECT), back
    code = parse_qs(urlsplit(back["Location"]).query)["code"][0]
    from tests.conftest import DSM_SECRET

    token = exchange(client, "ds923-dsm", code, secret=DSM_SECRET)
    assert token.status_code == 200, token.content


def test_max_age_is_satisfied_by_a_passkey_sign_in(client, registered, authenticator, mael, dsm_client):
    signed_in(client, mael, auth_time=int(time.time()) - 600)
    ask = client.get(authorize_query("ds923-dsm", max_age="60"))
    assert urlsplit(ask["Location"]).path == "/login/"
    next_url = parse_qs(urlsplit(ask["Location"]).query)["next"][0]
    sign_in_with_passkey(client, authenticator, next_url=next_url)
    assert client.get(next_url)["Location"].startswith(RP_REDIRECT)


# --- the account page ------------------------------------------------------------------------
def test_the_account_page_lists_the_persons_passkeys(client, mael, mum, registered):
    other = Passkey.objects.create(user=mum, credential_id="mums-key", public_key=b"k", name="Mum's phone")
    response = signed_in(client, mael).get("/account/")
    ids = page(response).ids
    assert f"passkey-{registered.pk}" in ids and f"passkey-{other.pk}" not in ids
    assert f"passkey-synced-{registered.pk}" in ids  # backed up: "synced"
    content = response.content.decode()
    assert "Maël&#x27;s phone" in content and "not used yet" in content
    form = ids["passkey-add-form"]
    assert "data-passkey-register" in form
    assert form["data-options-url"] == "/account/passkeys/options/"
    assert form["data-verify-url"] == "/account/passkeys/verify/"
    assert ids[f"passkey-rename-{registered.pk}"] and ids[f"passkey-remove-{registered.pk}"]
    assert [s["src"] for s in page(response).scripts] == ["/static/accounts/passkeys.js"]


def test_adding_a_passkey_from_the_account_page(client, mael, authenticator):
    signed_in(client, mael)
    assert "no-passkeys" in page(client.get("/account/")).ids
    response = add_passkey_through_account(client, authenticator, name="My phone")
    assert response.status_code == 200 and response.json() == {"redirect": "/account/#passkeys"}
    passkey = Passkey.objects.get()
    assert passkey.user == mael and passkey.name == "My phone"
    after = client.get("/account/")
    assert "“My phone” is added" in after.content.decode()
    # The device already holds a passkey for Maël: it is excluded from the next options.
    options = post_json(client, "/account/passkeys/options/").json()
    assert [c["id"] for c in options["excludeCredentials"]] == [authenticator.id]


def test_adding_a_passkey_needs_a_recent_sign_in(client, mael):
    signed_in(client, mael, auth_time=int(time.time()) - 3600)
    ids = page(client.get("/account/")).ids
    assert "passkey-add-form" not in ids
    again = ids["passkey-sign-in-again"]["href"]
    assert urlsplit(again).path == "/login/" and parse_qs(urlsplit(again).query)["prompt"] == ["login"]
    response = post_json(client, "/account/passkeys/options/")
    assert response.status_code == 401 and response.json() == {"redirect": again}


def test_signed_out_the_account_endpoints_send_to_sign_in(client, registered):
    response = post_json(client, "/account/passkeys/options/")
    assert response.status_code == 401 and urlsplit(response.json()["redirect"]).path == "/login/"
    assert client.post(f"/account/passkeys/{registered.pk}/remove/")["Location"].startswith("/login/")
    assert Passkey.objects.filter(pk=registered.pk).exists()


def test_a_person_renames_and_removes_their_own_passkeys(client, mael, registered):
    signed_in(client, mael)
    response = client.post(f"/account/passkeys/{registered.pk}/rename/", {"name": "Old phone"})
    assert response.status_code == 302 and response["Location"] == "/account/#passkeys"
    registered.refresh_from_db()
    assert registered.name == "Old phone"
    assert client.get(f"/account/passkeys/{registered.pk}/remove/").status_code == 405
    response = client.post(f"/account/passkeys/{registered.pk}/remove/")
    assert response.status_code == 302 and not Passkey.objects.exists()
    assert "no longer signs you in" in client.get("/account/").content.decode()


def test_no_one_renames_or_removes_someone_elses_passkey(client, mum, registered):
    signed_in(client, mum)
    assert client.post(f"/account/passkeys/{registered.pk}/rename/", {"name": "mine now"}).status_code == 404
    assert client.post(f"/account/passkeys/{registered.pk}/remove/").status_code == 404
    registered.refresh_from_db()
    assert registered.name == "Maël's phone"
    assert not AuditEvent.objects.filter(details__action__in=["passkey_renamed", "passkey_removed"]).exists()


def test_a_removed_passkey_no_longer_signs_in(client, mael, registered, authenticator):
    signed_in(client, mael).post(f"/account/passkeys/{registered.pk}/remove/")
    client.logout()
    response = sign_in_with_passkey(client, authenticator)
    assert response.status_code == 400 and "not known here" in response.json()["error"]
    assert "_auth_user_id" not in client.session


def test_an_operator_reaches_the_admin_with_a_passkey_and_no_upstream(client, household):
    from accounts import passkeys
    from accounts.models import User
    from tests.passkeys.conftest import Session

    operator = User.objects.create_superuser("root@example.net", name="Op Erator")
    device = SoftAuthenticator(origin=ISSUER)
    session = Session()
    passkeys.register_passkey(session, operator, device.create(passkeys.registration_options(session, operator)))

    login = client.get("/admin/", follow=True)  # → the admin's login → the hub's sign-in page
    assert login.redirect_chain[-1][0] == "/login/?next=/admin/"
    assert login.status_code == 200  # no upstream at all: the passkey is the way in
    next_url = page(login).ids["passkey-form"]["data-next"]
    assert next_url == "/admin/"
    assert sign_in_with_passkey(client, device, next_url=next_url).json() == {"redirect": "/admin/"}
    assert client.get("/admin/").status_code == 200
