"""The household console in Chromium: a household admin adds a NAS, tests it, syncs it, reads the
dashboard, a person's page and the audit trail — and the neighbour's admin sees none of it.

Screenshots land in var/screenshots/ (git-ignored)."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser.helpers import SHOTS, shot, sign_browser_in, submit
from tests.fakes.dsm import FakeDSM

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SERVICE_USER, SERVICE_PASSWORD = "hub-sync", "s3cret-Pa55word!"






@pytest.fixture
def fake_dsm():
    fake = FakeDSM("dsm7", csrf=True)
    fake.accounts = {SERVICE_USER: fake.accounts["hub-sync"]}
    fake.add_user("mael.valais", email="mael@example.com")
    fake.add_user("maman", email="")
    fake.add_user("admin", email="")
    fake.start()
    yield fake
    fake.stop()






def text_of(browser, css: str) -> str:
    return WebDriverWait(browser, 15).until(lambda b: b.find_element(By.CSS_SELECTOR, css)).text


def test_a_household_admin_adds_tests_and_syncs_a_nas(browser, hub, people, household, fake_dsm, eager_celery):
    from synology.models import NAS, SyncRun

    browser.set_window_size(1280, 900)
    sign_browser_in(browser, hub, people["mael"])
    browser.get(f"{hub}/admin/")
    assert "Valais family" in text_of(browser, "#household-valais")
    shot(browser, "console-dashboard-empty")

    browser.get(f"{hub}/admin/synology/nas/add/")
    browser.find_element(By.ID, "id_id").send_keys("ds923")
    browser.find_element(By.ID, "id_name").send_keys("DS923+")
    browser.find_element(By.ID, "id_base_url").send_keys("http://192.0.2.10:5000")
    browser.find_element(By.ID, "id_service_username").send_keys(SERVICE_USER)
    browser.find_element(By.ID, "id_service_password").send_keys(SERVICE_PASSWORD)
    submit(browser, By.NAME, "_continue")
    error = text_of(browser, ".errorlist")
    assert "https" in error  # the service password would cross the LAN in clear
    shot(browser, "console-nas-add-http-refused")
    url_field = browser.find_element(By.ID, "id_base_url")
    url_field.clear()
    url_field.send_keys(fake_dsm.url)  # http on loopback is accepted, as in `hub check`
    browser.find_element(By.ID, "id_service_password").send_keys(SERVICE_PASSWORD)
    submit(browser, By.NAME, "_continue")
    WebDriverWait(browser, 15).until(lambda b: "/admin/synology/nas/ds923/change/" in b.current_url)
    assert NAS.objects.get(pk="ds923").household_id == "valais"

    submit(browser, By.ID, "tool-test-connection")
    message = text_of(browser, ".messagelist")
    assert fake_dsm.dsm_version in message and "may list users" in message
    shot(browser, "console-nas-test-connection")

    submit(browser, By.ID, "tool-sync-now")
    assert "queued" in text_of(browser, ".messagelist")
    run = SyncRun.objects.get(nas_id="ds923")
    assert run.outcome == "ok" and run.new == len(fake_dsm.users)
    assert run.new == 3
    accounts = text_of(browser, "#content-main")
    assert "mael.valais" in accounts and "mael@example.com" in accounts  # linked by verified email
    runs = text_of(browser, "#sync-runs")
    assert "ok" in runs and f"+{run.new}" in runs
    shot(browser, "console-nas-synced")

    browser.get(f"{hub}/admin/")
    line = text_of(browser, "#nas-ds923")
    assert "ok just now" in line and "Mum" in line and "Maël" not in line  # maman has no email in DSM
    shot(browser, "console-dashboard")


def test_a_wrong_password_is_reported_with_dsms_own_error(browser, hub, people, household, fake_dsm):
    from synology.services import declare_nas

    declare_nas("ds923", household=household, base_url=fake_dsm.url, name="DS923+",
                service_username=SERVICE_USER, service_password="wrong-password")
    sign_browser_in(browser, hub, people["mael"])
    browser.get(f"{hub}/admin/synology/nas/ds923/change/")
    submit(browser, By.ID, "tool-test-connection")
    message = text_of(browser, ".messagelist .error")
    assert "400" in message or "password" in message.lower()
    shot(browser, "console-nas-test-connection-failed")


def test_person_page_and_refusals_then_the_neighbour_sees_nothing(browser, hub, people, nas, dsm_client, household,
                                                                  other_household):
    from accounts.models import Membership
    from identityhub.audit import record_event

    record_event("refusal", reason="no_nas_account", user=people["no_nas"], client_id=dsm_client.client_id,
                 nas_id=nas.pk)
    record_event("sign_in", user=people["mael"], upstream_id="google")
    sign_browser_in(browser, hub, people["mael"])
    browser.get(f"{hub}/admin/")
    refusals = text_of(browser, "#recent-refusals")
    assert "no.nas@example.com" in refusals and "Link a DSM account" in refusals
    browser.get(f"{hub}/admin/accounts/user/{people['mael'].pk}/change/")
    page = text_of(browser, "#content-main")
    assert "ds923" in page and "mael.valais" in page
    shot(browser, "console-person")
    browser.get(f"{hub}/admin/identityhub/auditevent/?kind=refusal")
    assert "no.nas@example.com" in text_of(browser, "#result_list")
    shot(browser, "console-audit-refusals")

    browser.delete_all_cookies()
    Membership.objects.filter(user=people["outsider"], household=other_household).update(role="admin")
    sign_browser_in(browser, hub, people["outsider"])
    browser.get(f"{hub}/admin/")
    page = text_of(browser, "#content-main")
    assert "The neighbours" in page and "Valais" not in page and "no.nas" not in page
    shot(browser, "console-dashboard-neighbour")
    browser.get(f"{hub}/admin/synology/nas/{nas.pk}/change/")
    assert "DS923+" not in browser.page_source
    shot(browser, "console-neighbour-404")


def test_the_console_on_a_phone(browser, hub, people, nas):
    sign_browser_in(browser, hub, people["mael"])
    browser.set_window_size(390, 844)
    browser.get(f"{hub}/admin/")
    assert "DS923+" in text_of(browser, "#household-valais")
    width = browser.execute_script("return document.documentElement.scrollWidth")
    assert width <= 400, f"the dashboard scrolls sideways on a phone ({width}px)"
    browser.save_screenshot(str(SHOTS / "console-dashboard-phone.png"))


def test_the_dashboard_and_connect_dsm_in_french(browser, hub, people, nas, dsm_client, settings):
    from datetime import timedelta

    from django.utils import timezone

    from identityhub.audit import record_event
    from synology.models import NAS

    now = timezone.now()
    NAS.objects.filter(pk=nas.pk).update(last_status=NAS.Status.UNREACHABLE, failing_since=now - timedelta(minutes=20),
                                         last_attempt_at=now, next_sync_at=now + timedelta(minutes=30))
    record_event("refusal", reason="no_nas_account", user=people["no_nas"], client_id=dsm_client.client_id,
                 nas_id=nas.pk)
    browser.set_window_size(1280, 900)
    sign_browser_in(browser, hub, people["mael"])
    browser.add_cookie({"name": settings.LANGUAGE_COOKIE_NAME, "value": "fr", "path": "/"})
    browser.get(f"{hub}/admin/")
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "fr"
    assert "injoignable depuis" in text_of(browser, "#nas-ds923")
    refusals = text_of(browser, "#recent-refusals")
    assert "Refus récents" in refusals and "Associer un compte DSM" in refusals
    assert "Gérer" in text_of(browser, "#console-sections")
    shot(browser, "console-dashboard-fr")

    browser.get(f"{hub}/admin/oauth2_provider/application/{dsm_client.pk}/change/")
    connect = text_of(browser, "#connect-dsm")
    assert "Connecter DSM" in connect and "ID d’application" in connect and "Copier" in connect
    shot(browser, "console-app-connect-dsm-fr")


def test_the_nas_and_person_pages_in_french_on_a_phone(make_browser, hub, people, nas):
    browser = make_browser("fr", 390, 844)
    sign_browser_in(browser, hub, people["mael"])
    for path, name, expected in ((f"/admin/synology/nas/{nas.pk}/change/", "console-nas-fr-phone", "Tester la connexion"),
                                 (f"/admin/accounts/user/{people['mael'].pk}/change/", "console-person-fr-phone",
                                  "mael.valais")):
        browser.get(f"{hub}{path}")
        assert expected.lower() in text_of(browser, "#content").lower()
        shot(browser, name)
