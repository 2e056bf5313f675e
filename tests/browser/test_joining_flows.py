"""Issue 8's two "done when" flows in Chromium, all through the hub, against the real fakes:

1. A person the hub has never seen asks for access from the DSM app's refusal page; the household
   admin approves in the console with "create a new account"; the person's next sign-in lands in
   DSM with that new account as `username`.
2. A person with no Google account joins from an invitation with a passkey (WebDriver's virtual
   authenticator) and signs in to DSM with it.

Screenshots (var/screenshots/joining-*.png) are the closing note's pictures of these flows."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By

from tests.browser.helpers import shot, sign_browser_in, submit
from tests.browser.test_passkeys import (
    arrive_at_rp,
    csp_violations,
    id_token_claims,
    plug,
    unplug,
    wait_for,
    wait_for_path,
)
from tests.conftest import DSM_SECRET
from tests.fakes.oidc_upstream import Identity

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_stranger_asks_is_approved_with_a_new_dsm_account_and_signs_in_to_it(
        make_browser, hub, rp_factory, upstream_provider, google_like, dsm_on_fake, fake_nas, people):
    from joining.models import AccessRequest

    upstream_provider.identity = Identity(sub="g-granny", email="granny@example.net", name="Granny Smith")
    rp = rp_factory("ds923-dsm", DSM_SECRET)
    granny = make_browser("en", 390, 844)  # on her phone
    granny.get(rp.authorize_url(nonce="n-1"))
    wait_for(granny, "ask-for-access-button")
    assert "granny@example.net is not a member" in granny.find_element(By.ID, "refusal-message").text
    assert "Valais family" in granny.find_element(By.ID, "ask-for-access").text
    shot(granny, "joining-1-refused-with-ask")
    submit(granny, By.ID, "ask-for-access-button")
    assert granny.find_element(By.ID, "access-request").get_attribute("data-state") == "open"
    assert "mael@example.com" not in granny.page_source  # no admin address for a stranger
    shot(granny, "joining-2-request-sent")

    request = AccessRequest.objects.get()
    admin = make_browser("en")
    sign_browser_in(admin, hub, people["mael"])
    admin.get(f"{hub}/admin/")
    assert "1 access request waiting" in admin.find_element(By.ID, "content").text
    admin.get(f"{hub}/admin/joining/accessrequest/{request.pk}/change/")
    wait_for(admin, "decision-form")
    shot(admin, "joining-3-admin-decides")
    submit(admin, By.ID, "approve")
    assert "granny.smith" in admin.find_element(By.CSS_SELECTOR, ".messagelist").text
    shot(admin, "joining-4-admin-approved")
    assert "granny.smith" in {u["name"] for u in fake_nas.users}  # made on the NAS by the hub

    granny.get(rp.authorize_url(nonce="n-2"))  # signs in again: straight into her new DSM account
    claims = id_token_claims(rp, arrive_at_rp(granny)["code"])
    assert (claims["username"], claims["nonce"]) == ("granny.smith", "n-2")
    assert csp_violations(granny) == [] and csp_violations(admin) == []


def test_a_person_without_google_joins_with_a_passkey_and_signs_in_to_dsm(make_browser, hub, rp_factory, dsm_on_fake,
                                                                          people, mael):
    from django.utils import timezone

    from joining import services
    from joining.models import Invitation
    from synology.models import DSMAccount

    now = timezone.now()
    DSMAccount.objects.create(nas=dsm_on_fake, name="grandpa", email="", first_seen=now, last_seen=now)
    _invitation, url = services.invite(dsm_on_fake.household, "grandpa@example.com", name="Grandpa",
                                       account=services.AccountChoice(dsm_on_fake, link="grandpa"), by=mael)
    browser = make_browser("fr", 390, 844)  # Grandpa reads French, on his phone
    browser.get(url.replace("http://127.0.0.1:8000", hub))
    wait_for(browser, "invite-create-passkey")
    assert "Valais family" in browser.find_element(By.TAG_NAME, "h1").text
    shot(browser, "joining-5-invitation-fr")
    plug(browser)
    browser.find_element(By.ID, "invite-create-passkey").click()
    wait_for_path(browser, "/welcome/")
    wait_for(browser, "welcome")
    shot(browser, "joining-6-welcome-fr")
    assert Invitation.objects.get().state == "used"
    credentials = unplug(browser)
    submit(browser, By.ID, "to-account")
    submit(browser, By.ID, "sign-out")

    rp = rp_factory("ds923-dsm", DSM_SECRET)
    browser.get(rp.authorize_url(nonce="n-3"))
    wait_for_path(browser, "/login/")
    button = wait_for(browser, "passkey-sign-in")
    shot(browser, "joining-7-sign-in-with-passkey-fr")
    plug(browser, credentials)
    button.click()
    claims = id_token_claims(rp, arrive_at_rp(browser)["code"])
    assert (claims["username"], claims["nonce"]) == ("grandpa", "n-3")
    assert csp_violations(browser) == []


@pytest.mark.parametrize(("language", "ask", "sent"), [("fr", "Demander l’accès", "Votre demande a été envoyée"),
                                                       ("de", "Zugang anfragen", "Ihre Anfrage wurde gesendet")])
def test_asking_for_access_reads_in_french_and_german_on_a_phone(make_browser, rp_factory, upstream_provider,
                                                                 google_like, dsm_on_fake, language, ask, sent):
    upstream_provider.identity = Identity(sub="g-oma", email="oma@example.net", name="Oma")
    browser = make_browser(language, 360, 780)
    browser.get(rp_factory("ds923-dsm", DSM_SECRET).authorize_url())
    button = wait_for(browser, "ask-for-access-button")
    assert button.text == ask
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 360  # no sideways scroll
    shot(browser, f"joining-refused-with-ask-{language}-360")
    submit(browser, By.ID, "ask-for-access-button")
    assert browser.find_element(By.TAG_NAME, "h1").text == sent
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 360
    shot(browser, f"joining-request-sent-{language}-360")
    assert csp_violations(browser) == []
