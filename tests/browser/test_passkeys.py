"""Passkeys in Chromium with WebDriver's virtual authenticator (CTAP2, internal, resident keys, user
verification): added on /account/, used to sign in to DSM through an authorization request, asked
again under prompt=login, refused once removed; offered in the browser's autofill (conditional UI).

The virtual authenticator answers at once: when it is present as the sign-in page loads, the
page's autofill request is served straight away (as if the person picked their passkey in the
autofill list). The tests that press the button "unplug" it first (keeping its credentials) and
plug it back in once the page is shown. Screenshots go to var/screenshots/ (git-ignored)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.virtual_authenticator import Protocol, Transport, VirtualAuthenticatorOptions
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser.helpers import shot, sign_browser_in, submit
from tests.conftest import DSM_SECRET, RP_REDIRECT

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


class PhoneAuthenticator(VirtualAuthenticatorOptions):
    """A platform authenticator that keeps passkeys, verifies the person, and syncs (backup flags)."""

    def __init__(self) -> None:
        super().__init__(protocol=Protocol.CTAP2, transport=Transport.INTERNAL, has_resident_key=True,
                         has_user_verification=True, is_user_verified=True)

    def to_dict(self) -> dict:
        return {**super().to_dict(), "defaultBackupEligibility": True, "defaultBackupState": True}


def plug(browser, credentials=()) -> None:
    browser.add_virtual_authenticator(PhoneAuthenticator())
    for credential in credentials:
        browser.add_credential(credential)


def unplug(browser) -> list:
    """Take the authenticator away, keeping what it holds (to plug it back in later)."""
    credentials = browser.get_credentials()
    browser.remove_virtual_authenticator()
    return credentials


def wait_for(browser, element_id: str):
    return WebDriverWait(browser, 15).until(expected_conditions.visibility_of_element_located((By.ID, element_id)))


def wait_for_path(browser, path: str) -> None:
    WebDriverWait(browser, 15).until(lambda b: urlsplit(b.current_url).path == path)


def arrive_at_rp(browser) -> dict:
    WebDriverWait(browser, 15).until(lambda b: b.current_url.startswith(RP_REDIRECT))
    return {k: v[0] for k, v in parse_qs(urlsplit(browser.current_url).query).items()}


def csp_violations(browser) -> list[str]:
    return [e["message"] for e in browser.get_log("browser") if "Content Security Policy" in e["message"]]


def passkey_rows(browser) -> int:
    return len(browser.find_elements(By.CSS_SELECTOR, "#passkey-list li.passkey"))


def add_passkey(browser, hub: str, name: str = "") -> None:
    browser.get(f"{hub}/account/")
    wait_for(browser, "passkey-add")
    before = passkey_rows(browser)
    if name:
        browser.find_element(By.ID, "passkey-new-name").send_keys(name)
    browser.find_element(By.ID, "passkey-add").click()
    WebDriverWait(browser, 15, ignored_exceptions=(WebDriverException,)).until(
        lambda b: passkey_rows(b) == before + 1)


def sign_out(browser) -> None:
    browser.find_element(By.ID, "sign-out").click()
    wait_for_path(browser, "/logged-out/")


def id_token_claims(rp, code: str) -> dict:
    response = rp.token(code)
    assert response.status_code == 200, response.text
    return rp.verify_id_token(response.json()["id_token"])


# --- add, sign out, sign in to DSM with the passkey, prompt=login asks again --------------------
def test_a_passkey_signs_in_to_dsm_and_prompt_login_asks_again(make_browser, hub, people, nas, dsm_client,
                                                                rp_factory):
    from accounts.models import Passkey
    from identityhub.models import AuditEvent

    mael = people["mael"]
    browser = make_browser("en")
    sign_browser_in(browser, hub, mael)
    plug(browser)
    add_passkey(browser, hub, name="Maël's laptop")
    passkey = Passkey.objects.get(user=mael)
    assert passkey.name == "Maël's laptop" and passkey.backup_eligible and passkey.backup_state
    assert passkey.transports == ["internal"]
    row = browser.find_element(By.ID, f"passkey-{passkey.pk}")
    assert "Maël's laptop" in row.text and "synced" in row.text and "not used yet" in row.text
    assert "is added" in browser.find_element(By.ID, "notices").text
    shot(browser, "passkeys-account")

    credentials = unplug(browser)  # the laptop's passkey stays with it; the page is shown first
    assert len(credentials) == 1 and credentials[0].is_resident_credential and credentials[0].rp_id == "localhost"
    sign_out(browser)

    rp = rp_factory("ds923-dsm", DSM_SECRET)
    browser.get(rp.authorize_url(nonce="n-1"))
    wait_for_path(browser, "/login/")
    button = wait_for(browser, "passkey-sign-in")
    assert button.text == "Sign in with a passkey"
    assert browser.find_element(By.ID, "passkey-username").get_attribute("autocomplete") == "username webauthn"
    assert not browser.find_elements(By.ID, "no-upstream")
    shot(browser, "passkeys-login")

    plug(browser, credentials)
    button.click()
    params = arrive_at_rp(browser)
    first = id_token_claims(rp, params["code"])
    assert first["username"] == "mael.valais" and first["sub"] == str(mael.public_id) and first["nonce"] == "n-1"
    passkey.refresh_from_db()
    assert passkey.last_used_at is not None and passkey.sign_count >= 2  # the virtual authenticator counts
    assert AuditEvent.objects.filter(kind="sign_in", user=mael, details__method="passkey").count() == 1

    # prompt=login: the hub asks again, even right after a passkey sign-in.
    credentials = unplug(browser)
    browser.get(rp.authorize_url(prompt="login"))
    wait_for_path(browser, "/login/")
    button = wait_for(browser, "passkey-sign-in")
    assert not browser.current_url.startswith(RP_REDIRECT)
    plug(browser, credentials)
    button.click()
    again = id_token_claims(rp, arrive_at_rp(browser)["code"])
    assert again["username"] == "mael.valais" and again["auth_time"] >= first["auth_time"]
    assert AuditEvent.objects.filter(kind="sign_in", user=mael, details__method="passkey").count() == 2
    assert csp_violations(browser) == []


# --- the browser's autofill (conditional UI) ----------------------------------------------------
def test_the_autofill_offers_the_passkey(make_browser, hub, people, nas, dsm_client, rp_factory, google_like):
    """With one upstream, /login/ no longer goes straight to it once a passkey exists; the passkey is
    offered in the autofill of the email field, and picking it signs in (the virtual authenticator
    picks at once)."""
    mael = people["mael"]
    browser = make_browser("en")
    sign_browser_in(browser, hub, mael)
    plug(browser)
    add_passkey(browser, hub)
    sign_out(browser)

    rp = rp_factory("ds923-dsm", DSM_SECRET)
    browser.get(rp.authorize_url())
    claims = id_token_claims(rp, arrive_at_rp(browser)["code"])
    assert claims["username"] == "mael.valais"
    assert csp_violations(browser) == []


# --- a removed passkey ------------------------------------------------------------------------
def test_a_removed_passkey_no_longer_signs_in(make_browser, hub, people):
    from accounts.models import Passkey
    from identityhub.models import AuditEvent

    mael = people["mael"]
    browser = make_browser("en")
    sign_browser_in(browser, hub, mael)
    plug(browser)
    add_passkey(browser, hub, name="Old phone")
    passkey = Passkey.objects.get()

    browser.find_element(By.ID, f"passkey-remove-{passkey.pk}").click()
    alert = WebDriverWait(browser, 10).until(expected_conditions.alert_is_present())
    assert "Remove the passkey “Old phone”?" in alert.text
    alert.accept()
    wait_for(browser, "no-passkeys")
    assert "no longer signs you in" in browser.find_element(By.ID, "notices").text
    assert not Passkey.objects.exists()
    credentials = unplug(browser)  # the phone still holds its copy
    sign_out(browser)

    browser.get(f"{hub}/login/?next=/account/")
    button = wait_for(browser, "passkey-sign-in")  # no upstream: the passkey button is the way in
    plug(browser, credentials)
    button.click()
    message = wait_for(browser, "passkey-message")
    assert "not known here" in message.text
    assert urlsplit(browser.current_url).path == "/login/"
    assert AuditEvent.objects.filter(kind="refusal", reason="passkey_unknown").count() == 1
    assert not AuditEvent.objects.filter(kind="sign_in").exists()
    shot(browser, "passkeys-login-unknown")
    browser.get(f"{hub}/account/")
    wait_for_path(browser, "/login/")  # still signed out
    assert csp_violations(browser) == []


# --- a 360 px phone -----------------------------------------------------------------------------
def test_passkey_pages_on_a_360px_phone(make_browser, hub, people, google_like):
    from accounts.models import Passkey

    mael = people["mael"]
    browser = make_browser("en", width=360, height=740)
    sign_browser_in(browser, hub, mael)
    plug(browser)
    add_passkey(browser, hub, name="A phone with a rather long name for a passkey")
    browser.find_element(By.ID, "passkey-add").click()  # the same device again: it says it has one
    message = wait_for(browser, "passkey-add-message")
    assert message.text == "This device already keeps a passkey for you: you can sign in with it."
    assert browser.find_element(By.ID, "passkey-add").is_enabled()
    shot(browser, "passkeys-add-exists-360")
    unplug(browser)
    plug(browser)  # a second device
    add_passkey(browser, hub)
    assert Passkey.objects.count() == 2
    browser.get(f"{hub}/account/#passkeys")
    wait_for(browser, "passkey-list")
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 360
    for button in browser.find_elements(By.CSS_SELECTOR, "#passkey-list button, #passkey-list summary"):
        assert button.size["height"] >= 40
    shot(browser, "passkeys-account-360")

    first = Passkey.objects.order_by("pk").first()
    browser.find_element(By.ID, f"passkey-rename-{first.pk}").click()
    field = wait_for(browser, f"passkey-name-{first.pk}")
    assert browser.find_element(By.ID, f"passkey-rename-{first.pk}").text == "Cancel"
    assert not browser.find_element(By.ID, f"passkey-remove-{first.pk}").is_displayed()  # one thing at a time
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 360
    shot(browser, "passkeys-rename-360")
    field.clear()
    field.send_keys("Mum's tablet")
    submit(browser, By.ID, f"passkey-save-{first.pk}")
    assert "Mum's tablet" in browser.find_element(By.ID, "passkey-list").text
    first.refresh_from_db()
    assert first.name == "Mum's tablet"

    unplug(browser)
    sign_out(browser)
    browser.get(f"{hub}/login/")
    wait_for(browser, "passkey-sign-in")
    assert browser.find_element(By.ID, "upstream-google").is_displayed()
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 360
    passkey_button = browser.find_element(By.ID, "passkey-sign-in")
    assert passkey_button.size["width"] >= 280 and passkey_button.size["height"] >= 44
    shot(browser, "passkeys-login-360")
    assert csp_violations(browser) == []


# --- the console ------------------------------------------------------------------------------
def test_a_household_admin_removes_a_members_passkey_in_the_console(make_browser, hub, people):
    from accounts.models import Passkey

    mum = people["mum"]
    passkey = Passkey.objects.create(user=mum, credential_id="mums-credential", public_key=b"cose",
                                     name="Mum's phone", backup_eligible=True, backup_state=True)
    browser = make_browser("en")
    sign_browser_in(browser, hub, people["mael"])
    browser.get(f"{hub}/admin/accounts/user/{mum.pk}/change/")
    link = wait_for(browser, f"remove-passkey-{passkey.pk}")
    assert "Mum's phone" in browser.find_element(By.ID, "passkeys-group").text
    shot(browser, "passkeys-console-person")
    link.click()
    confirm = WebDriverWait(browser, 15).until(
        expected_conditions.element_to_be_clickable((By.CSS_SELECTOR, "form input[type=submit]")))
    shot(browser, "passkeys-console-remove")
    confirm.click()
    wait_for_path(browser, f"/admin/accounts/user/{mum.pk}/change/")
    assert "no longer signs anyone in" in browser.find_element(By.CSS_SELECTOR, ".messagelist").text
    assert not Passkey.objects.exists()
    assert csp_violations(browser) == []


# --- browsers without the WebAuthn JSON helpers -------------------------------------------------
def test_the_base64url_fallback_adds_and_signs_in(make_browser, hub, people):
    """Safari before 18 and older Chromium have no parse…FromJSON / toJSON: passkeys.js encodes by hand."""
    from accounts.models import Passkey

    browser = make_browser("en")
    browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": """
        delete PublicKeyCredential.parseCreationOptionsFromJSON;
        delete PublicKeyCredential.parseRequestOptionsFromJSON;
        delete PublicKeyCredential.prototype.toJSON;
    """})
    sign_browser_in(browser, hub, people["mael"])
    plug(browser)
    browser.get(f"{hub}/account/")
    assert browser.execute_script("return typeof PublicKeyCredential.parseCreationOptionsFromJSON + "
                                  "typeof PublicKeyCredential.prototype.toJSON") == "undefinedundefined"
    add_passkey(browser, hub, name="Old browser")
    passkey = Passkey.objects.get()
    assert passkey.transports == ["internal"] and passkey.backup_state
    credentials = unplug(browser)
    sign_out(browser)

    browser.get(f"{hub}/login/?next=/account/")
    button = wait_for(browser, "passkey-sign-in")
    plug(browser, credentials)
    button.click()
    wait_for_path(browser, "/account/")
    wait_for(browser, "greeting")
    passkey.refresh_from_db()
    assert passkey.last_used_at is not None
    assert csp_violations(browser) == []
