"""The JSON API through a real server: answers, defaults and every malformed request it must refuse clearly.

Data goes in through the service's sink (the OTLP path is test_end_to_end's); drift numbers are checked
against exact computations in test_end_to_end.
"""

from __future__ import annotations

import gzip
import json
import math
import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from collector.api import drift_answer
from collector.records import InferenceBatch
from tests.collector.test_app import Running, serve

HOUR = 3600


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with serve(tmp_path_factory.mktemp("api"), max_reference_bytes=64 * 1024) as server:
        yield server


@pytest.fixture
def http(running: Running) -> Iterator[httpx.Client]:
    with running.client() as client:
        yield client


def feed(running: Running, model: str, version: str, t: float, rows: int = 200, shift: float = 0.0) -> None:
    rng = np.random.default_rng(int(t) % 1000)
    running.service._sink(
        [
            InferenceBatch(
                model,
                version,
                t,
                [f"{model}-{t}-{i}" for i in range(rows)],
                {
                    "x": (rng.normal(size=rows) + shift).tolist(),
                    "plan": [["basic", "pro", None][i % 3] for i in range(rows)],
                },
                {"score": rng.uniform(size=rows).tolist()},
            )
        ]
    )


def reference_body(rows: int = 500) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    return {
        "inputs": {"x": rng.normal(size=rows).tolist(), "plan": [["basic", "pro"][i % 2] for i in range(rows)]},
        "outputs": {"score": rng.uniform(size=rows).tolist()},
    }


def error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    message: str = response.json()["error"]
    return message


# -- models, versions, 404 / 409 ------------------------------------------------------------------------------------
def test_models_and_the_newest_version(running: Running, http: httpx.Client) -> None:
    now = time.time()
    feed(running, "churn", "1", now - 2 * HOUR)
    feed(running, "churn", "2", now - 60, rows=50)
    models = {(m["model"], m["version"]): m for m in http.get("/api/v1/models").json()}
    assert models[("churn", "1")]["rows"] == 200 and models[("churn", "2")]["rows"] == 50
    assert models[("churn", "2")]["first_seen"].endswith("Z")
    body = http.get("/api/v1/models/churn/drift").json()  # the newest version by default: 409 names it
    assert "version '2' has no reference" in body["error"]
    assert body["put_url"] == "/api/v1/models/churn/reference?version=2"
    assert body["cli"] == "predwatch reference set churn FILE --version 2"


def test_unknown_model_and_version(running: Running, http: httpx.Client) -> None:
    feed(running, "known", "1", time.time())
    assert "no data seen for model 'nope'" in error(http.get("/api/v1/models/nope/drift"), 404)
    message = error(http.get("/api/v1/models/known/drift", params={"version": "9"}), 404)
    assert message == "model 'known' has no version '9'; versions seen: '1'"
    assert error(http.get("/api/v1/models/nope/timeseries", params={"metric": "rows"}), 404)


def test_no_reference_is_409_with_how_to_fix(running: Running, http: httpx.Client) -> None:
    feed(running, "fraud model/eu", "v 1", time.time())
    response = http.get("/api/v1/models/fraud%20model%2Feu/drift")
    body = response.json()
    assert response.status_code == 409
    assert body["put_url"] == "/api/v1/models/fraud%20model%2Feu/reference?version=v%201"
    assert body["cli"] == "predwatch reference set 'fraud model/eu' FILE --version 'v 1'"
    assert "from-range" in body["from_range_url"] and body["how_to_fix"]


# -- reference upload --------------------------------------------------------------------------------------------------
def test_reference_upload_then_drift(running: Running, http: httpx.Client) -> None:
    now = time.time()
    feed(running, "up", "1", now)
    feed(running, "up", "1", now - 3 * HOUR, shift=2.0)
    body = {**reference_body(), "actuals": [i % 2 for i in range(500)], "target": "churned"}
    answer = http.put("/api/v1/models/up/reference", params={"version": "1"}, json=body).json()
    assert (answer["model"], answer["version"], answer["rows"], answer["source"]) == ("up", "1", 500, "upload")
    assert [(c["name"], c["role"], c["kind"]) for c in answer["columns"]] == [
        ("x", "input", "numeric"),
        ("plan", "input", "categorical"),
        ("score", "output", "numeric"),
    ]
    assert answer["actuals"] == {"name": "churned", "count": 500}
    stored = http.get("/api/v1/models/up/reference").json()
    assert stored["profile"]["actuals"]["column"]["count"] == 500
    assert len(stored["profile"]["columns"][0]["numeric"]["edges"]) == 9

    drift = http.get("/api/v1/models/up/drift").json()
    assert (drift["model"], drift["version"], drift["rows"]) == ("up", "1", 400)
    assert drift["reference"]["source"] == "upload" and drift["reference"]["rows"] == 500
    by_name = {f["name"]: f for f in drift["features"]}
    assert set(by_name) == {"x", "plan", "score"}
    assert by_name["plan"]["missing_rate"] == pytest.approx(132 / 400)
    assert by_name["plan"]["chi2"]["statistic"] is not None and "new_categories" in by_name["plan"]
    assert drift["status"] == "drift" and by_name["x"]["status"] == "drift"  # half the rows shifted by 2 sd
    recent = http.get("/api/v1/models/up/drift", params={"start": now - 60, "end": now + 60}).json()
    assert recent["rows"] == 200 and {f["name"]: f for f in recent["features"]}["x"]["psi"] < 0.25
    assert drift_answer(running.service, "up", "1", now - 60, now + 60) == recent  # for in-process readers
    assert drift_answer(running.service, "up", "2", now - 60, now + 60) is None  # no reference

    gzipped = gzip.compress(json.dumps({**reference_body(), "kinds": {"score": "categorical"}}).encode())
    headers = {"content-type": "application/json", "content-encoding": "gzip"}
    answer = http.put("/api/v1/models/up/reference?version=1", content=gzipped, headers=headers).json()
    assert answer["columns"][2]["kind"] == "categorical" and answer["actuals"] is None  # replaced


def test_reference_for_a_version_not_seen_yet(running: Running, http: httpx.Client) -> None:
    assert "pass ?version=" in error(http.put("/api/v1/models/future/reference", json=reference_body()), 400)
    assert http.put("/api/v1/models/future/reference?version=1", json=reference_body()).status_code == 200
    drift = http.get("/api/v1/models/future/drift", params={"version": "1"}).json()
    assert drift["rows"] == 0 and all(f["count"] == 0 and f["status"] == "ok" for f in drift["features"])


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"\xff\xfe", 400, "not valid JSON"),
        (b"[1, 2]", 422, "must be a JSON object"),
        (b'{"input": {"x": [1]}}', 422, "unknown keys ['input']"),
        (b"{}", 422, "has no columns"),
        (b'{"inputs": [1, 2]}', 422, "'inputs' must be an object of columns"),
        (b'{"inputs": {"x": 5}}', 422, "inputs.x must be a list of values, got int"),
        (b'{"inputs": {"x": [1, [2]]}}', 422, "inputs.x holds array values"),
        (b'{"inputs": {"x": [{"a": 1}]}}', 422, "inputs.x holds object values"),
        (b'{"inputs": {"x": [1, 2], "y": [1]}}', 422, "columns differ in length: 2 rows, but input 'y' has 1"),
        (b'{"inputs": {"x": [1, 2]}, "outputs": {"s": [1]}}', 422, "output 's' has 1"),
        (b'{"inputs": {"x": []}}', 422, "has no rows"),
        (b'{"inputs": {"": [1]}}', 422, "column names must have 1 to 256 characters"),
        (b'{"inputs": {"x": [1, 2]}, "actuals": [1]}', 422, "'actuals' has 1 values for 2 rows"),
        (b'{"inputs": {"x": [1]}, "actuals": 1}', 422, "actuals must be a list"),
        (b'{"inputs": {"x": [1]}, "kinds": {"x": "text"}}', 422, "'kinds' must map column names"),
        (b'{"inputs": {"x": [1]}, "kinds": {"y": "numeric"}}', 422, "not in the upload: ['y']"),
        (b'{"inputs": {"x": [1]}, "target": 3}', 422, "'target' must be the name"),
        (b"[" * 100_000 + b"]" * 100_000, 413, "max_reference_bytes"),
    ],
)
def test_bad_uploads(http: httpx.Client, body: bytes, status: int, message: str) -> None:
    response = http.put(
        "/api/v1/models/m/reference?version=1", content=body, headers={"content-type": "application/json"}
    )
    assert message in error(response, status)


def test_upload_limits_and_content_types(http: httpx.Client) -> None:
    url = "/api/v1/models/m/reference?version=1"
    assert "application/json" in error(http.put(url, content=b"x=1", headers={"content-type": "text/csv"}), 415)
    bomb = gzip.compress(b'{"inputs": {"x": [' + b"1," * 100_000 + b"1]}}")
    headers = {"content-type": "application/json", "content-encoding": "gzip"}
    assert "max_reference_bytes" in error(http.put(url, content=bomb, headers=headers), 413)
    assert error(http.put(url, content=b"\x1f\x8b garbage", headers=headers), 400)
    too_long = http.put("/api/v1/models/m/reference", params={"version": "v" * 300}, json=reference_body(10))
    assert "version must have at most 256" in error(too_long, 400)
    lenient = json.dumps({"inputs": {"x": [1, 2.5, None, math.inf, math.nan, "a"]}})  # NaN, Infinity: Python's JSON
    answer = http.put(url, content=lenient, headers={"content-type": "application/json"}).json()
    assert answer["columns"] == [{"name": "x", "role": "input", "kind": "numeric", "count": 6}]


# -- times and ranges --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"start": "yesterday"}, "start='yesterday' is not a time: use RFC 3339"),
        ({"end": "2026-01-01T00:00:00"}, "has no time zone"),
        ({"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, "must be before end"),
        ({"start": "1e300"}, "out of range"),
        ({"start": "nan"}, "out of range"),
    ],
)
def test_bad_times(running: Running, http: httpx.Client, params: dict[str, str], message: str) -> None:
    feed(running, "timed", "1", time.time())
    for path, extra in (("drift", {}), ("timeseries", {"metric": "rows"}), ("reference/from-range", {})):
        method = http.post if path.startswith("reference") else http.get
        assert message in error(method(f"/api/v1/models/timed/{path}", params={**params, **extra}), 400)


def test_rfc3339_and_unix_seconds_agree(running: Running, http: httpx.Client) -> None:
    t = 1_767_225_600  # 2026-01-01T00:00:00Z
    feed(running, "clock", "1", t + 30, rows=40)
    http.put("/api/v1/models/clock/reference?version=1", json=reference_body())
    unix = http.get("/api/v1/models/clock/drift", params={"start": str(t), "end": str(t + 60)}).json()
    text = {"start": "2026-01-01T01:00:00+01:00", "end": "2026-01-01T00:01:00Z"}
    rfc = http.get("/api/v1/models/clock/drift", params=text).json()
    assert unix == rfc and (unix["start"], unix["end"], unix["rows"]) == (
        "2026-01-01T00:00:00Z",
        "2026-01-01T00:01:00Z",
        40,
    )
    empty = http.get("/api/v1/models/clock/drift", params={"start": str(t + 60), "end": str(t + 120)}).json()
    assert empty["rows"] == 0


# -- timeseries ------------------------------------------------------------------------------------------------------
def test_timeseries(running: Running, http: httpx.Client) -> None:
    t = 1_767_225_600
    for i in range(5):
        feed(running, "series", "1", t + i * 60 + 1, rows=100, shift=2.0 if i >= 3 else 0.0)
    running.service.flush_due()  # some windows stored, then more open ones
    feed(running, "series", "1", t + 5 * 60 + 1, rows=100, shift=2.0)
    span = {"start": str(t), "end": str(t + 360)}
    rows = http.get("/api/v1/models/series/timeseries", params={"metric": "rows", **span}).json()
    assert rows["step"] == 60 and [p["value"] for p in rows["points"]] == [100] * 6
    assert rows["points"][0] == {
        "start": "2026-01-01T00:00:00Z",
        "end": "2026-01-01T00:01:00Z",
        "rows": 100,
        "value": 100,
    }
    coarse = http.get(
        "/api/v1/models/series/timeseries", params={"metric": "count", "feature": "x", "step": "2m", **span}
    )
    assert [(p["start"][11:16], p["value"]) for p in coarse.json()["points"]] == [
        ("00:00", 200),
        ("00:02", 200),
        ("00:04", 200),
    ]
    hourly = http.get("/api/v1/models/series/timeseries", params={"metric": "rows", "step": "1h", **span}).json()
    assert [p["value"] for p in hourly["points"]] == [600]
    missing = http.get("/api/v1/models/series/timeseries", params={"metric": "missing_rate", "feature": "plan", **span})
    assert [p["value"] for p in missing.json()["points"]] == [pytest.approx(33 / 100)] * 6
    mean = http.get("/api/v1/models/series/timeseries", params={"metric": "mean", "feature": "x", **span}).json()
    assert mean["role"] == "input" and mean["points"][-1]["value"] > 1.0

    assert http.get("/api/v1/models/series/timeseries", params={"metric": "psi", "feature": "x"}).status_code == 409
    http.put("/api/v1/models/series/reference?version=1", json=reference_body())
    psi = http.get("/api/v1/models/series/timeseries", params={"metric": "psi", "feature": "x", **span}).json()
    statuses = [p["status"] for p in psi["points"]]
    assert statuses[:3] == ["ok"] * 3 and statuses[3:] == ["drift"] * 3
    score = http.get(
        "/api/v1/models/series/timeseries",
        params={"metric": "ks_p_value", "feature": "score", "role": "output", **span},
    ).json()
    assert score["role"] == "output" and all(0 <= p["value"] <= 1 for p in score["points"])
    chi2 = http.get("/api/v1/models/series/timeseries", params={"metric": "chi2", "feature": "plan", **span}).json()
    assert all(p["value"] > 0 for p in chi2["points"])


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({"metric": "nope"}, 400, "metric='nope' is not one of rows, count"),
        ({"metric": "psi"}, 400, "name it with feature="),
        ({"metric": "rows", "step": "10"}, 400, "shorter than the 60-s window"),
        ({"metric": "rows", "step": "soon"}, 400, "is not a duration"),
        ({"metric": "rows", "step": "60", "start": "0", "end": "1000000"}, 400, "more than 5000"),
        ({"metric": "rows", "role": "both"}, 400, "use input or output"),
        ({"metric": "psi", "feature": "nope"}, 404, "has no column 'nope'"),
    ],
)
def test_bad_timeseries_requests(
    running: Running, http: httpx.Client, params: dict[str, str], status: int, message: str
) -> None:
    feed(running, "ts-bad", "1", time.time())
    http.put("/api/v1/models/ts-bad/reference?version=1", json=reference_body(10))
    assert message in error(http.get("/api/v1/models/ts-bad/timeseries", params=params), status)


# -- reference from a production range -----------------------------------------------------------------------------
def test_reference_from_a_production_range(running: Running, http: httpx.Client) -> None:
    t = 1_767_225_600
    feed(running, "ranged", "1", t + 10, rows=300)
    feed(running, "ranged", "2", t + 70, rows=300, shift=3.0)
    url = "/api/v1/models/ranged/reference/from-range"
    empty = http.post(url, params={"version": "1", "start": str(t + 3600), "end": str(t + 7200)})
    assert "has no rows between" in error(empty, 422)
    made = http.post(url, params={"version": "1", "start": str(t), "end": str(t + 60)}).json()
    assert (made["source"], made["rows"], made["range"]) == (
        "production range",
        300,
        ["2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z"],
    )
    same = http.get("/api/v1/models/ranged/drift", params={"version": "1", "start": str(t), "end": str(t + 60)}).json()
    assert all(f["status"] == "ok" and f["psi"] < 0.01 for f in same["features"] if f["psi"] is not None)
    # Version 2 judged against version 1's production data.
    challenger = http.post(url, params={"version": "2", "source_version": "1", "start": str(t), "end": str(t + 60)})
    assert challenger.json()["version"] == "2"
    shifted = http.get("/api/v1/models/ranged/drift", params={"version": "2", "start": str(t), "end": str(t + 120)})
    assert {f["name"]: f["status"] for f in shifted.json()["features"]}["x"] == "drift"
    assert error(http.post(url, params={"version": "2", "source_version": "7"}), 404)


def test_status(http: httpx.Client) -> None:
    status = http.get("/api/v1/status").json()
    assert status["status"] == "ok" and {"ingest", "windows", "store"} <= set(status)
