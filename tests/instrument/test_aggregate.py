"""The SDK's own call aggregates against numpy: bucket counts, sums and extremes across several folds."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from instrument import semconv
from instrument._aggregate import _FOLD, CallAggregates


class _Monitor:
    """What CallAggregates reads of a ModelMonitor: one attribute dict per outcome, the same object each time."""

    def __init__(self) -> None:
        self._attrs: dict[str | None, dict[str, Any]] = {}

    def metric_attributes(self, error_type: str | None) -> dict[str, Any]:
        return self._attrs.setdefault(error_type, {"outcome": "error" if error_type else "ok"})


def _by_outcome(metrics: list[Any], name: str) -> dict[str, Any]:
    (metric,) = [m for m in metrics if m.name == name]
    return {p.attributes["outcome"]: p for p in metric.data.data_points}


@pytest.mark.parametrize("calls", [1, _FOLD - 1, _FOLD, 3 * _FOLD + 17])
@pytest.mark.parametrize("mixed", [True, False])  # False: slices of one model and outcome, taken whole
def test_aggregates_match_numpy_across_folds(calls: int, mixed: bool) -> None:
    rng = np.random.default_rng(calls)
    bounds = np.array(semconv.DURATION_BUCKETS_S)
    batch_bounds = np.array(semconv.BATCH_BUCKETS, dtype=float)
    durations = rng.lognormal(mean=-6, sigma=2, size=calls)
    on_bounds = rng.random(calls) < 0.1  # values exactly on a bound belong to the bucket below it
    durations[on_bounds] = rng.choice(bounds, size=int(on_bounds.sum()))
    rows = rng.integers(1, 3000, size=calls)
    failed = rng.random(calls) < (0.2 if mixed else 0.0)
    timed = rng.random(calls) < 0.9  # a call without a duration (ModelMonitor.log without latency_s)

    aggregates = CallAggregates(semconv.DURATION_BUCKETS_S, semconv.BATCH_BUCKETS)
    monitor = _Monitor()
    batch = [
        (monitor, float(d) if t else None, "ValueError" if f else None, int(n))
        for d, t, f, n in zip(durations, timed, failed, rows, strict=True)
    ]
    for start in range(0, calls, 32):  # as the worker hands them over: slices of 32
        aggregates.add(batch[start : start + 32])
    metrics = aggregates.collect()

    predictions = _by_outcome(metrics, semconv.METRIC_PREDICTIONS)
    durations_out = _by_outcome(metrics, semconv.METRIC_DURATION) if timed.any() else {}
    sizes = _by_outcome(metrics, semconv.METRIC_BATCH_SIZE)
    for outcome, mask in (("ok", ~failed), ("error", failed)):
        if not mask.any():
            assert outcome not in predictions
            continue
        assert predictions[outcome].value == int(rows[mask].sum())
        size = sizes[outcome]
        expected = np.bincount(np.searchsorted(batch_bounds, rows[mask], side="left"), minlength=len(batch_bounds) + 1)
        assert list(size.bucket_counts) == expected.tolist()
        assert (size.count, size.sum, size.min, size.max) == (
            int(mask.sum()),
            float(rows[mask].sum()),
            float(rows[mask].min()),
            float(rows[mask].max()),
        )
        both = mask & timed
        if not both.any():
            assert outcome not in durations_out
            continue
        point = durations_out[outcome]
        values = durations[both]
        expected = np.bincount(np.searchsorted(bounds, values, side="left"), minlength=len(bounds) + 1)
        assert list(point.bucket_counts) == expected.tolist()
        assert point.count == int(both.sum())
        assert point.sum == pytest.approx(values.sum(), rel=1e-12)
        assert (point.min, point.max) == (values.min(), values.max())

    assert aggregates.collect() == []  # deltas: nothing new since the last collect
