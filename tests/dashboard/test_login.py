"""Logging in and out of the dashboard in Chromium."""

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec

from tests.dashboard.pages import OWNER, wait, wait_live
from tests.live import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.daphne]


def test_the_list_asks_for_a_login_then_shows_it_live(browser, server):
    browser.get(f"{server.url}/")
    wait(browser, ec.url_contains("/accounts/login/"))
    browser.find_element(By.ID, "id_username").send_keys(OWNER)
    browser.find_element(By.ID, "id_password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
    wait(browser, ec.presence_of_element_located((By.ID, "experiments")))
    wait_live(browser)
    assert browser.find_element(By.CSS_SELECTOR, ".account .who").text.endswith(OWNER)


def test_a_wrong_password_is_refused_with_a_message(browser, server):
    browser.get(f"{server.url}/accounts/login/")
    browser.find_element(By.ID, "id_username").send_keys(OWNER)
    browser.find_element(By.ID, "id_password").send_keys("not-the-password")
    browser.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
    alert = wait(browser, ec.visibility_of_element_located((By.CSS_SELECTOR, ".form-error[role=alert]")))
    assert "didn't match" in alert.text


def test_logging_out_ends_the_session(browser, login, server):
    login(browser, OWNER)
    browser.find_element(By.CSS_SELECTOR, ".account button[type=submit]").click()
    wait(browser, ec.url_contains("/accounts/login/"))
    browser.get(f"{server.url}/")
    wait(browser, ec.url_contains("/accounts/login/"))
