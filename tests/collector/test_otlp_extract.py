from __future__ import annotations

import logging
import math
import random
import struct
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValueList
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from collector import otlp_extract
from collector.otlp_extract import extract, extract_logs, extract_metrics, extract_traces
from collector.records import ActualsBatch, InferenceBatch, MetricPoint, PredictSpan

RESOURCE = Resource.create({"service.name": "scorer", "service.version": "1.2", "host.name": "h1"})
MODEL = {
    "predwatch.model.name": "churn",
    "predwatch.model.version": "3",
    "predwatch.model.task": "binary_classification",
}
T0 = 1_700_000_000_123_456_789


def same(actual: list[Any], expected: list[Any]) -> bool:
    """Equal element by element, with the same types, NaN equal to NaN."""
    if isinstance(actual, np.ndarray):  # the receivers hand doubles without gaps over as a float64 array
        if actual.dtype != np.float64 or not all(type(e) is float for e in expected):
            return False
        actual = actual.tolist()
    return len(actual) == len(expected) and all(
        type(a) is type(e) and (a == e or (isinstance(a, float) and math.isnan(a) and math.isnan(e)))
        for a, e in zip(actual, expected, strict=True)
    )


@pytest.fixture
def emit() -> Iterator[Any]:
    """emit(event_name=..., body=..., attributes=...) with the real SDK; emit.request() -> parsed OTLP request."""
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=RESOURCE)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = provider.get_logger("predwatch")

    def _emit(**kwargs: Any) -> None:
        kwargs.setdefault("timestamp", T0)
        logger.emit(**kwargs)

    def request() -> ExportLogsServiceRequest:
        data = encode_logs(exporter.get_finished_logs()).SerializeToString()
        return ExportLogsServiceRequest.FromString(data)  # parsed from bytes, as the receivers see it

    _emit.request = request  # type: ignore[attr-defined]
    yield _emit
    provider.shutdown()


def inference_body(rows: int = 4) -> dict[str, Any]:
    return {
        "ids": [f"p{i}" for i in range(rows)],
        "inputs": {"x": [float(i) + 0.5 for i in range(rows)], "city": ["a", "b", None, "a"][:rows]},
        "outputs": {"score": [0.25] * rows, "label": [True, False, True, False][:rows]},
    }


# --- logs -----------------------------------------------------------------------------------------------------


def test_inference_round_trip_exact_values(emit: Any) -> None:
    nan, inf = float("nan"), float("inf")
    body = {
        "ids": ["a", "b", "c", "d", "e", "f"],
        "inputs": {
            "x": [1.5, None, nan, inf, -inf, 0.0],
            "n": [1, 2**62, -5, 0, None, -(2**63)],
            "city": ["paris", "", None, "x" * 300, "é€😀", "a\nb"],
            "flag": [True, False, None, True, True, False],
            "raw": [b"\x00\xff", None, b"", b"a", b"b", b"c"],
            "mixed": [1, 2.5, "s", True, None, 0],
        },
        "outputs": {"score": [0.1, 0.9, 0.5, 0.0, 1.0, 0.3], "label": [0, 1, 1, 0, 1, 127]},
    }
    emit(event_name="predwatch.inference", body=body, attributes=MODEL)
    result = extract_logs(emit.request())
    assert not result.rejected
    [batch] = result.records
    assert isinstance(batch, InferenceBatch)
    assert (batch.model, batch.version, batch.task) == ("churn", "3", "binary_classification")
    assert batch.time_s == pytest.approx(T0 / 1e9)
    assert batch.ids == body["ids"]
    assert same(batch.inputs["x"], [1.5, None, nan, inf, -inf, 0.0])
    assert same(batch.inputs["n"], [1, 2**62, -5, 0, None, -(2**63)])
    assert same(batch.inputs["city"], ["paris", "", None, "x" * 300, "é€😀", "a\nb"])
    assert same(batch.inputs["flag"], [True, False, None, True, True, False])
    assert same(batch.inputs["raw"], ["00ff", None, "", "61", "62", "63"])
    assert same(batch.inputs["mixed"], [1, 2.5, "s", True, None, 0])
    score = batch.outputs["score"]  # doubles without gaps arrive as a float64 array (otlp_values dense_doubles)
    assert isinstance(score, np.ndarray) and score.dtype == np.float64
    assert same(score.tolist(), [0.1, 0.9, 0.5, 0.0, 1.0, 0.3])
    assert same(batch.outputs["label"], [0, 1, 1, 0, 1, 127])
    assert batch.resource["service.name"] == "scorer"
    assert batch.resource["host.name"] == "h1"
    assert batch.trace_id is None and batch.span_id is None
    assert (result.rows, result.values) == (6, 6 * 8)


def test_inference_carries_the_trace_context(emit: Any) -> None:
    provider = TracerProvider()
    with provider.get_tracer("t").start_as_current_span("predict churn") as span:
        emit(event_name="predwatch.inference", body=inference_body(), attributes=MODEL)
        context = span.get_span_context()
    [batch] = extract_logs(emit.request()).records
    assert batch.trace_id == f"{context.trace_id:032x}"
    assert batch.span_id == f"{context.span_id:016x}"


def test_observed_time_then_receive_time_when_no_timestamp() -> None:
    body = AnyValue(kvlist_value=KeyValueList())
    body.kvlist_value.values.add(key="ids", value=AnyValue(array_value=ArrayValue(values=[AnyValue(string_value="a")])))
    request = ExportLogsServiceRequest()
    records = request.resource_logs.add().scope_logs.add().log_records
    first = records.add(event_name="predwatch.inference", observed_time_unix_nano=2_000_000_000, body=body)
    first.attributes.add(key="predwatch.model.name", value=AnyValue(string_value="m"))
    second = records.add()
    second.CopyFrom(first)
    second.observed_time_unix_nano = 0
    result = extract_logs(request, now_s=42.0)
    assert [batch.time_s for batch in result.records] == [2.0, 42.0]
    assert [batch.version for batch in result.records] == ["", ""]  # type: ignore[union-attr]


def test_dense_large_columns_take_every_path(emit: Any) -> None:
    rng = random.Random(7)
    rows = 512
    inputs = {
        "dense_float": [rng.gauss(0, 1) for _ in range(rows)],
        "gappy_float": [rng.random() if rng.random() > 0.1 else None for _ in range(rows)],
        "mostly_missing": [rng.random() if rng.random() > 0.9 else None for _ in range(rows)],
        "small_int": [rng.randint(0, 127) for _ in range(rows)],
        "big_int": [rng.randint(-(2**40), 2**40) for _ in range(rows)],
        "bool": [rng.random() > 0.5 for _ in range(rows)],
        "all_missing": [None] * rows,
        "string": [rng.choice(["a", "b", None]) for _ in range(rows)],
        # Doubles whose bytes look like element boundaries must not confuse the fast path.
        "look_alike": [struct.unpack("<d", bytes([0x0A, 0x00, 0x0A, 9, 0x21, 0, 0x0A, 0x3F]))[0]] * rows,
    }
    emit(
        event_name="predwatch.inference",
        body={"ids": [str(i) for i in range(rows)], "inputs": inputs},
        attributes=MODEL,
    )
    [batch] = extract_logs(emit.request()).records
    for name, values in inputs.items():
        assert same(batch.inputs[name], values), name  # type: ignore[union-attr]


def test_event_name_attribute_of_older_producers(emit: Any) -> None:
    emit(body=inference_body(), attributes={**MODEL, "event.name": "predwatch.inference"})
    [batch] = extract_logs(emit.request()).records
    assert isinstance(batch, InferenceBatch)


def test_actuals(emit: Any) -> None:
    emit(
        event_name="predwatch.actuals",
        body={"ids": ["p1", "p2", "p3"], "actuals": [1, 0, None]},
        attributes={"predwatch.model.name": "churn"},
    )
    [batch] = extract_logs(emit.request()).records
    assert isinstance(batch, ActualsBatch)
    assert (batch.model, batch.version, batch.ids, batch.actuals) == ("churn", None, ["p1", "p2", "p3"], [1, 0, None])
    assert batch.resource["service.name"] == "scorer"


def test_other_logs_and_empty_events_are_ignored(emit: Any) -> None:
    emit(event_name="predwatch.inference", body={"ids": [], "inputs": {"x": []}}, attributes=MODEL)
    emit(event_name="predwatch.actuals", body={"ids": [], "actuals": []}, attributes=MODEL)
    emit(body="GET /predict 200")
    emit(event_name="browser.click", body={"ids": 1})
    emit(body={"ids": ["a"]}, attributes={"event.name": "something.else"})
    result = extract_logs(emit.request())
    assert result.records == [] and not result.rejected


@pytest.mark.parametrize(
    ("event", "body", "attributes", "reason"),
    [
        ("predwatch.inference", {**inference_body(), "ids": ["a", "b"]}, MODEL, "unequal_columns"),
        ("predwatch.inference", {"inputs": {"x": [1.0]}}, MODEL, "missing_ids"),
        ("predwatch.inference", {"ids": "a"}, MODEL, "missing_ids"),
        ("predwatch.inference", {"ids": [1, 2]}, MODEL, "bad_ids"),
        ("predwatch.inference", {"ids": ["a", ""]}, MODEL, "bad_ids"),
        ("predwatch.inference", {"ids": ["a", None]}, MODEL, "bad_ids"),
        ("predwatch.inference", inference_body(), {}, "missing_model"),
        ("predwatch.inference", inference_body(), {"predwatch.model.name": ""}, "bad_model"),
        ("predwatch.inference", inference_body(), {"predwatch.model.name": "m" * 300}, "bad_model"),
        ("predwatch.inference", inference_body(), {"predwatch.model.name": 1.5}, "bad_model"),
        ("predwatch.inference", inference_body(), {**MODEL, "predwatch.model.task": True}, "bad_task"),
        ("predwatch.inference", inference_body(), {**MODEL, "predwatch.model.version": 2.5}, "bad_version"),
        ("predwatch.inference", "a string body", MODEL, "bad_body"),
        ("predwatch.inference", {"ids": ["a"], "inputs": [1.0]}, MODEL, "bad_columns"),
        ("predwatch.inference", {"ids": ["a"], "inputs": {"x": 1.0}}, MODEL, "bad_columns"),
        ("predwatch.inference", {"ids": ["a"], "inputs": {"x": [[1.0, 2.0]]}}, MODEL, "non_scalar_value"),
        ("predwatch.inference", {"ids": ["a"], "outputs": {"y": [{"k": 1}]}}, MODEL, "non_scalar_value"),
        ("predwatch.actuals", {"ids": ["a"]}, MODEL, "missing_actuals"),
        ("predwatch.actuals", {"ids": ["a"], "actuals": [1, 2]}, MODEL, "unequal_columns"),
        ("predwatch.actuals", {"ids": ["a"], "actuals": [[1]]}, MODEL, "non_scalar_value"),
    ],
)
def test_bad_records_are_rejected_with_a_reason(
    emit: Any, event: str, body: Any, attributes: dict[str, Any], reason: str
) -> None:
    emit(event_name="predwatch.inference", body=inference_body(), attributes=MODEL)
    emit(event_name=event, body=body, attributes=attributes)
    emit(event_name="predwatch.inference", body=inference_body(2), attributes=MODEL)
    result = extract_logs(emit.request())
    assert dict(result.rejected) == {reason: 1}
    assert [len(batch.ids) for batch in result.records] == [4, 2]  # type: ignore[union-attr]
    assert result.error_message("log records") == f"rejected 1 log records: {reason}=1"


def test_duplicate_columns_are_rejected() -> None:
    body = AnyValue(kvlist_value=KeyValueList())
    body.kvlist_value.values.add(key="ids", value=AnyValue(array_value=ArrayValue(values=[AnyValue(string_value="a")])))
    inputs = body.kvlist_value.values.add(key="inputs").value.kvlist_value
    for _ in range(2):
        inputs.values.add(key="x", value=AnyValue(array_value=ArrayValue(values=[AnyValue(double_value=1.0)])))
    request = ExportLogsServiceRequest()
    record = request.resource_logs.add().scope_logs.add().log_records.add(event_name="predwatch.inference", body=body)
    record.attributes.add(key="predwatch.model.name", value=AnyValue(string_value="m"))
    assert dict(extract_logs(request).rejected) == {"duplicate_columns": 1}


def test_thousands_of_model_names(emit: Any) -> None:
    for i in range(3000):
        emit(event_name="predwatch.inference", body=inference_body(1), attributes={"predwatch.model.name": f"m{i}"})
    result = extract_logs(emit.request())
    assert len({batch.model for batch in result.records}) == 3000  # type: ignore[union-attr]


def test_nan_and_inf_in_attributes_and_resource() -> None:
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    resource_logs.resource.attributes.add(key="weird", value=AnyValue(double_value=float("nan")))
    body = AnyValue(kvlist_value=KeyValueList())
    body.kvlist_value.values.add(key="ids", value=AnyValue(array_value=ArrayValue(values=[AnyValue(string_value="a")])))
    record = resource_logs.scope_logs.add().log_records.add(event_name="predwatch.inference", body=body)
    record.attributes.add(key="predwatch.model.name", value=AnyValue(string_value="m"))
    record.attributes.add(key="predwatch.model.version", value=AnyValue(double_value=float("inf")))
    record.attributes.add(key="nested", value=AnyValue(kvlist_value=KeyValueList()))
    assert dict(extract_logs(request).rejected) == {"bad_version": 1}
    record.attributes[1].value.int_value = 7
    [batch] = extract_logs(request).records
    assert batch.version == "7"  # type: ignore[union-attr]
    assert math.isnan(batch.resource["weird"])


def test_a_bug_costs_one_record_not_the_request(
    emit: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    emit(event_name="predwatch.inference", body=inference_body(), attributes=MODEL)
    emit(event_name="predwatch.actuals", body={"ids": ["a"], "actuals": [1]}, attributes=MODEL)

    def boom(*args: Any) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(otlp_extract, "_inference", boom)
    monkeypatch.setattr(otlp_extract, "_last_bug_log", -math.inf)
    with caplog.at_level(logging.ERROR, logger="collector.otlp_extract"):
        result = extract_logs(emit.request())
    assert dict(result.rejected) == {"internal_error": 1}
    assert [type(record) for record in result.records] == [ActualsBatch]
    assert "unexpected error" in caplog.text


# --- traces ---------------------------------------------------------------------------------------------------


def spans_request(build: Any) -> ExportTraceServiceRequest:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    build(provider.get_tracer("predwatch"))
    provider.shutdown()
    return ExportTraceServiceRequest.FromString(encode_spans(exporter.get_finished_spans()).SerializeToString())


def test_predict_spans() -> None:
    def build(tracer: Any) -> None:
        ok = tracer.start_span("predict churn", attributes={**MODEL, "predwatch.batch.size": 32}, start_time=T0)
        ok.end(end_time=T0 + 2_500_000)
        failed = tracer.start_span("predict churn", attributes={**MODEL, "error.type": "ValueError"}, start_time=T0)
        failed.set_status(Status(StatusCode.ERROR, "boom"))
        failed.end(end_time=T0 + 1_000)
        tracer.start_span("predict something", start_time=T0).end(end_time=T0 + 1)  # not ours: no model
        tracer.start_span("GET /predict", attributes=MODEL, start_time=T0).end(end_time=T0 + 1)

    result = extract_traces(spans_request(build))
    assert not result.rejected
    ok, failed = result.records
    assert ok == PredictSpan(
        model="churn",
        version="3",
        time_s=T0 / 1e9,
        duration_s=0.0025,
        ok=True,
        batch_size=32,
        error_type=None,
        resource=ok.resource,  # type: ignore[union-attr]
    )
    assert ok.resource["service.name"] == "scorer"  # type: ignore[union-attr]
    assert (failed.ok, failed.error_type, failed.batch_size) == (False, "ValueError", 0)  # type: ignore[union-attr]
    assert failed.duration_s == pytest.approx(1e-6)  # type: ignore[union-attr]


def test_bad_spans_are_rejected() -> None:
    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add().scope_spans.add().spans
    backwards = spans.add(name="predict m", start_time_unix_nano=T0, end_time_unix_nano=T0 - 1)
    backwards.attributes.add(key="predwatch.model.name", value=AnyValue(string_value="m"))
    unnamed = spans.add(name="predict m", start_time_unix_nano=T0, end_time_unix_nano=T0 + 1)
    unnamed.attributes.add(key="predwatch.model.name", value=AnyValue(int_value=3))
    result = extract(signal="traces", request=request)
    assert result.records and result.records[0].model == "3"  # type: ignore[union-attr]
    assert dict(result.rejected) == {"bad_time": 1}


# --- metrics --------------------------------------------------------------------------------------------------


def test_sdk_metrics() -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], resource=RESOURCE)
    meter = provider.get_meter("predwatch")
    meter.create_counter("predwatch.predictions").add(5, {**MODEL, "predwatch.outcome": "ok"})
    duration = meter.create_histogram("predwatch.predict.duration", explicit_bucket_boundaries_advisory=[0.01, 0.1])
    for value in (0.005, 0.05, 0.5):
        duration.record(value, MODEL)

    def cpu(options: CallbackOptions) -> list[Observation]:
        return [Observation(0.25, {"process.cpu.state": "user"})]

    meter.create_observable_gauge("process.cpu.utilization", callbacks=[cpu])
    meter.create_counter("http.server.requests").add(1)  # not ours
    data = reader.get_metrics_data()
    provider.shutdown()
    request = ExportMetricsServiceRequest.FromString(encode_metrics(data).SerializeToString())
    result = extract_metrics(request)
    assert not result.rejected
    points = {point.name: point for point in result.records}
    assert set(points) == {"predwatch.predictions", "predwatch.predict.duration", "process.cpu.utilization"}
    counter = points["predwatch.predictions"]
    assert isinstance(counter, MetricPoint)
    assert (counter.kind, counter.value, counter.delta) == ("sum", 5.0, False)  # SDK default: cumulative
    assert counter.attributes["predwatch.outcome"] == "ok" and counter.resource["service.name"] == "scorer"
    assert counter.start_time_s is not None and counter.start_time_s <= counter.time_s
    histogram = points["predwatch.predict.duration"]
    assert isinstance(histogram, MetricPoint)
    assert histogram.kind == "histogram" and histogram.value == pytest.approx(0.555)
    assert (histogram.count, histogram.bounds, histogram.counts) == (3, [0.01, 0.1], [1, 1, 1])
    assert (histogram.min, histogram.max) == (0.005, 0.5)
    gauge = points["process.cpu.utilization"]
    assert isinstance(gauge, MetricPoint)
    assert (gauge.kind, gauge.value, gauge.delta, gauge.attributes) == (
        "gauge",
        0.25,
        False,
        {"process.cpu.state": "user"},
    )


def test_bad_and_empty_metric_points() -> None:
    request = ExportMetricsServiceRequest(
        resource_metrics=[
            ResourceMetrics(
                scope_metrics=[
                    ScopeMetrics(
                        metrics=[
                            Metric(
                                name="system.memory.usage",
                                gauge=Gauge(
                                    data_points=[
                                        NumberDataPoint(time_unix_nano=T0, as_int=7),
                                        NumberDataPoint(time_unix_nano=T0),  # no value
                                        NumberDataPoint(time_unix_nano=T0, flags=1),  # no recorded value
                                        NumberDataPoint(time_unix_nano=T0, as_double=float("nan")),
                                    ]
                                ),
                            ),
                            Metric(
                                name="predwatch.batch.size",
                                histogram=Histogram(
                                    aggregation_temporality=1,
                                    data_points=[
                                        HistogramDataPoint(count=3, explicit_bounds=[1.0], bucket_counts=[1]),
                                        HistogramDataPoint(count=3, explicit_bounds=[1.0], bucket_counts=[1, 1]),
                                        HistogramDataPoint(count=2, sum=4.0),
                                    ],
                                ),
                            ),
                        ]
                    )
                ]
            )
        ]
    )
    result = extract_metrics(request)
    assert dict(result.rejected) == {"missing_value": 1, "bad_buckets": 2}
    gauge, nan_gauge, histogram = result.records
    assert isinstance(gauge, MetricPoint) and gauge.value == 7.0 and type(gauge.value) is float
    assert isinstance(nan_gauge, MetricPoint) and math.isnan(nan_gauge.value)
    assert isinstance(histogram, MetricPoint)
    assert (histogram.delta, histogram.counts, histogram.bounds, histogram.value) == (True, [2], [], 4.0)
    assert histogram.min is None and histogram.start_time_s is None
