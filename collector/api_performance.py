"""GET /api/v1/models/{model}/performance: model performance from joined labels (DESIGN.md's JSON API).

    GET /api/v1/models/{model}/performance?version=&start=&end=&positive_label=&step=
    {"model", "version", "task", "start", "end", "labeled", "coverage", "unmatched": {...},
     "metrics": {...}, "reference": {"task", "rows", "metrics"}?, "series": [...]?}

Performance: `metrics` is collector.performance's answer for every label joined to a prediction made in
[start, end) (a pair belongs to its prediction's window), merged over the windows. `labeled` counts those
pairs, `coverage` = labeled / sampled predictions held in the range; `unmatched` = {"predictions": held and
still waiting, "expired": dropped unlabeled after the TTL, "actuals_pending", "actuals_expired",
"actuals_duplicates", "actuals_conflicts"} (the actuals counters are since the store began, for this version
plus actuals sent without a version). `reference`: the reference's own performance when it was uploaded
with actuals. `positive_label` picks the positive class of a binary model (default: 1, or the greater of two
string labels). Without labels `metrics` is the empty state's (count 0, metrics None); `task` is None and
`metrics` null only when the version has never sent an output to join.

`step` (30s, 10m, 1h, 1d; at least the window width) adds `series`: one point per step-wide bucket holding
data, {"start", "end", "labeled", "metrics": {the scalar metrics: no matrix, no curves}}.
`performance_answer` and `reference_performance` serve in-process readers too (alert rules, reports).
"""

from __future__ import annotations

import math
from typing import Any

from starlette.requests import Request

from collector.api_common import ApiError, endpoint, model_param, resolve_version, rfc3339, time_range
from collector.api_timeseries import MAX_POINTS, parse_step
from collector.performance import PerformanceState, performance_metrics, zero_state
from collector.performance_labels import Label, label_key, sort_key
from collector.reference_performance import reference_metrics
from collector.service import CollectorService
from collector.state_kinds import PERFORMANCE
from instrument import semconv

__all__ = ["parse_step_param", "performance", "performance_answer", "reference_performance"]

_SCALARS = (
    *("count", "accuracy", "precision", "recall", "f1", "auc_roc", "gini", "ks", "log_loss", "brier"),
    *("rmse", "mae", "mape", "r2", "mean_error"),
)


def performance_answer(
    service: CollectorService,
    model: str,
    version: str,
    start_s: float,
    end_s: float,
    positive_label: str | None = None,
    step_s: int | None = None,
) -> dict[str, Any]:
    """The answer of GET .../performance as a dict (for in-process readers too: alert rules, reports).
    Raises ApiError(400) for a `positive_label` that is none of the labels seen."""
    labels = service.labels
    labels.write_predictions()  # what is buffered counts now
    labels.emit_states()
    # from the store's rollups: a day is ~20 blobs to decode, not 1,440 (merges are exact, see collector.performance)
    total = next((state for _, state in service.states.read_merged(PERFORMANCE, model, version, start_s, end_s)), None)
    task = labels.tasks(model).get(version)
    if total is None and task in semconv.TASKS:
        total = zero_state(task)
    positive = _positive(total, positive_label)
    width = service.settings.window_s
    counts = labels.store.window_counts(model, version, start_s, end_s, width)
    held = sum(c.predictions for c in counts)
    labeled = sum(c.matched for c in counts)
    expired = sum(c.expired for c in counts)
    actuals = labels.store.actual_counts(model)
    mine = [actuals.get(version) or {}, actuals.get(None) or {}]
    answer: dict[str, Any] = {
        "model": model,
        "version": version,
        "task": _task(total) if total is not None else task,
        "start": rfc3339(start_s),
        "end": rfc3339(end_s),
        "labeled": labeled,
        "coverage": labeled / held if held else None,
        "unmatched": {
            "predictions": held - labeled - expired,
            "expired": expired,
            **{
                f"actuals_{name}": sum(c.get(name, 0) for c in mine)
                for name in ("pending", "expired", "duplicates", "conflicts")
            },
        },
        "metrics": None if total is None else performance_metrics(total, positive_label=positive),
    }
    found = _reference(service, model, version, positive)
    if found is not None:
        answer["reference"] = found
    if step_s is not None:
        by_bucket = service.states.read_merged(PERFORMANCE, model, version, start_s, end_s, step_s)
        per_bucket: dict[int, int] = {}
        for c in counts:
            bucket = c.window_s // step_s * step_s
            per_bucket[bucket] = per_bucket.get(bucket, 0) + c.matched
        answer["series"] = [
            {
                "start": rfc3339(bucket),
                "end": rfc3339(bucket + step_s),
                "labeled": per_bucket.get(bucket, 0),
                "metrics": _scalars(performance_metrics(merged, positive_label=positive)),
            }
            for bucket, merged in by_bucket
        ]
    return answer


def reference_performance(service: CollectorService, model: str, version: str) -> dict[str, Any] | None:
    """The reference's performance metrics (the shape of the answer's `metrics`), None without labeled reference."""
    found = _reference(service, model, version, None)
    return None if found is None else found["metrics"]


def _reference(service: CollectorService, model: str, version: str, positive: Label | None) -> dict[str, Any] | None:
    try:
        reference = service.reference(model, version)
        return None if reference is None else reference_metrics(reference, positive_label=positive)
    except ValueError:  # an unreadable stored reference: GET .../reference says so; performance still answers
        return None


def _task(state: PerformanceState) -> str:
    return getattr(state, "task", "regression")


def _scalars(metrics: dict[str, Any]) -> dict[str, Any]:
    return {key: metrics[key] for key in _SCALARS if key in metrics}


def _positive(state: PerformanceState | None, text: str | None) -> Label | None:
    """The label named by ?positive_label=: a label of the state as written, else the number it spells."""
    if text is None or text == "":
        return None
    known = sorted(getattr(state, "labels", {}) or (), key=sort_key)
    if text in known:
        return text
    try:
        number = label_key(float(text))
    except ValueError:
        number = None
    if number is not None and (number in known or not known):
        return number
    if not known:
        return text
    raise ApiError(400, f"positive_label={text!r} is none of the labels seen: {known[:20]}")


def parse_step_param(request: Request, service: CollectorService, start: float, end: float) -> int | None:
    """`step` of the query (None without one): 400 below the window width or past MAX_POINTS points."""
    text = request.query_params.get("step")
    if not text:
        return None
    step = parse_step(text, service.settings.window_s)
    if (end - start) / step > MAX_POINTS:
        raise ApiError(400, f"{math.ceil((end - start) / step)} points is more than {MAX_POINTS}: use a larger step")
    return step


@endpoint
def performance(request: Request, service: CollectorService) -> dict[str, Any]:
    model = model_param(request)
    query = request.query_params
    start, end = time_range(query)
    version, _ = resolve_version(service, model, query.get("version"))
    step = parse_step_param(request, service, start, end)
    return performance_answer(service, model, version, start, end, query.get("positive_label"), step)
