"""The dashboard's ES modules, exercised one by one inside Chromium (no bundler, no Node
DOM): what is hard to time from a server is made to happen here deterministically."""

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.daphne]


def run_module_script(browser, server, body: str):
    """Run ``body`` (an async function body that returns JSON) on a served page."""
    browser.get(f"{server.url}/accounts/login/")
    script = (
        "const done = arguments[arguments.length - 1];"
        f"(async () => {{ {body} }})().then(done, (e) => done({{error: String(e && e.stack || e)}}));"
    )
    result = browser.execute_async_script(script)
    assert not (isinstance(result, dict) and "error" in result), result
    return result


EVENT = """
const event = (seq, type = "agent_progress", data = {progress_percent: seq, current_action: `step ${seq}`}) =>
  ({type: "event", id: 1000 + seq, seq, event_type: type, experiment_id: "exp_x", run_id: "run_a",
    data, timestamp: new Date().toISOString()});
const frames = (n) => new Promise((resolve) => {
  const step = () => (n-- <= 0 ? resolve() : requestAnimationFrame(step));
  step();
});
"""


def test_the_log_shows_history_and_live_events_that_land_in_one_frame(browser, server):
    seqs = run_module_script(
        browser,
        server,
        EVENT
        + """
        const {EventLog} = await import("/static/dashboard/eventlog.js");
        const el = (tag) => document.body.appendChild(document.createElement(tag));
        const category = el("select"); category.innerHTML = '<option value="all">all</option>';
        const run = el("select"); run.innerHTML = '<option value="">all</option>';
        const log = new EventLog({list: el("ul"), category, run, search: el("input"), pause: el("button"),
                                  status: el("span"), runLabel: (id) => id});
        log.add(event(6));
        await frames(2);
        // History arrives, and in the same frame the next live event (and a repeat).
        log.addHistory([1, 2, 3, 4, 5, 6].map((s) => event(s)));
        log.add(event(7));
        log.add(event(7));
        await frames(2);
        return [...log.list.querySelectorAll("li[data-seq]")].map((li) => Number(li.dataset.seq));
        """,
    )
    assert seqs == [7, 6, 5, 4, 3, 2, 1]


def test_run_totals_count_retried_attempts_in_cost_but_not_in_status(browser, server):
    summary = run_module_script(
        browser,
        server,
        """
        const {summarize} = await import("/static/dashboard/state.js");
        return summarize([
          {id: "run_1", status: "failed", progress_percent: 40, metrics: {tokens_used: 100, cost: 0.5}},
          {id: "run_2", retry_of: "run_1", status: "running", progress_percent: 50,
           metrics: {tokens_used: 50, cost: 0.25}},
          {id: "run_3", status: "completed", progress_percent: 90, metrics: {tokens_used: 10, cost: 0.1}},
        ]);
        """,
    )
    assert summary == {
        "total_agents": 2,
        "runs_by_status": {"running": 1, "completed": 1},
        "progress_percent": 75,
        "tokens_used": 160,
        "cost": pytest.approx(0.85),
    }


def test_plan_events_drive_a_run_through_approval(browser, server):
    states = run_module_script(
        browser,
        server,
        EVENT
        + """
        const {ExperimentState} = await import("/static/dashboard/state.js");
        const state = new ExperimentState({id: "exp_x", status: "running"},
                                          [{id: "run_a", status: "running", metrics: {}}]);
        const seen = [];
        const step = (seq, type, data) => {
          state.apply(event(seq, type, data));
          const run = state.runs.get("run_a");
          seen.push([run.status, run.approval && run.approval.state, run.approval && run.approval.deadline]);
        };
        step(1, "plan_ready", {plan: {steps: ["a"]}, status: "awaiting_approval"});
        step(2, "approval_required", {plan: {steps: ["a"]}, deadline: "2030-01-01T00:00:00Z", timeout_seconds: 300});
        step(3, "plan_rejected", {status: "running", revise: true, feedback: "more", by: "op"});
        step(4, "plan_ready", {plan: {steps: ["a", "b"]}, status: "awaiting_approval"});
        step(5, "plan_approved", {status: "running", by: "op"});
        return seen;
        """,
    )
    assert states == [
        ["awaiting_approval", "pending", None],
        ["awaiting_approval", "pending", "2030-01-01T00:00:00Z"],
        ["running", "revision_requested", "2030-01-01T00:00:00Z"],
        ["awaiting_approval", "pending", None],
        ["running", "approved", None],
    ]


def test_a_chart_of_many_runs_trades_its_legend_for_a_text_summary(browser, server):
    shown = run_module_script(
        browser,
        server,
        EVENT
        + """
        const {MetricCharts} = await import("/static/dashboard/charts.js");
        const box = document.body.appendChild(document.createElement("div"));
        box.style.width = "600px";
        const runs = Array.from({length: 15}, (_, i) => `run_${i}`);
        const charts = new MetricCharts(box, {label: (id) => id, runOrder: () => runs});
        const few = new MetricCharts(document.body.appendChild(document.createElement("div")),
                                     {label: (id) => id, runOrder: () => runs});
        runs.forEach((id, i) => charts.addPoint(id, "loss", 1, i));
        few.addPoint("run_0", "loss", 1, 0.5);
        few.addPoint("run_0", "loss", 2, 0.25);
        await frames(3);
        const legend = (c) => !!c.container.querySelector(".u-legend");
        const summary = (c) => c.container.querySelector("p[id$='-summary']");
        return {
          manyLegend: legend(charts), manySummaryClass: summary(charts).className,
          manyText: summary(charts).textContent,
          fewLegend: legend(few), fewSummaryClass: summary(few).className,
          fewText: summary(few).textContent,
        };
        """,
    )
    assert shown["manyLegend"] is False
    assert shown["manySummaryClass"] == "chart-summary muted"
    assert "run_14 14 at step 1" in shown["manyText"]
    assert shown["fewLegend"] is True
    assert shown["fewSummaryClass"] == "visually-hidden"
    assert shown["fewText"] == "loss, latest values: run_0 0.25 at step 2."
