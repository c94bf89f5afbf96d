// The address is the state: every view is a hash route, so links can be shared and bookmarked.
//   #/                                   overview
//   #/model/<model>?v=3                  one model version
//   #/feature/<model>/<feature>?v=3&role=input
//   #/compare/<model>?a=3&b=4            champion vs challenger
// Every route also takes range=1h|6h|24h|7d|custom (custom: from=&to=, RFC 3339) and refresh=<seconds>|0.
const PAGES = new Set(["overview", "model", "feature", "compare"]);

export function parse(hash) {
  const raw = hash.replace(/^#/, "");
  const [path, query = ""] = raw.split("?", 2);
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const params = new URLSearchParams(query);
  const page = PAGES.has(parts[0]) ? parts[0] : "overview";
  return { page, model: parts[1] ?? null, feature: parts[2] ?? null, params };
}

// A link to `page` (path parts encoded) that keeps the time range and refresh of `keep`, plus `extra` params.
export function href(page, parts = [], extra = {}, keep = null) {
  const params = new URLSearchParams();
  if (keep) {
    for (const name of ["range", "from", "to", "refresh"]) if (keep.has(name)) params.set(name, keep.get(name));
  }
  for (const [name, value] of Object.entries(extra)) {
    if (value !== undefined && value !== null && value !== "") params.set(name, value);
  }
  const path = page === "overview" ? "/" : `/${[page, ...parts].map(encodeURIComponent).join("/")}`;
  const query = params.toString();
  return `#${path}${query ? `?${query}` : ""}`;
}

// The current route with some params changed (null removes one).
export function withParams(route, changes) {
  const params = new URLSearchParams(route.params);
  for (const [name, value] of Object.entries(changes)) {
    if (value === null || value === undefined || value === "") params.delete(name);
    else params.set(name, String(value));
  }
  const parts = route.page === "feature" ? [route.model, route.feature] : route.model ? [route.model] : [];
  const path = route.page === "overview" ? "/" : `/${[route.page, ...parts].map(encodeURIComponent).join("/")}`;
  const query = params.toString();
  return `#${path}${query ? `?${query}` : ""}`;
}
