"""Shared steps of the browser tests: screenshots, a signed-in browser, submitting a form."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import signed_in

SHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"  # git-ignored


def shot(browser, name: str) -> Path:
    """Save a full-page screenshot as var/screenshots/<name>.png."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    width = browser.get_window_size()["width"]
    browser.set_window_size(width, 800)
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(width, max(800, min(height + 120, 4000)))
    path = SHOTS / f"{name}.png"
    browser.save_screenshot(str(path))
    return path


def sign_browser_in(browser, hub: str, user) -> None:
    """Hand the browser the session of a test client signed in as `user` (as an upstream sign-in would)."""
    from django.test import Client

    client = signed_in(Client(), user)
    browser.get(f"{hub}/healthz")
    browser.add_cookie({"name": settings.SESSION_COOKIE_NAME,
                        "value": client.cookies[settings.SESSION_COOKIE_NAME].value, "path": "/"})


def submit(browser, by, value) -> None:
    """Click a submitting element and wait for the next page (never read the old one)."""
    page = browser.find_element(By.TAG_NAME, "html")
    browser.find_element(by, value).click()
    # While the page is replaced, Chromium may answer a query about the old one with "node does not
    # belong to the document" instead of "stale": any WebDriver error then means "ask again".
    wait = WebDriverWait(browser, 15, ignored_exceptions=(WebDriverException,))
    wait.until(expected_conditions.staleness_of(page))
    wait.until(lambda b: b.execute_script("return document.readyState") == "complete"
               and b.find_elements(By.CSS_SELECTOR, "body > *"))
