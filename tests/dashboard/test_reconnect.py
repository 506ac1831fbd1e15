"""The socket drops (daphne restarts, the experiment goes away) and the page copes."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec

from tests.dashboard.pages import OWNER, log_seqs, text_in, wait, wait_live

pytestmark = [pytest.mark.browser, pytest.mark.daphne]


def connection_state(web) -> str:
    return web.find_element(By.ID, "connection").get_attribute("data-state")


def set_offline(web, offline: bool) -> None:
    web.execute_cdp_cmd("Network.enable", {})
    web.execute_cdp_cmd(
        "Network.emulateNetworkConditions",
        {"offline": offline, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )


def test_after_a_server_restart_the_page_resumes_with_no_gap_and_no_repeat(
    browser, login, experiment, owner_api, server
):
    body, (agent, other) = experiment()
    login(browser, OWNER, f"/experiments/{body['id']}/")
    for i in range(3):
        agent.progress(10 + i, f"before the restart {i}")
    before = owner_api.events(body["id"])[-1]["seq"]
    wait(browser, lambda d: max(log_seqs(d), default=0) == before)
    browser.execute_script("window.__sameDocument = true")

    # Keep the page from reconnecting until the experiment has moved on without it.
    set_offline(browser, True)
    server.restart()
    wait(browser, lambda d: connection_state(d) == "reconnecting")
    for i in range(8):
        agent.progress(20 + i, f"while the page was away {i}")
        other.log(f"log line {i} while away")
    agent.plan({"steps": ["made while the page was away"]})
    last = owner_api.events(body["id"])[-1]["seq"]
    assert last > before + 16
    set_offline(browser, False)

    wait_live(browser, timeout=30)
    wait(browser, lambda d: max(log_seqs(d), default=0) == last, message="the page never caught up")
    seqs = log_seqs(browser)
    assert len(seqs) == len(set(seqs)), "an event is shown twice"
    assert sorted(seqs) == list(range(1, last + 1)), "an event is missing"
    assert browser.execute_script("return window.__sameDocument === true")
    # State caught up too: the plan made while away is waiting in the page.
    wait(browser, ec.visibility_of_element_located((By.CSS_SELECTOR, f'.plan-card[data-run-id="{agent.run_id}"]')))
    row = (By.CSS_SELECTOR, f'#runs-body tr[data-run-id="{agent.run_id}"]')
    assert browser.find_element(*row).get_attribute("data-status") == "awaiting_approval"
    assert "27.0%" in browser.find_element(*row).text
    # And live events keep coming on the new connection.
    other.progress(64, "after the restart")
    wait(browser, text_in((By.CSS_SELECTOR, f'#runs-body tr[data-run-id="{other.run_id}"]'), "64.0%"))
    seqs = log_seqs(browser)
    assert sorted(seqs) == list(range(1, max(seqs) + 1))


def test_the_list_resumes_after_a_server_restart(browser, login, experiment, server):
    body, (agent, _other) = experiment()
    login(browser, OWNER)
    row = (By.CSS_SELECTOR, f'#experiments-body tr[data-experiment-id="{body["id"]}"]')
    wait(browser, ec.presence_of_element_located(row))
    set_offline(browser, True)
    server.restart()
    wait(browser, lambda d: connection_state(d) == "reconnecting")
    agent.progress(90, "while the list was away", tokens=7777)
    set_offline(browser, False)
    wait_live(browser, timeout=30)
    wait(browser, text_in(row, "7,777"))
    assert "45.0%" in browser.find_element(*row).text


def test_a_deleted_experiment_shows_that_it_is_gone(browser, login, experiment, owner_api):
    body, _agents = experiment(start=False)
    login(browser, OWNER, f"/experiments/{body['id']}/")
    wait(browser, ec.presence_of_element_located((By.CSS_SELECTOR, "#runs-body tr[data-run-id]")))
    owner_api.call("DELETE", f"experiments/{body['id']}", expect=204)
    notice = wait(browser, ec.visibility_of_element_located((By.ID, "gone")))
    assert "deleted" in notice.text
    assert connection_state(browser) == "gone"
    assert not browser.find_element(By.ID, "start-experiment").is_displayed()


def test_a_burst_of_events_is_shown_completely(browser, login, experiment, owner_api):
    body, agents = experiment(agents=("a", "b", "c", "d"))
    login(browser, OWNER, f"/experiments/{body['id']}/")
    wait(browser, ec.presence_of_element_located((By.CSS_SELECTOR, "#runs-body tr[data-run-id]")))

    def report(agent):
        for step in range(1, 31):
            agent.progress(step * 100 / 30, f"step {step}")

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(report, agents))
    last = owner_api.events(body["id"])[-1]["seq"]
    wait(browser, lambda d: d.execute_script("return window.researchDashboard.cursor()") == last, timeout=30)
    for agent in agents:
        wait(browser, text_in((By.CSS_SELECTOR, f'#runs-body tr[data-run-id="{agent.run_id}"]'), "100%"))
    seqs = log_seqs(browser)
    assert len(seqs) == len(set(seqs))
    assert sorted(seqs) == list(range(last - len(seqs) + 1, last + 1))
    assert browser.execute_script("return window.researchDashboard.stats.duplicates") == 0


def test_when_the_missed_events_were_pruned_the_page_redraws_from_a_fresh_snapshot(
    browser, login, experiment, owner_api, server
):
    body, (agent, other) = experiment()
    login(browser, OWNER, f"/experiments/{body['id']}/")
    agent.progress(10, "before the cut")
    row = (By.CSS_SELECTOR, f'#runs-body tr[data-run-id="{agent.run_id}"]')
    wait(browser, text_in(row, "10.0%"))

    set_offline(browser, True)
    server.restart()
    wait(browser, lambda d: connection_state(d) == "reconnecting")
    agent.progress(66, "after the cut", tokens=4242)
    other.plan({"steps": ["planned while the page was away"]})
    last = owner_api.events(body["id"])[-1]["seq"]
    # Retention pruned everything the page missed but the last event.
    server.sql("DELETE FROM realtime_event WHERE experiment_id = ? AND seq < ?", (body["id"], last))
    server.sql("UPDATE realtime_eventstream SET pruned_through = ? WHERE experiment_id = ?", (last - 1, body["id"]))
    set_offline(browser, False)

    wait_live(browser, timeout=30)
    wait(browser, text_in((By.ID, "event-log"), "no longer stored"))
    wait(browser, text_in(row, "66.0%"))
    assert "4,242" in browser.find_element(*row).text
    assert browser.find_element(By.CSS_SELECTOR, f'.plan-card[data-run-id="{other.run_id}"]').is_displayed()
    assert browser.execute_script("return window.researchDashboard.cursor()") == last
    # Live events continue from the snapshot's seq.
    agent.progress(70, "on the new connection")
    wait(browser, text_in(row, "70.0%"))


def test_a_socket_refused_for_a_lost_session_sends_the_page_to_the_login(browser, login, experiment, server):
    body, _agents = experiment()
    login(browser, OWNER, f"/experiments/{body['id']}/")
    wait(browser, ec.presence_of_element_located((By.CSS_SELECTOR, "#runs-body tr[data-run-id]")))
    # The session is gone (signed out elsewhere) and the socket drops: the reconnect is
    # closed with 4401, and the page goes to the login with a way back.
    browser.execute_cdp_cmd("Network.clearBrowserCookies", {})
    server.restart()
    wait(browser, ec.url_contains("/accounts/login/?next="), timeout=30)
    assert f"/experiments/{body['id']}/" in browser.current_url.replace("%2F", "/")
