// Building blocks of the pages: cards, stat tiles, tables, empty states and error explanations.
import { h } from "./dom.js";

export function card(title, content, { name = null, wide = false, actions = null, note = null } = {}) {
  return h(
    "section",
    { class: `card${wide ? " wide" : ""}`, dataset: { card: name || undefined } },
    h(
      "header",
      { class: "card-head" },
      h("h2", {}, title),
      note ? h("span", { class: "card-note" }, note) : null,
      actions,
    ),
    h("div", { class: "card-body" }, content),
  );
}

export function tiles(items) {
  return h("div", { class: "tiles" }, items.filter(Boolean));
}

// A figure with its label; `status` adds a badge-coloured edge, `sub` a second line (reference, delta).
export function tile(label, value, { sub = null, status = null, name = null, title = null } = {}) {
  return h(
    "div",
    { class: `tile${status ? ` edge-${status}` : ""}`, title: title || undefined, dataset: { tile: name || label } },
    h("div", { class: "tile-label" }, label),
    h("div", { class: "tile-value" }, value),
    sub ? h("div", { class: "tile-sub" }, sub) : null,
  );
}

export function empty(message, ...hints) {
  return h("div", { class: "empty", dataset: { empty: "" } }, h("p", {}, message), hints.filter(Boolean));
}

export function code(textValue) {
  return h("pre", { class: "code" }, h("code", {}, textValue));
}

// What to say when an optional part of a page could not be loaded.
export function problem(error, what) {
  if (!error) return empty(`No ${what} in this time range.`);
  switch (error.kind) {
    case "absent":
      return empty(
        `This collector does not report ${what} yet.`,
        h("p", { class: "muted" }, "Newer collector versions add it; nothing to do here."),
      );
    case "no-reference": {
      const body = error.body || {};
      return empty(
        "No reference set for this model version, so there is nothing to compare with.",
        h("p", {}, body.how_to_fix ? `To fix: ${body.how_to_fix}:` : "Upload the training data:"),
        code(body.cli || "predwatch reference set MODEL FILE --version VERSION"),
      );
    }
    case "network":
      return empty(`Could not load ${what}: the collector did not answer.`);
    default:
      return empty(`Could not load ${what}: ${error.message}`);
  }
}

// columns: [{label, cls, title, cell(row) -> node|string}]; rows get data-* from `rowData(row)`.
export function table(columns, rows, { name, rowData = null, emptyText = "Nothing to show." } = {}) {
  if (!rows.length) return empty(emptyText);
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "grid-table", dataset: { table: name } },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          columns.map((c) => h("th", { class: c.cls, title: c.title, scope: "col" }, c.label)),
        ),
      ),
      h(
        "tbody",
        {},
        rows.map((row) =>
          h(
            "tr",
            { dataset: rowData ? rowData(row) : {} },
            columns.map((c) => h("td", { class: c.cls }, c.cell(row))),
          ),
        ),
      ),
    ),
  );
}

// Chart width in SVG units for a share of the page, so that text in charts keeps its size on screen.
export function widthFor(share) {
  const main = document.getElementById("main");
  const full = Math.min(main?.clientWidth || 1400, 1500) - 64;
  return Math.max(260, Math.round(full * share));
}
