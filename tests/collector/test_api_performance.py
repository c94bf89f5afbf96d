"""GET .../performance, .../operations and .../compare through a real server, records fed through the service's sink
(the SDK path is test_performance_end_to_end's): the answers' shape, ranges, per-step series, the reference's
own performance, the positive label, and champion against challenger."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from sklearn import metrics as skm

from collector.histogram import LATENCY_BOUNDS
from collector.records import InferenceBatch, MetricPoint, PredictSpan
from instrument import semconv
from tests.collector.test_app import Running, serve

NOW = int(time.time()) // 3600 * 3600 - 3600  # an hour boundary well inside the default 24 h range
RNG = np.random.default_rng(11)
N = 400
SCORES = {v: RNG.uniform(size=N) for v in ("A", "B")}
TRUTH = (RNG.uniform(size=N) < SCORES["A"]).astype(int)


def ids(version: str) -> list[str]:
    return [f"{version}-{i}" for i in range(N)]


def resource(instance: str) -> dict[str, Any]:
    return {"service.instance.id": instance, "service.name": "svc", "host.name": "h1", "process.pid": 1}


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with serve(tmp_path_factory.mktemp("performance")) as server:
        records: list[Any] = []
        for version, scores in SCORES.items():
            for half, t in ((slice(0, N // 2), NOW + 10), (slice(N // 2, N), NOW + 1810)):  # two windows, 30 min apart
                records.append(
                    InferenceBatch(
                        "churn",
                        version,
                        t,
                        ids(version)[half],
                        {"x": scores[half].tolist()},
                        {"score": scores[half].tolist(), "label": (scores[half] >= 0.5).astype(int).tolist()},
                        task="binary_classification",
                    )
                )
            for i in range(20):
                ok = i % 10 != 0
                records.append(
                    PredictSpan(
                        "churn", version, NOW + 10 + i, 0.002 if version == "A" else 0.02, ok, 20, None if ok else "E",
                        resource=resource(f"{version}-pod"),
                    )
                )  # fmt: skip
        records += [
            MetricPoint("process.cpu.utilization", "gauge", NOW + 20, v, resource=resource("A-pod")) for v in (0.2, 0.4)
        ]
        server.service._sink(records)
        with server.client() as http:
            for version in SCORES:
                body = {"ids": ids(version), "actuals": TRUTH.tolist(), "model": "churn", "version": version}
                assert http.post("/api/v1/actuals", json=body).json()["matched"] == N
            reference_scores = RNG.uniform(size=300)
            reference = {
                "inputs": {"x": reference_scores.tolist()},
                "outputs": {
                    "score": reference_scores.tolist(),
                    "label": (reference_scores >= 0.5).astype(int).tolist(),
                },
                "actuals": (RNG.uniform(size=300) < reference_scores).astype(int).tolist(),
            }
            assert (
                http.put("/api/v1/models/churn/reference", params={"version": "A"}, json=reference).status_code == 200
            )
        server.reference = reference  # type: ignore[attr-defined]
        yield server


@pytest.fixture
def http(running: Running) -> Iterator[httpx.Client]:
    with running.client() as client:
        yield client


def get(http: httpx.Client, path: str, **params: Any) -> dict[str, Any]:
    response = http.get(f"/api/v1/models/churn/{path}", params=params)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def check_binary(metrics: dict[str, Any], truth: np.ndarray, scores: np.ndarray) -> None:
    labels = (scores >= 0.5).astype(int)
    assert metrics["count"] == truth.size
    assert metrics["accuracy"] == skm.accuracy_score(truth, labels)
    assert metrics["precision"] == skm.precision_score(truth, labels)
    assert metrics["recall"] == skm.recall_score(truth, labels)
    assert metrics["f1"] == pytest.approx(skm.f1_score(truth, labels), rel=1e-12)
    assert metrics["confusion_matrix"]["matrix"] == skm.confusion_matrix(truth, labels).tolist()
    assert abs(metrics["auc_roc"] - skm.roc_auc_score(truth, scores)) <= metrics["auc_roc_error_bound"] + 1e-12
    assert metrics["log_loss"] == pytest.approx(skm.log_loss(truth, scores), rel=1e-9)
    assert metrics["brier"] == pytest.approx(skm.brier_score_loss(truth, scores), rel=1e-9)


def test_performance_over_a_range_and_per_step(http: httpx.Client, running: Running) -> None:
    answer = get(http, "performance", version="A", step="30m")
    assert (answer["model"], answer["version"], answer["task"]) == ("churn", "A", "binary_classification")
    assert (answer["labeled"], answer["coverage"]) == (N, 1.0)
    assert answer["unmatched"] == {
        "predictions": 0,
        "expired": 0,
        "actuals_pending": 0,
        "actuals_expired": 0,
        "actuals_duplicates": 0,
        "actuals_conflicts": 0,
    }
    check_binary(answer["metrics"], TRUTH, SCORES["A"])
    assert answer["metrics"]["positive_label"] == 1
    assert [(p["labeled"], p["metrics"]["count"]) for p in answer["series"]] == [(N // 2, N // 2)] * 2
    first = answer["series"][0]
    assert first["metrics"]["accuracy"] == skm.accuracy_score(TRUTH[: N // 2], SCORES["A"][: N // 2] >= 0.5)
    assert "confusion_matrix" not in first["metrics"]  # scalars only
    later = get(http, "performance", version="A", start=str(NOW + 1800), end=str(NOW + 3600))
    check_binary(later["metrics"], TRUTH[N // 2 :], SCORES["A"][N // 2 :])
    empty = get(http, "performance", version="A", start=str(NOW - 7200), end=str(NOW - 3600))
    assert (empty["labeled"], empty["coverage"], empty["metrics"]["count"], empty["metrics"]["accuracy"]) == (
        0,
        None,
        0,
        None,
    )


def test_the_reference_performance_beside_production(http: httpx.Client, running: Running) -> None:
    reference = running.reference  # type: ignore[attr-defined]
    answer = get(http, "performance", version="A")["reference"]
    assert (answer["task"], answer["rows"]) == ("binary_classification", 300)
    check_binary(answer["metrics"], np.array(reference["actuals"]), np.array(reference["outputs"]["score"]))
    assert "reference" not in get(http, "performance", version="B")
    summary = http.get("/api/v1/models/churn/reference", params={"version": "A"}).json()["actuals"]
    assert summary == {"name": "actuals", "count": 300, "task": "binary_classification"}


def test_positive_label(http: httpx.Client) -> None:
    zero = get(http, "performance", version="A", positive_label="0")["metrics"]
    labels = (SCORES["A"] >= 0.5).astype(int)
    assert zero["positive_label"] == 0
    assert zero["precision"] == skm.precision_score(TRUTH, labels, pos_label=0)
    # the score stays what the model sent (the probability of class 1), so with 0 as the positive class it ranks
    # the negatives first: collector.performance_scores reads it as is
    auc = skm.roc_auc_score(TRUTH == 0, SCORES["A"])
    assert abs(zero["auc_roc"] - auc) <= zero["auc_roc_error_bound"] + 1e-12
    response = http.get("/api/v1/models/churn/performance", params={"version": "A", "positive_label": "yes"})
    assert response.status_code == 400 and "none of the labels seen: [0, 1]" in response.json()["error"]


def test_operations(http: httpx.Client) -> None:
    answer = get(http, "operations", version="A", start=str(NOW), end=str(NOW + 3600), step="1h")
    assert (answer["calls"], answer["errors"], answer["error_rate"]) == (20, 2, 0.1)
    assert (answer["predictions"], answer["error_rows"], answer["source"]) == (360, 40, "spans")
    assert answer["throughput_per_s"] == 360 / 3600
    bucket = next(b for b in LATENCY_BOUNDS if b >= 0.002)
    assert 0 < answer["latency_ms"]["p50"] <= bucket * 1e3 and answer["latency_ms"]["max"] == pytest.approx(2.0)
    [pod] = answer["instances"]
    assert (pod["service.instance.id"], pod["cpu_percent"], pod["cpu_percent_max"]) == (
        "A-pod",
        pytest.approx(30.0),
        40.0,
    )
    assert answer["cpu_percent"] == pytest.approx(30.0)
    [point] = answer["series"]
    assert (point["calls"], point["predictions"], point["cpu_percent"]) == (20, 360, pytest.approx(30.0))
    other = get(http, "operations", version="B", start=str(NOW), end=str(NOW + 3600))
    assert other["cpu_percent"] is None and other["latency_ms"]["max"] == pytest.approx(20.0)


def test_champion_and_challenger_side_by_side(http: httpx.Client) -> None:
    answer = get(http, "compare", versions="A,B", start=str(NOW), end=str(NOW + 3600))
    assert (answer["champion"], answer["challenger"]) == ("A", "B")
    a, b = answer["versions"]
    assert (a["role"], b["role"]) == ("champion", "challenger")
    assert a["performance"] == get(http, "performance", version="A", start=str(NOW), end=str(NOW + 3600))
    assert b["operations"] == get(http, "operations", version="B", start=str(NOW), end=str(NOW + 3600))
    assert a["drift"] is not None and a["drift"]["rows"] == N and b["drift"] is None
    assert answer["notes"] == ["no drift for version 'B': it has no reference yet"]
    diff = answer["difference"]
    expected = skm.accuracy_score(TRUTH, SCORES["B"] >= 0.5) - skm.accuracy_score(TRUTH, SCORES["A"] >= 0.5)
    assert diff["performance"]["accuracy"] == pytest.approx(expected, abs=1e-12)
    assert diff["operations"]["latency_p99_ms"] > 0 and diff["operations"]["error_rate"] == 0
    assert diff["drift"] == {}
    same = get(http, "compare", champion="B", challenger="A", start=str(NOW), end=str(NOW + 3600))
    assert same["difference"]["performance"]["accuracy"] == pytest.approx(-expected, abs=1e-12)


@pytest.mark.parametrize(
    ("path", "params", "status", "message"),
    [
        ("compare", {"versions": "A"}, 400, "name two different versions"),
        ("compare", {"versions": "A,A"}, 400, "name two different versions"),
        ("compare", {"champion": "A"}, 400, "name two different versions"),
        ("compare", {"versions": "A,Z"}, 404, "has no version 'Z'"),
        ("performance", {"version": "Z"}, 404, "has no version 'Z'"),
        ("performance", {"step": "1s"}, 400, "shorter than the 60-s window"),
        ("operations", {"step": "60", "start": "0"}, 400, "more than 5000"),
    ],
)
def test_bad_requests(http: httpx.Client, path: str, params: dict[str, str], status: int, message: str) -> None:
    response = http.get(f"/api/v1/models/churn/{path}", params=params)
    assert response.status_code == status and message in response.json()["error"], response.text
    assert http.get("/api/v1/models/nope/performance").status_code == 404


def test_status_shows_the_join(http: httpx.Client) -> None:
    labels = http.get("/api/v1/status").json()["labels"]
    assert labels["predictions_held"] == 2 * N and labels["actuals_matched"] == 2 * N and labels["ttl_s"] == 7 * 86400
    assert semconv.TASKS[0] == "binary_classification"


def test_the_answers_alerting_reads_in_process(running: Running) -> None:
    from collector.alerting import ServiceSource

    source = ServiceSource(running.service, time.time)
    performance = source.performance("churn", "A", NOW, NOW + 3600)
    assert performance is not None and performance["labeled"] == N
    operations = source.operations("churn", "A", NOW, NOW + 3600)
    assert operations is not None and operations["calls"] == 20
    reference = source.reference_performance("churn", "A")
    assert reference is not None and reference["count"] == 300 and "accuracy" in reference
    assert source.reference_performance("churn", "B") is None
