"""The facade: states by task, blobs of either kind, merges of many windows, metrics by state type."""

from __future__ import annotations

import json

import numpy as np
import pytest

from collector.performance import merge_states, performance_metrics, state_from_bytes, zero_state
from collector.performance_classification import ClassificationState, PerformanceConfig
from collector.performance_regression import RegressionState


def test_zero_state_by_task() -> None:
    assert isinstance(zero_state("regression"), RegressionState)
    binary = zero_state("binary_classification", PerformanceConfig(score_bins=1000))
    assert isinstance(binary, ClassificationState) and binary.config.score_bins == 1000
    assert zero_state("multiclass_classification").task == "multiclass_classification"  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="task"):
        zero_state("ranking")


def test_day_of_windows_round_trips_and_merges() -> None:
    rng = np.random.default_rng(0)
    blobs, everything = [], zero_state("binary_classification")
    for _ in range(24):
        y = (rng.random(50) < 0.4).astype(int)
        s = np.clip(rng.normal(0.3 + 0.4 * y, 0.2), 0, 1)
        window = zero_state("binary_classification")
        window.update(y, labels=(s >= 0.5).astype(int), scores=s)
        everything.update(y, labels=(s >= 0.5).astype(int), scores=s)
        blobs.append(window.to_bytes())
    total = merge_states(state_from_bytes(b) for b in blobs)
    assert isinstance(total, ClassificationState) and isinstance(everything, ClassificationState)
    assert total.pairs == everything.pairs
    got, want = performance_metrics(total), performance_metrics(everything)
    assert got["confusion_matrix"] == want["confusion_matrix"] and got["count"] == 24 * 50
    assert got["auc_roc"] == pytest.approx(want["auc_roc"], rel=1e-12)
    assert got["log_loss"] == pytest.approx(want["log_loss"], rel=1e-12)
    assert merge_states([]) is None


def test_merge_states_leaves_its_inputs_alone_and_refuses_mixed_tasks() -> None:
    a = zero_state("regression")
    a.update([1.0, 2.0], predictions=[1.5, 2.5])
    before = a.to_bytes()
    total = merge_states([a, a])
    assert total is not None and total.count == 4 and a.to_bytes() == before
    assert performance_metrics(total)["mae"] == 0.5
    with pytest.raises(ValueError, match="cannot merge"):
        merge_states([a, zero_state("binary_classification")])
    with pytest.raises(ValueError, match="cannot merge"):
        merge_states([zero_state("binary_classification"), zero_state("multiclass_classification")])


def test_state_from_bytes_dispatches_and_refuses_garbage() -> None:
    r, c = zero_state("regression"), zero_state("multiclass_classification")
    assert isinstance(state_from_bytes(r.to_bytes()), RegressionState)
    assert isinstance(state_from_bytes(c.to_bytes()), ClassificationState)
    for data in (b"", b"\x01", b"\x01\x03" + bytes(10), b"\x07\x01" + bytes(10), bytes(100)):
        with pytest.raises(ValueError):
            state_from_bytes(data)
    with pytest.raises(ValueError, match="kind"):
        RegressionState.from_bytes(c.to_bytes())


def test_metrics_are_plain_json() -> None:
    rng = np.random.default_rng(1)
    binary = zero_state("binary_classification")
    y = rng.integers(0, 2, 300)
    s = rng.random(300)
    binary.update(y, labels=(s >= 0.5).astype(int), scores=s)
    multi = zero_state("multiclass_classification")
    multi.update(rng.integers(0, 4, 300), labels=rng.integers(0, 4, 300))
    reg = zero_state("regression")
    reg.update(rng.normal(size=300), predictions=rng.normal(size=300))
    for state in (binary, multi, reg, zero_state("binary_classification")):
        m = performance_metrics(state)
        assert json.loads(json.dumps(m, allow_nan=False)) == m  # builtins only: no numpy scalars, no NaN
