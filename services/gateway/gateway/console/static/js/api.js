// The public API, with the same Bearer token any client uses (kept in sessionStorage, never a cookie).
const TOKEN_KEY = "qunzhu.console.token";

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

export const session = {
  get token() { return sessionStorage.getItem(TOKEN_KEY) || ""; },
  set token(value) {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  },
  // What the token says about its holder, for display and for picking communities only: the API checks it.
  get claims() {
    const part = this.token.split(".")[1];
    if (!part) return null;
    try {
      const json = atob(part.replace(/-/g, "+").replace(/_/g, "/"));
      return JSON.parse(decodeURIComponent(Array.from(json, (c) => "%" + c.charCodeAt(0).toString(16).padStart(2, "0")).join("")));
    } catch {
      return null;
    }
  },
};

export async function api(method, path, { query, body, auth = true } = {}) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(query || {})) if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, v);
  const headers = { Accept: "application/json" };
  if (auth && session.token) headers.Authorization = `Bearer ${session.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  for (let attempt = 0; ; attempt += 1) {
    response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body),
                                  credentials: "omit", cache: "no-store" });
    // The gateway's per-client rate limit: wait as it says and try again (twice at most).
    if (response.status !== 429 || attempt >= 2) break;
    const wait = Math.min(5, Number(response.headers.get("Retry-After")) || 1);
    await new Promise((resolve) => setTimeout(resolve, wait * 1000));
  }
  if (response.status === 204 || response.status === 202) return null;
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { detail: text }; }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export const get = (path, query) => api("GET", path, { query });

// Every page of a list route (`offset`/`limit`, `{data, count}` answers), up to `max` rows.
export async function getAll(path, query = {}, { limit = 200, max = 5000, key = "data" } = {}) {
  const rows = [];
  for (;;) {
    const page = await get(path, { ...query, limit, offset: rows.length });
    const batch = Array.isArray(page) ? page : page[key] || [];
    rows.push(...batch);
    if (batch.length < limit || rows.length >= max) return rows;
  }
}

// A read that may legitimately be absent (404) or not applicable (422): null instead of an error.
export async function maybe(promise) {
  try {
    return await promise;
  } catch (err) {
    if (err instanceof ApiError && (err.status === 404 || err.status === 422)) return null;
    throw err;
  }
}
