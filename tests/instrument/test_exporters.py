"""End to end through the real OTLP/HTTP exporters the SDK builds, to a local server that decodes protobuf."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality

import instrument
from instrument import _runtime, semconv

from .otlp_server import OTLPServer, attributes, value


@pytest.fixture
def server() -> Iterator[OTLPServer]:
    _runtime.reset_for_tests()
    with OTLPServer() as srv:
        instrument.configure(
            service_name="churn-api", endpoint=srv.url, headers={"Authorization": "Bearer s3cret"}, environment="test"
        )
        yield srv
    _runtime.reset_for_tests()


def test_payload_span_and_resource_arrive_decoded(server: OTLPServer) -> None:
    @instrument.monitor(model="churn", version="3", task="binary_classification", classes=["stay", "leave"])
    def predict(x: Any) -> np.ndarray:
        return np.array([[0.9, 0.1], [0.3, 0.7], [0.5, 0.5]])

    X = {"age": [31, 42, None], "plan": ["basic", "pro", "pro"], "spend": [10.5, float("nan"), 3.0]}
    predict(X)
    ids = instrument.last_prediction_ids()
    assert instrument.flush()

    ((resource, record),) = list(server.log_records())
    assert record.event_name == semconv.EVENT_INFERENCE
    body = value(record.body)
    assert body["ids"] == ids
    assert body["inputs"]["age"] == [31, 42, None]
    assert body["inputs"]["plan"] == ["basic", "pro", "pro"]
    assert body["inputs"]["spend"][0] == 10.5 and np.isnan(body["inputs"]["spend"][1])
    assert body["outputs"] == {"score": [0.1, 0.7, 0.5], "label": ["stay", "leave", "leave"]}
    attrs = attributes(record.attributes)
    assert attrs[semconv.ATTR_MODEL_NAME] == "churn" and attrs[semconv.ATTR_MODEL_VERSION] == "3"
    res = attributes(resource.attributes)
    assert res["service.name"] == "churn-api"
    assert res["deployment.environment.name"] == "test"
    assert len(res["service.instance.id"]) == 32 and res["host.name"] and isinstance(res["process.pid"], int)

    ((_, span),) = server.spans()
    assert span.name == "predict churn"
    assert span.trace_id == record.trace_id and span.span_id == record.span_id
    span_attrs = attributes(span.attributes)
    assert span_attrs[semconv.ATTR_BATCH_SIZE] == 3
    assert span_attrs[semconv.ATTR_FEATURES] == ["age", "plan", "spend"]
    assert all(h.get("authorization") == "Bearer s3cret" for h in server.headers)
    assert {h.get("content-encoding") for h in server.headers} == {"gzip"}


def test_call_metrics_are_delta_histograms_matching_numpy(server: OTLPServer) -> None:
    monitor = instrument.ModelMonitor(model="batch", version="1", task="regression")
    latencies = np.random.default_rng(7).lognormal(mean=-6, sigma=1.5, size=300)
    rows = np.random.default_rng(8).integers(1, 50, size=300)
    for latency, n in zip(latencies, rows, strict=True):
        monitor.log(np.zeros((int(n), 2)), np.zeros(int(n)), latency_s=float(latency))
    assert instrument.flush()

    ((_, duration),) = server.metrics(semconv.METRIC_DURATION)
    (point,) = duration.histogram.data_points
    assert duration.histogram.aggregation_temporality == AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
    bounds = np.array(semconv.DURATION_BUCKETS_S)
    assert list(point.explicit_bounds) == list(bounds)
    # bucket i holds (bounds[i-1], bounds[i]]: numpy's searchsorted(side="left") gives that index
    expected = np.bincount(np.searchsorted(bounds, latencies, side="left"), minlength=len(bounds) + 1)
    assert list(point.bucket_counts) == expected.tolist()
    assert point.count == 300
    assert point.sum == pytest.approx(latencies.sum(), abs=300e-9)  # each latency is kept to the nanosecond
    assert point.min == pytest.approx(latencies.min(), abs=1e-9) and point.max == pytest.approx(
        latencies.max(), abs=1e-9
    )
    assert attributes(point.attributes) == {
        semconv.ATTR_MODEL_NAME: "batch",
        semconv.ATTR_MODEL_VERSION: "1",
        semconv.ATTR_OUTCOME: "ok",
    }

    ((_, predictions),) = server.metrics(semconv.METRIC_PREDICTIONS)
    assert predictions.sum.is_monotonic
    assert predictions.sum.aggregation_temporality == AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
    assert predictions.sum.data_points[0].as_int == int(rows.sum())
    ((_, batch),) = server.metrics(semconv.METRIC_BATCH_SIZE)
    assert batch.histogram.data_points[0].sum == float(rows.sum())

    monitor.log(np.zeros((5, 2)), np.zeros(5), latency_s=0.001)
    assert instrument.flush()
    second = server.metrics(semconv.METRIC_PREDICTIONS)[1][1]
    assert second.sum.data_points[0].as_int == 5  # a delta: the first 300 calls are not sent again


def test_resource_gauges_are_exported(server: OTLPServer) -> None:
    import psutil

    instrument.ModelMonitor(model="m").log([1.0], [1.0])
    assert instrument.flush()
    ((_, rss),) = server.metrics("process.memory.usage")
    reported = rss.sum.data_points[0].as_int
    assert abs(reported - psutil.Process().memory_info().rss) < 200 * 1024 * 1024
    for name in ("process.cpu.utilization", "process.open_file_descriptor.count", "system.filesystem.utilization"):
        assert server.metrics(name), name
    ((_, io),) = server.metrics("process.disk.io")
    directions = {attributes(p.attributes)["disk.io.direction"] for p in io.sum.data_points}
    assert directions == {"read", "write"}


def test_actuals_event(server: OTLPServer) -> None:
    sent = instrument.log_actuals(model="churn", ids=["a", "b"], actuals=[1, 0], version="3")
    assert sent == 2
    assert instrument.flush()
    ((_, record),) = list(server.log_records())
    assert record.event_name == semconv.EVENT_ACTUALS
    assert value(record.body) == {"ids": ["a", "b"], "actuals": [1, 0]}
    assert attributes(record.attributes)[semconv.ATTR_MODEL_VERSION] == "3"
