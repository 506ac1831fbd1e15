"""The experiments list, live: new experiments, progress, filters, the forms, bulk actions."""

import json

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec

from tests.dashboard.harness import Agent
from tests.dashboard.pages import OWNER, text_in, wait

pytestmark = [pytest.mark.browser, pytest.mark.daphne]


def row_locator(experiment_id):
    return (By.CSS_SELECTOR, f'#experiments-body tr[data-experiment-id="{experiment_id}"]')


def test_a_new_experiment_appears_and_its_progress_moves_without_a_reload(browser, login, owner_api, server):
    login(browser, OWNER)
    browser.execute_script("window.__sameDocument = true")
    body = owner_api.create_experiment("Appears live", ["solo"])
    row = wait(browser, ec.presence_of_element_located(row_locator(body["id"])))
    assert "Created" in row.text

    owner_api.start(body["id"])
    wait(browser, lambda d: d.find_element(*row_locator(body["id"])).get_attribute("data-status") == "running")
    Agent(server, body["runs"][0]).progress(42, "Halfway there", tokens=3100, cost=0.5)
    wait(browser, text_in(row_locator(body["id"]), "42.0%"))
    wait(browser, text_in(row_locator(body["id"]), "3,100"))
    assert "1 running" in browser.find_element(*row_locator(body["id"])).text
    assert browser.execute_script("return window.__sameDocument === true")


def test_the_status_filter_and_search_narrow_the_list(browser, login, owner_api):
    created = owner_api.create_experiment("Filter me: zebra", ["solo"])
    running = owner_api.create_experiment("Filter me: yak", ["solo"])
    owner_api.start(running["id"])
    login(browser, OWNER)
    wait(browser, ec.presence_of_element_located(row_locator(created["id"])))

    browser.find_element(By.CSS_SELECTOR, "#filter-status option[value=running]").click()
    wait(browser, ec.invisibility_of_element_located(row_locator(created["id"])))
    assert browser.find_element(*row_locator(running["id"]))
    assert all(
        r.get_attribute("data-status") == "running"
        for r in browser.find_elements(By.CSS_SELECTOR, "#experiments-body tr[data-experiment-id]")
    )

    browser.find_element(By.CSS_SELECTOR, "#filter-status option[value='']").click()
    browser.find_element(By.ID, "filter-search").send_keys("zebra")
    wait(
        browser,
        lambda d: (
            [
                r.get_attribute("data-experiment-id")
                for r in d.find_elements(By.CSS_SELECTOR, "#experiments-body tr[data-experiment-id]")
            ]
            == [created["id"]]
        ),
    )
    assert "search=zebra" in browser.current_url


def test_the_form_creates_an_experiment_and_shows_each_token_once(browser, login, owner_api):
    login(browser, OWNER)
    browser.find_element(By.CSS_SELECTOR, "#create-drawer summary").click()
    browser.find_element(By.ID, "create-name").send_keys("Made in the form")
    browser.find_element(By.ID, "add-agent").click()
    types = browser.find_elements(By.CSS_SELECTOR, "#agent-rows input[name=agent_type]")
    types[1].send_keys("codex")
    browser.find_elements(By.CSS_SELECTOR, "#agent-rows input[name=agent_name]")[1].send_keys("reviewer")
    browser.find_element(By.ID, "create-config").send_keys('{"seed": 3}')
    browser.find_element(By.CSS_SELECTOR, "#create-form button[type=submit]").click()

    dialog = wait(browser, ec.visibility_of_element_located((By.CSS_SELECTOR, "dialog.token-dialog")))
    assert len(dialog.find_elements(By.CSS_SELECTOR, ".tokens code")) == 2
    dialog.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(browser, ec.url_contains("/experiments/exp_"))
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#runs-body tr[data-run-id]")) == 2)
    experiment_id = browser.current_url.rstrip("/").rsplit("/", 1)[1]
    saved = owner_api.call("GET", f"experiments/{experiment_id}")
    assert saved["name"] == "Made in the form"
    assert saved["config"] == {"seed": 3}
    assert [(r["agent_type"], r["name"]) for r in saved["runs"]] == [
        ("claude_code", "claude_code"),
        ("codex", "reviewer"),
    ]


def test_the_form_shows_the_servers_field_errors(browser, login):
    login(browser, OWNER)
    browser.find_element(By.CSS_SELECTOR, "#create-drawer summary").click()
    browser.find_element(By.ID, "create-name").send_keys("Bad agent type")
    browser.find_element(By.CSS_SELECTOR, "#agent-rows input[name=agent_type]").clear()
    browser.find_element(By.CSS_SELECTOR, "#agent-rows input[name=agent_type]").send_keys("no spaces allowed")
    browser.find_element(By.CSS_SELECTOR, "#create-form button[type=submit]").click()
    error = wait(browser, ec.visibility_of_element_located((By.ID, "create-error")))
    wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, "[data-error-for=agents]").text != "")
    assert error.text


def test_a_spec_file_is_imported(browser, login, tmp_path, owner_api):
    spec = tmp_path / "spec.json"
    spec.write_text(
        json.dumps({"name": "Imported from a file", "agents": [{"agent_type": "claude_code", "name": "a"}]})
    )
    login(browser, OWNER)
    browser.find_element(By.CSS_SELECTOR, "#import-drawer summary").click()
    browser.find_element(By.ID, "import-file").send_keys(str(spec))
    browser.find_element(By.CSS_SELECTOR, "#import-form button[type=submit]").click()
    dialog = wait(browser, ec.visibility_of_element_located((By.CSS_SELECTOR, "dialog.token-dialog")))
    assert "Imported from a file" in dialog.text
    assert len(dialog.find_elements(By.CSS_SELECTOR, ".tokens code")) == 1


def test_bulk_start_then_stop(browser, login, owner_api):
    first = owner_api.create_experiment("Bulk one", ["solo"])
    second = owner_api.create_experiment("Bulk two", ["solo"])
    login(browser, OWNER)
    for body in (first, second):
        wait(browser, ec.presence_of_element_located(row_locator(body["id"])))
        browser.find_element(By.CSS_SELECTOR, f"{row_locator(body['id'])[1]} input[type=checkbox]").click()
    wait(browser, text_in((By.ID, "bulk-count"), "2 selected"))
    browser.find_element(By.CSS_SELECTOR, "button[data-bulk=start]").click()
    for body in (first, second):
        wait(browser, lambda d, b=body: d.find_element(*row_locator(b["id"])).get_attribute("data-status") == "running")
    assert {owner_api.call("GET", f"experiments/{b['id']}")["status"] for b in (first, second)} == {"running"}

    for body in (first, second):
        browser.find_element(By.CSS_SELECTOR, f"{row_locator(body['id'])[1]} input[type=checkbox]").click()
    browser.find_element(By.CSS_SELECTOR, "button[data-bulk=stop]").click()
    wait(browser, ec.visibility_of_element_located((By.CSS_SELECTOR, "dialog[open]"))).find_element(
        By.CSS_SELECTOR, "button[value=yes]"
    ).click()
    for body in (first, second):
        wait(browser, lambda d, b=body: d.find_element(*row_locator(b["id"])).get_attribute("data-status") == "stopped")
