from __future__ import annotations

import gzip
import json
import math
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import httpx
import numpy as np
import pytest
import uvicorn
from google.protobuf import json_format
from google.rpc.status_pb2 import Status
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, LogRecordExportResult, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExportResult
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from collector.ingest import Ingestor, ReceiverSettings
from collector.otlp_extract import Record
from collector.receiver_http import otlp_routes
from collector.records import ActualsBatch, InferenceBatch, MetricPoint, PredictSpan

MODEL = {"predwatch.model.name": "churn", "predwatch.model.version": "3"}
PROTOBUF = {"content-type": "application/x-protobuf"}
JSON = {"content-type": "application/json"}
BODY = {
    "ids": ["p0", "p1", "p2"],
    "inputs": {"income": [52_000.5, None, float("nan")], "city": ["paris", "lyon", None], "age": [31, 45, 0]},
    "outputs": {"score": [0.9, 0.1, float("inf")], "label": [True, False, True]},
}


class Sink:
    def __init__(self) -> None:
        self.records: list[Record] = []
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, records: list[Record]) -> None:
        self.gate.wait(10)
        self.records.extend(records)


class Collector:
    def __init__(self, url: str, ingestor: Ingestor, sink: Sink) -> None:
        self.url, self.ingestor, self.sink = url, ingestor, sink

    def records(self, count: int, timeout_s: float = 5.0) -> list[Record]:
        deadline = time.monotonic() + timeout_s
        while len(self.sink.records) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.sink.records

    def healthy(self) -> bool:
        return httpx.get(self.url + "/healthz").status_code == 200


@contextmanager
def serve(settings: ReceiverSettings | None = None, **ingestor_options: Any) -> Iterator[Collector]:
    """A real uvicorn server on an ephemeral port, in a thread, in front of a fresh Ingestor."""
    sink = Sink()
    ingestor = Ingestor(sink, **ingestor_options)
    ingestor.start()

    async def healthz(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app = Starlette(routes=[*otlp_routes(ingestor, settings), Route("/healthz", healthz)])
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off", ws="none")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Collector(f"http://127.0.0.1:{port}", ingestor, sink)
    finally:
        sink.gate.set()
        server.should_exit = True
        thread.join(10)
        ingestor.stop(drain=False)


@pytest.fixture(scope="module")
def collector() -> Iterator[Collector]:
    with serve(ReceiverSettings(max_body_bytes=1024 * 1024)) as running:
        yield running


def sdk_logs(*events: tuple[str, Any, dict[str, Any]]) -> Sequence[ReadableLogRecord]:
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=Resource.create({"service.name": "scorer"}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = provider.get_logger("predwatch")
    for event_name, body, attributes in events:
        logger.emit(event_name=event_name, body=body, attributes=attributes)
    provider.shutdown()
    return exporter.get_finished_logs()


def logs_body(*events: tuple[str, Any, dict[str, Any]]) -> bytes:
    return encode_logs(sdk_logs(*events)).SerializeToString()


def same(actual: list[Any], expected: list[Any]) -> bool:
    if isinstance(actual, np.ndarray):  # the receivers hand doubles without gaps over as a float64 array
        if actual.dtype != np.float64 or not all(type(e) is float for e in expected):
            return False
        actual = actual.tolist()
    return len(actual) == len(expected) and all(
        type(a) is type(e) and (a == e or (isinstance(a, float) and math.isnan(a) and math.isnan(e)))
        for a, e in zip(actual, expected, strict=True)
    )


def check_inference(record: Record) -> None:
    assert isinstance(record, InferenceBatch)
    assert (record.model, record.version, record.ids) == ("churn", "3", BODY["ids"])
    for role in ("inputs", "outputs"):
        expected = BODY[role]
        actual = getattr(record, role)
        assert set(actual) == set(expected)
        for name, values in expected.items():
            assert same(actual[name], values), name
    assert record.resource["service.name"] == "scorer"


# --- round trips with the real SDK exporters ----------------------------------------------------------------------


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip, Compression.Deflate])
def test_sdk_log_exporter_round_trip(compression: Compression) -> None:
    with serve() as running:
        exporter = OTLPLogExporter(endpoint=running.url + "/v1/logs", compression=compression)
        logs = sdk_logs(
            ("predwatch.inference", BODY, MODEL),
            ("predwatch.actuals", {"ids": ["p0", "p1"], "actuals": [1, 0]}, MODEL),
            ("", "plain log line", {}),
        )
        assert exporter.export(logs) is LogRecordExportResult.SUCCESS
        exporter.shutdown()
        inference, actuals = running.records(2)
        check_inference(inference)
        assert isinstance(actuals, ActualsBatch) and actuals.actuals == [1, 0]
        stats = running.ingestor.stats()
        assert stats.accepted == {"inference": 1, "actuals": 1}
        assert (stats.rows, stats.values) == (3, 15)


def test_sdk_span_and_metric_exporters_round_trip() -> None:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider(resource=Resource.create({"service.name": "scorer"}))
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    with tracer_provider.get_tracer("predwatch").start_as_current_span(
        "predict churn", attributes={**MODEL, "predwatch.batch.size": 3}
    ):
        pass
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    meter_provider.get_meter("predwatch").create_counter("predwatch.predictions").add(3, MODEL)
    with serve() as running:
        span_exporter = OTLPSpanExporter(endpoint=running.url + "/v1/traces", compression=Compression.Gzip)
        assert span_exporter.export(spans.get_finished_spans()) is SpanExportResult.SUCCESS
        metric_exporter = OTLPMetricExporter(endpoint=running.url + "/v1/metrics")
        assert metric_exporter.export(reader.get_metrics_data()) is MetricExportResult.SUCCESS
        span, point = running.records(2)
        assert isinstance(span, PredictSpan) and (span.model, span.batch_size, span.ok) == ("churn", 3, True)
        assert isinstance(point, MetricPoint) and (point.name, point.value) == ("predwatch.predictions", 3.0)
        span_exporter.shutdown()
        metric_exporter.shutdown()
    tracer_provider.shutdown()
    meter_provider.shutdown()


def test_otlp_json_round_trip(collector: Collector) -> None:
    before = len(collector.sink.records)
    request = encode_logs(sdk_logs(("predwatch.inference", BODY, MODEL)))
    request.resource_logs[0].scope_logs[0].log_records[0].trace_id = bytes.fromhex("ab" * 16)
    obj = json_format.MessageToDict(request, use_integers_for_enums=True)
    obj["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["traceId"] = "ab" * 16  # OTLP/JSON: hex
    obj["resourceLogs"][0]["futureField"] = True
    response = httpx.post(collector.url + "/v1/logs", content=json.dumps(obj), headers=JSON)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {}
    record = collector.records(before + 1)[before]
    check_inference(record)
    assert record.trace_id == "ab" * 16  # type: ignore[union-attr]


@pytest.mark.parametrize("json_request", [False, True])
def test_partial_success_in_the_request_format(collector: Collector, json_request: bool) -> None:
    body = logs_body(
        ("predwatch.inference", BODY, MODEL),
        ("predwatch.inference", {"ids": ["a", "b"], "inputs": {"x": [1.0]}}, MODEL),
        ("predwatch.inference", BODY, {}),
    )
    headers = dict(PROTOBUF)
    if json_request:
        body = json_format.MessageToJson(encode_logs([]).FromString(body)).encode()
        headers = JSON
    response = httpx.post(collector.url + "/v1/logs", content=body, headers=headers)
    assert response.status_code == 200
    if json_request:
        partial = response.json()["partialSuccess"]
        assert int(partial["rejectedLogRecords"]) == 2
        message = partial["errorMessage"]
    else:
        parsed = ExportLogsServiceResponse.FromString(response.content)
        assert parsed.partial_success.rejected_log_records == 2
        message = parsed.partial_success.error_message
    assert "unequal_columns=1" in message and "missing_model=1" in message


def test_nan_and_inf_everywhere(collector: Collector) -> None:
    before = len(collector.sink.records)
    nan, inf = float("nan"), float("inf")
    body = {"ids": ["a", "b"], "inputs": {"x": [nan, inf], "y": [-inf, nan]}, "outputs": {"score": [nan, nan]}}
    attributes = {**MODEL, "predwatch.batch.size": nan, "extra": inf}
    content = logs_body(("predwatch.inference", body, attributes))
    response = httpx.post(collector.url + "/v1/logs", content=content, headers=PROTOBUF)
    assert response.status_code == 200
    record = collector.records(before + 1)[before]
    assert isinstance(record, InferenceBatch)
    assert same(record.inputs["x"], [nan, inf]) and same(record.outputs["score"], [nan, nan])


def test_thousands_of_distinct_model_names(collector: Collector) -> None:
    before = len(collector.sink.records)
    events = [("predwatch.inference", {"ids": ["a"]}, {"predwatch.model.name": f"model-{i}"}) for i in range(3000)]
    response = httpx.post(collector.url + "/v1/logs", content=logs_body(*events), headers=PROTOBUF)
    assert response.status_code == 200
    records = collector.records(before + 3000)[before:]
    assert len({record.model for record in records}) == 3000  # type: ignore[union-attr]


# --- malformed input: the right status, and the server keeps serving ----------------------------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes(out + bytes([value]))


GOOD = logs_body(("predwatch.inference", BODY, MODEL))
BOMB = gzip.compress(b"\x00" * (32 * 1024 * 1024), compresslevel=9)  # 32 MiB behind ~32 KiB; the cap is 1 MiB

MALFORMED: list[tuple[str, dict[str, str], bytes, int]] = [
    ("truncated protobuf", PROTOBUF, GOOD[: len(GOOD) // 2], 400),
    ("garbage protobuf", PROTOBUF, b"\xff" * 64, 400),
    ("billion-row length prefix", PROTOBUF, b"\x0a" + _varint(1_000_000_000) + b"\x12\x00", 400),
    ("non-UTF-8 protobuf string", PROTOBUF, GOOD.replace(b"paris", b"\xff\xfe\xfd\xfc\xfb"), 400),
    ("JSON array", JSON, b"[1, 2]", 400),
    ("JSON wrong shape", JSON, b'{"resourceLogs": {"scopeLogs": 1}}', 400),
    ("JSON wrong leaf", JSON, b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"timeUnixNano": {}}]}]}]}', 400),
    ("JSON not hex id", JSON, b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"spanId": "xyz"}]}]}]}', 400),
    ("JSON non-UTF-8", JSON, b'{"resourceLogs": "\xff\xfe"}', 400),
    ("JSON deep nesting", JSON, b"[" * 50_000 + b"]" * 50_000, 400),
    ("corrupt gzip", {**PROTOBUF, "content-encoding": "gzip"}, b"\x1f\x8b\x08\x00garbage", 400),
    ("truncated gzip", {**PROTOBUF, "content-encoding": "gzip"}, gzip.compress(GOOD)[:-10], 400),
    ("corrupt deflate", {**PROTOBUF, "content-encoding": "deflate"}, zlib.compress(GOOD)[:20], 400),
    ("zip bomb", {**PROTOBUF, "content-encoding": "gzip"}, BOMB, 413),
    ("body above the cap", PROTOBUF, b"\x00" * (1024 * 1024 + 1), 413),
    ("text/plain", {"content-type": "text/plain"}, GOOD, 415),
    ("no content type", {}, GOOD, 415),
    ("brotli", {**PROTOBUF, "content-encoding": "br"}, GOOD, 415),
]


@pytest.mark.parametrize(("case", "headers", "body", "status"), MALFORMED, ids=[case[0] for case in MALFORMED])
def test_malformed_requests(collector: Collector, case: str, headers: dict[str, str], body: bytes, status: int) -> None:
    response = httpx.post(collector.url + "/v1/logs", content=body, headers=headers)
    assert response.status_code == status, response.text
    if status in (400, 413):
        if headers.get("content-type") == "application/json":
            assert response.json()["message"]
        else:
            error = Status.FromString(response.content)
            assert error.code in (3, 8) and error.message
    assert httpx.post(collector.url + "/v1/logs", content=GOOD, headers=PROTOBUF).status_code == 200
    assert collector.healthy()


def test_invalid_requests_are_counted(collector: Collector) -> None:
    invalid = collector.ingestor.stats().invalid
    assert invalid.get("decode", 0) >= 1 and invalid.get("too_large", 0) >= 1
    assert invalid.get("unsupported_media_type", 0) >= 1


def test_content_length_above_the_cap_is_refused_before_reading(collector: Collector) -> None:
    host, port = collector.url.removeprefix("http://").split(":")
    head = (
        "POST /v1/logs HTTP/1.1\r\nHost: collector\r\nContent-Type: application/x-protobuf\r\n"
        f"Content-Length: {512 * 1024 * 1024}\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(head.encode() + b"\x00" * 1024)  # 1 KiB of the announced 512 MiB
        assert sock.recv(64).startswith(b"HTTP/1.1 413 ")
    assert collector.healthy()


def test_chunked_body_above_the_cap(collector: Collector) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b"\x00" * 64 * 1024  # 2.5 MiB in all, no Content-Length

    response = httpx.post(collector.url + "/v1/logs", content=chunks(), headers=PROTOBUF)
    assert response.status_code == 413
    assert collector.healthy()


def test_only_post(collector: Collector) -> None:
    assert httpx.get(collector.url + "/v1/logs").status_code == 405


def test_traces_response_type(collector: Collector) -> None:
    response = httpx.post(collector.url + "/v1/traces", content=b"", headers=PROTOBUF)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-protobuf"
    assert ExportTraceServiceResponse.FromString(response.content) == ExportTraceServiceResponse()


# --- backpressure -------------------------------------------------------------------------------------------------


def test_blocked_sink_fills_the_queue_then_503_with_retry_after() -> None:
    with serve(max_pending_records=2, retry_after_s=3) as running:
        running.sink.gate.clear()
        post: Callable[[], httpx.Response] = lambda: httpx.post(  # noqa: E731
            running.url + "/v1/logs", content=GOOD, headers=PROTOBUF
        )
        statuses = [post().status_code for _ in range(4)]
        assert statuses[:2] == [200, 200] and statuses[-1] == 503
        response = post()
        assert response.status_code == 503
        assert response.headers["retry-after"] == "3"
        assert Status.FromString(response.content).code == 14
        assert running.ingestor.stats().overloaded >= 2
        assert running.healthy()
        running.sink.gate.set()
        running.records(2)
        deadline = time.monotonic() + 5
        while post().status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)


# --- authentication -----------------------------------------------------------------------------------------------


def test_ingest_token() -> None:
    with serve(ReceiverSettings(ingest_tokens=("s3cret",))) as running:
        url = running.url + "/v1/logs"
        missing = httpx.post(url, content=GOOD, headers=PROTOBUF)
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == 'Bearer realm="predwatch"'
        wrong = httpx.post(url, content=GOOD, headers={**PROTOBUF, "authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
        assert Status.FromString(wrong.content).code == 16
        unknown_type = httpx.post(url, content=GOOD, headers={"content-type": "text/plain"})
        assert unknown_type.status_code == 401  # authentication comes first
        exporter = OTLPLogExporter(endpoint=url, headers={"authorization": "Bearer s3cret"})
        assert exporter.export(sdk_logs(("predwatch.inference", BODY, MODEL))) is LogRecordExportResult.SUCCESS
        exporter.shutdown()
        check_inference(running.records(1)[0])
        assert running.ingestor.stats().invalid == {"unauthenticated": 3}
