// The feature x time drift heat map: one row per column of the model, one cell per time bucket, coloured by
// PSI. Drift cells also carry a dot, and empty buckets a hatch, so neither is told by colour alone.
import { h, s } from "../dom.js";
import { num, datetime } from "../format.js";
import { psiColor } from "./palette.js";
import { timeTicks } from "./scale.js";
import { emptyChart, legendKey } from "./line.js";

const LABEL_W = 150;
const ROW_H = 18;
const AXIS_H = 22;

// rows: [{name, role, href, cells: Map(startMs -> {value, status, rows})}]; columns: sorted bucket starts (ms).
export function heatmap({ name = "drift-heatmap", rows, columns, step, warning, drift, width = 980 }) {
  if (!rows.length || !columns.length) return emptyChart(name, "No drift measured in this time range.");
  const cellW = (width - LABEL_W) / columns.length;
  const height = rows.length * ROW_H + AXIS_H;
  const svg = s("svg", {
    class: "plot heatmap",
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-label": `PSI by feature and time: ${rows.length} features, ${columns.length} time buckets`,
    dataset: { rows: rows.length, cols: columns.length },
  });
  svg.append(
    s(
      "defs",
      {},
      s(
        "pattern",
        { id: "hatch", width: 4, height: 4, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" },
        s("rect", { width: 4, height: 4, class: "hatch-bg" }),
        s("line", { x1: 0, y1: 0, x2: 0, y2: 4, class: "hatch-line" }),
      ),
    ),
  );
  rows.forEach((row, r) => {
    const y = r * ROW_H;
    const label = s(
      "text",
      { class: "row-label", x: LABEL_W - 8, y: y + ROW_H / 2 + 4, "text-anchor": "end" },
      clip(row.name, 22),
    );
    label.append(s("title", {}, `${row.name} (${row.role})`));
    svg.append(row.href ? s("a", { href: row.href, class: "row-link" }, label) : label);
    columns.forEach((start, c) => {
      const cell = row.cells.get(start);
      const value = cell ? cell.value : null;
      const fill = psiColor(value, warning, drift);
      const x = LABEL_W + c * cellW;
      const rect = s("rect", {
        class: `cell${fill ? "" : " empty"}`,
        x: x + 0.5,
        y: y + 0.5,
        width: Math.max(cellW - 1, 0.5),
        height: ROW_H - 1,
        fill: fill || "url(#hatch)",
        dataset: {
          cell: "",
          feature: row.name,
          role: row.role,
          start: new Date(start).toISOString(),
          value: value ?? "",
          status: cell?.status ?? "nodata",
        },
      });
      const when = `${datetime(start)} – ${datetime(start + step * 1000)}`;
      rect.append(
        s(
          "title",
          {},
          `${row.name}, ${when}: ${fill ? `PSI ${num(value)} (${cell.status})` : "no data"}${cell?.count ? `, ${cell.count} values` : ""}`,
        ),
      );
      svg.append(rect);
      if (cell?.status === "drift" && cellW >= 6) {
        svg.append(
          s("circle", { class: "drift-mark", cx: x + cellW / 2, cy: y + ROW_H / 2, r: Math.min(2.5, cellW / 4) }),
        );
      }
    });
  });
  const t0 = columns[0];
  const t1 = columns[columns.length - 1] + step * 1000;
  for (const t of timeTicks(t0, t1, Math.floor((width - LABEL_W) / 90))) {
    const x = LABEL_W + ((t.value - t0) / (t1 - t0)) * (width - LABEL_W);
    svg.append(s("line", { class: "axis", x1: x, x2: x, y1: rows.length * ROW_H, y2: rows.length * ROW_H + 4 }));
    svg.append(s("text", { class: "tick", x, y: height - 4, "text-anchor": "middle" }, t.label));
  }
  const legend = h(
    "div",
    { class: "legend" },
    legendKey(`ok (PSI < ${warning})`, psiColor(warning * 0.4, warning, drift)),
    legendKey(`warning (${warning}–${drift})`, psiColor((warning + drift) / 2, warning, drift)),
    legendKey(`drift (> ${drift}), dotted`, psiColor(drift * 2, warning, drift)),
    h("span", { class: "key" }, h("span", { class: "swatch hatch" }), "no data"),
  );
  return h(
    "div",
    { class: "chart", dataset: { chart: name, rows: rows.length, cols: columns.length } },
    h("div", { class: "plot-wrap" }, svg),
    legend,
  );
}

function clip(text, n) {
  return text.length > n ? `${text.slice(0, n - 1)}…` : text;
}
