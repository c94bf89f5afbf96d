// The confusion matrix as a table (rows: actual, columns: predicted); cell shade follows the row share and
// every cell prints its count and share, so nothing depends on the shade.
import { h } from "../dom.js";
import { int, pct } from "../format.js";
import { emptyChart } from "./line.js";

export function confusionMatrix({ labels, matrix }, name = "confusion") {
  if (!labels?.length || !matrix?.length) return emptyChart(name, "No labelled predictions yet.");
  const table = h("table", { class: "confusion", dataset: { chart: name, labels: labels.length } });
  table.append(
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", { class: "corner" }, "actual ↓ / predicted →"),
        labels.map((l) => h("th", { scope: "col" }, String(l))),
      ),
    ),
  );
  const body = h("tbody");
  matrix.forEach((row, i) => {
    const total = row.reduce((a, b) => a + b, 0);
    const tr = h("tr", {}, h("th", { scope: "row" }, String(labels[i])));
    row.forEach((count, j) => {
      const share = total ? count / total : 0;
      const td = h(
        "td",
        { class: i === j ? "diag" : "off", dataset: { cell: "", actual: labels[i], predicted: labels[j], count } },
        h("span", { class: "count" }, int(count)),
        h("span", { class: "share" }, pct(share)),
      );
      td.style.setProperty("--shade", share.toFixed(3));
      tr.append(td);
    });
    body.append(tr);
  });
  table.append(body);
  return h("div", { class: "chart", dataset: { chart: name } }, table);
}
