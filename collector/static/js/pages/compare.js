// Champion vs challenger: two versions of one model side by side (drift, performance, operations, traffic).
import { modelPath, optional } from "../api.js";
import { h } from "../dom.js";
import { compact, fixed, ms, num, pct } from "../format.js";
import { href, withParams } from "../route.js";
import { badge, lowerIsBetter, primaryMetric } from "../status.js";
import { chooseStep, rangeQuery } from "../time.js";
import { lineChart } from "../charts/line.js";
import { card, empty, table, widthFor } from "../ui.js";
import { bySeverity, versionsOf } from "./model.js";
import { LABELS, value } from "./model_perf.js";

export async function comparePage({ route, config, range, signal, navigate }) {
  const model = route.model;
  const versions = await versionsOf(model, signal);
  if (versions.length < 2) {
    return h(
      "div",
      { class: "page" },
      h("h1", {}, model),
      empty(
        "Only one version of this model has been seen; there is nothing to compare yet.",
        h("p", {}, h("a", { href: href("model", [model], {}, route.params) }, `Open ${model}`)),
      ),
    );
  }
  // By default the champion is the version before the newest, the challenger the newest.
  const a = route.params.get("a") || versions[1].version;
  const b = route.params.get("b") || versions.find((v) => v.version !== a).version;
  const span = rangeQuery(range);
  const step = chooseStep(range.span, config.window_s, 60);
  const load = (version) =>
    Promise.all([
      optional(modelPath(model, "/drift"), { version, ...span }, signal),
      optional(modelPath(model, "/performance"), { version, ...span }, signal),
      optional(modelPath(model, "/operations"), { version, ...span }, signal),
      optional(modelPath(model, "/timeseries"), { metric: "rows", version, ...span, step }, signal),
    ]);
  const [A, B] = await Promise.all([load(a), load(b)]);
  const picker = (param, current) =>
    h(
      "select",
      {
        "aria-label": param === "a" ? "champion" : "challenger",
        onchange: (e) => navigate(withParams(route, { [param]: e.target.value })),
      },
      versions.map((v) => h("option", { value: v.version, selected: v.version === current }, `version ${v.version}`)),
    );
  const traffic = lineChart({
    name: "compare-traffic",
    zero: true,
    width: widthFor(1),
    height: 200,
    series: [
      [a, A[3]],
      [b, B[3]],
    ].map(([version, ts]) => ({
      name: version,
      label: `v${version}`,
      points: (ts.data?.points || []).map((p) => [Date.parse(p.start), p.value]),
    })),
    yFormat: compact,
  });
  return h(
    "div",
    { class: "page", dataset: { model, a, b } },
    h(
      "div",
      { class: "page-head" },
      h("h1", {}, model, " ", h("span", { class: "muted" }, "champion vs challenger")),
      picker("a", a),
      h("span", { class: "muted" }, "vs"),
      picker("b", b),
    ),
    card("Side by side", sideBySide(a, b, A, B), { name: "compare", wide: true }),
    card("Traffic", traffic, { name: "traffic", wide: true }),
    card("Drift by column", featureTable(a, b, A[0].data, B[0].data, model, route), {
      name: "compare-drift",
      wide: true,
    }),
  );
}

function sideBySide(a, b, A, B) {
  const [dA, pA, oA] = A.map((r) => r.data);
  const [dB, pB, oB] = B.map((r) => r.data);
  const primary = primaryMetric(pA?.metrics) || primaryMetric(pB?.metrics);
  const drifting = (d) => (d ? d.features.filter((f) => f.status === "drift").length : null);
  const rows = [
    { name: "Drift status", a: dA ? badge(dA.status) : badge("nodata"), b: dB ? badge(dB.status) : badge("nodata") },
    { name: "Drifting columns", a: num(drifting(dA)), b: num(drifting(dB)), diff: [drifting(dA), drifting(dB), true] },
    { name: "Rows in range", a: compact(dA?.rows ?? oA?.predictions), b: compact(dB?.rows ?? oB?.predictions) },
  ];
  if (primary) {
    rows.push({
      name: LABELS[primary],
      a: fixed(value(pA?.metrics, primary)),
      b: fixed(value(pB?.metrics, primary)),
      diff: [value(pA?.metrics, primary), value(pB?.metrics, primary), lowerIsBetter(primary)],
    });
  }
  for (const key of ["accuracy", "f1", "rmse", "mae"].filter(
    (k) => k !== primary && (value(pA?.metrics, k) !== null || value(pB?.metrics, k) !== null),
  )) {
    rows.push({
      name: LABELS[key],
      a: fixed(value(pA?.metrics, key)),
      b: fixed(value(pB?.metrics, key)),
      diff: [value(pA?.metrics, key), value(pB?.metrics, key), lowerIsBetter(key)],
    });
  }
  rows.push(
    {
      name: "Latency p95",
      a: ms(oA?.latency_ms?.p95),
      b: ms(oB?.latency_ms?.p95),
      diff: [oA?.latency_ms?.p95, oB?.latency_ms?.p95, true],
    },
    {
      name: "Error rate",
      a: pct(oA?.error_rate, 2),
      b: pct(oB?.error_rate, 2),
      diff: [oA?.error_rate, oB?.error_rate, true],
    },
    { name: "Throughput", a: num(oA?.throughput_per_s), b: num(oB?.throughput_per_s) },
  );
  return table(
    [
      { label: "", cell: (r) => r.name },
      { label: `v${a} (champion)`, cls: "num", cell: (r) => r.a },
      { label: `v${b} (challenger)`, cls: "num", cell: (r) => r.b },
      { label: "challenger is", cell: (r) => verdict(r.diff) },
    ],
    rows,
    { name: "side-by-side", rowData: (r) => ({ metric: r.name }) },
  );
}

function verdict(diff) {
  if (!diff) return "";
  const [x, y, lowerBetter] = diff;
  if (typeof x !== "number" || typeof y !== "number" || x === y)
    return h("span", { class: "muted" }, x === y && x !== undefined ? "the same" : "–");
  const better = lowerBetter ? y < x : y > x;
  return h("span", { class: better ? "better" : "worse" }, better ? "▲ better" : "▼ worse");
}

function featureTable(a, b, dA, dB, model, route) {
  if (!dA && !dB) return empty("Neither version has a reference, so drift cannot be compared.");
  const names = new Map();
  for (const f of bySeverity([...(dA?.features || []), ...(dB?.features || [])])) names.set(`${f.role}\0${f.name}`, f);
  const find = (d, f) => d?.features.find((g) => g.name === f.name && g.role === f.role);
  return table(
    [
      { label: "Column", cell: (f) => f.name },
      { label: "Role", cell: (f) => f.role },
      { label: `v${a}`, cell: (f) => cell(find(dA, f), model, a, route) },
      { label: `v${b}`, cell: (f) => cell(find(dB, f), model, b, route) },
    ],
    [...names.values()],
    { name: "compare-drift", rowData: (f) => ({ feature: f.name }) },
  );
}

function cell(f, model, version, route) {
  if (!f) return badge("nodata");
  return h(
    "a",
    { href: href("feature", [model, f.name], { v: version, role: f.role }, route.params) },
    badge(f.status, `PSI ${fixed(f.psi)}`),
  );
}
