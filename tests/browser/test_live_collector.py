"""The dashboard in Chromium against a real collector fed by the SDK with drifting data (see live.py): what the
charts draw is what the collector's API answers, cell by cell, and the endpoints the collector does not serve
yet show as such instead of breaking the page."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.browser.cdp import Page
from tests.browser.conftest import screenshot
from tests.browser.helpers import (
    bar_values,
    columns_for,
    count,
    model_rows,
    open_page,
    severity_order,
    text,
    values,
)
from tests.browser.live import SLICES

pytestmark = pytest.mark.timeout(600)


def api(url: str, path: str, **params: Any) -> Any:
    with httpx.Client(base_url=url, timeout=30) as http:
        response = http.get(f"/api/v1{path}", params=params)
        response.raise_for_status()
        return response.json()


def test_overview_of_the_live_collector(page: Page, live_url: str) -> None:
    open_page(page, live_url, "#/?refresh=0", "overview")
    rows = model_rows(page)
    assert rows == [["churn", "2", "drift"], ["fraud", "1", "nodata"]]
    traffic = [int(p) for p in values(page, "svg[data-chart=spark-rows]", "points")]
    assert traffic == [SLICES, 1]  # churn: a batch every half hour for 12 h; fraud: one batch
    screenshot(page, "live-overview")


def test_heat_map_cells_are_the_collectors_psi(page: Page, live_url: str) -> None:
    open_page(page, live_url, "#/model/churn?v=2&refresh=0", "model")
    drift = api(live_url, "/models/churn/drift", version="2")
    order = severity_order(drift["features"])
    assert values(page, "[data-table=drift] tbody tr", "feature") == order
    assert order[0] == "plan" and drift["status"] == "drift"

    cols = int(page.evaluate("document.querySelector('[data-chart=drift-heatmap]').dataset.cols"))
    assert cols in columns_for(86400, 1800)
    assert count(page, "rect[data-cell]") == len(order) * cols
    assert count(page, "rect[data-cell]:not(.empty)") == len(order) * SLICES  # the other buckets hold no data
    cells = page.evaluate(
        "[...document.querySelectorAll('rect[data-cell][data-feature=age]:not(.empty)')]"
        ".map(c => [c.dataset.start, Number(c.dataset.value), c.dataset.status])"
    )
    start = min(datetime.fromisoformat(c[0]) for c in cells).timestamp()
    series = api(
        live_url, "/models/churn/timeseries", metric="psi", feature="age", version="2", step="1800", start=str(start)
    )
    expected = [[datetime.fromisoformat(p["start"]).astimezone(UTC), p["value"], p["status"]] for p in series["points"]]
    got = [[datetime.fromisoformat(c[0]), c[1], c[2]] for c in cells]
    assert [g[0] for g in got] == [e[0] for e in expected]
    assert [g[1] for g in got] == pytest.approx([e[1] for e in expected], rel=1e-9)
    assert [g[2] for g in got] == [e[2] for e in expected]
    assert got[-1][2] == "drift" and got[0][2] != "drift" and got[0][1] < got[-1][1]  # age drifts as time goes on

    for card in ("performance", "operations", "alerts"):  # whatever this collector serves, the card is there
        assert count(page, f"[data-card={card}]") == 1, card
    screenshot(page, "live-model", readme=True)


def test_feature_pages_of_the_live_collector(page: Page, live_url: str) -> None:
    open_page(page, live_url, "#/feature/churn/age?v=2&role=input&refresh=0", "feature")
    bins = int(page.evaluate("document.querySelector('[data-chart=distribution]').dataset.bins"))
    current, reference = bar_values(page, "current"), bar_values(page, "reference")
    assert len(current) == len(reference) == bins >= 20  # (bin edges may move by a bin between reads: KLL)
    assert sum(current) > 0.95 and sum(reference) > 0.95
    psi = page.evaluate("document.querySelector('[data-chart=psi-over-time] path[data-series]').dataset.points")
    assert int(psi) == SLICES  # one point per half hour with data (120 points at most over a day)
    screenshot(page, "live-feature-age")

    open_page(page, live_url, "#/feature/churn/plan?v=2&role=input&refresh=0", "feature")
    names = values(page, "[data-chart=distribution] tr[data-category]", "category")
    assert names[:3] == ["basic", "pro", "team"] and "trial" in names
    assert "new" in text(page, "tr[data-category=trial] th")
    screenshot(page, "live-feature-plan")


def test_a_model_without_reference_says_how_to_set_one(page: Page, live_url: str) -> None:
    open_page(page, live_url, "#/model/fraud?refresh=0", "model")
    assert "predwatch reference set fraud FILE --version 1" in text(page, "[data-card=drift]")
    config = json.loads(page.evaluate("document.getElementById('predwatch-config').textContent"))
    assert config["window_s"] == 60 and config["auth"] is False
