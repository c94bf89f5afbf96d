// The model page's operations section (latency, throughput, errors, CPU, memory, instances) and alert history.
import { modelPath, optional, pool } from "../api.js";
import { h } from "../dom.js";
import { ago, bytes, compact, datetime, int, ms, num, pct, rate } from "../format.js";
import { badge, operationsStatus, severityStatus } from "../status.js";
import { rangeQuery, slices } from "../time.js";
import { lineChart } from "../charts/line.js";
import { card, empty, problem, table, tile, tiles, widthFor } from "../ui.js";

const BUCKETS = 24;

export async function operationsSection(ctx, ops) {
  if (!ops.data) return card("Operations", problem(ops.error, "operations"), { name: "operations", wide: true });
  const o = ops.data;
  if (!o.calls && !o.predictions) {
    return card("Operations", empty("No predict calls in this range."), { name: "operations", wide: true });
  }
  const status = operationsStatus(o);
  const latency = o.latency_ms || {};
  const summary = tiles([
    tile("Predictions", compact(o.predictions), {
      name: "predictions",
      sub: o.calls != null ? `${compact(o.calls)} calls` : null,
    }),
    tile("Throughput", rate(o.throughput_per_s), { name: "throughput" }),
    tile("Error rate", pct(o.error_rate, 2), { name: "error-rate", status, sub: `${int(o.errors)} failed calls` }),
    tile("Latency p50", ms(latency.p50), { name: "p50" }),
    tile("p90", ms(latency.p90), { name: "p90" }),
    tile("p95", ms(latency.p95), { name: "p95" }),
    tile("p99", ms(latency.p99), { name: "p99" }),
    tile("CPU", o.cpu_percent == null ? "–" : `${num(o.cpu_percent, 3)}%`, {
      name: "cpu",
      sub: o.cpu_percent_max != null ? `peak ${num(o.cpu_percent_max, 3)}%` : null,
    }),
    tile("Memory", bytes(o.memory_bytes), {
      name: "memory",
      sub: o.memory_bytes_max != null ? `peak ${bytes(o.memory_bytes_max)}` : null,
    }),
  ]);
  const charts = await overTime(ctx);
  const instances = o.instances || [];
  const instanceTable = table(
    [
      { label: "Instance", cell: (i) => h("code", {}, i["service.instance.id"] || "–") },
      { label: "Service", cell: (i) => i["service.name"] || "–" },
      { label: "Host", cell: (i) => i["host.name"] || "–" },
      { label: "PID", cls: "num", cell: (i) => i["process.pid"] ?? "–" },
      { label: "Predictions", cls: "num", cell: (i) => compact(i.predictions) },
      { label: "Error rate", cls: "num", cell: (i) => pct(i.error_rate, 2) },
      { label: "p95", cls: "num", cell: (i) => ms(i.latency_ms?.p95) },
      { label: "CPU", cls: "num", cell: (i) => (i.cpu_percent == null ? "–" : `${num(i.cpu_percent, 3)}%`) },
      { label: "Memory", cls: "num", cell: (i) => bytes(i.memory_bytes) },
    ],
    instances,
    {
      name: "instances",
      rowData: (i) => ({ instance: i["service.instance.id"] }),
      emptyText: "No service instances reported.",
    },
  );
  return card("Operations", [summary, charts, h("h3", {}, "Service instances"), instanceTable], {
    name: "operations",
    wide: true,
  });
}

async function overTime(ctx) {
  const { model, version, range, config, signal } = ctx;
  const parts = slices(range, config.window_s, BUCKETS);
  const answers = await pool(parts, 6, (slice) =>
    optional(modelPath(model, "/operations"), { version, ...rangeQuery(slice) }, signal),
  );
  const at = (pick) =>
    parts.map((slice, i) => {
      const o = answers[i].data;
      return [slice.start.getTime(), o && (o.calls || o.predictions) ? pick(o) : null];
    });
  const small = { width: widthFor(0.25), height: 200 };
  return h(
    "div",
    { class: "chart-grid" },
    lineChart({
      name: "latency",
      title: "Latency",
      yFormat: ms,
      zero: true,
      width: widthFor(0.5),
      height: 200,
      span: 2,
      series: ["p50", "p90", "p95", "p99"].map((p) => ({
        name: p,
        label: p,
        points: at((o) => o.latency_ms?.[p] ?? null),
      })),
    }),
    lineChart({
      name: "throughput",
      title: "Throughput (predictions/s)",
      zero: true,
      ...small,
      series: [{ name: "throughput", label: "predictions/s", points: at((o) => o.throughput_per_s) }],
    }),
    lineChart({
      name: "error-rate",
      title: "Error rate",
      zero: true,
      yFormat: (v) => pct(v),
      ...small,
      series: [{ name: "error_rate", label: "error rate", points: at((o) => o.error_rate) }],
    }),
    lineChart({
      name: "cpu",
      title: "CPU (% of the host)",
      zero: true,
      yFormat: (v) => `${num(v, 3)}%`,
      ...small,
      series: [{ name: "cpu", label: "CPU", points: at((o) => o.cpu_percent) }],
      empty: "No CPU figures reported.",
    }),
    lineChart({
      name: "memory",
      title: "Memory (RSS)",
      zero: true,
      yFormat: bytes,
      ...small,
      series: [{ name: "memory", label: "memory", points: at((o) => o.memory_bytes) }],
      empty: "No memory figures reported.",
    }),
  );
}

export function alertsSection(ctx, alerts, modelAlerts) {
  if (!alerts.data) return card("Alerts", problem(alerts.error, "alerts"), { name: "alerts", wide: true });
  const columns = [
    { label: "State", cell: (a) => badge(a.state === "resolved" ? "ok" : severityStatus(a.severity), a.state) },
    { label: "Severity", cell: (a) => a.severity },
    { label: "Rule", cell: (a) => a.rule },
    {
      label: "What",
      cell: (a) =>
        `${a.metric}${a.feature ? ` of ${a.feature}` : ""} = ${num(a.value)}${a.threshold != null ? ` (${a.op || ""} ${num(a.threshold)})` : ""}`,
    },
    { label: "Started", cell: (a) => h("span", { title: datetime(a.started_at) }, ago(a.started_at)) },
    {
      label: "Resolved",
      cell: (a) => (a.resolved_at ? h("span", { title: datetime(a.resolved_at) }, ago(a.resolved_at)) : "–"),
    },
  ];
  return card(
    "Alerts",
    table(columns, modelAlerts, {
      name: "alerts",
      rowData: (a) => ({ alert: a.id, state: a.state }),
      emptyText:
        "No alerts for this model version. Rules fire on drift, performance and operations metrics (predwatch.toml, [[rules]]).",
    }),
    { name: "alerts", wide: true },
  );
}
