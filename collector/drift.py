"""Per-column drift between a reference profile and the current window's sketch: pure functions, no I/O.

    thresholds = DriftThresholds(psi_warning=0.1, psi_drift=0.25)
    features = profile_drift(profile, inputs=window.inputs, outputs=window.outputs, thresholds=thresholds)

`column_drift` returns the per-feature object of `GET /api/v1/models/{m}/drift` (DESIGN.md, "JSON API"):

    {"name", "role", "kind", "count", "missing_rate", "nan_rate", "inf_rate", "type_mismatch_rate",
     "out_of_range_rate", "psi", "ks": {"statistic", "p_value"}, "js", "wasserstein",
     "chi2": {"statistic", "p_value"}, "new_categories", "new_category_rate",   # categorical columns only
     "status"}

- Rates of missing (None), NaN, ±inf and type mismatches are shares of `count` (every value, missing included);
  a type mismatch is a string/bool in a numeric column, a finite or infinite number in a categorical one, or a
  value of neither kind. `out_of_range_rate`: share of the current *finite* values outside
  [reference min, reference max] (numeric only).
- Distances compare the values of the column's kind only: finite numbers (numeric), strings/bools (categorical).
  `psi` is PSI on outputs and CSI on inputs (the same index). `wasserstein` is W1 divided by the reference
  population std; when that std is 0 (a constant reference) it is 0.0 if W1 is 0, else None: no scale exists,
  and PSI (whose first bin then holds everything below the constant) already reports the change.
- Categorical bins: one per reference category plus "other"; `new_categories` lists up to `MAX_NEW_CATEGORIES`
  current categories absent from the reference (most frequent first), `new_category_rate` is the share of
  current values outside the reference's kept categories. When the reference was capped (`truncated`), a
  "new" category may be a rare reference one.
- Anything that cannot be computed (no current values of the kind, no reference values, categorical KS and
  Wasserstein) is None; an absent or empty current column gives count 0, rates None and status "ok".

Status (`DriftThresholds.status`): PSI bands only — psi > psi_drift: "drift"; psi >= psi_warning: "warning";
else "ok". p-values are reported but never alarm (at production volumes KS/chi-square reject everything,
alibi-detect#646). Fewer than `min_count` current values, or no PSI, gives "ok": at n = 30 values and 10 bins
the expected PSI of an unchanged distribution is already about 0.3 (~ (bins - 1) / n).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from datasketches import frequent_items_error_type

from collector.distances import StepCDF, chi2_homogeneity, js_distance, ks_and_wasserstein, ks_p_value, psi
from collector.reference import ColumnReference, ColumnSketchLike, NumericSummary, ReferenceProfile

__all__ = ["MAX_NEW_CATEGORIES", "DriftThresholds", "Status", "column_drift", "kll_cdf", "profile_drift"]

Status = Literal["ok", "warning", "drift"]
MAX_NEW_CATEGORIES = 20


@dataclass(frozen=True, slots=True)
class DriftThresholds:
    """PSI bands (DESIGN defaults 0.1 / 0.25) and the smallest current sample that may raise a status."""

    psi_warning: float = 0.1
    psi_drift: float = 0.25
    min_count: int = 100

    def __post_init__(self) -> None:
        if not 0 <= self.psi_warning <= self.psi_drift:
            raise ValueError(f"need 0 <= psi_warning <= psi_drift, got {self.psi_warning} and {self.psi_drift}")
        if self.min_count < 0:
            raise ValueError(f"min_count must be >= 0, got {self.min_count}")

    def status(self, psi_value: float | None, n: int) -> Status:
        if psi_value is None or n < self.min_count:
            return "ok"
        if psi_value > self.psi_drift:
            return "drift"
        return "warning" if psi_value >= self.psi_warning else "ok"


DEFAULT_THRESHOLDS = DriftThresholds()


def kll_cdf(kll: Any) -> StepCDF:
    """The step CDF a KLL sketch estimates: its retained items with their weights (the sketch's sorted view)."""
    retained = np.asarray(list(kll), dtype=np.float64).reshape(-1, 2)
    return StepCDF.from_weighted(retained[:, 0], retained[:, 1], n=int(kll.n))


@functools.lru_cache(maxsize=256)
def _reference_cdf(summary: NumericSummary) -> StepCDF:
    """A reference column's CDF, built once per summary (readers keep decoded references, so this hits by identity)."""
    return summary.cdf()


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _no_distances(kind: str) -> dict[str, Any]:
    out: dict[str, Any] = {"out_of_range_rate": None, "psi": None, "ks": {"statistic": None, "p_value": None}}
    out |= {"js": None, "wasserstein": None}
    if kind == "categorical":
        out |= {"chi2": {"statistic": None, "p_value": None}, "new_categories": [], "new_category_rate": None}
    return out


def _numeric(ref: ColumnReference, cur: ColumnSketchLike) -> tuple[dict[str, Any], int]:
    summary, kll = ref.numeric, cur.kll
    n = int(kll.n)
    out = _no_distances("numeric")
    if summary is None or n == 0:
        return out, n
    if cur.min >= summary.min and cur.max <= summary.max:
        out["out_of_range_rate"] = 0.0
    else:
        below = kll.get_rank(summary.min, False)
        above = 1.0 - kll.get_rank(summary.max, True)
        out["out_of_range_rate"] = float(below + above)
    expected = np.asarray(summary.proportions)
    actual = np.asarray(kll.get_pmf(list(summary.edges), False), dtype=np.float64)
    statistic, w1 = ks_and_wasserstein(_reference_cdf(summary), kll_cdf(kll))
    if summary.std > 0:
        normalised: float | None = w1 / summary.std
    else:
        normalised = 0.0 if w1 == 0 else None
    out |= {
        "psi": psi(expected, actual),
        "ks": {"statistic": statistic, "p_value": ks_p_value(statistic, summary.n, n)},
        "js": js_distance(expected, actual),
        "wasserstein": normalised,
    }
    return out, n


def _categorical(ref: ColumnReference, cur: ColumnSketchLike) -> tuple[dict[str, Any], int]:
    summary, items = ref.categorical, cur.items
    n = 0 if items.is_empty() else int(items.total_weight)
    out = _no_distances("categorical")
    if n == 0:
        return out, n
    known = set() if summary is None else set(summary.categories)
    rows = items.get_frequent_items(frequent_items_error_type.NO_FALSE_POSITIVES)
    out["new_categories"] = [str(row[0]) for row in rows if row[0] not in known][:MAX_NEW_CATEGORIES]
    if summary is None:
        out["new_category_rate"] = 1.0
        return out, n
    # Frequent-items estimates may overshoot in estimation mode: clip "other" at 0 and renormalise.
    counts = [float(items.get_estimate(category)) for category in summary.categories]
    counts.append(max(n - sum(counts), 0.0))
    actual = np.asarray(counts) / sum(counts)
    reference_counts = summary.bin_counts()
    expected = np.asarray(reference_counts, dtype=np.float64) / summary.n
    chi2 = chi2_homogeneity(reference_counts, counts)
    out |= {
        "psi": psi(expected, actual),
        "js": js_distance(expected, actual),
        "chi2": {"statistic": chi2[0], "p_value": chi2[1]} if chi2 else {"statistic": None, "p_value": None},
        "new_category_rate": float(actual[-1]),
    }
    return out, n


def column_drift(
    ref: ColumnReference, cur: ColumnSketchLike | None, thresholds: DriftThresholds = DEFAULT_THRESHOLDS
) -> dict[str, Any]:
    """The drift object of one column; `cur=None` (the column never arrived) counts as empty. Never raises on
    data: empty, all-missing or wrongly typed current columns give None metrics and status "ok"."""
    count = 0 if cur is None else int(cur.count)
    answer: dict[str, Any] = {"name": ref.name, "role": ref.role, "kind": ref.kind, "count": count}
    if cur is None or count == 0:
        answer |= {"missing_rate": None, "nan_rate": None, "inf_rate": None, "type_mismatch_rate": None}
    else:
        other_kind = {"numeric": cur.n_string + cur.n_bool, "categorical": cur.n_numeric + cur.inf, "empty": 0}
        mismatched = other_kind[ref.kind] + cur.n_other
        answer |= {
            "missing_rate": _rate(cur.missing, count),
            "nan_rate": _rate(cur.nan, count),
            "inf_rate": _rate(cur.inf, count),
            "type_mismatch_rate": _rate(mismatched, count),
        }
    n = 0
    if cur is None or count == 0 or ref.kind == "empty":
        distances = _no_distances(ref.kind)
    elif ref.kind == "numeric":
        distances, n = _numeric(ref, cur)
    else:
        distances, n = _categorical(ref, cur)
    answer |= distances
    answer["status"] = thresholds.status(answer["psi"], n)
    return {key: _plain(value) for key, value in answer.items()}


def profile_drift(
    profile: ReferenceProfile,
    inputs: Mapping[str, ColumnSketchLike],
    outputs: Mapping[str, ColumnSketchLike] | None = None,
    thresholds: DriftThresholds = DEFAULT_THRESHOLDS,
) -> list[dict[str, Any]]:
    """`column_drift` for every column of the profile, in profile order (inputs and outputs as they were given).

    Current columns the reference does not know are not reported here.
    """
    groups = {"input": inputs, "output": outputs or {}}
    return [column_drift(column, groups[column.role].get(column.name), thresholds) for column in profile.columns]


def _plain(value: Any) -> Any:
    """A non-finite float (W1 overflowing on values near 1e308) becomes None, so the answer is strict JSON."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
