"""The per-process rate limit: a token bucket, and what the SDK records of the calls it admits and turns away.

Above the limit a call's metrics are still counted; its span and payload are not recorded. The middleware
takes one decision per request, which the monitored calls inside the request follow; `ModelMonitor.log()` is
not limited. The SDK's own tracer drops a turned-away root span; an application's tracer samples as it will.
"""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pytest

import instrument
from instrument import _runtime, semconv
from instrument._limit import RateLimit

from .conftest import Telemetry
from .otlp_server import OTLPServer, attributes, value
from .test_asgi import TRACEPARENT, App, serve
from .test_wsgi import flask_app
from .test_wsgi import serve as serve_wsgi


class Scripted:
    """A limit that answers from a script, and counts how often it was asked."""

    def __init__(self, *decisions: bool) -> None:
        self.decisions = list(decisions)
        self.asked = 0

    def admit(self) -> bool:
        self.asked += 1
        return self.decisions.pop(0)


# --- the bucket ------------------------------------------------------------------------------------------------
def test_a_steady_overload_is_admitted_at_the_rate_evenly_spread() -> None:
    rate, calls_per_s, seconds = 50.0, 1000, 10
    limit = RateLimit(rate, clock=0.0)
    times = np.arange(seconds * calls_per_s) / calls_per_s
    admitted = np.array([t for t in times if limit.admit(float(t))])
    # The first second's worth at once (the burst), then `rate` a second for the whole run.
    assert abs(len(admitted) - (rate + rate * seconds)) <= 1
    after_burst = admitted[admitted > 0.1]
    gaps = np.diff(after_burst)
    tick = 1 / calls_per_s
    assert gaps.min() >= 1 / rate - tick - 1e-9 and gaps.max() <= 1 / rate + tick + 1e-9  # evenly, not bunched
    per_second = np.histogram(admitted, bins=np.arange(1, seconds + 1))[0]
    assert set(per_second.tolist()) <= {rate - 1, rate, rate + 1}


def test_below_the_rate_every_call_is_admitted() -> None:
    limit = RateLimit(50.0, clock=0.0)
    assert all(limit.admit(t) for t in np.arange(1000) / 40.0)


def test_idle_time_saves_one_seconds_worth_at_most() -> None:
    limit = RateLimit(20.0, clock=0.0)
    assert sum(limit.admit(100.0) for _ in range(1000)) == 20
    slow = RateLimit(0.5, clock=0.0)  # below one call a second: one at a time, every two seconds
    assert [slow.admit(t) for t in (0.0, 0.1, 1.9, 2.05, 3.0, 4.1, 100.0, 100.0)] == [
        True,
        False,
        False,
        True,
        False,
        True,
        True,
        False,
    ]


@pytest.mark.parametrize("rate", [0, -1.0, float("nan")])
def test_a_rate_must_be_positive(rate: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        RateLimit(rate)


def test_the_sdk_is_limited_by_default_and_can_be_unlimited(telemetry: Telemetry) -> None:
    runtime = _runtime.current()
    assert runtime is not None and isinstance(runtime.limit, RateLimit) and runtime.limit.rate == 100.0
    telemetry.configure(rate_limit="off")
    runtime = _runtime.current()
    assert runtime is not None and runtime.limit is None


# --- what is recorded -----------------------------------------------------------------------------------------
def _rows_counted(otlp: OTLPServer) -> dict[str, int]:
    """Rows in `predwatch.predictions` by model, over every export."""
    counted: dict[str, int] = {}
    for _, metric in otlp.metrics(semconv.METRIC_PREDICTIONS):
        for point in metric.sum.data_points:
            model = attributes(point.attributes)[semconv.ATTR_MODEL_NAME]
            counted[model] = counted.get(model, 0) + int(point.as_int or point.as_double)
    return counted


def test_the_middleware_records_only_admitted_requests_and_counts_them_all() -> None:
    """The SDK's own pipeline: a turned-away request has no span and no payload, but its id and its metrics; a
    request that continues a sampled trace keeps its span; monitored calls follow their request's decision."""
    _runtime.reset_for_tests()
    app = App()
    predict_script = [True, False, False, True, False, True, False, False]
    script = Scripted(*predict_script, False, False, True)
    with OTLPServer() as otlp:
        instrument.configure(service_name="limited", endpoint=otlp.url, resource_metrics=False)
        runtime = _runtime.current()
        assert runtime is not None
        runtime.limit = script  # type: ignore[assignment]
        with serve(app) as url, httpx.Client(base_url=url) as client:
            answers = [client.post("/predict", json={"instances": [[float(i), 1.0]]}) for i in range(8)]
            carried = client.post("/predict", json={"instances": [[9.0, 1.0]]}, headers={"traceparent": TRACEPARENT})
            monitored = [client.post("/monitored", json={"instances": [[float(i), 2.0]]}) for i in (10, 11)]
        assert script.asked == 11 and not script.decisions  # one decision per request, none per inner call
        ids = [r.headers["x-prediction-id"] for r in answers]
        assert all(r.status_code == 200 for r in [*answers, carried, *monitored]) and len(set(ids)) == 8
        assert instrument.flush()
        admitted = [i for i, take in enumerate(predict_script) if take]
        otlp.wait_for(lambda: _rows_counted(otlp) == {"http": 9, "inner": 2})

        spans = [span for _, span in otlp.spans()]
        servers = [s for s in spans if s.kind == s.SPAN_KIND_SERVER]
        assert sorted(s.name for s in servers) == ["POST /monitored"] + ["POST /predict"] * (len(admitted) + 1)
        assert TRACEPARENT.split("-")[1] in {s.trace_id.hex() for s in servers}  # a trace begun upstream goes on
        inner = [s for s in spans if s.name == "predict inner"]
        monitored_server = next(s for s in servers if s.name == "POST /monitored")
        assert len(inner) == 1 and inner[0].parent_span_id == monitored_server.span_id

        rows: dict[str, Any] = {}
        for _, record in otlp.log_records():
            body = value(record.body)
            for k, pid in enumerate(body["ids"]):
                rows[pid] = (body["inputs"]["f0"][k], record.trace_id.hex())
        assert {pid: f0 for pid, (f0, _) in rows.items() if f0 < 10} == {ids[i]: float(i) for i in admitted}
        assert [f0 for f0, _ in rows.values() if f0 >= 10] == [11.0]
        traced = {s.trace_id.hex() for s in servers}  # an event of one call carries its trace (merged ones none)
        assert all(trace_id in traced for _, trace_id in rows.values() if trace_id)
    _runtime.reset_for_tests()


def test_monitored_calls_outside_a_request_take_a_token_when_sampled(telemetry: Telemetry) -> None:
    @instrument.monitor(model="m", version="1", task="regression")
    def predict(rows: list[list[float]]) -> list[float]:
        return [sum(r) for r in rows]

    @instrument.monitor(model="never", version="1", task="regression", sample_rate=0.0)
    def unsampled(rows: list[list[float]]) -> list[float]:
        return [sum(r) for r in rows]

    runtime = _runtime.current()
    assert runtime is not None
    decisions = [True, False, True, False, False, True]
    runtime.limit = script = Scripted(*decisions)  # type: ignore[assignment]
    ids = []
    for i in range(6):
        predict([[float(i), 0.0]])
        ids.append(instrument.last_prediction_ids()[0])
        unsampled([[0.0]])  # sampled out by its rate: never asks the limit
    assert script.asked == 6
    rows = telemetry.rows()
    assert set(rows) == {pid for pid, take in zip(ids, decisions, strict=True) if take}
    spans = [s for s in telemetry.spans() if s.name == "predict m"]
    assert len(spans) == sum(decisions)  # a call that is neither traced nor recorded has no span
    points = telemetry.points(semconv.METRIC_PREDICTIONS)
    counted = {p.attributes[semconv.ATTR_MODEL_NAME]: p.value for p in points}
    assert counted == {"m": 6, "never": 6}


def test_log_records_what_it_is_given_whatever_the_limit(telemetry: Telemetry) -> None:
    runtime = _runtime.current()
    assert runtime is not None
    runtime.limit = script = Scripted()  # type: ignore[assignment]  # asking it would fail
    batch = instrument.ModelMonitor("batch", "1", task="regression")
    ids = [pid for i in range(5) for pid in batch.log([[float(i), 1.0]], [0.5])]
    assert script.asked == 0 and set(telemetry.rows()) == set(ids)


def test_with_the_applications_tracer_the_limit_governs_payloads_only(telemetry: Telemetry) -> None:
    """An application's tracer provider samples by its own rules (here: every span); the limit then decides
    which requests' bodies are recorded (WSGI this time)."""
    app, _ = flask_app()
    runtime = _runtime.current()
    assert runtime is not None
    runtime.limit = Scripted(False, True)  # type: ignore[assignment]
    with serve_wsgi(app) as url, httpx.Client(base_url=url) as client:
        first, second = (client.post("/predict", json={"instances": [[float(i), 1.0]]}) for i in range(2))
    assert set(telemetry.rows()) == {second.headers["x-prediction-id"]}
    assert first.headers["x-prediction-id"] != second.headers["x-prediction-id"]
    servers = [s for s in telemetry.spans() if s.name == "POST /predict"]
    assert len(servers) == 2
