"""The operations answer (DESIGN.md, GET /api/v1/models/{model}/operations): a pure function of a state.

    operations_metrics(attribute(calls, processes), window_s=60.0)
    {"predictions", "calls", "errors", "errors_by_type", "error_rows", "error_rate", "throughput_per_s",
     "calls_per_s", "latency_ms": {"p50", "p90", "p95", "p99", "mean", "max"},
     "batch_size": {"mean", "p50", "p99", "max"}, "cpu_percent", "cpu_percent_max", "memory_bytes",
     "memory_bytes_max", "memory_bytes_last", "memory_virtual_bytes", "open_file_descriptors", "threads",
     "filesystem_percent", "disk_read_bytes", "disk_write_bytes", "network_receive_bytes",
     "network_transmit_bytes", "gpu"?, "source", "dropped",
     "instances": [{"service.instance.id", "service.name", "host.name", "process.pid", ...the same keys}]}

Definitions:
- predictions: rows of successful calls; error_rows: rows of failed calls; calls, errors: calls (a batch
  is one call); error_rate = errors / calls; throughput_per_s = predictions / window_s, calls_per_s =
  calls / window_s, where window_s is the length of the range read. source: "metrics" or "spans" (per
  instance, see collector.operations), "mixed" in the totals when instances differ, None without calls.
- latency_ms and batch_size percentiles come from the explicit buckets (collector.histogram.quantile, as
  Prometheus' histogram_quantile: linear interpolation inside the bucket, its edges narrowed to the recorded
  min and max). Error bound: the estimate and the exact quantile (numpy's method="inverted_cdf") lie in the
  same bucket, so they differ by less than its width. The SDK's latency buckets past (0, 10 us] are at
  most 40% of their upper edge wide (2 ms between 3 and 5 ms, 0.5 ms between 1 and 1.5 ms); batch sizes
  use powers of two (between 64 and 128 rows: 64). Without a recorded max, the overflow bucket (past 70 s,
  65,536 rows) answers its lower edge. mean = sum / count and max are exact (max when the points carried it).
- Per instance, from its gauges over the window (a sample mean, the SDK samples at a fixed interval):
  cpu_percent = mean of process.cpu.utilization x 100 (share of all the host's CPUs), cpu_percent_max its
  peak; memory_bytes = mean RSS, memory_bytes_max the peak, memory_bytes_last the latest; series split by
  attributes (e.g. cpu state) are added up. open_file_descriptors and threads: the latest value;
  filesystem_percent: the fullest mount's latest utilisation. Disk and network: bytes in the window.
- Totals: cpu_percent = mean of the instances' cpu_percent (the average instance), cpu_percent_max = the
  highest instance peak; memory_bytes, memory_bytes_last, memory_virtual_bytes, open_file_descriptors,
  threads and disk bytes are sums over instances (memory_bytes: the fleet's mean RSS), memory_bytes_max is
  the largest single-process peak, filesystem_percent the fullest. system.network.io is a host counter:
  each host (host.name) counts once, with the largest figure any of its instances saw. GPUs are host
  devices too: one per (host.name, hw.id), samples of every instance reporting it pooled; gpu =
  {"devices", "utilization_percent" (mean over devices), "utilization_percent_max", "memory_bytes" (sum of
  device means), "memory_limit_bytes"} and appears only when some instance reported a GPU.
- Resource figures are None when no instance reported them; nothing is ever NaN or infinite (JSON-safe).
- "_other" (instances past the state's limit) appears as an instance with call data only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from collector.histogram import BATCH_BOUNDS, LATENCY_BOUNDS, Histogram, quantile
from collector.operations import OTHER_INSTANCE, OperationsState
from collector.operations_instance import OK, Calls, Gauge, Instance

__all__ = ["operations_metrics"]

_CPU, _RSS, _VMS = "process.cpu.utilization", "process.memory.usage", "process.memory.virtual"
_FDS, _THREADS, _FS = "process.open_file_descriptor.count", "process.thread.count", "system.filesystem.utilization"
_GPU_UTIL, _GPU_MEM, _GPU_LIMIT = "hw.gpu.utilization", "hw.gpu.memory.usage", "hw.gpu.memory.limit"
_IO = {
    "disk_read_bytes": ("process.disk.io", "read"),
    "disk_write_bytes": ("process.disk.io", "write"),
    "network_receive_bytes": ("system.network.io", "receive"),
    "network_transmit_bytes": ("system.network.io", "transmit"),
}


def operations_metrics(state: OperationsState, window_s: float) -> dict[str, Any]:
    if not window_s > 0:
        raise ValueError(f"window_s must be > 0, got {window_s}")
    members = sorted(state.instances.items())
    if state.other.metrics is not None or state.other.spans is not None:
        members.append((OTHER_INSTANCE, state.other))
    instances = []
    for iid, inst in members:
        entry: dict[str, Any] = {
            "service.instance.id": iid,
            "service.name": inst.service,
            "host.name": inst.host,
            "process.pid": inst.pid,
        }
        calls = _source(inst)
        entry.update(_calls([calls[1]] if calls else [], window_s))
        entry["source"] = calls[0] if calls else None
        entry.update(_resources(inst))
        instances.append(entry)
    chosen = [c for c in map(_source, (inst for _, inst in members)) if c is not None]
    answer = _calls([calls for _, calls in chosen], window_s)
    sources = {name for name, _ in chosen}
    answer["source"] = sources.pop() if len(sources) == 1 else ("mixed" if sources else None)
    answer.update(_totals(instances, [inst for _, inst in members]))
    answer["dropped"] = dict(state.dropped)
    answer["instances"] = instances
    return answer


def _source(inst: Instance) -> tuple[str, Calls] | None:
    if inst.metrics is not None:
        return "metrics", inst.metrics
    if inst.spans is not None:
        return "spans", inst.spans
    return None


def _calls(sources: list[Calls], window_s: float) -> dict[str, Any]:
    latency, batch = Histogram(LATENCY_BOUNDS), Histogram(BATCH_BOUNDS)
    calls_by_key: dict[str, int] = {}
    rows: dict[str, int] = {}
    for calls in sources:
        for key, n in calls.calls().items():
            calls_by_key[key] = calls_by_key.get(key, 0) + n
        for key, n in calls.rows.items():
            rows[key] = rows.get(key, 0) + n
        latency.merge(calls.latency)
        batch.merge(calls.batch)
    total = sum(calls_by_key.values())
    errors = {key: n for key, n in sorted(calls_by_key.items()) if key != OK and n}
    predictions = rows.get(OK, 0)
    return {
        "predictions": predictions,
        "calls": total,
        "errors": sum(errors.values()),
        "errors_by_type": errors,
        "error_rows": sum(n for key, n in rows.items() if key != OK),
        "error_rate": sum(errors.values()) / total if total else None,
        "throughput_per_s": predictions / window_s,
        "calls_per_s": total / window_s,
        "latency_ms": _latency(latency),
        "batch_size": _batch(batch),
    }


def _latency(h: Histogram) -> dict[str, float | None]:
    if not h.count:
        return dict.fromkeys(("p50", "p90", "p95", "p99", "mean", "max"))
    ms = {f"p{round(q * 100)}": _finite(quantile(h, q) * 1e3) for q in (0.5, 0.9, 0.95, 0.99)}
    return {**ms, "mean": _finite(h.sum / h.count * 1e3), "max": _finite(h.max * 1e3)}


def _batch(h: Histogram) -> dict[str, float | None]:
    if not h.count:
        return dict.fromkeys(("mean", "p50", "p99", "max"))
    return {
        "mean": _finite(h.sum / h.count),
        "p50": _finite(quantile(h, 0.5)),
        "p99": _finite(quantile(h, 0.99)),
        "max": _finite(h.max),
    }


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _series(inst: Instance, name: str) -> list[Gauge]:
    return [g for (n, _), g in inst.gauges.items() if n == name and g.count]


def _sum(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return _finite(math.fsum(present)) if present else None


def _max(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def _resources(inst: Instance) -> dict[str, Any]:
    cpu, rss = _series(inst, _CPU), _series(inst, _RSS)
    fs = _series(inst, _FS)
    out: dict[str, Any] = {
        "cpu_percent": _sum(g.mean * 100 for g in cpu),
        "cpu_percent_max": _sum(g.max * 100 for g in cpu),
        "memory_bytes": _sum(g.mean for g in rss),
        "memory_bytes_max": _sum(g.max for g in rss),
        "memory_bytes_last": _sum(g.last for g in rss),
        "memory_virtual_bytes": _sum(g.mean for g in _series(inst, _VMS)),
        "open_file_descriptors": _sum(g.last for g in _series(inst, _FDS)),
        "threads": _sum(g.last for g in _series(inst, _THREADS)),
        "filesystem_percent": _max(g.last * 100 for g in fs),
    }
    for key, io_key in _IO.items():
        out[key] = inst.io.get(io_key)
    gpu = _gpu(_devices([inst]))
    if gpu is not None:
        out["gpu"] = gpu
    return out


def _devices(members: Iterable[Instance]) -> dict[tuple[str, str], dict[str, Gauge]]:
    """GPU gauges pooled per (host, hw.id) and metric name."""
    devices: dict[tuple[str, str], dict[str, Gauge]] = {}
    for inst in members:
        for (name, attrs), gauge in inst.gauges.items():
            if name in (_GPU_UTIL, _GPU_MEM, _GPU_LIMIT) and gauge.count:
                device = (inst.host or "", dict(attrs).get("hw.id", ""))
                pooled = devices.setdefault(device, {}).setdefault(name, Gauge())
                pooled.merge(gauge)
    return devices


def _gpu(devices: dict[tuple[str, str], dict[str, Gauge]]) -> dict[str, Any] | None:
    if not devices:
        return None
    util = [d[_GPU_UTIL] for d in devices.values() if _GPU_UTIL in d]
    return {
        "devices": len(devices),
        "utilization_percent": _finite(math.fsum(g.mean for g in util) / len(util) * 100) if util else None,
        "utilization_percent_max": _max(g.max * 100 for g in util),
        "memory_bytes": _sum(d[_GPU_MEM].mean for d in devices.values() if _GPU_MEM in d),
        "memory_limit_bytes": _sum(d[_GPU_LIMIT].last for d in devices.values() if _GPU_LIMIT in d),
    }


def _totals(entries: list[dict[str, Any]], members: list[Instance]) -> dict[str, Any]:
    def column(key: str) -> list[Any]:
        return [e[key] for e in entries if e[key] is not None]

    cpu = column("cpu_percent")
    out: dict[str, Any] = {
        "cpu_percent": math.fsum(cpu) / len(cpu) if cpu else None,
        "cpu_percent_max": _max(column("cpu_percent_max")),
        "memory_bytes": _sum(column("memory_bytes")),
        "memory_bytes_max": _max(column("memory_bytes_max")),
        "memory_bytes_last": _sum(column("memory_bytes_last")),
        "memory_virtual_bytes": _sum(column("memory_virtual_bytes")),
        "open_file_descriptors": _sum(column("open_file_descriptors")),
        "threads": _sum(column("threads")),
        "filesystem_percent": _max(column("filesystem_percent")),
        "disk_read_bytes": _sum(column("disk_read_bytes")),
        "disk_write_bytes": _sum(column("disk_write_bytes")),
    }
    for key in ("network_receive_bytes", "network_transmit_bytes"):
        per_host: dict[str, float] = {}
        for entry in entries:
            if entry[key] is not None:
                host = entry["host.name"] or entry["service.instance.id"]
                per_host[host] = max(per_host.get(host, 0.0), entry[key])
        out[key] = _sum(per_host.values())
    gpu = _gpu(_devices(members))
    if gpu is not None:
        out["gpu"] = gpu
    return out
