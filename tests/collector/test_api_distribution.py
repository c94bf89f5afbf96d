"""GET /api/v1/models/{model}/distribution through a real server, checked against exact counts of the same rows.

The current side is exact here: a KLL of k=4096 keeps every one of the 2,000 current values, and the categories
are few enough for the frequent-items sketch to count exactly. The reference side comes from the profile's
1,000 quantile atoms, so each of its shares is within 1/1000 of the exact one per bin edge.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from starlette.applications import Starlette

from collector.api_distribution import QUANTILES, distribution_routes, histogram_edges
from collector.drift import column_drift
from collector.records import InferenceBatch
from collector.reference_build import reference_from_columns
from collector.service import CollectorService
from collector.settings import Address, CollectorSettings
from collector.sketches import SketchConfig
from collector.store_sqlite import SQLiteStore
from tests.browser.server import serve

NOW = time.time()
N_REF, N_CUR = 5000, 2000


def reference_rows(rng: np.random.Generator) -> dict[str, list[Any]]:
    return {
        "age": rng.normal(40, 10, N_REF).tolist(),
        "kids": rng.poisson(1.5, N_REF).tolist(),
        "plan": rng.choice(["basic", "pro", "team"], N_REF, p=[0.6, 0.3, 0.1]).tolist(),
    }


def current_rows(rng: np.random.Generator) -> dict[str, list[Any]]:
    plan: list[Any] = rng.choice(["basic", "pro", "team", "trial"], N_CUR, p=[0.3, 0.3, 0.2, 0.2]).tolist()
    age: list[Any] = rng.normal(48, 10, N_CUR).tolist()
    for i in range(0, N_CUR, 20):
        plan[i] = None
        age[i + 1] = None
    return {"age": age, "kids": rng.poisson(2.5, N_CUR).tolist(), "plan": plan}


class Setup:
    def __init__(self, url: str, service: CollectorService, ref: dict[str, list[Any]], cur: dict[str, list[Any]]):
        self.url, self.service, self.ref, self.cur = url, service, ref, cur


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    folder: Path = tmp_path_factory.mktemp("distribution")
    settings = CollectorSettings(
        http=Address("127.0.0.1", 0), grpc=None, store=f"sqlite:///{folder}/d.db", sketch=SketchConfig(kll_k=4096)
    )
    store = SQLiteStore(str(folder / "d.db"))
    service = CollectorService(store, settings)
    rng = np.random.default_rng(3)
    ref, cur = reference_rows(rng), current_rows(rng)
    profile = reference_from_columns("churn", "3", ref, {"score": rng.uniform(size=N_REF).tolist()})
    store.put_reference("churn", "3", profile.to_bytes(), {"source": "upload", "rows": N_REF})
    for part in range(4):  # four batches in one window
        rows = slice(part * 500, (part + 1) * 500)
        ids = [str(i) for i in range(rows.start, rows.stop)]
        batch = InferenceBatch("churn", "3", NOW - 600, ids, {k: v[rows] for k, v in cur.items()}, {})
        assert service.windows.add(batch)
    service.windows.add(InferenceBatch("fraud", "1", NOW - 600, ["a"], {"x": [1.0]}, {}))
    with serve(Starlette(routes=distribution_routes(service)), lifespan="off") as url:
        yield Setup(url, service, ref, cur)
    store.close()


def get(setup: Setup, model: str = "churn", **params: Any) -> httpx.Response:
    with httpx.Client(base_url=setup.url, timeout=30) as http:
        return http.get(f"/api/v1/models/{model}/distribution", params=params)


def shares(values: np.ndarray, edges: list[float]) -> tuple[float, list[float], float]:
    counts = np.histogram(values, bins=edges)[0]
    below = float(np.mean(values < edges[0]))
    above = float(np.mean(values >= edges[-1]))
    return below, (counts / values.size).tolist(), above


def test_numeric_histogram_quantiles_and_psi_bins(setup: Setup) -> None:
    answer = get(setup, feature="age").json()
    assert (answer["model"], answer["version"], answer["feature"], answer["role"], answer["kind"]) == (
        "churn",
        "3",
        "age",
        "input",
        "numeric",
    )
    ref = np.asarray(setup.ref["age"])
    cur = np.asarray([v for v in setup.cur["age"] if v is not None])
    hist = answer["histogram"]
    edges = hist["edges"]
    widths = np.diff(edges)
    assert np.allclose(widths, widths[0]) and 25 <= len(widths) <= 40
    mantissa = widths[0] / 10 ** math.floor(math.log10(widths[0]))
    assert any(math.isclose(mantissa, m) for m in (1, 2, 2.5, 5))
    both = np.concatenate([ref, cur])
    assert edges[0] <= np.quantile(both, 0.01) and edges[-1] > np.quantile(both, 0.99)

    below, inside, above = shares(cur, edges)  # exact sketch: exact shares
    assert hist["current"] == pytest.approx(inside, abs=1e-12)
    assert (hist["below"]["current"], hist["above"]["current"]) == pytest.approx((below, above), abs=1e-12)
    below, inside, above = shares(ref, edges)  # atoms: within 1/1000 per edge
    assert np.max(np.abs(np.asarray(hist["reference"]) - inside)) <= 2e-3 + 1e-12
    assert hist["below"]["reference"] == pytest.approx(below, abs=1e-3)
    total = sum(hist["reference"]) + hist["below"]["reference"] + hist["above"]["reference"]
    assert total == pytest.approx(1.0, abs=1e-12)

    q = answer["quantiles"]
    assert q["p"] == list(QUANTILES)
    for p, got in zip(QUANTILES, q["current"], strict=True):  # a value of the data within one rank of p
        assert np.quantile(cur, max(p - 1 / cur.size, 0)) <= got <= np.quantile(cur, min(p + 1 / cur.size, 1))
    for p, got in zip(QUANTILES, q["reference"], strict=True):  # the atoms: within 1/1000 in rank
        assert abs(np.mean(ref <= got) - p) <= 1.5e-3

    reference = setup.service.reference("churn", "3")
    assert reference is not None
    column = reference.column("input", "age")
    assert column is not None and column.numeric is not None
    assert answer["psi_bins"]["edges"] == list(column.numeric.edges)
    assert answer["psi_bins"]["reference"] == list(column.numeric.proportions)
    assert sum(answer["psi_bins"]["current"]) == pytest.approx(1.0)
    profile = setup.service.read_profile("churn", "3", NOW - 86400, NOW + 1, [("input", "age")])
    drift = column_drift(column, profile.columns[("input", "age")])
    assert (answer["psi"], answer["status"]) == (drift["psi"], drift["status"]) and answer["status"] == "drift"

    assert answer["current"]["count"] == N_CUR and answer["current"]["n"] == cur.size
    assert answer["current"]["missing_rate"] == pytest.approx(1 - cur.size / N_CUR)
    assert answer["current"]["mean"] == pytest.approx(cur.mean()) and answer["current"]["std"] == pytest.approx(
        cur.std()
    )
    assert answer["reference"]["std"] == pytest.approx(ref.std()) and answer["reference"]["n"] == N_REF


def test_whole_numbers_get_one_bar_per_value(setup: Setup) -> None:
    hist = get(setup, feature="kids").json()["histogram"]
    edges = hist["edges"]
    assert all(edge % 1 == 0.5 for edge in edges) and set(np.diff(edges)) == {1.0}
    cur = np.asarray(setup.cur["kids"], dtype=float)
    _, inside, _ = shares(cur, edges)
    assert hist["current"] == pytest.approx(inside, abs=1e-12)


def test_categorical_bars_keep_reference_order_then_new_categories(setup: Setup) -> None:
    answer = get(setup, feature="plan", start=str(NOW - 3600)).json()
    assert answer["kind"] == "categorical" and "histogram" not in answer
    plans = [v for v in setup.cur["plan"] if v is not None]
    ref = setup.ref["plan"]
    rows = {row["name"]: row for row in answer["categories"]}
    assert [row["name"] for row in answer["categories"]] == ["basic", "pro", "team", "trial"]
    for name in ("basic", "pro", "team", "trial"):
        assert rows[name]["current"] == pytest.approx(plans.count(name) / len(plans), abs=1e-12)
        assert rows[name]["reference"] == pytest.approx(ref.count(name) / len(ref), abs=1e-12)
    assert rows["trial"]["new"] is True and rows["basic"]["new"] is False
    assert answer["other"] == {"reference": 0.0, "current": 0.0}
    assert answer["current"]["missing_rate"] == pytest.approx(0.05)


def test_a_range_without_data_has_no_current_side(setup: Setup) -> None:
    answer = get(setup, feature="age", start=str(NOW - 86400 * 3), end=str(NOW - 86400 * 2)).json()
    assert answer["current"]["count"] == 0 and answer["histogram"]["current"] is None
    assert answer["quantiles"]["current"] is None and answer["status"] == "ok"
    assert sum(answer["histogram"]["reference"]) > 0.98
    cats = get(setup, feature="plan", start=str(NOW - 86400 * 3), end=str(NOW - 86400 * 2)).json()
    assert {row["current"] for row in cats["categories"]} == {None} and cats["other"]["current"] is None


@pytest.mark.parametrize(
    ("model", "params", "status", "message"),
    [
        ("churn", {}, 400, "feature="),
        ("churn", {"feature": "age", "role": "label"}, 400, "role="),
        ("churn", {"feature": "age", "bins": "0"}, 400, "bins="),
        ("churn", {"feature": "age", "bins": "many"}, 400, "bins="),
        ("churn", {"feature": "age", "bins": "201"}, 400, "bins="),
        ("churn", {"feature": "age", "start": "yesterday"}, 400, "not a time"),
        ("churn", {"feature": "height"}, 404, "no column 'height'"),
        ("churn", {"feature": "age", "role": "output"}, 404, "no column 'age'"),
        ("nobody", {"feature": "age"}, 404, "no data seen"),
        ("fraud", {"feature": "x"}, 409, "no reference"),
    ],
)
def test_bad_requests_say_what_to_fix(
    setup: Setup, model: str, params: dict[str, str], status: int, message: str
) -> None:
    response = get(setup, model, **params)
    assert response.status_code == status
    assert message in response.json()["error"]
    if status == 409:
        assert response.json()["cli"] == "predwatch reference set fraud FILE --version 1"


def test_output_columns_by_role(setup: Setup) -> None:
    answer = get(setup, feature="score", role="output").json()
    assert (answer["role"], answer["kind"], answer["current"]["count"]) == ("output", "numeric", 0)
    assert answer["histogram"]["current"] is None  # the batches carried no outputs: the column is absent


@pytest.mark.parametrize(
    ("lo", "hi", "bins", "integers", "expected"),
    [
        (0.0, 1.0, 10, False, [i / 10 for i in range(12)]),  # half-open bins: 1.0 needs one more
        (0.05, 0.95, 10, False, [i / 10 for i in range(11)]),
        (3.0, 3.0, 30, False, [2.85, 3.15]),
        (0.0, 0.0, 30, False, [-0.5, 0.5]),
        (1.0, 4.0, 30, True, [0.5, 1.5, 2.5, 3.5, 4.5]),
        (0.0, 100.0, 4, True, [-0.5, 24.5, 49.5, 74.5, 99.5, 124.5]),
    ],
)
def test_histogram_edges(lo: float, hi: float, bins: int, integers: bool, expected: list[float]) -> None:
    edges = histogram_edges(lo, hi, bins, integers)
    assert edges == pytest.approx(expected)
    assert edges[0] <= lo and edges[-1] > hi
