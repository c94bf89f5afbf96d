// Reference vs current distributions: a histogram for numbers, paired horizontal bars for categories.
// Reference bars are outlined, current bars filled: the two differ in form as well as colour.
import { h, s } from "../dom.js";
import { num, pct } from "../format.js";
import { linear, ticks } from "./scale.js";
import { emptyChart, legendKey } from "./line.js";
import { seriesColor } from "./palette.js";

const REF = seriesColor(1);
const CUR = seriesColor(0);

export function histogram({ name = "distribution", edges, reference, current, width = 640, height = 220 }) {
  if (!edges || edges.length < 2) return emptyChart(name, "No numeric values to plot.");
  const M = { top: 10, right: 14, bottom: 26, left: 48 };
  const shares = [...(reference || []), ...(current || [])].filter(Number.isFinite);
  const top = Math.max(...shares, 0.01) * 1.08;
  const sx = linear([edges[0], edges[edges.length - 1]], [M.left, width - M.right]);
  const sy = linear([0, top], [height - M.bottom, M.top]);
  const svg = s("svg", {
    class: "plot",
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-label": "reference and current distribution",
  });
  for (const t of ticks(0, top, 4)) {
    svg.append(s("line", { class: "grid", x1: M.left, x2: width - M.right, y1: sy(t), y2: sy(t) }));
    svg.append(s("text", { class: "tick", x: M.left - 6, y: sy(t) + 4, "text-anchor": "end" }, pct(t, 0)));
  }
  for (const t of ticks(edges[0], edges[edges.length - 1], 6)) {
    svg.append(s("text", { class: "tick", x: sx(t), y: height - 8, "text-anchor": "middle" }, num(t)));
  }
  const bars = (values, series, cls) => {
    (values || []).forEach((value, i) => {
      const x0 = sx(edges[i]);
      const x1 = sx(edges[i + 1]);
      const rect = s("rect", {
        class: `bar ${cls}`,
        x: x0 + 0.5,
        y: sy(value),
        width: Math.max(x1 - x0 - 1, 0.5),
        height: Math.max(sy(0) - sy(value), 0),
        dataset: { bar: "", series, bin: i, value },
      });
      rect.append(s("title", {}, `${series} [${num(edges[i])}, ${num(edges[i + 1])}): ${pct(value)}`));
      svg.append(rect);
    });
  };
  bars(current, "current", "bar-current");
  bars(reference, "reference", "bar-reference");
  svg.append(s("line", { class: "axis", x1: M.left, x2: width - M.right, y1: sy(0), y2: sy(0) }));
  return h(
    "div",
    { class: "chart", dataset: { chart: name, bins: edges.length - 1 } },
    h(
      "div",
      { class: "legend" },
      legendKey("reference", REF, true),
      current ? legendKey("current", CUR) : h("span", { class: "muted" }, "no current values in this range"),
    ),
    h("div", { class: "plot-wrap" }, svg),
  );
}

// rows: [{name, reference, current, new}] shares; other: {reference, current}.
export function categoryBars({ name = "distribution", rows, other }) {
  const all = [...rows];
  if (other && (other.reference > 0 || other.current > 0))
    all.push({ name: "(other)", reference: other.reference, current: other.current, other: true });
  if (!all.length) return emptyChart(name, "No categories to plot.");
  const top = Math.max(...all.flatMap((r) => [r.reference, r.current]).filter(Number.isFinite), 0.01);
  const table = h("table", { class: "cat-bars", dataset: { categories: all.length } });
  for (const row of all) {
    const cell = (value, series) => {
      const bar = h("span", { class: `hbar hbar-${series}`, dataset: { bar: "", series, value: value ?? "" } });
      bar.style.width = `${Number.isFinite(value) ? (value / top) * 100 : 0}%`;
      return h(
        "div",
        { class: "hbar-row" },
        h("span", { class: "hbar-track" }, bar),
        h("span", { class: "num" }, pct(value)),
      );
    };
    table.append(
      h(
        "tr",
        { dataset: { category: row.name } },
        h("th", { scope: "row" }, row.name, row.new ? h("span", { class: "tag" }, "new") : null),
        h("td", {}, cell(row.reference, "reference"), cell(row.current, "current")),
      ),
    );
  }
  return h(
    "div",
    { class: "chart", dataset: { chart: name, categories: all.length } },
    h("div", { class: "legend" }, legendKey("reference", REF, true), legendKey("current", CUR)),
    table,
  );
}
