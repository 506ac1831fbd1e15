// The filterable event log of one experiment: every seq once, newest first.
//
// Entries are kept by seq (history from GET events, then live events), so a replay after
// a reconnect cannot show anything twice. Rendering is batched per frame and only the
// newest MAX_ROWS matching entries are in the DOM.

import { clear, h, setText } from "./dom.js";
import { onFrame } from "./frame.js";
import { formatClock, formatPercent, formatValue, statusInfo } from "./format.js";

const MAX_ENTRIES = 5000;
const MAX_ROWS = 400;

export const CATEGORIES = {
  all: { label: "All events", types: null },
  lifecycle: {
    label: "Lifecycle",
    types: [
      "experiment_created", "experiment_updated", "experiment_started", "experiment_stopped",
      "experiment_completed", "experiment_deleted", "agent_initialized", "agent_completed",
      "agent_failed", "agent_stopped",
    ],
  },
  progress: { label: "Progress", types: ["agent_progress"] },
  plans: { label: "Plans and approvals", types: ["plan_ready", "approval_required", "plan_approved", "plan_rejected"] },
  metrics: { label: "Metrics and validation", types: ["metrics_updated", "validation_completed"] },
  logs: { label: "Agent logs", types: ["log_appended"] },
  errors: { label: "Errors and failures", types: ["error_occurred", "agent_failed"] },
  quiet: { label: "All but progress and metrics", types: null, exclude: ["agent_progress", "metrics_updated"] },
};

function describe(event) {
  const d = event.data || {};
  switch (event.event_type) {
    case "experiment_created":
      return `Experiment created with ${(d.runs || []).length} agents`;
    case "experiment_updated":
      if (d.added_run) return `Run added: ${d.added_run.name || d.added_run.agent_type} (attempt ${d.added_run.attempt})`;
      return `Updated: ${Object.keys(d).join(", ")}`;
    case "experiment_started":
      return `Experiment started with ${d.total_agents ?? "?"} agents`;
    case "experiment_stopped":
      return `Experiment stopped${d.by ? ` by ${d.by}` : ""}`;
    case "experiment_completed":
      return `Experiment finished: ${statusInfo(d.status).label}`;
    case "experiment_deleted":
      return `Experiment deleted${d.by ? ` by ${d.by}` : ""}`;
    case "agent_initialized":
      return `Agent running (attempt ${d.attempt ?? 1})`;
    case "agent_progress":
      return `${formatPercent(d.progress_percent)}${d.current_action ? ` · ${d.current_action}` : ""}`;
    case "agent_completed":
      return "Completed";
    case "agent_failed":
      return `Failed: ${d.error || d.reason || "no reason given"}`;
    case "agent_stopped":
      return `Stopped${d.reason ? ` (${d.reason.replaceAll("_", " ")})` : ""}${d.by ? ` by ${d.by}` : ""}`;
    case "plan_ready":
      return "Plan submitted";
    case "approval_required":
      return d.deadline ? `Awaiting approval until ${formatClock(d.deadline)}` : "Awaiting approval";
    case "plan_approved":
      return `Plan approved${d.by ? ` by ${d.by}` : ""}${d.feedback ? `: “${d.feedback}”` : ""}`;
    case "plan_rejected":
      return `${d.revise ? "Revision requested" : "Plan rejected"}${d.by ? ` by ${d.by}` : ""}${d.feedback ? `: “${d.feedback}”` : ""}`;
    case "metrics_updated": {
      const parts = Object.entries(d.metrics || {}).map(([k, v]) => `${k} ${formatValue(v)}`);
      return `${parts.join(", ")}${d.count > parts.length ? ` (${d.count} points)` : ""}`;
    }
    case "validation_completed":
      return `Validation ${d.passed ? "passed" : "failed"}`;
    case "log_appended": {
      const lines = d.lines || [];
      const first = lines[0];
      const more = (d.count || lines.length) - 1;
      return first ? `[${first.level}] ${first.message}${more > 0 ? ` (+${more} more)` : ""}` : `${d.count} lines`;
    }
    case "error_occurred":
      return `[${d.level}] ${d.message}`;
    default:
      return "";
  }
}

function levelOf(event) {
  const d = event.data || {};
  if (event.event_type === "error_occurred" || event.event_type === "agent_failed") return "error";
  if (event.event_type === "log_appended" && (d.lines || []).some((l) => l.level === "error" || l.level === "critical")) return "error";
  return "info";
}

export class EventLog {
  constructor({ list, category, run, search, pause, status, runLabel }) {
    Object.assign(this, { list, category, run, search, pause, status, runLabel });
    this.entries = []; // ascending by key
    this.keys = new Set();
    this.fresh = []; // live entries not rendered yet
    this.paused = false;
    this.full = false; // a full redraw is due at the next frame
    this.unseen = 0;
    this.rows = 0;
    this.notes = 0;
    category.addEventListener("change", () => this.rerender());
    run.addEventListener("change", () => this.rerender());
    search.addEventListener("input", () => this.rerender());
    pause.addEventListener("click", () => this.togglePause());
  }

  entryFor(event) {
    return {
      key: event.seq,
      seq: event.seq,
      type: event.event_type,
      runId: event.run_id,
      time: event.timestamp,
      text: describe(event),
      level: levelOf(event),
    };
  }

  /** A live event: shown at the top (the socket delivers seqs in order). */
  add(event) {
    if (this.keys.has(event.seq)) return false;
    const entry = this.entryFor(event);
    this.keys.add(entry.key);
    this.entries.push(entry);
    this.trim();
    if (this.paused) {
      if (this.matches(entry)) this.unseen += 1;
      this.paintStatus();
      return true;
    }
    this.fresh.push(entry);
    if (this.fresh.length > MAX_ROWS) this.fresh.splice(0, this.fresh.length - MAX_ROWS);
    onFrame("log", () => this.paint());
    return true;
  }

  /** Stored events from GET events: merged by seq, then the list is redrawn. */
  addHistory(events) {
    let added = 0;
    for (const event of events) {
      if (this.keys.has(event.seq)) continue;
      const entry = this.entryFor(event);
      this.keys.add(entry.key);
      this.entries.push(entry);
      added += 1;
    }
    if (!added) return;
    this.entries.sort((a, b) => a.key - b.key);
    this.trim();
    this.rerender();
  }

  /** A line of our own (a reconnect, a resync), placed after ``afterSeq``. */
  note(text, afterSeq) {
    const entry = { key: (afterSeq || 0) + 0.5, seq: null, type: "note", runId: null, time: new Date().toISOString(), text, level: "note" };
    while (this.keys.has(entry.key)) entry.key += 0.001;
    this.keys.add(entry.key);
    this.notes += 1;
    this.entries.push(entry);
    this.entries.sort((a, b) => a.key - b.key);
    this.rerender();
  }

  trim() {
    if (this.entries.length <= MAX_ENTRIES) return;
    for (const entry of this.entries.splice(0, this.entries.length - MAX_ENTRIES)) {
      this.keys.delete(entry.key);
      if (entry.seq === null) this.notes -= 1;
    }
  }

  matches(entry) {
    if (entry.type === "note") return true;
    const category = CATEGORIES[this.category.value] || CATEGORIES.all;
    if (category.types && !category.types.includes(entry.type)) return false;
    if (category.exclude && category.exclude.includes(entry.type)) return false;
    if (this.run.value && entry.runId !== this.run.value) return false;
    const term = this.search.value.trim().toLowerCase();
    if (term) {
      const haystack = `${entry.type} ${entry.text} ${this.runLabel(entry.runId) || ""}`.toLowerCase();
      if (!haystack.includes(term)) return false;
    }
    return true;
  }

  row(entry) {
    if (entry.type === "note") {
      return h("li", { class: "note" }, h("span", { class: "t", text: formatClock(entry.time) }), " ", entry.text);
    }
    return h(
      "li",
      { class: `level-${entry.level}`, dataset: { seq: entry.seq, type: entry.type } },
      h("time", { class: "t", datetime: entry.time, text: formatClock(entry.time) }),
      h("span", { class: "seq", title: "Sequence number in this experiment", text: `#${entry.seq}` }),
      h("span", { class: "type", text: entry.type.replaceAll("_", " ") }),
      h("span", { class: "run", text: entry.runId ? this.runLabel(entry.runId) : "experiment" }),
      h("span", { class: "msg", text: entry.text }),
    );
  }

  /** One job per frame: a full redraw when one was asked for, else the new rows. */
  paint() {
    if (this.full) {
      this.full = false;
      this.redraw();
    } else {
      this.flush();
    }
  }

  flush() {
    const fresh = this.fresh.filter((e) => this.matches(e));
    this.fresh = [];
    if (!fresh.length) return;
    const fragment = document.createDocumentFragment();
    for (let i = fresh.length - 1; i >= 0; i -= 1) fragment.append(this.row(fresh[i]));
    this.list.prepend(fragment);
    this.rows += fresh.length;
    while (this.rows > MAX_ROWS && this.list.lastElementChild) {
      this.list.lastElementChild.remove();
      this.rows -= 1;
    }
    this.paintStatus();
  }

  rerender() {
    this.full = true;
    onFrame("log", () => this.paint());
  }

  redraw() {
    this.fresh = [];
    const shown = [];
    for (let i = this.entries.length - 1; i >= 0 && shown.length < MAX_ROWS; i -= 1) {
      if (this.matches(this.entries[i])) shown.push(this.row(this.entries[i]));
    }
    clear(this.list);
    this.list.append(...shown);
    this.rows = shown.length;
    this.paintStatus();
  }

  togglePause() {
    this.paused = !this.paused;
    this.pause.setAttribute("aria-pressed", String(this.paused));
    setText(this.pause, this.paused ? "Resume" : "Pause");
    if (!this.paused) {
      this.unseen = 0;
      this.rerender();
    }
    this.paintStatus();
  }

  paintStatus() {
    const total = this.entries.length - this.notes;
    let text = `${this.rows} shown of ${total} events kept`;
    if (this.paused) text += ` · paused, ${this.unseen} new`;
    setText(this.status, text);
  }

  setRuns(runs) {
    const current = this.run.value;
    const options = [h("option", { value: "", text: "All runs" })];
    for (const run of runs) options.push(h("option", { value: run.id, text: this.runLabel(run.id) }));
    clear(this.run);
    this.run.append(...options);
    this.run.value = runs.some((r) => r.id === current) ? current : "";
  }
}
