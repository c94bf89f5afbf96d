"""OperationsState end to end: the real SDK exports to a local OTLP/HTTP server, the protobuf bytes go through
collector.otlp_extract, and the answers are checked against the values the test recorded."""

from __future__ import annotations

import json
import math
import random
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import psutil
import pytest

import instrument
from collector.histogram import LATENCY_BOUNDS
from collector.operations import OperationsState, attribute
from collector.operations_ingest import PROCESS_KEY, OperationsIngest, StateKey
from collector.operations_metrics import operations_metrics
from collector.otlp_extract import extract_metrics, extract_traces
from collector.records import MetricPoint, PredictSpan
from instrument import _runtime, semconv

from ..instrument.otlp_server import OTLPServer
from .test_histogram import bucket_edges


@dataclass
class Received:
    points: list[MetricPoint] = field(default_factory=list)
    spans: list[PredictSpan] = field(default_factory=list)
    requests: list[tuple[list[MetricPoint], list[PredictSpan]]] = field(default_factory=list)  # one per request


def received(server: OTLPServer) -> Received:
    out = Received()
    for request in server.requests["/v1/metrics"]:
        result = extract_metrics(request)
        assert not result.rejected
        out.requests.append(([p for p in result.records if isinstance(p, MetricPoint)], []))
    for request in server.requests["/v1/traces"]:
        result = extract_traces(request)
        assert not result.rejected
        out.requests.append(([], [s for s in result.records if isinstance(s, PredictSpan)]))
    for points, spans in out.requests:
        out.points += points
        out.spans += spans
    return out


def fold(
    points: Sequence[MetricPoint] = (), spans: Sequence[PredictSpan] = (), ingest: OperationsIngest | None = None
) -> dict[StateKey, OperationsState]:
    return (ingest or OperationsIngest(60)).fold(points, spans)


def read(parts: dict[StateKey, OperationsState], model: str, version: str) -> OperationsState:
    """What a range read does: attribute process metrics per window, then merge the windows."""
    out = OperationsState.zero()
    for (m, v, start), state in parts.items():
        if (m, v) == (model, version):
            out.merge(attribute(state, parts.get((*PROCESS_KEY, start), OperationsState.zero())))
    return out


def same(a: Any, b: Any, path: str = "") -> None:
    """Equal answers: ints and strings exactly, floats to 1e-9 (sums merged in another order)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), path
        for key in a:
            same(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, f"{path}[{i}]")
    elif isinstance(a, float):
        assert b == pytest.approx(a, rel=1e-9, abs=1e-9), path
    else:
        assert a == b and type(a) is type(b), path


# --- the recorded truth ------------------------------------------------------------------------------------

RNG = np.random.default_rng(11)
LATENCIES = [RNG.lognormal(mean=-6, sigma=1.5, size=400), RNG.lognormal(mean=-4, sigma=1.0, size=250)]
ROWS = [RNG.integers(1, 300, size=400), RNG.integers(1, 5, size=250)]
FAILING = [3, 4, 5, 6, 7]  # rows of the calls that raise, on the first instance only


def instance_work(i: int) -> Callable[[], None]:
    def work() -> None:
        monitor = instrument.ModelMonitor(model="churn", version="3", task="regression")
        for latency, n in zip(LATENCIES[i], ROWS[i], strict=True):
            monitor.log(np.zeros((int(n), 2)), np.zeros(int(n)), latency_s=float(latency))
        if i == 0:

            @instrument.monitor(model="fraud", version="1", task="regression")
            def predict(x: Any) -> Any:
                if len(x) % 2:
                    raise ValueError("odd")
                if len(x) == 4:
                    raise KeyError("four")
                return np.zeros(len(x))

            for n in FAILING:
                try:
                    predict(np.zeros((n, 2)))
                except (ValueError, KeyError):
                    pass

    return work


@pytest.fixture(scope="module")
def sdk_data() -> Received:
    """Two SDK instances (processes): the first serves churn and fraud, the second churn only."""
    _runtime.reset_for_tests()
    try:
        with OTLPServer() as server:
            for i in range(2):
                instrument.configure(service_name=f"scorer-{i}", endpoint=server.url, environment="test")
                instance_work(i)()
                assert instrument.flush()
                _runtime.reset_for_tests()
            return received(server)
    finally:
        _runtime.reset_for_tests()


def test_sdk_counts_latency_and_resources(sdk_data: Received) -> None:
    parts = fold(sdk_data.points, sdk_data.spans)
    churn = operations_metrics(read(parts, "churn", "3"), window_s=60.0)
    json.dumps(churn, allow_nan=False)  # JSON-safe
    rows = np.concatenate(ROWS)
    latencies = np.concatenate(LATENCIES)
    assert churn["predictions"] == int(rows.sum())
    assert churn["calls"] == len(rows) and churn["errors"] == 0 and churn["error_rate"] == 0.0
    assert churn["throughput_per_s"] == pytest.approx(rows.sum() / 60.0)
    assert churn["source"] == "metrics"
    assert churn["latency_ms"]["mean"] == pytest.approx(latencies.mean() * 1e3, rel=1e-6)
    assert churn["latency_ms"]["max"] == pytest.approx(latencies.max() * 1e3, rel=1e-6)
    for name, q in (("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99)):
        exact = float(np.quantile(latencies, q, method="inverted_cdf"))
        lo, hi = bucket_edges(LATENCY_BOUNDS, exact, latencies.min(), latencies.max())
        assert lo * 1e3 - 1e-6 <= churn["latency_ms"][name] <= hi * 1e3 + 1e-6, name  # within the bucket
    assert churn["batch_size"]["mean"] == pytest.approx(rows.mean()) and churn["batch_size"]["max"] == rows.max()
    exact_p99 = float(np.quantile(rows, 0.99, method="inverted_cdf"))
    assert abs(churn["batch_size"]["p99"] - exact_p99) <= exact_p99  # powers-of-two buckets: within 2x

    by_service = {entry["service.name"]: entry for entry in churn["instances"]}
    assert set(by_service) == {"scorer-0", "scorer-1"}
    for i, entry in enumerate(by_service[f"scorer-{j}"] for j in range(2)):
        assert entry["predictions"] == int(ROWS[i].sum()) and entry["calls"] == len(ROWS[i])
        assert len(entry["service.instance.id"]) == 32 and entry["process.pid"] == psutil.Process().pid
        assert entry["host.name"] and entry["memory_bytes"] > 10e6 and entry["threads"] >= 1
        assert entry["cpu_percent"] is not None and entry["open_file_descriptors"] >= 3
        assert entry["disk_read_bytes"] is not None and entry["network_receive_bytes"] is not None
    assert churn["memory_bytes"] == pytest.approx(sum(e["memory_bytes"] for e in churn["instances"]))
    # one host: its network counter counts once however many instances ran on it
    assert churn["network_receive_bytes"] == max(e["network_receive_bytes"] for e in churn["instances"])

    fraud = operations_metrics(read(parts, "fraud", "1"), window_s=60.0)
    assert fraud["calls"] == len(FAILING) and fraud["errors"] == 4
    assert fraud["errors_by_type"] == {"ValueError": 3, "KeyError": 1}
    assert fraud["predictions"] == 6 and fraud["error_rows"] == 3 + 5 + 7 + 4
    assert fraud["error_rate"] == pytest.approx(0.8)
    # the first process served both models: its process metrics are attributed to both; the second only to churn
    (entry,) = fraud["instances"]
    assert entry["service.name"] == "scorer-0" and entry["memory_bytes"] == by_service["scorer-0"]["memory_bytes"]


def test_spans_only_producer_counts_from_spans(sdk_data: Received) -> None:
    from_metrics = operations_metrics(read(fold(sdk_data.points), "churn", "3"), 60.0)
    from_spans = operations_metrics(read(fold(spans=sdk_data.spans), "churn", "3"), 60.0)
    assert from_spans["source"] == "spans"
    for key in ("predictions", "calls", "errors", "error_rows"):
        assert from_spans[key] == from_metrics[key], key  # every call was sampled (sample_rate 1)
    for name in ("p50", "p90", "p99", "max"):
        assert from_spans["latency_ms"][name] == pytest.approx(from_metrics["latency_ms"][name], rel=1e-6)
    assert from_spans["cpu_percent"] is None  # spans alone carry no process metrics: none attributed
    fraud = operations_metrics(read(fold(spans=sdk_data.spans), "fraud", "1"), 60.0)
    assert fraud["errors_by_type"] == {"ValueError": 3, "KeyError": 1} and fraud["error_rows"] == 19


def test_metrics_win_over_spans_per_instance(sdk_data: Received) -> None:
    # the second instance sends only spans (its metric points lost), the first both: each is counted once
    second = {s.resource["service.instance.id"] for s in sdk_data.spans if s.resource["service.name"] == "scorer-1"}
    points = [p for p in sdk_data.points if p.resource.get("service.instance.id") not in second]
    answer = operations_metrics(read(fold(points, sdk_data.spans), "churn", "3"), 60.0)
    assert answer["source"] == "mixed" and answer["calls"] == sum(map(len, ROWS))
    assert {e["service.name"]: e["source"] for e in answer["instances"]} == {"scorer-0": "metrics", "scorer-1": "spans"}


def test_merge_of_parts_equals_the_state_of_all_points(sdk_data: Received) -> None:
    whole = fold(sdk_data.points, sdk_data.spans)
    rng = random.Random(5)
    for _ in range(3):
        requests = list(sdk_data.requests)
        rng.shuffle(requests)
        merged: dict[StateKey, OperationsState] = {}
        for points, spans in requests:  # each request folded alone, as the receivers hand them over
            for key, part in fold(points, spans).items():
                blob = part.to_bytes()  # through the store's bytes
                merged.setdefault(key, OperationsState.zero()).merge(OperationsState.from_bytes(blob))
        assert merged.keys() == whole.keys()
        for key, state in whole.items():
            same(operations_metrics(merged[key], 60.0), operations_metrics(state, 60.0))
        for model, version in (("churn", "3"), ("fraud", "1")):
            same(
                operations_metrics(read(merged, model, version), 60.0),
                operations_metrics(read(whole, model, version), 60.0),
            )


def test_round_trip_is_exact(sdk_data: Received) -> None:
    for state in fold(sdk_data.points, sdk_data.spans).values():
        blob = state.to_bytes()
        back = OperationsState.from_bytes(blob)
        assert back.to_bytes() == blob
        same(operations_metrics(back, 60.0), operations_metrics(state, 60.0))
    empty = OperationsState.zero()
    assert OperationsState.from_bytes(empty.to_bytes()).is_empty


def _framed(doc: Any) -> bytes:
    body = zlib.compress(json.dumps(doc).encode())
    return bytes([1]) + zlib.crc32(body).to_bytes(4, "little") + body


def test_garbage_bytes_raise_value_error(sdk_data: Received) -> None:
    blob = next(iter(fold(sdk_data.points).values())).to_bytes()
    valid = json.loads(zlib.decompress(blob[5:]))
    bad_docs: list[Any] = [
        [],
        {},
        {**valid, "max_instances": 0},
        {**valid, "max_instances": "1000"},
        {**valid, "dropped": {"x": -1}},
        {**valid, "instances": [[1, *valid["other"]]]},
        {**valid, "instances": [["a", *valid["other"][:-1]]]},
        {**valid, "other": [None, None, None, [{}, {}, {}, [0, 0, 0, [[999, 1]]], [0, 0, 0, []]], None, [], []]},
        {**valid, "other": [None, None, None, None, None, [["cpu", [], "x", 1, 0, 0, 0]], []]},
        {**valid, "other": [None, None, None, [{"": 1.5}, {}, {}, [0, 0, 0, []], [0, 0, 0, []]], None, [], []]},
    ]
    garbage = [b"", b"\x01", b"\x02" + blob[1:], blob[:-3], blob[:5] + bytes(10), b"\x01\x00\x00\x00\x00{}"]
    garbage += [bytes(random.Random(i).randbytes(200)) for i in range(20)]
    garbage += [_framed(doc) for doc in bad_docs]
    for data in garbage:
        with pytest.raises(ValueError, match="invalid OperationsState bytes"):
            OperationsState.from_bytes(data)
    assert OperationsState.from_bytes(_framed(valid)).to_bytes() == blob


def test_no_data_and_only_gauges() -> None:
    nothing = operations_metrics(OperationsState.zero(), 60.0)
    json.dumps(nothing, allow_nan=False)
    assert (nothing["predictions"], nothing["calls"], nothing["errors"], nothing["instances"]) == (0, 0, 0, [])
    assert nothing["error_rate"] is None and nothing["source"] is None and nothing["throughput_per_s"] == 0.0
    assert set(nothing["latency_ms"].values()) == {None} and set(nothing["batch_size"].values()) == {None}
    assert nothing["cpu_percent"] is None and nothing["memory_bytes"] is None and "gpu" not in nothing

    gauges = OperationsState.zero()
    resource = {"service.instance.id": "a", "host.name": "h"}
    gauges.add_points(
        [
            MetricPoint("process.cpu.utilization", "gauge", 10.0, 0.5, resource=resource),
            MetricPoint("process.memory.usage", "sum", 10.0, 1e9, resource=resource, delta=False),
        ]
    )
    answer = operations_metrics(gauges, 60.0)
    assert answer["calls"] == 0 and answer["cpu_percent"] == 50.0 and answer["memory_bytes"] == 1e9
    assert answer["instances"][0]["source"] is None and answer["instances"][0]["latency_ms"]["p99"] is None


def span(iid: str, duration_s: float = 0.01, ok: bool = True, rows: int = 1, **resource: Any) -> PredictSpan:
    return PredictSpan(
        "m", "1", 100.0, duration_s, ok, rows, None if ok else "E", {"service.instance.id": iid, **resource}
    )


def test_thousands_of_instances_stay_bounded() -> None:
    ids = [f"i{n:05d}" for n in range(5000)]
    rng = random.Random(2)
    order = ids * 2
    rng.shuffle(order)
    state = OperationsState.zero(max_instances=1000)
    state.add_spans(span(iid, rows=2) for iid in order)
    state.add_points(
        MetricPoint("process.memory.usage", "gauge", 100.0, 1.0, resource={"service.instance.id": iid}) for iid in ids
    )
    assert sorted(state.instances) == ids[:1000]  # the smallest ids, whatever the order
    answer = operations_metrics(state, 60.0)
    assert answer["calls"] == 10_000 and answer["predictions"] == 20_000
    other = answer["instances"][-1]
    assert other["service.instance.id"] == "_other" and other["calls"] == 8000 and other["memory_bytes"] is None
    assert answer["memory_bytes"] == 1000.0  # the named instances' only: the rest were dropped and counted
    assert state.dropped["instance_limit"] == 4000
    assert len(state.to_bytes()) < 200_000

    halves = [OperationsState.zero(1000), OperationsState.zero(1000)]
    for n, iid in enumerate(order):
        halves[n % 2].add_spans([span(iid, rows=2)])
    merged = halves[1].copy().merge(halves[0])
    assert sorted(merged.instances) == ids[:1000]
    same(operations_metrics(merged, 60.0)["instances"][-1], other)


def test_process_metrics_go_to_the_models_served_in_that_window() -> None:
    a, b = {"service.instance.id": "a", "host.name": "h1"}, {"service.instance.id": "b", "host.name": "h1"}
    ingest = OperationsIngest(60, clock=lambda: 1000.0, started_s=0.0)
    points = [
        MetricPoint("process.memory.usage", "gauge", 130.0, 100.0, resource=a),
        MetricPoint("process.memory.usage", "gauge", 150.0, 300.0, resource=a),
        MetricPoint("process.memory.usage", "gauge", 190.0, 999.0, resource=a),  # a serves nothing then
        MetricPoint("process.memory.usage", "gauge", 130.0, 7.0, resource=b),  # b never serves m
    ]
    spans = [replace(span("a"), time_s=125.0)]
    parts = ingest.fold(points, spans)
    assert set(parts) == {("m", "1", 120), ("", "", 120), ("", "", 180)}
    answer = operations_metrics(read(parts, "m", "1"), 60.0)
    (entry,) = answer["instances"]
    assert (entry["memory_bytes"], entry["memory_bytes_max"], entry["memory_bytes_last"]) == (200.0, 300.0, 300.0)
    assert answer["memory_bytes"] == 200.0


def test_points_that_cannot_be_folded_are_counted() -> None:
    r = {"service.instance.id": "a"}
    model = {semconv.ATTR_MODEL_NAME: "m", semconv.ATTR_MODEL_VERSION: "1"}
    state = OperationsState.zero()
    state.add_points(
        [
            MetricPoint(semconv.METRIC_PREDICTIONS, "sum", 1.0, 5.0, attributes=model, resource=r, delta=False),
            MetricPoint(semconv.METRIC_PREDICTIONS, "sum", 1.0, -1.0, attributes=model, resource=r),
            MetricPoint(semconv.METRIC_PREDICTIONS, "histogram", 1.0, 1.0, attributes=model, resource=r),
            MetricPoint("process.memory.usage", "sum", 1.0, 5.0, resource=r, delta=True),
            MetricPoint("process.memory.usage", "gauge", 1.0, math.nan, resource=r),
            MetricPoint(
                "process.disk.io", "sum", 1.0, 5.0, attributes={"disk.io.direction": "read"}, resource=r, delta=False
            ),
            MetricPoint("process.disk.io", "sum", 1.0, 5.0, resource=r),  # no direction
            MetricPoint("system.network.io", "sum", 1.0, 5.0, attributes={"direction": "receive"}, resource=r),
            MetricPoint("predwatch.sdk.dropped", "sum", 1.0, 5.0, resource=r),  # not ours: ignored
        ]
    )
    assert dict(state.dropped) == {"cumulative": 2, "bad_point": 4, "delta_gauge": 1}
    assert operations_metrics(state, 60.0)["network_receive_bytes"] == 5.0  # the older `direction` attribute


def test_error_types_are_bounded() -> None:
    state = OperationsState.zero()
    state.add_spans(replace(span("a", ok=False), error_type=f"E{n:03d}") for n in range(100))
    answer = operations_metrics(state, 60.0)
    assert answer["errors"] == 100 and len(answer["errors_by_type"]) == 65
    assert answer["errors_by_type"]["_OTHER"] == 36
