// The owner API client: one `request` for every call (auth header or CSRF token, JSON, readable
// errors) and `live` for the long-polling loop every page uses to stay current.

export class ApiError extends Error {
  constructor(status, error) {
    super((error && error.message) || `HTTP ${status}`);
    this.status = status;
    this.code = (error && error.code) || (status ? `HTTP_${status}` : "NETWORK");
    this.field = (error && error.field) || null;
    this.details = error || {};
  }
}

const state = {
  base: "/v1/owner",
  mode: "embedded",
  csrf: null,
  tokenSource: null, // async () => idToken, in firebase mode
  onSignedOut: () => {},
};

export function configure({ base, mode, tokenSource, onSignedOut }) {
  if (base) state.base = base;
  if (mode) state.mode = mode;
  if (tokenSource !== undefined) state.tokenSource = tokenSource;
  if (onSignedOut) state.onSignedOut = onSignedOut;
}

export function setCsrf(token) { state.csrf = token || null; }

export function apiBase() { return state.base; }

/** Append query parameters to a path that may already have some. */
export function withQuery(path, params) {
  const parts = Object.entries(params)
    .filter(([, v]) => v !== undefined && v !== null && v !== "")
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
  if (!parts.length) return path;
  return path + (path.includes("?") ? "&" : "?") + parts.join("&");
}

export async function request(method, path, body, { signal, quiet401 = false } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && method !== "HEAD" && state.csrf) headers["X-CSRF-Token"] = state.csrf;
  if (state.tokenSource) {
    const token = await state.tokenSource();
    if (token) headers.Authorization = `Bearer ${token}`;
  }
  let response;
  try {
    response = await fetch(state.base + path, {
      method, headers, signal, credentials: "same-origin", cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    if (err && err.name === "AbortError") throw err;
    throw new ApiError(0, { code: "NETWORK", message: "Cannot reach the CacheBash server (offline?)" });
  }
  let data = null;
  try { data = await response.json(); } catch (_) { data = null; }
  if (!response.ok || !data || data.success === false) {
    const err = new ApiError(response.status, data && data.error ? data.error
      : { message: `The server answered ${response.status} ${response.statusText || ""}`.trim() });
    if (response.status === 401 && !quiet401) state.onSignedOut(err);
    throw err;
  }
  return data;
}

export const get = (path, opts) => request("GET", path, undefined, opts);
export const post = (path, body = {}, opts) => request("POST", path, body, opts);
export const del = (path, opts) => request("DELETE", path, undefined, opts);

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    if (signal) signal.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

export const WAIT_SECONDS = 25;
const FIRST_WAIT_DELAY_MS = 1000;

/**
 * Keep a view current by long polling: GET path → onData(body) → GET path?wait=25&version=v → …
 * onData runs only when the version changed; onTick after every answer (to refresh relative
 * times). Network errors retry with backoff (onError shows them, onData clears them). Stops for
 * good when `signal` aborts or on 401. `refresh()` cuts a pending wait short and asks again now.
 */
export function live(path, { signal, onData, onError, onTick }) {
  let version = null;
  let inner = null;
  let stopped = false;
  const stop = () => { stopped = true; if (inner) inner.abort(); };
  signal.addEventListener("abort", stop, { once: true });

  let nap = null; // the pause before the first wait, cut short by refresh()
  (async () => {
    let backoff = 1000;
    let first = true;
    while (!stopped) {
      inner = new AbortController();
      const url = version ? withQuery(path, { wait: WAIT_SECONDS, version }) : path;
      try {
        const body = await get(url, { signal: inner.signal });
        backoff = 1000;
        if (stopped) return;
        if (body.version !== version || version === null) {
          version = body.version;
          onData(body);
        }
        if (onTick) onTick(body);
        if (first) {
          // A short quiet moment after the first answer before the long wait starts, so the page
          // settles (e.g. a test's "network idle") instead of always holding a request open.
          first = false;
          const pause = new AbortController();
          nap = pause;
          signal.addEventListener("abort", () => pause.abort(), { once: true });
          await sleep(FIRST_WAIT_DELAY_MS, pause.signal);
          nap = null;
        }
      } catch (err) {
        if (stopped) return;
        if (err && err.name === "AbortError") continue; // refresh(): ask again at once
        if (err instanceof ApiError && err.status === 401) return; // the app shows the sign-in screen
        if (onError) onError(err);
        // A 4xx other than 401 is an answer, not an outage: wait longer before asking again.
        const pause = err instanceof ApiError && err.status >= 400 && err.status < 500 ? Math.max(backoff, 10000) : backoff;
        await sleep(pause + Math.random() * 300, signal);
        backoff = Math.min(backoff * 2, 30000);
      }
    }
  })();

  return {
    refresh() {
      version = null;
      if (nap) nap.abort();
      else if (inner) inner.abort();
    },
  };
}
