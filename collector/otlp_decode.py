"""OTLP wire format: request bodies in, responses out (OTLP/HTTP; gRPC hands us parsed messages already).

    fmt = parse_content_type(request.headers.get("content-type"))           # UnsupportedMediaType
    msg = decode_request("logs", body, fmt, request.headers.get("content-encoding"), max_bytes=64 << 20)
    body = encode_response("logs", fmt, rejected=2, error_message="...")

Errors (each carries the HTTP status it maps to):

    OtlpError
     ├── DecodeError            400  not protobuf/JSON of the right message, corrupt compressed stream
     ├── TooLarge               413  body or decompressed body above the cap
     └── UnsupportedMediaType   415  content type or content encoding we do not speak

OTLP/JSON is the proto3 JSON mapping with two differences handled here: trace and span ids are hex, not
base64, and unknown fields are ignored. Decompression is incremental and stops one byte past the cap, so a
zip bomb never allocates more than `max_bytes`.
"""

from __future__ import annotations

import base64
import enum
import json
import zlib
from collections.abc import Callable
from typing import Any, Literal

from google.protobuf import json_format
from google.protobuf.message import DecodeError as ProtobufDecodeError
from google.protobuf.message import Message
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsPartialSuccess,
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsPartialSuccess,
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DecodeError",
    "ExportRequest",
    "Format",
    "OtlpError",
    "Signal",
    "TooLarge",
    "UnsupportedMediaType",
    "check_encoding",
    "decode_request",
    "decompress",
    "encode_response",
    "encode_status",
    "parse_content_type",
    "response_message",
]

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
_CHUNK = 1024 * 1024  # decompressed bytes produced per zlib call

Signal = Literal["traces", "logs", "metrics"]
ExportRequest = ExportTraceServiceRequest | ExportLogsServiceRequest | ExportMetricsServiceRequest


class OtlpError(Exception):
    status = 400


class DecodeError(OtlpError):
    status = 400


class TooLarge(OtlpError):
    status = 413


class UnsupportedMediaType(OtlpError):
    status = 415


class Format(enum.Enum):
    PROTOBUF = "application/x-protobuf"
    JSON = "application/json"

    @property
    def media_type(self) -> str:
        return self.value


_MEDIA_TYPES = {
    "application/x-protobuf": Format.PROTOBUF,
    "application/protobuf": Format.PROTOBUF,
    "application/json": Format.JSON,
}

_REQUESTS: dict[str, type[Message]] = {
    "traces": ExportTraceServiceRequest,
    "logs": ExportLogsServiceRequest,
    "metrics": ExportMetricsServiceRequest,
}
_RESPONSES: dict[str, type[Message]] = {
    "traces": ExportTraceServiceResponse,
    "logs": ExportLogsServiceResponse,
    "metrics": ExportMetricsServiceResponse,
}


def parse_content_type(header: str | None) -> Format:
    """`application/x-protobuf` or `application/json`, parameters (charset) ignored, case-insensitive."""
    media_type = (header or "").split(";", 1)[0].strip().lower()
    fmt = _MEDIA_TYPES.get(media_type)
    if fmt is None:
        raise UnsupportedMediaType(f"content type {header!r}: use application/x-protobuf or application/json")
    return fmt


def check_encoding(encoding: str | None) -> str:
    """The normalised content coding: "identity", "gzip" or "deflate"; UnsupportedMediaType otherwise."""
    coding = (encoding or "identity").strip().lower()
    coding = _CODINGS.get(coding, coding)
    if coding not in ("identity", "gzip", "deflate"):
        raise UnsupportedMediaType(f"content encoding {encoding!r}: use gzip, deflate or identity")
    return coding


_CODINGS = {"": "identity", "x-gzip": "gzip"}


def decompress(body: bytes, encoding: str | None, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """Undo `Content-Encoding` gzip, deflate (zlib or raw) or identity; TooLarge past `max_bytes` decompressed."""
    coding = check_encoding(encoding)
    if coding == "gzip":
        return _inflate(body, 16 + zlib.MAX_WBITS, max_bytes)
    if coding == "deflate":
        # HTTP's "deflate" is zlib-wrapped; some clients send raw deflate. A zlib header is 2 bytes, CMF=8 mod 16
        # and divisible by 31 as a big-endian number.
        is_zlib = len(body) >= 2 and body[0] & 0x0F == 8 and (body[0] << 8 | body[1]) % 31 == 0
        return _inflate(body, zlib.MAX_WBITS if is_zlib else -zlib.MAX_WBITS, max_bytes)
    if len(body) > max_bytes:
        raise TooLarge(f"body of {len(body)} bytes is above the {max_bytes}-byte limit")
    return body


def _inflate(data: bytes, wbits: int, max_bytes: int) -> bytes:
    out = bytearray()
    try:
        while True:  # one pass per gzip member (concatenated members are valid gzip)
            inflater = zlib.decompressobj(wbits)
            pending = data
            while pending and not inflater.eof:
                out += inflater.decompress(pending, min(_CHUNK, max_bytes + 1 - len(out)))
                if len(out) > max_bytes:
                    raise TooLarge(f"decompressed body is above the {max_bytes}-byte limit")
                pending = inflater.unconsumed_tail
            if not inflater.eof:
                raise DecodeError("truncated compressed body")
            data = inflater.unused_data
            if not data or wbits < 16:
                return bytes(out)
    except zlib.error as exc:
        raise DecodeError(f"corrupt compressed body: {exc}") from exc


def decode_request(
    signal: Signal,
    body: bytes,
    fmt: Format,
    content_encoding: str | None = None,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Any:
    """Body bytes -> Export{Trace,Logs,Metrics}ServiceRequest (typed as Any: the three share no base class)."""
    data = decompress(body, content_encoding, max_bytes)
    message_type = _REQUESTS[signal]
    if fmt is Format.PROTOBUF:
        try:
            return message_type.FromString(data)
        except ProtobufDecodeError as exc:
            raise DecodeError(f"invalid protobuf {message_type.__name__}: {exc}") from exc
    return _decode_json(signal, data, message_type)


def _decode_json(signal: Signal, data: bytes, message_type: type[Message]) -> Message:
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise DecodeError(f"invalid JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise DecodeError(f"invalid OTLP/JSON: expected an object, got {type(obj).__name__}")
    _HEX_IDS[signal](obj)
    message = message_type()
    try:
        json_format.ParseDict(obj, message, ignore_unknown_fields=True)
    # ParseDict raises ParseError for most bad shapes, but TypeError/AttributeError/RecursionError slip out for
    # some; untrusted input must never turn into a 500.
    except Exception as exc:
        raise DecodeError(f"invalid OTLP/JSON {message_type.__name__}: {exc}") from exc
    return message


# --- OTLP/JSON hex ids -> the base64 that the proto3 JSON mapping expects -------------------------------------


def _items(obj: object, camel: str, snake: str) -> list[Any]:
    value = obj.get(camel, obj.get(snake)) if isinstance(obj, dict) else None
    return value if isinstance(value, list) else []


def _convert_ids(obj: object, *keys: str) -> None:
    if not isinstance(obj, dict):
        return
    for key in keys:
        value = obj.get(key)
        if isinstance(value, str) and value:
            try:
                obj[key] = base64.b64encode(bytes.fromhex(value)).decode("ascii")
            except ValueError as exc:
                raise DecodeError(f"invalid OTLP/JSON: {key} {value[:64]!r} is not hex") from exc


_TRACE_SPAN_IDS = ("traceId", "spanId", "trace_id", "span_id")


def _hex_ids_traces(obj: dict[str, Any]) -> None:
    for resource in _items(obj, "resourceSpans", "resource_spans"):
        for scope in _items(resource, "scopeSpans", "scope_spans"):
            for span in _items(scope, "spans", "spans"):
                _convert_ids(span, *_TRACE_SPAN_IDS, "parentSpanId", "parent_span_id")
                for link in _items(span, "links", "links"):
                    _convert_ids(link, *_TRACE_SPAN_IDS)


def _hex_ids_logs(obj: dict[str, Any]) -> None:
    for resource in _items(obj, "resourceLogs", "resource_logs"):
        for scope in _items(resource, "scopeLogs", "scope_logs"):
            for record in _items(scope, "logRecords", "log_records"):
                _convert_ids(record, *_TRACE_SPAN_IDS)


def _hex_ids_metrics(obj: dict[str, Any]) -> None:
    for resource in _items(obj, "resourceMetrics", "resource_metrics"):
        for scope in _items(resource, "scopeMetrics", "scope_metrics"):
            for metric in _items(scope, "metrics", "metrics"):
                if not isinstance(metric, dict):
                    continue
                for data in metric.values():
                    for point in _items(data, "dataPoints", "data_points"):
                        for exemplar in _items(point, "exemplars", "exemplars"):
                            _convert_ids(exemplar, *_TRACE_SPAN_IDS)


_HEX_IDS: dict[str, Callable[[dict[str, Any]], None]] = {
    "traces": _hex_ids_traces,
    "logs": _hex_ids_logs,
    "metrics": _hex_ids_metrics,
}


# --- responses ------------------------------------------------------------------------------------------------


def response_message(signal: Signal, rejected: int = 0, error_message: str = "") -> Any:
    """Export*ServiceResponse; partial_success is set only when something was rejected (or a warning is given)."""
    if not rejected and not error_message:
        return _RESPONSES[signal]()
    if signal == "traces":
        return ExportTraceServiceResponse(
            partial_success=ExportTracePartialSuccess(rejected_spans=rejected, error_message=error_message)
        )
    if signal == "logs":
        return ExportLogsServiceResponse(
            partial_success=ExportLogsPartialSuccess(rejected_log_records=rejected, error_message=error_message)
        )
    return ExportMetricsServiceResponse(
        partial_success=ExportMetricsPartialSuccess(rejected_data_points=rejected, error_message=error_message)
    )


def _serialise(message: Message, fmt: Format) -> bytes:
    if fmt is Format.PROTOBUF:
        data: bytes = message.SerializeToString()
        return data
    text: str = json_format.MessageToJson(message, indent=None, unquote_int64_if_possible=True)
    return text.encode("utf-8")


def encode_response(signal: Signal, fmt: Format, rejected: int = 0, error_message: str = "") -> bytes:
    return _serialise(response_message(signal, rejected, error_message), fmt)


def encode_status(fmt: Format, code: int, message: str) -> bytes:
    """A google.rpc.Status body for 4xx/5xx answers (OTLP/HTTP); `code` is the gRPC code number."""
    return _serialise(Status(code=code, message=message), fmt)
