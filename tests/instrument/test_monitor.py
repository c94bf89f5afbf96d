"""What one monitored call records: ids, sampling, payload events, spans, metrics; and that it never raises."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import numpy as np
import pandas as pd
import pytest

import instrument
from instrument import _runtime, semconv
from instrument._guard import STATS
from instrument._values import is_sampled

from .conftest import Telemetry


def identity_scores(x: Any) -> np.ndarray:
    return np.full(len(x), 0.25)


def test_payload_event_body_and_attributes(telemetry: Telemetry) -> None:
    predict = instrument.monitor(model="churn", version="3", task="binary_classification", data_source="s3://t")(
        identity_scores
    )
    X = np.array([[1.0, 2.0], [3.0, np.nan]])
    predict(X)
    ids = instrument.last_prediction_ids()
    (event,) = telemetry.events()
    assert event.body == {
        "ids": ids,
        "inputs": {"f0": [1.0, 3.0], "f1": [2.0, pytest.approx(np.nan, nan_ok=True)]},
        "outputs": {"score": [0.25, 0.25], "label": [0, 0]},
    }
    assert event.attributes[semconv.ATTR_MODEL_NAME] == "churn"
    assert event.attributes[semconv.ATTR_MODEL_VERSION] == "3"
    assert event.attributes[semconv.ATTR_MODEL_TASK] == "binary_classification"
    assert event.attributes[semconv.ATTR_DATA_SOURCE] == "s3://t"
    assert event.attributes[semconv.ATTR_PAYLOAD_ROWS] == 2
    (span,) = telemetry.spans()
    assert event.trace_id == span.context.trace_id and event.span_id == span.context.span_id
    assert span.attributes[semconv.ATTR_PAYLOAD_SAMPLED] is True
    assert span.attributes[semconv.ATTR_FEATURES] == ("f0", "f1")
    assert span.attributes[semconv.ATTR_DATA_SOURCE] == "s3://t"


def test_ids_unique_per_row_and_per_context(telemetry: Telemetry) -> None:
    predict = instrument.monitor(model="m", task="regression")(lambda x: np.zeros(len(x)))
    predict(np.zeros((3, 2)))
    first = instrument.last_prediction_ids()
    predict(np.zeros((2, 2)))
    second = instrument.last_prediction_ids()
    assert len(first) == 3 and len(second) == 2 and not set(first) & set(second)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in first + second)

    seen: dict[int, list[str]] = {}
    barrier = threading.Barrier(4)

    def worker(k: int) -> None:
        barrier.wait()
        predict(np.zeros((k + 1, 2)))
        seen[k] = instrument.last_prediction_ids()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {k: len(v) for k, v in seen.items()} == {0: 1, 1: 2, 2: 3, 3: 4}

    async def task(k: int) -> list[str]:
        await asyncio.sleep(0)
        predict(np.zeros((k + 1, 2)))
        await asyncio.sleep(0.01)
        return instrument.last_prediction_ids()

    async def main() -> list[list[str]]:
        return list(await asyncio.gather(*(task(k) for k in range(5))))

    assert [len(ids) for ids in asyncio.run(main())] == [1, 2, 3, 4, 5]
    rows = telemetry.rows()
    assert set(first) <= set(rows) and all(set(v) <= set(rows) for v in seen.values())


def test_id_column_is_used_and_dropped_from_features(telemetry: Telemetry) -> None:
    predict = instrument.monitor(model="m", task="regression", id_column="request_id")(lambda x: np.ones(len(x)))
    df = pd.DataFrame({"request_id": ["a1", "b2", None], "age": [30, 40, 50]})
    predict(df)
    ids = instrument.last_prediction_ids()
    assert ids[:2] == ["a1", "b2"] and len(ids[2]) == 32  # a missing id is generated
    (event,) = telemetry.events()
    assert event.body["ids"] == ids
    assert event.body["inputs"] == {"age": [30, 40, 50]}

    predict([{"request_id": 7, "age": 1}])
    assert instrument.last_prediction_ids() == ["7"]
    predict({"request_id": ["x", "y"], "age": [1, 2]})
    assert instrument.last_prediction_ids() == ["x", "y"]
    predict(np.array([[1.0, 2.0]]))  # no such column: generated ids
    assert len(instrument.last_prediction_ids()[0]) == 32


def test_sampling_is_decided_per_id(telemetry: Telemetry) -> None:
    telemetry.configure(sample_rate=0.3)
    predict = instrument.monitor(model="m", task="regression", id_column="id")(
        lambda x: np.arange(len(x["x"]), dtype=float)
    )
    ids = [f"user-{i}" for i in range(2000)]
    predict({"id": ids, "x": list(range(2000))})
    captured = [i for e in telemetry.events() for i in e.body["ids"]]
    expected = [i for i in ids if is_sampled(i, 0.3)]
    assert captured == expected  # the same rows on every run: the rule depends on the id alone
    assert 0.25 < len(captured) / len(ids) < 0.35
    (event,) = telemetry.events()
    positions = [ids.index(i) for i in captured]
    assert event.body["inputs"]["x"] == positions
    assert event.body["outputs"]["prediction"] == [float(p) for p in positions]
    assert event.attributes[semconv.ATTR_SAMPLE_RATE] == 0.3


def test_per_model_sample_rate_zero_records_metrics_but_no_payload(telemetry: Telemetry) -> None:
    predict = instrument.monitor(model="quiet", version="2", sample_rate=0.0)(lambda x: np.zeros(len(x)))
    for _ in range(5):
        predict(np.zeros((4, 3)))
    assert telemetry.events() == []
    assert telemetry.spans() == []  # no recording parent and nothing sampled: no span at all
    (rows,) = telemetry.points(semconv.METRIC_PREDICTIONS)
    assert rows.value == 20
    assert rows.attributes == {
        semconv.ATTR_MODEL_NAME: "quiet",
        semconv.ATTR_MODEL_VERSION: "2",
        semconv.ATTR_OUTCOME: "ok",
    }
    (batch,) = telemetry.points(semconv.METRIC_BATCH_SIZE)
    assert batch.count == 5 and batch.sum == 20
    (duration,) = telemetry.points(semconv.METRIC_DURATION)
    assert duration.count == 5
    assert len(instrument.last_prediction_ids()) == 4


def test_exclude_keeps_pii_out_of_the_payload(telemetry: Telemetry) -> None:
    predict = instrument.monitor(model="m", task="regression", exclude=["email"])(lambda x: [1.0])
    predict({"email": "a@b.c", "age": 31})
    (event,) = telemetry.events()
    assert event.body["inputs"] == {"age": [31]}
    assert "a@b.c" not in repr(event.body)


def test_payload_is_a_snapshot_taken_at_call_time(telemetry: Telemetry) -> None:
    predict = instrument.monitor(model="m", task="regression")(lambda x: x.sum(axis=1))
    buffer = np.ones((2, 2))
    out = predict(buffer)
    buffer[:] = 99.0  # a server reusing its input buffer
    out[:] = -1.0
    (event,) = telemetry.events()
    assert event.body["inputs"] == {"f0": [1.0, 1.0], "f1": [1.0, 1.0]}
    assert event.body["outputs"] == {"prediction": [2.0, 2.0]}


def test_large_batch_is_split_into_events_under_the_byte_cap(telemetry: Telemetry) -> None:
    _runtime.current().settings.__dict__["max_event_bytes"] = 20_000  # frozen dataclass: tests only
    predict = instrument.monitor(model="m", task="regression")(lambda x: x[:, 0])
    X = np.random.default_rng(1).normal(size=(1000, 5))
    predict(X)
    events = telemetry.events()
    assert len(events) > 1
    assert [e.attributes[semconv.ATTR_PAYLOAD_CHUNK] for e in events] == list(range(len(events)))
    assert {e.attributes[semconv.ATTR_PAYLOAD_CHUNKS] for e in events} == {len(events)}
    ids = [i for e in events for i in e.body["ids"]]
    assert ids == instrument.last_prediction_ids()
    f3 = [v for e in events for v in e.body["inputs"]["f3"]]
    assert f3 == X[:, 3].tolist()
    assert all(len(e.body["ids"]) * 5 * 11 < 20_000 for e in events)


def test_row_mismatch_drops_payload_but_counts_the_call(telemetry: Telemetry) -> None:
    predict = instrument.monitor(model="m", task="regression")(lambda x: [1.0, 2.0, 3.0])
    predict(np.zeros((2, 2)))
    assert telemetry.events() == []
    assert STATS.dropped["row_mismatch"] == 1
    (span,) = telemetry.spans()
    assert span.attributes[semconv.ATTR_PAYLOAD_SAMPLED] is False
    (rows,) = telemetry.points(semconv.METRIC_PREDICTIONS)
    assert rows.value == 2


def test_odd_inputs_never_reach_the_caller(telemetry: Telemetry) -> None:
    class Weird:
        def __len__(self) -> int:
            raise RuntimeError("len fails")

    predict = instrument.monitor(model="m", task="regression")(lambda x: 0.5)
    inputs: list[Any] = [
        Weird(),
        {"a": float("nan"), "b": float("inf"), "c": None, "d": object(), "e": 10**30},
        [[1, "x"], [None, 2.5]],
        "just a string",
        None,
        np.array(["a", None], dtype=object),
    ]
    for x in inputs:
        assert predict(x) == 0.5
    bodies = [e.body for e in telemetry.events()]
    row = next(b for b in bodies if "e" in b["inputs"])
    assert row["inputs"]["a"][0] != row["inputs"]["a"][0]  # NaN kept
    assert row["inputs"]["b"] == [float("inf")] and row["inputs"]["c"] == [None]
    assert row["inputs"]["e"] == [1e30] and isinstance(row["inputs"]["d"][0], str)
    assert STATS.coerced["object"] >= 1 and STATS.coerced["int_overflow"] >= 1


def test_faults_inside_the_sdk_are_counted_not_raised(telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("SDK bug")

    monkeypatch.setattr("instrument._monitor.row_count", broken)
    monkeypatch.setattr("instrument._monitor.new_ids", broken)
    predict = instrument.monitor(model="m", task="regression", sample_rate=0.0)(lambda x: 41 + 1)
    assert predict([1]) == 42
    assert predict([2]) == 42
    assert STATS.errors["monitor.record"] == 2


def test_worker_faults_are_counted(telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("conversion bug")

    monkeypatch.setattr("instrument._capture.output_columns", broken)
    predict = instrument.monitor(model="m", task="regression")(lambda x: [1.0])
    assert predict([[1.0]]) == [1.0]
    assert telemetry.events() == []
    assert STATS.errors["worker.payload"] == 1


def test_a_recording_parent_span_makes_predict_a_current_child(telemetry: Telemetry) -> None:
    tracer = telemetry.tracer_provider.get_tracer("app")
    inner_ids = []

    @instrument.monitor(model="m", task="regression", sample_rate=0.0)
    def predict(x: Any) -> list[float]:
        with tracer.start_as_current_span("feature-store lookup") as inner:
            inner_ids.append(inner.get_span_context().span_id)
        return [0.0]

    with tracer.start_as_current_span("POST /predict") as server:
        predict([[1.0]])
    spans = {s.name: s for s in telemetry.spans()}
    assert spans["predict m"].parent.span_id == server.get_span_context().span_id
    assert spans["feature-store lookup"].parent.span_id == spans["predict m"].context.span_id
    assert spans["predict m"].attributes[semconv.ATTR_PAYLOAD_SAMPLED] is False


def test_sampled_call_without_parent_gets_a_span_after_the_call(telemetry: Telemetry) -> None:
    tracer = telemetry.tracer_provider.get_tracer("app")
    inner_parent = []

    @instrument.monitor(model="m", task="regression")
    def predict(x: Any) -> list[float]:
        with tracer.start_as_current_span("inner") as inner:
            inner_parent.append(inner.parent)
        return [0.0]

    predict([[1.0]])
    assert inner_parent == [None]  # no span was current during the call
    names = sorted(s.name for s in telemetry.spans())
    assert names == ["inner", "predict m"]


def test_batch_job_log(telemetry: Telemetry) -> None:
    churn = instrument.ModelMonitor(model="churn", version="3", task="binary_classification")
    df = pd.DataFrame({"age": [30, 40], "plan": ["a", "b"]})
    ids = churn.log(df, np.array([[0.9, 0.1], [0.2, 0.8]]), latency_s=0.5)
    assert len(ids) == 2
    given = churn.log(df, [0, 1], ids=["r1", "r2"])
    assert given == ["r1", "r2"]
    first, second = telemetry.events()
    assert first.body["ids"] == ids
    assert first.body["outputs"] == {"score": [0.1, 0.8], "label": [0, 1]}
    assert second.body["outputs"] == {"label": [0, 1]}
    assert second.body["inputs"] == {"age": [30, 40], "plan": ["a", "b"]}
    (duration,) = telemetry.points(semconv.METRIC_DURATION)
    assert duration.count == 1 and duration.sum == pytest.approx(0.5)  # only the call that gave a latency
    (rows,) = telemetry.points(semconv.METRIC_PREDICTIONS)
    assert rows.value == 4


def test_calls_captured_together_travel_as_one_event(telemetry: Telemetry) -> None:
    runtime = _runtime.current()
    assert runtime is not None
    runtime.worker._stopped = True  # hold the worker so that the calls queue up together
    import time

    time.sleep(0.3)
    predict = instrument.monitor(model="m", task="regression")(lambda x: [float(x["a"])])
    other = instrument.monitor(model="other", task="regression")(lambda x: [0.0])
    ids = []
    for i in range(5):
        predict({"a": i})
        ids += instrument.last_prediction_ids()
    other({"a": 9})
    runtime.worker.drain()
    events = {e.attributes[semconv.ATTR_MODEL_NAME]: e for e in telemetry.events()}
    assert set(events) == {"m", "other"}  # one event per model
    merged = events["m"]
    assert merged.body == {
        "ids": ids,
        "inputs": {"a": [0, 1, 2, 3, 4]},
        "outputs": {"prediction": [0.0, 1.0, 2.0, 3.0, 4.0]},
    }
    assert merged.attributes[semconv.ATTR_PAYLOAD_ROWS] == 5
    assert merged.span_id == 0  # rows of several calls: no single trace to point at
    spans = [s for s in telemetry.spans() if s.name == "predict m"]
    assert len(spans) == 5 and merged.timestamp == min(s.start_time for s in spans)
    lone = events["other"]
    (other_span,) = [s for s in telemetry.spans() if s.name == "predict other"]
    assert lone.span_id == other_span.context.span_id  # a lone call keeps its span's context
