"""The console's App page in Chromium: a household admin adds a DSM app, sees its secret once, copies
the Connect DSM values, previews claims and rotates the secret.

Screenshots land in var/screenshots/ (git-ignored)."""

from __future__ import annotations

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.browser.helpers import shot, sign_browser_in, submit

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]









def clipboard(browser) -> str:
    return browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "navigator.clipboard.readText().then(done, e => done('ERROR ' + e));")


def test_a_household_admin_adds_a_dsm_app_and_connects_dsm(browser, hub, nas, people):
    browser.set_window_size(1280, 800)
    browser.execute_cdp_cmd("Browser.grantPermissions", {
        "origin": hub, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]})
    sign_browser_in(browser, hub, people["mael"])

    # add the app
    browser.get(f"{hub}/admin/oauth2_provider/application/add/")
    browser.find_element(By.ID, "id_name").send_keys("DSM on DS923+")
    browser.find_element(By.ID, "id_client_id").send_keys("ds923-dsm")
    browser.find_element(By.ID, "id_redirect_uris").send_keys("https://ds923.example.com:5001\n"
                                                             "https://ds923.example.com:5001/")
    Select(browser.find_element(By.ID, "id_nas")).select_by_value("ds923")
    browser.find_element(By.ID, "id_skip_authorization").click()
    shot(browser, "console-app-add")
    submit(browser, By.NAME, "_save")

    # the secret, once
    secret = browser.find_element(By.ID, "client-secret").text
    assert len(secret) >= 43
    assert "will not be shown again" in browser.find_element(By.ID, "secret-warning").text
    browser.find_element(By.ID, "copy-secret").click()
    WebDriverWait(browser, 5).until(lambda b: b.find_element(By.ID, "copy-secret").text == "Copied")
    assert clipboard(browser) == secret
    shot(browser, "console-app-secret-once")
    submit(browser, By.ID, "continue")

    # Connect DSM, on the change page (the secret is not there any more)
    assert secret not in browser.page_source
    block = browser.find_element(By.ID, "connect-dsm")
    browser.execute_script("arguments[0].scrollIntoView()", block)
    discovery = requests.get(f"{hub}/.well-known/openid-configuration", timeout=10).json()
    well_known = browser.find_element(By.ID, "dsm-value-well-known-url").text
    assert well_known == f"{discovery['issuer']}/.well-known/openid-configuration" == \
        f"{hub}/.well-known/openid-configuration"
    assert browser.find_element(By.ID, "dsm-value-application-id").text == "ds923-dsm"
    assert browser.find_element(By.ID, "dsm-value-redirect-url").text == "https://ds923.example.com:5001"
    assert browser.find_element(By.ID, "dsm-value-username-claim").text == "username"
    button = browser.find_element(By.CSS_SELECTOR, '[data-copy="dsm-value-well-known-url"]')
    button.click()
    WebDriverWait(browser, 5).until(lambda b: button.text == "Copied")
    assert clipboard(browser) == well_known
    shot(browser, "console-app-connect-dsm")

    # claims preview: mael gets his DSM account name; someone without an account is refused
    submit(browser, By.ID, "tool-claims-preview")
    Select(browser.find_element(By.ID, "id_person")).select_by_visible_text("Maël Valais <mael@example.com>")
    submit(browser, By.ID, "preview")
    assert '"username": "mael.valais"' in browser.find_element(By.ID, "claims-id-token").text
    assert '"username": "mael.valais"' in browser.find_element(By.ID, "claims-userinfo").text
    shot(browser, "console-app-claims-preview")
    Select(browser.find_element(By.ID, "id_person")).select_by_visible_text("No NAS <no.nas@example.com>")
    submit(browser, By.ID, "preview")
    assert "no_nas_account" in browser.find_element(By.ID, "refusal-reason").text
    shot(browser, "console-app-claims-refusal")

    # rotate the secret: confirm, then the new one once
    browser.back()
    browser.back()
    browser.get(f"{hub}/admin/oauth2_provider/application/")
    submit(browser, By.LINK_TEXT, "DSM on DS923+")
    submit(browser, By.ID, "tool-rotate-secret")
    shot(browser, "console-app-rotate-confirm")
    submit(browser, By.ID, "confirm-rotate")
    rotated = browser.find_element(By.ID, "client-secret").text
    assert rotated and rotated != secret
    shot(browser, "console-app-rotated-secret")


def test_the_neighbours_admin_does_not_see_the_app(browser, hub, dsm_client, people, other_household):
    from accounts.models import Membership

    membership = Membership.objects.get(user=people["outsider"], household=other_household)
    membership.role = Membership.Role.ADMIN
    membership.save()
    sign_browser_in(browser, hub, people["outsider"])
    browser.get(f"{hub}/admin/oauth2_provider/application/")
    assert "ds923-dsm" not in browser.page_source and "DSM on DS923+" not in browser.page_source
    shot(browser, "console-app-list-neighbour")
    browser.get(f"{hub}/admin/oauth2_provider/application/{dsm_client.pk}/change/")
    assert "DSM on DS923+" not in browser.page_source


def test_an_operator_rotates_the_signing_key(browser, hub, db):
    from accounts.models import User
    from identityhub.oidc import keys
    from identityhub.oidc.models import SigningKey

    first = keys.ensure_active_key()
    browser.set_window_size(1280, 800)
    sign_browser_in(browser, hub, User.objects.create_superuser("op@example.com", name="Operator"))
    browser.get(f"{hub}/admin/oidc/signingkey/")
    submit(browser, By.ID, "tool-rotate-key")
    assert "is the active key" in browser.find_element(By.CSS_SELECTOR, ".messagelist").text
    assert SigningKey.objects.get(active=True).pk != first.pk
    shot(browser, "console-signing-keys-rotated")
    browser.get(f"{hub}/admin/oidc/signingkey/{SigningKey.objects.get(active=True).pk}/change/")
    assert not browser.find_elements(By.CSS_SELECTOR, ".deletelink")
    shot(browser, "console-signing-key-active")
