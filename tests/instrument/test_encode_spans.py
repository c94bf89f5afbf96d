"""The direct span encoder writes exactly the bytes OpenTelemetry's encoder serialises to."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as sdk_encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

from instrument._encode_spans import encode_spans
from instrument._spans import LightTracerProvider


def random_value(rng: random.Random) -> Any:
    kind = rng.randrange(7)
    if kind == 0:
        return rng.random() < 0.5
    if kind == 1:
        return rng.randint(-(2**63), 2**63 - 1)
    if kind == 2:
        return rng.choice([rng.uniform(-1e9, 1e9), 0.0, -0.0, math.inf, 1e-320])
    if kind == 3:
        return "".join(rng.choice("abé漢😀 \x00") for _ in range(rng.randrange(0, 300)))
    if kind == 4:
        return [f"s{rng.randrange(9)}" for _ in range(rng.randrange(0, 5))]
    if kind == 5:
        return [rng.random() for _ in range(rng.randrange(1, 4))]
    return rng.randrange(0, 300)


def random_attributes(rng: random.Random) -> dict[str, Any]:
    # A few keys repeat across spans with values of different types (True, 1, 1.0): the encoder's cache of
    # attribute lists must tell them apart.
    attrs = {f"k{rng.randrange(40)}": random_value(rng) for _ in range(rng.randrange(0, 8))}
    if rng.random() < 0.3:
        attrs["flag"] = rng.choice([True, 1, 1.0, "1"])
    return attrs


def random_parent(rng: random.Random) -> Any:
    mode = rng.randrange(4)
    if mode == 0:
        return None
    state = TraceState([("vendor", f"v{rng.randrange(9)}")]) if mode == 3 else None
    parent = SpanContext(
        rng.getrandbits(128) or 1,
        rng.getrandbits(64) or 1,
        is_remote=mode >= 2,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
        trace_state=state,
    )
    return trace.set_span_in_context(NonRecordingSpan(parent))


def make_spans(provider: Any, rng: random.Random, count: int) -> None:
    for scope in ("predwatch", "other"):
        tracer = provider.get_tracer(scope, "1.0")
        for _ in range(count):
            kind = rng.choice(list(SpanKind))
            name = rng.choice(["", "predict m", "POST /predict", "é" * rng.randrange(1, 50)])
            span = tracer.start_span(
                name,
                context=random_parent(rng),
                kind=kind,
                attributes=random_attributes(rng),
                start_time=rng.getrandbits(62) if rng.random() < 0.9 else 0,  # 0: the field is left out
            )
            for _ in range(rng.randrange(3)):
                span.add_event(f"e{rng.randrange(3)}", random_attributes(rng), timestamp=rng.getrandbits(62))
            if rng.random() < 0.3:
                span.record_exception(ValueError(f"bad value {rng.random()}"))
            status = rng.randrange(4)
            if status == 1:
                span.set_status(Status(StatusCode.ERROR, "broken: " + "x" * rng.randrange(200)))
            elif status == 2:
                span.set_status(Status(StatusCode.OK))
            elif status == 3:
                span.set_status(StatusCode.ERROR)
            span.end(end_time=rng.getrandbits(62) if rng.random() < 0.9 else 0)


def light_spans(seed: int, count: int = 30) -> list[ReadableSpan]:
    exporter = InMemorySpanExporter()
    provider = LightTracerProvider(Resource.create({"service.name": "svc", "n": seed}), SimpleSpanProcessor(exporter))
    make_spans(provider, random.Random(seed), count)
    return list(exporter.get_finished_spans())


def sdk_spans(seed: int, count: int = 30) -> list[ReadableSpan]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "svc"}), shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    make_spans(provider, random.Random(seed), count)
    return list(exporter.get_finished_spans())


@pytest.mark.parametrize("seed", range(25))
def test_light_spans_encode_identically(seed: int) -> None:
    spans = light_spans(seed)
    assert spans, "the light tracer recorded nothing"
    assert encode_spans(spans) == sdk_encode_spans(spans).SerializeToString()


@pytest.mark.parametrize("seed", range(10))
def test_the_sdks_own_spans_encode_identically(seed: int) -> None:
    spans = sdk_spans(seed)
    assert encode_spans(spans) == sdk_encode_spans(spans).SerializeToString()


def test_spans_of_two_resources_in_one_batch() -> None:
    spans = light_spans(1, 5) + light_spans(2, 5)
    assert encode_spans(spans) == sdk_encode_spans(spans).SerializeToString()


def test_an_empty_batch() -> None:
    assert encode_spans([]) == sdk_encode_spans([]).SerializeToString() == b""
