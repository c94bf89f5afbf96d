// The JSON API client: bearer token, and errors sorted into what the page can say about them.
const TOKEN_KEY = "predwatch.token";

export function getToken() {
  try {
    return localStorage.getItem(TOKEN_KEY) || "";
  } catch {
    return "";
  }
}

export function setToken(value) {
  try {
    if (value) localStorage.setItem(TOKEN_KEY, value);
    else localStorage.removeItem(TOKEN_KEY);
  } catch {
    // storage disabled (private mode): the token lives until the page is closed
  }
  memoryToken = value || "";
}

let memoryToken = "";

// A `#token=...` (or `&token=` in the route's query) hands the page a token: keep it, drop it from the address.
export function takeTokenFromAddress() {
  const hash = location.hash;
  const match = hash.match(/[#?&]token=([^&]*)/);
  if (!match) return false;
  setToken(decodeURIComponent(match[1]));
  const cleaned = hash.replace(/([#?&])token=[^&]*&?/, "$1").replace(/[?&]$/, "");
  history.replaceState(null, "", `${location.pathname}${location.search}${cleaned === "#" ? "#/" : cleaned}`);
  return true;
}

// kind: "auth" (401/403), "absent" (this collector has no such endpoint), "no-reference" (409),
// "not-found" (unknown model or version), "bad" (4xx), "server" (5xx), "network" (no answer).
export class ApiError extends Error {
  constructor(kind, status, message, body = null) {
    super(message);
    this.kind = kind;
    this.status = status;
    this.body = body;
  }
}

export async function api(path, params = {}, signal = undefined) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") query.set(name, String(value));
  }
  const url = `/api/v1${path}${query.toString() ? `?${query}` : ""}`;
  const headers = { Accept: "application/json" };
  const token = getToken() || memoryToken;
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(url, { headers, signal, cache: "no-store", credentials: "omit" });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError("network", 0, "the collector did not answer");
  }
  const isJson = (response.headers.get("content-type") || "").includes("json");
  const body = isJson ? await response.json().catch(() => null) : null;
  if (response.ok) return body;
  const message = (body && body.error) || `${response.status} ${response.statusText}`;
  if (response.status === 401 || response.status === 403) throw new ApiError("auth", response.status, message, body);
  if ((response.status === 404 || response.status === 405) && !isJson) {
    throw new ApiError("absent", response.status, `this collector does not serve ${path.split("/").pop()}`);
  }
  if (response.status === 404) throw new ApiError("not-found", 404, message, body);
  if (response.status === 409) throw new ApiError("no-reference", 409, message, body);
  throw new ApiError(response.status >= 500 ? "server" : "bad", response.status, message, body);
}

// The answer, or null for the errors a section shows as an empty state; auth and aborts still throw.
export async function optional(path, params, signal) {
  try {
    return { data: await api(path, params, signal), error: null };
  } catch (error) {
    if (error.name === "AbortError" || error.kind === "auth") throw error;
    return { data: null, error };
  }
}

export function modelPath(model, tail = "") {
  return `/models/${encodeURIComponent(model)}${tail}`;
}

// Run `work(item)` over items, at most `limit` at a time (a browser opens about six connections per host).
export async function pool(items, limit, work) {
  const results = new Array(items.length);
  let next = 0;
  const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i], i);
    }
  });
  await Promise.all(runners);
  return results;
}
