"""The family's pages in Chromium: sign-in in French and German, /account/, sign-out, a refusal, the 404,
the invalid-request page, a 360px phone — and no Content-Security-Policy violation anywhere, the
admin's pages included. Every page looked at is saved under var/screenshots/ (git-ignored)."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import DSM_SECRET, RP_REDIRECT
from tests.fakes.oidc_upstream import Identity

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"


# --- a Chromium per language and window size ------------------------------------------------
def shot(browser, name: str) -> Path:
    """A full-page screenshot, var/screenshots/<name>.png."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    size = browser.get_window_size()
    height, chrome = browser.execute_script(
        "return [document.documentElement.scrollHeight, window.outerHeight - window.innerHeight]")
    browser.set_window_size(size["width"], max(size["height"], min(height + chrome, 4000)))
    path = SHOTS / f"{name}.png"
    browser.save_screenshot(str(path))
    browser.set_window_size(size["width"], size["height"])
    return path


def csp_violations(browser) -> list[str]:
    return [entry["message"] for entry in browser.get_log("browser")
            if "Content Security Policy" in entry["message"] or "Content-Security-Policy" in entry["message"]]


def wait_for(browser, element_id: str):
    return WebDriverWait(browser, 15).until(expected_conditions.visibility_of_element_located((By.ID, element_id)))


def wait_for_path(browser, path: str) -> str:
    WebDriverWait(browser, 15).until(lambda b: urlsplit(b.current_url).path == path)
    return browser.current_url


def text(browser) -> str:
    """The page's text; "" while the page is being replaced (a wait then simply tries again)."""
    try:
        return browser.find_element(By.TAG_NAME, "body").text
    except StaleElementReferenceException:
        return ""


@pytest.fixture
def photos(household):
    from identityhub.oidc.services import register_client

    application, _ = register_client("photos", name="Family Photos", redirect_uris=[RP_REDIRECT],
                                     client_secret=DSM_SECRET, households=[household])
    return application


# --- sign-in in the family's language -------------------------------------------------------
def test_a_french_sign_in(make_browser, hub, rp_factory, upstream_provider, google_like, people, nas, dsm_client,
                          photos):
    upstream_provider.identity = Identity(sub="g-1", email="mael@example.com")
    browser = make_browser("fr")
    browser.get(f"{hub}/account/")  # → /login/ → the only upstream → back, signed in
    wait_for(browser, "greeting")
    assert urlsplit(browser.current_url).path == "/account/"
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "fr"
    assert "Bonjour, Maël" in text(browser) and "Vos applications" in text(browser)
    assert browser.find_element(By.ID, "app-photos").get_attribute("href") == "http://127.0.0.1:9/"
    shot(browser, "account-fr")

    browser.get(rp_factory("photos", DSM_SECRET).authorize_url(scope="openid email"))
    allow = wait_for(browser, "allow")
    assert browser.find_element(By.TAG_NAME, "h1").text.replace("\u00a0", " ") == "Autoriser Family Photos ?"
    assert "Voir votre adresse e-mail" in text(browser)
    shot(browser, "consent-fr")
    allow.click()  # the form posts back, then redirects to the client: CSP form-action allows that origin
    WebDriverWait(browser, 15).until(lambda b: b.current_url.startswith(RP_REDIRECT))
    assert "code" in parse_qs(urlsplit(browser.current_url).query)
    assert csp_violations(browser) == []


def test_a_german_sign_in_and_a_german_refusal(make_browser, hub, rp_factory, upstream_provider, google_like, people,
                                               nas, dsm_client):
    upstream_provider.identity = Identity(sub="g-2", email="mum@example.com", name="Mum")
    browser = make_browser("de")
    browser.get(f"{hub}/account/")
    wait_for(browser, "greeting")
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "de"
    assert "Hallo, Mum" in text(browser) and "Ihre NAS-Konten" in text(browser) and "maman" in text(browser)
    shot(browser, "account-de")

    stranger = make_browser("de")
    upstream_provider.identity = Identity(sub="g-9", email="stranger@example.net")
    stranger.get(rp_factory("ds923-dsm", DSM_SECRET).authorize_url())
    message = wait_for(stranger, "refusal-message")
    assert message.text == "stranger@example.net gehört zu keinem Haushalt auf diesem Hub."
    assert "Bitten Sie den Admin Ihres Haushalts" in stranger.find_element(By.ID, "refusal-advice").text
    assert not stranger.find_elements(By.ID, "refusal-contacts")  # never an admin's address for a stranger
    shot(stranger, "refusal-stranger-de")
    assert csp_violations(browser) == [] and csp_violations(stranger) == []


def test_the_language_switcher(make_browser, hub, household):
    browser = make_browser("en")
    browser.get(f"{hub}/logged-out/")
    assert "You are signed out" in text(browser)
    browser.find_element(By.ID, "language-de").click()
    WebDriverWait(browser, 15).until(lambda b: "Sie sind abgemeldet" in text(b))
    assert urlsplit(browser.current_url).path == "/logged-out/"
    assert browser.find_element(By.ID, "language-de").get_attribute("aria-pressed") == "true"
    shot(browser, "logged-out-de")
    assert csp_violations(browser) == []


# --- the account page and signing out -------------------------------------------------------
def test_account_then_sign_out_lands_on_logged_out_and_stays(make_browser, hub, upstream_provider, google_like, people,
                                                             nas, dsm_client, public_client):
    upstream_provider.identity = Identity(sub="g-1", email="mael@example.com")
    browser = make_browser("en")
    browser.get(f"{hub}/account/")
    wait_for(browser, "greeting")
    page = text(browser)
    assert "Hello, Maël" in page and "DSM on DS923+" in page and "Immich" in page and "mael.valais" in page
    assert "g-1" in page and "Google" in page and "Valais family" in page
    shot(browser, "account")

    browser.find_element(By.ID, "sign-out").click()
    wait_for(browser, "sign-in-again")
    assert urlsplit(browser.current_url).path == "/logged-out/"
    time.sleep(1.5)  # nothing moves on by itself: no redirect, no refresh, no script
    assert urlsplit(browser.current_url).path == "/logged-out/"
    assert "You are signed out" in text(browser)
    shot(browser, "logged-out")
    browser.get(f"{hub}/account/")  # really signed out of the hub: the next visit signs in again
    wait_for(browser, "greeting")
    assert csp_violations(browser) == []


def test_rp_initiated_logout_without_a_return_address_lands_on_logged_out(make_browser, hub, rp_factory,
                                                                          upstream_provider, google_like, people,
                                                                          nas, dsm_client):
    upstream_provider.identity = Identity(sub="g-1", email="mael@example.com")
    rp = rp_factory("ds923-dsm", DSM_SECRET)
    browser = make_browser("en")
    browser.get(rp.authorize_url())
    WebDriverWait(browser, 15).until(lambda b: b.current_url.startswith(RP_REDIRECT))
    code = parse_qs(urlsplit(browser.current_url).query)["code"][0]
    id_token = rp.token(code, auth="post").json()["id_token"]
    browser.get(f"{hub}/logout/?id_token_hint={id_token}")
    wait_for(browser, "sign-in-again")
    time.sleep(1.5)
    assert urlsplit(browser.current_url).path == "/logged-out/"

    # no hint: the hub asks first, in its own page
    browser.get(f"{hub}/account/")
    wait_for(browser, "greeting")
    browser.get(f"{hub}/logout/")
    wait_for(browser, "confirm-sign-out")
    shot(browser, "logout-confirm")
    browser.find_element(By.ID, "confirm-sign-out").click()
    wait_for(browser, "sign-in-again")
    assert csp_violations(browser) == []


# --- refusal, invalid request, 404 ----------------------------------------------------------
def test_a_refusal_says_whom_to_ask(make_browser, hub, rp_factory, upstream_provider, google_like, people, nas,
                                    dsm_client):
    upstream_provider.identity = Identity(sub="g-3", email="no.nas@example.com")
    browser = make_browser("en")
    browser.get(rp_factory("ds923-dsm", DSM_SECRET).authorize_url())
    message = wait_for(browser, "refusal-message")
    assert message.text == "no.nas@example.com has no account on DS923+."
    contacts = browser.find_element(By.ID, "refusal-contacts").text
    assert "Maël Valais" in contacts and "mael@example.com" in contacts
    assert browser.find_element(By.ID, "retry").text == "Use another account"
    shot(browser, "refusal-no-nas-account")
    assert csp_violations(browser) == []


def test_the_invalid_request_page_and_the_404(make_browser, hub, upstream_provider, google_like, people, dsm_client):
    upstream_provider.identity = Identity(sub="g-1", email="mael@example.com")
    browser = make_browser("en")
    browser.get(f"{hub}/authorize/?response_type=code&client_id=ds923-dsm&scope=openid"
                "&redirect_uri=https%3A%2F%2Fevil.example%2Fcb%3Fx%3D%3Cb%3E")
    wait_for(browser, "authorize-error")
    assert browser.find_element(By.ID, "sent-client-id").text == "ds923-dsm"
    assert browser.find_element(By.ID, "sent-redirect-uri").text == "https://evil.example/cb?x=<b>"
    assert browser.title == "Sign-in link not valid · Identity Hub"
    assert urlsplit(browser.current_url).netloc == urlsplit(hub).netloc
    shot(browser, "invalid-request")

    browser.get(f"{hub}/no/such/page/")
    heading = wait_for(browser, "error-heading")
    assert heading.text == "There is no page here" and browser.title == "Page not found · Identity Hub"
    shot(browser, "404")
    assert csp_violations(browser) == []


# --- a 360px phone --------------------------------------------------------------------------
def test_sign_in_and_account_on_a_360px_phone(make_browser, hub, upstream_provider, google_like, people, nas,
                                              dsm_client, public_client):
    from accounts.services import declare_upstream

    declare_upstream("work", "oidc", name="Work account", issuer="https://login.example.org", client_id="hub",
                     client_secret="work-secret-0123456789-abcdefghijkl", position=1)
    browser = make_browser("en", width=360, height=740)
    browser.get(f"{hub}/login/")
    button = wait_for(browser, "upstream-google")
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 360  # no sideways scrolling
    assert button.size["width"] >= 280 and button.size["height"] >= 44  # a full-width, thumb-sized button
    assert browser.find_element(By.ID, "upstream-work").text == "Continue with Work account"
    shot(browser, "login-360")

    upstream_provider.identity = Identity(sub="g-1", email="mael@example.com")
    button.click()
    WebDriverWait(browser, 15).until(lambda b: urlsplit(b.current_url).path == "/account/")
    wait_for(browser, "greeting")
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 360
    shot(browser, "account-360")
    browser.get(f"{hub}/no/such/page/")
    wait_for(browser, "error-heading")
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 360
    shot(browser, "404-360")
    assert csp_violations(browser) == []


def test_keyboard_focus_is_visible(make_browser, hub, household, google_like):
    from accounts.services import declare_upstream

    declare_upstream("work", "oidc", name="Work", issuer="https://login.example.org", client_id="hub",
                     client_secret="work-secret-0123456789-abcdefghijkl", position=1)
    browser = make_browser("en")
    browser.get(f"{hub}/login/")
    wait_for(browser, "upstream-google")
    from selenium.webdriver.common.keys import Keys

    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)  # the skip link comes first
    assert browser.switch_to.active_element.get_attribute("class") == "skip-link"
    body.send_keys(Keys.TAB)
    focused = browser.switch_to.active_element
    assert focused.get_attribute("id") == "upstream-google"
    assert focused.value_of_css_property("outline-style") == "solid"
    shot(browser, "login-keyboard-focus")


# --- the Django admin under the same policy -------------------------------------------------
def test_the_admin_works_under_the_csp(make_browser, hub, upstream_provider, google_like, people, nas):
    from django.urls import reverse

    upstream_provider.identity = Identity(sub="g-1", email="mael@example.com")
    browser = make_browser("en")
    browser.get(f"{hub}/admin/")  # the admin's login redirects to the hub's sign-in, and back
    WebDriverWait(browser, 15).until(lambda b: urlsplit(b.current_url).path == "/admin/")
    wait_for(browser, "content")
    shot(browser, "admin-index")
    browser.get(hub + reverse("admin:accounts_household_changelist"))
    WebDriverWait(browser, 15).until(lambda b: "Valais family" in text(b))
    shot(browser, "admin-household-list")
    browser.get(hub + reverse("admin:accounts_household_change", args=["valais"]))
    save = WebDriverWait(browser, 15).until(
        expected_conditions.element_to_be_clickable((By.CSS_SELECTOR, "input[name=_continue], input[name=_save]")))
    shot(browser, "admin-household-change")
    # the admin's own scripts (files) ran: the sidebar toggle and the inline forms' "add another" link
    assert browser.execute_script("return typeof window.django !== 'undefined' || typeof window.jQuery !== 'undefined'")
    save.click()
    WebDriverWait(browser, 15).until(lambda b: b.find_elements(By.CSS_SELECTOR, ".messagelist, .errornote"))
    assert browser.find_elements(By.CSS_SELECTOR, ".messagelist .success"), text(browser)[:500]
    assert csp_violations(browser) == []
