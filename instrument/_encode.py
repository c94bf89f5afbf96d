"""OTLP requests written directly in protobuf wire format: log records here, spans in `_encode_spans`.

OpenTelemetry's Python encoder builds one protobuf object per value through a chain of isinstance checks:
~3 us per feature value, so a 1,000 x 20 batch cost ~60 ms of exporter CPU, and every record, attribute and
value on the way is an object made and serialised again. Here the bytes are written directly: a body a column
at a time (a column of floats, bools or small ints laid out by numpy in one step, others value by value),
attribute lists that repeat from record to record once, and resources and scopes once each. The output is
byte for byte what OpenTelemetry's encoders serialise to (tests check that on random data); only resources
and scopes still go through them.

AnyValue fields: string 1, bool 2, int 3, double 4, array 5, kvlist 6, bytes 7. ArrayValue and KeyValueList
hold repeated field 1; KeyValue is key 1, value 2.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from opentelemetry.exporter.otlp.proto.common._internal import _encode_instrumentation_scope, _encode_resource
from opentelemetry.sdk._logs import ReadableLogRecord

__all__ = ["attributes_field", "encode_any", "encode_logs", "encode_request", "len_field", "varint"]

_pack_double = struct.Struct("<d").pack
_UINT64 = 0xFFFFFFFFFFFFFFFF
_VARINT_1 = [bytes([i]) for i in range(128)]


def varint(value: int) -> bytes:
    if value < 128:
        return _VARINT_1[value]
    if value < 16384:
        return bytes(((value & 0x7F) | 0x80, value >> 7))
    out = bytearray()
    while value > 127:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def len_field(tag: bytes, payload: bytes) -> bytes:
    return tag + varint(len(payload)) + payload


def _scalar(value: Any) -> bytes:
    kind = type(value)
    if value is None:
        return b""
    if kind is bool:
        return b"\x10\x01" if value else b"\x10\x00"
    if kind is float:
        return b"\x21" + _pack_double(value)
    if kind is str:
        return len_field(b"\x0a", value.encode("utf-8", "replace"))
    if kind is int:
        return b"\x18" + varint(value & _UINT64)
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
        parts.append(b"\x0a" + varint(len(element)) + element)
    return b"".join(parts)


def _kvlist(mapping: Mapping[Any, Any]) -> bytes:
    parts = []
    for key, value in mapping.items():
        pair = len_field(b"\x0a", str(key).encode("utf-8", "replace")) + len_field(b"\x12", encode_any(value))
        parts.append(len_field(b"\x0a", pair))
    return b"".join(parts)


def encode_any(value: Any) -> bytes:
    """`value` (None, bool, int, float, str, bytes, sequences and mappings of those) as AnyValue bytes."""
    if isinstance(value, Mapping):
        return len_field(b"\x32", _kvlist(value))
    if isinstance(value, list | tuple):
        return len_field(b"\x2a", _array(value))
    if isinstance(value, bytes):
        return len_field(b"\x3a", value)
    if isinstance(value, np.ndarray):
        return encode_any(value.tolist())
    if value is None:
        return b""
    # Subclasses (str and int enums, say) as their base type's value, as OpenTelemetry's encoder sends them.
    if isinstance(value, bool):
        return _scalar(bool(value))
    if isinstance(value, int):
        return _scalar(int.__index__(value))
    if isinstance(value, float):
        return _scalar(float.__float__(value))
    if isinstance(value, str):
        return _scalar(str.__str__(value))
    raise TypeError(f"cannot encode {type(value).__qualname__} as an OTLP AnyValue")


_fixed64 = struct.Struct("<Q").pack
_fixed32 = struct.Struct("<I").pack
_MAX_CACHED = 1024
_UNCACHED = frozenset((float, tuple, list))  # attribute values that keep a list of attributes out of the cache

# Encoded attribute lists: the attributes of spans and events mostly repeat (method, route, model name).
_blocks: dict[tuple[Any, ...], bytes] = {}
# Encoded resources and scopes by id(); the object is kept with its bytes so that its id is not reused.
_messages: dict[int, tuple[object, bytes]] = {}


def attributes_field(tag: bytes, attributes: Mapping[str, Any]) -> bytes:
    """Repeated KeyValue field `tag`. Cached, with the types in the key (True == 1 == 1.0 in Python); not when a
    value is a float or a sequence, whose equal variants encode differently (-0.0 == 0.0, (1,) == (1.0,))."""
    values = tuple(attributes.values())
    types = tuple(map(type, values))
    key: tuple[Any, ...] = (tag, tuple(attributes), values, types)
    if not _UNCACHED.isdisjoint(types):
        key, cached = (), None
    else:
        try:
            cached = _blocks.get(key)
        except TypeError:  # an unhashable value
            key, cached = (), None
    if cached is not None:
        return cached
    block = b"".join(
        [
            len_field(tag, len_field(b"\x0a", str(k).encode("utf-8", "replace")) + len_field(b"\x12", encode_any(v)))
            for k, v in attributes.items()
        ]
    )
    if key and len(block) < 4096:
        if len(_blocks) >= _MAX_CACHED:
            _blocks.clear()
        _blocks[key] = block
    return block


def _message(obj: Any, encode: Any) -> bytes:
    found = _messages.get(id(obj))
    if found is not None and found[0] is obj:
        return found[1]
    data: bytes = encode(obj).SerializeToString()
    if len(_messages) >= 64:
        _messages.clear()
    _messages[id(obj)] = (obj, data)
    return data


def encode_request(records: Sequence[Any], encode_one: Callable[[Any], bytes]) -> bytes:
    """An Export*ServiceRequest: records grouped by resource, then scope (the `resource` and
    `instrumentation_scope` of each), as OpenTelemetry's encoders group them. Resource*/Scope* messages have
    the same layout for spans and logs: resource 1, scopes 2, schema_url 3; scope 1, records 2, schema_url 3."""
    groups: dict[int, tuple[Any, dict[int, tuple[Any, list[bytes]]]]] = {}
    for record in records:
        resource = record.resource
        scope = record.instrumentation_scope or None
        scopes = groups.setdefault(id(resource), (resource, {}))[1]
        scopes.setdefault(id(scope), (scope, []))[1].append(len_field(b"\x12", encode_one(record)))
    out = []
    for resource, scopes in groups.values():
        body = [len_field(b"\x0a", _message(resource, _encode_resource))]
        for scope, encoded in scopes.values():
            parts = [len_field(b"\x0a", _message(scope, _encode_instrumentation_scope)), *encoded]
            if scope is not None and scope.schema_url:
                parts.append(len_field(b"\x1a", scope.schema_url.encode()))
            body.append(len_field(b"\x12", b"".join(parts)))
        if resource.schema_url:
            body.append(len_field(b"\x1a", resource.schema_url.encode()))
        out.append(len_field(b"\x0a", b"".join(body)))
    return b"".join(out)


def _log(record: ReadableLogRecord) -> bytes:
    """LogRecord: time 1 (fixed64), severity_number 2, severity_text 3, body 5, attributes 6,
    dropped_attributes_count 7, flags 8 (fixed32), trace_id 9, span_id 10, observed_time 11 (fixed64),
    event_name 12."""
    log = record.log_record
    parts = []
    if log.timestamp:
        parts.append(b"\x09" + _fixed64(log.timestamp))
    severity = getattr(log.severity_number, "value", None)
    if severity:
        parts.append(b"\x10" + varint(severity))
    if log.severity_text:
        parts.append(len_field(b"\x1a", log.severity_text.encode("utf-8", "replace")))
    parts.append(len_field(b"\x2a", encode_any(log.body)))  # present even when empty, as the SDK's encoder makes it
    if log.attributes:
        parts.append(attributes_field(b"\x32", log.attributes))
    if record.dropped_attributes:
        parts.append(b"\x38" + varint(record.dropped_attributes))
    flags = int(log.trace_flags) if log.trace_flags is not None else 0
    if flags:
        parts.append(b"\x45" + _fixed32(flags))
    if log.trace_id:
        parts.append(b"\x4a\x10" + log.trace_id.to_bytes(16, "big"))
    if log.span_id:
        parts.append(b"\x52\x08" + log.span_id.to_bytes(8, "big"))
    if log.observed_timestamp:
        parts.append(b"\x59" + _fixed64(log.observed_timestamp))
    if log.event_name:
        parts.append(len_field(b"\x62", log.event_name.encode("utf-8", "replace")))
    return b"".join(parts)


def encode_logs(batch: Sequence[ReadableLogRecord]) -> bytes:
    """The bytes OpenTelemetry's `encode_logs(batch).SerializeToString()` gives, written directly."""
    return encode_request(batch, _log)
