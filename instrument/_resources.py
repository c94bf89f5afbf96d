"""Process, host and GPU gauges, read at export time (observable instruments cost nothing per call).

Names follow OpenTelemetry's semantic conventions: process.cpu.utilization (0..1 of all CPUs),
process.memory.usage (RSS), process.memory.virtual, process.disk.io and system.network.io (by direction),
process.open_file_descriptor.count, process.thread.count, system.filesystem.utilization; and, when
`pynvml` (package nvidia-ml-py) is importable and NVML finds a GPU, hw.gpu.utilization,
hw.gpu.memory.usage and hw.gpu.memory.limit per device (`hw.id`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

import psutil
from opentelemetry.metrics import CallbackOptions, Meter, Observation

from instrument._guard import fault

__all__ = ["register_resource_metrics"]

Callback = Callable[[CallbackOptions], Iterable[Observation]]


class _Process:
    """psutil.Process for the current pid (re-created after fork)."""

    def __init__(self) -> None:
        self._proc: psutil.Process | None = None
        self._cpus = psutil.cpu_count() or 1

    def get(self) -> psutil.Process:
        if self._proc is None or self._proc.pid != os.getpid():
            self._proc = psutil.Process()
            self._proc.cpu_percent(None)  # the first reading only sets the baseline
        return self._proc

    def cpu(self) -> float:
        return float(self.get().cpu_percent(None)) / 100.0 / self._cpus


def _guarded(name: str, read: Callable[[], Iterable[Observation]]) -> Callback:
    def callback(_options: CallbackOptions) -> Iterable[Observation]:
        try:
            return list(read())
        except Exception as exc:  # a gauge that cannot be read is skipped, never fatal
            fault(f"resource.{name}", exc)
            return []

    return callback


def register_resource_metrics(meter: Meter, disk_path: str = "/") -> None:
    proc = _Process()
    proc.get()

    def io() -> Iterable[Observation]:
        counters = proc.get().io_counters()
        yield Observation(counters.read_bytes, {"disk.io.direction": "read"})
        yield Observation(counters.write_bytes, {"disk.io.direction": "write"})

    def net() -> Iterable[Observation]:
        counters = psutil.net_io_counters()
        yield Observation(counters.bytes_recv, {"network.io.direction": "receive"})
        yield Observation(counters.bytes_sent, {"network.io.direction": "transmit"})

    meter.create_observable_gauge(
        "process.cpu.utilization",
        [_guarded("cpu", lambda: [Observation(proc.cpu())])],
        unit="1",
        description="CPU time used by the process since the last reading, as a share of all CPUs",
    )
    meter.create_observable_up_down_counter(
        "process.memory.usage",
        [_guarded("rss", lambda: [Observation(proc.get().memory_info().rss)])],
        unit="By",
        description="Resident set size of the process",
    )
    meter.create_observable_up_down_counter(
        "process.memory.virtual",
        [_guarded("vms", lambda: [Observation(proc.get().memory_info().vms)])],
        unit="By",
    )
    if hasattr(psutil.Process, "io_counters"):
        meter.create_observable_counter("process.disk.io", [_guarded("disk_io", io)], unit="By")
    meter.create_observable_counter("system.network.io", [_guarded("net_io", net)], unit="By")
    if hasattr(psutil.Process, "num_fds"):
        meter.create_observable_up_down_counter(
            "process.open_file_descriptor.count",
            [_guarded("fds", lambda: [Observation(proc.get().num_fds())])],
            unit="{file_descriptor}",
        )
    meter.create_observable_up_down_counter(
        "process.thread.count",
        [_guarded("threads", lambda: [Observation(proc.get().num_threads())])],
        unit="{thread}",
    )
    meter.create_observable_gauge(
        "system.filesystem.utilization",
        [
            _guarded(
                "disk", lambda: [Observation(psutil.disk_usage(disk_path).percent / 100.0, {"mountpoint": disk_path})]
            )
        ],
        unit="1",
    )
    _register_gpu(meter)


def _register_gpu(meter: Meter) -> None:
    try:
        import pynvml  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError:
        return
    try:
        pynvml.nvmlInit()
        count = pynvml.nvmlDeviceGetCount()
    except Exception:  # no driver or no GPU: nothing to report
        return
    if count == 0:
        return
    devices: list[tuple[Any, dict[str, str]]] = []
    for index in range(count):
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        uuid = pynvml.nvmlDeviceGetUUID(handle)
        name = pynvml.nvmlDeviceGetName(handle)
        attrs = {
            "hw.id": uuid.decode() if isinstance(uuid, bytes) else str(uuid),
            "hw.name": name.decode() if isinstance(name, bytes) else str(name),
            "hw.type": "gpu",
        }
        devices.append((handle, attrs))

    def utilization() -> Iterable[Observation]:
        for handle, attrs in devices:
            yield Observation(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu / 100.0, attrs)

    def memory_used() -> Iterable[Observation]:
        for handle, attrs in devices:
            yield Observation(pynvml.nvmlDeviceGetMemoryInfo(handle).used, attrs)

    def memory_total() -> Iterable[Observation]:
        for handle, attrs in devices:
            yield Observation(pynvml.nvmlDeviceGetMemoryInfo(handle).total, attrs)

    meter.create_observable_gauge("hw.gpu.utilization", [_guarded("gpu_util", utilization)], unit="1")
    meter.create_observable_up_down_counter("hw.gpu.memory.usage", [_guarded("gpu_mem", memory_used)], unit="By")
    meter.create_observable_up_down_counter("hw.gpu.memory.limit", [_guarded("gpu_total", memory_total)], unit="By")
