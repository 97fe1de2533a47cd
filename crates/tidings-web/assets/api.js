// The HTTP API (/api/v1, docs/web-api.md): JSON in and out, the session cookie sent by the browser,
// the CSRF token on every request that changes something.

let csrfToken = null;
let onUnauthenticated = () => {};

/** An error answer: `status`, `code` (e.g. "invalid_code"), `message`, `retryAfter` (seconds). */
export class ApiError extends Error {
  constructor(status, code, message, retryAfter) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

export function setCsrf(token) { csrfToken = token || null; }
export function setUnauthenticatedHandler(f) { onUnauthenticated = f; }

/** Percent-encodes a folder name as one path segment. */
export function seg(name) { return encodeURIComponent(name); }

/**
 * Calls the API: `api("GET", "/mail/folders")`, `api("POST", "/session", {…})`.
 * Answers the parsed JSON (null for 204); throws ApiError for any error status or network failure.
 */
export async function api(method, path, body, { quiet401 = false } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && method !== "HEAD" && csrfToken) headers["X-CSRF-Token"] = csrfToken;
  let response;
  try {
    response = await fetch(`/api/v1${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch (e) {
    throw new ApiError(0, "network", "The server could not be reached. Check the connection and try again.");
  }
  if (response.status === 204) return null;
  let data = null;
  const type = response.headers.get("Content-Type") || "";
  if (type.includes("json")) {
    try { data = await response.json(); } catch (e) { data = null; }
  }
  if (!response.ok) {
    const err = (data && data.error) || {};
    const retry = Number(response.headers.get("Retry-After")) || undefined;
    const error = new ApiError(response.status, err.code || `http_${response.status}`, err.message || response.statusText, retry);
    if (response.status === 401 && !quiet401) onUnauthenticated();
    throw error;
  }
  return data;
}

/** A message for people from an error, with the wait when rate-limited. */
export function explain(error) {
  if (!(error instanceof ApiError)) return String(error && error.message ? error.message : error);
  if (error.status === 429) {
    return error.retryAfter ? `Too many attempts. Try again in ${error.retryAfter} seconds.` : "Too many attempts. Try again later.";
  }
  return error.message;
}
