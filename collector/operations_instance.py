"""What an OperationsState keeps per service instance: calls by source, gauges, IO bytes; and their codec.

Merges are exact for every count. The encoders turn them into plain JSON-able lists (collector.operations
frames and compresses them); the decoders validate every field and raise ValueError on anything else.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from collector.histogram import BATCH_BOUNDS, LATENCY_BOUNDS, Histogram
from collector.records import Resource

__all__ = [
    "MAX_ERROR_TYPES",
    "MAX_NAME",
    "MAX_SERIES",
    "OK",
    "OTHER_ERROR",
    "Calls",
    "Gauge",
    "GaugeKey",
    "Instance",
    "decode_instance",
    "encode_instance",
    "instance_id",
]

OK = ""  # the outcome key of successful calls; failed ones are keyed by their error.type
OTHER_ERROR = "_OTHER"  # OpenTelemetry's catch-all error.type
UNKNOWN_INSTANCE = "_unknown"
MAX_ERROR_TYPES = 64  # per instance and source; past it, new error types count as OTHER_ERROR
MAX_SERIES = 64  # gauge series and IO series per instance
MAX_NAME = 256

GaugeKey = tuple[str, tuple[tuple[str, str], ...]]  # metric name, sorted attributes


def instance_id(resource: Resource) -> str:
    """service.instance.id, else "service.name/host.name/process.pid", else "_unknown"."""
    iid = resource.get("service.instance.id")
    if isinstance(iid, str) and iid:
        return iid[:MAX_NAME]
    parts = [resource.get(key) for key in ("service.name", "host.name", "process.pid")]
    if all(part is None for part in parts):
        return UNKNOWN_INSTANCE
    return "/".join("" if part is None else str(part) for part in parts)[:MAX_NAME]


class Calls:
    """The calls of one instance from one source (metric points or spans), by outcome key (OK or error.type)."""

    __slots__ = ("rows", "batch_calls", "timed_calls", "latency", "batch")

    def __init__(self) -> None:
        self.rows: Counter[str] = Counter()
        self.batch_calls: Counter[str] = Counter()  # batch-size histogram counts: one per call
        self.timed_calls: Counter[str] = Counter()  # duration histogram counts: calls with a latency
        self.latency = Histogram(LATENCY_BOUNDS)  # seconds
        self.batch = Histogram(BATCH_BOUNDS)  # rows per call

    def calls(self) -> Counter[str]:
        """Calls by outcome key: the batch-size count, or the duration count where that is larger."""
        keys = self.batch_calls.keys() | self.timed_calls.keys()
        return Counter({key: max(self.batch_calls[key], self.timed_calls[key]) for key in keys})

    def key(self, key: str) -> str:
        """key, or OTHER_ERROR when it would be an error type past MAX_ERROR_TYPES."""
        if key in self.rows or key in self.batch_calls or key in self.timed_calls:
            return key
        known = self.rows.keys() | self.batch_calls.keys() | self.timed_calls.keys()
        return key if key == OK or len(known - {OK}) < MAX_ERROR_TYPES else OTHER_ERROR

    def merge(self, other: Calls) -> None:
        for key in other.rows.keys() | other.batch_calls.keys() | other.timed_calls.keys():
            mine = self.key(key)
            for table, theirs in (
                (self.rows, other.rows),
                (self.batch_calls, other.batch_calls),
                (self.timed_calls, other.timed_calls),
            ):
                if key in theirs:
                    table[mine] += theirs[key]
        self.latency.merge(other.latency)
        self.batch.merge(other.batch)


class Gauge:
    """Samples of one gauge series: sum, count and max (mean and peak over the window) and the latest one."""

    __slots__ = ("sum", "count", "max", "last_time", "last")

    def __init__(self) -> None:
        self.sum = 0.0
        self.count = 0
        self.max = -math.inf
        self.last_time = -math.inf
        self.last = math.nan

    @property
    def mean(self) -> float:
        return self.sum / self.count if self.count else math.nan

    def add(self, value: float, time_s: float) -> None:
        self.sum += value
        self.count += 1
        self.max = max(self.max, value)
        if self.count == 1 or (time_s, value) > (self.last_time, self.last):  # ties: the larger value, any order
            self.last_time, self.last = time_s, value

    def merge(self, other: Gauge) -> None:
        if not other.count:
            return
        if not self.count or (other.last_time, other.last) > (self.last_time, self.last):
            self.last_time, self.last = other.last_time, other.last
        self.sum += other.sum
        self.count += other.count
        self.max = max(self.max, other.max)


class Instance:
    """One service instance (process): identity, calls by source, gauges and IO bytes."""

    __slots__ = ("service", "host", "pid", "metrics", "spans", "gauges", "io")

    def __init__(self) -> None:
        self.service: str | None = None
        self.host: str | None = None
        self.pid: int | None = None
        self.metrics: Calls | None = None  # from predwatch.* metric points
        self.spans: Calls | None = None  # from predict spans
        self.gauges: dict[GaugeKey, Gauge] = {}
        self.io: dict[tuple[str, str], float] = {}  # (metric, direction) -> bytes

    def identify(self, resource: Resource) -> None:
        service, host, pid = (resource.get(k) for k in ("service.name", "host.name", "process.pid"))
        if self.service is None and isinstance(service, str):
            self.service = service[:MAX_NAME]
        if self.host is None and isinstance(host, str):
            self.host = host[:MAX_NAME]
        if self.pid is None and isinstance(pid, int) and not isinstance(pid, bool):
            self.pid = pid

    @property
    def has_calls(self) -> bool:
        return self.metrics is not None or self.spans is not None

    @property
    def has_resources(self) -> bool:
        return bool(self.gauges or self.io)

    def merge_calls(self, other: Instance) -> None:
        if other.metrics is not None:
            self.metrics = self.metrics or Calls()
            self.metrics.merge(other.metrics)
        if other.spans is not None:
            self.spans = self.spans or Calls()
            self.spans.merge(other.spans)

    def merge_resources(self, other: Instance) -> int:
        """Add other's identity, gauges and IO; returns the number of series dropped past MAX_SERIES."""
        self.service = self.service if self.service is not None else other.service
        self.host = self.host if self.host is not None else other.host
        self.pid = self.pid if self.pid is not None else other.pid
        dropped = 0
        for key, gauge in other.gauges.items():
            mine = self.gauges.get(key)
            if mine is None:
                if len(self.gauges) >= MAX_SERIES:
                    dropped += 1
                    continue
                mine = self.gauges[key] = Gauge()
            mine.merge(gauge)
        for io_key, n in other.io.items():
            if io_key not in self.io and len(self.io) >= MAX_SERIES:
                dropped += 1
                continue
            self.io[io_key] = self.io.get(io_key, 0.0) + n
        return dropped


# -- codec ---------------------------------------------------------------------------------------------------


def encode_instance(inst: Instance) -> list[Any]:
    gauges = [
        [name, [list(kv) for kv in attrs], g.sum, g.count, g.max, g.last_time, g.last]
        for (name, attrs), g in sorted(inst.gauges.items())
    ]
    io = [[name, direction, n] for (name, direction), n in sorted(inst.io.items())]
    return [inst.service, inst.host, inst.pid, _encode_calls(inst.metrics), _encode_calls(inst.spans), gauges, io]


def decode_instance(doc: list[Any]) -> Instance:
    service, host, pid, metrics, spans, gauges, io = doc
    inst = Instance()
    inst.service = None if service is None else _str(service)
    inst.host = None if host is None else _str(host)
    inst.pid = None if pid is None else _int(pid, signed=True)
    inst.metrics, inst.spans = _decode_calls(metrics), _decode_calls(spans)
    for name, attrs, total, count, peak, last_time, last in gauges:
        g = inst.gauges[(_str(name), tuple((_str(k), _str(v)) for k, v in attrs))] = Gauge()
        g.sum, g.count, g.max = _float(total), _int(count), _float(peak)
        g.last_time, g.last = _float(last_time), _float(last)
    for name, direction, n in io:
        inst.io[(_str(name), _str(direction))] = _float(n)
    if len(inst.gauges) > MAX_SERIES or len(inst.io) > MAX_SERIES:
        raise ValueError("too many series")
    return inst


def _encode_hist(h: Histogram) -> list[Any]:
    return [h.sum, h.min, h.max, [[i, c] for i, c in enumerate(h.counts) if c]]


def _decode_hist(doc: list[Any], bounds: tuple[float, ...]) -> Histogram:
    total, lo, hi, counts = doc
    h = Histogram(bounds)
    h.sum, h.min, h.max = _float(total), _float(lo), _float(hi)
    for i, c in counts:
        h.counts[_int(i)] += _int(c)  # IndexError past the last bucket
    return h


def _encode_calls(c: Calls | None) -> list[Any] | None:
    if c is None:
        return None
    return [dict(c.rows), dict(c.batch_calls), dict(c.timed_calls), _encode_hist(c.latency), _encode_hist(c.batch)]


def _decode_calls(doc: list[Any] | None) -> Calls | None:
    if doc is None:
        return None
    rows, batch_calls, timed_calls, latency, batch = doc
    c = Calls()
    for table, raw in ((c.rows, rows), (c.batch_calls, batch_calls), (c.timed_calls, timed_calls)):
        table.update({_str(k): _int(v) for k, v in raw.items()})
    c.latency = _decode_hist(latency, LATENCY_BOUNDS)
    c.batch = _decode_hist(batch, BATCH_BOUNDS)
    return c


def _int(value: Any, signed: bool = False) -> int:
    if type(value) is not int or (value < 0 and not signed):
        raise ValueError(f"expected a count, got {value!r}")
    return value


def _float(value: Any) -> float:
    if type(value) not in (int, float):
        raise ValueError(f"expected a number, got {value!r}")
    return float(value)


def _str(value: Any) -> str:
    if type(value) is not str:
        raise ValueError(f"expected a string, got {value!r}")
    return value
