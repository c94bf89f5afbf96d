from __future__ import annotations

import gzip
import json
import tracemalloc
import zlib

import pytest
from google.protobuf import json_format
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest, ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from collector.otlp_decode import (
    DecodeError,
    Format,
    TooLarge,
    UnsupportedMediaType,
    check_encoding,
    decode_request,
    decompress,
    encode_response,
    encode_status,
    parse_content_type,
    response_message,
)

TRACE_ID = bytes.fromhex("5b8efff798038103d269b633813fc60c")
SPAN_ID = bytes.fromhex("eee19b7ec3c1b174")


def logs_request(rows: int = 3) -> ExportLogsServiceRequest:
    body = AnyValue()
    body.kvlist_value.values.append(
        KeyValue(
            key="ids",
            value=AnyValue(array_value=ArrayValue(values=[AnyValue(string_value=f"id{i}") for i in range(rows)])),
        )
    )
    record = LogRecord(
        time_unix_nano=1_700_000_000_000_000_000,
        event_name="predwatch.inference",
        trace_id=TRACE_ID,
        span_id=SPAN_ID,
        body=body,
    )
    return ExportLogsServiceRequest(resource_logs=[ResourceLogs(scope_logs=[ScopeLogs(log_records=[record])])])


def otlp_json(message: ExportLogsServiceRequest | ExportTraceServiceRequest) -> dict[str, object]:
    """What an OTLP/JSON producer sends: proto3 JSON with hex ids and integer enums."""
    obj = json_format.MessageToDict(message, use_integers_for_enums=True)

    def fix(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("traceId", "spanId", "parentSpanId") and isinstance(value, str):
                    node[key] = json_format.base64.b64decode(value).hex()  # type: ignore[attr-defined]
                else:
                    fix(value)
        elif isinstance(node, list):
            for item in node:
                fix(item)

    fix(obj)
    return obj


# --- content type and encoding ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "fmt"),
    [
        ("application/x-protobuf", Format.PROTOBUF),
        ("Application/X-Protobuf", Format.PROTOBUF),
        ("application/protobuf", Format.PROTOBUF),
        ("application/json", Format.JSON),
        ("application/json; charset=utf-8", Format.JSON),
    ],
)
def test_content_types_accepted(header: str, fmt: Format) -> None:
    assert parse_content_type(header) is fmt


@pytest.mark.parametrize("header", [None, "", "text/plain", "application/xml", "application/jsonx"])
def test_other_content_types_are_415(header: str | None) -> None:
    with pytest.raises(UnsupportedMediaType) as info:
        parse_content_type(header)
    assert info.value.status == 415


def test_content_encodings() -> None:
    assert check_encoding(None) == "identity"
    assert check_encoding("GZIP") == "gzip"
    assert check_encoding("x-gzip") == "gzip"
    assert check_encoding(" deflate ") == "deflate"
    for bad in ("br", "zstd", "gzip, gzip", "compress"):
        with pytest.raises(UnsupportedMediaType):
            check_encoding(bad)


# --- decompression ------------------------------------------------------------------------------------------------

PAYLOAD = b"predwatch " * 10_000


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        (None, PAYLOAD),
        ("identity", PAYLOAD),
        ("gzip", gzip.compress(PAYLOAD)),
        ("deflate", zlib.compress(PAYLOAD)),
        ("deflate", raw_deflate(PAYLOAD)),
        ("gzip", gzip.compress(PAYLOAD[:5000]) + gzip.compress(PAYLOAD[5000:])),  # two gzip members
        ("gzip", gzip.compress(b"")),
    ],
)
def test_decompress_round_trips(encoding: str | None, body: bytes) -> None:
    expected = PAYLOAD if len(body) > 100 or encoding in (None, "identity") else b""
    assert decompress(body, encoding) == expected


def test_cap_applies_to_identity_bodies() -> None:
    assert decompress(b"x" * 100, None, max_bytes=100) == b"x" * 100
    with pytest.raises(TooLarge) as info:
        decompress(b"x" * 101, None, max_bytes=100)
    assert info.value.status == 413


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_cap_is_exact_on_decompressed_size(encoding: str) -> None:
    body = gzip.compress(b"y" * 1000) if encoding == "gzip" else zlib.compress(b"y" * 1000)
    assert len(decompress(body, encoding, max_bytes=1000)) == 1000
    with pytest.raises(TooLarge):
        decompress(body, encoding, max_bytes=999)


def test_zip_bomb_never_allocates_past_the_cap() -> None:
    bomb = gzip.compress(b"\x00" * (256 * 1024 * 1024), compresslevel=9)  # 256 MiB -> ~250 KiB
    assert len(bomb) < 1024 * 1024
    cap = 8 * 1024 * 1024
    tracemalloc.start()
    try:
        with pytest.raises(TooLarge):
            decompress(bomb, "gzip", max_bytes=cap)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * cap


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        ("gzip", gzip.compress(PAYLOAD)[:-20]),  # truncated stream
        ("gzip", b"not gzip at all"),
        ("gzip", b""),
        ("deflate", zlib.compress(PAYLOAD)[:50]),
        ("deflate", b"\xff\xfe garbage"),
        ("gzip", gzip.compress(PAYLOAD) + b"trailing junk"),
    ],
)
def test_corrupt_compressed_bodies_are_decode_errors(encoding: str, body: bytes) -> None:
    with pytest.raises(DecodeError) as info:
        decompress(body, encoding)
    assert info.value.status == 400


# --- protobuf -----------------------------------------------------------------------------------------------------


def test_protobuf_round_trip() -> None:
    request = logs_request()
    decoded = decode_request("logs", request.SerializeToString(), Format.PROTOBUF)
    assert decoded == request


def test_gzip_protobuf() -> None:
    request = logs_request()
    body = gzip.compress(request.SerializeToString())
    assert decode_request("logs", body, Format.PROTOBUF, "gzip") == request


def test_truncated_protobuf_is_a_decode_error() -> None:
    data = logs_request(rows=50).SerializeToString()
    with pytest.raises(DecodeError):
        decode_request("logs", data[: len(data) // 2], Format.PROTOBUF)


def test_length_prefix_claiming_a_billion_rows_is_a_decode_error() -> None:
    # resource_logs (field 1, length-delimited) announcing ~1 GB, followed by 10 bytes.
    lie = b"\x0a" + _varint(1_000_000_000) + b"\x12" * 10
    with pytest.raises(DecodeError):
        decode_request("logs", lie, Format.PROTOBUF)


def test_non_utf8_protobuf_string_is_a_decode_error() -> None:
    good = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[Span(name="predict AAAA")])])]
    ).SerializeToString()
    bad = good.replace(b"AAAA", b"\xff\xfe\xfd\xfc")
    with pytest.raises(DecodeError):
        decode_request("traces", bad, Format.PROTOBUF)


def test_deeply_nested_any_value_is_a_decode_error() -> None:
    value = AnyValue(string_value="leaf").SerializeToString()
    for _ in range(200):  # AnyValue.array_value (5) -> ArrayValue.values (1) -> AnyValue ...
        array = _field(1, value)
        value = _field(AnyValue.DESCRIPTOR.fields_by_name["array_value"].number, array)
    record = _field(LogRecord.DESCRIPTOR.fields_by_name["body"].number, value)
    data = _field(1, _field(2, _field(2, record)))  # resource_logs -> scope_logs -> log_records
    with pytest.raises(DecodeError):
        decode_request("logs", data, Format.PROTOBUF)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


# --- OTLP/JSON ----------------------------------------------------------------------------------------------------


def test_json_hex_ids_are_decoded() -> None:
    request = logs_request()
    body = json.dumps(otlp_json(request)).encode()
    assert b"5b8efff798038103d269b633813fc60c" in body
    decoded = decode_request("logs", body, Format.JSON)
    assert decoded == request
    assert decoded.resource_logs[0].scope_logs[0].log_records[0].trace_id == TRACE_ID


def test_json_span_ids_including_parent_and_links() -> None:
    span = Span(trace_id=TRACE_ID, span_id=SPAN_ID, parent_span_id=SPAN_ID[::-1], name="predict churn", kind=1)
    span.links.add(trace_id=TRACE_ID[::-1], span_id=SPAN_ID)
    request = ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])])
    obj = otlp_json(request)
    assert obj["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["kind"] == 1  # type: ignore[index]
    assert decode_request("traces", json.dumps(obj).encode(), Format.JSON) == request


def test_json_int64_as_string_or_number_and_unknown_fields() -> None:
    obj = {
        "resourceLogs": [
            {
                "futureField": {"x": 1},
                "scopeLogs": [
                    {
                        "logRecords": [
                            {"timeUnixNano": "1700000000000000000", "observedTimeUnixNano": 1700000000000000001},
                            {"severityNumber": 9, "body": {"doubleValue": "NaN"}, "unknown": [1, 2]},
                        ]
                    }
                ],
            }
        ]
    }
    decoded = decode_request("logs", json.dumps(obj).encode(), Format.JSON)
    records = decoded.resource_logs[0].scope_logs[0].log_records
    assert records[0].time_unix_nano == 1_700_000_000_000_000_000
    assert records[0].observed_time_unix_nano == 1_700_000_000_000_000_001
    assert records[1].severity_number == 9
    assert records[1].body.double_value != records[1].body.double_value  # NaN


def test_json_unknown_enum_names_are_ignored_like_unknown_fields() -> None:
    body = b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"severityNumber": "NO_SUCH_LEVEL"}]}]}]}'
    decoded = decode_request("logs", body, Format.JSON)
    assert decoded.resource_logs[0].scope_logs[0].log_records[0].severity_number == 0


def test_json_snake_case_field_names_are_accepted() -> None:
    obj = {"resource_logs": [{"scope_logs": [{"log_records": [{"trace_id": TRACE_ID.hex(), "event_name": "e"}]}]}]}
    decoded = decode_request("logs", json.dumps(obj).encode(), Format.JSON)
    assert decoded.resource_logs[0].scope_logs[0].log_records[0].trace_id == TRACE_ID


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b'"a string"',
        b'{"resourceLogs": {"not": "a list"}}',
        b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"timeUnixNano": "soon"}]}]}]}',
        b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"traceId": "zz-not-hex"}]}]}]}',
        b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"body": {"kvlistValue": 7}}]}]}]}',
        b'{"resourceLogs": [1, 2, 3]}',
        b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"body": {"stringValue": "\xff\xfe"}}]}]}]}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a": ' * 10_000 + b"1" + b"}" * 10_000,
    ],
)
def test_bad_json_is_a_decode_error(body: bytes) -> None:
    with pytest.raises(DecodeError) as info:
        decode_request("logs", body, Format.JSON)
    assert info.value.status == 400


def test_deeply_nested_json_any_value_is_a_decode_error() -> None:
    value: dict[str, object] = {"stringValue": "leaf"}
    for _ in range(300):
        value = {"arrayValue": {"values": [value]}}
    obj = {"resourceLogs": [{"scopeLogs": [{"logRecords": [{"body": value}]}]}]}
    with pytest.raises(DecodeError):
        decode_request("logs", json.dumps(obj).encode(), Format.JSON)


# --- responses ----------------------------------------------------------------------------------------------------


def test_full_success_response_has_no_partial_success() -> None:
    data = encode_response("logs", Format.PROTOBUF)
    response = ExportLogsServiceResponse.FromString(data)
    assert not response.HasField("partial_success")
    assert encode_response("traces", Format.JSON) == b"{}"


def test_partial_success_protobuf() -> None:
    data = encode_response("traces", Format.PROTOBUF, rejected=3, error_message="rejected 3 spans: bad_time=3")
    response = ExportTraceServiceResponse.FromString(data)
    assert response.partial_success.rejected_spans == 3
    assert response.partial_success.error_message == "rejected 3 spans: bad_time=3"


def test_partial_success_json() -> None:
    data = encode_response("metrics", Format.JSON, rejected=2, error_message="no")
    assert json.loads(data) == {"partialSuccess": {"rejectedDataPoints": 2, "errorMessage": "no"}}
    response = ExportMetricsServiceResponse()
    json_format.Parse(data, response)
    assert response.partial_success.rejected_data_points == 2
    logs = json.loads(encode_response("logs", Format.JSON, rejected=1))
    assert logs == {"partialSuccess": {"rejectedLogRecords": 1}}


def test_response_message_types() -> None:
    assert isinstance(response_message("logs"), ExportLogsServiceResponse)
    assert response_message("metrics", 4).partial_success.rejected_data_points == 4


def test_status_bodies() -> None:
    assert Status.FromString(encode_status(Format.PROTOBUF, 3, "bad")) == Status(code=3, message="bad")
    assert json.loads(encode_status(Format.JSON, 14, "busy")) == {"code": 14, "message": "busy"}


def test_json_exemplar_ids_in_metrics() -> None:
    point = {"asDouble": 1.0, "exemplars": [{"asDouble": 2.0, "traceId": TRACE_ID.hex(), "spanId": SPAN_ID.hex()}]}
    obj = {
        "resourceMetrics": [
            {
                "scopeMetrics": [
                    {
                        "metrics": [
                            {"name": "g", "gauge": {"dataPoints": [point]}},
                            {"name": "h", "histogram": {"dataPoints": [{"count": "1", "exemplars": [{}]}]}},
                            {"name": "odd", "sum": {"dataPoints": "not a list"}},
                        ]
                    }
                ]
            }
        ]
    }
    with pytest.raises(DecodeError):  # "not a list" is left for the proto parser to refuse
        decode_request("metrics", json.dumps(obj).encode(), Format.JSON)
    del obj["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][2]  # type: ignore[index]
    decoded = decode_request("metrics", json.dumps(obj).encode(), Format.JSON)
    exemplar = decoded.resource_metrics[0].scope_metrics[0].metrics[0].gauge.data_points[0].exemplars[0]
    assert (exemplar.trace_id, exemplar.span_id, exemplar.as_double) == (TRACE_ID, SPAN_ID, 2.0)
    assert decoded.resource_metrics[0].scope_metrics[0].metrics[1].histogram.data_points[0].count == 1
