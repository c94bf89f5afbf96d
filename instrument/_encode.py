"""OTLP log encoding with a fast path for columnar payload bodies.

OpenTelemetry's Python encoder builds one protobuf object per value through a chain of isinstance checks:
~3 us per feature value, so a 1,000 x 20 batch cost ~60 ms of exporter CPU. Here a body is written directly
in protobuf wire format, a column at a time: a column of floats (or bools, or small ints) is laid out by
numpy in one step, others value by value. The result parses to exactly the AnyValue the SDK's encoder
builds (a test checks that on random data); everything else in the request (resource, scope, attributes,
ids) still goes through the SDK's own encoder.

AnyValue fields: string 1, bool 2, int 3, double 4, array 5, kvlist 6, bytes 7. ArrayValue and KeyValueList
hold repeated field 1; KeyValue is key 1, value 2.
"""

from __future__ import annotations

import struct
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from opentelemetry.exporter.otlp.proto.common._internal import (
    _encode_attributes,
    _encode_instrumentation_scope,
    _encode_resource,
    _encode_span_id,
    _encode_trace_id,
)
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord as PB2LogRecord
from opentelemetry.proto.logs.v1.logs_pb2 import ResourceLogs, ScopeLogs
from opentelemetry.sdk._logs import ReadableLogRecord

__all__ = ["encode_any", "encode_logs"]

_pack_double = struct.Struct("<d").pack
_UINT64 = 0xFFFFFFFFFFFFFFFF
_VARINT_1 = [bytes([i]) for i in range(128)]


def _varint(value: int) -> bytes:
    if value < 128:
        return _VARINT_1[value]
    out = bytearray()
    while value > 127:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _len_field(tag: bytes, payload: bytes) -> bytes:
    return tag + _varint(len(payload)) + payload


def _scalar(value: Any) -> bytes:
    kind = type(value)
    if value is None:
        return b""
    if kind is bool:
        return b"\x10\x01" if value else b"\x10\x00"
    if kind is float:
        return b"\x21" + _pack_double(value)
    if kind is str:
        return _len_field(b"\x0a", value.encode("utf-8", "replace"))
    if kind is int:
        return b"\x18" + _varint(value & _UINT64)
    return encode_any(value)


def _packed(values: np.ndarray[Any, Any], header: bytes, width: int) -> bytes:
    """Elements of fixed width: 0x0a <len> <header> <value bytes>, laid out by numpy."""
    n = values.shape[0]
    out = np.empty((n, 2 + len(header) + width), dtype=np.uint8)
    out[:, 0] = 0x0A
    out[:, 1] = len(header) + width
    for i, byte in enumerate(header):
        out[:, 2 + i] = byte
    out[:, 2 + len(header) :] = values.view(np.uint8).reshape(n, width)  # values: n x width bytes
    return out.tobytes()


def _array(values: Sequence[Any]) -> bytes:
    """The bytes of an ArrayValue holding `values`."""
    if not values:
        return b""
    kinds = set(map(type, values))
    if len(kinds) == 1 and len(values) >= 16:  # below that, numpy's set-up costs more than it saves
        kind = kinds.pop()
        if kind is float:
            return _packed(np.asarray(values, dtype="<f8"), b"\x21", 8)
        if kind is bool:
            return _packed(np.asarray(values, dtype=np.uint8), b"\x10", 1)
        if kind is int and 0 <= min(values) and max(values) < 128:
            return _packed(np.asarray(values, dtype=np.uint8), b"\x18", 1)
        if kind is str:  # fixed-length ASCII strings (prediction ids): one numpy layout as well
            width = len(values[0])
            joined = "".join(values)
            if 0 < width < 126 and len(set(map(len, values))) == 1 and joined.isascii():
                chars = np.frombuffer(joined.encode("ascii"), dtype=np.uint8).reshape(len(values), width)
                return _packed(chars, b"\x0a" + bytes([width]), width)
    parts = []
    for value in values:
        element = _scalar(value)
        parts.append(b"\x0a" + _varint(len(element)) + element)
    return b"".join(parts)


def _kvlist(mapping: Mapping[Any, Any]) -> bytes:
    parts = []
    for key, value in mapping.items():
        pair = _len_field(b"\x0a", str(key).encode("utf-8", "replace")) + _len_field(b"\x12", encode_any(value))
        parts.append(_len_field(b"\x0a", pair))
    return b"".join(parts)


def encode_any(value: Any) -> bytes:
    """`value` (None, bool, int, float, str, bytes, sequences and mappings of those) as AnyValue bytes."""
    if isinstance(value, Mapping):
        return _len_field(b"\x32", _kvlist(value))
    if isinstance(value, list | tuple):
        return _len_field(b"\x2a", _array(value))
    if isinstance(value, bytes):
        return _len_field(b"\x3a", value)
    if isinstance(value, np.ndarray):
        return encode_any(value.tolist())
    if isinstance(value, bool | int | float | str) or value is None:
        return _scalar(type(value)(value) if value is not None else None)
    raise TypeError(f"cannot encode {type(value).__qualname__} as an OTLP AnyValue")


def _encode_log(record: ReadableLogRecord) -> PB2LogRecord:
    log = record.log_record
    fields: dict[str, Any] = {
        "time_unix_nano": log.timestamp,
        "observed_time_unix_nano": log.observed_timestamp,
        "span_id": _encode_span_id(log.span_id) if log.span_id else None,
        "trace_id": _encode_trace_id(log.trace_id) if log.trace_id else None,
        "flags": int(log.trace_flags) if log.trace_flags is not None else 0,
        "severity_text": log.severity_text,
        "attributes": _encode_attributes(log.attributes),
        "dropped_attributes_count": record.dropped_attributes,
        "severity_number": getattr(log.severity_number, "value", None),
        "event_name": log.event_name,
    }
    pb = PB2LogRecord(**fields)
    pb.body.SetInParent()  # present even when empty, as the SDK's encoder makes it
    pb.body.MergeFromString(encode_any(log.body))
    return pb


def _schema(scope: Any) -> Any:
    return scope.schema_url if scope else None


def encode_logs(batch: Sequence[ReadableLogRecord]) -> ExportLogsServiceRequest:
    """The same request as OpenTelemetry's `encode_logs`, built faster for large bodies."""
    grouped: defaultdict[Any, defaultdict[Any, list[PB2LogRecord]]] = defaultdict(lambda: defaultdict(list))
    for record in batch:
        grouped[record.resource][record.instrumentation_scope or None].append(_encode_log(record))
    resource_logs = []
    for resource, scopes in grouped.items():
        scope_logs = [
            ScopeLogs(scope=_encode_instrumentation_scope(scope), log_records=records, schema_url=_schema(scope))
            for scope, records in scopes.items()
        ]
        resource_logs.append(
            ResourceLogs(resource=_encode_resource(resource), scope_logs=scope_logs, schema_url=resource.schema_url)
        )
    return ExportLogsServiceRequest(resource_logs=resource_logs)
