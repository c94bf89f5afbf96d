// Status badges: a glyph and a word as well as a colour, so no status is told by colour alone.
import { h } from "./dom.js";

const LOOK = {
  ok: { glyph: "✓", word: "ok" },
  warning: { glyph: "▲", word: "warning" },
  drift: { glyph: "✕", word: "drift" },
  critical: { glyph: "✕", word: "critical" },
  nodata: { glyph: "–", word: "no data" },
  info: { glyph: "i", word: "info" },
};
const RANK = { nodata: -1, ok: 0, info: 0, warning: 1, drift: 2, critical: 2 };

export function rank(status) {
  return RANK[status] ?? -1;
}

export function worst(statuses) {
  return statuses.reduce((a, b) => (rank(b) > rank(a) ? b : a), "nodata");
}

// <span class="badge status-drift"><span aria-hidden>✕</span> drift</span>, `label` replacing the word.
export function badge(status, label = null, title = null) {
  const look = LOOK[status] || LOOK.nodata;
  return h(
    "span",
    { class: `badge status-${LOOK[status] ? status : "nodata"}`, title: title || undefined, dataset: { status } },
    h("span", { class: "glyph", "aria-hidden": "true" }, look.glyph),
    " ",
    label ?? look.word,
  );
}

// Severity of an alert rule ("critical", "warning", "info", or anything else) as a badge status.
export function severityStatus(severity) {
  if (severity === "critical" || severity === "error" || severity === "page") return "critical";
  if (severity === "warning") return "warning";
  return "info";
}

// Metrics where lower is better; a drop of the others (or a rise of these) is a degradation.
const LOWER_IS_BETTER = new Set(["log_loss", "brier", "rmse", "mae", "mape"]);

export function primaryMetric(metrics) {
  if (!metrics) return null;
  for (const key of ["auc_roc", "accuracy", "rmse", "mae", "r2"]) {
    if (typeof metrics[key] === "number") return key;
  }
  return null;
}

// Performance status against the reference: worse by more than 5 % (relative) is a warning, 10 % critical.
export function performanceStatus(metrics, reference) {
  const key = primaryMetric(metrics);
  if (!key) return "nodata";
  const ref = reference && typeof reference[key] === "number" ? reference[key] : null;
  if (ref === null || ref === 0) return "ok";
  const change = (metrics[key] - ref) / Math.abs(ref);
  const worse = LOWER_IS_BETTER.has(key) ? change : -change;
  if (worse > 0.1) return "critical";
  return worse > 0.05 ? "warning" : "ok";
}

export function lowerIsBetter(key) {
  return LOWER_IS_BETTER.has(key);
}

// Operations status: error rate above 5 % is critical, above 1 % a warning; no calls is "no data".
export function operationsStatus(ops) {
  if (!ops || (!ops.calls && !ops.predictions)) return "nodata";
  const errorRate = typeof ops.error_rate === "number" ? ops.error_rate : 0;
  if (errorRate > 0.05) return "critical";
  return errorRate > 0.01 ? "warning" : "ok";
}
