// Small shared widgets: toasts, a confirm dialog, the one-time token dialog, the
// connection indicator.

import { h, setAttr, setText } from "./dom.js";

export function toast(message, { error = false, timeout = 5000 } = {}) {
  const box = document.getElementById(error ? "alerts" : "toasts");
  if (!box) return;
  const item = h("div", { class: `toast${error ? " error" : ""}`, text: message });
  box.append(item);
  setTimeout(() => item.remove(), error ? timeout * 2 : timeout);
}

/** Ask before something that cannot be undone; resolves true or false. */
export function confirmAction({ title, body, confirmLabel, danger = true }) {
  return new Promise((resolve) => {
    const yes = h("button", { type: "submit", value: "yes", class: danger ? "danger solid" : "primary", text: confirmLabel });
    const no = h("button", { type: "submit", value: "no", text: "Cancel" });
    const dialog = h(
      "dialog",
      { "aria-labelledby": "confirm-title" },
      h("form", { method: "dialog" }, h("h2", { id: "confirm-title", text: title }), h("p", { text: body }), h("div", { class: "buttons" }, no, yes)),
    );
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "yes");
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
    no.focus();
  });
}

/** Run tokens are shown once by the API: show them with a way to copy. */
export function showTokens({ title, intro, runs, link }) {
  const items = runs.map((run) => {
    const code = h("code", { text: run.token });
    const copy = h("button", {
      type: "button",
      class: "small",
      text: "Copy",
      "aria-label": `Copy the token of ${run.name || run.id}`,
      on: {
        click: async () => {
          try {
            await navigator.clipboard.writeText(run.token);
            copy.textContent = "Copied";
          } catch {
            const range = document.createRange();
            range.selectNodeContents(code);
            getSelection().removeAllRanges();
            getSelection().addRange(range);
            copy.textContent = "Selected: press Ctrl+C";
          }
        },
      },
    });
    return h("li", {}, h("span", {}, h("strong", { text: run.name || run.agent_type }), ` · ${run.id}`), code, h("span", {}, copy));
  });
  const done = h("button", { type: "submit", class: "primary", text: link ? "Open the experiment" : "Done" });
  const dialog = h(
    "dialog",
    { "aria-labelledby": "tokens-title", class: "token-dialog" },
    h(
      "form",
      { method: "dialog" },
      h("h2", { id: "tokens-title", text: title }),
      h("p", { text: intro }),
      h("ul", { class: "tokens" }, items),
      h("div", { class: "buttons" }, done),
    ),
  );
  dialog.addEventListener("close", () => {
    dialog.remove();
    if (link) location.assign(link);
  });
  document.body.append(dialog);
  dialog.showModal();
  done.focus();
}

const CONNECTION_TEXT = {
  idle: "Not connected",
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  offline: "Offline",
  gone: "Disconnected",
};

/**
 * The connection indicator: a dot and a word (announced politely), a countdown that is
 * not announced, and data-state for tests and styles.
 */
export function connectionIndicator(el) {
  const text = el.querySelector(".conn-text");
  const retry = el.querySelector(".conn-retry");
  let countdown = 0;
  return (state, detail = {}) => {
    clearInterval(countdown);
    setAttr(el, "data-state", state);
    setText(text, CONNECTION_TEXT[state] || state);
    setText(retry, "");
    if (state === "reconnecting" && detail.retryAt) {
      const paint = () => {
        const seconds = Math.max(0, Math.ceil((detail.retryAt - Date.now()) / 1000));
        setText(retry, seconds > 0 ? `in ${seconds} s` : "");
      };
      paint();
      countdown = setInterval(paint, 1000);
    }
  };
}
