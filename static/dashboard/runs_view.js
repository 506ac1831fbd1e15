// The runs table of one experiment: one row per run, cells rewritten only when their
// text changes, so a frame with hundreds of progress events costs a few DOM writes.

import { h, setAttr, setText } from "./dom.js";
import { formatCost, formatDuration, formatInt, formatPercent, renderBadge, runLabel } from "./format.js";
import { ACTIVE_RUN, TERMINAL_RUN, elapsedSeconds } from "./state.js";

const STOPPABLE = new Set(["pending", "starting", "running", "awaiting_approval"]);
const RETRYABLE = new Set(["failed", "stopped"]);

export function progressBar(label) {
  const fill = h("span");
  const bar = h("div", { class: "bar", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100", "aria-label": label }, fill);
  const pct = h("span", { class: "pct num" });
  const wrap = h("div", { class: "progress" }, bar, pct);
  return {
    el: wrap,
    set(percent, status) {
      const value = Math.max(0, Math.min(100, Number(percent) || 0));
      const shown = status === "completed" ? 100 : value;
      const transform = `scaleX(${shown / 100})`;
      if (fill.style.transform !== transform) fill.style.transform = transform;
      setAttr(bar, "aria-valuenow", shown.toFixed(1));
      bar.classList.toggle("done", status === "completed");
      bar.classList.toggle("halted", status === "failed" || status === "stopped");
      setText(pct, formatPercent(shown));
    },
    label(text) {
      setAttr(bar, "aria-label", text);
    },
  };
}

export class RunsTable {
  constructor(tbody, { canOperate, onStop, onRetry }) {
    this.tbody = tbody;
    this.canOperate = canOperate;
    this.onStop = onStop;
    this.onRetry = onRetry;
    this.rows = new Map();
    this.empty = tbody.querySelector(".empty-row");
  }

  /** Rows for every run, in the state's order; returns whether rows were added. */
  sync(state) {
    let added = false;
    for (const run of state.runs.values()) {
      if (!this.rows.has(run.id)) {
        this.rows.set(run.id, this.makeRow(run));
        this.tbody.append(this.rows.get(run.id).tr);
        added = true;
      }
    }
    for (const [id, row] of this.rows) {
      if (!state.runs.has(id)) {
        row.tr.remove();
        this.rows.delete(id);
      }
    }
    if (this.empty) this.empty.hidden = this.rows.size > 0;
    return added;
  }

  makeRow(run) {
    const name = h("span", { class: "name" });
    const sub = h("span", { class: "sub" });
    const error = h("span", { class: "error-text", hidden: true });
    const badge = renderBadge(null, run.status);
    const progress = progressBar(`Progress of ${runLabel(run)}`);
    const action = h("td", { class: "cell-action", "data-label": "Action" });
    const tokens = h("td", { class: "num", "data-label": "Tokens" });
    const cost = h("td", { class: "num", "data-label": "Cost" });
    const elapsed = h("td", { class: "num", "data-label": "Elapsed" });
    const cells = [
      h("th", { scope: "row", class: "cell-name", "data-label": "Agent" }, name, sub, error),
      h("td", { "data-label": "Status" }, badge),
      h("td", { "data-label": "Progress" }, progress.el),
      action,
      tokens,
      cost,
      elapsed,
    ];
    let stop = null;
    let retry = null;
    if (this.canOperate) {
      stop = h("button", { type: "button", class: "small danger", text: "Stop", dataset: { action: "stop-run" } });
      retry = h("button", { type: "button", class: "small", text: "Retry", dataset: { action: "retry-run" } });
      stop.addEventListener("click", () => this.onStop(run.id, stop));
      retry.addEventListener("click", () => this.onRetry(run.id, retry));
      cells.push(h("td", { class: "cell-actions", "data-label": "Actions" }, stop, retry));
    }
    const tr = h("tr", { dataset: { runId: run.id } }, cells);
    return { tr, name, sub, error, badge, progress, action, tokens, cost, elapsed, stop, retry };
  }

  update(run, superseded) {
    const row = this.rows.get(run.id);
    if (!row) return;
    const label = runLabel(run);
    setText(row.name, label);
    setText(row.sub, run.agent_type);
    setAttr(row.name, "title", run.id);
    const problem = run.status === "failed" ? run.error : run.status === "stopped" && run.stop_reason ? `Stopped: ${run.stop_reason.replaceAll("_", " ")}` : "";
    setText(row.error, problem || "");
    row.error.hidden = !problem;
    renderBadge(row.badge, run.status);
    row.progress.set(run.progress_percent, run.status);
    row.progress.label(`Progress of ${label}`);
    const current = run.status === "awaiting_approval" ? "Waiting for plan approval" : run.current_action || (TERMINAL_RUN.has(run.status) ? "" : "—");
    setText(row.action, current);
    setAttr(row.action, "title", current || null);
    const metrics = run.metrics || {};
    setText(row.tokens, formatInt(metrics.tokens_used ?? 0));
    setText(row.cost, formatCost(metrics.cost ?? 0));
    this.updateElapsed(run);
    row.tr.classList.toggle("superseded", superseded);
    if (row.stop) {
      row.stop.hidden = !STOPPABLE.has(run.status);
      row.stop.setAttribute("aria-label", `Stop ${label}`);
      row.retry.hidden = !RETRYABLE.has(run.status) || superseded;
      row.retry.setAttribute("aria-label", `Retry ${label}`);
    }
    row.tr.dataset.status = run.status;
  }

  updateElapsed(run) {
    const row = this.rows.get(run.id);
    if (row) setText(row.elapsed, formatDuration(elapsedSeconds(run)));
  }

  tick(state) {
    for (const run of state.runs.values()) if (ACTIVE_RUN.has(run.status)) this.updateElapsed(run);
  }
}
