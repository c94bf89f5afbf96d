"""Metric points and predict spans -> partial OperationsStates per (model, version, window).

    ingest = OperationsIngest(window_s=60)
    parts = ingest.fold(points=metric_points, spans=predict_spans)   # {(model, version, start_s): state}
    for key, part in parts.items():
        open_windows.setdefault(key, OperationsState.zero()).merge(part)

`predwatch.*` points and spans go to their model's state; process, host and GPU points (no model) go to the
state keyed PROCESS_KEY of their window, joined to the models at read time by `operations.attribute`. A
point belongs to the window of its `time_s` (for a delta point, the end of the interval it covers, so calls
land up to one export interval late: 10 s with the SDK's default), a span to the window of its start. Times
that are not finite or more than `max_future_s` ahead of the clock count as now (as windows.py does).

Temporality: the predwatch SDK sends counters and histograms as deltas, and those fold in as they are.
Cumulative counters and histograms (an application's own MeterProvider, other producers) are turned into
deltas here, per series (instance, metric, attributes), the way OpenTelemetry Collector's cumulativetodelta
processor does:
- the first point of a series is a baseline and is dropped, unless its start time is after this ingest was
  created (a process that started while we watched: its whole value is new);
- a value below the previous one (any bucket, for histograms) or a changed start time is a restart: the
  point's whole value counts, as the increase since the restart;
- a point not newer than the previous one of its series is dropped (a duplicate or out of order);
- a histogram delta keeps min/max only where they tell: a new cumulative max above the previous one is the
  delta's max (likewise min); otherwise they are left out and the bucket edges stand in.
The series memory is bounded (`max_series`, least recently used first out; an evicted series baselines
again). It lives in this process: behind several collector replicas, a cumulative producer's points must
reach one replica per series (OpenTelemetry Collector's loadbalancing exporter with routing_key
"streamID" or "resource"), as for any cumulative-to-delta conversion. Delta producers need nothing.
Non-monotonic sums (process.memory.usage and other up-down counters) are levels and pass through as gauges.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from collector.operations import CALL_METRICS, GAUGES, IO_DIRECTIONS, OperationsState
from collector.operations_instance import MAX_NAME, instance_id
from collector.records import MetricPoint, PredictSpan
from instrument import semconv

__all__ = ["PROCESS_KEY", "CumulativeToDelta", "OperationsIngest", "StateKey"]

PROCESS_KEY: tuple[str, str] = ("", "")  # (model, version) of the per-window process/host state
StateKey = tuple[str, str, int]  # model, version, window start (Unix seconds)

COUNTERS = CALL_METRICS | frozenset(IO_DIRECTIONS)  # monotonic: cumulative points need converting
_Series = tuple[str, str, tuple[tuple[str, str], ...]]


@dataclass(slots=True)
class _Last:
    start_s: float | None
    time_s: float
    value: float
    counts: list[int]
    bounds: list[float]
    min: float | None
    max: float | None


class CumulativeToDelta:
    """Cumulative counter and histogram points -> delta points (see the module docstring for the rules)."""

    def __init__(self, max_series: int = 100_000, started_s: float | None = None) -> None:
        if max_series < 1:
            raise ValueError(f"max_series must be >= 1, got {max_series}")
        self.max_series = max_series
        self.started_s = time.time() if started_s is None else started_s
        self.dropped: Counter[str] = Counter()  # "baseline", "out_of_order"
        self._last: OrderedDict[_Series, _Last] = OrderedDict()
        self._lock = threading.Lock()

    def convert(self, point: MetricPoint) -> MetricPoint | None:
        """The delta since the series' previous point, or None when the point only sets a baseline."""
        series = (
            instance_id(point.resource),
            point.name,
            tuple(sorted((k, str(v)) for k, v in point.attributes.items())),
        )
        last = _Last(
            point.start_time_s, point.time_s, point.value, list(point.counts), list(point.bounds), point.min, point.max
        )
        with self._lock:
            prev = self._last.get(series)
            if prev is not None and point.time_s <= prev.time_s:
                self.dropped["out_of_order"] += 1
                return None
            self._last[series] = last
            self._last.move_to_end(series)
            if len(self._last) > self.max_series:
                self._last.popitem(last=False)
        if prev is None:
            if point.start_time_s is not None and point.start_time_s >= self.started_s:
                return replace(point, delta=True)
            self.dropped["baseline"] += 1
            return None
        if _restarted(prev, last, point.kind):
            return replace(point, delta=True)
        if point.kind != "histogram":
            return replace(point, delta=True, value=point.value - prev.value, start_time_s=prev.time_s)
        counts = [a - b for a, b in zip(last.counts, prev.counts, strict=True)]
        return replace(
            point,
            delta=True,
            value=point.value - prev.value,
            count=sum(counts),
            counts=counts,
            start_time_s=prev.time_s,
            min=point.min if point.min is not None and (prev.min is None or point.min < prev.min) else None,
            max=point.max if point.max is not None and (prev.max is None or point.max > prev.max) else None,
        )


def _restarted(prev: _Last, last: _Last, kind: str) -> bool:
    if prev.start_s is not None and last.start_s is not None and last.start_s != prev.start_s:
        return True
    if kind != "histogram":
        return last.value < prev.value
    return (
        last.bounds != prev.bounds
        or len(last.counts) != len(prev.counts)
        or any(a < b for a, b in zip(last.counts, prev.counts, strict=True))
    )


class OperationsIngest:
    def __init__(
        self,
        window_s: int = 60,
        *,
        max_instances: int = 1000,
        process_max_instances: int = 10_000,
        max_series: int = 100_000,
        max_future_s: float = 300.0,
        clock: Callable[[], float] = time.time,
        started_s: float | None = None,
    ) -> None:
        if window_s < 1:
            raise ValueError(f"window_s must be >= 1, got {window_s}")
        self.window_s = int(window_s)
        self.max_instances = max_instances
        self.process_max_instances = process_max_instances
        self.max_future_s = max_future_s
        self.clock = clock
        self.deltas = CumulativeToDelta(max_series, clock() if started_s is None else started_s)
        self.skipped: Counter[str] = Counter()  # call metric points without a usable model name, by reason

    def window(self, time_s: float, now_s: float) -> int:
        t = time_s if math.isfinite(time_s) and time_s <= now_s + self.max_future_s else now_s
        return int(t // self.window_s) * self.window_s

    def fold(
        self, points: Iterable[MetricPoint] = (), spans: Iterable[PredictSpan] = ()
    ) -> dict[StateKey, OperationsState]:
        """New partial states for what arrived; merge each into the open window with the same key."""
        now = self.clock()
        points_by_key: dict[StateKey, list[MetricPoint]] = {}
        spans_by_key: dict[StateKey, list[PredictSpan]] = {}
        for point in points:
            if point.name in COUNTERS and not point.delta and point.kind in ("sum", "histogram"):
                converted = self.deltas.convert(point)
                if converted is None:
                    continue
                point = converted
            if point.name in CALL_METRICS:
                model = point.attributes.get(semconv.ATTR_MODEL_NAME)
                version = str(point.attributes.get(semconv.ATTR_MODEL_VERSION) or "")
                if not isinstance(model, str) or not model or len(model) > MAX_NAME or len(version) > MAX_NAME:
                    self.skipped["no_model" if not model else "bad_model"] += 1
                    continue
                model_version: tuple[str, str] = (model, version)
            elif point.name in GAUGES or point.name in IO_DIRECTIONS:
                model_version = PROCESS_KEY
            else:
                continue  # not an operations metric (the SDK's self-metrics, other system.* metrics)
            points_by_key.setdefault((*model_version, self.window(point.time_s, now)), []).append(point)
        for span in spans:
            spans_by_key.setdefault((span.model, span.version, self.window(span.time_s, now)), []).append(span)
        parts: dict[StateKey, OperationsState] = {}
        for key in points_by_key.keys() | spans_by_key.keys():
            cap = self.process_max_instances if key[:2] == PROCESS_KEY else self.max_instances
            state = parts[key] = OperationsState.zero(cap)
            state.add_points(points_by_key.get(key, ()))
            state.add_spans(spans_by_key.get(key, ()))
        return parts
