"""What a person sees: the sign-in round trip, a refusal page and the consent page, in Chromium."""

from urllib.parse import parse_qs, urlsplit

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import DSM_SECRET, RP_REDIRECT
from tests.fakes.oidc_upstream import Identity

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def wait_for_url(browser, prefix: str) -> str:
    WebDriverWait(browser, 15).until(lambda b: b.current_url.startswith(prefix))
    return browser.current_url


def test_sign_in_round_trip_lands_on_the_app_with_a_code(browser, hub, rp_factory, upstream_provider, google_like,
                                                         dsm_client, mael):
    upstream_provider.identity = Identity(sub="g-1", email="mael@example.com")
    rp = rp_factory("ds923-dsm", DSM_SECRET)
    browser.get(rp.authorize_url(scope="openid email"))
    arrived = wait_for_url(browser, RP_REDIRECT)
    code = parse_qs(urlsplit(arrived).query)["code"][0]
    tokens = rp.token(code, auth="post").json()
    assert rp.verify_id_token(tokens["id_token"])["username"] == "mael.valais"


def test_a_stranger_sees_a_clear_refusal(browser, hub, rp_factory, upstream_provider, google_like, dsm_client, people):
    upstream_provider.identity = Identity(sub="g-2", email="stranger@example.net")
    browser.get(rp_factory("ds923-dsm", DSM_SECRET).authorize_url())
    message = WebDriverWait(browser, 15).until(
        expected_conditions.visibility_of_element_located((By.ID, "refusal-message")))
    assert "stranger@example.net is not a member of any household" in message.text
    assert "Ask your household admin" in browser.find_element(By.ID, "refusal-advice").text
    assert not browser.current_url.startswith(RP_REDIRECT)


def test_consent_page_allows_the_app(browser, hub, rp_factory, upstream_provider, google_like, household, mael):
    from identityhub.oidc.services import register_client

    register_client("photos", name="Family Photos", redirect_uris=[RP_REDIRECT], client_secret=DSM_SECRET,
                    households=[household])
    upstream_provider.identity = Identity(sub="g-1", email="mael@example.com")
    rp = rp_factory("photos", DSM_SECRET)
    browser.get(rp.authorize_url(scope="openid email"))
    allow = WebDriverWait(browser, 15).until(expected_conditions.element_to_be_clickable((By.ID, "allow")))
    assert "Allow Family Photos?" in browser.find_element(By.TAG_NAME, "h1").text
    allow.click()
    arrived = wait_for_url(browser, RP_REDIRECT)
    assert "code" in parse_qs(urlsplit(arrived).query)
