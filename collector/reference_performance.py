"""The reference's own performance: built once when a reference is uploaded with actuals, shown beside production's.

    summary = reference_performance(outputs, actuals, task=None)       # at upload: {"task", "state"} or None
    profile = dataclasses.replace(profile, actuals={..., "performance": summary})
    reference_metrics(profile, positive_label=None)                     # {"task", "rows", "metrics"} or None

The reference's outputs are read as the SDK normalises a model's outputs (`label` and `score` for
classification, `prediction` for regression), so its metrics are the ones production's labels get. Without a
task (the model's known one, or `task` in the upload), `prediction` means regression, and `label` means
binary classification when labels and actuals together hold at most two classes, multiclass otherwise.
The state is kept in the reference (base64 of its bytes, a few KB), not its rows.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

from collector.performance import PerformanceState, performance_metrics, state_from_bytes, zero_state
from collector.performance_labels import label_keys
from collector.reference import ReferenceProfile
from instrument import semconv

__all__ = ["reference_performance", "reference_metrics", "reference_state"]


def _task(outputs: Mapping[str, Sequence[Any]], actuals: Sequence[Any], task: str | None) -> str | None:
    if task in semconv.TASKS:
        return task
    labels = outputs.get(semconv.COL_LABEL)
    if labels is not None:
        classes = {key for key in (*label_keys(list(labels)), *label_keys(list(actuals))) if key is not None}
        return "binary_classification" if len(classes) <= 2 else "multiclass_classification"
    if semconv.COL_PREDICTION in outputs:
        return "regression"
    return None


def reference_performance(
    outputs: Mapping[str, Sequence[Any]], actuals: Sequence[Any], task: str | None = None
) -> dict[str, Any] | None:
    """{"task", "state"} for a reference's outputs and actuals; None when the outputs hold no column to score
    (neither `label` nor `prediction`) or do not fit the task."""
    chosen = _task(outputs, actuals, task)
    if chosen is None:
        return None
    state = zero_state(chosen)
    if chosen == "regression":
        predictions = outputs.get(semconv.COL_PREDICTION)
        if predictions is None:
            return None
        state.update(list(actuals), predictions=list(predictions))
    else:
        labels = outputs.get(semconv.COL_LABEL)
        if labels is None:
            return None
        scores = outputs.get(semconv.COL_SCORE)
        state.update(list(actuals), labels=list(labels), scores=None if scores is None else list(scores))
    return {"task": chosen, "state": base64.b64encode(state.to_bytes()).decode("ascii")}


def reference_state(profile: ReferenceProfile) -> PerformanceState | None:
    """The performance state stored with a reference (None without actuals or for one uploaded before it was kept).
    Raises ValueError for a stored state that cannot be read."""
    summary = (profile.actuals or {}).get("performance")
    if not isinstance(summary, dict) or not isinstance(summary.get("state"), str):
        return None
    return state_from_bytes(base64.b64decode(summary["state"], validate=True))


def reference_metrics(profile: ReferenceProfile, positive_label: Any = None) -> dict[str, Any] | None:
    """The `reference` object of GET .../performance: {"task", "rows", "metrics"}, None without a state. `rows`
    counts every reference row, those skipped for a missing actual or output included."""
    state = reference_state(profile)
    if state is None:
        return None
    metrics = performance_metrics(state, positive_label=positive_label)
    task = "regression" if "rmse" in metrics else metrics["task"]
    skipped = metrics["skipped"]
    rows = (
        metrics["count"] + skipped["missing_actual"] + skipped.get("missing_label", skipped.get("missing_prediction"))
    )
    return {"task": task, "rows": rows, "metrics": metrics}
