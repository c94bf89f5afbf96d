"""Reading the dashboard's DOM from a test: the charts and tables carry data-* attributes for this."""

from __future__ import annotations

import json
import math
from typing import Any

from tests.browser.cdp import Page

RANK = {"ok": 0, "warning": 1, "drift": 2}


def open_page(page: Page, url: str, route: str, name: str) -> None:
    page.goto(f"{url}/{route}")
    page.ready(name)
    assert page.errors() == []
    outside = [u for u in page.requested() if not u.startswith(url) and not u.startswith("data:")]
    assert outside == [], "the dashboard must work offline: nothing but its collector"


def values(page: Page, selector: str, attribute: str) -> list[str]:
    return list(
        page.evaluate(f"[...document.querySelectorAll({json.dumps(selector)})].map(e => e.dataset.{attribute})")
    )


def count(page: Page, selector: str) -> int:
    return int(page.evaluate(f"document.querySelectorAll({json.dumps(selector)}).length"))


def text(page: Page, selector: str) -> str:
    return str(page.evaluate(f"document.querySelector({json.dumps(selector)})?.innerText ?? ''"))


def model_rows(page: Page) -> list[list[str]]:
    rows = "[...document.querySelectorAll('[data-table=models] tbody tr')]"
    return list(page.evaluate(rows + ".map(r => [r.dataset.model, r.dataset.version, r.dataset.drift])"))


def bar_values(page: Page, series: str) -> list[float]:
    bars = f"[...document.querySelectorAll('[data-chart=distribution] rect[data-series={series}]')]"
    return list(page.evaluate(bars + ".map(b => Number(b.dataset.value))"))


def columns_for(span_s: int, step_s: int) -> set[int]:
    """Buckets a range of `span_s` ending now covers: one more when it does not start on a bucket edge."""
    return {math.ceil(span_s / step_s), math.ceil(span_s / step_s) + 1}


def severity_order(features: list[dict[str, Any]]) -> list[str]:
    ordered = sorted(
        features, key=lambda f: (-RANK[f["status"]], -(f["psi"] if f["psi"] is not None else -1), f["name"])
    )
    return [f["name"] for f in ordered]
