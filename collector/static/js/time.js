// Time ranges and the bucket width of charts.
export const RANGES = { "1h": 3600, "6h": 21600, "24h": 86400, "7d": 604800 };
export const DEFAULT_RANGE = "24h";
const STEPS = [60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800];

// {start, end, span (s), label, custom}: `range` relative to now, or custom from/to.
export function resolveRange(params, now = Date.now()) {
  const name = params.get("range") || DEFAULT_RANGE;
  if (name === "custom") {
    const from = Date.parse(params.get("from") || "");
    const to = params.get("to") ? Date.parse(params.get("to")) : now;
    if (Number.isFinite(from) && Number.isFinite(to) && from < to) {
      return { start: new Date(from), end: new Date(to), span: (to - from) / 1000, name, custom: true };
    }
  }
  const span = RANGES[name] ?? RANGES[DEFAULT_RANGE];
  return { start: new Date(now - span * 1000), end: new Date(now), span, name: RANGES[name] ? name : DEFAULT_RANGE };
}

export function rangeQuery(range) {
  return { start: range.start.toISOString(), end: range.end.toISOString() };
}

// The smallest round step, a multiple of the collector's window, that gives at most `points` buckets.
export function chooseStep(span, windowS, points) {
  const fits = STEPS.filter((s) => s >= windowS && s % windowS === 0);
  const candidates = fits.length ? fits : [windowS];
  return candidates.find((s) => span / s <= points) ?? Math.ceil(span / points / windowS) * windowS;
}

// `count` equal [start, end) slices of the range, each at least one window wide.
export function slices(range, windowS, count) {
  const step = Math.max(windowS, chooseStep(range.span, windowS, count));
  const end = range.end.getTime() / 1000;
  const out = [];
  for (let t = Math.floor(range.start.getTime() / 1000 / step) * step; t < end; t += step) {
    out.push({ start: new Date(t * 1000), end: new Date(Math.min(t + step, end) * 1000) });
  }
  return out.slice(-count);
}
