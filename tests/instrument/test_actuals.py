"""log_actuals: validated, sampled by the same rule as predictions, sent as a predwatch.actuals event."""

from __future__ import annotations

import numpy as np
import pytest

import instrument
from instrument import semconv
from instrument._values import is_sampled

from .conftest import Telemetry


def test_actuals_body_and_attributes(telemetry: Telemetry) -> None:
    assert instrument.log_actuals(model="churn", ids=["a", "b", "c"], actuals=np.array([1, 0, 1])) == 3
    (event,) = telemetry.events(semconv.EVENT_ACTUALS)
    assert event.body == {"ids": ["a", "b", "c"], "actuals": [1, 0, 1]}
    assert event.attributes[semconv.ATTR_MODEL_NAME] == "churn"
    assert semconv.ATTR_MODEL_VERSION not in event.attributes  # the collector joins by id


def test_actuals_follow_the_prediction_sampling(telemetry: Telemetry) -> None:
    telemetry.configure(sample_rate=0.2)
    predict = instrument.monitor(model="m", task="regression")(lambda x: np.zeros(len(x)))
    predict(np.zeros((500, 2)))
    ids = instrument.last_prediction_ids()
    sent = instrument.log_actuals(model="m", ids=ids, actuals=list(range(500)))
    (predictions,) = telemetry.events()
    (actuals,) = telemetry.events(semconv.EVENT_ACTUALS)
    assert actuals.body["ids"] == predictions.body["ids"] == [i for i in ids if is_sampled(i, 0.2)]
    assert sent == len(actuals.body["ids"])
    assert actuals.body["actuals"] == [ids.index(i) for i in actuals.body["ids"]]


def test_actuals_validation(telemetry: Telemetry) -> None:
    with pytest.raises(ValueError, match="same length"):
        instrument.log_actuals(model="m", ids=["a"], actuals=[1, 2])
    with pytest.raises(ValueError, match="model must name the model"):
        instrument.log_actuals(model="", ids=["a"], actuals=[1])
    with pytest.raises(ValueError, match="sample_rate= must be between 0 and 1"):
        instrument.log_actuals(model="m", ids=["a"], actuals=[1], sample_rate=3)
    assert instrument.log_actuals(model="m", ids=[], actuals=[]) == 0
    assert telemetry.events(semconv.EVENT_ACTUALS) == []
