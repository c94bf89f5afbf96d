"""POST /api/v1/actuals through a real server: the answer, and every malformed request refused whole with a clear
4xx, leaving nothing stored. The metrics these labels make are checked in test_performance_end_to_end."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from collector.records import InferenceBatch
from tests.collector.test_app import Running, serve


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with serve(tmp_path_factory.mktemp("actuals"), max_body_bytes=64 * 1024) as server:
        now = time.time()
        server.service._sink(
            [
                InferenceBatch(
                    "clf",
                    "1",
                    now,
                    [f"c{i}" for i in range(6)],
                    {"x": [float(i) for i in range(6)]},
                    {"label": ["yes", "no"] * 3, "score": [0.9, 0.1] * 3},
                    task="binary_classification",
                ),
                InferenceBatch(
                    "reg", "1", now, ["r0", "r1"], {"x": [1.0, 2.0]}, {"prediction": [1.5, 2.5]}, "regression"
                ),
            ]
        )
        yield server


@pytest.fixture
def http(running: Running) -> Iterator[httpx.Client]:
    with running.client() as client:
        yield client


def post(http: httpx.Client, body: Any) -> httpx.Response:
    return http.post("/api/v1/actuals", json=body)


def error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    message: str = response.json()["error"]
    return message


def test_labels_are_joined_and_counted(http: httpx.Client) -> None:
    answer = post(http, {"model": "clf", "ids": ["c0", "c1", "late-1", "c0"], "actuals": ["yes", "yes", "no", "yes"]})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "model": "clf",
        "version": None,
        "accepted": 4,
        "matched": 2,
        "pending": 1,
        "duplicates": 1,
        "conflicts": 0,
        "pairs": 2,
    }
    again = post(http, {"model": "clf", "version": "1", "ids": ["c1"], "actuals": ["no"]}).json()
    assert (again["version"], again["duplicates"], again["matched"]) == ("1", 1, 0)  # labeled already: first wins
    regression = post(http, {"model": "reg", "ids": ["r0", "r1"], "actuals": [1, 2.25]}).json()
    assert regression["matched"] == 2
    performance = http.get("/api/v1/models/clf/performance").json()
    assert (performance["labeled"], performance["metrics"]["count"]) == (2, 2)
    assert performance["unmatched"]["actuals_pending"] == 1


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (
            {"model": "nope", "ids": ["a"], "actuals": [1]},
            404,
            "no data seen for model 'nope' yet: its actuals are taken",
        ),
        ({"model": "clf", "version": "9", "ids": ["a"], "actuals": [1]}, 404, "model 'clf' has no version '9'"),
        ({"model": "clf", "ids": ["c2", "c3"], "actuals": ["no"]}, 422, "'ids' has 2 values but 'actuals' has 1"),
        ({"model": "clf", "ids": ["c2", 3], "actuals": ["no", "no"]}, 422, "ids[1] is 3: prediction ids are strings"),
        ({"model": "clf", "ids": ["c2", ""], "actuals": ["no", "no"]}, 422, 'ids[1] is ""'),
        ({"model": "clf", "ids": ["c2", "x" * 300], "actuals": [1, 1]}, 422, "strings of 1 to 256 characters"),
        ({"model": "clf", "ids": ["c2", "c3"], "actuals": ["no", 0.7]}, 422, "actuals[1] is 0.7 (float), but a classi"),
        ({"model": "clf", "ids": ["c2", "c3"], "actuals": ["no", None]}, 422, "actuals[1] is null"),
        ({"model": "clf", "ids": ["c2"], "actuals": [{"a": 1}]}, 422, "a number, a string or a boolean"),
        ({"model": "reg", "ids": ["r0", "r1"], "actuals": [1.0, "high"]}, 422, "a regression model's actuals are num"),
        ({"model": "reg", "ids": ["r0"], "actuals": [False]}, 422, "a regression model's actuals are numbers"),
        ({"model": "clf", "ids": "c2", "actuals": ["no"]}, 422, "'ids' and 'actuals' must be lists"),
        ({"ids": ["c2"], "actuals": ["no"]}, 422, "'model' must name the model"),
        ({"model": "clf", "version": 3, "ids": [], "actuals": []}, 422, "'version' must be a string"),
        ({"model": "clf", "ids": [], "actuals": [], "extra": 1}, 422, "unknown keys ['extra']"),
        ([1, 2], 422, "the body must be a JSON object"),
    ],
)
def test_bad_requests_store_nothing(running: Running, http: httpx.Client, body: Any, status: int, message: str) -> None:
    before = running.store.labels().held(), running.service.labels.health()
    assert message in error(post(http, body), status)
    assert (running.store.labels().held(), running.service.labels.health()) == before


def test_bad_bodies(http: httpx.Client) -> None:
    headers = {"content-type": "application/json"}
    assert "not valid JSON" in error(http.post("/api/v1/actuals", content=b"{", headers=headers), 400)
    assert "application/json" in error(
        http.post("/api/v1/actuals", content=b"a=1", headers={"content-type": "text/csv"}), 415
    )
    big = json.dumps({"model": "clf", "ids": ["i"] * 20_000, "actuals": [1] * 20_000}).encode()
    assert "max_body_bytes" in error(http.post("/api/v1/actuals", content=big, headers=headers), 413)
    bomb = gzip.compress(big)
    zipped = {**headers, "content-encoding": "gzip"}
    assert "max_body_bytes" in error(http.post("/api/v1/actuals", content=bomb, headers=zipped), 413)
    small = gzip.compress(json.dumps({"model": "clf", "ids": ["c5"], "actuals": ["no"]}).encode())
    assert http.post("/api/v1/actuals", content=small, headers=zipped).json()["matched"] == 1


def test_too_many_rows(tmp_path_factory: pytest.TempPathFactory) -> None:
    with serve(tmp_path_factory.mktemp("rows")) as server, server.client() as http:
        server.service._sink([InferenceBatch("m", "1", time.time(), ["a"], {}, {"label": [1]})])
        body = {"model": "m", "ids": [f"i{i}" for i in range(100_001)], "actuals": [1] * 100_001}
        assert "more than 100,000 in one request" in error(post(http, body), 422)
