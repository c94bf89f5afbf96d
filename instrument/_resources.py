"""Process, host and GPU gauges, read at export time (observable instruments cost nothing per call).

Names follow OpenTelemetry's semantic conventions: process.cpu.utilization (0..1 of all CPUs),
process.memory.usage (RSS), process.memory.virtual, process.disk.io and system.network.io (by direction),
process.open_file_descriptor.count, process.thread.count, system.filesystem.utilization; and, when
`pynvml` (package nvidia-ml-py) is importable and NVML finds a GPU, hw.gpu.utilization,
hw.gpu.memory.usage and hw.gpu.memory.limit per device (`hw.id`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from typing import Any

import psutil
from opentelemetry.metrics import CallbackOptions, Meter, Observation

from instrument._guard import fault

__all__ = ["register_resource_metrics"]

Callback = Callable[[CallbackOptions], Iterable[Observation]]


class _Process:
    """psutil.Process for the current pid (re-created after fork), and CPU utilisation between readings."""

    MIN_INTERVAL_S = 0.5  # CPU times tick in 10 ms steps: shorter intervals give nonsense ratios

    def __init__(self) -> None:
        self._proc: psutil.Process | None = None
        self._cpus = psutil.cpu_count() or 1
        self._last: tuple[float, float] | None = None  # (process CPU seconds, monotonic seconds)
        self._utilization = 0.0

    def get(self) -> psutil.Process:
        if self._proc is None or self._proc.pid != os.getpid():
            self._proc = psutil.Process()
            self._last = None
        return self._proc

    def cpu(self) -> float:
        times = self.get().cpu_times()
        now = (times.user + times.system, time.monotonic())
        if self._last is None:
            self._last = now
        elif now[1] - self._last[1] >= self.MIN_INTERVAL_S:
            used = now[0] - self._last[0]
            self._utilization = min(max(used / ((now[1] - self._last[1]) * self._cpus), 0.0), 1.0)
            self._last = now
        return self._utilization


def _guarded(name: str, read: Callable[[], Iterable[Observation]]) -> Callback:
    def callback(_options: CallbackOptions) -> Iterable[Observation]:
        try:
            return list(read())
        except Exception as exc:  # a gauge that cannot be read is skipped, never fatal
            fault(f"resource.{name}", exc)
            return []

    return callback


def _io_counters(proc: _Process) -> tuple[int, int]:
    try:
        counters = proc.get().io_counters()
        return counters.read_bytes, counters.write_bytes
    except (AttributeError, psutil.Error):
        return 0, 0


def _net_counters() -> tuple[int, int]:
    try:
        counters = psutil.net_io_counters()
        return counters.bytes_recv, counters.bytes_sent
    except (AttributeError, OSError):
        return 0, 0


def register_resource_metrics(meter: Meter, disk_path: str = "/") -> None:
    proc = _Process()
    proc.get()

    # Counters start from zero when the SDK starts: the first delta would otherwise carry a process's (or, for
    # the network, the whole host's since boot) history into the first window.
    disk_base = _io_counters(proc)
    net_base = _net_counters()

    def io() -> Iterable[Observation]:
        read, write = _io_counters(proc)
        yield Observation(max(read - disk_base[0], 0), {"disk.io.direction": "read"})
        yield Observation(max(write - disk_base[1], 0), {"disk.io.direction": "write"})

    def net() -> Iterable[Observation]:
        received, sent = _net_counters()
        yield Observation(max(received - net_base[0], 0), {"network.io.direction": "receive"})
        yield Observation(max(sent - net_base[1], 0), {"network.io.direction": "transmit"})

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


def _memory_reader(pynvml: Any) -> Callable[[Any], Any]:
    """NVML's memory info, version 2 where the driver and bindings have it: its `used` leaves out the memory
    the driver reserves (~0.6 GiB on an H200), as nvidia-smi does; version 1 counts it as used."""
    version = getattr(pynvml, "nvmlMemory_v2", None)
    if version is not None:
        try:
            pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(0), version=version)
        except Exception:  # older driver or bindings
            pass
        else:
            return lambda handle: pynvml.nvmlDeviceGetMemoryInfo(handle, version=version)
    return lambda handle: pynvml.nvmlDeviceGetMemoryInfo(handle)


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
    memory_info = _memory_reader(pynvml)
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
            yield Observation(memory_info(handle).used, attrs)

    def memory_total() -> Iterable[Observation]:
        for handle, attrs in devices:
            yield Observation(memory_info(handle).total, attrs)

    meter.create_observable_gauge("hw.gpu.utilization", [_guarded("gpu_util", utilization)], unit="1")
    meter.create_observable_up_down_counter("hw.gpu.memory.usage", [_guarded("gpu_mem", memory_used)], unit="By")
    meter.create_observable_up_down_counter("hw.gpu.memory.limit", [_guarded("gpu_total", memory_total)], unit="By")
