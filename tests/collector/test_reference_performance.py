"""The reference's own performance, built once at upload from its outputs and actuals."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from sklearn import metrics as skm

from collector.reference_build import reference_from_columns
from collector.reference_performance import reference_metrics, reference_performance, reference_state


def profile_with(outputs: dict[str, list[Any]], actuals: list[Any], task: str | None = None) -> Any:
    profile = reference_from_columns("m", "1", {"x": [1.0] * len(actuals)}, outputs)
    summary = reference_performance(outputs, actuals, task)
    return dataclasses.replace(profile, actuals=None if summary is None else {"performance": summary})


def test_binary_from_scores_and_labels() -> None:
    rng = np.random.default_rng(2)
    score = rng.uniform(size=500)
    truth = (rng.uniform(size=500) < score).astype(int)
    label = (score >= 0.5).astype(int)
    answer = reference_metrics(profile_with({"score": score.tolist(), "label": label.tolist()}, truth.tolist()))
    assert answer is not None and (answer["task"], answer["rows"]) == ("binary_classification", 500)
    metrics = answer["metrics"]
    assert metrics["confusion_matrix"]["matrix"] == skm.confusion_matrix(truth, label).tolist()
    assert metrics["f1"] == pytest.approx(skm.f1_score(truth, label), rel=1e-12)
    assert abs(metrics["auc_roc"] - skm.roc_auc_score(truth, score)) <= metrics["auc_roc_error_bound"] + 1e-12


@pytest.mark.parametrize(
    ("outputs", "actuals", "task", "expected"),
    [
        ({"label": ["a", "b", "c"]}, ["a", "b", "b"], None, "multiclass_classification"),
        ({"label": ["a", "b", "a"]}, ["a", "b", "b"], None, "binary_classification"),
        ({"label": ["a", "b", "a"]}, ["a", "b", "b"], "multiclass_classification", "multiclass_classification"),
        ({"prediction": [1.0, 2.0, 4.0]}, [1.5, 2.0, None], None, "regression"),
    ],
)
def test_the_task(outputs: dict[str, list[Any]], actuals: list[Any], task: str | None, expected: str) -> None:
    answer = reference_metrics(profile_with(outputs, actuals, task))
    assert answer is not None and answer["task"] == expected and answer["rows"] == 3


def test_regression_metrics_and_what_cannot_be_scored() -> None:
    answer = reference_metrics(profile_with({"prediction": [1.0, 2.0, 4.0]}, [1.5, 2.0, 3.0]))
    assert answer is not None and answer["metrics"]["mae"] == pytest.approx(0.5)
    assert reference_performance({"output_0": [1.0]}, [1.0]) is None  # nothing the SDK would call an output
    assert reference_performance({"label": [1]}, [1.0], "regression") is None  # no prediction for a regression task
    assert reference_performance({"score": [0.5]}, [1], "binary_classification") is None
    plain = reference_from_columns("m", "1", {"x": [1.0]}, {"label": [1]})
    assert reference_state(plain) is None and reference_metrics(plain) is None
    with pytest.raises(ValueError):
        reference_state(dataclasses.replace(plain, actuals={"performance": {"state": "bm90IGEgc3RhdGU="}}))
