"""OTLP/gRPC receiver: TraceService, LogsService and MetricsService on one grpcio server.

    receiver = GrpcReceiver(ingestor, ReceiverSettings(ingest_tokens=("s3cret",)))
    port = receiver.start("127.0.0.1:4317")      # "host:0" picks a free port
    ...
    receiver.stop(grace=5.0)

Status codes: UNAUTHENTICATED for a missing or wrong `authorization: Bearer ...`; UNAVAILABLE with RetryInfo
when the ingest queue is full (OTLP exporters retry it); INVALID_ARGUMENT only for a message that is not
protobuf; RESOURCE_EXHAUSTED (from grpcio) above `max_body_bytes`, which also caps a gzip-compressed message's
decompressed size. Rejected records come back in partial_success, as over HTTP.

The methods are registered with raw-bytes handlers rather than through `*_pb2_grpc.add_*_to_server`: a token
or capacity refusal then costs no parsing, a bad message is answered INVALID_ARGUMENT rather than grpcio's
INTERNAL, and the queue is charged the message's exact size. The service and method names come from the
opentelemetry-proto descriptors, so clients built on the generated `*ServiceStub`s talk to it unchanged.
"""

from __future__ import annotations

from concurrent import futures
from typing import Any

import grpc
from google.protobuf.any_pb2 import Any as AnyMessage
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import DecodeError as ProtobufDecodeError
from google.rpc.error_details_pb2 import RetryInfo
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from collector.auth import BearerAuth
from collector.ingest import Ingestor, Overloaded, ReceiverSettings
from collector.otlp_decode import Signal, response_message
from collector.otlp_extract import NOUNS, extract

__all__ = ["GrpcReceiver"]

_SERVICES: tuple[tuple[Signal, Any, str, Any], ...] = (
    ("traces", trace_service_pb2, "TraceService", trace_service_pb2.ExportTraceServiceRequest),
    ("logs", logs_service_pb2, "LogsService", logs_service_pb2.ExportLogsServiceRequest),
    ("metrics", metrics_service_pb2, "MetricsService", metrics_service_pb2.ExportMetricsServiceRequest),
)


class GrpcReceiver:
    def __init__(self, ingestor: Ingestor, settings: ReceiverSettings | None = None, *, max_workers: int = 4) -> None:
        self._ingestor = ingestor
        self._settings = settings or ReceiverSettings()
        self._auth = BearerAuth(self._settings.ingest_tokens)
        self._max_workers = max_workers
        self._server: grpc.Server | None = None
        self.port: int | None = None

    def start(self, host_port: str) -> int:
        """Bind and serve; returns the bound port. Raises RuntimeError if the address cannot be bound."""
        if self._server is not None:
            raise RuntimeError("GrpcReceiver already started")
        limit = self._settings.max_body_bytes
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=self._max_workers, thread_name_prefix="predwatch-otlp-grpc"),
            handlers=[self._service_handler(*service) for service in _SERVICES],
            options=[("grpc.max_receive_message_length", limit), ("grpc.max_send_message_length", 4 * 1024 * 1024)],
        )
        try:
            port: int = server.add_insecure_port(host_port)
        except RuntimeError as exc:
            raise RuntimeError(f"cannot listen for OTLP/gRPC on {host_port}: {exc}") from exc
        if port == 0:
            raise RuntimeError(f"cannot listen for OTLP/gRPC on {host_port}")
        server.start()
        self._server, self.port = server, port
        return port

    def stop(self, grace: float | None = 5.0) -> None:
        """Stop accepting calls; calls in progress get `grace` seconds to finish."""
        if self._server is not None:
            self._server.stop(grace).wait()
            self._server = None

    def _service_handler(self, signal: Signal, module: Any, service: str, request_type: Any) -> grpc.GenericRpcHandler:
        full_name = module.DESCRIPTOR.services_by_name[service].full_name

        def export(raw: bytes, context: grpc.ServicerContext) -> Any:
            return self._export(signal, request_type, raw, context)

        handler = grpc.unary_unary_rpc_method_handler(export, response_serializer=_serialize)
        return grpc.method_handlers_generic_handler(full_name, {"Export": handler})

    def _export(self, signal: Signal, request_type: Any, raw: bytes, context: grpc.ServicerContext) -> Any:
        if not self._auth.check_metadata(context.invocation_metadata()):
            self._ingestor.count_invalid("unauthenticated")
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid bearer token")
        try:
            self._ingestor.check_capacity()
        except Overloaded as exc:
            _abort_unavailable(context, exc)
        try:
            request = request_type.FromString(raw)
        except ProtobufDecodeError as exc:
            self._ingestor.count_invalid("decode")
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"invalid {request_type.__name__}: {exc}")
        result = extract(signal, request)
        try:
            self._ingestor.submit(
                result.records, size_bytes=len(raw), rejected=result.rejected, rows=result.rows, values=result.values
            )
        except Overloaded as exc:
            _abort_unavailable(context, exc)
        return response_message(signal, result.rejected_count, result.error_message(NOUNS[signal]))


def _serialize(message: Any) -> bytes:
    return message.SerializeToString()  # type: ignore[no-any-return]


def _abort_unavailable(context: grpc.ServicerContext, exc: Overloaded) -> None:
    # RetryInfo in the status details tells OTLP exporters how long to wait (what grpc-status's
    # abort_with_status would send, without that extra dependency).
    delay = Duration()
    delay.FromNanoseconds(int(exc.retry_after_s * 1e9))
    detail = AnyMessage()
    detail.Pack(RetryInfo(retry_delay=delay))
    status = Status(code=grpc.StatusCode.UNAVAILABLE.value[0], message=str(exc), details=[detail])
    context.set_trailing_metadata((("grpc-status-details-bin", status.SerializeToString()),))
    context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
