"""Roles in the browser: viewers see everything and no controls; non-members get 404."""

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec

from tests.dashboard.pages import text_in, wait

pytestmark = [pytest.mark.browser, pytest.mark.daphne]

CONTROLS = (
    "#start-experiment, #stop-experiment, [data-export], button[data-action], "
    "button[data-decision], .plan-card textarea"
)


def test_a_viewer_sees_the_live_experiment_and_no_controls(browser, login, experiment):
    body, (agent, _other) = experiment(members={"viewer": "viewer"})
    agent.progress(25, "Watched by a viewer")
    agent.plan({"steps": ["one", "two"]})
    login(browser, "viewer", f"/experiments/{body['id']}/")

    card = wait(browser, ec.visibility_of_element_located((By.CSS_SELECTOR, ".plan-card")))
    assert "An operator of this experiment decides" in card.text
    row = (By.CSS_SELECTOR, f'#runs-body tr[data-run-id="{agent.run_id}"]')
    wait(browser, text_in(row, "25.0%"))
    assert browser.find_element(By.ID, "viewer-note").is_displayed()
    assert browser.find_elements(By.CSS_SELECTOR, CONTROLS) == []
    # Still live for a viewer.
    _other.progress(70, "Still streaming")
    wait(browser, text_in((By.CSS_SELECTOR, f'#runs-body tr[data-run-id="{_other.run_id}"]'), "70.0%"))


def test_an_operator_sees_the_controls(browser, login, experiment, carol):
    body, (agent, _other) = experiment(members={carol: "operator"})
    agent.plan({"steps": ["one"]})
    login(browser, carol, f"/experiments/{body['id']}/")
    card = wait(browser, ec.visibility_of_element_located((By.CSS_SELECTOR, ".plan-card")))
    assert card.find_element(By.CSS_SELECTOR, "button[data-decision=approve]").is_displayed()
    assert browser.find_element(By.ID, "stop-experiment").is_displayed()
    assert browser.find_elements(By.CSS_SELECTOR, "button[data-action=stop-run]")


def test_a_viewer_cannot_select_experiments_for_bulk_actions(browser, login, experiment):
    body, _agents = experiment(members={"viewer": "viewer"})
    login(browser, "viewer")
    row = wait(browser, ec.presence_of_element_located((By.CSS_SELECTOR, f'tr[data-experiment-id="{body["id"]}"]')))
    assert row.find_elements(By.CSS_SELECTOR, "input[type=checkbox]") == []


def test_a_non_member_gets_not_found(browser, login, experiment, server):
    body, _agents = experiment()
    login(browser, "outsider")
    browser.get(f"{server.url}/experiments/{body['id']}/")
    assert "404" in browser.find_element(By.TAG_NAME, "h1").text
    assert browser.find_elements(By.ID, "runs") == []
    # Nor is it on the outsider's list.
    browser.get(f"{server.url}/")
    wait(browser, ec.presence_of_element_located((By.CSS_SELECTOR, "#experiments-body tr")))
    assert browser.find_elements(By.CSS_SELECTOR, f'tr[data-experiment-id="{body["id"]}"]') == []
