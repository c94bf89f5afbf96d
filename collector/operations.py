"""Operations state: calls, latency, batch sizes and process resources per service instance, mergeable.

An `OperationsState` holds what the collector keeps of one (model, version, window), per service instance
(resource `service.instance.id`): the calls it served and, once attributed, its process and host metrics.
Process and host metrics name no model, so collector.operations_ingest files them in a state of their own
per window (under PROCESS_KEY) and `attribute` joins them to a model's state at read time. Life cycle, as
the sketches'::

    state = OperationsState.zero()
    state.add_points(points)                 # delta sums and histograms, gauges (see OperationsIngest)
    state.add_spans(spans)
    state.merge(OperationsState.from_bytes(blob))            # in place, exact for every count
    window = attribute(state, processes)     # per window, before windows are merged over a range
    operations_metrics(window, window_s=60)  # collector.operations_metrics

Rules:
- Metrics are complete, spans a sample: an instance's calls, rows, errors and latency come from its
  `predwatch.*` metric points when any are in the state, else from its `predict` spans (a producer that
  sends only spans; then the counts are those of the spans that arrived). The choice is made per instance
  when read, so it does not depend on arrival order; an open window may show span counts until the
  instance's next metric export arrives.
- Calls of one outcome = the count of its `predwatch.batch.size` histogram (the SDK records one per call),
  or of `predwatch.predict.duration` where that is larger (a producer without batch sizes). Rows come from
  `predwatch.predictions`. Latency covers every timed call, failed ones included.
- Histograms land on fixed bounds (collector.histogram: LATENCY_BOUNDS, the SDK's duration buckets, and
  BATCH_BOUNDS): points with those bounds add exactly, others are re-bucketed upwards.
- Gauges (cpu, memory, threads, file descriptors, filesystem, GPU) keep sum, count, max and the latest value
  per series; non-monotonic cumulative sums (up-down counters such as process.memory.usage) are gauges,
  non-monotonic delta sums are dropped (a level cannot be rebuilt from them). process.disk.io and
  system.network.io add delta bytes; OperationsIngest turns cumulative points into deltas first, and a
  cumulative counter point added here directly is dropped. `dropped` counts every dropped point by reason.
- Bounded memory: at most `max_instances` named instances (default 1,000). Past that the state keeps the
  instances with the smallest ids, whatever the order of arrival and merges, and folds the call data of the
  others into `other` ("_other"); their process metrics are dropped (counted as "instance_limit"). Per
  instance at most 64 gauge and 64 IO series, and 64 error types (later ones count as "_OTHER"; which
  ones are kept then depends on arrival order, the totals do not).
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from collector.operations_instance import (
    MAX_NAME,
    MAX_SERIES,
    OK,
    OTHER_ERROR,
    Calls,
    Gauge,
    Instance,
    decode_instance,
    encode_instance,
    instance_id,
)
from collector.records import MetricPoint, PredictSpan
from instrument import semconv

__all__ = ["CALL_METRICS", "GAUGES", "IO_DIRECTIONS", "OTHER_INSTANCE", "OperationsState", "attribute"]

CALL_METRICS = frozenset({semconv.METRIC_PREDICTIONS, semconv.METRIC_DURATION, semconv.METRIC_BATCH_SIZE})
GAUGES = frozenset(
    {
        *("process.cpu.utilization", "process.memory.usage", "process.memory.virtual"),
        *("process.open_file_descriptor.count", "process.thread.count", "system.filesystem.utilization"),
        *("hw.gpu.utilization", "hw.gpu.memory.usage", "hw.gpu.memory.limit"),
    }
)
IO_DIRECTIONS = {"process.disk.io": "disk.io.direction", "system.network.io": "network.io.direction"}
OTHER_INSTANCE = "_other"

_FORMAT = 1  # header byte of the serialised state; bump on any layout change and keep reading older ones
_HEAD = struct.Struct("<BI")  # format, CRC-32 of the rest (zlib-compressed JSON)


class OperationsState:
    """Mergeable operations data of one (model, version, window), or of a window's processes (PROCESS_KEY).

    `dropped` counts what was not folded in, by reason: "cumulative" (a counter point that needed
    OperationsIngest), "delta_gauge", "bad_point", "instance_limit", "series_limit". Not thread-safe: callers
    serialise updates, as for the sketches."""

    __slots__ = ("max_instances", "instances", "other", "dropped", "_largest")

    def __init__(self, max_instances: int = 1000) -> None:
        if max_instances < 1:
            raise ValueError(f"max_instances must be >= 1, got {max_instances}")
        self.max_instances = max_instances
        self.instances: dict[str, Instance] = {}
        self.other = Instance()  # call data of the instances past max_instances
        self.dropped: Counter[str] = Counter()  # points and series not folded in, by reason
        self._largest: str | None = None  # max(self.instances), cached while the state is full

    @classmethod
    def zero(cls, max_instances: int = 1000) -> OperationsState:
        return cls(max_instances)

    def __repr__(self) -> str:
        return f"OperationsState(instances={len(self.instances)}, dropped={dict(self.dropped)})"

    @property
    def is_empty(self) -> bool:
        return not self.instances and not self.other.has_calls

    # -- updates ------------------------------------------------------------------------------------------
    def add_points(self, points: Iterable[MetricPoint]) -> None:
        """Fold metric points in, whatever model they name (OperationsIngest routes them per state)."""
        for point in points:
            if point.name in CALL_METRICS:
                reason = self._add_call_point(point)
            elif point.name in GAUGES:
                reason = self._add_gauge(point)
            elif point.name in IO_DIRECTIONS:
                reason = self._add_io(point)
            else:
                continue  # not used here (predwatch.sdk.*, other system.* metrics)
            if reason:
                self.dropped[reason] += 1

    def add_spans(self, spans: Iterable[PredictSpan]) -> None:
        for span in spans:
            inst = self._slot(instance_id(span.resource))
            if inst is not None:
                inst.identify(span.resource)
            target = self.other if inst is None else inst
            calls = target.spans = target.spans or Calls()
            key = calls.key(OK if span.ok else (span.error_type or OTHER_ERROR)[:MAX_NAME])
            rows = max(span.batch_size, 0)
            calls.rows[key] += rows
            calls.batch_calls[key] += 1
            calls.timed_calls[key] += 1
            calls.latency.add(max(span.duration_s, 0.0))
            calls.batch.add(float(rows))

    def merge(self, other: OperationsState) -> OperationsState:
        """Add other into self (other is unchanged and shares nothing with self afterwards); returns self."""
        for iid, theirs in other.instances.items():
            mine = self._slot(iid)
            if mine is None:
                self.other.merge_calls(theirs)
                if theirs.has_resources:
                    self.dropped["instance_limit"] += 1
                continue
            mine.merge_calls(theirs)
            self.dropped["series_limit"] += mine.merge_resources(theirs)
        self.other.merge_calls(other.other)
        self.dropped.update(other.dropped)
        self.dropped = +self.dropped  # no zero entries
        return self

    def copy(self) -> OperationsState:
        return OperationsState(self.max_instances).merge(self)

    # -- serialisation -------------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """Format v1: format byte, CRC-32 of the rest, zlib-compressed JSON."""
        doc = {
            "max_instances": self.max_instances,
            "dropped": dict(self.dropped),
            "instances": [[iid, *encode_instance(inst)] for iid, inst in sorted(self.instances.items())],
            "other": encode_instance(self.other),
        }
        body = zlib.compress(json.dumps(doc, separators=(",", ":")).encode())
        return _HEAD.pack(_FORMAT, zlib.crc32(body)) + body

    @classmethod
    def from_bytes(cls, data: bytes | memoryview) -> OperationsState:
        """Raises ValueError for anything that is not an OperationsState written by this or an older version."""
        try:
            raw = bytes(data)
            if len(raw) < _HEAD.size or raw[0] != _FORMAT:
                raise ValueError(f"unknown format {raw[0] if raw else None}")
            _, crc = _HEAD.unpack_from(raw)
            if zlib.crc32(raw[_HEAD.size :]) != crc:
                raise ValueError("checksum mismatch")
            doc = json.loads(zlib.decompress(raw[_HEAD.size :]))
            max_instances = doc["max_instances"]
            if type(max_instances) is not int:
                raise ValueError("max_instances")
            state = cls(max_instances)
            for reason, n in doc["dropped"].items():
                if type(reason) is not str or type(n) is not int or n < 0:
                    raise ValueError("dropped")
                state.dropped[reason] = n
            for iid, *fields in doc["instances"]:
                if type(iid) is not str or iid in state.instances:
                    raise ValueError("instance id")
                state.instances[iid] = decode_instance(fields)
            if len(state.instances) > state.max_instances:
                raise ValueError("more instances than max_instances")
            state.other = decode_instance(doc["other"])
            return state
        except ValueError as exc:
            raise ValueError(f"invalid OperationsState bytes: {exc}") from exc
        except Exception as exc:  # KeyError, TypeError, zlib.error, ... from corrupt or foreign bytes
            raise ValueError(f"invalid OperationsState bytes: {type(exc).__name__}: {exc}") from exc

    # -- internals -----------------------------------------------------------------------------------------
    def _slot(self, iid: str) -> Instance | None:
        """The named instance for iid, created (evicting the largest id when full); None: it goes to other."""
        inst = self.instances.get(iid)
        if inst is not None:
            return inst
        if len(self.instances) >= self.max_instances:
            if self._largest is None:
                self._largest = max(self.instances)
            if iid > self._largest:
                return None
            evicted = self.instances.pop(self._largest)
            self._largest = None
            self.other.merge_calls(evicted)
            if evicted.has_resources:
                self.dropped["instance_limit"] += 1
        inst = self.instances[iid] = Instance()
        return inst

    def _add_call_point(self, p: MetricPoint) -> str | None:
        if not p.delta:
            return "cumulative"
        want = "sum" if p.name == semconv.METRIC_PREDICTIONS else "histogram"
        if p.kind != want or (want == "sum" and not (math.isfinite(p.value) and p.value >= 0)):
            return "bad_point"
        inst = self._slot(instance_id(p.resource))
        if inst is not None:
            inst.identify(p.resource)
        target = self.other if inst is None else inst
        calls = target.metrics = target.metrics or Calls()
        key = calls.key(_outcome_key(p.attributes))
        if p.name == semconv.METRIC_PREDICTIONS:
            calls.rows[key] += round(p.value)
        elif p.name == semconv.METRIC_DURATION:
            calls.latency.add_buckets(p.bounds, p.counts, p.value, p.min, p.max)
            calls.timed_calls[key] += p.count
        else:
            calls.batch.add_buckets(p.bounds, p.counts, p.value, p.min, p.max)
            calls.batch_calls[key] += p.count
        return None

    def _add_gauge(self, p: MetricPoint) -> str | None:
        if p.kind == "sum" and p.delta:
            return "delta_gauge"
        if p.kind not in ("gauge", "sum") or not math.isfinite(p.value) or not math.isfinite(p.time_s):
            return "bad_point"
        inst = self._slot(instance_id(p.resource))
        if inst is None:
            return "instance_limit"
        inst.identify(p.resource)
        key = (p.name, tuple(sorted((k, str(v)[:MAX_NAME]) for k, v in p.attributes.items())))
        gauge = inst.gauges.get(key)
        if gauge is None:
            if len(inst.gauges) >= MAX_SERIES:
                return "series_limit"
            gauge = inst.gauges[key] = Gauge()
        gauge.add(p.value, p.time_s)
        return None

    def _add_io(self, p: MetricPoint) -> str | None:
        if p.kind == "sum" and not p.delta:
            return "cumulative"
        direction = p.attributes.get(IO_DIRECTIONS[p.name], p.attributes.get("direction"))
        if p.kind != "sum" or not math.isfinite(p.value) or p.value < 0 or not isinstance(direction, str):
            return "bad_point"
        inst = self._slot(instance_id(p.resource))
        if inst is None:
            return "instance_limit"
        inst.identify(p.resource)
        key = (p.name, direction[:MAX_NAME])
        if key not in inst.io and len(inst.io) >= MAX_SERIES:
            return "series_limit"
        inst.io[key] = inst.io.get(key, 0.0) + p.value
        return None


def attribute(calls: OperationsState, processes: OperationsState) -> OperationsState:
    """A copy of `calls` in which every named instance also carries its process and host metrics from
    `processes`, the process state of the same window: a process's gauges and IO belong to every model it
    served in that window. Apply per window, then merge the windows of a range. Instances folded into
    "_other" get none."""
    out = calls.copy()
    for iid, inst in out.instances.items():
        source = processes.instances.get(iid)
        if source is not None:
            out.dropped["series_limit"] += inst.merge_resources(source)
    out.dropped = +out.dropped
    return out


def _outcome_key(attrs: Mapping[str, Any]) -> str:
    error_type = attrs.get(semconv.ATTR_ERROR_TYPE)
    if attrs.get(semconv.ATTR_OUTCOME) == semconv.OUTCOME_ERROR or error_type is not None:
        return str(error_type)[:MAX_NAME] if error_type is not None else OTHER_ERROR
    return OK
