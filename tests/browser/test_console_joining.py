"""Invitations and access requests in the console, in Chromium: the dashboard's line, the invitation
form (with a new account created on the DSM fake), the link shown once and copied, and an access
request's decision page — at 1024 px and on a 360 px phone, with no CSP violation.

Screenshots land in var/screenshots/ (git-ignored)."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.browser.helpers import shot, sign_browser_in, submit
from tests.joining.fixtures_console import *  # noqa: F403  (fake_dsm, live_nas, …)
from tests.joining.fixtures_console import ask

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def csp_violations(browser) -> list[str]:
    return [entry["message"] for entry in browser.get_log("browser")
            if "Content Security Policy" in entry["message"] or "Content-Security-Policy" in entry["message"]]


def scroll_width(browser) -> int:
    return browser.execute_script("return document.documentElement.scrollWidth")


def clipboard(browser) -> str:
    return browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "navigator.clipboard.readText().then(done, e => done('ERROR ' + e));")


def invite(browser, email: str, name: str, new_account: str) -> None:
    """Fill the invitation form (the household is chosen already)."""
    browser.find_element(By.ID, "id_email").send_keys(email)
    browser.find_element(By.ID, "id_name").send_keys(name)
    Select(browser.find_element(By.ID, "id_nas")).select_by_value("ds923")
    browser.find_element(By.ID, "id_create_account").send_keys(new_account)


def test_inviting_and_deciding_at_1024_px(browser, hub, people, live_nas, dsm_client, fake_dsm):
    from joining.models import AccessRequest, Invitation
    from synology.models import DSMAccount

    browser.execute_cdp_cmd("Browser.grantPermissions", {
        "origin": hub, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]})
    request = ask("valais", dsm_client.client_id, live_nas.pk, email="bob@example.net", name="Bob Martin",
                  subject="g-bob")
    sign_browser_in(browser, hub, people["mael"])

    # the dashboard says a request waits, and offers to invite
    browser.get(f"{hub}/admin/")
    assert browser.find_element(By.ID, "requests-valais").text == "1 access request waiting"
    shot(browser, "console-joining-dashboard-1024")

    # the invitation form
    submit(browser, By.ID, "invite-valais")
    assert Select(browser.find_element(By.ID, "id_household")).first_selected_option.text == "Valais family"
    invite(browser, "granny@example.net", "Granny Smith", "granny")
    shot(browser, "console-joining-invite-form-1024")
    submit(browser, By.ID, "make-invitation")

    # the link, once, copied
    link = browser.find_element(By.ID, "invitation-link").text
    assert link.startswith(f"{hub}/invite/")
    assert "will not be shown again" in browser.find_element(By.ID, "link-warning").text
    browser.find_element(By.ID, "copy-link").click()
    WebDriverWait(browser, 5).until(lambda b: b.find_element(By.ID, "copy-link").text == "Copied")
    assert clipboard(browser) == link
    shot(browser, "console-joining-link-once-1024")
    assert fake_dsm.find_user("granny") and DSMAccount.objects.get(name="granny").user.email == "granny@example.net"
    submit(browser, By.ID, "continue")
    assert link not in browser.page_source
    assert "waiting" in browser.find_element(By.CSS_SELECTOR, ".field-state_label").text
    shot(browser, "console-joining-invitation-1024")

    # the request's decision page, reached from the dashboard
    browser.get(f"{hub}/admin/")
    submit(browser, By.ID, "requests-valais")
    submit(browser, By.LINK_TEXT, "bob@example.net")
    facts = browser.find_element(By.ID, "request-facts").text
    assert "Bob Martin <bob@example.net>" in facts and "g-bob" in facts
    assert browser.find_element(By.ID, "id_new_name").get_attribute("value") == "bob.martin"
    shot(browser, "console-joining-request-1024")
    submit(browser, By.ID, "approve")
    success = browser.find_element(By.CSS_SELECTOR, ".messagelist .success").text
    assert success == "Approved: bob@example.net joined Valais family with the new account bob.martin on DS923+."
    shot(browser, "console-joining-approved-1024")
    request.refresh_from_db()
    assert request.state == AccessRequest.State.APPROVED and fake_dsm.find_user("bob.martin")
    assert Invitation.objects.count() == 1
    assert csp_violations(browser) == []


def test_inviting_and_deciding_on_a_phone(make_browser, hub, people, live_nas, dsm_client, fake_dsm):
    browser = make_browser("en", 360, 800)
    ask("valais", dsm_client.client_id, live_nas.pk, email="bob@example.net", name="Bob Martin", subject="g-bob")
    sign_browser_in(browser, hub, people["mael"])

    browser.get(f"{hub}/admin/joining/invitation/add/")
    invite(browser, "granny@example.net", "Granny Smith", "granny")
    assert scroll_width(browser) <= 360, f"the invitation form scrolls sideways ({scroll_width(browser)}px)"
    shot(browser, "console-joining-invite-form-360")
    submit(browser, By.ID, "make-invitation")
    assert browser.find_element(By.ID, "invitation-link").text.startswith(f"{hub}/invite/")
    assert scroll_width(browser) <= 360, f"the link page scrolls sideways ({scroll_width(browser)}px)"
    shot(browser, "console-joining-link-once-360")

    browser.get(f"{hub}/admin/joining/accessrequest/")
    submit(browser, By.LINK_TEXT, "bob@example.net")
    browser.find_element(By.ID, "id_choice_0").click()  # link an existing account
    Select(browser.find_element(By.ID, "id_account")).select_by_value("photos")
    assert scroll_width(browser) <= 360, f"the decision page scrolls sideways ({scroll_width(browser)}px)"
    shot(browser, "console-joining-request-360")
    submit(browser, By.ID, "approve")
    assert "with the account photos on DS923+" in browser.find_element(By.CSS_SELECTOR, ".messagelist").text
    shot(browser, "console-joining-approved-360")
    assert csp_violations(browser) == []
