"""Hundreds of events a second do not freeze the page.

The server cannot be made to emit thousands of events a second on a test machine, so the
page's WebSocket is replaced (before any script runs) by a stand-in that replays a real
snapshot and then floods the page with agent events at 1,000 a second. The page must keep
painting frames, apply every event once, and end showing the last state.
"""

import pytest
from selenium.webdriver.common.by import By

from tests.dashboard.pages import OWNER, text_in, wait

pytestmark = [pytest.mark.browser, pytest.mark.daphne]

EVENTS = 3000
PER_TICK = 10  # every 10 ms: 1,000 events a second

FAKE_SOCKET = """
window.__flood = {frames: 0, longTasks: [], delivered: 0};
(function countFrames() { window.__flood.frames += 1; requestAnimationFrame(countFrames); })();
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) window.__flood.longTasks.push(entry.duration);
}).observe({type: "longtask", buffered: true});
window.WebSocket = class FloodSocket {
  static OPEN = 1;
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    setTimeout(() => this.open(), 50);
  }
  send() {}
  close() { this.readyState = 3; }
  async open() {
    const {snapshot, total, perTick} = await new Promise((resolve) => {
      const poll = () => window.__floodPlan ? resolve(window.__floodPlan) : setTimeout(poll, 20);
      poll();
    });
    this.readyState = 1;
    this.onopen && this.onopen({});
    this.onmessage({data: JSON.stringify(snapshot)});
    const runs = snapshot.runs.map((r) => r.id);
    let seq = snapshot.seq;
    let sent = 0;
    const tick = setInterval(() => {
      for (let i = 0; i < perTick && sent < total; i += 1, sent += 1) {
        seq += 1;
        const run = runs[sent % runs.length];
        const pct = Math.min(100, (sent / total) * 100);
        this.onmessage({data: JSON.stringify({
          type: "event", id: 1e6 + seq, seq, event_type: "agent_progress",
          experiment_id: snapshot.experiment.id, run_id: run, timestamp: new Date().toISOString(),
          data: {run_id: run, progress_percent: pct, current_action: `flood step ${sent}`,
                 metrics: {tokens_used: sent, cost: sent / 1000, elapsed_time: sent / 10}},
        })});
        window.__flood.delivered = sent + 1;
      }
      if (sent >= total) clearInterval(tick);
    }, 10);
  }
};
"""


def test_a_flood_of_events_keeps_the_page_painting_and_shows_every_one(browser, login, experiment, owner_api):
    body, _agents = experiment(agents=("a", "b", "c", "d"))
    detail = owner_api.call("GET", f"experiments/{body['id']}")
    seq = owner_api.events(body["id"])[-1]["seq"]
    snapshot = {
        "type": "snapshot",
        "experiment": {k: v for k, v in detail.items() if k != "runs"},
        "runs": detail["runs"],
        "seq": seq,
    }

    login(browser, OWNER)  # a real session first; the flood only replaces the page's socket
    script = browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": FAKE_SOCKET})
    try:
        browser.get(browser.current_url.split("?")[0].rstrip("/") + f"/experiments/{body['id']}/")
        browser.execute_script(
            "window.__floodPlan = arguments[0]", {"snapshot": snapshot, "total": EVENTS, "perTick": PER_TICK}
        )
        wait(browser, lambda d: d.execute_script("return window.__flood.delivered") >= EVENTS, timeout=60)
        last = seq + EVENTS
        wait(browser, lambda d: d.execute_script("return window.researchDashboard.cursor()") == last)
        final_run = detail["runs"][(EVENTS - 1) % len(detail["runs"])]["id"]
        wait(
            browser, text_in((By.CSS_SELECTOR, f'#runs-body tr[data-run-id="{final_run}"]'), f"flood step {EVENTS - 1}")
        )
        flood = browser.execute_script("return window.__flood")
        stats = browser.execute_script("return window.researchDashboard.stats")
    finally:
        browser.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": script["identifier"]})

    assert stats["events"] == EVENTS and stats["duplicates"] == 0
    # Three seconds of flood: the page kept painting (60 fps would be ~180 frames) and
    # never blocked for long.
    assert flood["frames"] >= 30, flood
    assert max(flood["longTasks"], default=0) < 1000, flood["longTasks"]
    worst = max(flood["longTasks"], default=0)
    print(f"frames {flood['frames']}, long tasks {len(flood['longTasks'])}, worst {worst:.0f} ms")
