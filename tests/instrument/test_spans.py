"""The SDK's own tracer behaves as OpenTelemetry's for every span the SDK makes (differential tests)."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import extract
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider, sampling
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from instrument._spans import LightSpan, LightTracerProvider

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-{flags}"


def pair(sampler: sampling.Sampler | None = None) -> tuple[list[Any], list[InMemorySpanExporter]]:
    """An OpenTelemetry TracerProvider and a LightTracerProvider with the same sampler, each recording."""
    resource = Resource.create({"service.name": "svc"})
    sdk_exporter, light_exporter = InMemorySpanExporter(), InMemorySpanExporter()
    sdk = TracerProvider(resource=resource, sampler=sampler, shutdown_on_exit=False)
    sdk.add_span_processor(SimpleSpanProcessor(sdk_exporter))
    light = LightTracerProvider(resource, SimpleSpanProcessor(light_exporter), sampler)
    return [sdk, light], [sdk_exporter, light_exporter]


def shape(spans: list[ReadableSpan]) -> list[tuple[Any, ...]]:
    """What must match between the two tracers: everything but the random ids and the clock."""
    ids = {s.context.span_id: i for i, s in enumerate(spans)}
    out = []
    for span in spans:
        parent = span.parent
        out.append(
            (
                span.name,
                span.kind,
                dict(span.attributes or {}),
                [(e.name, {k: v for k, v in e.attributes.items() if k != "exception.stacktrace"}) for e in span.events],
                span.status.status_code,
                span.status.description,
                int(span.context.trace_flags) & TraceFlags_SAMPLED,
                str(span.context.trace_state.to_header()) if span.context.trace_state else "",
                None if parent is None else ids.get(parent.span_id, (parent.span_id, parent.is_remote)),
                span.context.trace_id == (parent.trace_id if parent else span.context.trace_id),
                span.start_time is not None and span.end_time is not None and span.end_time >= span.start_time,
            )
        )
    return out


TraceFlags_SAMPLED = 0x01


def scenario(provider: Any) -> None:
    """Spans as the SDK makes them: a server span from a traceparent, a child, an error, late attributes."""
    tracer = provider.get_tracer("predwatch", "1.0")
    for flags in ("01", "00"):
        parent = extract({"traceparent": TRACEPARENT.format(flags=flags), "tracestate": "vendor=v1"})
        server = tracer.start_span("POST /predict", context=parent, kind=SpanKind.SERVER, attributes={"a": 1})
        server.set_attributes({"http.request.method": "POST", "url.path": "/predict", "list": ["x", "y"]})
        context = trace.set_span_in_context(server, parent)
        child = tracer.start_span("predict m", context=context, attributes={"predwatch.batch.size": 3})
        child.set_attribute("predwatch.payload.sampled", True)
        try:
            raise ValueError("boom")
        except ValueError as exc:
            child.record_exception(exc)
            child.set_status(Status(StatusCode.ERROR, "ValueError: boom"))
        child.end()
        child.set_attribute("after.end", 1)  # ignored once ended
        server.update_name("POST /v1/predict")
        server.set_attribute("http.response.status_code", 500)
        server.set_status(StatusCode.ERROR)
        server.end()
    root = tracer.start_span("root")  # no parent: a new trace
    token = otel_context.attach(trace.set_span_in_context(root))
    try:
        with tracer.start_as_current_span("nested") as nested:
            nested.set_status(Status(StatusCode.OK))
            nested.set_status(Status(StatusCode.ERROR, "too late: OK is final"))
    finally:
        otel_context.detach(token)
    root.end()


@pytest.mark.parametrize(
    "sampler",
    [
        None,  # from the environment: parent-based, always on
        sampling.ALWAYS_ON,
        sampling.ALWAYS_OFF,
        sampling.ParentBased(sampling.ALWAYS_OFF),
        sampling.TraceIdRatioBased(1.0),
        sampling.ParentBasedTraceIdRatio(0.0),
    ],
    ids=["default", "always_on", "always_off", "parentbased_always_off", "ratio_1", "parentbased_ratio_0"],
)
def test_same_spans_as_opentelemetry(sampler: sampling.Sampler | None) -> None:
    providers, exporters = pair(sampler)
    for provider in providers:
        scenario(provider)
    sdk, light = (list(e.get_finished_spans()) for e in exporters)
    assert shape(light) == shape(sdk)
    assert all(isinstance(s, LightSpan) for s in light)


def test_a_sampler_that_adds_attributes_is_honoured() -> None:
    class Tagging(sampling.Sampler):
        def should_sample(self, parent_context: Any, trace_id: int, name: str, *args: Any, **kwargs: Any) -> Any:
            return sampling.SamplingResult(sampling.Decision.RECORD_AND_SAMPLE, {"sampler.tag": name, "n": [1, 2]})

        def get_description(self) -> str:
            return "tagging"

    providers, exporters = pair(Tagging())
    for provider in providers:
        provider.get_tracer("t").start_span("s", attributes={"own": 1}).end()
    sdk, light = (list(e.get_finished_spans()) for e in exporters)
    assert shape(light) == shape(sdk)
    assert dict(light[0].attributes or {}) == {"sampler.tag": "s", "n": (1, 2)}


def test_attribute_limit_counts_what_it_drops() -> None:
    providers, exporters = pair()
    for provider in providers:
        span = provider.get_tracer("t").start_span("s")
        span.set_attributes({f"k{i}": i for i in range(200)})
        span.end()
    sdk, light = (list(e.get_finished_spans())[0] for e in exporters)
    assert dict(light.attributes or {}) == dict(sdk.attributes or {})
    assert light.dropped_attributes == sdk.dropped_attributes == 72


def test_values_opentelemetry_cannot_send_are_dropped() -> None:
    providers, exporters = pair()
    span = providers[1].get_tracer("t").start_span("s")
    span.set_attributes({"object": object(), "mixed": [1, "a"], "ok": [1, None], "": 1})  # type: ignore[dict-item]
    span.end()
    assert dict(exporters[1].get_finished_spans()[0].attributes or {}) == {"ok": (1, None)}


def test_ending_twice_exports_once() -> None:
    providers, exporters = pair()
    span = providers[1].get_tracer("t").start_span("s")
    span.end()
    span.end()
    assert len(exporters[1].get_finished_spans()) == 1


@pytest.mark.parametrize("make", [lambda s: s.is_recording(), lambda s: s.get_span_context().is_valid])
def test_a_recording_span_reads_as_one(make: Callable[[Any], bool]) -> None:
    providers, _ = pair()
    span = providers[1].get_tracer("t").start_span("s")
    assert make(span)
    span.end()
    assert not span.is_recording()


@pytest.mark.parametrize("sampler", [sampling.ParentBasedTraceIdRatio(0.3), sampling.TraceIdRatioBased(0.3)])
def test_ratio_sampling_picks_the_same_traces(sampler: sampling.Sampler, monkeypatch: pytest.MonkeyPatch) -> None:
    providers, exporters = pair(sampler)
    original, here = random.getrandbits, threading.get_ident()
    for provider in providers:
        # Both tracers draw their ids from `random.getrandbits`, in the same order: give this thread the same
        # sequence for each (other threads, such as an earlier test's exporters, keep the module's own).
        ids = random.Random(7)

        def draw(k: int, ids: random.Random = ids) -> int:
            return ids.getrandbits(k) if threading.get_ident() == here else original(k)

        monkeypatch.setattr(random, "getrandbits", draw)
        tracer = provider.get_tracer("t")
        for _ in range(300):
            root = tracer.start_span("root")
            tracer.start_span("child", context=trace.set_span_in_context(root)).end()
            root.end()
    sdk, light = ({(s.name, s.context.trace_id) for s in e.get_finished_spans()} for e in exporters)
    assert light == sdk
    assert 100 < len(light) < 260  # about 30 % of 300 traces, two spans each
