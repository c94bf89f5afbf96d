"""Decoded OTLP requests -> collector records (see DESIGN.md, "Wire contract").

    result = extract_logs(ExportLogsServiceRequest.FromString(body))
    result.records      # [InferenceBatch | ActualsBatch, ...]
    result.rejected     # {"unequal_columns": 1}: answered as partial_success, never raised

Only what predwatch understands becomes a record: `predwatch.inference` / `predwatch.actuals` log events (the
`event_name` field, or the `event.name` attribute of older producers), `predict ...` spans that carry
`predwatch.model.name`, and data points of predwatch.*, process.*, system.* and hw.gpu.* metrics. Everything
else is accepted and ignored. A bad record is rejected with a reason and never aborts the rest of the request.

Values are converted by collector.otlp_values (a payload column holds scalars: a nested value rejects the record).
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from collector.otlp_values import NonScalar, attributes, columns
from collector.records import ActualsBatch, Column, InferenceBatch, MetricPoint, PredictSpan, Resource
from instrument.semconv import (
    ATTR_BATCH_SIZE,
    ATTR_ERROR_TYPE,
    ATTR_MODEL_NAME,
    ATTR_MODEL_TASK,
    ATTR_MODEL_VERSION,
    BODY_ACTUALS,
    BODY_IDS,
    BODY_INPUTS,
    BODY_OUTPUTS,
    EVENT_ACTUALS,
    EVENT_INFERENCE,
    SPAN_NAME_PREFIX,
)

__all__ = [
    "MAX_NAME_LENGTH",
    "METRIC_PREFIXES",
    "NOUNS",
    "Extracted",
    "Record",
    "extract",
    "extract_logs",
    "extract_metrics",
    "extract_traces",
]

logger = logging.getLogger(__name__)

Record = InferenceBatch | ActualsBatch | PredictSpan | MetricPoint

MAX_NAME_LENGTH = 256  # model, version and column names; longer ones reject the record
ATTR_EVENT_NAME = "event.name"  # how producers before LogRecord.event_name named events
METRIC_PREFIXES = ("predwatch.", "process.", "system.", "hw.gpu.")
_NO_RECORDED_VALUE = 1  # DataPointFlags.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
_DELTA = 1  # AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA


@dataclass(slots=True)
class Extracted:
    records: list[Record] = field(default_factory=list)
    rejected: Counter[str] = field(default_factory=Counter)  # reason -> records rejected
    rows: int = 0  # inference rows accepted
    values: int = 0  # feature and output values accepted (rows x columns)

    @property
    def rejected_count(self) -> int:
        return sum(self.rejected.values())

    def error_message(self, noun: str) -> str:
        """'' when nothing was rejected, else e.g. 'rejected 3 log records: unequal_columns=2, missing_ids=1'."""
        if not self.rejected:
            return ""
        reasons = ", ".join(f"{reason}={count}" for reason, count in self.rejected.most_common())
        return f"rejected {self.rejected_count} {noun}: {reasons}"


class _Reject(Exception):
    """A record is invalid; the argument is the reason counted in Extracted.rejected."""


_last_bug_log = -math.inf


def _log_bug(what: str, *args: object) -> None:
    """Log an unexpected extraction error with its traceback: the first, then at most one a minute."""
    global _last_bug_log
    now = time.monotonic()
    if now - _last_bug_log >= 60.0:
        _last_bug_log = now
        logger.exception("unexpected error extracting " + what, *args)


# --- validation helpers ---------------------------------------------------------------------------------------


def _name(attrs: dict[str, Any], key: str, what: str) -> str:
    value = attrs.get(key)
    if value is None:
        raise _Reject(f"missing_{what}")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # version=3 sent as an int
    if not isinstance(value, str) or not value or len(value) > MAX_NAME_LENGTH:
        raise _Reject(f"bad_{what}")
    return value


def _optional_name(attrs: dict[str, Any], key: str, what: str) -> str | None:
    return _name(attrs, key, what) if attrs.get(key) is not None else None


def _ids(value: AnyValue | None) -> list[str]:
    if value is None or value.WhichOneof("value") != "array_value":
        raise _Reject("missing_ids")
    values = value.array_value.values
    ids = [v.string_value for v in values]
    if not all(ids):  # an empty string, a non-string or a missing id
        raise _Reject("bad_ids")
    return ids


def _column_arrays(value: AnyValue | None, rows: int) -> tuple[list[str], list[ArrayValue]]:
    if value is None or value.WhichOneof("value") is None:
        return [], []
    if value.WhichOneof("value") != "kvlist_value":
        raise _Reject("bad_columns")
    names: list[str] = []
    arrays: list[ArrayValue] = []
    for kv in value.kvlist_value.values:
        if kv.value.WhichOneof("value") != "array_value" or not kv.key or len(kv.key) > MAX_NAME_LENGTH:
            raise _Reject("bad_columns")
        if len(kv.value.array_value.values) != rows:
            raise _Reject("unequal_columns")
        names.append(kv.key)
        arrays.append(kv.value.array_value)
    if len(set(names)) != len(names):
        raise _Reject("duplicate_columns")
    return names, arrays


def _convert(arrays: list[ArrayValue], dense_doubles: bool = False) -> list[Column]:
    try:  # inputs and outputs together: one numpy pass for all numeric columns
        return columns(arrays, dense_doubles=dense_doubles)
    except NonScalar:
        raise _Reject("non_scalar_value") from None


def _body(value: AnyValue) -> dict[str, AnyValue]:
    if value.WhichOneof("value") != "kvlist_value":
        raise _Reject("bad_body")
    return {kv.key: kv.value for kv in value.kvlist_value.values}


def _hex(raw: bytes) -> str | None:
    return raw.hex() if raw and any(raw) else None


# --- logs -----------------------------------------------------------------------------------------------------


def _event_name(record: Any) -> str:
    if record.event_name:
        return str(record.event_name)
    for kv in record.attributes:
        if kv.key == ATTR_EVENT_NAME:
            return str(kv.value.string_value)
    return ""


def extract_logs(request: Any, now_s: float | None = None) -> Extracted:
    """ExportLogsServiceRequest -> InferenceBatch and ActualsBatch records."""
    result = Extracted()
    now_s = time.time() if now_s is None else now_s
    for resource_logs in request.resource_logs:
        resource: Resource | None = None
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                event = _event_name(record)
                if event != EVENT_INFERENCE and event != EVENT_ACTUALS:
                    continue
                if resource is None:
                    resource = attributes(resource_logs.resource.attributes)
                time_s = (record.time_unix_nano or record.observed_time_unix_nano) / 1e9 or now_s
                try:
                    batch = (_inference if event == EVENT_INFERENCE else _actuals)(record, resource, time_s)
                except _Reject as reject:
                    result.rejected[reject.args[0]] += 1
                    continue
                except Exception:  # a bug here must cost one record, not the request
                    _log_bug("a %s log record", event)
                    result.rejected["internal_error"] += 1
                    continue
                if batch.ids:  # a zero-row event is valid and carries nothing
                    result.records.append(batch)
                if isinstance(batch, InferenceBatch):
                    result.rows += len(batch.ids)
                    result.values += len(batch.ids) * (len(batch.inputs) + len(batch.outputs))
    return result


def _inference(record: Any, resource: Resource, time_s: float) -> InferenceBatch:
    attrs = attributes(record.attributes)
    model = _name(attrs, ATTR_MODEL_NAME, "model")
    version = _optional_name(attrs, ATTR_MODEL_VERSION, "version") or ""
    task = _optional_name(attrs, ATTR_MODEL_TASK, "task")
    body = _body(record.body)
    ids = _ids(body.get(BODY_IDS))
    input_names, input_arrays = _column_arrays(body.get(BODY_INPUTS), len(ids))
    output_names, output_arrays = _column_arrays(body.get(BODY_OUTPUTS), len(ids))
    values = _convert(input_arrays + output_arrays, dense_doubles=True)  # arrays go straight into the sketches
    return InferenceBatch(
        model=model,
        version=version,
        time_s=time_s,
        ids=ids,
        inputs=dict(zip(input_names, values, strict=False)),
        outputs=dict(zip(output_names, values[len(input_names) :], strict=True)),
        task=task,
        resource=resource,
        trace_id=_hex(record.trace_id),
        span_id=_hex(record.span_id),
    )


def _actuals(record: Any, resource: Resource, time_s: float) -> ActualsBatch:
    attrs = attributes(record.attributes)
    model = _name(attrs, ATTR_MODEL_NAME, "model")
    version = _optional_name(attrs, ATTR_MODEL_VERSION, "version")
    body = _body(record.body)
    ids = _ids(body.get(BODY_IDS))
    actuals = body.get(BODY_ACTUALS)
    if actuals is None or actuals.WhichOneof("value") != "array_value":
        raise _Reject("missing_actuals")
    if len(actuals.array_value.values) != len(ids):
        raise _Reject("unequal_columns")
    [values] = _convert([actuals.array_value])
    assert isinstance(values, list)
    return ActualsBatch(model=model, version=version, time_s=time_s, ids=ids, actuals=values, resource=resource)


# --- traces ---------------------------------------------------------------------------------------------------


def extract_traces(request: Any, now_s: float | None = None) -> Extracted:
    """ExportTraceServiceRequest -> PredictSpan records (`predict ...` spans with predwatch.model.name)."""
    result = Extracted()
    for resource_spans in request.resource_spans:
        resource: Resource | None = None
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                if not span.name.startswith(SPAN_NAME_PREFIX):
                    continue
                attrs = attributes(span.attributes)
                if ATTR_MODEL_NAME not in attrs:
                    continue
                if resource is None:
                    resource = attributes(resource_spans.resource.attributes)
                try:
                    result.records.append(_predict_span(span, attrs, resource))
                except _Reject as reject:
                    result.rejected[reject.args[0]] += 1
                except Exception:
                    _log_bug("a predict span")
                    result.rejected["internal_error"] += 1
    return result


def _predict_span(span: Any, attrs: dict[str, Any], resource: Resource) -> PredictSpan:
    model = _name(attrs, ATTR_MODEL_NAME, "model")
    version = _optional_name(attrs, ATTR_MODEL_VERSION, "version") or ""
    if span.end_time_unix_nano < span.start_time_unix_nano or not span.start_time_unix_nano:
        raise _Reject("bad_time")
    batch_size = attrs.get(ATTR_BATCH_SIZE)
    error_type = attrs.get(ATTR_ERROR_TYPE)
    return PredictSpan(
        model=model,
        version=version,
        time_s=span.start_time_unix_nano / 1e9,
        duration_s=(span.end_time_unix_nano - span.start_time_unix_nano) / 1e9,
        ok=span.status.code != Status.STATUS_CODE_ERROR,
        batch_size=batch_size if isinstance(batch_size, int) and not isinstance(batch_size, bool) else 0,
        error_type=str(error_type) if error_type is not None else None,
        resource=resource,
    )


# --- metrics --------------------------------------------------------------------------------------------------


def extract_metrics(request: Any, now_s: float | None = None) -> Extracted:
    """ExportMetricsServiceRequest -> MetricPoint records (gauge, sum and explicit-bucket histogram points)."""
    result = Extracted()
    for resource_metrics in request.resource_metrics:
        resource: Resource | None = None
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data")
                if kind not in ("gauge", "sum", "histogram") or not metric.name.startswith(METRIC_PREFIXES):
                    continue
                if resource is None:
                    resource = attributes(resource_metrics.resource.attributes)
                data = getattr(metric, kind)
                delta = kind != "gauge" and data.aggregation_temporality == _DELTA
                for point in data.data_points:
                    if point.flags & _NO_RECORDED_VALUE:
                        continue
                    try:
                        result.records.append(_metric_point(metric.name, kind, delta, point, resource))
                    except _Reject as reject:
                        result.rejected[reject.args[0]] += 1
                    except Exception:
                        _log_bug("a %s data point", metric.name)
                        result.rejected["internal_error"] += 1
    return result


def _metric_point(name: str, kind: str, delta: bool, point: Any, resource: Resource) -> MetricPoint:
    common = {
        "name": name,
        "kind": kind,
        "time_s": point.time_unix_nano / 1e9,
        "attributes": attributes(point.attributes),
        "resource": resource,
        "start_time_s": point.start_time_unix_nano / 1e9 if point.start_time_unix_nano else None,
        "delta": delta,
    }
    if kind != "histogram":
        value_kind = point.WhichOneof("value")
        if value_kind is None:
            raise _Reject("missing_value")
        return MetricPoint(value=float(getattr(point, value_kind)), count=1, **common)
    bounds = list(point.explicit_bounds)
    counts = list(point.bucket_counts)
    if not counts and not bounds:
        counts = [point.count]
    if len(counts) != len(bounds) + 1 or sum(counts) != point.count:
        raise _Reject("bad_buckets")
    return MetricPoint(
        value=point.sum if point.HasField("sum") else float("nan"),
        count=point.count,
        bounds=bounds,
        counts=counts,
        min=point.min if point.HasField("min") else None,
        max=point.max if point.HasField("max") else None,
        **common,
    )


_EXTRACTORS = {"traces": extract_traces, "logs": extract_logs, "metrics": extract_metrics}
NOUNS = {"traces": "spans", "logs": "log records", "metrics": "data points"}


def extract(signal: str, request: Any, now_s: float | None = None) -> Extracted:
    """Dispatch on the signal name ("traces", "logs", "metrics")."""
    return _EXTRACTORS[signal](request, now_s)
