// One experiment's control room: the runs, their plans, metrics and events, live.
//
// State comes from the socket's snapshot, then from events applied in seq order. After a
// dropped connection the socket reconnects with ?since=<last seq>: the server sends a
// fresh snapshot and then the events we missed; those events are applied to the state we
// had, and the fresh snapshot is adopted once they have caught up with it, so nothing
// is shown twice or skipped. A seq gap (which the server promises never to send) is
// repaired from GET events; `recovered: false` redraws from the snapshot it carries.

import { ApiError, api, apiPages, describeError, goToLogin, saveDownload } from "./api.js";
import { $, readConfig, setText } from "./dom.js";
import { formatCost, formatDateTime, formatDuration, formatInt, renderBadge, runLabel } from "./format.js";
import { onFrame } from "./frame.js";
import { MetricCharts } from "./charts.js";
import { EventLog } from "./eventlog.js";
import { ApprovalsPanel } from "./approvals_view.js";
import { RunsTable, progressBar } from "./runs_view.js";
import { LiveSocket } from "./socket.js";
import { ExperimentState } from "./state.js";
import { confirmAction, connectionIndicator, showTokens, toast } from "./ui.js";
import { renderCounts } from "./counts.js";

const cfg = readConfig();
const experimentId = cfg.experimentId;
const state = new ExperimentState();
const stats = { events: 0, duplicates: 0, repaired: 0, reconnects: 0 };
let cursor = null; // the seq of the last event applied
let pendingSnapshot = null; // a reconnect's snapshot, adopted once the replay reaches it
let repairing = false;
const held = [];
let gone = false;
let everLive = false;
let lastState = "idle";

const announcer = $("#announcer");
const announce = (text) => {
  announcer.textContent = "";
  requestAnimationFrame(() => {
    announcer.textContent = text;
  });
};

const overall = progressBar("Overall progress");
$("#stat-progress").append(overall.el);

const runsTable = new RunsTable($("#runs-body"), { canOperate: cfg.canOperate, onStop: stopRun, onRetry: retryRun });
const approvals = new ApprovalsPanel($("#approvals"), { canOperate: cfg.canOperate, onDecide: decide, announce });
const labelOf = (runId) => runLabel(state.runs.get(runId)) || runId || "";
const charts = new MetricCharts($("#charts"), { label: labelOf, runOrder: () => [...state.runs.keys()] });
const log = new EventLog({
  list: $("#event-log"),
  category: $("#log-category"),
  run: $("#log-run"),
  search: $("#log-search"),
  pause: $("#log-pause"),
  status: $("#log-status"),
  runLabel: labelOf,
});

// Rendering: events mark what changed; one frame redraws it. ----------------------------

const dirty = { all: false, header: false, structure: false, runs: new Set() };

function markAll() {
  dirty.all = dirty.header = dirty.structure = true;
  onFrame("experiment", render);
}

function render() {
  if (!state.experiment) return;
  if (dirty.structure) {
    runsTable.sync(state);
    log.setRuns([...state.runs.values()]);
  }
  const superseded = state.superseded();
  const ids = dirty.all || dirty.structure ? state.runs.keys() : dirty.runs;
  for (const id of ids) {
    const run = state.runs.get(id);
    if (run) runsTable.update(run, superseded.has(id));
  }
  if (dirty.all || dirty.structure || dirty.runs.size) approvals.sync(state);
  if (dirty.header || dirty.runs.size || dirty.all) renderHeader();
  dirty.all = dirty.header = dirty.structure = false;
  dirty.runs.clear();
}

function renderHeader() {
  const exp = state.experiment;
  const summary = state.summary();
  setText($("#experiment-name"), exp.name);
  setText($("#experiment-description"), exp.description || "");
  $("#experiment-description").hidden = !exp.description;
  renderBadge($("#experiment-status"), exp.status);
  overall.set(summary.progress_percent, summary.total_agents && summary.runs_by_status.completed === summary.total_agents ? "completed" : exp.status);
  renderCounts($("#stat-agents"), summary.runs_by_status, summary.total_agents);
  setText($("#stat-tokens"), formatInt(summary.tokens_used));
  setText($("#stat-cost"), formatCost(summary.cost));
  renderDuration();
  setText($("#experiment-started"), exp.started_at ? `Started ${formatDateTime(exp.started_at)}` : "Not started yet");
  if (cfg.canOperate) {
    $("#start-experiment").hidden = exp.status !== "created";
    $("#stop-experiment").hidden = exp.status !== "running";
  }
  const waiting = summary.runs_by_status.awaiting_approval || 0;
  document.title = `${waiting ? `(${waiting}) ` : ""}${exp.name} · Research Engine`;
}

function renderDuration() {
  const exp = state.experiment;
  if (!exp || !exp.started_at) {
    setText($("#stat-duration"), "—");
    return;
  }
  const end = exp.completed_at ? Date.parse(exp.completed_at) : Date.now();
  setText($("#stat-duration"), formatDuration((end - Date.parse(exp.started_at)) / 1000));
}

setInterval(() => {
  onFrame("tick", () => {
    runsTable.tick(state);
    approvals.tick();
    renderDuration();
  });
}, 1000);

// State from the socket -----------------------------------------------------------------

function resetFrom(snapshot, note) {
  state.load(snapshot.experiment, snapshot.runs);
  cursor = snapshot.seq;
  pendingSnapshot = null;
  held.length = 0;
  if (note) log.note(note, cursor);
  markAll();
  loadMetrics();
}

function handleSnapshot(snapshot) {
  if (cursor === null) {
    resetFrom(snapshot);
    loadHistory(snapshot.seq);
    return;
  }
  if (snapshot.seq < cursor) {
    resetFrom(snapshot, "The server's history is behind this page; redrawn from its current state.");
    return;
  }
  if (snapshot.seq === cursor) {
    state.load(snapshot.experiment, snapshot.runs);
    markAll();
    return;
  }
  // Events (cursor, snapshot.seq] follow: apply them, then adopt the snapshot.
  pendingSnapshot = snapshot;
}

function handleEvent(event) {
  if (event.experiment_id !== experimentId || typeof event.seq !== "number") return;
  if (repairing) {
    held.push(event);
    return;
  }
  processEvent(event);
}

function processEvent(event) {
  if (event.seq <= cursor) {
    stats.duplicates += 1;
    return;
  }
  if (event.seq > cursor + 1) {
    repairGap(event);
    return;
  }
  applyEvent(event);
}

function applyEvent(event) {
  cursor = event.seq;
  stats.events += 1;
  const change = state.apply(event);
  if (event.event_type === "metrics_updated" && event.run_id) {
    charts.addEvent(event.run_id, event.data || {});
    const names = Object.keys((event.data && event.data.metrics) || {}).length;
    // The event carries only each metric's latest point; reload to draw the rest.
    if ((event.data && event.data.count) > names) reloadMetricsSoon();
  }
  log.add(event);
  if (change.gone) showGone("This experiment was deleted.");
  if (change.added) {
    dirty.structure = true;
    charts.relabel();
  }
  if (change.experiment) dirty.header = true;
  for (const id of change.runs) dirty.runs.add(id);
  if (pendingSnapshot && cursor >= pendingSnapshot.seq) {
    state.load(pendingSnapshot.experiment, pendingSnapshot.runs);
    pendingSnapshot = null;
    dirty.all = dirty.structure = true;
  }
  onFrame("experiment", render);
}

async function repairGap(event) {
  repairing = true;
  held.unshift(event);
  try {
    const missing = await apiPages("events", { experiment: experimentId, since: cursor, page_size: 100 }, { limit: 50 });
    for (const stored of missing) if (stored.seq === cursor + 1 && stored.seq < event.seq) applyEvent(stored);
    stats.repaired += 1;
    if (cursor < event.seq - 1) {
      log.note(`Events ${cursor + 1}–${event.seq - 1} are no longer stored.`, cursor);
      cursor = event.seq - 1;
    }
  } catch (err) {
    console.error("gap repair failed", err);
    held.length = 0; // the reconnect replays them after the last seq applied
    socket.reconnect();
    return;
  } finally {
    repairing = false;
  }
  while (held.length && !repairing) processEvent(held.shift());
}

function onMessage(message) {
  switch (message.type) {
    case "snapshot":
      handleSnapshot(message);
      break;
    case "event":
      handleEvent(message);
      break;
    case "subscribed":
      if (message.recovered === false && message.snapshot) {
        resetFrom(message.snapshot, "Some missed events are no longer stored; redrawn from the current state.");
      }
      break;
    case "error":
      if (message.code === "forbidden" || message.code === "not_found") showGone(message.detail);
      else console.warn("socket error", message.code, message.detail);
      break;
    default:
      break; // heartbeat, pong
  }
}

const indicate = connectionIndicator($("#connection"));
const socket = new LiveSocket({
  url: () => `/ws/research/experiments/${encodeURIComponent(experimentId)}/${cursor !== null ? `?since=${cursor}` : ""}`,
  onMessage,
  onAuthLost: goToLogin,
  onState(value, detail) {
    indicate(value, detail);
    if (value === "live") {
      if (everLive) {
        stats.reconnects += 1;
        log.note("Reconnected; resuming after the last event shown.", cursor);
      }
      everLive = true;
    } else if (value === "gone") {
      showGone();
    } else if (lastState === "live") {
      log.note("Connection lost; reconnecting…", cursor);
    }
    lastState = value;
  },
});

// Data over REST ------------------------------------------------------------------------

async function loadHistory(seq) {
  try {
    const events = await apiPages("events", { experiment: experimentId, since: Math.max(0, seq - 300), page_size: 100 }, { limit: 3 });
    log.addHistory(events);
  } catch (err) {
    toast(`Could not load the event history: ${describeError(err)}`, { error: true });
  }
}

let metricsInFlight = false;
let metricsAgain = false;
async function loadMetrics() {
  if (metricsInFlight) {
    metricsAgain = true;
    return;
  }
  metricsInFlight = true;
  charts.beginLoad();
  try {
    charts.load(await api(`metrics/${experimentId}`, { query: { max_points: 600 } }));
  } catch (err) {
    charts.abortLoad();
    if (!(err instanceof ApiError && err.status === 404)) console.error(err);
  } finally {
    metricsInFlight = false;
    if (metricsAgain) {
      metricsAgain = false;
      reloadMetricsSoon();
    }
  }
}

let metricsTimer = 0;
function reloadMetricsSoon() {
  if (!metricsTimer) {
    metricsTimer = setTimeout(() => {
      metricsTimer = 0;
      loadMetrics();
    }, 2000);
  }
}

// Actions -------------------------------------------------------------------------------

async function act(button, work) {
  if (button) button.disabled = true;
  try {
    return await work();
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) showGone();
    toast(describeError(err), { error: true });
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

async function stopRun(runId, button) {
  const ok = await act(button, () => api(`agents/${runId}/stop`, { method: "POST" }));
  if (ok) toast(`Stopped ${labelOf(runId)}.`);
}

async function retryRun(runId, button) {
  const run = await act(button, () => api(`agents/${runId}/retry`, { method: "POST" }));
  if (run) {
    showTokens({
      title: `Retrying ${labelOf(runId)}`,
      intro: `Attempt ${run.attempt} was created. Its run token is shown only this once: hand it to the agent.`,
      runs: [run],
    });
  }
}

async function decide(runId, body) {
  const run = await act(null, () => api(`agents/${runId}/approve`, { method: "POST", body }));
  if (!run) return false;
  const verb = body.approved ? "Approved" : body.revise ? "Asked for a revision of" : "Rejected";
  toast(`${verb} the plan of ${labelOf(runId)}.`);
  return true;
}

if (cfg.canOperate) {
  $("#start-experiment").addEventListener("click", (e) =>
    act(e.currentTarget, async () => {
      await api(`experiments/${experimentId}/start`, { method: "POST" });
      toast("Experiment started.");
    }),
  );
  $("#stop-experiment").addEventListener("click", async (e) => {
    const button = e.currentTarget;
    const sure = await confirmAction({
      title: "Stop this experiment?",
      body: "Every unfinished run is stopped and its agent told at once. Stopped runs can be retried one by one.",
      confirmLabel: "Stop experiment",
    });
    if (sure) {
      await act(button, async () => {
        await api(`experiments/${experimentId}/stop`, { method: "POST" });
        toast("Experiment stopped.");
      });
    }
  });
  for (const button of document.querySelectorAll("[data-export]")) {
    button.addEventListener("click", () =>
      act(button, async () => {
        const format = button.dataset.export;
        const response = await api(`export/${experimentId}`, { method: "POST", body: { format }, raw: true });
        await saveDownload(response, `${experimentId}.${format}`);
      }),
    );
  }
}

function showGone(detail) {
  if (gone) return;
  gone = true;
  const notice = $("#gone");
  setText(notice.querySelector(".gone-detail"), detail || "This experiment was deleted, or you are no longer a member of it.");
  notice.hidden = false;
  for (const el of document.querySelectorAll("[data-requires-live]")) el.hidden = true;
  socket.stop("gone");
  notice.focus();
}

// For the browser tests and for curious operators: counters, not controls.
window.researchDashboard = { stats, cursor: () => cursor, socket };

socket.start();
