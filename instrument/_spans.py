"""Spans for the pipeline the SDK builds itself: OpenTelemetry's API, a lighter recorder behind it.

When the application has no tracer provider, the SDK makes its own pipeline, and the only spans it ever
records are its own: a server span per HTTP request and a `predict` span per call. OpenTelemetry's SDK spends
about 25 us to start and end such a span (attribute validation, locks, a second read-only copy at the end)
and another 40 us to encode it on the export thread; for a trivial predict endpoint that is a fifth of a
request's CPU. `LightTracer` makes spans that keep what the OTLP request needs and nothing else, and
`instrument._encode_spans` writes them in protobuf wire format directly.

What stays OpenTelemetry's: the API (a `LightSpan` is an `opentelemetry.trace.Span`, carried in the context
like any other, so trace context propagates as usual), the sampler (`OTEL_TRACES_SAMPLER`, parent-based by
default), random ids drawn as its RandomIdGenerator draws them, the batch span processor and the OTLP/HTTP
exporter. A `LightSpan` also reads like the SDK's `ReadableSpan` (context, parent, name, kind, times,
attributes, events, status, resource, scope), so any span exporter can take it. An application that brings
its own tracer provider gets the SDK's spans as before.
"""

from __future__ import annotations

import random
import traceback
from collections.abc import Iterator, Mapping, Sequence
from time import time_ns
from typing import Any, NamedTuple

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, sampling
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import DEFAULT_TRACE_STATE
from opentelemetry.util import types
from opentelemetry.util._decorator import _agnosticcontextmanager

__all__ = ["LightSpan", "LightTracer", "LightTracerProvider", "SpanEvent"]

_SAMPLED = TraceFlags(TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID)
_NOT_SAMPLED = TraceFlags(TraceFlags.RANDOM_TRACE_ID)
UNSET = Status(StatusCode.UNSET)  # the status of every span not given one (the encoder knows it by identity)
_LOW_64 = (1 << 64) - 1  # the bits of a trace id that TraceIdRatioBased compares with its bound
_MAX_ATTRIBUTES = 128  # OpenTelemetry's default span limits
_MAX_EVENTS = 128
_SCALARS = (str, bool, int, float)
_SCALAR_TYPES = frozenset(_SCALARS)
_NO_STATE = DEFAULT_TRACE_STATE


def _context_maker() -> Any:
    """`make(SpanContext, (trace_id, span_id, is_remote, flags, trace_state, is_valid))`: for ids the tracer has made
    valid itself, a SpanContext without its constructor's checks (~40 bytecodes a span). That is `tuple.__new__`
    while OpenTelemetry lays a SpanContext out as that tuple (checked here, once); else the constructor."""
    fields = (3, 5, False, _SAMPLED, _NO_STATE, True)
    made = tuple.__new__(SpanContext, fields)
    reference = SpanContext(3, 5, False, _SAMPLED, _NO_STATE)
    if made == reference and (made.trace_id, made.span_id, made.trace_flags, made.is_valid) == (3, 5, _SAMPLED, True):
        return tuple.__new__
    return lambda cls, values: cls(*values[:5])


_make_context = _context_maker()


class SpanEvent(NamedTuple):
    """What the encoder reads of an event (the SDK's `Event` has the same fields)."""

    name: str
    timestamp: int
    attributes: Mapping[str, Any]
    dropped_attributes: int = 0


def _clean(value: Any) -> Any:
    """An attribute value as OpenTelemetry keeps it (scalars, homogeneous sequences as tuples), else None."""
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        items = tuple(value)
        kinds = {type(v) for v in items if v is not None}
        if len(kinds) <= 1 and all(issubclass(k, _SCALARS) for k in kinds):
            return items
    return None


class LightSpan(trace.Span):
    """A recording span (see the module docstring); handed to the span processor when it ends."""

    __slots__ = (
        "_processor",
        "attributes",
        "context",
        "dropped_attributes",
        "dropped_events",
        "end_time",
        "events",
        "instrumentation_scope",
        "kind",
        "name",
        "parent",
        "resource",
        "start_time",
        "status",
    )

    dropped_links = 0
    links: tuple[Link, ...] = ()

    def __init__(
        self,
        tracer: LightTracer,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        kind: SpanKind,
        attributes: dict[str, Any],
        start_time: int,
    ) -> None:
        self._processor = tracer.processor
        self.resource = tracer.resource
        self.instrumentation_scope = tracer.scope
        self.name = name
        self.context = context
        self.parent = parent
        self.kind = kind
        self.attributes = attributes
        self.dropped_attributes = 0
        self.events: Sequence[SpanEvent] = ()  # a list once an event is added: most spans have none
        self.dropped_events = 0
        self.status = UNSET
        self.start_time = start_time
        self.end_time: int | None = None

    def get_span_context(self) -> SpanContext:
        return self.context

    def is_recording(self) -> bool:
        return self.end_time is None

    def set_attribute(self, key: str, value: types.AttributeValue) -> None:
        if self.end_time is not None:
            return
        if type(value) not in _SCALAR_TYPES:
            value = _clean(value)
            if value is None:
                return
        if not key:
            return
        attributes = self.attributes
        if key not in attributes and len(attributes) >= _MAX_ATTRIBUTES:
            del attributes[next(iter(attributes))]  # full: the oldest goes, as in OpenTelemetry's SDK
            self.dropped_attributes += 1
        attributes[key] = value

    def set_attributes(self, attributes: Mapping[str, types.AttributeValue]) -> None:
        mine = self.attributes
        if (
            self.end_time is None
            and len(mine) + len(attributes) <= _MAX_ATTRIBUTES
            and _SCALAR_TYPES.issuperset(map(type, attributes.values()))
            and "" not in attributes
        ):
            mine.update(attributes)  # plain values: nothing to clean
            return
        for key, value in attributes.items():
            self.set_attribute(key, value)

    def add_event(self, name: str, attributes: types.Attributes = None, timestamp: int | None = None) -> None:
        if self.end_time is not None:
            return
        events = self.events
        if len(events) >= _MAX_EVENTS:
            self.dropped_events += 1
            return
        if type(events) is not list:
            events = self.events = []
        cleaned = {k: v for k, v in ((k, _clean(v)) for k, v in (attributes or {}).items()) if v is not None}
        events.append(SpanEvent(name, timestamp if timestamp is not None else time_ns(), cleaned))

    def add_link(self, context: SpanContext, attributes: types.Attributes = None) -> None:
        pass  # the SDK's own spans have no links

    def update_name(self, name: str) -> None:
        if self.end_time is None:
            self.name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        if self.end_time is not None or self.status.status_code is StatusCode.OK:
            return  # OK is final, as in OpenTelemetry's SDK
        if isinstance(status, StatusCode):
            status = Status(status, description)
        self.status = status

    def record_exception(
        self,
        exception: BaseException,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        kind = type(exception)
        module = kind.__module__
        attrs: dict[str, Any] = {
            "exception.type": f"{module}.{kind.__qualname__}" if module and module != "builtins" else kind.__qualname__,
            "exception.message": str(exception),
            "exception.stacktrace": "".join(traceback.format_exception(exception)),
            "exception.escaped": str(escaped),
        }
        if attributes:
            attrs.update(attributes)
        self.add_event("exception", attrs, timestamp)

    def end(self, end_time: int | None = None) -> None:
        if self.end_time is not None:
            return
        self.end_time = end_time if end_time is not None else time_ns()
        self._processor.on_end(self)  # type: ignore[arg-type]  # reads like a ReadableSpan

    def __repr__(self) -> str:
        context = self.context
        return f"LightSpan({self.name!r}, trace_id={context.trace_id:032x}, span_id={context.span_id:016x})"


def _parent_based_bound(sampler: sampling.Sampler) -> int | None:
    """For `ParentBased(root)` with the default delegates (follow a parent's sampled flag) and a root that is
    ALWAYS_ON, ALWAYS_OFF or a `TraceIdRatioBased` (the samplers OTEL_TRACES_SAMPLER names): the bound on a
    root's trace id (its low 64 bits) below which it is sampled. None for any other sampler."""
    if not isinstance(sampler, sampling.ParentBased):
        return None
    delegates = vars(sampler)
    defaults = {
        "_remote_parent_sampled": sampling.ALWAYS_ON,
        "_remote_parent_not_sampled": sampling.ALWAYS_OFF,
        "_local_parent_sampled": sampling.ALWAYS_ON,
        "_local_parent_not_sampled": sampling.ALWAYS_OFF,
    }
    if any(delegates.get(name) is not default for name, default in defaults.items()):
        return None
    root = delegates.get("_root")
    if root is sampling.ALWAYS_ON:
        return _LOW_64 + 1
    if root is sampling.ALWAYS_OFF:
        return 0
    if type(root) is sampling.TraceIdRatioBased:
        return root.bound
    return None


def _reads_no_attributes(sampler: sampling.Sampler) -> bool:
    if type(sampler) is sampling.ParentBased:
        delegates = [value for value in vars(sampler).values() if isinstance(value, sampling.Sampler)]
        return all(_reads_no_attributes(d) for d in delegates)
    return type(sampler) in (sampling.StaticSampler, sampling.TraceIdRatioBased, sampling.ParentBasedTraceIdRatio)


class LightTracer(trace.Tracer):
    def __init__(
        self, processor: SpanProcessor, sampler: sampling.Sampler, resource: Resource, scope: InstrumentationScope
    ) -> None:
        self.processor = processor
        self.sampler = sampler
        self.root_bound = _parent_based_bound(sampler)
        # OpenTelemetry's own samplers decide without looking at attributes: a caller may then build a span's
        # attributes only once the span turns out to record.
        self.attributes_unused = _reads_no_attributes(sampler)
        self.resource = resource
        self.scope = scope

    def start_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace.Span:
        return self.start_child(name, trace.get_current_span(context), kind, attributes, links, start_time, context)

    def start_child(
        self,
        name: str,
        current_span: trace.Span,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        context: Context | None = None,
        root: bool = True,
    ) -> trace.Span:
        """`start_span` for a caller that has already looked up the current span (`context`'s, or the current
        context's when None): the middleware, which checks it for an enclosing server span first. `root`:
        False when a span that would start a trace must not be recorded (the SDK's rate limit turned it away);
        it is then not sampled, whatever the sampler says, and its context still propagates that decision."""
        current = current_span.get_span_context()
        parent = current if current.is_valid else None
        trace_id = current.trace_id if parent is not None else random.getrandbits(128) or 1
        if not root and parent is None:
            fields = (trace_id, random.getrandbits(64) or 1, False, _NOT_SAMPLED, _NO_STATE, True)
            return NonRecordingSpan(_make_context(SpanContext, fields))
        bound = self.root_bound
        if bound is not None:  # parent-based with the default delegates: its decision, without its objects
            if not (parent.trace_flags.sampled if parent is not None else trace_id & _LOW_64 < bound):
                fields = (trace_id, random.getrandbits(64) or 1, False, _NOT_SAMPLED, _NO_STATE, True)
                return NonRecordingSpan(_make_context(SpanContext, fields))
            flags, trace_state, extra = _SAMPLED, parent.trace_state if parent is not None else _NO_STATE, attributes
        else:
            result = self.sampler.should_sample(context, trace_id, name, kind, attributes, links)
            decision = result.decision
            flags = _SAMPLED if decision is sampling.Decision.RECORD_AND_SAMPLE else _NOT_SAMPLED
            if decision is sampling.Decision.DROP:
                return NonRecordingSpan(SpanContext(trace_id, random.getrandbits(64) or 1, False, flags))
            trace_state, extra = result.trace_state or _NO_STATE, result.attributes
        fields = (trace_id, random.getrandbits(64) or 1, False, flags, trace_state, True)
        span_context = _make_context(SpanContext, fields)
        attrs: dict[str, Any] = dict(extra) if extra else {}
        if not _SCALAR_TYPES.issuperset(map(type, attrs.values())):
            attrs = {k: v for k, v in ((k, _clean(v)) for k, v in attrs.items()) if v is not None}
        start = start_time if start_time is not None else time_ns()
        return LightSpan(self, name, span_context, parent, kind, attrs, start)

    @_agnosticcontextmanager
    def start_as_current_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> Iterator[trace.Span]:
        span = self.start_span(name, context, kind, attributes, links, start_time)
        with trace.use_span(span, end_on_exit, record_exception, set_status_on_exception) as current:
            yield current


class LightTracerProvider(trace.TracerProvider):
    """The SDK's own tracer provider: one processor, the sampler from the environment."""

    def __init__(self, resource: Resource, processor: SpanProcessor, sampler: sampling.Sampler | None = None) -> None:
        self.resource = resource
        self.processor = processor
        self.sampler = sampler or sampling._get_from_env_or_default()

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: types.Attributes = None,
    ) -> LightTracer:
        scope = InstrumentationScope(instrumenting_module_name, instrumenting_library_version, schema_url)
        return LightTracer(self.processor, self.sampler, self.resource, scope)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return bool(self.processor.force_flush(timeout_millis))

    def shutdown(self) -> None:
        self.processor.shutdown()
