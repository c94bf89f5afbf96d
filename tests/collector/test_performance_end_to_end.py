"""Late labels through the real SDK and the real collector, every metric checked against scikit-learn on the same rows.

A LogisticRegression on load_breast_cancer and a LinearRegression on load_diabetes predict through
`@instrument.monitor` into a collector served by uvicorn (SQLite in tmp_path). Actuals come late, shuffled, in
several batches, through both POST /api/v1/actuals and `instrument.log_actuals` (OTLP), some before their
predictions reach the collector, some twice; the collector is restarted halfway with predictions and actuals
still waiting for each other. Then GET .../performance must equal scikit-learn on every row: exactly for the
counts and the confusion matrix, to float rounding for the other classification and all regression metrics,
and AUC, Gini and KS within the error bound the answer states. GET .../operations must show the calls made,
the failed one, and the latency the model was made to take.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import instrument
from instrument import _runtime
from tests.collector.test_app import Running, serve

BATCH = 40
SLOW_S = 0.03  # every fifth classifier call takes at least this long


@contextmanager
def sdk_to(url: str) -> Iterator[None]:
    _runtime.reset_for_tests()
    instrument.configure(service_name="e2e-labels", endpoint=url, resource_metrics=True)
    try:
        yield
    finally:
        instrument.shutdown(timeout_s=10)
        _runtime.reset_for_tests()


def post_actuals(running: Running, model: str, ids: list[str], actuals: list[Any], **extra: Any) -> dict[str, int]:
    with running.client() as http:
        response = http.post("/api/v1/actuals", json={"model": model, "ids": ids, "actuals": actuals, **extra})
    assert response.status_code == 200, response.text
    answer: dict[str, int] = response.json()
    return answer


def get(running: Running, path: str) -> dict[str, Any]:
    with running.client() as http:
        response = http.get(path)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def wait_for(condition: Any, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def labeled(running: Running, model: str) -> int:
    return int(get(running, f"/api/v1/models/{model}/performance")["labeled"])


def check_classification(metrics: dict[str, Any], y: np.ndarray, score: np.ndarray) -> None:
    label = (score >= 0.5).astype(int)  # the SDK's label for a binary score
    assert metrics["count"] == y.size and metrics["positive_label"] == 1
    assert metrics["confusion_matrix"] == {"labels": [0, 1], "matrix": skm.confusion_matrix(y, label).tolist()}
    assert metrics["accuracy"] == skm.accuracy_score(y, label)
    assert metrics["precision"] == pytest.approx(skm.precision_score(y, label), rel=1e-12)
    assert metrics["recall"] == pytest.approx(skm.recall_score(y, label), rel=1e-12)
    assert metrics["f1"] == pytest.approx(skm.f1_score(y, label), rel=1e-12)
    assert metrics["log_loss"] == pytest.approx(skm.log_loss(y, score), rel=1e-9)
    assert metrics["brier"] == pytest.approx(skm.brier_score_loss(y, score), rel=1e-9)
    auc = skm.roc_auc_score(y, score)
    fpr, tpr, _ = skm.roc_curve(y, score)
    bound = metrics["auc_roc_error_bound"]
    assert bound < 1e-3 and metrics["ks_error_bound"] < 0.02  # fine enough to mean something
    assert abs(metrics["auc_roc"] - auc) <= bound + 1e-12
    assert abs(metrics["gini"] - (2 * auc - 1)) <= metrics["gini_error_bound"] + 1e-12
    ks = float(np.max(tpr - fpr))
    assert ks - metrics["ks_error_bound"] - 1e-12 <= metrics["ks"] <= ks + 1e-12
    assert metrics["roc_curve"]["fpr"][0] == 0.0 and metrics["roc_curve"]["tpr"][-1] == 1.0


def check_regression(metrics: dict[str, Any], y: np.ndarray, prediction: np.ndarray) -> None:
    assert metrics["count"] == y.size
    assert metrics["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, prediction)), rel=1e-9)
    assert metrics["mae"] == pytest.approx(skm.mean_absolute_error(y, prediction), rel=1e-9)
    assert metrics["mape"] == pytest.approx(skm.mean_absolute_percentage_error(y, prediction), rel=1e-9)
    assert metrics["r2"] == pytest.approx(skm.r2_score(y, prediction), rel=1e-9)
    assert metrics["mean_error"] == pytest.approx(float(np.mean(prediction - y)), rel=1e-9, abs=1e-9)


def test_late_shuffled_labels_through_sdk_and_collector_match_scikit_learn(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    cancer_x, cancer_y = load_breast_cancer(return_X_y=True)
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(cancer_x[::2], cancer_y[::2])
    diabetes_x, diabetes_y = load_diabetes(return_X_y=True)
    regressor = LinearRegression().fit(diabetes_x[::2], diabetes_y[::2])
    names = [f"f{j}" for j in range(diabetes_x.shape[1])]
    calls = 0

    @instrument.monitor(model="cancer", version="1", task="binary_classification")
    def classify(x: np.ndarray) -> np.ndarray:
        nonlocal calls
        calls += 1
        if calls % 5 == 0:
            time.sleep(SLOW_S)
        return np.asarray(classifier.predict_proba(x))

    @instrument.monitor(model="diabetes", version="1", task="regression", id_column="patient")
    def regress(rows: dict[str, Any]) -> np.ndarray:
        return np.asarray(regressor.predict(np.column_stack([rows[name] for name in names])))

    n_c, n_d = len(cancer_y), len(diabetes_y)
    cancer_ids: list[str] = []
    scores: list[float] = []
    patients = [f"patient-{i}" for i in range(n_d)]
    first, second = n_c // 2, n_d // 2

    def send_cancer(rows: range) -> None:
        for start in range(rows.start, rows.stop, BATCH):
            chunk = cancer_x[start : min(start + BATCH, rows.stop)]
            scores.extend(classify(chunk)[:, 1].tolist())
            cancer_ids.extend(instrument.last_prediction_ids())

    def send_diabetes(rows: range) -> None:
        for start in range(rows.start, rows.stop, BATCH):
            part = slice(start, min(start + BATCH, rows.stop))
            regress({"patient": patients[part], **{name: diabetes_x[part, j] for j, name in enumerate(names)}})

    # -- first collector: half the predictions; labels for some of them, and early labels for rows not sent yet
    with serve(tmp_path) as running, sdk_to(running.url):
        send_cancer(range(0, first))
        send_diabetes(range(0, second))
        with pytest.raises(ValueError):
            classify(cancer_x[:2, :5])  # a failing call: recorded as an error, re-raised unchanged
        assert instrument.flush(timeout_s=30)
        running.wait_rows("cancer", first)
        running.wait_rows("diabetes", second)
        order = rng.permutation(first)
        for part in np.array_split(order[: first // 2], 3):  # shuffled, several batches, by POST
            answer = post_actuals(running, "cancer", [cancer_ids[i] for i in part], cancer_y[part].tolist())
            assert answer["matched"] == len(part)
        part = order[first // 2 : 3 * first // 4]
        instrument.log_actuals("cancer", [cancer_ids[i] for i in part], cancer_y[part].tolist())  # by OTLP
        assert instrument.flush(timeout_s=30)
        wait_for(lambda: labeled(running, "cancer") == 3 * first // 4)
        early = rng.permutation(np.arange(second, n_d))[: (n_d - second) // 2]  # before their predictions
        answer = post_actuals(running, "diabetes", [patients[i] for i in early], diabetes_y[early].tolist())
        assert (answer["matched"], answer["pending"]) == (0, len(early))
        late = rng.permutation(second)
        answer = post_actuals(running, "diabetes", [patients[i] for i in late], diabetes_y[late].tolist())
        assert answer["matched"] == second
        repeat = post_actuals(
            running, "diabetes", [patients[i] for i in late[:10]], (diabetes_y[late[:10]] + 1).tolist()
        )
        assert (repeat["conflicts"], repeat["matched"]) == (10, 0)  # first wins
        before = get(running, "/api/v1/models/diabetes/performance")
        assert before["unmatched"]["actuals_pending"] == len(early)

    # -- a restart keeps predictions and actuals waiting for each other, and the performance windows
    with serve(tmp_path) as running, sdk_to(running.url):
        after = get(running, "/api/v1/models/diabetes/performance")
        assert {**after, "start": None, "end": None} == {**before, "start": None, "end": None}
        send_cancer(range(first, n_c))
        send_diabetes(range(second, n_d))
        assert instrument.flush(timeout_s=30)
        running.wait_rows("cancer", n_c)
        running.wait_rows("diabetes", n_d)
        wait_for(lambda: labeled(running, "diabetes") == second + len(early))  # the early ones joined on arrival
        rest = np.setdiff1d(np.arange(n_d), np.concatenate([late, early]))
        post_actuals(running, "diabetes", [patients[i] for i in rest], diabetes_y[rest].tolist())
        remaining = rng.permutation(np.concatenate([order[3 * first // 4 :], np.arange(first, n_c)]))
        for part in np.array_split(remaining, 4):
            ids = [cancer_ids[i] for i in part]
            post_actuals(running, "cancer", ids[:5] + ids, cancer_y[part][:5].tolist() + cancer_y[part].tolist())
        duplicate = post_actuals(running, "cancer", cancer_ids[:20], cancer_y[:20].tolist())
        assert duplicate["duplicates"] == 20

        cancer = get(running, "/api/v1/models/cancer/performance")
        assert (cancer["labeled"], cancer["coverage"], cancer["unmatched"]["predictions"]) == (n_c, 1.0, 0)
        check_classification(cancer["metrics"], cancer_y, np.asarray(scores))
        diabetes = get(running, "/api/v1/models/diabetes/performance")
        assert (diabetes["labeled"], diabetes["unmatched"]["actuals_pending"]) == (n_d, 0)
        check_regression(diabetes["metrics"], diabetes_y, regressor.predict(diabetes_x))
        assert diabetes["unmatched"]["actuals_conflicts"] == 10

        operations = get(running, "/api/v1/models/cancer/operations?start=" + str(time.time() - 3600))
        batches = -(-first // BATCH) + -(-(n_c - first) // BATCH)
        assert (operations["calls"], operations["errors"], operations["predictions"]) == (batches + 1, 1, n_c)
        assert operations["errors_by_type"] == {"ValueError": 1} and operations["source"] == "metrics"
        slow = calls // 5
        assert slow >= 2 and operations["latency_ms"]["max"] >= SLOW_S * 1e3
        assert operations["latency_ms"]["p50"] < SLOW_S * 1e3 <= operations["latency_ms"]["p99"]
        assert operations["batch_size"]["max"] == BATCH
        instances = operations["instances"]  # one per SDK configuration, before and after the restart
        assert len(instances) == 2 and sum(i["calls"] for i in instances) == batches + 1
        assert all(i["service.name"] == "e2e-labels" and i["memory_bytes"] > 10e6 for i in instances)  # our RSS
