// Experiment and run state, kept from a snapshot and then from events.
//
// Event data is absolute state (a progress event carries the run's whole progress and
// metrics), so applying an event the state already reflects changes nothing. The
// experiment's totals (progress, tokens, cost, runs by status) are derived from its runs
// exactly as the server derives them (experiments/api/serializers.py: run_summary).

export const TERMINAL_RUN = new Set(["completed", "failed", "stopped"]);
export const ACTIVE_RUN = new Set(["starting", "running", "awaiting_approval"]);

function num(value) {
  return typeof value === "number" && Number.isFinite(value) ? value : 0;
}

export function summarize(runs) {
  const list = [...runs];
  const retried = new Set(list.filter((r) => r.retry_of).map((r) => r.retry_of));
  const latest = list.filter((r) => !retried.has(r.id));
  let tokens = 0;
  let cost = 0;
  for (const run of list) {
    const metrics = run.metrics || {};
    tokens += num(metrics.tokens_used);
    cost += num(metrics.cost);
  }
  const byStatus = {};
  let progress = 0;
  for (const run of latest) {
    byStatus[run.status] = (byStatus[run.status] || 0) + 1;
    progress += run.status === "completed" ? 100 : num(run.progress_percent);
  }
  return {
    total_agents: latest.length,
    runs_by_status: byStatus,
    progress_percent: latest.length ? progress / latest.length : 0,
    tokens_used: tokens,
    cost,
  };
}

/** Seconds the run has been going: the agent's own figure when it gave one, else wall time. */
export function elapsedSeconds(run, now = Date.now()) {
  const reported = run.metrics && run.metrics.elapsed_time;
  if (typeof reported === "number" && Number.isFinite(reported) && reported > 0) return reported;
  if (!run.started_at) return null;
  const end = run.completed_at ? Date.parse(run.completed_at) : now;
  return Math.max(0, (end - Date.parse(run.started_at)) / 1000);
}

/** Apply a run event to a run body; answers whether anything shown may have changed. */
export function applyRunEvent(run, event) {
  const d = event.data || {};
  const set = (key, value) => {
    if (value !== undefined) run[key] = value;
  };
  switch (event.event_type) {
    case "agent_initialized":
      set("status", d.status);
      set("started_at", d.started_at);
      set("attempt", d.attempt);
      if (d.name) run.name = d.name;
      return true;
    case "agent_progress":
      set("progress_percent", d.progress_percent);
      set("current_action", d.current_action);
      set("metrics", d.metrics);
      return true;
    case "agent_completed":
      set("status", d.status);
      set("progress_percent", d.progress_percent);
      set("result", d.result);
      set("metrics", d.metrics);
      set("completed_at", d.completed_at);
      return true;
    case "agent_failed":
      set("status", d.status);
      set("error", d.error);
      set("completed_at", d.completed_at);
      if (d.reason === "approval_timeout") run.approval = { ...(run.approval || {}), state: "timed_out" };
      return true;
    case "agent_stopped":
      set("status", d.status);
      set("completed_at", d.completed_at);
      if (d.reason) run.stop_reason = d.reason;
      return true;
    case "plan_ready":
      set("plan", d.plan);
      set("status", d.status);
      run.approval = { state: "pending", requested_at: event.timestamp, deadline: null, feedback: null };
      return true;
    case "approval_required":
      set("plan", d.plan);
      run.status = "awaiting_approval";
      run.approval = {
        ...(run.approval || {}),
        state: "pending",
        deadline: d.deadline || null,
        timeout_seconds: d.timeout_seconds,
      };
      return true;
    case "plan_approved":
      set("status", d.status);
      run.approval = { ...(run.approval || {}), state: "approved", decided_by: d.by, feedback: d.feedback || null };
      return true;
    case "plan_rejected":
      set("status", d.status);
      run.approval = {
        ...(run.approval || {}),
        state: d.revise ? "revision_requested" : "rejected",
        decided_by: d.by,
        feedback: d.feedback || null,
      };
      return true;
    case "validation_completed":
      run.validation = { passed: d.passed, details: d.details };
      return true;
    default:
      return false;
  }
}

const EXPERIMENT_KEYS = ["name", "description", "config", "status", "started_at", "completed_at"];

/**
 * One experiment with its runs. ``apply(event)`` answers what changed:
 * ``{experiment, runs: Set of run ids, added, gone}``.
 */
export class ExperimentState {
  constructor(body = null, runs = null) {
    this.experiment = null;
    this.runs = new Map();
    if (body) this.load(body, runs || body.runs || []);
  }

  load(experiment, runs) {
    this.experiment = { ...experiment };
    delete this.experiment.runs;
    this.runs = new Map();
    for (const run of runs) this.runs.set(run.id, { ...run });
  }

  upsertRun(body) {
    const known = this.runs.get(body.id);
    if (known) Object.assign(known, body);
    else this.runs.set(body.id, { ...body });
    return !known;
  }

  /** Run ids that a later attempt retried. */
  superseded() {
    const ids = new Set();
    for (const run of this.runs.values()) if (run.retry_of) ids.add(run.retry_of);
    return ids;
  }

  summary() {
    return summarize(this.runs.values());
  }

  apply(event) {
    const change = { experiment: false, runs: new Set(), added: false, gone: false };
    const d = event.data || {};
    const exp = this.experiment;
    switch (event.event_type) {
      case "experiment_created":
        if (d.id) this.load(d, d.runs || []);
        change.experiment = true;
        change.added = true;
        break;
      case "experiment_updated":
        for (const key of EXPERIMENT_KEYS) if (key in d) exp[key] = d[key];
        if (d.added_run) {
          change.added = this.upsertRun(d.added_run) || change.added;
          change.runs.add(d.added_run.id);
        }
        change.experiment = true;
        break;
      case "experiment_started":
        exp.status = d.status || "running";
        if (d.started_at) exp.started_at = d.started_at;
        exp.completed_at = null;
        for (const item of d.runs || []) {
          const run = this.runs.get(item.run_id);
          if (run) {
            run.status = item.status;
            change.runs.add(run.id);
          }
        }
        change.experiment = true;
        break;
      case "experiment_stopped":
      case "experiment_completed":
        if (d.status) exp.status = d.status;
        if (d.completed_at !== undefined) exp.completed_at = d.completed_at;
        change.experiment = true;
        break;
      case "experiment_deleted":
        change.gone = true;
        break;
      default: {
        const run = event.run_id && this.runs.get(event.run_id);
        if (run && applyRunEvent(run, event)) {
          change.runs.add(run.id);
          change.experiment = true;
        }
      }
    }
    return change;
  }
}
