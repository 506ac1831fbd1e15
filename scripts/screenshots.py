"""Screenshots of the dashboard for the README: docs/screenshots/*.png.

    .venv/bin/python scripts/screenshots.py

Starts daphne on a temporary SQLite database (tests/live.py), seeds a few
experiments through the REST API, lets agents stream progress, metrics and logs with
their run tokens, leaves one plan waiting for approval, and photographs the pages in
headless Debian Chromium at 1280 px and at phone width (390 px).
"""

import math
import random
import shutil
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from tests.dashboard.harness import Agent, Client, add_users, chrome, quit_chrome  # noqa: E402
from tests.live import PASSWORD, LiveServer, manage  # noqa: E402
from tests.services import require_chromium  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
PLAN = {
    "summary": "Move session handling to signed, rotating tokens without logging anyone out.",
    "steps": [
        "Add a token table with a rotation window beside the session table",
        "Issue both cookies for one release; read either",
        "Backfill tokens for active sessions in batches of 1,000",
        "Switch reads to tokens and delete the session code path",
    ],
    "risk": "medium",
    "estimated_tokens": 48000,
}
ACTIONS = [
    "Reading the auth module and its tests",
    "Writing the token rotation migration",
    "Running the integration suite (142 tests)",
    "Refactoring the session middleware",
    "Benchmarking login latency",
]


def seed(server: LiveServer):
    alice = Client(server, "alice")
    rng = random.Random(7)

    done = alice.create_experiment(
        "Prompt ablation v2", ["baseline:claude_code", "terse:claude_code"], "Which system prompt wins on the eval set."
    )
    alice.start(done["id"])
    for i, run in enumerate(done["runs"]):
        agent = Agent(server, run)
        agent.progress(100, "Done", tokens=21000 + 5000 * i, cost=1.05 + 0.25 * i, elapsed=840 + 60 * i)
        agent.complete({"score": 0.81 + 0.03 * i})

    stopped = alice.create_experiment("Tokenizer sweep", ["bpe-32k:codex", "bpe-64k:codex", "unigram:codex"])
    alice.start(stopped["id"])
    for run in stopped["runs"][:2]:
        Agent(server, run).progress(rng.uniform(20, 60), "Training", tokens=9000, cost=0.4, elapsed=300)
    alice.call("POST", f"experiments/{stopped['id']}/stop")

    alice.create_experiment(
        "Data pipeline migration", ["planner:claude_code", "executor:claude_code"], "Not started yet."
    )

    live = alice.create_experiment(
        "Refactor auth service",
        ["planner:claude_code", "implementer:claude_code", "reviewer:gpt_agent", "tester:codex"],
        "Four agents move the auth service to rotating tokens; plans need an operator's approval.",
        config={"repo": "auth-service", "budget_usd": 25},
    )
    alice.start(live["id"])
    alice.add_member(live["id"], "bob", "viewer")
    agents = [Agent(server, run) for run in live["runs"]]
    for step in range(1, 61):
        for i, agent in enumerate(agents):
            loss = 2.4 * math.exp(-step / (18 + 6 * i)) + 0.15 + rng.uniform(-0.04, 0.04)
            accuracy = 1 - loss / 2.8 + rng.uniform(-0.01, 0.01)
            agent.step = step - 1
            agent.metrics(loss=round(loss, 4), accuracy=round(accuracy, 4))
    speeds = [0.55, 0.72, 0.38, 0.9]
    for i, agent in enumerate(agents):
        pct = round(60 * speeds[i], 1)
        agent.progress(pct, ACTIONS[i], tokens=int(pct * 410), cost=round(pct * 0.021, 2))
        agent.log(f"{agent.name}: {ACTIONS[i].lower()}")
    agents[2].log("Flaky test test_refresh_race: retrying once", level="warning")
    agents[0].plan(PLAN)
    return live, agents


def stream(agents, stop: threading.Event):
    """Keep three agents moving while the photos are taken."""
    pct = [33.0, 43.2, 22.8]
    while not stop.is_set():
        for i, agent in enumerate(agents[1:]):
            pct[i] = min(95.0, pct[i] + 0.7)
            agent.progress(round(pct[i], 1), ACTIONS[i + 1], tokens=int(pct[i] * 410), cost=round(pct[i] * 0.021, 2))
        stop.wait(0.4)


def login(web, server: LiveServer, username: str):
    web.get(f"{server.url}/accounts/login/")
    web.find_element(By.ID, "id_username").send_keys(username)
    web.find_element(By.ID, "id_password").send_keys(PASSWORD)
    web.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    WebDriverWait(web, 20).until(ec.presence_of_element_located((By.ID, "experiments")))


def full_page(web, path: Path, width: int, mobile: bool = False):
    height = web.execute_script("return Math.ceil(document.documentElement.scrollHeight)")
    web.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
    )
    web.execute_script("window.scrollTo(0, 0)")
    WebDriverWait(web, 5).until(lambda d: d.execute_script("return document.documentElement.scrollHeight") > 0)
    web.save_screenshot(str(path))
    print(f"wrote {path.relative_to(ROOT)}")


def wait_live(web):
    WebDriverWait(web, 20).until(ec.presence_of_element_located((By.CSS_SELECTOR, '#connection[data-state="live"]')))


def main() -> int:
    browser, driver = require_chromium()
    OUT.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="re-screenshots-"))
    server = LiveServer(directory=workdir, database=workdir / "db.sqlite3")
    manage(server.database, "migrate", "--noinput")
    add_users(server, "alice", "bob")
    server.start()
    stop = threading.Event()
    web = None
    try:
        live, agents = seed(server)
        streamer = threading.Thread(target=stream, args=(agents, stop), daemon=True)
        streamer.start()
        web = chrome(browser, driver, width=1280, height=900)
        login(web, server, "alice")
        wait_live(web)
        WebDriverWait(web, 20).until(
            lambda d: len(d.find_elements(By.CSS_SELECTOR, "#experiments-body tr[data-experiment-id]")) >= 4
        )
        full_page(web, OUT / "experiments.png", 1280)

        web.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False},
        )
        web.get(f"{server.url}/experiments/{live['id']}/")
        wait_live(web)
        WebDriverWait(web, 20).until(ec.visibility_of_element_located((By.CSS_SELECTOR, "#approvals .plan-card")))
        WebDriverWait(web, 20).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#charts .chart canvas")) >= 2)
        full_page(web, OUT / "experiment.png", 1280)

        quit_chrome(web)
        web = chrome(browser, driver, width=390, height=844, mobile=True)
        login(web, server, "alice")
        wait_live(web)
        full_page(web, OUT / "experiments-phone.png", 390, mobile=True)
        web.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride", {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True}
        )
        web.get(f"{server.url}/experiments/{live['id']}/")
        wait_live(web)
        WebDriverWait(web, 20).until(ec.visibility_of_element_located((By.CSS_SELECTOR, "#approvals .plan-card")))
        WebDriverWait(web, 20).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#charts .chart canvas")) >= 2)
        full_page(web, OUT / "experiment-phone.png", 390, mobile=True)
    finally:
        stop.set()
        if web is not None:
            quit_chrome(web)
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
