// The plan-approval panel: a card per run awaiting approval, shown the moment its plan
// arrives, with approve / request revision / reject for operators.

import { clear, h, setText } from "./dom.js";
import { formatDuration, runLabel } from "./format.js";

const PLAN_TEXT_KEYS = ["summary", "goal", "title", "objective", "description"];
const STEP_KEYS = ["steps", "tasks", "actions"];

function stepText(step) {
  if (typeof step === "string") return step;
  if (step && typeof step === "object") {
    const main = step.title || step.name || step.action || step.description || step.step;
    const detail = step.title && step.description ? ` — ${step.description}` : "";
    if (main) return `${main}${detail}`;
  }
  return JSON.stringify(step);
}

/** A plan is free JSON: show prose, a list of steps, and whatever else as JSON. */
export function renderPlan(plan) {
  const body = h("div", { class: "plan-body" });
  if (plan === null || plan === undefined) {
    body.append(h("p", { class: "muted", text: "The agent sent an empty plan." }));
  } else if (typeof plan === "string") {
    body.append(h("pre", { text: plan }));
  } else if (Array.isArray(plan)) {
    body.append(h("ol", {}, plan.map((step) => h("li", { text: stepText(step) }))));
  } else if (typeof plan === "object") {
    const rest = { ...plan };
    for (const key of PLAN_TEXT_KEYS) {
      if (typeof rest[key] === "string") {
        body.append(h("p", { class: "plan-summary", text: rest[key] }));
        delete rest[key];
        break;
      }
    }
    for (const key of STEP_KEYS) {
      if (Array.isArray(rest[key])) {
        body.append(h("ol", {}, rest[key].map((step) => h("li", { text: stepText(step) }))));
        delete rest[key];
        break;
      }
    }
    const scalars = Object.entries(rest).filter(([, v]) => v === null || typeof v !== "object");
    const nested = Object.entries(rest).filter(([, v]) => v !== null && typeof v === "object");
    if (scalars.length) {
      body.append(
        h("dl", { class: "plan-facts" }, scalars.map(([k, v]) => h("div", {}, h("dt", { text: k.replaceAll("_", " ") }), h("dd", { text: String(v) })))),
      );
    }
    if (nested.length) body.append(h("pre", { text: JSON.stringify(Object.fromEntries(nested), null, 2) }));
  } else {
    body.append(h("pre", { text: JSON.stringify(plan) }));
  }
  return body;
}

export class ApprovalsPanel {
  constructor(section, { canOperate, onDecide, announce }) {
    this.section = section;
    this.list = section.querySelector(".plan-list");
    this.count = section.querySelector(".plan-count");
    this.canOperate = canOperate;
    this.onDecide = onDecide;
    this.announce = announce;
    this.cards = new Map();
  }

  sync(state) {
    const waiting = [...state.runs.values()].filter((run) => run.status === "awaiting_approval");
    const ids = new Set(waiting.map((run) => run.id));
    for (const [id, card] of this.cards) {
      if (!ids.has(id)) {
        card.article.remove();
        this.cards.delete(id);
      }
    }
    for (const run of waiting) {
      // The plan itself is the key: a snapshot after a reconnect keeps the card (and any
      // feedback being typed); a revised plan replaces it.
      const key = JSON.stringify(run.plan ?? null);
      const card = this.cards.get(run.id);
      if (card && card.key === key) {
        card.deadlineRun = run;
        continue;
      }
      if (card) card.article.remove();
      const fresh = this.makeCard(run, key);
      this.cards.set(run.id, fresh);
      this.list.append(fresh.article);
      if (!card) this.announce(`${runLabel(run)} submitted a plan and is waiting for approval.`);
    }
    this.section.hidden = this.cards.size === 0;
    setText(this.count, this.cards.size === 1 ? "1 plan waits for a decision" : `${this.cards.size} plans wait for a decision`);
    this.tick();
  }

  makeCard(run, key) {
    const label = runLabel(run);
    const headingId = `plan-${run.id}-title`;
    const deadline = h("span", { class: "deadline" });
    const article = h(
      "article",
      { class: "plan-card", "aria-labelledby": headingId, dataset: { runId: run.id } },
      h("header", {}, h("h3", { id: headingId, text: `Plan from ${label}` }), deadline),
      h("p", { class: "muted", text: `${run.agent_type} · attempt ${run.attempt} · ${run.id}` }),
      renderPlan(run.plan),
    );
    if (this.canOperate) article.append(this.decisionForm(run, label));
    else article.append(h("p", { class: "muted", text: "An operator of this experiment decides on this plan." }));
    return { article, deadline, key, deadlineRun: run };
  }

  decisionForm(run, label) {
    const feedbackId = `feedback-${run.id}`;
    const errorId = `feedback-${run.id}-error`;
    const feedback = h("textarea", { id: feedbackId, name: "feedback", rows: 2, maxlength: 10000, "aria-describedby": errorId });
    const error = h("p", { id: errorId, class: "field-error", role: "alert" });
    const approve = h("button", { type: "button", class: "primary", text: "Approve plan", dataset: { decision: "approve" } });
    const revise = h("button", { type: "button", text: "Request revision", dataset: { decision: "revise" } });
    const reject = h("button", { type: "button", class: "danger", text: "Reject", dataset: { decision: "reject" } });
    const buttons = [approve, revise, reject];
    const decide = async (decision) => {
      setText(error, "");
      const text = feedback.value.trim();
      if (decision === "revise" && !text) {
        setText(error, "Say what the agent should change, then request the revision.");
        feedback.focus();
        return;
      }
      for (const b of buttons) b.disabled = true;
      const ok = await this.onDecide(run.id, {
        approved: decision === "approve",
        revise: decision === "revise",
        feedback: text,
      });
      if (!ok) for (const b of buttons) b.disabled = false;
    };
    approve.addEventListener("click", () => decide("approve"));
    revise.addEventListener("click", () => decide("revise"));
    reject.addEventListener("click", () => decide("reject"));
    approve.setAttribute("aria-label", `Approve the plan of ${label}`);
    return h(
      "div",
      { class: "decide" },
      h("label", { for: feedbackId, text: "Feedback for the agent (optional; needed for a revision)" }),
      feedback,
      error,
      h("div", { class: "buttons" }, approve, revise, reject),
    );
  }

  tick() {
    const now = Date.now();
    for (const card of this.cards.values()) {
      const approval = card.deadlineRun.approval || {};
      if (!approval.deadline) {
        setText(card.deadline, "");
        continue;
      }
      const left = (Date.parse(approval.deadline) - now) / 1000;
      setText(card.deadline, left > 0 ? `Decide within ${formatDuration(left)}` : "Deadline passed");
      card.deadline.classList.toggle("urgent", left < 60);
    }
  }

  clear() {
    clear(this.list);
    this.cards.clear();
    this.section.hidden = true;
  }
}
