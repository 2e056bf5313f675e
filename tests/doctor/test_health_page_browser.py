"""The console's Health checks in Chromium: the dashboard's button, the badges, at 1024 px and on a
360 px phone, with no CSP violation. Screenshots in var/screenshots/ (git-ignored)."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By

from tests.browser.conftest import browser, make_browser  # noqa: F401  (the browser fixtures)
from tests.browser.helpers import shot, sign_browser_in, submit

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def csp_violations(driver) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if "Content Security Policy" in entry["message"]]


def test_run_the_checks_from_the_dashboard(browser, hub, doctor_nas, doctor_upstream, doctor_dsm):  # noqa: F811
    from accounts.models import User

    operator = User.objects.create_superuser("root@example.net", name="Op Erator")
    doctor_dsm.accounts["hub-sync"].admin = False  # one failing line among the others
    sign_browser_in(browser, hub, operator)
    browser.get(f"{hub}/admin/")
    shot(browser, "console-dashboard-run-the-checks")
    submit(browser, By.ID, "run-health-checks")
    rows = browser.find_elements(By.CSS_SELECTOR, "#health-results tr.hub-check")
    statuses = {row.find_element(By.TAG_NAME, "th").text: row.get_attribute("data-status") for row in rows}
    assert statuses["nas ds923"] == "fail" and statuses["issuer"] == "ok" and statuses["tls"] == "warn"
    badge = browser.find_element(By.CSS_SELECTOR, "tr[data-status=fail] .hub-badge")
    assert badge.text == "FAILED"
    assert badge.value_of_css_property("background-color") == "rgba(179, 38, 30, 1)"
    shot(browser, "console-health-checks")
    browser.set_window_size(360, 800)
    submit(browser, By.ID, "run-checks")
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 370
    shot(browser, "console-health-checks-phone")
    assert csp_violations(browser) == []
