// The experiments page's forms: create an experiment, import a spec file.
// Both answer with the new runs' one-time tokens, shown in a dialog.

import { ApiError, api, describeError } from "./api.js";
import { $, clear, h, setText } from "./dom.js";
import { showTokens } from "./ui.js";

let agentCounter = 0;

function agentRow(container, { agentType = "claude_code", name = "" } = {}) {
  agentCounter += 1;
  const n = agentCounter;
  const type = h("input", { type: "text", id: `agent-type-${n}`, name: "agent_type", value: agentType, required: true, maxlength: 64 });
  const label = h("input", { type: "text", id: `agent-name-${n}`, name: "agent_name", value: name, maxlength: 200 });
  const remove = h("button", { type: "button", class: "small", text: "Remove", "aria-label": `Remove agent ${n}` });
  const row = h(
    "div",
    { class: "agent-row" },
    h("div", { class: "field" }, h("label", { for: type.id, text: `Agent ${n} type` }), type),
    h("div", { class: "field" }, h("label", { for: label.id, text: `Agent ${n} name (optional)` }), label),
    remove,
  );
  remove.addEventListener("click", () => {
    row.remove();
    const first = container.querySelector("input");
    if (first) first.focus();
  });
  container.append(row);
  return type;
}

function showErrors(form, errorBox, err) {
  for (const el of form.querySelectorAll("[data-error-for]")) setText(el, "");
  errorBox.hidden = false;
  if (err instanceof ApiError && err.fields) {
    setText(errorBox, err.detail || "Please correct the highlighted fields.");
    for (const [field, messages] of Object.entries(err.fields)) {
      const slot = form.querySelector(`[data-error-for="${field}"]`);
      const text = Array.isArray(messages)
        ? messages.map((m) => (typeof m === "string" ? m : JSON.stringify(m))).join(" ")
        : JSON.stringify(messages);
      if (slot) setText(slot, text);
      else setText(errorBox, `${errorBox.textContent} ${field}: ${text}`);
    }
  } else {
    setText(errorBox, describeError(err));
  }
}

function created(body) {
  showTokens({
    title: `Created “${body.name}”`,
    intro: "Each run's token is shown only this once: hand it to its agent (Authorization: Bearer <token>). An operator can issue a new one later.",
    runs: body.runs || [],
    link: `/experiments/${encodeURIComponent(body.id)}/`,
  });
}

export function setUpCreateForm() {
  const form = $("#create-form");
  const rows = $("#agent-rows");
  const errorBox = $("#create-error");
  agentRow(rows);
  $("#add-agent").addEventListener("click", () => agentRow(rows, { agentType: "" }).focus());
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errorBox.hidden = true;
    const name = $("#create-name").value.trim();
    if (!name) {
      showErrors(form, errorBox, new ApiError(400, { detail: "Give the experiment a name.", fields: { name: ["This field is required."] } }));
      $("#create-name").focus();
      return;
    }
    const body = { name, description: $("#create-description").value, agents: [] };
    for (const row of rows.querySelectorAll(".agent-row")) {
      const [type, label] = row.querySelectorAll("input");
      if (type.value.trim()) body.agents.push({ agent_type: type.value.trim(), name: label.value.trim() });
    }
    const rawConfig = $("#create-config").value.trim();
    if (rawConfig) {
      try {
        body.config = JSON.parse(rawConfig);
      } catch {
        showErrors(form, errorBox, new ApiError(400, { detail: "The config is not valid JSON.", fields: { config: ["Write a JSON object, e.g. {\"seed\": 1}."] } }));
        $("#create-config").focus();
        return;
      }
    }
    const submit = form.querySelector('button[type="submit"]');
    submit.disabled = true;
    try {
      created(await api("experiments", { method: "POST", body }));
      form.reset();
      clear(rows);
      agentRow(rows);
    } catch (err) {
      showErrors(form, errorBox, err);
    } finally {
      submit.disabled = false;
    }
  });
}

export function setUpImportForm() {
  const form = $("#import-form");
  const errorBox = $("#import-error");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errorBox.hidden = true;
    const file = $("#import-file").files[0];
    if (!file) {
      showErrors(form, errorBox, new Error("Choose a JSON or YAML spec file first."));
      return;
    }
    const data = new FormData();
    data.append("file", file, file.name);
    const submit = form.querySelector('button[type="submit"]');
    submit.disabled = true;
    try {
      created(await api("experiments/import", { method: "POST", form: data }));
      form.reset();
    } catch (err) {
      showErrors(form, errorBox, err);
    } finally {
      submit.disabled = false;
    }
  });
}
