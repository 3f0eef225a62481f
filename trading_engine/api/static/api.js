// The REST API under /api/v1/trading: one call, and its one error shape.

export const API = "/api/v1/trading";

const KEY_STORAGE = "trading-engine.api-key";

let key = localStorage.getItem(KEY_STORAGE) || "";

export function apiKey() {
  return key;
}

// Kept in localStorage (the page's CSP loads nothing from elsewhere); "" forgets it.
export function setApiKey(value) {
  key = value;
  if (value) localStorage.setItem(KEY_STORAGE, value);
  else localStorage.removeItem(KEY_STORAGE);
}

// The server's {"error": {"code", "message", "field"}}, or a network failure (status 0).
export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }

  describe() {
    // Most messages already start with the field they name.
    if (!this.field || this.message.startsWith(this.field)) return this.message;
    return `${this.field}: ${this.message}`;
  }
}

export function describe(exc) {
  return exc instanceof ApiError ? exc.describe() : String(exc.message || exc);
}

// A REST call; resolves to the JSON body, or throws ApiError.
export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (key) headers["X-API-Key"] = key;
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(API + path, init);
  } catch (exc) {
    throw new ApiError(0, "network_error", `the server did not answer (${exc.message})`, null);
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = (data && data.error) || {};
    throw new ApiError(
      response.status,
      error.code || `http_${response.status}`,
      error.message || `HTTP ${response.status} ${response.statusText}`,
      error.field || null,
    );
  }
  return data;
}

// A query string from the entries whose value is set.
export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") search.set(name, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}
