"""`ModelMonitor`: what happens around one predict call, on the caller's thread.

Per call: two clock reads, one prediction id per row, a sampling decision per id (then, for a sampled call,
the rate limit's: `_limit`), and a tuple appended to the worker's queue. A sampled call also queues a
snapshot of its input and output; converting them to columns, the span and the log events are made by the
worker thread (see `_capture`). Nothing here raises into the caller: the SDK's own faults are counted
(`predwatch.sdk.errors`), the user's exceptions re-raised unchanged.

A span is opened *before* the call, and is the current span while predict runs, only when a recording parent
span exists (an instrumented server, the ASGI/WSGI middleware): then spans made inside predict nest under it.
Otherwise the worker creates it afterwards with the measured start and end times and the caller's parent
context, and only for sampled or failed calls: an unsampled call in an untraced process costs no span.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from time import perf_counter_ns, time_ns
from typing import Any

import numpy as np
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span

from instrument import _runtime, semconv
from instrument._capture import CaptureJob, approx_bytes, end_span, error_type, snapshot
from instrument._config import parse_sample_rate
from instrument._context import ID_SINK, LAST_IDS
from instrument._guard import fault
from instrument._inputs import Columns, UnsupportedInput, input_columns, row_count
from instrument._values import new_ids, sample_rows

__all__ = ["MISSING", "ModelMonitor", "wall_time_ns"]

MISSING = object()  # the wrapped call had no input argument
_MAX_ERROR_TYPES = 32


def _names(value: Sequence[str] | None, what: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str) or not all(isinstance(v, str) for v in value):
        raise TypeError(f"{what} must be a list of strings, got {value!r}")
    return tuple(value)


class ModelMonitor:
    """Records one model's predictions. `@monitor` wraps a function with one; batch jobs call `log()`.

    >>> churn = ModelMonitor(model="churn", version="3", task="binary_classification")
    >>> ids = churn.log(features_df, scores)          # one prediction id per row
    """

    def __init__(
        self,
        model: str,
        version: str = "",
        *,
        task: str | None = None,
        features: Sequence[str] | None = None,
        outputs: Sequence[str] | None = None,
        classes: Sequence[Any] | None = None,
        id_column: str | None = None,
        sample_rate: float | None = None,
        exclude: Sequence[str] | None = None,
        threshold: float = 0.5,
        data_source: str | None = None,
    ) -> None:
        if not isinstance(model, str) or not model.strip():
            raise ValueError(f"model must be a non-empty string naming the model, got {model!r}")
        if not isinstance(version, str):
            raise TypeError(f"version must be a string such as '3' or '2024-06-01', got {version!r}")
        if task is not None and task not in semconv.TASKS:
            raise ValueError(f"task must be one of {', '.join(semconv.TASKS)} (or None), got {task!r}")
        if id_column is not None and not isinstance(id_column, str):
            raise TypeError(f"id_column must be a column name, got {id_column!r}")
        if not isinstance(threshold, int | float) or not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be a probability between 0 and 1, got {threshold!r}")
        if classes is not None and (isinstance(classes, str) or len(classes) < 2):
            raise ValueError(f"classes must list at least two class labels, got {classes!r}")
        if task == "binary_classification" and classes is not None and len(classes) != 2:
            raise ValueError(f"a binary classifier has two classes, got {classes!r}")
        self.model = model
        self.version = version
        self.task = task
        self.features = _names(features, "features")
        self.outputs = _names(outputs, "outputs")
        self.classes = tuple(classes) if classes is not None else None
        self.id_column = id_column
        self.sample_rate = None if sample_rate is None else parse_sample_rate(sample_rate, "sample_rate=")
        self.exclude = frozenset(_names(exclude, "exclude") or ())
        self.threshold = float(threshold)
        self.data_source = data_source
        self.span_name = f"{semconv.SPAN_NAME_PREFIX} {model}"

        base: dict[str, Any] = {semconv.ATTR_MODEL_NAME: model, semconv.ATTR_MODEL_VERSION: version}
        if task is not None:
            base[semconv.ATTR_MODEL_TASK] = task
        if data_source is not None:
            base[semconv.ATTR_DATA_SOURCE] = data_source
        self.event_attributes = base
        self._metric_ok = {
            semconv.ATTR_MODEL_NAME: model,
            semconv.ATTR_MODEL_VERSION: version,
            semconv.ATTR_OUTCOME: semconv.OUTCOME_OK,
        }
        self._metric_errors: dict[str, dict[str, Any]] = {}
        self.span_features: tuple[str, ...] = ()  # the feature list last put on a span (worker thread only)

    def __repr__(self) -> str:
        return f"ModelMonitor(model={self.model!r}, version={self.version!r}, task={self.task!r})"

    def metric_attributes(self, error_type: str | None) -> dict[str, Any]:
        """Attributes of the metric recordings for one call (bounded: at most 32 error types, then `_OTHER`)."""
        if error_type is None:
            return self._metric_ok
        attrs = self._metric_errors.get(error_type)
        if attrs is None:
            key = error_type if len(self._metric_errors) < _MAX_ERROR_TYPES else "_OTHER"
            attrs = self._metric_errors.get(key)
            if attrs is None:
                attrs = {**self._metric_ok, semconv.ATTR_OUTCOME: semconv.OUTCOME_ERROR, semconv.ATTR_ERROR_TYPE: key}
                self._metric_errors[key] = attrs
        return attrs

    # --- batch jobs ----------------------------------------------------------------------------------------
    def log(
        self,
        inputs: Any,
        outputs: Any,
        ids: Sequence[str] | None = None,
        latency_s: float | None = None,
    ) -> list[str]:
        """Record predictions made elsewhere (a batch-scoring job); returns their ids. Never raises."""
        runtime = _runtime.current()
        given = [str(i) for i in ids] if ids is not None else None
        if runtime is None:
            return given if given is not None else new_ids(row_count(inputs, self.features))
        duration_ns = None
        if latency_s is not None and isinstance(latency_s, int | float) and math.isfinite(latency_s) and latency_s >= 0:
            duration_ns = int(latency_s * 1e9)
        now = perf_counter_ns()
        result = self.finish(runtime, inputs, outputs, None, now, duration_ns, None, None, given, limited=False)
        return result if result is not None else (given or [])

    # --- the call path -------------------------------------------------------------------------------------
    def start_span(self, runtime: _runtime.Runtime) -> tuple[Span | None, object]:
        """Open the call's span before predict runs and make it current (only under a recording parent)."""
        try:
            span = runtime.tracer.start_span(self.span_name, attributes=self.event_attributes)
            return span, otel_context.attach(trace.set_span_in_context(span))
        except Exception as exc:
            fault("span.start", exc)
            return None, None

    def finish(
        self,
        runtime: _runtime.Runtime,
        x: Any,
        result: Any,
        exc: BaseException | None,
        t0: int,
        duration_ns: int | None,
        span: Span | None,
        token: object,
        given_ids: list[str] | None = None,
        limited: bool = True,
    ) -> list[str] | None:
        """Everything after the call: ids, sampling, hand-off to the worker. Never raises. `limited`: the call is
        subject to the rate limit (a predict call; not `log()`, whose caller chose to record what it gives)."""
        try:
            if token is not None:
                otel_context.detach(token)  # type: ignore[arg-type]
            rate = runtime.sample_rate if self.sample_rate is None else self.sample_rate
            if exc is not None:
                rate = 0.0  # a failed call has no outputs to capture
            columns: Columns | None = None
            if given_ids is not None:
                ids = given_ids
            elif self.id_column is not None and x is not MISSING:
                ids, columns = self._ids_from_column(x, runtime.settings.max_string_len)
            else:
                ids = new_ids(0 if x is MISSING else row_count(x, self.features))
            n = len(ids)

            sampled, keep = sample_rows(ids, rate)
            sink = ID_SINK.get()
            if sampled and limited:
                if sink is not None:  # inside a request the middleware admitted, or not
                    sampled = sink.admitted
                elif runtime.limit is not None:
                    sampled = runtime.limit.admit()
            if sampled:
                job = CaptureJob(
                    monitor=self,
                    inputs=columns if columns is not None else snapshot(x),
                    outputs=snapshot(result),
                    ids=ids,
                    keep=keep,
                    rate=rate,
                    n=n,
                    context=otel_context.get_current() if span is None else None,
                    span=span,
                    start_ns=wall_time_ns(t0),
                    duration_ns=duration_ns,
                    columns_ready=columns is not None,
                )
                sampled = runtime.worker.put_payload(job, approx_bytes(x, n))
            if not sampled and (span is not None or (exc is not None and duration_ns is not None)):
                end_span(runtime, self, span, None, exc, n, False, wall_time_ns(t0), duration_ns)

            runtime.worker.put_call(
                (self, None if duration_ns is None else duration_ns / 1e9, None if exc is None else error_type(exc), n)
            )
            LAST_IDS.set(ids)
            if sink is not None:
                sink.extend(ids)
            return ids
        except Exception as fault_exc:
            fault("monitor.record", fault_exc)
            if span is not None:
                try:
                    span.end()
                except Exception:
                    pass
            return None

    def _ids_from_column(self, x: Any, max_len: int) -> tuple[list[str], Columns | None]:
        """Ids from the `id_column` of the input; converts the whole input only when it must."""
        column = self.id_column
        values: Any = None
        columns: Columns | None = None
        if type(x) is dict and column in x:
            values = x[column]
            if not isinstance(values, list | tuple | np.ndarray):
                values = [values]
        elif type(x) is list and x and type(x[0]) is dict:
            values = [row.get(column) for row in x]
        elif type(x).__module__.startswith("pandas") and hasattr(x, "columns") and column in x.columns:
            values = x[column].tolist()
        else:
            try:
                columns, _ = input_columns(x, self.features, max_len)
            except UnsupportedInput:
                columns = None
            if columns is None or column not in columns:
                return new_ids(row_count(x, self.features)), None
            values = columns.pop(column)
        values = list(values)
        missing = [i for i, v in enumerate(values) if v is None or v != v or type(v).__name__ in ("NAType", "NaTType")]
        fresh = new_ids(len(missing))
        for i, value in zip(missing, fresh, strict=True):
            values[i] = value
        return [v if type(v) is str else str(v) for v in values], columns


def wall_time_ns(t0_perf_ns: int) -> int:
    """The wall-clock time (ns since the epoch) at which perf_counter_ns() read t0."""
    return time_ns() - (perf_counter_ns() - t0_perf_ns)
