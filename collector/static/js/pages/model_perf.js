// The model page's performance section: metrics against the reference, over time, ROC, PR, confusion matrix.
import { modelPath, optional, pool } from "../api.js";
import { h } from "../dom.js";
import { fixed, int, num } from "../format.js";
import { lowerIsBetter, performanceStatus, primaryMetric } from "../status.js";
import { rangeQuery, slices } from "../time.js";
import { lineChart } from "../charts/line.js";
import { confusionMatrix } from "../charts/matrix.js";
import { card, code, empty, problem, tile, tiles, widthFor } from "../ui.js";

const BUCKETS = 24;
export const LABELS = {
  accuracy: "Accuracy",
  precision: "Precision",
  recall: "Recall",
  f1: "F1",
  auc_roc: "AUC-ROC",
  gini: "Gini",
  ks: "KS",
  log_loss: "Log loss",
  brier: "Brier",
  rmse: "RMSE",
  mae: "MAE",
  mape: "MAPE",
  r2: "R²",
  mean_error: "Mean error",
};
const CLASSIFICATION = ["accuracy", "precision", "recall", "f1", "auc_roc", "gini", "ks", "log_loss", "brier"];
const REGRESSION = ["rmse", "mae", "mape", "r2", "mean_error"];

// A metric may be a number or, for multiclass, {macro, micro, weighted}: the dashboard shows macro.
export function value(metrics, key) {
  const v = metrics?.[key];
  if (v && typeof v === "object") return typeof v.macro === "number" ? v.macro : null;
  return typeof v === "number" ? v : null;
}

export function referenceMetrics(answer) {
  const ref = answer?.reference;
  if (!ref || typeof ref !== "object") return null;
  return ref.metrics && typeof ref.metrics === "object" ? ref.metrics : ref;
}

function delta(key, current, reference) {
  if (reference === null || current === null) return null;
  const d = current - reference;
  const better = lowerIsBetter(key) ? d < 0 : d > 0;
  const arrow = d === 0 ? "=" : d > 0 ? "▲" : "▼";
  return h(
    "span",
    { class: d === 0 ? "" : better ? "better" : "worse" },
    `reference ${num(reference)} · ${arrow} ${num(Math.abs(d), 2)}`,
  );
}

export async function performanceSection(ctx, perf) {
  const { model } = ctx;
  if (!perf.data) return card("Performance", problem(perf.error, "performance"), { name: "performance", wide: true });
  const metrics = perf.data.metrics || {};
  if (!metrics.count) {
    return card(
      "Performance",
      empty(
        "No labelled predictions in this range yet: performance needs the ground truth.",
        h("p", {}, "Send labels as they arrive; the collector joins them to predictions by id:"),
        code(
          `instrument.log_actuals(model="${model}", ids=prediction_ids, actuals=labels)\n# or: POST /api/v1/actuals {"model": "${model}", "ids": [...], "actuals": [...]}`,
        ),
      ),
      { name: "performance", wide: true },
    );
  }
  const reference = referenceMetrics(perf.data);
  const keys = (metrics.task === "regression" || typeof metrics.rmse === "number" ? REGRESSION : CLASSIFICATION).filter(
    (k) => value(metrics, k) !== null,
  );
  const status = performanceStatus(metrics, reference);
  const primary = primaryMetric(metrics);
  const summary = tiles(
    keys.map((k) =>
      tile(LABELS[k], fixed(value(metrics, k), k === "mape" ? 2 : 3), {
        name: k,
        status: k === primary && reference ? status : null,
        sub: delta(k, value(metrics, k), reference ? value(reference, k) : null),
      }),
    ),
  );
  const parts = [
    h(
      "p",
      { class: "muted small" },
      `${int(perf.data.labeled ?? metrics.count)} labelled predictions${metrics.task ? `, ${metrics.task.replaceAll("_", " ")}` : ""}${metrics.positive_label != null ? `, positive class ${metrics.positive_label}` : ""}`,
    ),
    summary,
  ];
  const over = await overTime(
    ctx,
    keys.filter((k) => ["auc_roc", "accuracy", "f1", "rmse", "mae"].includes(k)).slice(0, 3),
    reference,
    primary,
  );
  const charts = [over];
  if (metrics.roc_curve) {
    charts.push(
      lineChart({
        name: "roc",
        title: `ROC curve (AUC ${fixed(metrics.auc_roc)})`,
        x: "linear",
        xDomain: [0, 1],
        yDomain: [0, 1],
        diagonal: true,
        width: widthFor(0.25),
        height: 240,
        series: [
          { name: "roc", label: "ROC", points: metrics.roc_curve.fpr.map((x, i) => [x, metrics.roc_curve.tpr[i]]) },
        ],
        xFormat: (v) => `FPR ${fixed(v, 3)}`,
        yFormat: (v) => fixed(v, 2),
      }),
    );
  }
  if (metrics.pr_curve) {
    charts.push(
      lineChart({
        name: "pr",
        title: "Precision–recall",
        x: "linear",
        xDomain: [0, 1],
        yDomain: [0, 1],
        width: widthFor(0.25),
        height: 240,
        series: [
          {
            name: "pr",
            label: "precision",
            points: metrics.pr_curve.recall.map((x, i) => [x, metrics.pr_curve.precision[i]]),
          },
        ],
        xFormat: (v) => `recall ${fixed(v, 3)}`,
        yFormat: (v) => fixed(v, 2),
      }),
    );
  }
  if (metrics.confusion_matrix) {
    charts.push(
      h(
        "div",
        { class: "chart-box" },
        h("div", { class: "chart-title" }, "Confusion matrix"),
        confusionMatrix(metrics.confusion_matrix),
      ),
    );
  }
  parts.push(h("div", { class: "chart-grid" }, charts));
  return card("Performance", parts, {
    name: "performance",
    wide: true,
    note: reference ? "against the reference's labelled rows" : "no labelled reference to compare with",
  });
}

// The range in up to 24 slices, one /performance call each: any metric of the answer can be drawn over time.
async function overTime(ctx, keys, reference, primary) {
  const { model, version, range, config, signal } = ctx;
  if (!keys.length) return null;
  const parts = slices(range, config.window_s, BUCKETS);
  const answers = await pool(parts, 6, (slice) =>
    optional(modelPath(model, "/performance"), { version, ...rangeQuery(slice) }, signal),
  );
  const series = keys.map((k) => ({
    name: k,
    label: LABELS[k],
    points: parts.map((slice, i) => [
      slice.start.getTime(),
      answers[i].data?.metrics?.count ? value(answers[i].data.metrics, k) : null,
    ]),
    dots: true,
  }));
  const refValue = reference && primary ? value(reference, primary) : null;
  return lineChart({
    name: "performance-over-time",
    title: "Over time",
    series,
    refs: refValue !== null ? [{ y: refValue, label: `reference ${LABELS[primary]} ${fixed(refValue)}` }] : [],
    yFormat: (v) => num(v),
    width: widthFor(0.5),
    height: 240,
    span: 2,
    empty: "Not enough labelled predictions per time slice to draw a trend.",
  });
}
