"""One experiment's page, live: progress, plans, stopping and retrying runs, charts, export."""

import json
import threading

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec

from tests.dashboard.harness import wait_until
from tests.dashboard.pages import OWNER, log_seqs, run_row, text_in, wait

pytestmark = [pytest.mark.browser, pytest.mark.daphne]

PLAN = {"summary": "Add login rate limiting", "steps": ["Write a failing test", "Add the limiter", "Run the suite"]}


def open_experiment(browser, login, experiment_id):
    login(browser, OWNER, f"/experiments/{experiment_id}/")
    wait(browser, ec.presence_of_element_located((By.CSS_SELECTOR, "#runs-body tr[data-run-id]")))
    # Anything the page keeps on window survives only if it never reloads.
    browser.execute_script("window.__sameDocument = true")


def same_document(browser) -> bool:
    return browser.execute_script("return window.__sameDocument === true")


def test_progress_moves_without_a_reload(browser, login, experiment):
    body, (agent, _other) = experiment()
    open_experiment(browser, login, body["id"])
    row = (By.CSS_SELECTOR, f'#runs-body tr[data-run-id="{agent.run_id}"]')

    agent.progress(37.5, "Writing the migration", tokens=1200, cost=0.06)
    wait(browser, text_in(row, "37.5%"))
    wait(browser, text_in(row, "Writing the migration"))
    assert "1,200" in browser.find_element(*row).text
    agent.progress(80, "Running the test suite", tokens=5000, cost=0.25)
    wait(browser, text_in(row, "80.0%"))
    wait(browser, text_in(row, "Running the test suite"))
    assert "$0.25" in browser.find_element(*row).text
    assert run_row(browser, agent.run_id).get_attribute("data-status") == "running"
    # The summary follows the runs: two agents, one at 80 %, one at 0 %.
    wait(browser, text_in((By.ID, "stat-progress"), "40.0%"))
    assert same_document(browser)


def test_a_plan_is_approved_in_the_page_and_the_run_continues(browser, login, experiment, owner_api):
    body, (agent, _other) = experiment()
    open_experiment(browser, login, body["id"])
    assert browser.find_element(By.ID, "approvals").get_attribute("hidden") is not None

    agent.progress(10, "Planning")
    agent.plan(PLAN)
    card = wait(
        browser, ec.visibility_of_element_located((By.CSS_SELECTOR, f'.plan-card[data-run-id="{agent.run_id}"]'))
    )
    assert "Add login rate limiting" in card.text
    assert "Run the suite" in card.text
    card.find_element(By.TAG_NAME, "textarea").send_keys("Keep the limit configurable.")
    card.find_element(By.CSS_SELECTOR, "button[data-decision=approve]").click()

    wait(browser, ec.invisibility_of_element_located((By.ID, "approvals")))
    run = owner_api.run(agent.run_id)
    assert run["status"] == "running"
    assert run["approval"]["state"] == "approved"
    assert run["approval"]["feedback"] == "Keep the limit configurable."
    # The agent goes on reporting, and the page follows it.
    agent.progress(55, "Adding the limiter")
    row = (By.CSS_SELECTOR, f'#runs-body tr[data-run-id="{agent.run_id}"]')
    wait(browser, text_in(row, "55.0%"))
    wait(browser, text_in((By.ID, "event-log"), "Plan approved by operator"))
    assert same_document(browser)


def test_a_revision_needs_feedback_and_sends_it(browser, login, experiment, owner_api):
    body, (agent, _other) = experiment()
    open_experiment(browser, login, body["id"])
    agent.plan(PLAN)
    card = wait(browser, ec.visibility_of_element_located((By.CSS_SELECTOR, ".plan-card")))
    card.find_element(By.CSS_SELECTOR, "button[data-decision=revise]").click()
    wait(browser, text_in((By.CSS_SELECTOR, ".plan-card .field-error"), "Say what the agent should change"))
    assert owner_api.run(agent.run_id)["status"] == "awaiting_approval"

    card.find_element(By.TAG_NAME, "textarea").send_keys("Split step two.")
    card.find_element(By.CSS_SELECTOR, "button[data-decision=revise]").click()
    wait(browser, ec.invisibility_of_element_located((By.ID, "approvals")))
    run = owner_api.run(agent.run_id)
    assert (run["status"], run["approval"]["state"]) == ("running", "revision_requested")


def test_stopping_a_run_from_the_page_stops_its_agent(browser, login, experiment, owner_api):
    body, (agent, other) = experiment()
    open_experiment(browser, login, body["id"])
    agent.progress(20, "Working")
    row = (By.CSS_SELECTOR, f'#runs-body tr[data-run-id="{agent.run_id}"]')
    wait(browser, text_in(row, "20.0%"))

    run_row(browser, agent.run_id).find_element(By.CSS_SELECTOR, "button[data-action=stop-run]").click()
    wait(browser, lambda d: run_row(d, agent.run_id).get_attribute("data-status") == "stopped")
    assert "Stopped" in browser.find_element(*row).text
    assert owner_api.run(agent.run_id)["status"] == "stopped"
    assert agent.report_status("progress", {"progress_percent": 30}) == 409
    # The other run is untouched and still has its Stop button; the stopped one offers Retry.
    assert run_row(browser, other.run_id).get_attribute("data-status") == "starting"
    stopped = run_row(browser, agent.run_id)
    assert not stopped.find_element(By.CSS_SELECTOR, "button[data-action=stop-run]").is_displayed()
    assert stopped.find_element(By.CSS_SELECTOR, "button[data-action=retry-run]").is_displayed()


def test_retrying_a_stopped_run_shows_its_token_once_and_adds_the_attempt(browser, login, experiment, owner_api):
    body, (agent, _other) = experiment()
    open_experiment(browser, login, body["id"])
    owner_api.call("POST", f"agents/{agent.run_id}/stop")
    retry = (By.CSS_SELECTOR, f'#runs-body tr[data-run-id="{agent.run_id}"] button[data-action=retry-run]')
    wait(browser, ec.element_to_be_clickable(retry)).click()

    dialog = wait(browser, ec.visibility_of_element_located((By.CSS_SELECTOR, "dialog.token-dialog")))
    token = dialog.find_element(By.CSS_SELECTOR, ".tokens code").text
    assert len(token) > 20
    dialog.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#runs-body tr[data-run-id]")) == 3)
    runs = owner_api.call("GET", "agents", params={"experiment": body["id"]})["results"]
    retried = next(r for r in runs if r["retry_of"] == agent.run_id)
    assert retried["attempt"] == 2
    assert "superseded" in run_row(browser, agent.run_id).get_attribute("class")


def test_metrics_are_charted_with_one_line_per_run(browser, login, experiment):
    body, agents = experiment()
    open_experiment(browser, login, body["id"])
    for step in range(5):
        for i, agent in enumerate(agents):
            agent.metrics(loss=2.0 - 0.2 * step - 0.1 * i)
    chart = wait(
        browser, ec.presence_of_element_located((By.CSS_SELECTOR, '#charts .chart[data-metric="loss"] canvas'))
    )
    assert chart.size["width"] > 100
    # The first point is drawn at once; the second run's line joins on a later redraw.
    legend = (By.CSS_SELECTOR, '#charts .chart[data-metric="loss"] .u-legend')
    wait(browser, lambda d: all(name in d.find_element(*legend).text for name in ("first", "second")))
    summary = (By.CSS_SELECTOR, '#charts .chart[data-metric="loss"] p[id$="-summary"]')
    wait(browser, lambda d: "second 1.1 at step 5" in d.find_element(*summary).get_attribute("textContent"))


def test_the_event_log_filters_by_kind_and_run(browser, login, experiment):
    body, (first, second) = experiment()
    open_experiment(browser, login, body["id"])
    first.progress(5, "alpha")
    second.log("hello from the second agent", level="warning")
    wait(browser, text_in((By.ID, "event-log"), "hello from the second agent"))

    browser.find_element(By.CSS_SELECTOR, "#log-category option[value=logs]").click()
    wait(
        browser,
        lambda d: all(
            li.get_attribute("data-type") == "log_appended"
            for li in d.find_elements(By.CSS_SELECTOR, "#event-log li[data-seq]")
        ),
    )
    browser.find_element(By.CSS_SELECTOR, "#log-category option[value=all]").click()
    browser.find_element(By.CSS_SELECTOR, f'#log-run option[value="{first.run_id}"]').click()
    wait(browser, lambda d: "hello from the second agent" not in d.find_element(By.ID, "event-log").text)
    assert "alpha" in browser.find_element(By.ID, "event-log").text
    browser.find_element(By.CSS_SELECTOR, '#log-run option[value=""]').click()
    browser.find_element(By.ID, "log-search").send_keys("hello")
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#event-log li[data-seq]")) == 1)


def test_the_header_stops_the_experiment_after_a_confirmation(browser, login, experiment, owner_api):
    body, _agents = experiment()
    open_experiment(browser, login, body["id"])
    wait(browser, ec.element_to_be_clickable((By.ID, "stop-experiment"))).click()
    dialog = wait(browser, ec.visibility_of_element_located((By.CSS_SELECTOR, "dialog[open]")))
    dialog.find_element(By.CSS_SELECTOR, "button[value=yes]").click()
    wait(browser, lambda d: d.find_element(By.ID, "experiment-status").get_attribute("data-status") == "stopped")
    assert owner_api.call("GET", f"experiments/{body['id']}")["status"] == "stopped"
    assert not browser.find_element(By.ID, "stop-experiment").is_displayed()
    assert all(
        s == "stopped"
        for s in (
            r.get_attribute("data-status") for r in browser.find_elements(By.CSS_SELECTOR, "#runs-body tr[data-run-id]")
        )
    )


def test_export_downloads_the_experiment_as_json(browser, login, experiment, tmp_path):
    body, (agent, _other) = experiment()
    agent.metrics(loss=1.5)
    browser.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)})
    open_experiment(browser, login, body["id"])
    browser.find_element(By.CSS_SELECTOR, "button[data-export=json]").click()
    done = wait_until(lambda: [p for p in tmp_path.glob("*.json")], 20, "no export was downloaded")
    exported = json.loads(done[0].read_text())
    assert exported["experiment"]["id"] == body["id"]
    assert {r["id"] for r in exported["runs"]} == {r["id"] for r in body["runs"]}


def test_the_log_holds_each_event_once_from_history_and_live(browser, login, experiment, owner_api):
    body, (agent, other) = experiment()
    for i in range(20):
        agent.progress(i, f"before the page {i}")
    # Keep events coming while the page opens, so its history and live events interleave.
    stop = threading.Event()

    def stream():
        step = 0
        while not stop.is_set():
            step += 1
            other.progress(min(step, 100), f"while the page opens {step}")
            stop.wait(0.05)

    streamer = threading.Thread(target=stream, daemon=True)
    streamer.start()
    try:
        open_experiment(browser, login, body["id"])
        wait(browser, lambda d: len(log_seqs(d)) > 30)
    finally:
        stop.set()
        streamer.join()
    last = owner_api.events(body["id"])[-1]["seq"]
    wait(browser, lambda d: max(log_seqs(d), default=0) == last)
    seqs = log_seqs(browser)
    assert len(seqs) == len(set(seqs)), "an event is shown twice"
    assert sorted(seqs) == list(range(1, last + 1)), "an event is missing"


def test_a_plan_can_be_approved_with_the_keyboard_alone(browser, login, experiment, owner_api):
    body, (agent, _other) = experiment()
    open_experiment(browser, login, body["id"])
    agent.plan(PLAN)
    card = wait(browser, ec.visibility_of_element_located((By.CSS_SELECTOR, ".plan-card")))
    feedback = card.find_element(By.TAG_NAME, "textarea")
    feedback.click()
    feedback.send_keys("Ship it")
    active = browser.switch_to.active_element
    active.send_keys(Keys.TAB)
    focused = browser.switch_to.active_element
    assert focused.get_attribute("data-decision") == "approve"
    # The focus ring is visible (an outline, not just a colour change).
    assert browser.execute_script("return getComputedStyle(document.activeElement).outlineStyle") != "none"
    focused.send_keys(Keys.ENTER)
    wait(browser, ec.invisibility_of_element_located((By.ID, "approvals")))
    assert owner_api.run(agent.run_id)["approval"]["state"] == "approved"


def test_at_phone_width_the_runs_are_cards_and_their_controls_work(browser, login, experiment, owner_api):
    body, (agent, _other) = experiment()
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride", {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True}
    )
    try:
        open_experiment(browser, login, body["id"])
        agent.progress(12, "On a phone")
        row = (By.CSS_SELECTOR, f'#runs-body tr[data-run-id="{agent.run_id}"]')
        wait(browser, text_in(row, "12.0%"))
        assert browser.execute_script("return document.documentElement.scrollWidth") <= 390
        assert browser.find_element(*row).value_of_css_property("display") == "block"
        stop = browser.find_element(*row).find_element(By.CSS_SELECTOR, "button[data-action=stop-run]")
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", stop)
        stop.click()
        wait(browser, lambda d: d.find_element(*row).get_attribute("data-status") == "stopped")
        assert owner_api.run(agent.run_id)["status"] == "stopped"
    finally:
        browser.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False},
        )
