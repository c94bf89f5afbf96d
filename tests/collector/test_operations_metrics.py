from __future__ import annotations

import json
from typing import Any

import pytest

from collector.histogram import BATCH_BOUNDS, LATENCY_BOUNDS
from collector.operations import OperationsState
from collector.operations_metrics import operations_metrics
from collector.records import MetricPoint, PredictSpan
from instrument import semconv

MODEL = {semconv.ATTR_MODEL_NAME: "m", semconv.ATTR_MODEL_VERSION: "1", semconv.ATTR_OUTCOME: "ok"}


def res(iid: str, host: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"service.instance.id": iid, "service.name": "svc", "process.pid": 7}
    if host is not None:
        out["host.name"] = host
    return out


def gauge(name: str, iid: str, host: str | None, values: list[float], **attrs: Any) -> list[MetricPoint]:
    return [
        MetricPoint(name, "gauge", float(t), v, attributes=attrs, resource=res(iid, host)) for t, v in enumerate(values)
    ]


def io(name: str, direction: str, iid: str, host: str | None, value: float) -> MetricPoint:
    key = "disk.io.direction" if name == "process.disk.io" else "network.io.direction"
    return MetricPoint(name, "sum", 5.0, value, attributes={key: direction}, resource=res(iid, host))


def buckets(bounds: tuple[float, ...], values: list[float], **attrs: Any) -> dict[str, Any]:
    counts = [0] * (len(bounds) + 1)
    for v in values:
        counts[sum(b < v for b in bounds)] += 1
    return {"count": len(values), "bounds": list(bounds), "counts": counts, "min": min(values), "max": max(values)}


@pytest.fixture
def fleet() -> OperationsState:
    """a, b share host h1 (and its GPU-0); c runs on h2 with GPU-1; d splits its CPU by state."""
    state = OperationsState.zero()
    points = [
        *gauge("process.cpu.utilization", "a", "h1", [0.2, 0.4]),
        *gauge("process.cpu.utilization", "b", "h1", [0.1]),
        *gauge("process.cpu.utilization", "d", "h3", [0.1], **{"process.cpu.state": "user"}),
        *gauge("process.cpu.utilization", "d", "h3", [0.05], **{"process.cpu.state": "system"}),
        *gauge("process.memory.usage", "a", "h1", [100, 300]),
        *gauge("process.memory.usage", "b", "h1", [50]),
        *gauge("process.memory.usage", "c", "h2", [1000]),
        *gauge("process.open_file_descriptor.count", "a", "h1", [12, 10]),
        *gauge("process.open_file_descriptor.count", "b", "h1", [20]),
        *gauge("system.filesystem.utilization", "a", "h1", [0.5], mountpoint="/"),
        *gauge("system.filesystem.utilization", "c", "h2", [0.9], mountpoint="/"),
        *gauge("hw.gpu.utilization", "a", "h1", [0.5], **{"hw.id": "GPU-0"}),
        *gauge("hw.gpu.utilization", "b", "h1", [0.7], **{"hw.id": "GPU-0"}),
        *gauge("hw.gpu.utilization", "c", "h2", [0.2], **{"hw.id": "GPU-1"}),
        *gauge("hw.gpu.memory.usage", "a", "h1", [1e9], **{"hw.id": "GPU-0"}),
        *gauge("hw.gpu.memory.usage", "b", "h1", [3e9], **{"hw.id": "GPU-0"}),
        *gauge("hw.gpu.memory.usage", "c", "h2", [4e9], **{"hw.id": "GPU-1"}),
        *gauge("hw.gpu.memory.limit", "a", "h1", [16e9], **{"hw.id": "GPU-0"}),
        *gauge("hw.gpu.memory.limit", "c", "h2", [8e9], **{"hw.id": "GPU-1"}),
        io("system.network.io", "receive", "a", "h1", 500),
        io("system.network.io", "receive", "b", "h1", 700),
        io("system.network.io", "receive", "c", "h2", 100),
        io("system.network.io", "receive", "e", None, 40),  # no host.name: the instance is its own host
        io("process.disk.io", "read", "a", "h1", 10),
        io("process.disk.io", "read", "b", "h1", 20),
        # a sends rows and durations but no batch sizes; c all three
        MetricPoint(semconv.METRIC_PREDICTIONS, "sum", 5.0, 30, attributes=MODEL, resource=res("a", "h1")),
        MetricPoint(
            semconv.METRIC_DURATION,
            "histogram",
            5.0,
            0.06,
            attributes=MODEL,
            resource=res("a", "h1"),
            **buckets(LATENCY_BOUNDS, [0.01, 0.02, 0.03]),
        ),
        MetricPoint(semconv.METRIC_PREDICTIONS, "sum", 5.0, 8, attributes=MODEL, resource=res("c", "h2")),
        MetricPoint(
            semconv.METRIC_BATCH_SIZE,
            "histogram",
            5.0,
            8,
            attributes=MODEL,
            resource=res("c", "h2"),
            **buckets(BATCH_BOUNDS, [4, 4]),
        ),
        MetricPoint(
            semconv.METRIC_DURATION,
            "histogram",
            5.0,
            0.1,
            attributes=MODEL,
            resource=res("c", "h2"),
            **buckets(LATENCY_BOUNDS, [0.1]),  # one of c's two calls was not timed
        ),
    ]
    state.add_points(points)
    state.add_spans([PredictSpan("m", "1", 1.0, 0.5, False, 2, "TimeoutError", res("b", "h1"))])
    return state


def test_instances(fleet: OperationsState) -> None:
    answer = operations_metrics(fleet, window_s=10.0)
    json.dumps(answer, allow_nan=False)
    by_id = {e["service.instance.id"]: e for e in answer["instances"]}
    assert list(by_id) == ["a", "b", "c", "d", "e"]
    a, b, c, d = by_id["a"], by_id["b"], by_id["c"], by_id["d"]
    assert (a["service.name"], a["host.name"], a["process.pid"], by_id["e"]["host.name"]) == ("svc", "h1", 7, None)
    assert (a["cpu_percent"], a["cpu_percent_max"]) == (pytest.approx(30.0), 40.0)
    assert d["cpu_percent"] == pytest.approx(15.0)  # series split by cpu state add up
    assert (a["memory_bytes"], a["memory_bytes_max"], a["memory_bytes_last"]) == (200.0, 300.0, 300.0)
    assert a["open_file_descriptors"] == 10.0 and a["filesystem_percent"] == 50.0
    assert (a["calls"], a["predictions"], a["source"]) == (3, 30, "metrics")  # no batch sizes: timed calls
    assert a["latency_ms"]["max"] == pytest.approx(30.0) and a["batch_size"]["mean"] is None
    assert (c["calls"], c["batch_size"]["mean"], c["latency_ms"]["mean"]) == (2, 4.0, pytest.approx(100.0))
    assert (b["source"], b["errors_by_type"], b["error_rate"], b["error_rows"]) == (
        "spans",
        {"TimeoutError": 1},
        1.0,
        2,
    )
    assert a["gpu"] == {
        "devices": 1,
        "utilization_percent": 50.0,
        "utilization_percent_max": 50.0,
        "memory_bytes": 1e9,
        "memory_limit_bytes": 16e9,
    }
    assert "gpu" not in d and d["calls"] == 0 and d["error_rate"] is None and d["latency_ms"]["p50"] is None


def test_totals(fleet: OperationsState) -> None:
    answer = operations_metrics(fleet, window_s=10.0)
    assert (answer["calls"], answer["errors"], answer["predictions"], answer["source"]) == (6, 1, 38, "mixed")
    assert answer["error_rate"] == pytest.approx(1 / 6)
    assert answer["throughput_per_s"] == pytest.approx(3.8) and answer["calls_per_s"] == pytest.approx(0.6)
    assert answer["cpu_percent"] == pytest.approx((30 + 10 + 15) / 3)  # the average instance
    assert answer["cpu_percent_max"] == pytest.approx(40.0)
    assert answer["memory_bytes"] == 200 + 50 + 1000  # the fleet's mean RSS
    assert answer["memory_bytes_max"] == 1000 and answer["memory_bytes_last"] == 300 + 50 + 1000
    assert answer["open_file_descriptors"] == 30 and answer["filesystem_percent"] == 90.0
    assert answer["disk_read_bytes"] == 30 and answer["disk_write_bytes"] is None
    assert answer["network_receive_bytes"] == 700 + 100 + 40  # one figure per host
    assert answer["network_transmit_bytes"] is None
    assert answer["gpu"] == {
        "devices": 2,
        "utilization_percent": pytest.approx((60 + 20) / 2),  # GPU-0 pools a's and b's samples
        "utilization_percent_max": 70.0,
        "memory_bytes": 2e9 + 4e9,
        "memory_limit_bytes": 16e9 + 8e9,
    }
    latency = answer["latency_ms"]
    assert latency["max"] == pytest.approx(500.0) and latency["mean"] == pytest.approx((60 + 100 + 500) / 5)


def test_window_must_be_positive(fleet: OperationsState) -> None:
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="window_s"):
            operations_metrics(fleet, bad)
