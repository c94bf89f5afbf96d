// The model page: drift heat map and table, performance, operations, alerts and metadata of one version.
import { api, modelPath, optional, pool } from "../api.js";
import { h } from "../dom.js";
import { ago, compact, datetime, fixed, int, pct, pvalue } from "../format.js";
import { href, withParams } from "../route.js";
import { badge, rank } from "../status.js";
import { chooseStep, rangeQuery } from "../time.js";
import { heatmap } from "../charts/heatmap.js";
import { card, code, empty, problem, table, tile, tiles, widthFor } from "../ui.js";
import { performanceSection } from "./model_perf.js";
import { alertsSection, operationsSection } from "./model_ops.js";

const HEATMAP_ROWS = 40;

export async function versionsOf(model, signal) {
  const models = await api("/models", {}, signal);
  return models.filter((m) => m.model === model).sort((a, b) => Date.parse(b.first_seen) - Date.parse(a.first_seen));
}

export function bySeverity(features) {
  return [...features].sort(
    (a, b) => rank(b.status) - rank(a.status) || (b.psi ?? -1) - (a.psi ?? -1) || a.name.localeCompare(b.name),
  );
}

export async function modelPage({ route, config, range, signal, navigate }) {
  const model = route.model;
  const versions = await versionsOf(model, signal);
  if (!versions.length) return notSeen(model);
  const version = route.params.get("v") || versions[0].version;
  const info = versions.find((v) => v.version === version) || null;
  const span = rangeQuery(range);
  const q = { version, ...span };
  const [drift, perf, ops, alerts] = await Promise.all([
    optional(modelPath(model, "/drift"), q, signal),
    optional(modelPath(model, "/performance"), q, signal),
    optional(modelPath(model, "/operations"), q, signal),
    optional("/alerts", { model }, signal),
  ]);
  const features = drift.data ? bySeverity(drift.data.features) : [];
  const step = chooseStep(range.span, config.window_s, 60);
  const ctx = { route, config, range, signal, model, version, step };
  const [heat, perfView, opsView] = await Promise.all([
    drift.data ? heatmapCard(ctx, features) : null,
    performanceSection(ctx, perf),
    operationsSection(ctx, ops),
  ]);
  const picker = h(
    "select",
    {
      "aria-label": "version",
      class: "version-select",
      onchange: (e) => navigate(withParams(route, { v: e.target.value })),
    },
    versions.map((v) => h("option", { value: v.version, selected: v.version === version }, `version ${v.version}`)),
  );
  const modelAlerts = (alerts.data?.alerts || []).filter(
    (a) => a.model === model && (!a.version || a.version === version),
  );
  const activeAlerts = modelAlerts.filter((a) => a.state === "firing" || a.state === "pending");
  return h(
    "div",
    { class: "page", dataset: { model, version } },
    h(
      "div",
      { class: "page-head" },
      h("h1", {}, model, " ", h("span", { class: "version" }, `v${version}`)),
      picker,
      versions.length > 1
        ? h(
            "a",
            { class: "button", href: href("compare", [model], pair(versions, version), route.params) },
            "Compare versions",
          )
        : null,
    ),
    tiles([
      tile(
        "Drift",
        drift.data
          ? badge(drift.data.status)
          : badge("nodata", drift.error?.kind === "no-reference" ? "no reference" : "no data"),
        { name: "drift" },
      ),
      tile("Rows in range", drift.data ? compact(drift.data.rows) : "–", {
        name: "rows",
        sub: info ? `${compact(info.rows)} since ${datetime(info.first_seen)}` : null,
      }),
      tile(
        "Drifting columns",
        drift.data ? `${features.filter((f) => f.status === "drift").length} of ${features.length}` : "–",
        { name: "drifting" },
      ),
      tile("Last seen", info ? ago(info.last_seen) : "–", {
        name: "last-seen",
        sub: info ? datetime(info.last_seen) : null,
      }),
      tile("Active alerts", alerts.error ? "–" : int(activeAlerts.length), {
        name: "alerts",
        status: activeAlerts.length ? "critical" : null,
      }),
    ]),
    drift.data ? heat : card("Drift", problem(drift.error, "drift"), { name: "drift", wide: true }),
    drift.data
      ? card("Drift by column", driftTable(ctx, features), {
          name: "drift-table",
          wide: true,
          note: `most severe first; PSI decides the status (from ${config.min_count} values on); p-values never alarm`,
        })
      : null,
    perfView,
    opsView,
    alertsSection(ctx, alerts, modelAlerts),
    card("About this model", metadata(ctx, info, drift.data, perf.data, ops.data), { name: "metadata", wide: true }),
  );
}

// Champion and challenger for the compare link: this version against the newest, or the newest against the
// one before it.
function pair(versions, version) {
  const newest = versions[0].version;
  return version === newest ? { a: versions[1].version, b: newest } : { a: version, b: newest };
}

async function heatmapCard(ctx, features) {
  const { model, version, range, step, signal, config, route } = ctx;
  const shown = features.slice(0, HEATMAP_ROWS);
  const answers = await pool(shown, 6, (f) =>
    optional(
      modelPath(model, "/timeseries"),
      { metric: "psi", feature: f.name, role: f.role, version, ...rangeQuery(range), step },
      signal,
    ),
  );
  // Every bucket of the range is a column, so the time axis is linear and gaps in the data show as gaps.
  const columns = [];
  for (let t = Math.floor(range.start.getTime() / 1000 / step) * step; t * 1000 < range.end.getTime(); t += step) {
    columns.push(t * 1000);
  }
  const rows = shown.map((f, i) => {
    const cells = new Map();
    for (const point of answers[i].data?.points || []) {
      cells.set(Date.parse(point.start), { value: point.value, status: point.status, count: point.count });
    }
    return {
      name: f.name,
      role: f.role,
      cells,
      href: href("feature", [model, f.name], { v: version, role: f.role }, route.params),
    };
  });
  const chart = heatmap({
    rows,
    columns,
    step,
    warning: config.psi_warning,
    drift: config.psi_drift,
    width: widthFor(1),
  });
  const note = `PSI per ${step >= 3600 ? `${step / 3600} h` : `${step / 60} min`}${features.length > shown.length ? `; the ${shown.length} most drifted of ${features.length} columns` : ""}`;
  return card("Drift over time", chart, { name: "heatmap", wide: true, note });
}

function driftTable(ctx, features) {
  const { model, version, route } = ctx;
  const columns = [
    {
      label: "Column",
      cell: (f) =>
        h("a", { href: href("feature", [model, f.name], { v: version, role: f.role }, route.params) }, f.name),
    },
    { label: "Role", cell: (f) => f.role },
    { label: "Kind", cell: (f) => f.kind },
    { label: "Status", cell: (f) => badge(f.status) },
    { label: "PSI", cls: "num", title: "population stability index (CSI for inputs)", cell: (f) => fixed(f.psi) },
    {
      label: "KS",
      cls: "num",
      title: "Kolmogorov–Smirnov statistic (p-value)",
      cell: (f) =>
        f.ks?.statistic == null
          ? "–"
          : h("span", {}, fixed(f.ks.statistic), h("span", { class: "muted small" }, ` p ${pvalue(f.ks.p_value)}`)),
    },
    { label: "JS", cls: "num", title: "Jensen–Shannon distance", cell: (f) => fixed(f.js) },
    { label: "W₁/σ", cls: "num", title: "Wasserstein-1 over the reference std", cell: (f) => fixed(f.wasserstein) },
    {
      label: "χ² p",
      cls: "num",
      title: "chi-square p-value (categorical)",
      cell: (f) => (f.chi2 ? pvalue(f.chi2.p_value) : "–"),
    },
    { label: "Missing", cls: "num", cell: (f) => pct(f.missing_rate) },
    { label: "Out of range", cls: "num", cell: (f) => pct(f.out_of_range_rate) },
    {
      label: "New categories",
      cell: (f) =>
        f.new_categories?.length
          ? f.new_categories.slice(0, 4).join(", ") + (f.new_categories.length > 4 ? "…" : "")
          : "–",
    },
    { label: "Values", cls: "num", cell: (f) => compact(f.count) },
  ];
  return table(columns, features, {
    name: "drift",
    rowData: (f) => ({ feature: f.name, role: f.role, status: f.status, psi: f.psi ?? "" }),
    emptyText: "The reference has no columns.",
  });
}

function metadata(ctx, info, drift, perf, ops) {
  const inputs = drift ? drift.features.filter((f) => f.role === "input") : [];
  const outputs = drift ? drift.features.filter((f) => f.role === "output") : [];
  const instances = ops?.instances || [];
  const services = [...new Set(instances.map((i) => i["service.name"]).filter(Boolean))];
  const hosts = [...new Set(instances.map((i) => i["host.name"]).filter(Boolean))];
  const ref = drift?.reference;
  const item = (term, ...value) => [h("dt", {}, term), h("dd", {}, ...value)];
  const list = h(
    "dl",
    { class: "meta" },
    item("Model", ctx.model),
    item("Version", ctx.version),
    item("Task", perf?.task || "–"),
    item("Seen", info ? `${int(info.rows)} rows, ${datetime(info.first_seen)} – ${datetime(info.last_seen)}` : "–"),
    item("Inputs", inputs.length ? `${inputs.length}: ${inputs.map((f) => `${f.name} (${f.kind})`).join(", ")}` : "–"),
    item("Outputs", outputs.length ? outputs.map((f) => `${f.name} (${f.kind})`).join(", ") : "–"),
    item(
      "Reference",
      ref
        ? `${ref.source}, ${int(ref.rows)} rows, set ${datetime(ref.created_at)}`
        : h("span", {}, "none: ", h("code", {}, `predwatch reference set ${ctx.model} FILE --version ${ctx.version}`)),
    ),
    item(
      "Data sources",
      services.length ? `predictions over OTLP from ${services.join(", ")}` : "predictions over OTLP",
      perf ? `; ${int(perf.labeled ?? perf.metrics?.count)} labels joined` : "",
    ),
    item(
      "Infrastructure",
      instances.length
        ? `${instances.length} instance${instances.length > 1 ? "s" : ""} on ${hosts.length || "?"} host${hosts.length === 1 ? "" : "s"}${hosts.length ? ` (${hosts.slice(0, 5).join(", ")})` : ""}`
        : "no instances reported",
    ),
  );
  return list;
}

function notSeen(model) {
  return h(
    "div",
    { class: "page" },
    h("h1", {}, model),
    empty(
      `No predictions of model "${model}" have reached this collector.`,
      h("p", {}, h("a", { href: "#/" }, "Back to every model")),
      code(`@instrument.monitor(model="${model}", version="1")`),
    ),
  );
}
