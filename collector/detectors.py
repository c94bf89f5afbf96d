"""Streaming change detectors for metric series: Page-Hinkley and ADWIN, incremental and serialisable.

    ph = PageHinkley(delta=0.005, lambda_=50)          # frouros / river defaults
    changed = ph.update(x)                             # True when a change is detected (then it restarts)
    state = ph.to_dict(); ph = PageHinkley.from_dict(state)

- `PageHinkley` (Page 1954; Hinkley 1971; as in Gama et al. 2013, river, frouros): with x̄_t the running
  mean, m_t = alpha * m_{t-1} + (x_t - x̄_t - delta) and M_t = min(0, m_1, ..., m_t); an increase is
  signalled when m_t - M_t > lambda (a decrease symmetrically), from `min_instances` values on. It then resets.
- `ADWIN` (Bifet & Gavaldà 2007, ADWIN2 with exponential-histogram buckets, `max_buckets` per size): the window
  is cut where two sub-windows W0 (older) and W1 have means further apart than
  eps = sqrt(2 m v ln(2 ln(n) / delta)) + 2/3 m ln(2 ln(n) / delta), m = 1/(n0 - l + 1) + 1/(n1 - l + 1),
  v the window's variance, l = `min_window_length` (MOA's and river's form of the bound); the older part is
  dropped. Checked every `clock` values (MOA and river use 32 for fast streams; a metric series gets one value
  per evaluation, so every value is checked) once the window holds more than `grace` values.
- `Scaled` divides values by a scale before the detector sees them, so delta and lambda are in units of the
  series' own spread whatever the metric (PSI ~0.01, latency ~100 ms). The scale is given (the reference's
  sigma, or a rule's `scale`), else the standard deviation of the first `warmup` values, which are then
  replayed; a constant warm-up gets 1% of its level (0.01 below 1). Only differences of means are tested, so
  the series is not centred.

`direction` "up", "down" or "both": which changes count (ADWIN still adapts its window to the others).

Defaults. The classes default to the published settings (frouros/river: Page-Hinkley delta 0.005, lambda 50,
alpha 1 - 1e-4; ADWIN delta 0.002). Rules feed `Scaled` values, in units of the series' sigma, where those
Page-Hinkley settings alarm on most stationary series within 2,000 values (they suit a fixed raw scale), so a
page_hinkley rule defaults to delta 0.1 sigma, lambda 50 sigma; an adwin rule keeps delta 0.002. Measured in
tests/collector/test_detectors.py (one value per step, fixed seeds): stationary false alarms <= 2 of 100
series of 3,000 values (Page-Hinkley) and <= 1 of 30 (ADWIN); a 1-sigma step is found after a median of 56
values (Page-Hinkley, range 26-98) and 32 (ADWIN, 18-75); a ramp of 0.01 sigma per value after 110 (67-141)
and 98 (74-130).
"""

from __future__ import annotations

import math
from typing import Any, Literal

__all__ = ["ADWIN", "Direction", "PageHinkley", "Scaled", "detector_from_dict"]

Direction = Literal["up", "down", "both"]


class PageHinkley:
    kind = "page_hinkley"

    def __init__(
        self,
        delta: float = 0.005,
        lambda_: float = 50.0,
        alpha: float = 1 - 0.0001,
        min_instances: int = 30,
        direction: Direction = "both",
    ) -> None:
        if delta < 0 or lambda_ <= 0 or not 0 < alpha <= 1 or min_instances < 1:
            raise ValueError("need delta >= 0, lambda > 0, 0 < alpha <= 1, min_instances >= 1")
        self.delta, self.lambda_, self.alpha = delta, lambda_, alpha
        self.min_instances, self.direction = min_instances, direction
        self.reset()

    def reset(self) -> None:
        self.n = 0
        self.mean = 0.0
        self.up = self.min_up = 0.0  # m_t and M_t for increases
        self.down = self.max_down = 0.0  # the mirror for decreases

    @property
    def statistic(self) -> float:
        """max(m_t - M_t, max_down - down): how far along towards lambda either test is."""
        return max(self.up - self.min_up, self.max_down - self.down)

    def update(self, x: float) -> bool:
        self.n += 1
        self.mean += (x - self.mean) / self.n
        dev = x - self.mean
        self.up = self.alpha * self.up + dev - self.delta
        self.min_up = min(self.min_up, self.up)
        self.down = self.alpha * self.down + dev + self.delta
        self.max_down = max(self.max_down, self.down)
        if self.n < self.min_instances:
            return False
        rise = self.direction != "down" and self.up - self.min_up > self.lambda_
        fall = self.direction != "up" and self.max_down - self.down > self.lambda_
        if rise or fall:
            self.reset()
            return True
        return False

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **{k: getattr(self, k) for k in _PH_FIELDS}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PageHinkley:
        ph = cls(data["delta"], data["lambda_"], data["alpha"], data["min_instances"], data["direction"])
        for key in _PH_FIELDS:
            setattr(ph, key, data[key])
        return ph


_PH_FIELDS = (
    "delta",
    "lambda_",
    "alpha",
    "min_instances",
    "direction",
    "n",
    "mean",
    "up",
    "min_up",
    "down",
    "max_down",
)


class ADWIN:
    kind = "adwin"

    def __init__(
        self,
        delta: float = 0.002,
        clock: int = 1,
        max_buckets: int = 5,
        min_window_length: int = 5,
        grace: int = 10,
        direction: Direction = "both",
    ) -> None:
        if not 0 < delta < 1 or clock < 1 or max_buckets < 2 or min_window_length < 1 or grace < 0:
            raise ValueError("need 0 < delta < 1, clock >= 1, max_buckets >= 2, min_window_length >= 1, grace >= 0")
        self.delta, self.clock, self.max_buckets = delta, clock, max_buckets
        self.min_window_length, self.grace, self.direction = min_window_length, grace, direction
        self.rows: list[list[list[float]]] = []  # rows[i]: buckets of 2**i values, oldest first: [total, variance]
        self.width = 0
        self.total = 0.0
        self.variance = 0.0  # sum of squared deviations from the window's mean
        self.t = 0

    @property
    def mean(self) -> float:
        return self.total / self.width if self.width else math.nan

    def update(self, x: float) -> bool:
        self._insert(float(x))
        self.t += 1
        if self.t % self.clock or self.width <= self.grace:
            return False
        return self._detect()

    def _insert(self, x: float) -> None:
        if self.width:
            self.variance += self.width * (x - self.total / self.width) ** 2 / (self.width + 1)
        self.width += 1
        self.total += x
        if not self.rows:
            self.rows.append([])
        self.rows[0].append([x, 0.0])
        for i, row in enumerate(self.rows):  # compress: merge the two oldest buckets of a full row into the next
            if len(row) <= self.max_buckets:
                break
            (t1, v1), (t2, v2) = row[0], row[1]
            n = 2**i
            del row[:2]
            if i + 1 == len(self.rows):
                self.rows.append([])
            self.rows[i + 1].append([t1 + t2, v1 + v2 + n * n * (t1 / n - t2 / n) ** 2 / (2 * n)])

    def _detect(self) -> bool:
        changed = False
        while (newer_higher := self._find_cut()) is not None:
            changed |= self.direction == "both" or newer_higher == (self.direction == "up")
            self._drop_oldest()
        return changed

    def _find_cut(self) -> bool | None:
        """At the first bucket boundary (oldest first) where the means differ by more than eps: whether the
        newer part's mean is the higher one; None when there is no cut."""
        dd = math.log(2 * math.log(self.width) / self.delta)
        v = self.variance / self.width
        low = self.min_window_length
        n0, t0 = 0, 0.0
        for i in range(len(self.rows) - 1, -1, -1):
            for total, _ in self.rows[i]:
                n0 += 2**i
                t0 += total
                n1 = self.width - n0
                if n1 <= low:
                    return None
                if n0 > low:
                    u0, u1 = t0 / n0, (self.total - t0) / n1
                    m = 1 / (n0 - low + 1) + 1 / (n1 - low + 1)
                    if abs(u0 - u1) > math.sqrt(2 * m * v * dd) + 2 / 3 * dd * m:
                        return bool(u1 > u0)
        return None

    def _drop_oldest(self) -> None:
        i = len(self.rows) - 1
        total, variance = self.rows[i].pop(0)
        if not self.rows[i]:
            self.rows.pop()
        n = 2**i
        self.width -= n
        self.total -= total
        if self.width:
            self.variance -= variance + n * self.width * (total / n - self.total / self.width) ** 2 / (n + self.width)
            self.variance = max(self.variance, 0.0)
        else:
            self.total = self.variance = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "rows": [[list(b) for b in row] for row in self.rows]} | {
            k: getattr(self, k) for k in _ADWIN_FIELDS
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ADWIN:
        a = cls(data["delta"], data["clock"], data["max_buckets"], data["min_window_length"], data["grace"])
        for key in _ADWIN_FIELDS:
            setattr(a, key, data[key])
        a.rows = [[[float(t), float(v)] for t, v in row] for row in data["rows"]]
        return a


_ADWIN_FIELDS = (
    "delta",
    "clock",
    "max_buckets",
    "min_window_length",
    "grace",
    "direction",
    "width",
    "total",
    "variance",
    "t",
)


class Scaled:
    """A detector fed x / scale; the scale is given, or learned from the first `warmup` values (then replayed)."""

    def __init__(self, detector: PageHinkley | ADWIN, scale: float | None = None, warmup: int = 30) -> None:
        if scale is not None and not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"scale must be a positive number, got {scale}")
        self.detector = detector
        self.scale = scale
        self.warmup = max(2, warmup)
        self.buffer: list[float] = []

    def update(self, x: float) -> bool:
        if self.scale is not None:
            return self.detector.update(x / self.scale)
        self.buffer.append(float(x))
        if len(self.buffer) < self.warmup:
            return False
        n = len(self.buffer)
        mean = sum(self.buffer) / n
        std = math.sqrt(sum((v - mean) ** 2 for v in self.buffer) / (n - 1))
        self.scale = std if std > 1e-12 * max(1.0, abs(mean)) else 0.01 * max(1.0, abs(mean))
        values, self.buffer = self.buffer, []
        return any([self.detector.update(v / self.scale) for v in values])

    def to_dict(self) -> dict[str, Any]:
        return {
            "scale": self.scale,
            "warmup": self.warmup,
            "buffer": list(self.buffer),
            "detector": self.detector.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scaled:
        scaled = cls(detector_from_dict(data["detector"]), data["scale"], data["warmup"])
        scaled.buffer = [float(v) for v in data["buffer"]]
        return scaled


def detector_from_dict(data: dict[str, Any]) -> PageHinkley | ADWIN:
    if data.get("kind") == PageHinkley.kind:
        return PageHinkley.from_dict(data)
    if data.get("kind") == ADWIN.kind:
        return ADWIN.from_dict(data)
    raise ValueError(f"unknown detector state {data.get('kind')!r}")
