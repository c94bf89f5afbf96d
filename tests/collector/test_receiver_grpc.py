from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.rpc.error_details_pb2 import RetryInfo
from google.rpc.status_pb2 import Status
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2_grpc import LogsServiceStub
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2_grpc import MetricsServiceStub
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from collector.ingest import Ingestor, ReceiverSettings
from collector.otlp_extract import Record
from collector.receiver_grpc import GrpcReceiver
from collector.records import InferenceBatch, MetricPoint, PredictSpan

MODEL = {"predwatch.model.name": "churn", "predwatch.model.version": "3"}
BODY = {"ids": ["p0", "p1"], "inputs": {"x": [1.5, None]}, "outputs": {"score": [0.25, float("nan")]}}
LOGS_EXPORT = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"


class Sink:
    def __init__(self) -> None:
        self.records: list[Record] = []
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, records: list[Record]) -> None:
        self.gate.wait(10)
        self.records.extend(records)

    def wait(self, count: int) -> list[Record]:
        deadline = time.monotonic() + 5
        while len(self.records) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.records


class Running:
    def __init__(self, receiver: GrpcReceiver, ingestor: Ingestor, sink: Sink, channel: grpc.Channel) -> None:
        self.receiver, self.ingestor, self.sink, self.channel = receiver, ingestor, sink, channel
        self.logs = LogsServiceStub(channel)
        self.traces = TraceServiceStub(channel)
        self.metrics = MetricsServiceStub(channel)

    def raw_logs(self, data: bytes, **kwargs: Any) -> bytes:
        call = self.channel.unary_unary(LOGS_EXPORT)  # no serializers: bytes in, bytes out
        return call(data, timeout=5, **kwargs)  # type: ignore[no-any-return]


@pytest.fixture
def serve() -> Iterator[Any]:
    started: list[Running] = []

    def start(settings: ReceiverSettings | None = None, **ingestor_options: Any) -> Running:
        sink = Sink()
        ingestor = Ingestor(sink, **ingestor_options)
        ingestor.start()
        receiver = GrpcReceiver(ingestor, settings)
        port = receiver.start("127.0.0.1:0")
        channel = grpc.insecure_channel(
            f"127.0.0.1:{port}", options=[("grpc.max_send_message_length", 256 * 1024 * 1024)]
        )
        running = Running(receiver, ingestor, sink, channel)
        started.append(running)
        return running

    yield start
    for running in started:
        running.sink.gate.set()
        running.channel.close()
        running.receiver.stop(grace=1)
        running.ingestor.stop(drain=False)


def logs_request(*events: tuple[str, Any, dict[str, Any]]) -> ExportLogsServiceRequest:
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=Resource.create({"service.name": "scorer"}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    for event_name, body, attributes in events:
        provider.get_logger("predwatch").emit(event_name=event_name, body=body, attributes=attributes)
    provider.shutdown()
    return encode_logs(exporter.get_finished_logs())


GOOD = logs_request(("predwatch.inference", BODY, MODEL))


def test_logs_round_trip_with_gzip(serve: Any) -> None:
    running = serve()
    response = running.logs.Export(GOOD, timeout=5, compression=grpc.Compression.Gzip)
    assert not response.HasField("partial_success")
    [record] = running.sink.wait(1)
    assert isinstance(record, InferenceBatch)
    assert (record.model, record.ids, record.inputs["x"]) == ("churn", ["p0", "p1"], [1.5, None])
    assert record.resource["service.name"] == "scorer"
    assert running.ingestor.stats().queue_bytes == 0


def test_traces_and_metrics(serve: Any) -> None:
    running = serve()
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    tracer_provider.get_tracer("t").start_span("predict churn", attributes=MODEL).end()
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    meter_provider.get_meter("m").create_counter("predwatch.predictions").add(2, MODEL)
    running.traces.Export(encode_spans(spans.get_finished_spans()), timeout=5)
    running.metrics.Export(encode_metrics(reader.get_metrics_data()), timeout=5)
    span, point = running.sink.wait(2)
    assert isinstance(span, PredictSpan) and span.model == "churn"
    assert isinstance(point, MetricPoint) and point.value == 2.0
    tracer_provider.shutdown()
    meter_provider.shutdown()


def test_partial_success(serve: Any) -> None:
    running = serve()
    request = logs_request(
        ("predwatch.inference", BODY, MODEL),
        ("predwatch.inference", {"ids": [1]}, MODEL),
    )
    response = running.logs.Export(request, timeout=5)
    assert response.partial_success.rejected_log_records == 1
    assert response.partial_success.error_message == "rejected 1 log records: bad_ids=1"
    assert len(running.sink.wait(1)) == 1


def test_messages_above_grpc_default_4_mib(serve: Any) -> None:
    running = serve()
    request = ExportLogsServiceRequest()
    request.CopyFrom(GOOD)
    records = request.resource_logs[0].scope_logs[0].log_records
    records.add().body.string_value = "x" * (6 * 1024 * 1024)  # an ordinary log line, ignored
    assert request.ByteSize() > 6 * 1024 * 1024
    running.logs.Export(request, timeout=10)
    [record] = running.sink.wait(1)
    assert isinstance(record, InferenceBatch) and record.ids == ["p0", "p1"]
    assert running.ingestor.stats().accepted == {"inference": 1}


def test_above_the_cap_and_gzip_bomb_are_refused(serve: Any) -> None:
    running = serve(ReceiverSettings(max_body_bytes=1024 * 1024))
    big = logs_request(("", "x" * (2 * 1024 * 1024), {}))  # 2 MiB of one letter: ~2 KiB gzip-compressed
    for compression in (grpc.Compression.NoCompression, grpc.Compression.Gzip):
        with pytest.raises(grpc.RpcError) as info:
            running.logs.Export(big, timeout=5, compression=compression)
        assert info.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    running.logs.Export(GOOD, timeout=5)  # still serving
    assert len(running.sink.wait(1)) == 1


@pytest.mark.parametrize("data", [b"\xff\xff\xff", b"\x0a\xff\xff\xff\x0f\x12", GOOD.SerializeToString()[:-5]])
def test_undecodable_is_invalid_argument(serve: Any, data: bytes) -> None:
    running = serve()
    with pytest.raises(grpc.RpcError) as info:
        running.raw_logs(data)
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert running.ingestor.stats().invalid == {"decode": 1}
    running.logs.Export(GOOD, timeout=5)


def test_unavailable_with_retry_info_when_overloaded(serve: Any) -> None:
    running = serve(max_pending_records=1, retry_after_s=2.0)
    running.sink.gate.clear()
    running.logs.Export(GOOD, timeout=5)
    with pytest.raises(grpc.RpcError) as info:
        running.logs.Export(GOOD, timeout=5)
    error: Any = info.value
    assert error.code() is grpc.StatusCode.UNAVAILABLE
    details = dict(error.trailing_metadata())["grpc-status-details-bin"]
    status = Status.FromString(details)
    retry = RetryInfo()
    assert status.code == grpc.StatusCode.UNAVAILABLE.value[0] and status.details[0].Unpack(retry)
    assert retry.retry_delay.seconds == 2
    running.sink.gate.set()
    running.sink.wait(1)
    deadline = time.monotonic() + 5
    while True:
        try:
            running.logs.Export(GOOD, timeout=5)
            break
        except grpc.RpcError:
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_ingest_token(serve: Any) -> None:
    running = serve(ReceiverSettings(ingest_tokens=("s3cret",)))
    for metadata in ((), (("authorization", "Bearer nope"),), (("authorization", "s3cret"),)):
        with pytest.raises(grpc.RpcError) as info:
            running.logs.Export(GOOD, timeout=5, metadata=metadata)
        assert info.value.code() is grpc.StatusCode.UNAUTHENTICATED
    running.logs.Export(GOOD, timeout=5, metadata=(("authorization", "Bearer s3cret"),))
    assert len(running.sink.wait(1)) == 1
    assert running.ingestor.stats().invalid == {"unauthenticated": 3}


def test_start_twice_and_a_bad_address(serve: Any) -> None:
    running = serve()
    with pytest.raises(RuntimeError):
        running.receiver.start("127.0.0.1:0")
    other = GrpcReceiver(running.ingestor)
    with pytest.raises(RuntimeError):
        other.start("256.0.0.1:1")
    other.stop()
