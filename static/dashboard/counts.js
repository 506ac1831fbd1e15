// "3 running · 1 awaiting approval · 2 completed": runs by status as words with icons.

import { clear, h } from "./dom.js";
import { RUN_STATUS_ORDER, statusInfo } from "./format.js";

export function renderCounts(el, byStatus, total) {
  const key = JSON.stringify(byStatus) + total;
  if (el.dataset.key === key) return;
  el.dataset.key = key;
  clear(el);
  const parts = RUN_STATUS_ORDER.filter((s) => byStatus[s]).map((status) => {
    const info = statusInfo(status);
    return h(
      "span",
      { class: `count${status === "awaiting_approval" ? " attention" : ""}`, dataset: { status } },
      h("span", { "aria-hidden": "true", text: `${info.icon} ` }),
      `${byStatus[status]} ${info.label.toLowerCase()}`,
    );
  });
  if (!parts.length) parts.push(h("span", { class: "muted", text: total ? `${total} agents` : "No agents" }));
  el.append(...parts);
}
