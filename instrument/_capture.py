"""Payload capture on the worker thread: turning a sampled call's inputs and outputs into an event.

The caller only takes a snapshot (a copy of what it might mutate after predict returns: numpy arrays, dicts,
lists, tensors; pandas objects are copied shallowly under copy-on-write, deeply otherwise) and queues a
`CaptureJob`. The worker converts it to columns, ends the call's span (creating it, with the measured start
and end times and the caller's parent context, when the call had none) and emits the log events.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import numpy as np
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanContext, Status, StatusCode

from instrument import semconv
from instrument._guard import count_dropped, fault
from instrument._http_extract import NOT_JSON, NOT_JSON_BODY, parse_json, request_inputs
from instrument._inputs import Columns, UnsupportedInput, input_columns
from instrument._outputs import output_columns
from instrument._payload import Payload, estimate_bytes

if TYPE_CHECKING:
    from instrument._monitor import ModelMonitor
    from instrument._runtime import Runtime

__all__ = [
    "CaptureJob",
    "Captured",
    "approx_bytes",
    "coalesce",
    "end_span",
    "error_type",
    "prepare_jobs",
    "snapshot",
]


def error_type(exc: BaseException) -> str:
    kind = type(exc)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def _pandas_copy_on_write() -> bool:
    pd = sys.modules.get("pandas")
    if pd is None:
        return False
    if int(pd.__version__.partition(".")[0]) >= 3:
        return True
    return bool(getattr(pd.options.mode, "copy_on_write", False) is True)


_PLAIN = frozenset((float, str, bool, int))  # outputs that convert row by row as they do together
_ROW_VALUES = frozenset((float, str, bool, int, type(None)))  # the values of a row that needs no copy


def snapshot(obj: Any) -> Any:
    """A copy of `obj` that later changes by the caller cannot reach (cheap: no conversion here)."""
    kind = type(obj)
    if kind is np.ndarray:
        return obj.copy()
    if kind is dict:
        if _ROW_VALUES.issuperset(map(type, obj.values())):
            return obj.copy()  # a row of plain values: nothing inside to copy
        return {k: (v.copy() if type(v) is np.ndarray or type(v) is list else v) for k, v in obj.items()}
    if kind is list:
        return list(obj)
    module = kind.__module__.partition(".")[0]
    if module == "pandas" and hasattr(obj, "copy"):
        return obj.copy(deep=not _pandas_copy_on_write())
    if module == "torch" and hasattr(obj, "detach"):
        return obj.detach().clone()
    return obj


def approx_bytes(obj: Any, n: int) -> int:
    """What a snapshot holds, roughly, for the bound on pending payload memory."""
    if type(obj) is list:
        first = obj[0] if obj else None
        width = len(first) if type(first) is list or type(first) is dict else 1
        return 64 + 16 * max(n, 1) * max(width, 1)
    nbytes = getattr(obj, "nbytes", None)
    if isinstance(nbytes, int):
        return nbytes + 64
    width = len(obj) if isinstance(obj, dict) else (obj.shape[1] if getattr(obj, "ndim", 0) == 2 else 1)
    return 64 + 16 * max(n, 1) * max(width, 1)


def end_span(
    runtime: Runtime,
    monitor: ModelMonitor,
    span: Span | None,
    context: Context | None,
    exc: BaseException | None,
    n: int,
    sampled: bool,
    start_ns: int,
    duration_ns: int | None,
    features: list[str] | None = None,
) -> Span:
    """End a call's span, creating it now (measured start time, caller's parent context) when there is none."""
    attrs: dict[str, Any] = {semconv.ATTR_BATCH_SIZE: n, semconv.ATTR_PAYLOAD_SAMPLED: sampled}
    if features:
        attrs[semconv.ATTR_FEATURES] = features
    if exc is not None:
        attrs[semconv.ATTR_ERROR_TYPE] = error_type(exc)
    if span is None:
        span = runtime.tracer.start_span(
            monitor.span_name, context=context, start_time=start_ns, attributes={**monitor.event_attributes, **attrs}
        )
        start: int | None = start_ns
    else:
        span.set_attributes(attrs)
        start = getattr(span, "start_time", None)
    if exc is not None:
        span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"[:256]))
        span.record_exception(exc)
    span.end(end_time=start + duration_ns if start is not None and duration_ns is not None else None)
    return span


@dataclass(slots=True)
class CaptureJob:
    monitor: ModelMonitor
    inputs: Any  # a snapshot, or the already converted columns when `columns_ready`
    outputs: Any
    ids: list[str]
    keep: list[int] | None  # rows to capture (sampling below 1); None = all
    rate: float
    n: int
    context: Context | None
    span: Span | None
    start_ns: int
    duration_ns: int | None
    columns_ready: bool = False
    # `inputs` is still a request's JSON body (bytes): the HTTP middleware leaves parsing it to the worker
    json_request: bool = False

    def parse_request(self, runtime: Runtime) -> bool:
        """Turn a JSON request body into inputs (the middleware's default mapping); False, counted and with the
        call's span ended, when it is not JSON."""
        self.json_request = False
        doc = parse_json(self.inputs)
        if doc is NOT_JSON:
            count_dropped(NOT_JSON_BODY, 1, f"a request for model {self.monitor.model!r} is not JSON")
            end_span(
                runtime, self.monitor, self.span, self.context, None, self.n, False, self.start_ns, self.duration_ns
            )
            return False
        self.inputs = request_inputs(doc)  # parsed here: nobody else holds it, no copy needed
        return True

    def _columns(self, max_len: int) -> tuple[Columns, Columns] | None:
        monitor = self.monitor
        if self.columns_ready:
            inputs, n_in = self.inputs, self.n
        else:
            try:
                inputs, n_in = input_columns(self.inputs, monitor.features, max_len)
            except UnsupportedInput as err:
                count_dropped(err.reason, 1, f"inputs not captured for model {monitor.model!r}: {err}")
                inputs, n_in = {}, -1
        if monitor.id_column is not None:
            inputs.pop(monitor.id_column, None)
        try:
            outputs, n_out = output_columns(
                self.outputs,
                task=monitor.task,
                names=monitor.outputs,
                classes=monitor.classes,
                threshold=monitor.threshold,
                max_len=max_len,
            )
        except UnsupportedInput as err:
            count_dropped(err.reason, 1, f"outputs not captured for model {monitor.model!r}: {err}")
            outputs, n_out = {}, max(n_in, len(self.ids))
        if n_in < 0:  # inputs could not be read: the outputs alone
            n_in = n_out
        if n_out != n_in or n_in != len(self.ids):
            count_dropped("row_mismatch", 1, f"model {monitor.model!r}: {n_in} input rows but {n_out} outputs")
            return None
        for name in monitor.exclude:
            inputs.pop(name, None)
        return inputs, outputs

    def prepare(self, runtime: Runtime) -> Captured | None:
        """Convert, end the call's span, and return the rows to send (None when nothing can be sent)."""
        settings = runtime.settings
        monitor = self.monitor
        columns = self._columns(settings.max_string_len)
        if columns is None:
            end_span(runtime, monitor, self.span, self.context, None, self.n, False, self.start_ns, self.duration_ns)
            return None
        inputs, outputs = columns
        ids, keep = self.ids, self.keep
        if keep is not None and len(keep) < len(ids):
            ids = [ids[i] for i in keep]
            inputs = {k: [v[i] for i in keep] for k, v in inputs.items()}
            outputs = {k: [v[i] for i in keep] for k, v in outputs.items()}
        span = self._end_sampled(runtime, _announce(monitor, inputs))
        rate = self.rate if keep is not None else None
        return Captured(monitor, rate, self.start_ns, span.get_span_context(), ids, inputs, outputs)

    def _end_sampled(self, runtime: Runtime, features: list[str] | None) -> Span:
        return end_span(
            runtime,
            self.monitor,
            self.span,
            self.context,
            None,
            self.n,
            True,
            self.start_ns,
            self.duration_ns,
            features,
        )

    def __call__(self, runtime: Runtime) -> None:
        captured = self.prepare(runtime)
        if captured is not None:
            for payload in coalesce([captured], runtime.settings.max_event_bytes):
                runtime.emit(payload)


_INT64 = 1 << 63


def _row_batch_key(job: CaptureJob) -> tuple[Any, ...] | None:
    """A key under which calls convert as one batch exactly as they would one by one, or None.

    That holds for lists of rows (lists of one width, or dicts with the same keys in the same order) whose
    outputs are lists of plain values of one type: each row and each output then converts on its own, and
    the type decides how an output is read (a float is a score, an int a label). Single-row calls from the
    HTTP middleware are the case that matters: converting 64 of them as one batch costs about as much as
    converting two of them one by one.
    """
    x, y, ids = job.inputs, job.outputs, job.ids
    if type(x) is dict and len(ids) == 1 and not job.columns_ready:
        # One row as a dict of plain values (what a single-row predict is usually handed) with one plain output:
        # the same as the row and the output in lists of one.
        if type(y) not in _PLAIN or not _ROW_VALUES.issuperset(map(type, x.values())):
            return None
        if type(y) is int and not -_INT64 <= y < _INT64:
            return None  # as below: numpy would read a column holding this one as objects
        rate = job.rate if job.keep is not None else None
        return (id(job.monitor), dict, tuple(x), type(y), rate)
    if job.columns_ready or type(x) is not list or type(y) is not list or not x or len(x) != len(y):
        return None
    if len(ids) != len(x):
        return None
    first = x[0]
    kind = type(first)
    single = len(x) == 1  # the middleware's case: no other rows to compare with the first
    layout: Any
    if kind is list:
        layout = len(first)
        if not single and any(type(row) is not list or len(row) != layout for row in x):
            return None
    elif kind is dict:
        layout = tuple(first)
        if not single and any(type(row) is not dict or tuple(row) != layout for row in x):
            return None
    else:
        return None
    out = type(y[0])
    if out not in _PLAIN or (not single and any(type(v) is not out for v in y)):
        return None
    if out is int and any(not -_INT64 <= v < _INT64 for v in y):
        return None  # numpy would read a column holding this one as objects
    rate = job.rate if job.keep is not None else None
    return (id(job.monitor), kind, layout, out, rate)


def _announce(monitor: ModelMonitor, inputs: Columns) -> list[str] | None:
    """The feature list for a call's span, only when it changed (first call, schema change): OpenTelemetry checks
    array attributes element by element (~1.3 us each), and every payload event carries the features anyway, as
    the keys of its `inputs`."""
    features = tuple(inputs)
    if features == monitor.span_features:
        return None
    monitor.span_features = features
    return list(features)


def _prepare_batch(runtime: Runtime, group: list[CaptureJob]) -> Captured | None:
    """Calls with one `_row_batch_key`, converted together; their spans ended one by one."""
    first = group[0]
    rows: list[Any] = []
    outputs: list[Any] = []
    ids: list[str] = []
    for job in group:
        keep = job.keep
        if type(job.inputs) is dict:  # one row (see _row_batch_key); sampled, or it would not be here
            rows.append(job.inputs)
            outputs.append(job.outputs)
            ids.extend(job.ids)
        elif keep is None or len(keep) == len(job.ids):
            rows.extend(job.inputs)
            outputs.extend(job.outputs)
            ids.extend(job.ids)
        else:
            rows.extend([job.inputs[i] for i in keep])
            outputs.extend([job.outputs[i] for i in keep])
            ids.extend([job.ids[i] for i in keep])
    start_ns = min(job.start_ns for job in group)
    batch = CaptureJob(first.monitor, rows, outputs, ids, None, first.rate, len(ids), None, None, start_ns, None)
    columns = batch._columns(runtime.settings.max_string_len)
    if columns is None:
        return None
    inputs, outputs_columns = columns
    announce = _announce(first.monitor, inputs)
    for job in group:
        job._end_sampled(runtime, announce)
        announce = None
    rate = first.rate if first.keep is not None else None
    # rows of several calls (so several traces): no trace context, as coalesce() gives merged events
    return Captured(first.monitor, rate, start_ns, None, ids, inputs, outputs_columns)


def prepare_jobs(runtime: Runtime, jobs: list[CaptureJob]) -> list[Captured]:
    """Convert a drain's sampled calls and end their spans; rows of calls that allow it convert as batches."""
    captured: list[Captured] = []

    def one_by_one(group: list[CaptureJob]) -> None:
        for job in group:
            try:
                prepared = job.prepare(runtime)
            except Exception as exc:
                fault("worker.payload", exc)
                continue
            if prepared is not None:
                captured.append(prepared)

    groups: dict[tuple[Any, ...], list[CaptureJob]] = {}
    for job in jobs:
        try:
            if job.json_request and not job.parse_request(runtime):
                continue
        except Exception as exc:
            fault("worker.payload", exc)
            continue
        try:
            key = _row_batch_key(job)
        except Exception as exc:
            fault("worker.batch", exc)
            key = None
        if key is None:
            one_by_one([job])
        else:
            groups.setdefault(key, []).append(job)
    for group in groups.values():
        if len(group) == 1:
            one_by_one(group)
            continue
        try:
            prepared = _prepare_batch(runtime, group)
        except Exception as exc:
            fault("worker.batch", exc)
            prepared = None
        if prepared is not None:
            captured.append(prepared)
        else:  # the batch could not be read: each call on its own, with its own counts
            one_by_one(group)
    return captured


@dataclass(slots=True)
class Captured:
    """One call's captured rows, ready to be sent."""

    monitor: ModelMonitor
    rate: float | None  # the sample rate, when rows were sampled
    start_ns: int
    span_context: SpanContext | None
    ids: list[str]
    inputs: Columns
    outputs: Columns


def _concatenated(tables: list[Columns]) -> Columns:
    """Tables with the same columns, one after the other (column by column, without a loop over the tables)."""
    return {k: list(chain.from_iterable(map(itemgetter(k), tables))) for k in tables[0]}


def coalesce(captured: list[Captured], max_event_bytes: int) -> list[Payload]:
    """One payload per model and column layout: calls captured close together travel as one event.

    Per event, OpenTelemetry's log pipeline costs about as much as encoding a few hundred values, so single-row
    calls sent one event each spent most of the SDK's CPU on envelopes. A merged event carries the earliest
    call's time and no trace context (its rows belong to several traces); a lone call keeps its span's.
    """
    groups: dict[tuple[int, tuple[str, ...], tuple[str, ...], float | None], list[Captured]] = {}
    for c in captured:
        groups.setdefault((id(c.monitor), tuple(c.inputs), tuple(c.outputs), c.rate), []).append(c)
    payloads = []
    for group in groups.values():
        first = group[0]
        if len(group) == 1:
            ids, inputs, outputs, span_context = first.ids, first.inputs, first.outputs, first.span_context
        else:
            ids = list(chain.from_iterable([c.ids for c in group]))
            inputs = _concatenated([c.inputs for c in group])
            outputs = _concatenated([c.outputs for c in group])
            span_context = None
        attrs = {**first.monitor.event_attributes, semconv.ATTR_PAYLOAD_ROWS: len(ids)}
        if first.rate is not None:
            attrs[semconv.ATTR_SAMPLE_RATE] = first.rate
        payloads.append(
            Payload(
                event_name=semconv.EVENT_INFERENCE,
                attributes=attrs,
                time_ns=min(c.start_ns for c in group),
                span_context=span_context,
                ids=ids,
                columns={semconv.BODY_INPUTS: inputs, semconv.BODY_OUTPUTS: outputs},
                nbytes=estimate_bytes(len(ids), inputs, outputs),
                max_event_bytes=max_event_bytes,
            )
        )
    return payloads
