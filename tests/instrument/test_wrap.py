"""@monitor on every kind of callable, wrap_model on a fitted estimator: results and exceptions unchanged."""

from __future__ import annotations

import asyncio
import inspect
import time
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

import instrument
from instrument import semconv

from .conftest import Telemetry


class ModelError(Exception):
    pass


def test_function_returns_exactly_what_predict_returns(telemetry: Telemetry) -> None:
    result = np.array([0.2, 0.9])

    @instrument.monitor(model="m", version="1", task="binary_classification")
    def predict(x: Any) -> np.ndarray:
        return result

    assert predict(np.zeros((2, 3))) is result
    assert predict.__name__ == "predict"
    assert list(inspect.signature(predict).parameters) == ["x"]
    (span,) = telemetry.spans()
    assert span.name == "predict m"
    assert span.attributes[semconv.ATTR_BATCH_SIZE] == 2


def test_exception_is_reraised_unchanged_and_recorded(telemetry: Telemetry) -> None:
    error = ModelError("bad input")

    @instrument.monitor(model="m", version="1")
    def predict(x: Any) -> Any:
        raise error

    with pytest.raises(ModelError) as caught:
        predict([[1.0, 2.0]])
    assert caught.value is error
    assert caught.tb is not None and caught.traceback[-1].name == "predict"  # the user's frame is kept
    (span,) = telemetry.spans()
    assert span.status.status_code.name == "ERROR"
    assert span.attributes[semconv.ATTR_ERROR_TYPE] == f"{__name__}.ModelError"
    (point,) = [p for p in telemetry.points(semconv.METRIC_PREDICTIONS)]
    assert point.attributes[semconv.ATTR_OUTCOME] == semconv.OUTCOME_ERROR
    assert point.value == 1
    assert telemetry.events() == []  # no outputs to capture


class Model:
    def __init__(self) -> None:
        self.offset = 1.0

    @instrument.monitor(model="method", version="1", task="regression")
    def predict(self, x: Any) -> list[float]:
        return [float(v) + self.offset for v in np.asarray(x).sum(axis=1)]

    @staticmethod
    @instrument.monitor(model="static", version="1", task="regression")
    def predict_static(x: Any) -> list[float]:
        return [0.0] * len(x)

    @classmethod
    @instrument.monitor(model="class", version="1", task="regression")
    def predict_class(cls, x: Any) -> list[float]:
        return [1.0] * len(x)

    @instrument.monitor(model="static-outer", version="1", task="regression")
    @staticmethod
    def predict_static_outer(x: Any) -> list[float]:
        return [2.0] * len(x)


def test_methods_static_and_class_methods(telemetry: Telemetry) -> None:
    model = Model()
    x = [[1.0, 2.0], [3.0, 4.0]]
    assert model.predict(x) == [4.0, 8.0]
    assert Model.predict_static(x) == [0.0, 0.0]
    assert model.predict_static(x) == [0.0, 0.0]
    assert Model.predict_class(x) == [1.0, 1.0]
    assert Model.predict_static_outer(x) == [2.0, 2.0]
    events = {e.attributes[semconv.ATTR_MODEL_NAME]: e.body for e in telemetry.events()}
    assert set(events) == {"method", "static", "class", "static-outer"}
    # the input is the argument after self/cls, not self
    assert events["method"]["inputs"] == {"f0": [1.0, 3.0], "f1": [2.0, 4.0]}
    assert events["method"]["outputs"] == {"prediction": [4.0, 8.0]}
    assert events["class"]["inputs"] == {"f0": [1.0, 3.0], "f1": [2.0, 4.0]}


def test_input_by_keyword_and_input_arg(telemetry: Telemetry) -> None:
    @instrument.monitor(model="kw", version="1", task="regression")
    def predict(features: Any, *, scale: float = 1.0) -> list[float]:
        return [scale] * len(features)

    @instrument.monitor(model="named", version="1", task="regression", input_arg="rows")
    def predict_named(model_state: Any, rows: Any) -> list[float]:
        return [0.5] * len(rows)

    predict(features=[[1.0], [2.0]], scale=3.0)
    predict_named("state", [[7.0]])
    events = {e.attributes[semconv.ATTR_MODEL_NAME]: e.body for e in telemetry.events()}
    assert events["kw"]["inputs"] == {"f0": [1.0, 2.0]}
    assert events["named"]["inputs"] == {"f0": [7.0]}
    with pytest.raises(ValueError, match="input_arg='nope' is not a parameter"):
        instrument.monitor(model="m", input_arg="nope")(lambda x: x)


def test_async_predict_latency_covers_the_awaited_work(telemetry: Telemetry) -> None:
    @instrument.monitor(model="async", version="1", task="regression")
    async def predict(x: Any) -> list[float]:
        await asyncio.sleep(0.05)
        return [1.0] * len(x)

    assert inspect.iscoroutinefunction(predict)
    assert asyncio.run(predict([[1.0]])) == [1.0]
    (span,) = telemetry.spans()
    assert span.end_time is not None and span.start_time is not None
    assert (span.end_time - span.start_time) / 1e9 >= 0.05
    (point,) = telemetry.points(semconv.METRIC_DURATION)
    assert point.sum >= 0.05


def test_async_exception_reraised(telemetry: Telemetry) -> None:
    @instrument.monitor(model="async", version="1")
    async def predict(x: Any) -> Any:
        raise ModelError("async failure")

    with pytest.raises(ModelError, match="async failure"):
        asyncio.run(predict([1.0]))
    (span,) = telemetry.spans()
    assert span.status.status_code.name == "ERROR"


def test_sync_latency_is_the_call_duration(telemetry: Telemetry) -> None:
    @instrument.monitor(model="slow", version="1", task="regression")
    def predict(x: Any) -> list[float]:
        time.sleep(0.02)
        return [0.0]

    predict([[1.0]])
    (point,) = telemetry.points(semconv.METRIC_DURATION)
    assert 0.02 <= point.sum < 1.0
    (span,) = telemetry.spans()
    assert abs((span.end_time - span.start_time) / 1e9 - point.sum) < 1e-6  # span duration == measured latency


def test_decoration_errors_raise_at_decoration_time() -> None:
    with pytest.raises(ValueError, match="model must be a non-empty string"):
        instrument.monitor(model="")
    with pytest.raises(ValueError, match="task must be one of"):
        instrument.monitor(model="m", task="clustering")
    with pytest.raises(ValueError, match="sample_rate= must be between 0 and 1"):
        instrument.monitor(model="m", sample_rate=2)
    with pytest.raises(TypeError, match="features must be a list of strings"):
        instrument.monitor(model="m", features="abc")
    with pytest.raises(ValueError, match="a binary classifier has two classes"):
        instrument.monitor(model="m", task="binary_classification", classes=["a", "b", "c"])
    with pytest.raises(ValueError, match="threshold must be a probability"):
        instrument.monitor(model="m", threshold=1.5)


def test_wrap_model_monitors_a_fitted_estimator_without_changing_it(telemetry: Telemetry) -> None:
    data = load_breast_cancer(as_frame=True)
    clf = LogisticRegression(max_iter=5000).fit(data.data, data.target)
    monitored = instrument.wrap_model(clf, model="cancer", version="1")
    assert isinstance(monitored, LogisticRegression)
    assert "predict" not in vars(clf)  # the estimator itself is untouched
    X = data.data.iloc[:25]
    np.testing.assert_array_equal(monitored.predict(X), clf.predict(X))
    np.testing.assert_array_equal(monitored.predict_proba(X), clf.predict_proba(X))
    assert monitored.coef_ is clf.coef_

    proba_event, label_event = sorted(telemetry.events(), key=lambda e: len(e.body["outputs"]), reverse=True)
    proba = clf.predict_proba(X)[:, 1]
    assert proba_event.body["outputs"]["score"] == proba.tolist()
    assert proba_event.body["outputs"]["label"] == [int(p >= 0.5) for p in proba]
    assert label_event.body["outputs"] == {"label": clf.predict(X).tolist()}
    assert proba_event.body["inputs"]["mean radius"] == X["mean radius"].tolist()
    assert proba_event.attributes[semconv.ATTR_MODEL_TASK] == "binary_classification"
    with pytest.raises(ValueError, match="has none of the methods"):
        instrument.wrap_model(object(), model="m")


def test_disabled_sdk_is_a_pass_through(monkeypatch: pytest.MonkeyPatch) -> None:
    from instrument import _runtime

    _runtime.reset_for_tests()
    monkeypatch.setenv("PREDWATCH_DISABLED", "true")
    calls = []

    @instrument.monitor(model="m")
    def predict(x: Any) -> int:
        calls.append(x)
        return 7

    assert predict(3) == 7
    assert calls == [3]
    assert _runtime.current() is None
    _runtime.reset_for_tests()
