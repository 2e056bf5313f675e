"""A real headless Chromium (Debian's chromium + chromium-driver) driving the live hub."""

import os
import shutil
import tempfile

import pytest


@pytest.fixture
def make_browser():
    """Like tests/browser/conftest.py's `browser`, with a language (`--lang` and the
    `intl.accept_languages` pref, which sets Accept-Language), a window size and the console log
    (where Chromium reports Content-Security-Policy violations)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not (chromium and driver_path):
        if os.environ.get("HUB_REQUIRE_SERVICES") == "1":
            pytest.fail("CI needs Debian's chromium and chromium-driver for the browser tests")
        pytest.skip("chromium / chromedriver not installed (apt install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    started = []

    def make(lang: str = "en", width: int = 1024, height: int = 800):
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        profile = tempfile.mkdtemp(prefix="hub-chromium-")
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--disable-dev-shm-usage", f"--user-data-dir={profile}", f"--lang={lang}",
                     f"--window-size={width},{height}", "--hide-scrollbars", "--force-device-scale-factor=1"):
            options.add_argument(flag)
        options.add_experimental_option("prefs", {"intl.accept_languages": lang})
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(service=Service(driver_path), options=options)
        driver.set_page_load_timeout(20)
        driver.set_window_size(width, height)
        started.append((driver, profile))
        return driver

    yield make
    for driver, profile in started:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def browser(make_browser):
    """One English Chromium at 1024×800."""
    return make_browser()
