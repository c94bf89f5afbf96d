"""ColumnSketch / Profile life cycle against exact numpy computations.

Tolerances (stated where used): counts exact; mean and variance 1e-9 relative (float64 rounding of Chan's
update); quantile ranks within the KLL's own 99%-confidence bound (`normalized_rank_error`, 1.33% single
query / 1.65% for a CDF at k=200); distinct counts within 4 relative standard errors of a 2^12-register HLL
(4 * 1.04 / 64 = 6.5%), exact-ish (+-1) while a column has few distinct values.
"""

from __future__ import annotations

import math
import os
import struct

import datasketches as ds
import numpy as np
import pytest

from collector import numeric_hll
from collector.records import InferenceBatch
from collector.sketches import ColumnSketch, Profile, SketchConfig

HLL_TOL = 4 * 1.04 / 64


def roundtrip(sketch: ColumnSketch) -> ColumnSketch:
    return ColumnSketch.from_bytes(sketch.to_bytes())


def true_rank(sorted_data: np.ndarray, x: float) -> float:
    """Fraction of the data <= x (the inclusive rank KLL reports by default)."""
    return float(np.searchsorted(sorted_data, x, side="right")) / sorted_data.size


def test_numeric_life_cycle_matches_numpy() -> None:
    rng = np.random.default_rng(42)
    data = np.concatenate([rng.lognormal(3, 1, 60_000), rng.normal(-50, 5, 40_000)])
    rng.shuffle(data)
    parts = np.array_split(data, 7)
    a, b = ColumnSketch.zero(), ColumnSketch.zero()
    for i, part in enumerate(parts):
        target = a if i < 4 else b
        target.update(part.tolist() if i % 2 else part)  # lists and arrays take different paths
    extra = [None, None, math.nan, math.inf, -math.inf]
    b.update(extra)
    a.merge(roundtrip(b))
    s = roundtrip(a)

    assert (s.count, s.missing, s.nan, s.inf) == (data.size + 5, 2, 1, 2)
    assert (s.n_numeric, s.n_string, s.n_bool, s.n_other) == (data.size, 0, 0, 0)
    assert s.kind == "numeric"
    assert s.min == data.min() and s.max == data.max()
    assert s.mean == pytest.approx(data.mean(), rel=1e-9)
    assert s.variance == pytest.approx(data.var(ddof=1), rel=1e-9)
    assert s.kll.n == data.size
    ordered = np.sort(data)
    eps = s.kll.normalized_rank_error(False)
    for q in (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99):
        assert abs(true_rank(ordered, s.kll.get_quantile(q)) - q) <= eps
    edges = list(np.quantile(data, [0.1, 0.3, 0.5, 0.7, 0.9]))
    cdf = s.kll.get_cdf(edges)
    eps_cdf = s.kll.normalized_rank_error(True)
    for x, est in zip(edges, cdf[:-1], strict=True):
        assert abs(est - true_rank(ordered, x)) <= eps_cdf
    assert abs(s.distinct - data.size) <= HLL_TOL * data.size


def test_mean_and_variance_stay_exact_far_from_zero() -> None:
    rng = np.random.default_rng(1)
    data = 1.7e9 + rng.normal(0, 3, 10_000)  # timestamps: naive sum-of-squares loses every digit here
    s = ColumnSketch.zero()
    for part in np.array_split(data, 13):
        other = ColumnSketch.zero()
        other.update(part)
        s.merge(other)
    assert s.mean == pytest.approx(data.mean(), rel=1e-12)
    assert s.variance == pytest.approx(data.var(ddof=1), rel=1e-9)


def test_categorical_life_cycle_matches_counter() -> None:
    rng = np.random.default_rng(7)
    cats = np.array(["red", "green", "blue", "über", "😀"])
    values = list(rng.choice(cats, 5000, p=[0.5, 0.2, 0.15, 0.1, 0.05]))
    values[::50] = [None] * len(values[::50])
    a, b = ColumnSketch.zero(), ColumnSketch.zero()
    a.update(values[:3000])
    b.update(values[3000:])
    b.update([True, False, True])
    a.merge(roundtrip(b))
    s = roundtrip(a)
    n_none = sum(v is None for v in values)
    assert (s.count, s.missing, s.n_string, s.n_bool, s.n_numeric) == (5003, n_none, 5000 - n_none, 3, 0)
    assert s.kind == "categorical"
    for cat in cats:
        assert s.items.get_estimate(str(cat)) == sum(v == cat for v in values)  # exact below 768 distinct
    assert s.items.get_estimate("true") == 2 and s.items.get_estimate("false") == 1
    assert round(s.distinct) == len(cats) + 2
    assert math.isnan(s.mean) and math.isnan(s.min) and math.isnan(s.variance)


def test_many_distinct_strings_stay_within_the_frequent_items_bound() -> None:
    values = [f"user-{i % 5000}" for i in range(20_000)] + ["hot"] * 4000
    s = ColumnSketch.zero()
    s.update(values)
    bound = ds.frequent_strings_sketch.get_epsilon_for_lg_size(10) * s.items.total_weight
    assert abs(s.items.get_estimate("hot") - 4000) <= bound
    assert abs(s.distinct - 5001) <= HLL_TOL * 5001


def test_mixed_types_are_split_and_counted() -> None:
    s = ColumnSketch.zero()
    s.update([1, 2.5, None, math.nan, math.inf, -math.inf, "a", True, False, b"raw", {"k": 1}, 2**1100, -(2**1100)])
    assert (s.count, s.missing, s.nan, s.inf) == (13, 1, 1, 4)  # ints beyond float range count as +-inf
    assert (s.n_numeric, s.n_string, s.n_bool, s.n_other) == (2, 1, 2, 2)
    assert s.mean == 1.75 and s.min == 1.0 and s.max == 2.5
    assert s.kind == "categorical"  # 2 numbers < 1 string + 2 bools
    again = roundtrip(s)
    assert again.to_bytes() == s.to_bytes()


def test_bool_is_not_numeric_and_numpy_inputs() -> None:
    s = ColumnSketch.zero()
    s.update(np.array([True, False, True]))
    s.update(np.arange(5, dtype=np.int32))
    s.update(np.arange(10.0)[::2])  # non-contiguous view
    s.update(np.array(["x", None], dtype=object))
    assert (s.count, s.n_bool, s.n_numeric, s.n_string, s.missing) == (15, 3, 10, 1, 1)
    assert s.mean == pytest.approx(np.mean(list(range(5)) + [0, 2, 4, 6, 8]), rel=1e-12)
    with pytest.raises(ValueError, match="one-dimensional"):
        s.update(np.zeros((2, 2)))


def test_huge_and_odd_strings() -> None:
    s = ColumnSketch.zero(SketchConfig(max_string_len=128))
    huge = "x" * 1_000_000
    s.update([huge, huge + "tail", "\udcff\udc80 undecodable", "nul\x00inside", "😀" * 200])
    items = {row[0]: row[1] for row in s.items.get_frequent_items(ds.frequent_items_error_type.NO_FALSE_NEGATIVES)}
    assert items["x" * 128] == 2  # cut to max_string_len: the two share a prefix
    assert items["nul\x00inside"] == 1 and items["😀" * 128] == 1
    assert any("undecodable" in k for k in items)
    assert len(s.to_bytes()) < 2000
    assert roundtrip(s).n_string == 5


def test_distinct_counts() -> None:
    s = ColumnSketch.zero()
    s.update([0.0, -0.0, 1, 1.0, 2, 2, 2])  # 0 == -0.0 and 1 == 1.0: three distinct numbers
    s.update(["1", "1"])  # a string "1" is another value
    assert round(s.distinct) == 4
    rng = np.random.default_rng(3)
    for n in (10, 300, 3000, 200_000):
        t = ColumnSketch.zero()
        t.update(np.repeat(rng.normal(size=n), 3))
        tol = 1 if n <= 10 else HLL_TOL * n
        assert abs(t.distinct - n) <= tol, n


def test_empty_sketch() -> None:
    s = roundtrip(ColumnSketch.zero())
    assert s.kind == "empty" and s.count == 0 and s.distinct == 0
    assert math.isnan(s.min) and math.isnan(s.max) and math.isnan(s.mean) and math.isnan(s.variance)
    s.update([])
    s.update([None])
    assert (s.count, s.missing, s.kind) == (1, 1, "empty")


def test_counts_beyond_32_bits_roundtrip() -> None:
    s = ColumnSketch.zero()
    s.count = s.missing = 5_000_000_000
    assert roundtrip(s).missing == 5_000_000_000


@pytest.mark.parametrize("seed", range(5))
def test_garbage_bytes_raise_value_error(seed: int) -> None:
    rng = np.random.default_rng(seed)
    good = ColumnSketch.zero()
    good.update(rng.normal(size=100).tolist() + ["a", None])
    blob = good.to_bytes()
    flipped = bytearray(blob)
    flipped[len(blob) // 2] ^= 0x40
    cases = [b"", b"\x01", b"\x02" + blob[1:], blob[:-1], bytes(flipped), os.urandom(int(rng.integers(1, 500)))]
    for bad in cases:
        with pytest.raises(ValueError):
            ColumnSketch.from_bytes(bad)
        with pytest.raises(ValueError):
            Profile.from_bytes(bad)


def test_well_formed_but_inconsistent_counts_raise() -> None:
    s = ColumnSketch.zero()
    s.update([1.0, 2.0])
    s.n_numeric = 3  # the KLL holds 2 values
    s.count = 3
    with pytest.raises(ValueError, match="disagree"):
        roundtrip(s)


def batch(inputs: dict[str, list[object]], outputs: dict[str, list[object]] | None = None) -> InferenceBatch:
    n = max(len(v) for v in inputs.values())
    return InferenceBatch("m", "1", 0.0, [str(i) for i in range(n)], inputs, outputs or {})


def test_profile_keeps_count_equal_to_rows() -> None:
    p = Profile.zero()
    p.update_from(batch({"a": [1, 2], "b": ["x", "y"]}, {"score": [0.1, 0.9]}))
    p.update_from(batch({"a": [3, None, 5]}))  # b and score absent: missing
    p.update_from(batch({"a": [6], "c": [7.0]}))  # c new: missing for the earlier 5 rows
    short = InferenceBatch("m", "1", 0.0, ["1", "2"], {"a": [8]}, {})  # a short column: its last row is missing
    p.update_from(short)
    assert p.rows == 8
    assert all(col.count == 8 for col in p.columns.values())
    assert p.columns[("input", "b")].missing == 6
    assert p.columns[("input", "c")].missing == 7
    assert p.columns[("output", "score")].n_numeric == 2
    assert p.columns[("input", "a")].missing == 2

    other = Profile.zero()
    other.update_from(batch({"d": ["k"] * 4}))
    p.merge(Profile.from_bytes(other.to_bytes()))
    assert p.rows == 12 and all(col.count == 12 for col in p.columns.values())
    assert p.columns[("input", "d")].missing == 8 and p.columns[("input", "a")].missing == 6

    back = Profile.from_bytes(p.to_bytes())
    assert back.rows == 12 and set(back.columns) == set(p.columns)
    assert back.to_bytes() == p.to_bytes()
    only = Profile.from_bytes(p.to_bytes(), columns=[("input", "a"), ("input", "nope")])
    assert set(only.columns) == {("input", "a")} and only.columns[("input", "a")].mean == pytest.approx(25 / 6)


def test_profile_column_cap() -> None:
    p = Profile.zero(SketchConfig(max_columns=3))
    p.update_from(batch({f"f{i}": [i] for i in range(5)}))
    p.update_from(batch({"x" * 5000: [1]}))  # an absurd name is refused too
    assert len(p.columns) == 3 and p.dropped_columns == 3
    assert Profile.from_bytes(p.to_bytes()).dropped_columns == 3


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="kll_k"):
        SketchConfig(kll_k=2)
    with pytest.raises(ValueError, match="hll_lg_k"):
        SketchConfig(hll_lg_k=30)


def test_numeric_hll_encodings_roundtrip() -> None:
    rng = np.random.default_rng(5)
    for n in (0, 5, 5000, 300_000):
        registers = numeric_hll.new(12)
        numeric_hll.update(registers, rng.normal(size=n))
        if n == 300_000:
            registers[7] = 40  # far above the minimum: stored as an exception to the 4-bit packing
        blob = numeric_hll.to_bytes(registers)
        assert np.array_equal(numeric_hll.from_bytes(blob, 12), registers)
    assert len(blob) < 2100
    with pytest.raises(ValueError):
        numeric_hll.from_bytes(b"\x07", 12)
    with pytest.raises(ValueError):
        numeric_hll.from_bytes(struct.pack("<BBH", 1, 0, 0) + b"\x00" * 10, 12)


def test_numeric_hll_merge_is_union() -> None:
    rng = np.random.default_rng(9)
    x = rng.normal(size=50_000)
    a, b, both = numeric_hll.new(12), numeric_hll.new(12), numeric_hll.new(12)
    numeric_hll.update(a, x[:30_000])
    numeric_hll.update(b, x[20_000:])
    numeric_hll.update(both, x)
    numeric_hll.merge(a, b)
    assert np.array_equal(a, both)
    assert abs(numeric_hll.estimate(a) - 50_000) <= HLL_TOL * 50_000
