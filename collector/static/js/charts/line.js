// Line charts: time series (x in ms) or curves (x numeric), with threshold bands, reference lines and a
// hover read-out. Each series is one <path data-series="name" data-points="n">, so tests can count them.
import { h, s } from "../dom.js";
import { num, datetime } from "../format.js";
import { linear, niceDomain, ticks, timeTicks } from "./scale.js";
import { seriesColor } from "./palette.js";

const M = { top: 10, right: 14, bottom: 24, left: 52 };

export function emptyChart(name, message, span = 1) {
  return h("div", { class: `chart chart-empty span-${span}`, dataset: { chart: name, empty: "" } }, message);
}

export function lineChart(options) {
  const {
    name,
    series,
    x = "time",
    width = 560,
    height = 190,
    yFormat = (v) => num(v),
    xFormat = x === "time" ? (v) => datetime(v) : (v) => num(v),
    yDomain = null,
    xDomain = null,
    zero = false,
    bands = [],
    refs = [],
    diagonal = false,
    title = null,
    legend = true,
    empty = "No data in this time range.",
    span = 1,
  } = options;
  const drawn = series.filter((one) => one.points.some(([, y]) => Number.isFinite(y)));
  if (!drawn.length) return emptyChart(name, empty, span);

  const xs = drawn.flatMap((one) => one.points.map(([px]) => px));
  const ys = drawn.flatMap((one) => one.points.map(([, py]) => py)).concat(refs.map((r) => r.y));
  const xd = xDomain || [Math.min(...xs), Math.max(...xs)];
  const yd = yDomain || niceDomain(ys, { zero });
  const sx = linear(xd, [M.left, width - M.right]);
  const sy = linear(yd, [height - M.bottom, M.top]);
  const clampY = (v) => Math.max(M.top, Math.min(height - M.bottom, sy(v)));

  const svg = s("svg", {
    class: "plot",
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-label": title || name,
    dataset: { series: drawn.length },
  });
  for (const band of bands) {
    const y0 = clampY(Math.min(band.to, yd[1]));
    const y1 = clampY(Math.max(band.from, yd[0]));
    if (y1 > y0)
      svg.append(
        s("rect", {
          class: `band band-${band.status}`,
          x: M.left,
          y: y0,
          width: width - M.left - M.right,
          height: y1 - y0,
        }),
      );
  }
  for (const t of ticks(yd[0], yd[1], 4)) {
    svg.append(s("line", { class: "grid", x1: M.left, x2: width - M.right, y1: sy(t), y2: sy(t) }));
    svg.append(s("text", { class: "tick", x: M.left - 6, y: sy(t) + 4, "text-anchor": "end" }, yFormat(t)));
  }
  const xt =
    x === "time"
      ? timeTicks(xd[0], xd[1], Math.floor(width / 90))
      : ticks(xd[0], xd[1], 5).map((v) => ({ value: v, label: num(v) }));
  for (const t of xt) {
    svg.append(s("text", { class: "tick", x: sx(t.value), y: height - 6, "text-anchor": "middle" }, t.label));
  }
  svg.append(
    s("line", { class: "axis", x1: M.left, x2: width - M.right, y1: height - M.bottom, y2: height - M.bottom }),
  );
  if (diagonal) {
    svg.append(s("line", { class: "diagonal", x1: sx(xd[0]), y1: sy(yd[0]), x2: sx(xd[1]), y2: sy(yd[1]) }));
  }
  for (const ref of refs) {
    svg.append(
      s("line", {
        class: "ref",
        x1: M.left,
        x2: width - M.right,
        y1: sy(ref.y),
        y2: sy(ref.y),
        dataset: { ref: ref.label },
      }),
    );
    svg.append(
      s("text", { class: "ref-label", x: width - M.right - 2, y: sy(ref.y) - 4, "text-anchor": "end" }, ref.label),
    );
  }
  drawn.forEach((one) => {
    const color = one.color || seriesColor(series.indexOf(one));
    let d = "";
    let pen = false;
    let count = 0;
    for (const [px, py] of one.points) {
      if (!Number.isFinite(py)) {
        pen = false;
        continue;
      }
      d += `${pen ? "L" : "M"}${sx(px).toFixed(1)},${clampY(py).toFixed(1)}`;
      pen = true;
      count += 1;
    }
    svg.append(
      s("path", {
        class: `line${one.dashed ? " dashed" : ""}`,
        d,
        stroke: color,
        dataset: { series: one.name, points: count },
      }),
    );
    if (count <= 1 || one.dots) {
      for (const [px, py] of one.points) {
        if (Number.isFinite(py))
          svg.append(s("circle", { class: "dot", cx: sx(px), cy: clampY(py), r: 2.5, fill: color }));
      }
    }
  });

  const wrap = h("div", { class: `chart span-${span}`, dataset: { chart: name, series: drawn.length } });
  if (title) wrap.append(h("div", { class: "chart-title" }, title));
  if (legend && (drawn.length > 1 || refs.length)) {
    wrap.append(
      h(
        "div",
        { class: "legend" },
        drawn.map((one) => legendKey(one.label || one.name, one.color || seriesColor(series.indexOf(one)), one.dashed)),
      ),
    );
  }
  const tip = h("div", { class: "tip", hidden: true });
  const cursor = s("line", { class: "cursor", y1: M.top, y2: height - M.bottom, visibility: "hidden" });
  svg.append(cursor);
  svg.addEventListener("mousemove", (event) => {
    const box = svg.getBoundingClientRect();
    const vx = ((event.clientX - box.left) / box.width) * width;
    const target = xd[0] + ((vx - M.left) / (width - M.left - M.right)) * (xd[1] - xd[0]);
    const nearest = xs.reduce((a, b) => (Math.abs(b - target) < Math.abs(a - target) ? b : a), xs[0]);
    cursor.setAttribute("x1", sx(nearest));
    cursor.setAttribute("x2", sx(nearest));
    cursor.setAttribute("visibility", "visible");
    const rows = drawn.map((one) => {
      const point = one.points.find(([px]) => px === nearest);
      return h("div", {}, `${one.label || one.name}: `, h("b", {}, point ? yFormat(point[1]) : "–"));
    });
    tip.replaceChildren(h("div", { class: "tip-x" }, xFormat(nearest)), ...rows);
    tip.hidden = false;
    const left = (sx(nearest) / width) * box.width;
    tip.style.left = `${Math.min(left + 12, box.width - 160)}px`;
  });
  svg.addEventListener("mouseleave", () => {
    tip.hidden = true;
    cursor.setAttribute("visibility", "hidden");
  });
  wrap.append(h("div", { class: "plot-wrap" }, svg, tip));
  return wrap;
}

export function legendKey(label, color, dashed = false) {
  const swatch = h("span", { class: `swatch${dashed ? " dashed" : ""}` });
  swatch.style.setProperty("--color", color);
  return h("span", { class: "key" }, swatch, label);
}
