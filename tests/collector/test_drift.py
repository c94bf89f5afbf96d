"""column_drift against exact computations on the same raw rows.

Exact references: PSI with numpy (`np.quantile` edges, `np.histogram` counts, floor 1e-4), KS with
`scipy.stats.ks_2samp(method="asymp")`, JS with `scipy.spatial.distance.jensenshannon(base=2)`, Wasserstein with
`scipy.stats.wasserstein_distance / np.std(reference)`, chi-square with `scipy.stats.chi2_contingency(correction=
False)` on the 2 x K table (reference categories + "other").

Where the numbers must agree exactly (to float rounding): a reference of at most 1,000 finite rows (its atoms
are the rows) against a KLL that has not compacted yet (n <= k), and categoricals with fewer distinct values than
the frequent-items sketch holds.

Where sketch error enters, the tolerances are derived from it, never tuned:
- eps = the KLL's PMF/CDF normalised rank error (`normalized_rank_error(True)`: 1.65 % at k=200, 0.36 % at
  k=1000, 99 % confidence; 300 repeated runs of these tests' data stayed below 0.63 eps).
- each current bin proportion is within eps of the exact one. PSI and the JS divergence are sums of per-bin
  terms that are jointly convex and grow away from a_i = e_i, so their range over that box is exact per bin:
  the max at a corner, the min 0 where the intervals overlap, else at the nearest corners (`_interval`). For
  N(0,1) vs N(0.5,1), 20,000 rows each, exact PSI 0.236: k=200 allows [0.12, 0.44], k=1000 [0.205, 0.271]
  (observed over 200 runs: max error 0.019 at k=200, 0.004 at k=1000); unshifted, exact 0.0004: k=200 allows
  up to 0.034, k=1000 up to 0.003.
- KS statistic: within eps + 0.5/1000 (the reference atoms' own rank error; 0 when it keeps every row); its
  p-value within the asymptotic p-values of D +- that tolerance.
- Wasserstein: |W1 error| <= integral of |F error| <= eps * range(current) + 0.0005 * range(reference),
  divided by the reference std (normal data, k=200: 0.135; heavy-tailed lognormal, k=200: 1.26 — loose, the
  exact-mode tests pin the formula; observed error sd 0.011 and 0.057 respectively).
- out-of-range rate: two rank queries, within 2 eps.
- frequent items (categoricals past 768 distinct values): every estimate lies in [lower, upper] bound with the
  same width (the sketch's offset), so each reference category's share is within offset/n and "other" within
  K * offset/n.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import datasketches as ds
import numpy as np
import pytest
from scipy import special, stats
from scipy.spatial.distance import jensenshannon

from collector.distances import ks_p_value
from collector.drift import DriftThresholds, column_drift, profile_drift
from collector.reference import QUANTILE_ATOMS, ColumnReference
from collector.reference_build import column_reference_from_sketch, column_reference_from_values, reference_from_columns
from collector.sketches import ColumnSketch, SketchConfig

FLOOR = 1e-4
ANY = DriftThresholds(min_count=0)


def sketch_of(values: Any, k: int = 200) -> ColumnSketch:
    sketch = ColumnSketch(SketchConfig(kll_k=k))
    sketch.update(values)
    return sketch


@dataclass
class RawSketch:
    """A current column built straight from datasketches: column_drift needs only this protocol."""

    count: int
    missing: int
    nan: int
    inf: int
    n_numeric: int
    n_string: int
    n_bool: int
    n_other: int
    min: float
    max: float
    mean: float
    m2: float
    kll: Any
    items: Any

    @classmethod
    def of_numbers(cls, values: np.ndarray, k: int) -> RawSketch:
        finite = values[np.isfinite(values)]
        kll = ds.kll_doubles_sketch(k)
        kll.update(finite)
        n_nan, n_inf = int(np.isnan(values).sum()), int(np.isinf(values).sum())
        m2 = float(((finite - finite.mean()) ** 2).sum())
        return cls(values.size, 0, n_nan, n_inf, finite.size, 0, 0, 0, finite.min(), finite.max(), 0.0, m2, kll, None)


# -- exact computations on raw rows ---------------------------------------------------------------------------
def exact_bins(ref: np.ndarray, cur: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    outer = np.r_[min(ref.min(), cur.min()) - 1, edges, max(ref.max(), cur.max()) + 1]
    return np.histogram(ref, outer)[0] / ref.size, np.histogram(cur, outer)[0] / cur.size


def psi_term(e: float, a: float) -> float:
    e, a = max(e, FLOOR), max(a, FLOOR)
    return (a - e) * math.log(a / e)


def js_term(e: float, a: float) -> float:
    m = (e + a) / 2
    return float(special.rel_entr(e, m) + special.rel_entr(a, m)) / (2 * math.log(2))


def exact_psi(e: np.ndarray, a: np.ndarray) -> float:
    e_, a_ = np.maximum(e, FLOOR), np.maximum(a, FLOOR)
    return float(np.sum((a_ - e_) * np.log(a_ / e_)))


def _interval(
    term: Callable[[float, float], float], e: np.ndarray, a: np.ndarray, eps_e: Any, eps_a: Any
) -> tuple[float, float]:
    """Exact range of sum(term(e_i, a_i)) over the box |e_i - e| <= eps_e_i, |a_i - a| <= eps_a_i (see module doc)."""
    eps_e, eps_a = np.broadcast_to(eps_e, e.shape), np.broadcast_to(eps_a, a.shape)
    low = high = 0.0
    for ei, ai, de, da in zip(e, a, eps_e, eps_a, strict=True):
        e_lo, e_hi = max(ei - de, 0.0), min(ei + de, 1.0)
        a_lo, a_hi = max(ai - da, 0.0), min(ai + da, 1.0)
        high += max(term(x, y) for x in (e_lo, e_hi) for y in (a_lo, a_hi))
        if e_hi < a_lo:
            low += term(e_hi, a_lo)
        elif a_hi < e_lo:
            low += term(e_lo, a_hi)
    return low, high


def _bins_interval(e: np.ndarray, a: np.ndarray, eps_e: Any, eps_a: Any) -> dict[str, tuple[float, float]]:
    psi_lo, psi_hi = _interval(psi_term, e, a, eps_e, eps_a)
    js_lo, js_hi = _interval(js_term, e, a, eps_e, eps_a)
    return {"psi": (psi_lo - 1e-12, psi_hi + 1e-12), "js": (math.sqrt(js_lo), math.sqrt(js_hi) + 1e-12)}


NUMERIC_CASES = {
    "normal, shifted by 0.5": lambda rng, n, m: (rng.normal(0, 1, n), rng.normal(0.5, 1, m)),
    "normal, unshifted": lambda rng, n, m: (rng.normal(0, 1, n), rng.normal(0, 1, m)),
    "lognormal, wider": lambda rng, n, m: (rng.lognormal(0, 1, n), rng.lognormal(0.2, 1.2, m)),
    "integers with ties": lambda rng, n, m: (rng.integers(0, 4, n) * 1.0, rng.integers(1, 6, m) * 1.0),
}


# -- numeric: exact where no sketch error enters ----------------------------------------------------------------
@pytest.mark.parametrize("case", sorted(NUMERIC_CASES))
def test_numeric_drift_is_exact_without_sketch_error(case: str) -> None:
    ref, cur = NUMERIC_CASES[case](np.random.default_rng(21), QUANTILE_ATOMS, 1500)
    column = column_reference_from_values("x", "input", ref)
    current = RawSketch.of_numbers(cur, k=2000)  # n <= k: the KLL holds every value
    assert not current.kll.is_estimation_mode()
    got = column_drift(column, current, ANY)

    e, a = exact_bins(ref, cur, np.unique(np.quantile(ref, np.arange(1, 10) / 10)))
    ks = stats.ks_2samp(ref, cur, method="asymp")
    assert got["psi"] == pytest.approx(exact_psi(e, a), rel=1e-9, abs=1e-12)
    assert got["js"] == pytest.approx(float(jensenshannon(e, a, base=2)), rel=1e-9, abs=1e-12)
    assert got["ks"]["statistic"] == pytest.approx(ks.statistic, abs=1e-12)
    assert got["ks"]["p_value"] == pytest.approx(ks.pvalue, rel=1e-9, abs=1e-300)
    assert got["wasserstein"] == pytest.approx(stats.wasserstein_distance(ref, cur) / np.std(ref), rel=1e-9)
    outside = np.mean((cur < ref.min()) | (cur > ref.max()))
    assert got["out_of_range_rate"] == pytest.approx(outside, abs=1e-12)
    assert (got["kind"], got["count"], got["missing_rate"], got["type_mismatch_rate"]) == ("numeric", 1500, 0, 0)


def test_numeric_drift_with_atom_reference_is_within_atom_error() -> None:
    rng = np.random.default_rng(4)
    ref, cur = rng.lognormal(0, 1, 30_000), rng.lognormal(0.1, 1, 1500)
    got = column_drift(column_reference_from_values("x", "input", ref), RawSketch.of_numbers(cur, k=2000), ANY)
    e, a = exact_bins(ref, cur, np.quantile(ref, np.arange(1, 10) / 10))
    assert got["psi"] == pytest.approx(exact_psi(e, a), rel=1e-9)  # bins are exact; only KS/W use the atoms
    tol = 0.5 / QUANTILE_ATOMS
    assert abs(got["ks"]["statistic"] - stats.ks_2samp(ref, cur).statistic) <= tol
    w_tol = tol * np.ptp(ref) / np.std(ref)
    assert abs(got["wasserstein"] - stats.wasserstein_distance(ref, cur) / np.std(ref)) <= w_tol


# -- numeric: within the sketch error ---------------------------------------------------------------------------
@pytest.mark.parametrize("k", [200, 1000])
@pytest.mark.parametrize("case", ["normal, shifted by 0.5", "normal, unshifted", "lognormal, wider"])
def test_numeric_drift_is_within_sketch_error(case: str, k: int) -> None:
    ref, cur = NUMERIC_CASES[case](np.random.default_rng(8), 20_000, 20_000)
    column = column_reference_from_values("x", "input", ref)
    current = sketch_of(cur, k=k)
    eps = current.kll.normalized_rank_error(True)
    got = column_drift(column, current, ANY)

    e, a = exact_bins(ref, cur, np.quantile(ref, np.arange(1, 10) / 10))
    bounds = _bins_interval(e, a, 0.0, eps)
    assert bounds["psi"][0] <= got["psi"] <= bounds["psi"][1]
    assert bounds["psi"][0] <= exact_psi(e, a) <= bounds["psi"][1]
    assert bounds["js"][0] <= got["js"] <= bounds["js"][1]

    ks_tol = eps + 0.5 / QUANTILE_ATOMS
    exact = stats.ks_2samp(ref, cur, method="asymp")
    statistic = got["ks"]["statistic"]
    assert abs(statistic - exact.statistic) <= ks_tol
    assert got["ks"]["p_value"] == ks_p_value(statistic, ref.size, cur.size)
    assert ks_p_value(statistic + ks_tol, ref.size, cur.size) <= exact.pvalue
    assert exact.pvalue <= ks_p_value(max(statistic - ks_tol, 0.0), ref.size, cur.size)

    w_tol = (eps * np.ptp(cur) + 0.5 / QUANTILE_ATOMS * np.ptp(ref)) / np.std(ref)
    assert abs(got["wasserstein"] - stats.wasserstein_distance(ref, cur) / np.std(ref)) <= w_tol
    outside = np.mean((cur < ref.min()) | (cur > ref.max()))
    assert abs(got["out_of_range_rate"] - outside) <= 2 * eps


@pytest.mark.parametrize("k", [200, 1000])
def test_drift_against_a_reference_from_sketches(k: int) -> None:
    """Both sides sketched: compared with the exact PSI over the reference sketch's own edges."""
    rng = np.random.default_rng(9)
    ref, cur = rng.normal(0, 1, 50_000), rng.normal(0.3, 1.2, 50_000)
    ref_sketch, cur_sketch = sketch_of(ref, k=k), sketch_of(cur, k=k)
    eps_ref, eps_cur = ref_sketch.kll.normalized_rank_error(True), cur_sketch.kll.normalized_rank_error(True)
    column = column_reference_from_sketch("x", "input", ref_sketch)
    assert column.numeric is not None
    got = column_drift(column, cur_sketch, ANY)

    e, a = exact_bins(ref, cur, np.asarray(column.numeric.edges))
    bounds = _bins_interval(e, a, eps_ref, eps_cur)
    assert bounds["psi"][0] <= got["psi"] <= bounds["psi"][1]
    assert bounds["js"][0] <= got["js"] <= bounds["js"][1]
    ks_tol = eps_cur + eps_ref + 0.5 / QUANTILE_ATOMS
    assert abs(got["ks"]["statistic"] - stats.ks_2samp(ref, cur).statistic) <= ks_tol
    w_tol = (eps_cur * np.ptp(cur) + (eps_ref + 0.5 / QUANTILE_ATOMS) * np.ptp(ref)) / np.std(ref)
    assert abs(got["wasserstein"] - stats.wasserstein_distance(ref, cur) / np.std(ref)) <= w_tol


# -- categorical ------------------------------------------------------------------------------------------------
def _categorical_exact(ref: list[str], cur: list[str]) -> dict[str, Any]:
    categories = sorted(set(ref))
    ref_counts = np.array([ref.count(c) for c in categories] + [0])
    cur_counter = Counter(cur)
    cur_counts = np.array([cur_counter[c] for c in categories] + [sum(cur_counter.values()) - sum(ref_counts)])
    cur_counts[-1] = len(cur) - sum(cur_counter[c] for c in categories)
    e, a = ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum()
    table = np.array([ref_counts, cur_counts])
    chi2 = stats.chi2_contingency(table[:, table.sum(axis=0) > 0], correction=False)
    return {"psi": exact_psi(e, a), "js": float(jensenshannon(e, a, base=2)), "chi2": chi2, "other": a[-1]}


def test_categorical_drift_is_exact_with_a_new_category() -> None:
    rng = np.random.default_rng(5)
    ref = rng.choice(["basic", "pro", "team"], 5000, p=[0.6, 0.3, 0.1]).tolist()
    cur = rng.choice(["basic", "pro", "team", "enterprise"], 3000, p=[0.4, 0.3, 0.2, 0.1]).tolist()
    got = column_drift(column_reference_from_values("plan", "input", ref), sketch_of(cur + [None, 7]), ANY)
    exact = _categorical_exact(ref, cur)
    assert got["psi"] == pytest.approx(exact["psi"], rel=1e-9)
    assert got["js"] == pytest.approx(exact["js"], rel=1e-9)
    assert got["chi2"]["statistic"] == pytest.approx(exact["chi2"].statistic, rel=1e-9)
    assert got["chi2"]["p_value"] == pytest.approx(exact["chi2"].pvalue, rel=1e-9, abs=1e-300)
    assert got["new_categories"] == ["enterprise"]
    assert got["new_category_rate"] == pytest.approx(exact["other"])
    assert got["missing_rate"] == pytest.approx(1 / 3002)
    assert got["type_mismatch_rate"] == pytest.approx(1 / 3002)
    assert got["ks"] == {"statistic": None, "p_value": None} and got["wasserstein"] is None
    assert got["status"] == "drift"


def test_categorical_drift_unshifted_is_ok() -> None:
    rng = np.random.default_rng(6)
    ref = rng.choice(["a", "b", "c"], 5000).tolist()
    cur = rng.choice(["a", "b", "c"], 5000).tolist()
    got = column_drift(column_reference_from_values("c", "input", ref), sketch_of(cur))
    assert got["psi"] == pytest.approx(_categorical_exact(ref, cur)["psi"], rel=1e-9)
    assert got["psi"] < 0.01 and got["status"] == "ok" and got["new_categories"] == []


def test_categorical_drift_in_frequent_items_estimation_mode() -> None:
    rng = np.random.default_rng(12)
    ref = [f"c{i}" for i in rng.integers(0, 20, 20_000)]
    tail = [f"rare{i}" for i in range(3000)]  # more distinct values than the sketch's 768 slots
    cur = [f"c{i}" for i in rng.integers(0, 25, 30_000)] + tail
    current = sketch_of(cur)
    rows = current.items.get_frequent_items(ds.frequent_items_error_type.NO_FALSE_NEGATIVES)
    offset = max(row[3] - row[2] for row in rows) / len(cur)
    assert offset > 0  # estimation mode indeed
    column = column_reference_from_values("c", "input", ref)
    assert column.categorical is not None
    got = column_drift(column, current, ANY)
    categories = list(column.categorical.categories)
    counter = Counter(cur)
    a = np.array([counter[c] for c in categories] + [len(cur) - sum(counter[c] for c in categories)]) / len(cur)
    e = np.array(column.categorical.bin_counts()) / len(ref)
    eps_a = np.r_[np.full(len(categories), offset), len(categories) * offset]
    bounds = _bins_interval(e, a, 0.0, eps_a)
    assert bounds["psi"][0] <= got["psi"] <= bounds["psi"][1]
    assert bounds["js"][0] <= got["js"] <= bounds["js"][1]
    assert set(got["new_categories"]) >= {"c20", "c21", "c22", "c23", "c24"}
    assert abs(got["new_category_rate"] - a[-1]) <= eps_a[-1]


def test_single_category_and_the_psi_floor() -> None:
    column = column_reference_from_values("c", "input", ["a"] * 200)
    same = column_drift(column, sketch_of(["a"] * 150), ANY)
    assert (same["psi"], same["js"], same["chi2"]) == (0.0, 0.0, {"statistic": 0.0, "p_value": 1.0})
    changed = column_drift(column, sketch_of(["a"] * 100 + ["b"] * 50), ANY)
    # The reference's "other" bin is empty: floored at 1e-4 (without the floor PSI would be infinite).
    e, a = np.array([1.0, 0.0]), np.array([2 / 3, 1 / 3])
    assert changed["psi"] == pytest.approx((2 / 3 - 1) * math.log(2 / 3) + (1 / 3 - FLOOR) * math.log(1 / 3 / FLOOR))
    assert changed["psi"] == pytest.approx(exact_psi(e, a))
    assert changed["js"] == pytest.approx(float(jensenshannon(e, a, base=2)))
    chi2 = stats.chi2_contingency(np.array([[200, 0], [100, 50]]), correction=False)
    assert changed["chi2"] == pytest.approx({"statistic": chi2.statistic, "p_value": chi2.pvalue})
    assert changed["new_categories"] == ["b"] and changed["status"] == "drift"


# -- numeric edge cases -----------------------------------------------------------------------------------------
def test_constant_reference() -> None:
    column = column_reference_from_values("x", "input", [3.0] * 500)
    same = column_drift(column, sketch_of([3.0] * 300), ANY)
    assert (same["psi"], same["ks"]["statistic"], same["wasserstein"], same["out_of_range_rate"]) == (0.0, 0.0, 0.0, 0)
    moved = column_drift(column, sketch_of([2.0] * 300), ANY)
    # Bins (-inf, 3) and [3, inf): everything moved to the empty (floored) first bin.
    assert moved["psi"] == pytest.approx(exact_psi(np.array([0.0, 1.0]), np.array([1.0, 0.0])))
    assert moved["ks"]["statistic"] == 1.0
    assert moved["wasserstein"] is None  # W1 = 1 but the reference has no spread to normalise by
    assert moved["out_of_range_rate"] == 1.0 and moved["status"] == "drift"


def test_empty_psi_bin_is_floored() -> None:
    ref = np.repeat([0.0, 1.0, 2.0], [700, 200, 100])  # deciles collapse; bin (-inf, 0) is empty
    cur = np.repeat([-1.0, 0.0, 1.0, 2.0], [30, 600, 250, 120])
    column = column_reference_from_values("x", "input", ref)
    assert column.numeric is not None and column.numeric.proportions[0] == 0.0
    got = column_drift(column, sketch_of(cur, k=2000), ANY)
    e, a = exact_bins(ref, cur, np.unique(np.quantile(ref, np.arange(1, 10) / 10)))
    assert e[0] == 0 and a[0] > 0
    assert got["psi"] == pytest.approx(exact_psi(e, a), rel=1e-12)
    assert got["ks"]["statistic"] == pytest.approx(stats.ks_2samp(ref, cur).statistic)
    assert got["out_of_range_rate"] == pytest.approx(0.03)


def test_nan_inf_missing_and_type_mismatches_are_rates_of_all_values() -> None:
    rng = np.random.default_rng(3)
    ref = rng.normal(size=1000)
    finite = rng.normal(size=900)
    values = finite.tolist() + [math.nan] * 40 + [math.inf, -math.inf] * 10 + [None] * 30 + ["x"] * 5 + [True] * 5
    got = column_drift(column_reference_from_values("x", "input", ref), sketch_of(values, k=2000), ANY)
    assert got["count"] == 1000
    rates = ("missing_rate", "nan_rate", "inf_rate", "type_mismatch_rate")
    assert [got[r] for r in rates] == pytest.approx([0.03, 0.04, 0.02, 0.01])
    # Distances compare the finite values only.
    assert got["ks"]["statistic"] == pytest.approx(stats.ks_2samp(ref, finite).statistic)
    assert got["wasserstein"] == pytest.approx(stats.wasserstein_distance(ref, finite) / np.std(ref))


def test_all_missing_and_empty_current() -> None:
    numeric = column_reference_from_values("x", "input", np.arange(100.0))
    categorical = column_reference_from_values("c", "input", ["a", "b"])
    for column in (numeric, categorical):
        missing = column_drift(column, sketch_of([None] * 50), ANY)
        assert (missing["count"], missing["missing_rate"], missing["psi"], missing["status"]) == (50, 1.0, None, "ok")
        assert missing["ks"] == {"statistic": None, "p_value": None}
        for empty in (column_drift(column, None), column_drift(column, ColumnSketch())):
            assert (empty["count"], empty["missing_rate"], empty["psi"], empty["js"]) == (0, None, None, None)
            assert empty["status"] == "ok"
    assert column_drift(categorical, None)["chi2"] == {"statistic": None, "p_value": None}


def test_wrong_kind_and_empty_references() -> None:
    numeric = column_reference_from_values("x", "input", np.arange(100.0))
    strings = column_drift(numeric, sketch_of(["a", "b", None]), ANY)
    assert (strings["type_mismatch_rate"], strings["psi"], strings["status"]) == (2 / 3, None, "ok")
    categorical = column_reference_from_values("c", "input", ["a", "b"])
    numbers = column_drift(categorical, sketch_of([1.0, math.inf, "a"]), ANY)
    assert numbers["type_mismatch_rate"] == pytest.approx(2 / 3)
    assert numbers["psi"] == pytest.approx(exact_psi(np.array([0.5, 0.5, 0.0]), np.array([1.0, 0.0, 0.0])))
    empty = column_reference_from_values("e", "input", [None, None])
    got = column_drift(empty, sketch_of([1.0, 2.0]), ANY)
    assert (got["kind"], got["psi"], got["status"], got["type_mismatch_rate"]) == ("empty", None, "ok", 0.0)
    only_inf = column_reference_from_values("x", "input", [math.inf], kind="numeric")
    assert column_drift(only_inf, sketch_of([1.0]), ANY)["psi"] is None
    no_strings = ColumnReference("c", "input", "categorical", count=3, missing=3)
    got = column_drift(no_strings, sketch_of(["a"]), ANY)
    assert (got["psi"], got["new_categories"], got["new_category_rate"]) == (None, ["a"], 1.0)


def test_overflowing_distance_is_none_not_inf() -> None:
    kll = ds.kll_doubles_sketch(200)
    kll.update(np.array([-1.7e308, 1.7e308]))
    current = RawSketch(2, 0, 0, 0, 2, 0, 0, 0, -1.7e308, 1.7e308, 0.0, 0.0, kll, None)
    got = column_drift(column_reference_from_values("x", "input", [0.0, 1.0]), current, ANY)
    assert got["wasserstein"] is None  # 1.7e308 / std 0.5 overflows
    assert got["ks"]["statistic"] == 0.5 and got["out_of_range_rate"] == 1.0
    json.dumps(got, allow_nan=False)


# -- status, thresholds, the profile-level call -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("psi", "n", "status"),
    [(0.05, 1000, "ok"), (0.1, 1000, "warning"), (0.25, 1000, "warning"), (0.2501, 1000, "drift"),
     (5.0, 99, "ok"), (5.0, 100, "drift"), (None, 1000, "ok")],
)  # fmt: skip
def test_status_bands(psi: float | None, n: int, status: str) -> None:
    assert DriftThresholds().status(psi, n) == status


def test_thresholds_are_validated_and_configurable() -> None:
    with pytest.raises(ValueError, match="psi_warning"):
        DriftThresholds(psi_warning=0.3, psi_drift=0.2)
    with pytest.raises(ValueError, match="min_count"):
        DriftThresholds(min_count=-1)
    rng = np.random.default_rng(1)
    column = column_reference_from_values("x", "input", rng.normal(size=5000))
    shifted = column_drift(column, sketch_of(rng.normal(0.4, 1, 5000), k=1000))
    assert 0.1 < shifted["psi"] < 0.25 and shifted["status"] == "warning"
    assert column_drift(column, sketch_of(rng.normal(0.5, 1, 5000)), DriftThresholds(0.01, 0.05))["status"] == "drift"
    small = column_drift(column, sketch_of(rng.normal(3, 1, 50)))
    assert small["psi"] > 1 and small["status"] == "ok"  # below min_count: too few values to call it


def test_profile_drift_and_json() -> None:
    rng = np.random.default_rng(2)
    profile = reference_from_columns(
        "m", "1", inputs={"x": rng.normal(size=2000), "c": ["a", "b"] * 1000}, outputs={"score": rng.uniform(size=2000)}
    )
    current = {"x": sketch_of(rng.normal(size=500))}
    features = profile_drift(profile, inputs=current, outputs={"score": sketch_of([0.5])})
    assert [(f["role"], f["name"], f["count"]) for f in features] == [
        ("input", "x", 500),
        ("input", "c", 0),
        ("output", "score", 1),
    ]
    text = json.dumps(features, allow_nan=False)
    assert json.loads(text) == features
    keys = {"name", "role", "kind", "count", "missing_rate", "psi", "ks", "js", "wasserstein", "status"}
    assert all(keys <= set(f) for f in features)
    assert "chi2" in features[1] and "chi2" not in features[0]
    assert all(type(f["psi"]) in (float, type(None)) for f in features)
