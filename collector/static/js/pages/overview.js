// Overview: every model version with its drift, performance and operations status, alerts, traffic.
import { api, modelPath, optional, pool } from "../api.js";
import { h } from "../dom.js";
import { ago, compact, datetime, int, ms, num, pct } from "../format.js";
import { href } from "../route.js";
import { badge, operationsStatus, performanceStatus, primaryMetric, rank, severityStatus, worst } from "../status.js";
import { chooseStep, rangeQuery } from "../time.js";
import { sparkline } from "../charts/spark.js";
import { referenceMetrics } from "./model_perf.js";
import { card, code, empty, table, tile, tiles } from "../ui.js";

const METRIC_NAMES = { auc_roc: "AUC", accuracy: "accuracy", rmse: "RMSE", mae: "MAE", r2: "R²" };

export async function overview({ route, config, range, signal }) {
  const models = await api("/models", {}, signal);
  if (!models.length) {
    return h("div", { class: "page" }, h("h1", {}, "Models"), noModels());
  }
  const alertsAnswer = await optional("/alerts", {}, signal);
  const alerts = alertsAnswer.data ? alertsAnswer.data.alerts || [] : [];
  const active = alerts.filter((a) => a.state === "firing" || a.state === "pending");
  const step = chooseStep(range.span, config.window_s, 48);
  const versions = [...models].sort(
    (a, b) => a.model.localeCompare(b.model) || Date.parse(b.first_seen) - Date.parse(a.first_seen),
  );
  const rows = await pool(versions, 4, (m) => loadRow(m, range, step, signal));
  const counts = { drift: 0, warning: 0 };
  for (const row of rows) if (row.drift?.status in counts) counts[row.drift.status] += 1;
  const inRange = rows.reduce((sum, row) => sum + (row.rowsInRange || 0), 0);

  const perModel = new Map();
  for (const m of versions) perModel.set(m.model, (perModel.get(m.model) || 0) + 1);
  const firstOfModel = new Set();
  const columns = [
    {
      label: "Model",
      cell: (row) => {
        const first = !firstOfModel.has(row.info.model);
        firstOfModel.add(row.info.model);
        const compare =
          first && perModel.get(row.info.model) > 1
            ? h(
                "a",
                { class: "subtle-link", href: href("compare", [row.info.model], {}, route.params) },
                "compare versions",
              )
            : null;
        return h(
          "div",
          {},
          h(
            "a",
            { class: "model-link", href: href("model", [row.info.model], { v: row.info.version }, route.params) },
            row.info.model,
          ),
          compare ? h("div", {}, compare) : null,
        );
      },
    },
    { label: "Version", cell: (row) => h("span", { class: "version" }, row.info.version) },
    { label: "Drift", cell: driftCell },
    { label: "Performance", cell: performanceCell },
    { label: "Operations", cell: operationsCell },
    { label: "Alerts", cell: (row) => alertCell(active, row.info) },
    {
      label: "Rows",
      cls: "num",
      cell: (row) =>
        h(
          "div",
          {},
          h(
            "div",
            { title: `${int(row.info.rows)} rows since ${datetime(row.info.first_seen)}` },
            compact(row.info.rows),
          ),
          h("div", { class: "muted small" }, `${compact(row.rowsInRange)} in range`),
        ),
    },
    { label: "Last seen", cell: (row) => h("span", { title: datetime(row.info.last_seen) }, ago(row.info.last_seen)) },
    {
      label: "Traffic",
      cell: (row) => sparkline(row.traffic, { name: "spark-rows", title: `rows per ${step / 60} min` }),
    },
    {
      label: "Drift trend",
      cell: (row) =>
        row.worstFeature
          ? h(
              "div",
              { class: "spark-cell" },
              sparkline(row.psiTrend, {
                name: "spark-psi",
                title: `PSI of ${row.worstFeature}`,
                status: row.drift.status,
              }),
              h("span", { class: "muted small" }, row.worstFeature),
            )
          : h("span", { class: "muted small" }, "–"),
    },
  ];
  return h(
    "div",
    { class: "page" },
    h("h1", {}, "Models"),
    tiles([
      tile("Model versions", int(models.length), { name: "versions" }),
      tile("Drifting", int(counts.drift), { name: "drifting", status: counts.drift ? "drift" : "ok" }),
      tile("Warnings", int(counts.warning), { name: "warnings", status: counts.warning ? "warning" : "ok" }),
      tile("Active alerts", alertsAnswer.error ? "–" : int(active.length), {
        name: "alerts",
        status: active.length ? "critical" : alertsAnswer.error ? null : "ok",
        sub: alertsAnswer.error ? "alerting not reported" : null,
      }),
      tile("Rows in range", compact(inRange), { name: "rows" }),
    ]),
    active.length ? card("Active alerts", alertList(active, route), { name: "active-alerts" }) : null,
    card(
      "Every model version",
      table(columns, rows, {
        name: "models",
        rowData: (row) => ({ model: row.info.model, version: row.info.version, drift: row.drift?.status ?? "nodata" }),
      }),
      { name: "models", wide: true, note: "status over the selected range; click a model for details" },
    ),
  );
}

async function loadRow(info, range, step, signal) {
  const version = { version: info.version };
  const span = rangeQuery(range);
  const [drift, traffic, perf, ops] = await Promise.all([
    optional(modelPath(info.model, "/drift"), { ...version, ...span }, signal),
    optional(modelPath(info.model, "/timeseries"), { metric: "rows", ...version, ...span, step }, signal),
    optional(modelPath(info.model, "/performance"), { ...version, ...span }, signal),
    optional(modelPath(info.model, "/operations"), { ...version, ...span }, signal),
  ]);
  const row = {
    info,
    drift: drift.data,
    driftError: drift.error,
    perf: perf.data,
    perfError: perf.error,
    ops: ops.data,
    opsError: ops.error,
  };
  row.traffic = series(traffic.data, range, step, (p) => p.value);
  row.rowsInRange = traffic.data ? traffic.data.points.reduce((a, p) => a + (p.value || 0), 0) : 0;
  const worstFeature = drift.data ? mostDrifted(drift.data.features) : null;
  if (worstFeature) {
    const psi = await optional(
      modelPath(info.model, "/timeseries"),
      { metric: "psi", feature: worstFeature.name, role: worstFeature.role, ...version, ...span, step },
      signal,
    );
    row.worstFeature = worstFeature.name;
    row.psiTrend = series(psi.data, range, step, (p) => p.value);
  }
  return row;
}

// Values per bucket over the whole range (null where a bucket holds no data), for sparklines.
function series(answer, range, step, value) {
  if (!answer) return [];
  const first = Math.floor(range.start.getTime() / 1000 / step) * step;
  const count = Math.ceil((range.end.getTime() / 1000 - first) / step);
  const out = new Array(count).fill(null);
  for (const point of answer.points) {
    const i = Math.floor((Date.parse(point.start) / 1000 - first) / step);
    if (i >= 0 && i < count) out[i] = value(point);
  }
  return out;
}

export function mostDrifted(features) {
  const measured = features.filter((f) => typeof f.psi === "number");
  if (!measured.length) return null;
  return measured.reduce((a, b) =>
    rank(b.status) > rank(a.status) || (rank(b.status) === rank(a.status) && b.psi > a.psi) ? b : a,
  );
}

function driftCell(row) {
  if (!row.drift) {
    if (row.driftError?.kind === "no-reference")
      return h("div", {}, badge("nodata", "no reference"), h("div", { class: "muted small" }, "set one to see drift"));
    return badge("nodata");
  }
  const n = row.drift.features.length;
  const bad = row.drift.features.filter((f) => f.status === "drift").length;
  const warn = row.drift.features.filter((f) => f.status === "warning").length;
  const status = row.drift.status || worst(row.drift.features.map((f) => f.status));
  const detail =
    bad || warn
      ? `${bad ? `${bad} drifting` : ""}${bad && warn ? ", " : ""}${warn ? `${warn} warning` : ""} of ${n}`
      : `${n} columns ok`;
  return h("div", {}, badge(status), h("div", { class: "muted small" }, detail));
}

function performanceCell(row) {
  const metrics = row.perf?.metrics;
  const key = primaryMetric(metrics);
  if (!key) {
    const why = row.perfError?.kind === "absent" ? "not reported" : row.perf ? "no labels yet" : "no data";
    return h("div", {}, badge("nodata"), h("div", { class: "muted small" }, why));
  }
  const reference = referenceMetrics(row.perf);
  return h(
    "div",
    {},
    badge(performanceStatus(metrics, reference), `${METRIC_NAMES[key]} ${num(metrics[key])}`),
    h("div", { class: "muted small" }, `${int(row.perf.labeled ?? metrics.count)} labelled`),
  );
}

function operationsCell(row) {
  const ops = row.ops;
  const status = operationsStatus(ops);
  if (status === "nodata")
    return h(
      "div",
      {},
      badge("nodata"),
      h("div", { class: "muted small" }, row.opsError?.kind === "absent" ? "not reported" : "no calls"),
    );
  return h(
    "div",
    {},
    badge(status, `p95 ${ms(ops.latency_ms?.p95)}`),
    h("div", { class: "muted small" }, `${pct(ops.error_rate)} errors`),
  );
}

function alertCell(active, info) {
  const mine = active.filter((a) => a.model === info.model && (!a.version || a.version === info.version));
  if (!mine.length) return h("span", { class: "muted" }, "none");
  const status = worst(mine.map((a) => severityStatus(a.severity)));
  return badge(status, `${mine.length} active`, mine.map((a) => a.summary || a.rule).join("\n"));
}

function alertList(active, route) {
  return h(
    "ul",
    { class: "alert-list" },
    active.map((a) =>
      h(
        "li",
        { dataset: { alert: a.id } },
        badge(severityStatus(a.severity), a.severity),
        " ",
        h("a", { href: href("model", [a.model], { v: a.version }, route.params) }, `${a.model} v${a.version}`),
        " ",
        a.summary || `${a.rule}: ${a.metric}${a.feature ? ` of ${a.feature}` : ""} = ${num(a.value)}`,
        h("span", { class: "muted small" }, ` · ${a.state} since ${ago(a.fired_at || a.started_at)}`),
      ),
    ),
  );
}

function noModels() {
  return empty(
    "No predictions received yet.",
    h("p", {}, "Instrument the predict function and point the SDK at this collector:"),
    code(
      `import instrument\ninstrument.configure(service_name="churn-api", endpoint="${location.origin}")\n\n@instrument.monitor(model="churn", version="3", task="binary_classification")\ndef predict(features): ...`,
    ),
    h("p", {}, "Then set the training data as the reference, to see drift:"),
    code("predwatch reference set churn train.csv --version 3"),
  );
}
