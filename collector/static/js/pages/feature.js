// The feature page: reference vs current distribution, quantiles, and drift and data quality over time.
import { modelPath, optional } from "../api.js";
import { h } from "../dom.js";
import { compact, fixed, num, pct, pvalue } from "../format.js";
import { href } from "../route.js";
import { badge } from "../status.js";
import { chooseStep, rangeQuery } from "../time.js";
import { categoryBars, histogram } from "../charts/bars.js";
import { lineChart } from "../charts/line.js";
import { card, problem, table, tile, tiles, widthFor } from "../ui.js";
import { versionsOf } from "./model.js";

export async function featurePage({ route, config, range, signal }) {
  const { model, feature } = route;
  const versions = await versionsOf(model, signal);
  const version = route.params.get("v") || versions[0]?.version || "";
  const role = route.params.get("role") || "";
  const span = rangeQuery(range);
  const step = chooseStep(range.span, config.window_s, 120);
  const base = { feature, role, version, ...span };
  const [dist, drift] = await Promise.all([
    optional(modelPath(model, "/distribution"), base, signal),
    optional(modelPath(model, "/drift"), { version, ...span }, signal),
  ]);
  const entry = drift.data?.features.find((f) => f.name === feature && (!role || f.role === role)) || null;
  const kind = dist.data?.kind || entry?.kind || "numeric";
  const series = (metric) => optional(modelPath(model, "/timeseries"), { ...base, metric, step }, signal);
  const qualityMetrics = [
    "missing_rate",
    kind === "categorical" ? "new_category_rate" : "out_of_range_rate",
    "type_mismatch_rate",
  ];
  const [psi, mean, ...quality] = await Promise.all([
    series("psi"),
    kind === "numeric" ? series("mean") : Promise.resolve({ data: null, error: null }),
    ...qualityMetrics.map(series),
  ]);
  const x = (answer) => (answer.data?.points || []).map((p) => [Date.parse(p.start), p.value]);
  const ref = dist.data?.reference;
  const status = entry?.status || dist.data?.status || "nodata";
  return h(
    "div",
    { class: "page", dataset: { model, feature, version, kind } },
    h(
      "div",
      { class: "page-head" },
      h(
        "h1",
        {},
        feature,
        " ",
        h("span", { class: "tag" }, entry?.role || role || "column"),
        " ",
        h("span", { class: "tag" }, kind),
      ),
      badge(status),
      h("a", { class: "button", href: href("model", [model], { v: version }, route.params) }, `← ${model} v${version}`),
    ),
    entry
      ? tiles([
          tile("PSI", fixed(entry.psi), { name: "psi", status: entry.status }),
          kind === "numeric"
            ? tile("KS", fixed(entry.ks?.statistic), { name: "ks", sub: `p ${pvalue(entry.ks?.p_value)}` })
            : tile("χ²", num(entry.chi2?.statistic), { name: "chi2", sub: `p ${pvalue(entry.chi2?.p_value)}` }),
          tile("JS distance", fixed(entry.js), { name: "js" }),
          kind === "numeric" ? tile("W₁/σ", fixed(entry.wasserstein), { name: "wasserstein" }) : null,
          tile("Missing", pct(entry.missing_rate), {
            name: "missing",
            sub: ref ? `reference ${pct(ref.missing_rate)}` : null,
          }),
          kind === "numeric"
            ? tile("Out of range", pct(entry.out_of_range_rate), { name: "out-of-range" })
            : tile("New categories", pct(entry.new_category_rate), { name: "new-categories" }),
          tile("Values", compact(entry.count), { name: "count" }),
        ])
      : null,
    h(
      "div",
      { class: "card-row" },
      card("Distribution", dist.data ? distribution(dist.data) : problem(dist.error, "the distribution"), {
        name: "distribution",
        note: "reference outlined, current filled",
      }),
      card("Summary", dist.data ? summaryTable(dist.data) : problem(dist.error, "quantiles"), { name: "quantiles" }),
    ),
    h(
      "div",
      { class: "card-row" },
      card(
        "Drift over time",
        psi.data
          ? lineChart({
              name: "psi-over-time",
              zero: true,
              width: widthFor(0.5),
              height: 220,
              series: [{ name: "psi", label: "PSI", points: x(psi) }],
              bands: [
                { from: config.psi_warning, to: config.psi_drift, status: "warning" },
                { from: config.psi_drift, to: Infinity, status: "drift" },
              ],
              refs: [{ y: config.psi_drift, label: `drift > ${config.psi_drift}` }],
            })
          : problem(psi.error, "drift"),
        { name: "psi-over-time" },
      ),
      card(
        "Data quality over time",
        lineChart({
          name: "quality-over-time",
          zero: true,
          yFormat: (v) => pct(v),
          width: widthFor(0.5),
          height: 220,
          series: qualityMetrics.map((m, i) => ({ name: m, label: m.replaceAll("_", " "), points: x(quality[i]) })),
          empty: "No values in this range.",
        }),
        { name: "quality" },
      ),
    ),
    kind === "numeric"
      ? card(
          "Mean over time",
          lineChart({
            name: "mean-over-time",
            width: widthFor(1),
            height: 200,
            series: [{ name: "mean", label: "mean", points: x(mean) }],
            refs: ref?.mean != null ? [{ y: ref.mean, label: `reference mean ${num(ref.mean)}` }] : [],
          }),
          { name: "mean", wide: true },
        )
      : null,
  );
}

function distribution(d) {
  if (d.kind === "numeric" && d.histogram) {
    const hist = d.histogram;
    const outside = [];
    if (hist.below.reference + hist.above.reference > 0.0005)
      outside.push(`${pct(hist.below.reference + hist.above.reference)} of the reference`);
    if ((hist.below.current ?? 0) + (hist.above.current ?? 0) > 0.0005)
      outside.push(`${pct(hist.below.current + hist.above.current)} of current values`);
    return [
      histogram({
        edges: hist.edges,
        reference: hist.reference,
        current: hist.current,
        width: widthFor(0.5),
        height: 300,
      }),
      outside.length ? h("p", { class: "muted small" }, `Outside the plotted range: ${outside.join(" and ")}.`) : null,
    ];
  }
  if (d.kind === "categorical" && d.categories) return categoryBars({ rows: d.categories, other: d.other });
  return h("p", { class: "muted" }, "This column has no values of a known kind in the reference.");
}

function summaryTable(d) {
  const rows = [
    { name: "values", ref: compact(d.reference.n), cur: compact(d.current.n) },
    { name: "missing", ref: pct(d.reference.missing_rate), cur: pct(d.current.missing_rate) },
  ];
  if (d.kind === "numeric") {
    rows.push({ name: "min", ref: num(d.reference.min), cur: num(d.current.min) });
    d.quantiles.p.forEach((p, i) => {
      rows.push({
        name: `p${Math.round(p * 100)}`,
        ref: num(d.quantiles.reference[i]),
        cur: num(d.quantiles.current?.[i]),
      });
    });
    rows.push({ name: "max", ref: num(d.reference.max), cur: num(d.current.max) });
    rows.push({ name: "mean", ref: num(d.reference.mean), cur: num(d.current.mean) });
    rows.push({ name: "std", ref: num(d.reference.std), cur: num(d.current.std) });
  }
  return table(
    [
      { label: "", cell: (r) => r.name },
      { label: "Reference", cls: "num", cell: (r) => r.ref },
      { label: "Current", cls: "num", cell: (r) => r.cur },
    ],
    rows,
    { name: "quantiles", rowData: (r) => ({ stat: r.name }) },
  );
}
