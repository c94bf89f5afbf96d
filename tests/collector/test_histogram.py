from __future__ import annotations

import math
from bisect import bisect_left

import numpy as np
import pytest

from collector.histogram import BATCH_BOUNDS, LATENCY_BOUNDS, Histogram, quantile
from instrument import semconv

QS = (0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 1.0)


def bucket_edges(bounds: tuple[float, ...], value: float, lo: float, hi: float) -> tuple[float, float]:
    """The edges of the bucket holding value, narrowed to [lo, hi] (the recorded min and max)."""
    i = bisect_left(bounds, value)
    return max(bounds[i - 1] if i else 0.0, lo), min(bounds[i] if i < len(bounds) else math.inf, hi)


def test_bounds_are_the_sdks() -> None:
    assert LATENCY_BOUNDS == semconv.DURATION_BUCKETS_S
    assert BATCH_BOUNDS == semconv.BATCH_BUCKETS


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("n", [1, 2, 7, 100, 5000])
def test_quantile_lies_in_the_exact_quantiles_bucket(seed: int, n: int) -> None:
    values = np.random.default_rng(seed).lognormal(mean=-5, sigma=2, size=n)  # 1 us .. 10 s and beyond
    h = Histogram(LATENCY_BOUNDS)
    for v in values:
        h.add(float(v))
    assert h.count == n and h.sum == pytest.approx(values.sum()) and (h.min, h.max) == (values.min(), values.max())
    for q in QS:
        exact = float(np.quantile(values, q, method="inverted_cdf"))
        lo, hi = bucket_edges(LATENCY_BOUNDS, exact, h.min, h.max)
        estimate = quantile(h, q)
        assert lo <= estimate <= hi, (q, exact, estimate)
        assert abs(estimate - exact) <= hi - lo  # the stated bound: the (narrowed) bucket's width
        # numpy's default (linear) lies between neighbouring order statistics, so the estimate is off by at
        # most the span from the bucket of the lower one to the bucket of the higher one
        linear = float(np.quantile(values, q))
        span_lo = bucket_edges(LATENCY_BOUNDS, float(np.quantile(values, q, method="lower")), h.min, h.max)[0]
        span_hi = bucket_edges(LATENCY_BOUNDS, float(np.quantile(values, q, method="higher")), h.min, h.max)[1]
        assert span_lo <= linear <= span_hi and span_lo <= estimate <= span_hi
    assert quantile(h, 1.0) == values.max()


def test_empty_and_single_value() -> None:
    h = Histogram(LATENCY_BOUNDS)
    assert math.isnan(quantile(h, 0.5)) and h.count == 0 and (h.min, h.max) == (math.inf, -math.inf)
    h.add(0.0123)
    assert all(quantile(h, q) == 0.0123 for q in QS)  # min == max narrows the bucket to a point


def test_sdk_bounds_add_exactly_and_merge_exactly() -> None:
    bounds = list(LATENCY_BOUNDS)
    a, b, both = Histogram(LATENCY_BOUNDS), Histogram(LATENCY_BOUNDS), Histogram(LATENCY_BOUNDS)
    counts = [i % 3 for i in range(len(bounds) + 1)]
    a.add_buckets(bounds, counts, 1.5, 0.00002, 99.0)
    b.add_buckets(bounds, counts, 2.5, 0.00001, 70.0)
    both.add_buckets(bounds, [2 * c for c in counts], 4.0, 0.00001, 99.0)
    a.merge(b)
    assert (a.counts, a.sum, a.min, a.max) == (both.counts, both.sum, both.min, both.max)
    with pytest.raises(ValueError, match="different bounds"):
        a.merge(Histogram(BATCH_BOUNDS))


def test_other_bounds_are_rebucketed_upwards() -> None:
    values = np.random.default_rng(3).uniform(0.0, 0.2, size=1000)
    coarse = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1]  # OpenTelemetry's default bounds, in seconds
    counts = np.bincount(np.searchsorted(coarse, values, side="left"), minlength=len(coarse) + 1).tolist()
    h = Histogram(LATENCY_BOUNDS)
    h.add_buckets(coarse, counts, float(values.sum()), float(values.min()), float(values.max()))
    assert h.count == 1000 and h.max == values.max()
    for q in QS:
        exact = float(np.quantile(values, q, method="inverted_cdf"))
        source_hi = coarse[bisect_left(coarse, exact)] if exact <= coarse[-1] else values.max()
        source_lo = coarse[bisect_left(coarse, exact) - 1] if bisect_left(coarse, exact) else 0.0
        estimate = quantile(h, q)
        # never below the exact quantile's source bucket; above by at most its width plus our bucket's
        assert estimate >= source_lo
        ours = bucket_edges(LATENCY_BOUNDS, min(source_hi, h.max), h.min, h.max)
        assert estimate - exact <= (source_hi - source_lo) + (ours[1] - ours[0])


def test_points_without_min_and_max_use_bucket_edges() -> None:
    h = Histogram(BATCH_BOUNDS)
    counts = [0] * (len(BATCH_BOUNDS) + 1)
    counts[3] = 4  # (4, 8]
    h.add_buckets(list(BATCH_BOUNDS), counts, 24.0, None, None)
    assert (h.min, h.max) == (4.0, 8.0)
    assert 4.0 <= quantile(h, 0.5) <= 8.0
    overflow = [0] * (len(BATCH_BOUNDS) + 1)
    overflow[-1] = 1
    h.add_buckets(list(BATCH_BOUNDS), overflow, 1e6, None, None)
    assert h.max == math.inf and quantile(h, 1.0) == BATCH_BOUNDS[-1]  # the lower edge: Prometheus' answer
    nothing = Histogram(BATCH_BOUNDS)
    nothing.add_buckets([1.0], [0, 0], 0.0, None, None)
    assert nothing.count == 0 and nothing.sum == 0.0


def test_linear_interpolation_inside_the_bucket() -> None:
    h = Histogram(BATCH_BOUNDS)
    counts = [0] * (len(BATCH_BOUNDS) + 1)
    counts[2], counts[3] = 10, 10  # (2, 4] and (4, 8]
    h.add_buckets(list(BATCH_BOUNDS), counts, 100.0, 3.0, 8.0)
    # Prometheus' histogram_quantile, with the first bucket's lower edge raised to the recorded min
    assert [quantile(h, q) for q in (0.05, 0.5, 0.75, 1.0)] == [3.1, 4.0, 6.0, 8.0]
    uniform = Histogram(LATENCY_BOUNDS)
    for v in np.linspace(0.001, 0.0015, 1001)[1:]:  # evenly through the bucket (1 ms, 1.5 ms]
        uniform.add(float(v))
    assert quantile(uniform, 0.5) == pytest.approx(0.00125, abs=1e-6)  # far inside the 0.5 ms bound


def test_the_stated_latency_error_bound() -> None:
    # operations_metrics documents: past the first bucket, each bucket is at most 40% of its upper edge wide
    widths = [(hi - lo) / hi for lo, hi in zip(LATENCY_BOUNDS, LATENCY_BOUNDS[1:], strict=False)]
    assert max(widths) == pytest.approx(0.4) and LATENCY_BOUNDS[-1] == 70.0
