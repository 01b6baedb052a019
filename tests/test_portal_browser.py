"""A real headless Chromium (Selenium, Debian's chromium and chromium-driver) through the
real server: log in as a unit user, see the page with its charts drawn and no script
errors, download the Excel workbook, log out, and the back button shows no data."""

from __future__ import annotations

import time

import pytest

from tests import portal_support as ps


@pytest.fixture(scope="module")
def portal(sample_run, tmp_path_factory):
    return ps.server(sample_run, tmp_path_factory.mktemp("portal"))


@pytest.fixture
def browser(chromium, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = chromium
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1400,1000", f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    options.add_experimental_option("prefs", {
        "download.default_directory": str(tmp_path / "downloads"),
        "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(ps.chromedriver()), options=options)
    driver.downloads = tmp_path / "downloads"
    yield driver
    driver.quit()


def _wait(condition, attempts: int = 300):
    """Polls a condition a bounded number of times (no wall-clock limit in the test)."""
    for _ in range(attempts):
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    return condition()


def _errors(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def test_a_unit_user_logs_in_sees_charts_downloads_and_logs_out(portal, browser):
    from selenium.webdriver.common.by import By

    browser.get(portal["url"] + "/units/hospital/H101")
    assert browser.current_url.endswith("/login")
    browser.find_element(By.ID, "username").send_keys("unit_h")
    browser.find_element(By.ID, "password").send_keys(ps.PASSWORD)
    browser.find_element(By.ID, "login-button").click()
    assert _wait(lambda: browser.current_url.endswith("/units/hospital/H101"))
    assert "Aalborg Universitetshospital" in browser.find_element(By.ID, "unit-title").text
    charts = browser.find_elements(By.CSS_SELECTOR, "#charts .plot")
    assert len(charts) >= 10
    drawn = _wait(lambda: len(browser.find_elements(
        By.CSS_SELECTOR, "#charts .plot svg.main-svg .scatterlayer .trace")) >= len(charts))
    assert drawn
    points = browser.find_elements(By.CSS_SELECTOR, "#charts .plot .scatterlayer path.point")
    assert len(points) > 50  # markers drawn, not empty axes
    assert _errors(browser) == []
    assert browser.execute_script("return typeof document.cookie === 'string' && "
                                  "document.cookie.indexOf('kvalitet_session') === -1")  # HttpOnly
    # download the workbook through the page's link
    browser.execute_cdp_cmd("Browser.setDownloadBehavior", {
        "behavior": "allow", "downloadPath": str(browser.downloads)})
    browser.find_element(By.ID, "portal-excel").click()
    name = "kvalitet_hospital_H101_2025-06.xlsx"
    assert _wait(lambda: (browser.downloads / name).is_file()
                 and not list(browser.downloads.glob("*.crdownload")))
    import openpyxl

    book = openpyxl.load_workbook(browser.downloads / name)
    assert "this_month" in book.sheetnames and book["this_month"].max_row > 5
    # log out; the back button must not show the unit's data
    browser.find_element(By.ID, "logout").click()
    assert _wait(lambda: browser.current_url.endswith("/login"))
    browser.back()
    _wait(lambda: browser.execute_script("return document.readyState") == "complete")
    time.sleep(0.5)
    assert browser.current_url.endswith("/login")
    assert "Aalborg Universitetshospital" not in browser.page_source
    assert not browser.find_elements(By.ID, "charts")
    assert _errors(browser) == []
    rows = [r for r in ps.log_rows(portal["db"]) if r["username"] == "unit_h"]
    assert ("download", "200") in [(r["action"], r["outcome"]) for r in rows]
    assert rows[-1]["action"] in ("logout", "denied")
