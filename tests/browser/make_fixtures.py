"""Write tests/browser/fixtures/*.json, the answers the stub collector serves, with the collector's own code.

    .venv/bin/python -m tests.browser.make_fixtures

Drift and distribution answers come from the real endpoints over a real CollectorService (SQLite in a
temporary folder) fed with drifting rows; performance metrics from `classification_metrics` over labelled
rows; alerts from `Alert.to_json`. Operations follow `collector.operations_metrics`' documented keys (its
state needs OTLP metric points; the live browser test covers the real pipeline). The stub moves every time to
"now" when it serves them, so the fixtures do not age.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from starlette.applications import Starlette

from collector.alerts import Alert
from collector.api import api_routes
from collector.api_distribution import distribution_routes
from collector.performance_classification import ClassificationState, classification_metrics
from collector.records import InferenceBatch
from collector.reference_build import reference_from_columns
from collector.service import CollectorService
from collector.settings import Address, CollectorSettings
from collector.store_sqlite import SQLiteStore
from tests.browser.server import serve

FIXTURES = Path(__file__).parent / "fixtures"
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z: the recorded "now"
INPUTS = ("age", "income", "tenure_months", "num_products", "plan", "region")


def population(rng: np.random.Generator, n: int, shift: float) -> dict[str, list[Any]]:
    plans = ["basic", "pro", "team", "enterprise", "trial"]
    p_plan = np.array([0.55, 0.3, 0.1, 0.05, 0.0]) * (1 - shift) + np.array([0.25, 0.25, 0.15, 0.15, 0.2]) * shift
    regions = ["eu", "us", "apac", "latam"]
    plan: list[Any] = rng.choice(plans, n, p=p_plan / p_plan.sum()).tolist()
    for i in range(0, n, 25):
        plan[i] = None
    age = rng.normal(40 + 9 * shift, 10, n)
    income = rng.lognormal(10 + 0.2 * shift, 0.5, n)
    tenure = rng.poisson(24 - 3 * shift, n)
    products = rng.integers(1, 5, n)
    score = 1 / (1 + np.exp(-((age - 40) / 12 + (np.log(income) - 10) - tenure / 30)))
    return {
        "age": age.tolist(),
        "income": income.tolist(),
        "tenure_months": tenure.tolist(),
        "num_products": products.tolist(),
        "plan": plan,
        "region": rng.choice(regions, n, p=[0.4, 0.35, 0.2, 0.05]).tolist(),
        "score": score.tolist(),
        "label": (score >= 0.5).astype(int).tolist(),
    }


def batch(version: str, t: float, rows: dict[str, list[Any]]) -> InferenceBatch:
    n = len(rows["age"])
    return InferenceBatch(
        "churn",
        version,
        t,
        [f"{version}-{t}-{i}" for i in range(n)],
        {name: rows[name] for name in INPUTS},
        {"score": rows["score"], "label": rows["label"]},
    )


def performance(rng: np.random.Generator, n: int, noise: float, reference: bool) -> dict[str, Any]:
    score = rng.uniform(size=n)
    actual = (rng.uniform(size=n) < np.clip(score + rng.normal(0, noise, n), 0, 1)).astype(int)
    state = ClassificationState.zero("binary_classification")
    state.update(actual.tolist(), labels=(score >= 0.5).astype(int).tolist(), scores=score.tolist())
    metrics = classification_metrics(state)
    return metrics if reference else {"task": "binary_classification", "labeled": n, "metrics": metrics}


def alerts() -> dict[str, Any]:
    def alert(**fields: Any) -> Alert:
        return Alert(model="churn", version="3", op=">", threshold=0.25, window_start=T0 - 3600, **fields)

    firing = alert(
        id="a1",
        rule="age drift",
        feature="age",
        metric="psi",
        severity="critical",
        state="firing",
        value=0.41,
        window_end=T0 - 3000,
        started_at=T0 - 3500,
        updated_at=T0 - 60,
        fired_at=T0 - 3300,
    )
    resolved = alert(
        id="a2",
        rule="plan drift",
        feature="plan",
        metric="psi",
        severity="warning",
        state="resolved",
        value=0.12,
        window_end=T0 - 80000,
        started_at=T0 - 86000,
        updated_at=T0 - 70000,
        fired_at=T0 - 85000,
        resolved_at=T0 - 70000,
    )
    return {"alerts": [firing.to_json(), resolved.to_json()]}


def operations(scale: float) -> dict[str, Any]:
    def figures(predictions: int, p95: float) -> dict[str, Any]:
        calls = predictions // 4
        return {
            "predictions": predictions,
            "calls": calls,
            "errors": int(calls * 0.004),
            "error_rows": int(predictions * 0.004),
            "error_rate": 0.004,
            "errors_by_type": {"ValueError": int(calls * 0.004)},
            "throughput_per_s": predictions / 86400,
            "calls_per_s": calls / 86400,
            "latency_ms": {"p50": p95 / 3, "p90": p95 * 0.8, "p95": p95, "p99": p95 * 1.9, "mean": p95 / 2.5},
            "batch_size": {"mean": 4.0, "p50": 4.0, "p99": 16.0, "max": 32},
            "cpu_percent": 23.5 * scale,
            "cpu_percent_max": 61.0 * scale,
            "memory_bytes": 412_000_000 * scale,
            "memory_bytes_max": 455_000_000 * scale,
            "memory_bytes_last": 430_000_000 * scale,
            "source": "metrics",
        }

    instances = [
        {
            "service.instance.id": f"churn-api-{i}",
            "service.name": "churn-api",
            "host.name": f"node-{i}",
            "process.pid": 4100 + i,
        }
        | figures(int(60_000 * scale), 8.5 + i)
        for i in range(3)
    ]
    total = figures(int(180_000 * scale), 9.5)
    return total | {"instances": instances, "dropped": {}}


def main() -> None:
    rng = np.random.default_rng(7)
    FIXTURES.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        settings = CollectorSettings(http=Address("127.0.0.1", 0), grpc=None, store=f"sqlite:///{tmp}/f.db")
        store = SQLiteStore(f"{tmp}/f.db")
        service = CollectorService(store, settings, clock=lambda: T0)
        reference = population(rng, 5000, 0.0)
        for version, shift in (("3", 1.0), ("4", 0.1)):
            profile = reference_from_columns(
                "churn",
                version,
                {name: reference[name] for name in INPUTS},
                {"score": reference["score"], "label": reference["label"]},
            )
            store.put_reference("churn", version, profile.to_bytes(), {"source": "upload", "rows": 5000})
            for hour in range(24):
                service.windows.add(batch(version, T0 - 86400 + hour * 3600 + 30, population(rng, 400, shift)))
        app = Starlette(routes=[*distribution_routes(service), *api_routes(service)])
        window = {"start": str(T0 - 86400), "end": str(T0)}
        with serve(app, lifespan="off") as url, httpx.Client(base_url=url) as http:
            answers: dict[str, Any] = {"models": http.get("/api/v1/models").json()}
            for version in ("3", "4"):
                answers[f"drift_churn_{version}"] = http.get(
                    "/api/v1/models/churn/drift", params={"version": version, **window}
                ).json()
            for feature in ("age", "plan", "tenure_months"):
                answers[f"distribution_churn_3_{feature}"] = http.get(
                    "/api/v1/models/churn/distribution", params={"version": "3", "feature": feature, **window}
                ).json()
        store.close()
    answers["models"].append(
        {
            "model": "fraud",
            "version": "1",
            "rows": 1200,
            "first_seen": "2025-12-31T20:00:00Z",
            "last_seen": "2026-01-01T00:00:00Z",
        }
    )
    answers["performance_churn_3"] = performance(rng, 4000, 0.35, False) | {
        "reference": performance(rng, 4000, 0.15, True)
    }
    answers["performance_churn_4"] = performance(rng, 1500, 0.2, False)
    answers["operations_churn_3"] = operations(1.0)
    answers["operations_churn_4"] = operations(0.3)
    answers["alerts"] = alerts()
    for name, answer in answers.items():
        (FIXTURES / f"{name}.json").write_text(json.dumps(answer, indent=1) + "\n")
        print(f"wrote {name}.json")


if __name__ == "__main__":
    main()
