// Words, icons and number formats shared by the pages. Status is always icon + word.

export const RUN_STATUS = {
  pending: { label: "Pending", icon: "○" },
  starting: { label: "Starting", icon: "◔" },
  running: { label: "Running", icon: "▶" },
  awaiting_approval: { label: "Awaiting approval", icon: "◷" },
  completed: { label: "Completed", icon: "✓" },
  failed: { label: "Failed", icon: "✕" },
  stopped: { label: "Stopped", icon: "■" },
};

export const EXPERIMENT_STATUS = {
  created: { label: "Created", icon: "○" },
  running: { label: "Running", icon: "▶" },
  completed: { label: "Completed", icon: "✓" },
  stopped: { label: "Stopped", icon: "■" },
  failed: { label: "Failed", icon: "✕" },
};

export const RUN_STATUS_ORDER = [
  "awaiting_approval", "running", "starting", "pending", "completed", "failed", "stopped",
];

export function statusInfo(status) {
  return RUN_STATUS[status] || EXPERIMENT_STATUS[status] || { label: status || "Unknown", icon: "?" };
}

/** Fill (or create) a badge element for a status: class, icon and word. */
export function renderBadge(el, status) {
  const badge = el || document.createElement("span");
  if (badge.dataset.status === status) return badge;
  const info = statusInfo(status);
  badge.className = `badge st-${status}`;
  badge.dataset.status = status;
  badge.textContent = "";
  const icon = document.createElement("span");
  icon.className = "icon";
  icon.setAttribute("aria-hidden", "true");
  icon.textContent = info.icon;
  badge.append(icon, document.createTextNode(info.label));
  return badge;
}

const intFormat = new Intl.NumberFormat("en-US");

export function formatInt(value) {
  const n = Number(value);
  return Number.isFinite(n) ? intFormat.format(Math.round(n)) : "—";
}

export function formatCost(value) {
  const n = Number(value);
  if (!Number.isFinite(n)) return "—";
  if (n !== 0 && Math.abs(n) < 0.01) return `$${n.toFixed(4)}`;
  return `$${n.toFixed(2)}`;
}

export function formatPercent(value) {
  const n = Number(value);
  if (!Number.isFinite(n)) return "—";
  return `${n >= 99.95 || n === 0 ? n.toFixed(0) : n.toFixed(1)}%`;
}

export function formatDuration(seconds) {
  const s = Number(seconds);
  if (!Number.isFinite(s) || s < 0) return "—";
  const total = Math.floor(s);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const sec = total % 60;
  if (h > 0) return `${h}h ${String(m).padStart(2, "0")}m`;
  if (m > 0) return `${m}m ${String(sec).padStart(2, "0")}s`;
  return `${sec}s`;
}

export function formatClock(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? "" : d.toLocaleTimeString([], { hour12: false });
}

export function formatDateTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "—";
  const sameYear = d.getFullYear() === new Date().getFullYear();
  return d.toLocaleString([], {
    ...(sameYear ? {} : { year: "numeric" }),
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    hour12: false,
  });
}

export function formatValue(value) {
  const n = Number(value);
  if (!Number.isFinite(n)) return String(value);
  if (Number.isInteger(n)) return intFormat.format(n);
  const abs = Math.abs(n);
  return abs >= 1000 ? intFormat.format(Math.round(n)) : n.toPrecision(4).replace(/\.?0+$/, "");
}

export function runLabel(run) {
  if (!run) return "";
  const base = run.name || run.agent_type || run.id;
  return run.attempt > 1 ? `${base} (attempt ${run.attempt})` : base;
}
