"""Process and GPU gauges. NVML is replaced by a stand-in module: no GPU on the test machines."""

from __future__ import annotations

import sys
import types
from typing import Any

import psutil
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from instrument._guard import STATS
from instrument._resources import register_resource_metrics


def collect(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    data = reader.get_metrics_data()
    out: dict[str, list[Any]] = {}
    for rm in data.resource_metrics if data else []:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                out.setdefault(m.name, []).extend(m.data.data_points)
    return out


def fake_nvml(devices: list[tuple[str, int, int, int]], fail_init: bool = False) -> types.ModuleType:
    """A stand-in for nvidia-ml-py: (uuid, utilization %, memory used, memory total) per device."""
    module = types.ModuleType("pynvml")

    def init() -> None:
        if fail_init:
            raise RuntimeError("NVML Shared Library Not Found")

    module.nvmlInit = init  # type: ignore[attr-defined]
    module.nvmlDeviceGetCount = lambda: len(devices)  # type: ignore[attr-defined]
    module.nvmlDeviceGetHandleByIndex = lambda i: devices[i]  # type: ignore[attr-defined]
    module.nvmlDeviceGetUUID = lambda h: h[0].encode()  # type: ignore[attr-defined]
    module.nvmlDeviceGetName = lambda h: "NVIDIA H100"  # type: ignore[attr-defined]
    module.nvmlDeviceGetUtilizationRates = lambda h: types.SimpleNamespace(gpu=h[1])  # type: ignore[attr-defined]
    module.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(used=h[2], total=h[3])  # type: ignore[attr-defined]
    return module


def test_gauges_and_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        sys.modules, "pynvml", fake_nvml([("GPU-aaa", 37, 5 * 2**30, 80 * 2**30), ("GPU-bbb", 0, 0, 80 * 2**30)])
    )
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    register_resource_metrics(provider.get_meter("t"))
    points = collect(reader)
    util = {p.attributes["hw.id"]: p.value for p in points["hw.gpu.utilization"]}
    assert util == {"GPU-aaa": 0.37, "GPU-bbb": 0.0}
    used = {p.attributes["hw.id"]: p.value for p in points["hw.gpu.memory.usage"]}
    assert used == {"GPU-aaa": 5 * 2**30, "GPU-bbb": 0}
    assert {p.value for p in points["hw.gpu.memory.limit"]} == {80 * 2**30}
    assert {p.attributes["hw.name"] for p in points["hw.gpu.utilization"]} == {"NVIDIA H100"}
    (rss,) = points["process.memory.usage"]
    assert abs(rss.value - psutil.Process().memory_info().rss) < 100 * 2**20
    (fds,) = points["process.open_file_descriptor.count"]
    assert fds.value == pytest.approx(psutil.Process().num_fds(), abs=20)
    (threads,) = points["process.thread.count"]
    assert threads.value >= 1
    (disk,) = points["system.filesystem.utilization"]
    assert disk.value == pytest.approx(psutil.disk_usage("/").percent / 100, abs=0.01)
    (cpu,) = points["process.cpu.utilization"]
    assert 0.0 <= cpu.value <= 1.0
    provider.shutdown()


def test_memory_in_use_leaves_out_what_the_driver_reserves(monkeypatch: pytest.MonkeyPatch) -> None:
    # NVML's version-2 memory info (drivers since 510) reports the driver's reservation apart; version 1 counts
    # it as used, which made the gauge read 0.6 GiB above nvidia-smi on an H200 (tests/device/nvml_check.py).
    module = fake_nvml([("GPU-aaa", 0, 5 * 2**30, 80 * 2**30)])
    module.nvmlMemory_v2 = object()  # type: ignore[attr-defined]
    reserved = 600 * 2**20

    def memory_info(handle: Any, version: Any = None) -> Any:
        used = handle[2] if version is module.nvmlMemory_v2 else handle[2] + reserved  # type: ignore[attr-defined]
        return types.SimpleNamespace(used=used, total=handle[3], reserved=reserved)

    module.nvmlDeviceGetMemoryInfo = memory_info  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pynvml", module)
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    register_resource_metrics(provider.get_meter("t"))
    points = collect(reader)
    assert [p.value for p in points["hw.gpu.memory.usage"]] == [5 * 2**30]
    assert [p.value for p in points["hw.gpu.memory.limit"]] == [80 * 2**30]
    provider.shutdown()


@pytest.mark.parametrize("nvml", [None, "failing"])
def test_no_gpu_means_no_gpu_metrics(monkeypatch: pytest.MonkeyPatch, nvml: str | None) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None if nvml is None else fake_nvml([], fail_init=True))
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    register_resource_metrics(provider.get_meter("t"))
    names = set(collect(reader))
    assert "process.memory.usage" in names
    assert not {n for n in names if n.startswith("hw.gpu")}
    provider.shutdown()


def test_a_failing_gauge_is_skipped_and_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)
    STATS.reset()
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    register_resource_metrics(provider.get_meter("t"))

    def broken(path: str) -> Any:
        raise OSError("disk gone")

    monkeypatch.setattr(psutil, "disk_usage", broken)
    names = set(collect(reader))
    assert "system.filesystem.utilization" not in names and "process.memory.usage" in names
    assert STATS.errors["resource.disk"] == 1
    provider.shutdown()


def test_cpu_utilization_is_a_share_of_all_cpus() -> None:
    import time

    from instrument._resources import _Process

    proc = _Process()
    assert proc.cpu() == 0.0  # the first reading only sets the baseline
    end = time.monotonic() + 0.6
    while time.monotonic() < end:  # one busy thread: about 1 / cpu_count of the machine
        pass
    share = proc.cpu()
    cpus = psutil.cpu_count() or 1
    assert 0.5 / cpus < share <= 1.0 / cpus + 0.05
    assert proc.cpu() == share  # too soon for a new reading: the last one stands
