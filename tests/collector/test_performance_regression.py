"""RegressionState / regression_metrics against scikit-learn on the same rows.

Data: load_diabetes with a LinearRegression fitted on a third of the rows, predicted on all, split into uneven
shuffled windows; life cycle update per window -> bytes -> merge -> metrics. Tolerance: 1e-9 relative for every
metric (running float64 sums in another order than scikit-learn's; observed ~1e-15). MAPE equals scikit-learn's
on the rows with actual != 0 (scikit-learn divides by max(|y|, eps) and so includes zeros at ~1e16 weight).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression

from collector.performance_regression import RegressionState, regression_metrics

REL = 1e-9


def windows(n: int, parts: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    cuts = np.sort(rng.choice(np.arange(1, n), size=parts - 1, replace=False))
    return np.split(rng.permutation(n), cuts)


def roundtrip(state: RegressionState) -> RegressionState:
    return RegressionState.from_bytes(state.to_bytes())


def merged(y: Any, p: Any, parts: list[np.ndarray]) -> RegressionState:
    total = RegressionState.zero()
    for rows in parts:
        window = RegressionState.zero()
        window.update(y[rows].tolist(), predictions=p[rows].tolist())
        total.merge(roundtrip(window))
    return roundtrip(total)


def assert_matches_sklearn(m: dict[str, Any], y: np.ndarray, p: np.ndarray) -> None:
    assert m["count"] == y.size
    assert m["rmse"] == pytest.approx(math.sqrt(skm.mean_squared_error(y, p)), rel=REL)
    assert m["mae"] == pytest.approx(skm.mean_absolute_error(y, p), rel=REL)
    assert m["r2"] == pytest.approx(skm.r2_score(y, p), rel=REL)
    assert m["mean_error"] == pytest.approx(float(np.mean(p - y)), rel=REL)
    nz = y != 0
    assert m["mape"] == pytest.approx(skm.mean_absolute_percentage_error(y[nz], p[nz]), rel=REL)
    assert m["mape_count"] == int(nz.sum())


@pytest.fixture(scope="module")
def diabetes() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_diabetes(return_X_y=True)
    return y, LinearRegression().fit(x[::3], y[::3]).predict(x)


def test_metrics_equal_sklearn_after_windows_merge_and_bytes(diabetes: Any) -> None:
    y, p = diabetes
    state = merged(y, p, windows(y.size, 11, seed=1))
    m = regression_metrics(state)
    assert_matches_sklearn(m, y, p)
    whole = RegressionState.zero()
    whole.update(y, predictions=p)
    assert (state.n, state.zero_actual) == (whole.n, whole.zero_actual)
    for key, value in regression_metrics(whole).items():
        assert m[key] == (pytest.approx(value, rel=REL) if isinstance(value, float) else value)


def test_zero_actuals_are_left_out_of_mape_and_counted(diabetes: Any) -> None:
    y, p = diabetes
    y = y.copy()
    y[::7] = 0.0
    state = merged(y, p, windows(y.size, 4, seed=2))
    m = regression_metrics(state)
    assert m["skipped"]["zero_actual"] == len(y[::7])
    assert_matches_sklearn(m, y, p)  # every other metric keeps the zero rows
    only_zeros = RegressionState.zero()
    only_zeros.update([0.0, 0], predictions=[1.0, 2.0])
    assert regression_metrics(only_zeros)["mape"] is None
    assert regression_metrics(only_zeros)["mae"] == 1.5


def test_missing_values_are_skipped_and_counted() -> None:
    y: list[Any] = [1.0, None, 3.0, float("nan"), 5.0, 6.0, "7", 8.0, True]
    p: list[Any] = [1.5, 2.0, None, 4.0, float("inf"), 6.5, 7.0, 7.0, 1.0]
    state = RegressionState.zero()
    state.update(y, predictions=p)
    m = regression_metrics(state)
    assert m["skipped"] == {"missing_actual": 4, "missing_prediction": 2, "zero_actual": 0}
    assert_matches_sklearn(m, np.array([1.0, 6.0, 8.0]), np.array([1.5, 6.5, 7.0]))
    state.update(np.array([2, 4]), predictions=np.array([2.5, 3.5], dtype=np.float32))
    assert regression_metrics(state)["count"] == 5


def test_r2_undefined_for_constant_or_single_actuals() -> None:
    state = RegressionState.zero()
    state.update([2.0], predictions=[3.0])
    assert regression_metrics(state)["r2"] is None
    state.update([2.0, 2.0], predictions=[2.0, 1.0])
    with np.errstate(divide="ignore"):
        assert not math.isfinite(skm.r2_score([2.0] * 3, [3.0, 2.0, 1.0], force_finite=False))
    assert regression_metrics(state)["r2"] is None
    assert regression_metrics(state)["rmse"] == pytest.approx(math.sqrt(2 / 3))


def test_r2_is_stable_for_large_offsets() -> None:
    # y = 1e9 + small noise: sum(y^2) - n * mean^2 would lose every digit; Chan's merge keeps ~1e-7 relative
    rng = np.random.default_rng(3)
    y = 1e9 + rng.normal(0, 1, 5000)
    p = y + rng.normal(0, 0.3, 5000)
    state = merged(y, p, windows(y.size, 50, seed=4))
    assert regression_metrics(state)["r2"] == pytest.approx(skm.r2_score(y, p), rel=1e-6)


def test_empty_state() -> None:
    m = regression_metrics(roundtrip(RegressionState.zero()))
    assert m["count"] == 0
    assert all(m[k] is None for k in ("rmse", "mae", "mape", "r2", "mean_error"))


def test_update_validates_before_changing_anything() -> None:
    state = RegressionState.zero()
    with pytest.raises(ValueError, match="lengths"):
        state.update([1.0, 2.0], predictions=[1.0])
    with pytest.raises(ValueError, match="not labels"):
        state.update([1.0], labels=[1])
    with pytest.raises(ValueError, match="not labels"):
        state.update([1.0])
    with pytest.raises(ValueError, match="one-dimensional"):
        state.update(np.zeros((2, 2)), predictions=np.zeros((2, 2)))
    assert state.n == 0 and state.missing_actual == 0


def test_from_bytes_refuses_garbage(diabetes: Any) -> None:
    y, p = diabetes
    state = RegressionState.zero()
    state.update(y, predictions=p)
    blob = state.to_bytes()
    assert roundtrip(state).to_bytes() == blob
    bad = [b"", blob[:-1], blob + b"\x00", blob[:1] + b"\x01" + blob[2:], b"\x01\x02" + bytes(40)]
    bad += [blob[:i] for i in range(len(blob))]
    for i in range(len(blob)):
        flipped = bytearray(blob)
        flipped[i] ^= 0x10
        bad.append(bytes(flipped))
    state.zero_actual = state.n + 1
    bad.append(state.to_bytes())
    state.zero_actual, state.sum_abs_error = 0, float("nan")
    bad.append(state.to_bytes())
    for data in bad:
        with pytest.raises(ValueError, match="invalid RegressionState bytes"):
            RegressionState.from_bytes(data)


def test_awkward_inputs() -> None:
    state = RegressionState.zero()
    state.update([None, float("nan")], predictions=[1.0, 2.0])  # nothing usable: only counted
    state.update([10**400, 2, 3], predictions=[1.0, 2, 10**400])  # ints past float range are no values
    state.update(np.array([1.0, "x"], dtype=object), predictions=np.array([1.5, 2.0]))
    assert (state.n, state.missing_actual, state.missing_prediction) == (2, 4, 1)
    state.update([None] * 20, predictions=[1.0] * 20)  # the vectorised path, nothing usable
    state.update([10**400] + [1.0] * 19, predictions=[1.0] * 20)
    assert (state.n, state.missing_actual) == (21, 25)
    assert regression_metrics(state)["mae"] == pytest.approx(0.5 / 21)
    assert "count=21" in repr(state)


def test_small_batches_equal_one_batch(diabetes: Any) -> None:
    y, p = diabetes
    actuals: list[Any] = y.tolist()
    predictions: list[Any] = p.tolist()
    actuals[::13] = [None] * len(actuals[::13])
    actuals[1::17] = ["n/a"] * len(actuals[1::17])
    actuals[2::19] = [0] * len(actuals[2::19])
    predictions[3::23] = [float("inf")] * len(predictions[3::23])
    predictions[4::29] = [True] * len(predictions[4::29])
    batch, small = RegressionState.zero(), RegressionState.zero()
    batch.update(actuals, predictions=predictions)  # vectorised, with the per-value fallback
    for i in range(0, len(actuals), 5):  # the small-batch path
        small.update(actuals[i : i + 5], predictions=np.asarray(predictions[i : i + 5], dtype=object))
    counts = ("n", "missing_actual", "missing_prediction", "zero_actual")
    assert [getattr(small, c) for c in counts] == [getattr(batch, c) for c in counts]
    assert batch.missing_actual == sum(v is None or isinstance(v, str) for v in actuals)
    for key, value in regression_metrics(batch).items():
        assert regression_metrics(small)[key] == (pytest.approx(value, rel=REL) if isinstance(value, float) else value)
