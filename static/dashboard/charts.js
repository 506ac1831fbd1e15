// Live metric charts: one uPlot chart per metric, one line per run.
//
// Series start from GET metrics/<id> (downsampled server-side) and grow from
// metrics_updated events. Points that arrive while a load is in flight are kept and
// re-applied after it, so a reload never loses a point. Each chart redraws at most four
// times a second however fast points arrive.

import uPlot from "../vendor/uplot/uPlot.esm.js";
import { clear, h, setText } from "./dom.js";
import { onFrame } from "./frame.js";
import { formatValue } from "./format.js";

// Okabe–Ito: distinguishable with the common colour-vision deficiencies; dashes tell
// lines apart without colour.
const PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#7F7F7F", "#332288"];
const DASHES = [[], [8, 4], [2, 3], [10, 3, 2, 3], [4, 4], [12, 6]];
const MAX_POINTS = 2000;
const REDRAW_MS = 250;
const HEIGHT = 220;
// Past this many runs a legend row per run drowns the chart: the chart then shows, as
// plain text, every run's latest value instead.
const MAX_LEGEND_RUNS = 12;

class Series {
  constructor() {
    this.xs = [];
    this.ys = [];
  }

  add(step, value) {
    const n = this.xs.length;
    if (n === 0 || step > this.xs[n - 1]) {
      this.xs.push(step);
      this.ys.push(value);
      if (this.xs.length > MAX_POINTS) this.thin();
    } else if (step === this.xs[n - 1]) {
      this.ys[n - 1] = value;
    }
  }

  /** Keep every other point of the older half: the recent past stays exact. */
  thin() {
    const half = Math.floor(this.xs.length / 2);
    const xs = [];
    const ys = [];
    for (let i = 0; i < half; i += 2) {
      xs.push(this.xs[i]);
      ys.push(this.ys[i]);
    }
    this.xs = xs.concat(this.xs.slice(half));
    this.ys = ys.concat(this.ys.slice(half));
  }
}

let instances = 0;

function cssVar(name, fallback) {
  const value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return value || fallback;
}

export class MetricCharts {
  constructor(container, { label, runOrder }) {
    this.container = container;
    this.instance = ++instances; // frame keys and element ids stay apart between instances
    this.label = label;
    this.runOrder = runOrder;
    this.metrics = new Map(); // name -> Map(runId -> Series)
    this.charts = new Map(); // name -> {figure, plotEl, summary, plot, runs, dirty, drawnAt}
    this.buffer = null;
    this.empty = h("p", { class: "charts-empty", text: "No metrics reported yet." });
    this.grid = h("div", { class: "charts" });
    clear(container);
    container.append(this.empty, this.grid);
    this.resize = new ResizeObserver(() => this.resizeAll());
    this.resize.observe(this.grid);
  }

  beginLoad() {
    this.buffer = [];
  }

  /** Replace every series with a GET metrics body, then re-apply what arrived meanwhile. */
  load(body) {
    const pending = this.buffer || [];
    this.buffer = null;
    this.metrics.clear();
    for (const [runId, byName] of Object.entries(body.series || {})) {
      for (const [name, points] of Object.entries(byName)) {
        const series = this.seriesFor(name, runId);
        for (const p of points) series.add(p.step, p.value);
      }
    }
    for (const [runId, name, step, value] of pending) this.seriesFor(name, runId).add(step, value);
    for (const name of this.metrics.keys()) this.markDirty(name);
  }

  abortLoad() {
    const pending = this.buffer || [];
    this.buffer = null;
    for (const [runId, name, step, value] of pending) this.addPoint(runId, name, step, value);
  }

  seriesFor(name, runId) {
    let byRun = this.metrics.get(name);
    if (!byRun) {
      byRun = new Map();
      this.metrics.set(name, byRun);
    }
    let series = byRun.get(runId);
    if (!series) {
      series = new Series();
      byRun.set(runId, series);
    }
    return series;
  }

  addPoint(runId, name, step, value) {
    if (typeof value !== "number" || typeof step !== "number") return;
    if (this.buffer) this.buffer.push([runId, name, step, value]);
    this.seriesFor(name, runId).add(step, value);
    this.markDirty(name);
  }

  /** A metrics_updated event: the latest point of each metric in the batch. */
  addEvent(runId, data) {
    const steps = data.steps || {};
    for (const [name, value] of Object.entries(data.metrics || {})) this.addPoint(runId, name, steps[name], value);
  }

  relabel() {
    for (const chart of this.charts.values()) {
      chart.runs = [];
      chart.dirty = true;
    }
    for (const name of this.charts.keys()) this.markDirty(name);
  }

  markDirty(name) {
    const chart = this.chartFor(name);
    chart.dirty = true;
    const wait = chart.drawnAt + REDRAW_MS - performance.now();
    const key = `chart:${this.instance}:${name}`;
    if (wait <= 0) onFrame(key, () => this.draw(name));
    else if (!chart.timer) {
      chart.timer = setTimeout(() => {
        chart.timer = 0;
        onFrame(key, () => this.draw(name));
      }, wait);
    }
  }

  chartFor(name) {
    let chart = this.charts.get(name);
    if (chart) return chart;
    const id = `metric-${this.instance}-${this.charts.size}`;
    const plotEl = h("div", { class: "plot", "aria-hidden": "true" });
    const summary = h("p", { class: "visually-hidden", id: `${id}-summary` });
    const figure = h(
      "figure",
      { class: "chart", role: "group", "aria-labelledby": `${id}-title`, "aria-describedby": `${id}-summary`, dataset: { metric: name } },
      h("figcaption", { id: `${id}-title` }, h("span", { text: name }), h("span", { class: "muted", text: "by step" })),
      plotEl,
      summary,
    );
    // Never drawn: the first draw is not held back, however young the page is.
    chart = { figure, plotEl, summary, plot: null, runs: [], dirty: false, drawnAt: -Infinity, timer: 0 };
    this.charts.set(name, chart);
    // Keep charts in name order.
    const after = [...this.grid.children].find((el) => el.dataset.metric > name);
    this.grid.insertBefore(figure, after || null);
    this.empty.hidden = true;
    return chart;
  }

  draw(name) {
    const chart = this.charts.get(name);
    const byRun = this.metrics.get(name);
    if (!chart || !chart.dirty || !byRun) return;
    chart.dirty = false;
    chart.drawnAt = performance.now();
    const order = this.runOrder();
    const runs = [...byRun.keys()].sort((a, b) => order.indexOf(a) - order.indexOf(b));
    const data = align(runs.map((id) => byRun.get(id)));
    const sameRuns = chart.plot && runs.length === chart.runs.length && runs.every((id, i) => id === chart.runs[i]);
    if (sameRuns) {
      chart.plot.setData(data);
      // Not hovering: let the legend show each line's latest value.
      if (chart.plot.legend.idx == null) chart.plot.setLegend({ idx: null });
    } else {
      if (chart.plot) chart.plot.destroy();
      chart.runs = runs;
      chart.plot = new uPlot(this.options(runs, chart.plotEl.clientWidth || 480), data, chart.plotEl);
    }
    const last = runs.map((id) => {
      const s = byRun.get(id);
      const n = s.xs.length;
      return n ? `${this.label(id)} ${formatValue(s.ys[n - 1])} at step ${s.xs[n - 1]}` : null;
    });
    setText(chart.summary, `${name}, latest values: ${last.filter(Boolean).join("; ")}.`);
    chart.summary.className = runs.length > MAX_LEGEND_RUNS ? "chart-summary muted" : "visually-hidden";
  }

  options(runs, width) {
    const text = cssVar("--muted", "#525c68");
    const grid = cssVar("--border", "#d5dae1");
    const axis = { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    return {
      width,
      height: HEIGHT,
      scales: { x: { time: false } },
      axes: [
        { ...axis, label: "step", labelSize: 18, size: 36 },
        { ...axis, size: 56, values: (u, values) => values.map(formatValue) },
      ],
      legend: { show: runs.length <= MAX_LEGEND_RUNS, live: true },
      cursor: { drag: { x: true, y: false }, points: { size: 6 } },
      series: [
        { label: "step", value: (u, v, si, idx) => (idx == null ? lastValue(u.data[0]) ?? "—" : String(v)) },
        ...runs.map((id, i) => ({
          label: this.label(id),
          stroke: PALETTE[i % PALETTE.length],
          dash: DASHES[i % DASHES.length],
          width: 2,
          spanGaps: true,
          points: { show: false },
          value: (u, v, si, idx) => {
            const shown = idx == null ? lastValue(u.data[si]) : v;
            return shown == null ? "—" : formatValue(shown);
          },
        })),
      ],
    };
  }

  resizeAll() {
    for (const chart of this.charts.values()) {
      if (!chart.plot) continue;
      const width = chart.plotEl.clientWidth;
      if (width && Math.abs(width - chart.plot.width) > 2) chart.plot.setSize({ width, height: HEIGHT });
    }
  }
}

function lastValue(column) {
  if (!column) return null;
  for (let i = column.length - 1; i >= 0; i -= 1) if (column[i] != null) return column[i];
  return null;
}

/** uPlot wants one x array shared by every line: the union of steps, null where a run has none. */
function align(seriesList) {
  const steps = new Set();
  for (const s of seriesList) for (const x of s.xs) steps.add(x);
  const xs = Array.from(steps).sort((a, b) => a - b);
  const index = new Map();
  xs.forEach((x, i) => index.set(x, i));
  const columns = seriesList.map((s) => {
    const ys = new Array(xs.length).fill(null);
    for (let i = 0; i < s.xs.length; i += 1) ys[index.get(s.xs[i])] = s.ys[i];
    return ys;
  });
  return [xs, ...columns];
}
