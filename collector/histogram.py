"""Explicit-bucket histograms over fixed bounds: exact merges, re-bucketing, Prometheus-style quantiles.

    h = Histogram(LATENCY_BOUNDS)
    h.add(0.012)                                          # one value (a span's duration)
    h.add_buckets(point.bounds, point.counts, point.value, point.min, point.max)   # an OTLP data point
    h.merge(other)                                        # exact: same bounds
    quantile(h, 0.99)

Bucket i holds (bounds[i-1], bounds[i]], as OpenTelemetry's do; values are non-negative (seconds, rows), so
the first bucket starts at 0.

Re-bucketing: a data point with the histogram's own bounds adds exactly. Any other bucket moves whole to our
bucket that holds its upper edge (clipped to the point's max when it has one): values are never moved down,
so a quantile is never under-estimated by re-bucketing, and is over-estimated by at most the source bucket's
width plus ours. min and max are exact when every point carried them; otherwise the edges of the outermost
non-empty buckets stand in (max may then be inf: unknown).

Quantiles (like Prometheus' histogram_quantile): the bucket holding the ceil(q * n)-th smallest value,
linear interpolation inside it, its edges narrowed to the recorded min and max. The estimate and the exact
quantile (numpy.quantile(method="inverted_cdf")) lie in the same bucket, so they differ by less than that
bucket's (narrowed) width. In the overflow bucket without a known max the estimate is its lower edge, and
the error is unbounded.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence

from instrument import semconv

__all__ = ["BATCH_BOUNDS", "LATENCY_BOUNDS", "Histogram", "quantile"]

LATENCY_BOUNDS: tuple[float, ...] = tuple(semconv.DURATION_BUCKETS_S)  # seconds
BATCH_BOUNDS: tuple[float, ...] = semconv.BATCH_BUCKETS  # rows


class Histogram:
    """Counts over fixed `bounds`, with sum, min and max. Empty: min = inf, max = -inf; sum nan = unknown."""

    __slots__ = ("bounds", "counts", "sum", "min", "max")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf

    @property
    def count(self) -> int:
        return sum(self.counts)

    def add(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.min = min(self.min, value)
        self.max = max(self.max, value)

    def add_buckets(
        self, bounds: Sequence[float], counts: Sequence[int], total: float, lo: float | None, hi: float | None
    ) -> None:
        """Add a data point: its bounds, bucket counts (len(bounds) + 1), sum and optional min and max."""
        nonempty = [i for i, c in enumerate(counts) if c]
        if not nonempty:
            return
        if len(bounds) == len(self.bounds) and all(a == b for a, b in zip(bounds, self.bounds, strict=True)):
            for i in nonempty:
                self.counts[i] += counts[i]
        else:
            for i in nonempty:
                upper = bounds[i] if i < len(bounds) else math.inf
                if hi is not None:
                    upper = min(upper, hi)
                self.counts[bisect_left(self.bounds, upper)] += counts[i]
        self.sum += total
        first, last = nonempty[0], nonempty[-1]
        self.min = min(self.min, lo if lo is not None else (bounds[first - 1] if first else 0.0))
        self.max = max(self.max, hi if hi is not None else (bounds[last] if last < len(bounds) else math.inf))

    def merge(self, other: Histogram) -> None:
        if other.bounds != self.bounds:
            raise ValueError("histograms with different bounds do not merge")
        self.counts = [a + b for a, b in zip(self.counts, other.counts, strict=True)]
        self.sum += other.sum
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)


def quantile(hist: Histogram, q: float) -> float:
    """The q-quantile (0 < q <= 1) estimated from the buckets (see the module docstring); nan when empty."""
    n = hist.count
    if n == 0:
        return math.nan
    rank = q * n
    if abs(rank - round(rank)) < 1e-9 * n:  # 0.99 * 100 is 99.00000000000001, not past the 99th value
        rank = float(round(rank))
    rank = max(rank, 1e-12)
    cum = 0
    for i, c in enumerate(hist.counts):
        if c and cum + c >= rank:
            lo = max(hist.bounds[i - 1] if i else 0.0, hist.min)
            hi = min(hist.bounds[i] if i < len(hist.bounds) else math.inf, hist.max)
            if math.isinf(hi):
                return lo
            return min(lo + (hi - lo) * (rank - cum) / c, hi)
        cum += c
    return hist.max  # pragma: no cover - rank <= n always finds a bucket
