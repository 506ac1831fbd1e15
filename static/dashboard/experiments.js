// The experiments list, live.
//
// One socket on /ws/research/: its snapshot gives the last event id; we subscribe to the
// global stream from there, and only then read the list over REST (events that arrive
// meanwhile wait and are applied after it, so the list misses nothing). Events are
// deduplicated per experiment by seq. A row keeps only the summary the list endpoint
// gives until one of its runs reports; then the experiment's runs are read once and the
// row's totals follow every event. After a reconnect we subscribe with since=<last id>.

import { api, describeError, goToLogin } from "./api.js";
import { $, clear, h, readConfig, setText } from "./dom.js";
import { EXPERIMENT_STATUS, formatCost, formatDateTime, formatInt, renderBadge } from "./format.js";
import { onFrame } from "./frame.js";
import { renderCounts } from "./counts.js";
import { progressBar } from "./runs_view.js";
import { LiveSocket } from "./socket.js";
import { ExperimentState } from "./state.js";
import { setUpCreateForm, setUpImportForm } from "./forms.js";
import { confirmAction, connectionIndicator, toast } from "./ui.js";

const cfg = readConfig();
const PAGE_SIZE = 20;
const LIST_EVENT_TYPES = [
  "experiment_created", "experiment_updated", "experiment_started", "experiment_stopped",
  "experiment_completed", "experiment_deleted", "agent_initialized", "agent_progress",
  "agent_completed", "agent_failed", "agent_stopped", "plan_ready", "approval_required",
  "plan_approved", "plan_rejected", "config_updated", "system_status",
];
const OPERATOR_ROLES = new Set(["owner", "operator"]);

const tbody = $("#experiments-body");
const rows = new Map(); // id -> row
const cursors = new Map(); // experiment id -> last seq seen
const selected = new Set();
let lastEventId = null;
let listLoading = false;
let listLoaded = false;
const listHeld = [];
let total = 0;

const params = new URLSearchParams(location.search);
const query = {
  page: Number(params.get("page")) || 1,
  search: params.get("search") || "",
  status: params.get("status") || "",
  ordering: params.get("ordering") || "-created_at",
};
$("#filter-search").value = query.search;
$("#filter-status").value = query.status;
$("#filter-ordering").value = query.ordering;

// Rows ----------------------------------------------------------------------------------

function makeRow(body) {
  const selectable = OPERATOR_ROLES.has(body.role);
  const check = selectable
    ? h("input", { type: "checkbox", "aria-label": `Select ${body.name}`, dataset: { id: body.id } })
    : null;
  if (check) {
    check.checked = selected.has(body.id);
    check.addEventListener("change", () => {
      if (check.checked) selected.add(body.id);
      else selected.delete(body.id);
      paintSelection();
    });
  }
  const link = h("a", { href: `/experiments/${encodeURIComponent(body.id)}/` });
  const sub = h("span", { class: "sub" });
  const badge = renderBadge(null, body.status);
  const progress = progressBar(`Progress of ${body.name}`);
  const counts = h("span", { class: "counts" });
  const tokens = h("td", { class: "num", "data-label": "Tokens" });
  const cost = h("td", { class: "num", "data-label": "Cost" });
  const createdAt = h("td", { class: "nowrap", "data-label": "Created" });
  const tr = h(
    "tr",
    { dataset: { experimentId: body.id } },
    h("td", { class: "check" }, check),
    h("th", { scope: "row", class: "cell-name", "data-label": "Experiment" }, link, sub),
    h("td", { "data-label": "Status" }, badge),
    h("td", { "data-label": "Progress" }, progress.el),
    h("td", { "data-label": "Agents" }, counts),
    tokens,
    cost,
    createdAt,
  );
  return { id: body.id, body: { ...body }, state: null, loading: false, held: [], tr, check, link, sub, badge, progress, counts, tokens, cost, createdAt };
}

function paintRow(row) {
  const exp = row.state ? row.state.experiment : row.body;
  const summary = row.state ? row.state.summary() : row.body;
  setText(row.link, exp.name);
  setText(row.sub, exp.description || row.id);
  renderBadge(row.badge, exp.status);
  const allDone = summary.total_agents && (summary.runs_by_status || {}).completed === summary.total_agents;
  row.progress.set(summary.progress_percent, allDone ? "completed" : exp.status);
  row.progress.label(`Progress of ${exp.name}`);
  renderCounts(row.counts, summary.runs_by_status || {}, summary.total_agents);
  setText(row.tokens, formatInt(summary.tokens_used));
  setText(row.cost, formatCost(summary.cost));
  setText(row.createdAt, formatDateTime(row.body.created_at));
  row.tr.dataset.status = exp.status;
}

function schedulePaint(row) {
  onFrame(`row:${row.id}`, () => rows.get(row.id) === row && paintRow(row));
}

function showEmpty(text) {
  clear(tbody);
  tbody.append(h("tr", { class: "empty-row" }, h("td", { colspan: 8, class: "empty", text })));
}

function renderList(results) {
  clear(tbody);
  rows.clear();
  for (const body of results) {
    const row = makeRow(body);
    rows.set(row.id, row);
    tbody.append(row.tr);
    paintRow(row);
  }
  if (!results.length) {
    showEmpty(query.search || query.status ? "No experiment matches these filters." : "No experiments yet: create one above, or import a spec file.");
  }
  paintPager();
  paintSelection();
}

function paintPager() {
  const first = total ? (query.page - 1) * PAGE_SIZE + 1 : 0;
  const last = Math.min(total, first + rows.size - 1);
  setText($("#page-info"), total ? `Showing ${first}–${last} of ${total}` : "");
  $("#page-prev").disabled = query.page <= 1;
  $("#page-next").disabled = query.page * PAGE_SIZE >= total;
}

// Reading the list ------------------------------------------------------------------------

let listRequest = 0;
async function loadList() {
  const mine = ++listRequest;
  listLoading = true;
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) if (value && !(key === "page" && value === 1) && !(key === "ordering" && value === "-created_at")) search.set(key, value);
  history.replaceState(null, "", search.toString() ? `?${search}` : location.pathname);
  try {
    const page = await api("experiments", {
      query: { page: query.page, page_size: PAGE_SIZE, search: query.search, status: query.status, ordering: query.ordering },
    });
    if (mine !== listRequest) return;
    total = page.count;
    renderList(page.results);
    listLoaded = true;
    $("#new-experiments").hidden = true;
  } catch (err) {
    if (mine !== listRequest) return;
    if (err.status === 404 && query.page > 1) {
      query.page = 1;
      listLoading = false;
      loadList();
      return;
    }
    showEmpty(`Could not load experiments: ${describeError(err)}`);
  } finally {
    if (mine === listRequest) {
      listLoading = false;
      const waiting = listHeld.splice(0);
      for (const event of waiting) applyEvent(event);
    }
  }
}

// Runs of a row, read once its runs start reporting -----------------------------------------

async function loadRuns(row, event) {
  row.held.push(event);
  if (row.loading) return;
  row.loading = true;
  try {
    const body = await api(`experiments/${encodeURIComponent(row.id)}`);
    row.state = new ExperimentState(body, body.runs);
    row.body = { ...row.body, ...body };
  } catch (err) {
    if (err.status === 404) removeRow(row.id);
    return;
  } finally {
    row.loading = false;
  }
  for (const held of row.held.splice(0)) row.state.apply(held);
  schedulePaint(row);
}

function removeRow(id) {
  const row = rows.get(id);
  if (!row) return;
  row.tr.remove();
  rows.delete(id);
  selected.delete(id);
  total = Math.max(0, total - 1);
  paintPager();
  paintSelection();
  if (!rows.size && listLoaded) loadList();
}

// Events ------------------------------------------------------------------------------------

const STATUS_EVENTS = new Set(["experiment_created", "experiment_started", "experiment_stopped", "experiment_completed", "experiment_deleted"]);

function matchesFilters(body) {
  if (query.status && body.status !== query.status) return false;
  const term = query.search.trim().toLowerCase();
  return !term || `${body.name} ${body.description || ""}`.toLowerCase().includes(term);
}

function handleEvent(event) {
  if (typeof event.id === "number" && (lastEventId === null || event.id > lastEventId)) lastEventId = event.id;
  if (!event.experiment_id) return; // config_updated, system_status
  const seen = cursors.get(event.experiment_id);
  if (seen !== undefined && event.seq <= seen) return;
  cursors.set(event.experiment_id, event.seq);
  if (STATUS_EVENTS.has(event.event_type)) refreshStatusSoon();
  if (listLoading) listHeld.push(event);
  else applyEvent(event);
}

function applyEvent(event) {
  const id = event.experiment_id;
  const row = rows.get(id);
  if (event.event_type === "experiment_created") {
    if (row) return;
    const fresh = event.data || {};
    const defaultView = query.page === 1 && query.ordering === "-created_at";
    if (defaultView && fresh.id && matchesFilters(fresh)) {
      // At creation only its creator is a member (and staff see everything).
      const role = cfg.isStaff || fresh.created_by === cfg.username ? "owner" : "viewer";
      const created = makeRow({ ...fresh, role });
      created.state = new ExperimentState(fresh, fresh.runs || []);
      rows.set(created.id, created);
      if (rows.size === 1) clear(tbody);
      tbody.prepend(created.tr);
      total += 1;
      paintRow(created);
      if (rows.size > PAGE_SIZE) {
        const lastRow = [...rows.values()].find((r) => r.tr === tbody.lastElementChild);
        if (lastRow) {
          lastRow.tr.remove();
          rows.delete(lastRow.id);
        }
      }
      paintPager();
    } else {
      $("#new-experiments").hidden = false;
    }
    return;
  }
  if (event.event_type === "experiment_deleted") {
    removeRow(id);
    return;
  }
  if (!row) return;
  if (row.loading) {
    row.held.push(event);
    return;
  }
  if (row.state) {
    row.state.apply(event);
    schedulePaint(row);
    return;
  }
  if (event.event_type === "experiment_updated" && !event.data.added_run) {
    for (const key of ["name", "description", "status", "completed_at"]) if (key in event.data) row.body[key] = event.data[key];
    schedulePaint(row);
    return;
  }
  // Anything about runs: read the runs once, then follow every event.
  loadRuns(row, event);
}

// Status counts -------------------------------------------------------------------------------

function paintStatus(status) {
  const counts = (status && status.experiments) || {};
  const parts = [];
  let all = 0;
  for (const [value, info] of Object.entries(EXPERIMENT_STATUS)) {
    const n = counts[value] || 0;
    all += n;
    const option = $(`#filter-status option[value="${value}"]`);
    if (option) option.textContent = `${info.label} (${n})`;
    if (n) parts.push(`${n} ${info.label.toLowerCase()}`);
  }
  $('#filter-status option[value=""]').textContent = `All statuses (${all})`;
  setText($("#status-summary"), parts.length ? parts.join(" · ") : "No experiments yet");
}

let statusTimer = 0;
function refreshStatusSoon() {
  if (statusTimer) return;
  statusTimer = setTimeout(async () => {
    statusTimer = 0;
    try {
      paintStatus(await api("status"));
    } catch (err) {
      console.warn("status refresh failed", err);
    }
  }, 1500);
}

// The socket ----------------------------------------------------------------------------------

function subscribe() {
  socket.send({ type: "subscribe", experiment_id: null, since: lastEventId, event_types: LIST_EVENT_TYPES });
}

function onMessage(message) {
  switch (message.type) {
    case "snapshot":
      paintStatus(message.status);
      if (lastEventId === null) lastEventId = message.last_event_id;
      subscribe();
      break;
    case "subscribed":
      if (message.recovered === false && message.snapshot) {
        // What we missed is no longer stored: start over from now.
        lastEventId = message.snapshot.last_event_id;
        cursors.clear();
        paintStatus(message.snapshot.status);
        loadList();
      } else if (!listLoaded && !listLoading) {
        loadList();
      }
      break;
    case "event":
      handleEvent(message);
      break;
    case "error":
      console.warn("socket error", message.code, message.detail);
      break;
    default:
      break;
  }
}

const indicate = connectionIndicator($("#connection"));
const socket = new LiveSocket({ url: () => "/ws/research/", onMessage, onState: indicate, onAuthLost: goToLogin });
socket.start();
// A list even when the socket cannot connect (it stays current once the socket is back).
setTimeout(() => {
  if (!listLoaded && !listLoading) loadList();
}, 3000);

// Filters, paging ------------------------------------------------------------------------------

let searchTimer = 0;
$("#filter-search").addEventListener("input", (e) => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => {
    query.search = e.target.value.trim();
    query.page = 1;
    loadList();
  }, 300);
});
$("#filters").addEventListener("submit", (e) => e.preventDefault());
$("#filter-status").addEventListener("change", (e) => {
  query.status = e.target.value;
  query.page = 1;
  loadList();
});
$("#filter-ordering").addEventListener("change", (e) => {
  query.ordering = e.target.value;
  query.page = 1;
  loadList();
});
$("#page-prev").addEventListener("click", () => {
  query.page = Math.max(1, query.page - 1);
  loadList();
});
$("#page-next").addEventListener("click", () => {
  query.page += 1;
  loadList();
});
$("#show-new").addEventListener("click", () => {
  query.page = 1;
  query.ordering = "-created_at";
  $("#filter-ordering").value = query.ordering;
  loadList();
});

// Selection and bulk actions -----------------------------------------------------------------

function paintSelection() {
  for (const id of [...selected]) if (!rows.has(id)) selected.delete(id);
  $("#bulkbar").hidden = selected.size === 0;
  setText($("#bulk-count"), `${selected.size} selected`);
  const boxes = [...rows.values()].filter((r) => r.check);
  const all = $("#select-all");
  all.disabled = boxes.length === 0;
  all.checked = boxes.length > 0 && boxes.every((r) => r.check.checked);
  all.indeterminate = !all.checked && boxes.some((r) => r.check.checked);
}

$("#select-all").addEventListener("change", (e) => {
  for (const row of rows.values()) {
    if (!row.check) continue;
    row.check.checked = e.target.checked;
    if (e.target.checked) selected.add(row.id);
    else selected.delete(row.id);
  }
  paintSelection();
});

$("#bulk-clear").addEventListener("click", () => {
  selected.clear();
  for (const row of rows.values()) if (row.check) row.check.checked = false;
  paintSelection();
});

const BULK_WORDS = { start: ["Started", "start"], stop: ["Stopped", "stop"], delete: ["Deleted", "delete"] };

for (const button of document.querySelectorAll("[data-bulk]")) {
  button.addEventListener("click", async () => {
    const action = button.dataset.bulk;
    const ids = [...selected];
    if (!ids.length) return;
    if (action !== "start") {
      const sure = await confirmAction({
        title: `${action === "stop" ? "Stop" : "Delete"} ${ids.length} experiment${ids.length > 1 ? "s" : ""}?`,
        body: action === "stop" ? "Every unfinished run of each is stopped and its agent told at once." : "Deleting removes each experiment with its runs, metrics and events. It cannot be undone.",
        confirmLabel: action === "stop" ? "Stop" : "Delete",
      });
      if (!sure) return;
    }
    button.disabled = true;
    try {
      const { results } = await api("experiments/bulk", { method: "POST", body: { action, ids } });
      const ok = results.filter((r) => r.ok);
      const failed = results.filter((r) => !r.ok);
      for (const r of ok) {
        selected.delete(r.id);
        const row = rows.get(r.id);
        if (row && row.check) row.check.checked = false;
        if (action === "delete") removeRow(r.id);
      }
      paintSelection();
      const [done, verb] = BULK_WORDS[action];
      if (ok.length) toast(`${done} ${ok.length} experiment${ok.length > 1 ? "s" : ""}.`);
      if (failed.length) {
        const why = failed.map((r) => `${rows.get(r.id)?.body.name || r.id}: ${(r.detail || r.error || "failed").replaceAll("_", " ")}`);
        toast(`Could not ${verb} ${failed.length}: ${why.join("; ")}`, { error: true });
      }
    } catch (err) {
      toast(describeError(err), { error: true });
    } finally {
      button.disabled = false;
    }
  });
}

setUpCreateForm();
setUpImportForm();

window.researchDashboard = { rows, cursors, lastEventId: () => lastEventId, socket };
