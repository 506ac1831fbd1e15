// The REST API through fetch(): session cookie, X-CSRFToken, the contract's error envelope.

const API_ROOT = "/api/research/";

export class ApiError extends Error {
  constructor(status, body) {
    const detail = (body && (body.detail || body.error)) || `HTTP ${status}`;
    super(detail);
    this.status = status;
    this.code = (body && body.error) || "http_error";
    this.detail = detail;
    this.fields = (body && body.fields) || null;
  }
}

export function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  if (match) return decodeURIComponent(match[1]);
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

export function goToLogin() {
  const next = encodeURIComponent(location.pathname + location.search);
  location.assign(`/accounts/login/?next=${next}`);
}

/**
 * Call the API. ``body`` is sent as JSON, ``form`` as multipart. Answers the parsed JSON
 * (null for 204), or the Response itself with ``raw``. Throws ApiError on 4xx/5xx; a 401
 * (session expired) goes to the login page.
 */
export async function api(path, { method = "GET", body, form, query, raw = false, signal } = {}) {
  const url = new URL(API_ROOT + path, location.origin);
  for (const [key, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, value);
  }
  const headers = { Accept: "application/json" };
  const init = { method, headers, credentials: "same-origin", signal };
  if (method !== "GET" && method !== "HEAD") headers["X-CSRFToken"] = csrfToken();
  if (form) {
    init.body = form;
  } else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (raw) headers.Accept = "*/*";
  const response = await fetch(url, init);
  if (response.status === 401) {
    goToLogin();
    throw new ApiError(401, { error: "not_authenticated", detail: "Your session has ended." });
  }
  if (!response.ok) {
    let payload = null;
    try {
      payload = await response.json();
    } catch {
      payload = null;
    }
    if (response.status === 429) {
      const wait = response.headers.get("Retry-After");
      payload = { ...(payload || {}), detail: `Too many requests; try again in ${wait || "a few"} s.` };
    }
    throw new ApiError(response.status, payload);
  }
  if (raw) return response;
  if (response.status === 204) return null;
  return response.json();
}

/** Every page of a paginated list, following ``next`` (same origin only). */
export async function apiPages(path, query, { limit = 10 } = {}) {
  const results = [];
  let page = await api(path, { query });
  results.push(...page.results);
  for (let i = 1; page.next && i < limit; i += 1) {
    const next = new URL(page.next, location.origin);
    page = await api(next.pathname.slice(API_ROOT.length), { query: Object.fromEntries(next.searchParams) });
    results.push(...page.results);
  }
  return results;
}

/** One line for a person: the detail plus each field's first message. */
export function describeError(err) {
  if (!(err instanceof ApiError)) return err && err.message ? err.message : "Something went wrong.";
  const parts = [err.detail];
  for (const [field, messages] of Object.entries(err.fields || {})) {
    const text = Array.isArray(messages) ? messages[0] : typeof messages === "object" ? JSON.stringify(messages) : messages;
    parts.push(`${field}: ${text}`);
  }
  return parts.join(" · ");
}

/** Save a Response body as a download (exports are POSTs, so no plain link works). */
export async function saveDownload(response, fallbackName) {
  const disposition = response.headers.get("Content-Disposition") || "";
  const match = disposition.match(/filename="?([^";]+)"?/);
  const blob = await response.blob();
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = match ? match[1] : fallbackName;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}
