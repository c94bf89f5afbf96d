"""Regression performance: exact running sums of the errors, mergeable across windows and collectors.

    state = RegressionState.zero()
    state.update(actuals=[3.0, 0.0, 5.5], predictions=[2.5, 0.1, 6.0])
    state.merge(RegressionState.from_bytes(blob))
    regression_metrics(state)   # {"count", "rmse", "mae", "mape", "r2", "mean_error", "mape_count", "skipped"}

error = prediction - actual (mean_error > 0: the model over-predicts). Sums are exact up to float64 rounding;
the actuals' mean and sum of squared deviations (for R^2) merge with Chan et al.'s parallel update, which
stays accurate where sum(y^2) - n * mean^2 would cancel.

- rmse, mae, mean_error, r2 as scikit-learn computes them; r2 is None below two rows or when the actuals are
  constant (undefined: scikit-learn's force_finite=False gives nan or -inf there, its default 1.0 or 0.0).
- mape is a fraction (0.25 = 25%), like scikit-learn's, but over rows with actual != 0 only: scikit-learn
  divides by max(|actual|, 2.2e-16), so one zero actual would add ~4.5e15 to its mean. Those rows are counted
  in skipped["zero_actual"]; `mape_count` is the rows mape is the mean of; None when there are none.
- A row whose actual or prediction is None, NaN, infinite or not a number (bool is not a number) is skipped
  and counted in skipped["missing_actual"] (checked first) or skipped["missing_prediction"].
- Empty: count 0 and every metric None.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from collector.performance_codec import KIND_REGRESSION, Reader, pack, unpack

__all__ = ["RegressionState", "regression_metrics"]

_BODY = struct.Struct("<4Q6d")  # n, missing_actual, missing_prediction, zero_actual, sums, mean_y, m2_y
_NUMERIC = {float, int}
_MAX_COUNT = 1 << 62
_FEW = 16


class RegressionState:
    __slots__ = (
        *("n", "missing_actual", "missing_prediction", "zero_actual"),
        *("sum_error", "sum_abs_error", "sum_sq_error", "sum_ape", "mean_y", "m2_y"),
    )

    def __init__(self) -> None:
        self.n = self.missing_actual = self.missing_prediction = self.zero_actual = 0
        self.sum_error = self.sum_abs_error = self.sum_sq_error = 0.0
        self.sum_ape = 0.0  # sum of |error| / |actual| over actual != 0
        self.mean_y = self.m2_y = 0.0

    @classmethod
    def zero(cls) -> RegressionState:
        return cls()

    @property
    def count(self) -> int:
        return self.n

    def update(
        self,
        actuals: Sequence[Any] | np.ndarray[Any, Any],
        labels: Sequence[Any] | np.ndarray[Any, Any] | None = None,
        scores: Sequence[Any] | np.ndarray[Any, Any] | None = None,
        predictions: Sequence[Any] | np.ndarray[Any, Any] | None = None,
    ) -> None:
        """Add matched rows. Raises ValueError (and adds nothing) without predictions or for unequal lengths."""
        if predictions is None or labels is not None or scores is not None:
            raise ValueError("a regression state takes actuals and predictions, not labels or scores")
        if len(predictions) != len(actuals):
            raise ValueError(f"{len(actuals)} actuals and {len(predictions)} predictions: the lengths must be equal")
        for values in (actuals, predictions):
            if isinstance(values, np.ndarray) and values.ndim != 1:
                raise ValueError(f"values are one-dimensional, got shape {values.shape}")
        if len(actuals) <= _FEW:  # a handful of rows (one actual joined at a time): Python beats numpy's cost per call
            self._update_few(actuals, predictions)
            return
        y, ok_y = _numbers(actuals)
        p, ok_p = _numbers(predictions)
        ok = ok_y & ok_p
        n_bad_y = y.size - int(np.count_nonzero(ok_y))
        self.missing_actual += n_bad_y
        self.missing_prediction += y.size - int(np.count_nonzero(ok)) - n_bad_y
        if not ok.all():
            y, p = y[ok], p[ok]
        n = y.size
        if n == 0:
            return
        error = p - y
        abs_error = np.abs(error)
        nonzero = y != 0.0
        self.zero_actual += n - int(np.count_nonzero(nonzero))
        self.sum_error += float(error.sum())
        self.sum_abs_error += float(abs_error.sum())
        self.sum_sq_error += float(error @ error)
        self.sum_ape += float((abs_error[nonzero] / np.abs(y[nonzero])).sum())
        mean_b = float(y.mean())
        d = y - mean_b
        self._add_moments(n, mean_b, float(d @ d))

    def _update_few(self, actuals: Iterable[Any], predictions: Iterable[Any]) -> None:
        ys: list[float] = []
        errors: list[float] = []
        for y_value, p_value in zip(actuals, predictions, strict=True):
            y, p = _number(y_value), _number(p_value)
            if y is None:
                self.missing_actual += 1
            elif p is None:
                self.missing_prediction += 1
            else:
                ys.append(y)
                errors.append(p - y)
        if not ys:
            return
        self.zero_actual += ys.count(0.0)
        self.sum_error += sum(errors)
        self.sum_abs_error += sum(map(abs, errors))
        self.sum_sq_error += sum(e * e for e in errors)
        self.sum_ape += sum(abs(e) / abs(y) for e, y in zip(errors, ys, strict=True) if y != 0.0)
        mean_b = sum(ys) / len(ys)
        self._add_moments(len(ys), mean_b, sum((y - mean_b) ** 2 for y in ys))

    def _add_moments(self, n_b: int, mean_b: float, m2_b: float) -> None:
        n_a = self.n
        n = n_a + n_b
        delta = mean_b - self.mean_y
        self.mean_y += delta * n_b / n
        self.m2_y += m2_b + delta * delta * n_a * n_b / n
        self.n = n

    def merge(self, other: RegressionState) -> None:
        self.missing_actual += other.missing_actual
        self.missing_prediction += other.missing_prediction
        self.zero_actual += other.zero_actual
        self.sum_error += other.sum_error
        self.sum_abs_error += other.sum_abs_error
        self.sum_sq_error += other.sum_sq_error
        self.sum_ape += other.sum_ape
        if other.n:
            self._add_moments(other.n, other.mean_y, other.m2_y)

    def to_bytes(self) -> bytes:
        """Layout v1 (inside `performance_codec`'s envelope): four counts and six float64 sums."""
        return pack(
            KIND_REGRESSION,
            _BODY.pack(
                *(self.n, self.missing_actual, self.missing_prediction, self.zero_actual),
                *(self.sum_error, self.sum_abs_error, self.sum_sq_error, self.sum_ape, self.mean_y, self.m2_y),
            ),
        )

    @classmethod
    def from_bytes(cls, data: bytes | memoryview) -> RegressionState:
        """Raises ValueError for anything that is not a state written by this or an older version."""
        try:
            return cls._read(unpack(KIND_REGRESSION, data))
        except ValueError as exc:
            raise ValueError(f"invalid RegressionState bytes: {exc}") from exc
        except Exception as exc:  # pragma: no cover -- defensive: the reader raises ValueError for every bound
            raise ValueError(f"invalid RegressionState bytes: {type(exc).__name__}: {exc}") from exc

    @classmethod
    def _read(cls, body: Reader) -> RegressionState:
        values = body.take(_BODY)
        body.done()
        self = cls()
        (self.n, self.missing_actual, self.missing_prediction, self.zero_actual) = values[:4]
        (self.sum_error, self.sum_abs_error, self.sum_sq_error, self.sum_ape, self.mean_y, self.m2_y) = values[4:]
        if any(x >= _MAX_COUNT for x in values[:4]) or self.zero_actual > self.n:
            raise ValueError("counts out of range")
        if min(self.sum_abs_error, self.sum_sq_error, self.sum_ape, self.m2_y) < 0 or any(map(math.isnan, values[4:])):
            raise ValueError("negative or NaN sums")  # inf is allowed: a sum that overflowed stays inf
        return self

    def __repr__(self) -> str:
        return f"RegressionState(count={self.n}, mean_actual={self.mean_y:.6g})"


def _number(value: Any) -> float | None:
    """A finite number as a float, else None (bool is not a number here, nor is an int past float range)."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.integer | np.floating):
        return None
    try:
        x = float(value)
    except OverflowError:
        return None
    return x if math.isfinite(x) else None


def _numbers(values: Sequence[Any] | np.ndarray[Any, Any]) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """(float64 values, mask of the finite numbers)."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "fiu":
        a = values.astype(np.float64)
        return a, np.isfinite(a)
    seq = values.tolist() if isinstance(values, np.ndarray) else values
    if set(map(type, seq)) <= _NUMERIC:
        try:
            a = np.array(seq, dtype=np.float64)
            return a, np.isfinite(a)
        except OverflowError:
            pass
    a = np.array([math.nan if x is None else x for x in map(_number, seq)], dtype=np.float64)
    return a, np.isfinite(a)


def regression_metrics(state: RegressionState) -> dict[str, Any]:
    """The performance metrics of `state` (see the module docstring)."""
    n = state.n
    scored = n - state.zero_actual
    out: dict[str, Any] = {
        "count": n,
        "rmse": math.sqrt(state.sum_sq_error / n) if n else None,
        "mae": state.sum_abs_error / n if n else None,
        "mape": state.sum_ape / scored if scored else None,
        "r2": 1.0 - state.sum_sq_error / state.m2_y if n >= 2 and state.m2_y > 0 else None,
        "mean_error": state.sum_error / n if n else None,
        "mape_count": scored,
        "skipped": {
            "missing_actual": state.missing_actual,
            "missing_prediction": state.missing_prediction,
            "zero_actual": state.zero_actual,
        },
    }
    return out
