"""Every page in Chromium against the stub collector, which answers every endpoint the dashboard reads: the
charts draw the series the answers hold (counted through data attributes), tables keep their order, and the
page neither throws nor loads anything from another origin."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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
from tests.browser.stub import FIXTURES

pytestmark = pytest.mark.timeout(600)  # the first test may install Chromium first


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def test_overview_lists_every_version_with_its_status(page: Page, stub_url: str) -> None:
    open_page(page, stub_url, "#/", "overview")
    rows = model_rows(page)
    assert rows == [["churn", "4", "warning"], ["churn", "3", "drift"], ["fraud", "1", "nodata"]]
    traffic = [int(p) for p in values(page, "svg[data-chart=spark-rows]", "points")]
    assert len(traffic) == 3 and min(traffic) > 0
    assert len(values(page, "svg[data-chart=spark-psi]", "points")) == 2  # fraud has no reference: no PSI
    assert [text(page, f"[data-tile={name}] .tile-value") for name in ("versions", "drifting", "alerts")] == [
        "3",
        "1",
        "1",
    ]
    assert count(page, "[data-card=active-alerts] li") == 1
    badges = page.evaluate("[...document.querySelectorAll('.badge')].map(b => b.innerText.replace(/[^a-z]/gi, ''))")
    assert badges and all(badges), "every status badge says its status in words, not only in colour"
    assert "no reference" in text(page, "[data-model=fraud]")
    screenshot(page, "stub-overview")


def test_model_page_draws_drift_performance_and_operations(page: Page, stub_url: str) -> None:
    open_page(page, stub_url, "#/model/churn?v=3", "model")
    drift = fixture("drift_churn_3")
    order = severity_order(drift["features"])

    rows, cols = (
        int(page.evaluate(f"document.querySelector('[data-chart=drift-heatmap]').dataset.{a}"))
        for a in ("rows", "cols")
    )
    assert rows == len(drift["features"]) and cols in columns_for(86400, 1800)
    assert count(page, "[data-chart=drift-heatmap] rect[data-cell]") == rows * cols
    assert count(page, "[data-chart=drift-heatmap] rect[data-cell].empty") == 0  # the stub has data all day
    assert list(dict.fromkeys(values(page, "rect[data-cell]", "feature"))) == order
    assert values(page, "[data-table=drift] tbody tr", "feature") == order
    statuses = {f["name"]: f["status"] for f in drift["features"]}
    assert values(page, "[data-table=drift] tbody tr", "status") == [statuses[name] for name in order]

    perf = fixture("performance_churn_3")["metrics"]
    assert values(page, "[data-chart=roc] path[data-series]", "points") == [str(len(perf["roc_curve"]["fpr"]))]
    assert values(page, "[data-chart=pr] path[data-series]", "points") == [str(len(perf["pr_curve"]["recall"]))]
    cells = page.evaluate(
        "[...document.querySelectorAll('[data-chart=confusion] td[data-cell]')].map(c => Number(c.dataset.count))"
    )
    assert cells == [n for row in perf["confusion_matrix"]["matrix"] for n in row]
    over = values(page, "[data-chart=performance-over-time] path[data-series]", "series")
    assert sorted(over) == ["accuracy", "auc_roc", "f1"]
    assert set(values(page, "[data-chart=performance-over-time] path[data-series]", "points")) == {"24"}
    assert count(page, "[data-chart=performance-over-time] [data-ref]") == 1  # the reference's AUC
    assert text(page, "[data-tile=auc_roc] .tile-value") == f"{perf['auc_roc']:.3f}"

    assert values(page, "[data-chart=latency] path[data-series]", "series") == ["p50", "p90", "p95", "p99"]
    for name in ("throughput", "error-rate", "cpu", "memory"):
        assert count(page, f"[data-chart={name}] path[data-series]") == 1, name
    assert count(page, "[data-table=instances] tbody tr") == 3
    assert values(page, "[data-table=alerts] tbody tr", "state") == ["firing", "resolved"]
    about = text(page, "[data-card=metadata]")
    assert "binary_classification" in about and "3 instances on 3 hosts" in about and "upload, 5,000 rows" in about
    screenshot(page, "stub-model")


def test_numeric_feature_page(page: Page, stub_url: str) -> None:
    open_page(page, stub_url, "#/feature/churn/age?v=3&role=input", "feature")
    dist = fixture("distribution_churn_3_age")
    bins = len(dist["histogram"]["edges"]) - 1
    for series in ("reference", "current"):
        bars = bar_values(page, series)
        assert bars == pytest.approx(dist["histogram"][series]) and len(bars) == bins
    stats = values(page, "[data-table=quantiles] tbody tr", "stat")
    assert stats == [
        "values",
        "missing",
        "min",
        "p1",
        "p5",
        "p10",
        "p25",
        "p50",
        "p75",
        "p90",
        "p95",
        "p99",
        "max",
        "mean",
        "std",
    ]
    assert count(page, "[data-chart=psi-over-time] path[data-series]") == 1
    assert count(page, "[data-chart=psi-over-time] rect.band-drift") == 1
    assert values(page, "[data-chart=quality-over-time] path[data-series]", "series") == [
        "missing_rate",
        "out_of_range_rate",
        "type_mismatch_rate",
    ]
    assert count(page, "[data-chart=mean-over-time] [data-ref]") == 1
    screenshot(page, "stub-feature-numeric")


def test_categorical_feature_page(page: Page, stub_url: str) -> None:
    open_page(page, stub_url, "#/feature/churn/plan?v=3&role=input", "feature")
    names = values(page, "[data-chart=distribution] tr[data-category]", "category")
    assert names == [c["name"] for c in fixture("distribution_churn_3_plan")["categories"]]
    assert "new" in text(page, "tr[data-category=trial] th")
    assert count(page, "[data-chart=distribution] [data-bar][data-series=current]") == len(names)
    assert values(page, "[data-chart=quality-over-time] path[data-series]", "series")[1] == "new_category_rate"
    screenshot(page, "stub-feature-categorical")


def test_champion_and_challenger_side_by_side(page: Page, stub_url: str) -> None:
    open_page(page, stub_url, "#/compare/churn?a=3&b=4", "compare")
    assert values(page, "[data-chart=compare-traffic] path[data-series]", "series") == ["3", "4"]
    assert len(values(page, "[data-table=compare-drift] tbody tr", "feature")) == len(
        fixture("drift_churn_3")["features"]
    )
    verdict = text(page, "[data-table=side-by-side] tr[data-metric='Drifting columns']")
    assert "better" in verdict  # v4 drifts less than v3
    screenshot(page, "stub-compare")


def test_empty_states_say_what_to_do(page: Page, stub_url: str) -> None:
    open_page(page, stub_url, "#/model/fraud", "model")
    drift = text(page, "[data-card=drift]")
    assert "No reference set" in drift and "predwatch reference set fraud FILE --version 1" in drift
    assert "No labelled predictions" in text(page, "[data-card=performance]")
    assert "instrument.log_actuals" in text(page, "[data-card=performance]")
    assert "No predict calls" in text(page, "[data-card=operations]")
    open_page(page, stub_url, "#/model/nobody", "model")
    assert 'No predictions of model "nobody"' in text(page, "main")


def test_range_version_and_links_live_in_the_address(page: Page, stub_url: str) -> None:
    open_page(page, stub_url, "#/model/churn?v=3", "model")
    page.evaluate("document.querySelector('button[data-range=\"1h\"]').click()")
    page.wait_for("location.hash.includes('range=1h')")
    page.ready("model", renders=2)
    cols = int(page.evaluate("document.querySelector('[data-chart=drift-heatmap]').dataset.cols"))
    assert cols in columns_for(3600, 60)
    page.evaluate(
        "const s = document.querySelector('.version-select'); s.value = '4'; s.dispatchEvent(new Event('change'))"
    )
    page.wait_for("document.querySelector('main .page')?.dataset.version === '4'")
    assert "v=4" in page.evaluate("location.hash") and "range=1h" in page.evaluate("location.hash")
    page.evaluate("document.querySelector('[data-table=drift] tbody tr a').click()")
    page.wait_for("document.body.dataset.page === 'feature' && document.body.dataset.state === 'ready'")
    assert "range=1h" in page.evaluate("location.hash")

    shared = "#/feature/churn/age?v=3&role=input&range=6h&refresh=0"
    open_page(page, stub_url, shared, "feature")
    assert page.evaluate("document.querySelector('button[data-range=\"6h\"]').getAttribute('aria-pressed')") == "true"
    assert page.evaluate("document.getElementById('refresh-every').value") == "0"
    assert page.evaluate("document.querySelector('main .page').dataset.feature") == "age"

    page.evaluate("document.querySelector('button[data-range=custom]').click()")
    page.wait_for("location.hash.includes('range=custom') && document.querySelector('form.custom-range')")
    page.evaluate(
        "const f = document.querySelector('form.custom-range');"
        "f.from.value = '2026-01-01T00:00'; f.to.value = '2026-01-02T00:00'; f.requestSubmit()"
    )
    page.wait_for("location.hash.includes('from=2026-01-01T00%3A00%3A00.000Z')")


def test_auto_refresh_and_pause(page: Page, stub_url: str) -> None:
    open_page(page, stub_url, "#/?refresh=1", "overview")
    page.wait_for("Number(document.body.dataset.renders) >= 3", timeout_s=6)
    page.evaluate("document.getElementById('pause').click()")
    page.wait_for("document.body.dataset.state === 'ready'")
    paused_at = page.evaluate("Number(document.body.dataset.renders)")
    page.evaluate("new Promise(r => setTimeout(r, 2200))")
    assert page.evaluate("Number(document.body.dataset.renders)") == paused_at
    assert "paused" in text(page, "#status")
    page.evaluate("document.getElementById('pause').click()")
    page.wait_for(f"Number(document.body.dataset.renders) > {paused_at}", timeout_s=4)


def test_an_unreachable_collector_keeps_the_last_answer(page: Page, tmp_path: Path) -> None:
    from tests.browser.server import serve
    from tests.browser.stub import stub_app

    with serve(stub_app(), lifespan="off") as url:
        open_page(page, url, "#/?refresh=0", "overview")
    page.evaluate("document.getElementById('refresh-now').click()")
    page.wait_for("document.body.dataset.state === 'stale'")
    assert "did not answer" in text(page, "#banner")
    assert count(page, "[data-table=models] tbody tr") == 3


def test_the_api_token_is_asked_once_and_kept(page: Page, token_stub_url: str) -> None:
    from tests.browser.conftest import TOKEN

    page.goto(f"{token_stub_url}/#/?refresh=0")
    page.evaluate("localStorage.clear()")
    page.goto(f"{token_stub_url}/#/?refresh=0")
    page.wait_for("document.body.dataset.state === 'auth'")
    assert count(page, "#token-form input[type=password]") == 1
    assert count(page, "[data-table=models]") == 0
    page.evaluate(
        f"const f = document.getElementById('token-form'); f.token.value = {json.dumps(TOKEN)}; f.requestSubmit()"
    )
    page.ready("overview")
    assert page.evaluate("localStorage.getItem('predwatch.token')") == TOKEN
    page.goto(f"{token_stub_url}/#/?refresh=0")
    page.ready("overview")  # no form the second time
    assert page.errors() == []

    page.evaluate("document.getElementById('forget-token').click()")
    page.wait_for("document.body.dataset.state === 'auth'")
    assert page.evaluate("localStorage.getItem('predwatch.token')") is None

    page.goto(f"{token_stub_url}/#/model/churn?v=3&refresh=0&token={TOKEN}")  # a link that carries the token
    page.ready("model")
    assert "token" not in page.evaluate("location.href")
    assert page.evaluate("localStorage.getItem('predwatch.token')") == TOKEN

    page.evaluate("localStorage.clear()")
    page.goto(f"{token_stub_url}/#token={TOKEN}")  # the link `predwatch collector` can print
    page.ready("overview")
    assert page.evaluate("location.hash") == "#/" and page.evaluate("localStorage.getItem('predwatch.token')") == TOKEN

    page.evaluate("localStorage.setItem('predwatch.token', 'wrong')")
    page.goto(f"{token_stub_url}/#/?refresh=0")
    page.wait_for("document.body.dataset.state === 'auth'")
    assert "refused" in text(page, "#token-form")
    page.evaluate("localStorage.clear()")
