// Sparklines: a tiny line with no axes; the last value is marked.
import { s } from "../dom.js";

export function sparkline(values, { name, width = 120, height = 28, title = "", status = null } = {}) {
  const finite = values.map((v, i) => [i, v]).filter(([, v]) => typeof v === "number" && Number.isFinite(v));
  const svg = s("svg", {
    class: `spark${status ? ` status-${status}` : ""}`,
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    role: "img",
    "aria-label": title || name,
    dataset: { chart: name, points: finite.length },
  });
  if (title) svg.append(s("title", {}, title));
  if (!finite.length) {
    svg.append(s("line", { class: "spark-none", x1: 2, x2: width - 2, y1: height / 2, y2: height / 2 }));
    return svg;
  }
  const lo = Math.min(...finite.map(([, v]) => v));
  const hi = Math.max(...finite.map(([, v]) => v));
  const n = Math.max(values.length - 1, 1);
  const x = (i) => 2 + (i / n) * (width - 4);
  const y = (v) => (hi === lo ? height / 2 : height - 3 - ((v - lo) / (hi - lo)) * (height - 6));
  const d = finite.map(([i, v], k) => `${k ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`).join("");
  svg.append(s("path", { class: "spark-line", d, dataset: { series: name, points: finite.length } }));
  const [li, lv] = finite[finite.length - 1];
  svg.append(s("circle", { class: "spark-last", cx: x(li), cy: y(lv), r: 2 }));
  return svg;
}
