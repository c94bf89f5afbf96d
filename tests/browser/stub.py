"""A stub collector for the browser tests: the real dashboard routes, and the JSON API answered from fixtures.

It serves every endpoint the dashboard reads, including those the collector does not have yet (performance,
operations and alerts land with issues 4 and 6), so each chart can be checked. Answers are the fixtures
(`make_fixtures.py` writes them with the collector's own code) with their times moved to now; per-bucket
series are made up, deterministically: drift grows over the last day, accuracy falls, latency follows a
daily wave. With `token`, /api/* answers 401 without `Authorization: Bearer <token>`, as the collector does,
and the page and its assets stay public (DESIGN: the dashboard behind the API token).

    .venv/bin/python -m tests.browser.stub 8000      # look at it in a browser: http://127.0.0.1:8000/
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from collector.api_common import reference_help, rfc3339
from collector.dashboard import dashboard_routes
from collector.settings import Address, CollectorSettings

FIXTURES = Path(__file__).parent / "fixtures"
DAY = 86_400.0
RATE_METRICS = ("accuracy", "precision", "recall", "f1", "auc_roc", "gini")
Handler = Callable[[Request], Any]


@cache
def fixture(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def fresh(name: str) -> Any:
    return json.loads(json.dumps(fixture(name)))


class Missing(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status, self.body = status, body


def models(now: float) -> list[dict[str, Any]]:
    seen = {("churn", "3"): (8 * DAY, 20), ("churn", "4"): (2 * DAY, 35), ("fraud", "1"): (4 * 3600, 400)}
    answer: list[dict[str, Any]] = fresh("models")
    for m in answer:
        first, last = seen[(m["model"], m["version"])]
        m["first_seen"], m["last_seen"] = rfc3339(now - first), rfc3339(now - last)
    return answer


def span(request: Request, now: float) -> tuple[float, float]:
    q = request.query_params
    end = _time(q.get("end"), now)
    return _time(q.get("start"), end - DAY), end


def _time(text: str | None, default: float) -> float:
    if not text:
        return default
    try:
        return float(text)
    except ValueError:
        return datetime.fromisoformat(text).timestamp()


def version_of(request: Request, now: float) -> tuple[str, str]:
    model = request.path_params["model"]
    versions = [m for m in models(now) if m["model"] == model]
    if not versions:
        raise Missing(404, {"error": f"no data seen for model {model!r}; is the SDK sending to this collector?"})
    newest = max(versions, key=lambda m: m["first_seen"])["version"]
    version = request.query_params.get("version") or newest
    if version not in {m["version"] for m in versions}:
        raise Missing(404, {"error": f"model {model!r} has no version {version!r}"})
    return model, version


def progress(t: float, now: float) -> float:
    """0 a day ago (and before), 1 now: how far the drift has gone."""
    return min(max(1 - (now - t) / DAY, 0.0), 1.0)


def drift(request: Request, now: float) -> dict[str, Any]:
    model, version = version_of(request, now)
    if model == "fraud":
        raise Missing(
            409,
            {"error": f"model {model!r} version {version!r} has no reference yet", **reference_help(model, version)},
        )
    answer: dict[str, Any] = fresh(f"drift_churn_{version}")
    start, end = span(request, now)
    answer |= {"start": rfc3339(start), "end": rfc3339(end)}
    answer["reference"]["created_at"] = rfc3339(now - 9 * DAY)
    return answer


def timeseries(request: Request, now: float) -> dict[str, Any]:
    model, version = version_of(request, now)
    q = request.query_params
    metric, feature = q.get("metric", ""), q.get("feature")
    step = int(q.get("step") or 3600)
    start, end = span(request, now)
    first_seen = now - {("churn", "3"): 8 * DAY, ("churn", "4"): 2 * DAY}.get((model, version), 4 * 3600)
    features = {} if model == "fraud" else {f["name"]: f for f in fixture(f"drift_churn_{version}")["features"]}
    if metric in ("psi", "out_of_range_rate", "new_category_rate") and model == "fraud":
        raise Missing(409, {"error": "no reference yet", **reference_help(model, version)})
    column = features.get(feature or "", {})
    points = []
    bucket = math.floor(start / step) * step
    while bucket < end:
        if bucket + step > first_seen:
            p = progress(bucket + step / 2, now)
            wave = math.sin(bucket / DAY * 2 * math.pi)
            rows = int(400 * step / 3600 * (1 + 0.35 * wave))
            value: float | None = {
                "rows": rows,
                "count": rows,
                "psi": (column.get("psi") or 0.0) * (0.1 + 0.9 * p**1.5) * (1 + 0.08 * math.sin(bucket / 7000)),
                "missing_rate": (column.get("missing_rate") or 0.0) + 0.002 * (1 + wave),
                "out_of_range_rate": (column.get("out_of_range_rate") or 0.0) * p,
                "new_category_rate": (column.get("new_category_rate") or 0.0) * p,
                "type_mismatch_rate": 0.0,
                "mean": 40 + 9 * p + wave,
            }.get(metric)
            point: dict[str, Any] = {
                "start": rfc3339(bucket),
                "end": rfc3339(bucket + step),
                "rows": rows,
                "value": value,
            }
            if feature:
                point["count"] = rows
            if metric == "psi" and value is not None:
                point["status"] = "drift" if value > 0.25 else "warning" if value >= 0.1 else "ok"
            points.append(point)
        bucket += step
    return {
        "model": model,
        "version": version,
        "metric": metric,
        "feature": feature,
        "role": column.get("role"),
        "start": rfc3339(start),
        "end": rfc3339(end),
        "step": step,
        "points": points,
    }


def performance(request: Request, now: float) -> dict[str, Any]:
    model, version = version_of(request, now)
    if model == "fraud":
        return {
            "model": model,
            "version": version,
            "task": "binary_classification",
            "labeled": 0,
            "metrics": {"count": 0},
        }
    answer: dict[str, Any] = fresh(f"performance_churn_{version}")
    start, end = span(request, now)
    if end - start < DAY / 2:  # one slice of a chart: accuracy and friends fall as the drift grows
        drop = 0.12 * progress((start + end) / 2, now)
        for key in RATE_METRICS:
            if isinstance(answer["metrics"].get(key), float):
                answer["metrics"][key] -= drop
    return {"model": model, "version": version, **answer}


def operations(request: Request, now: float) -> dict[str, Any]:
    model, version = version_of(request, now)
    if model == "fraud":
        return {
            "predictions": 0,
            "calls": 0,
            "errors": 0,
            "error_rate": None,
            "throughput_per_s": 0.0,
            "latency_ms": {"p50": None, "p90": None, "p95": None, "p99": None},
            "cpu_percent": None,
            "memory_bytes": None,
            "instances": [],
        }
    answer: dict[str, Any] = fresh(f"operations_churn_{version}")
    start, end = span(request, now)
    wave = 1 + 0.4 * math.sin((start + end) / 2 / DAY * 2 * math.pi)
    answer["latency_ms"] = {key: value * wave for key, value in answer["latency_ms"].items()}
    answer["cpu_percent"] *= wave
    answer["predictions"] = int(answer["predictions"] * (end - start) / DAY * wave)
    return answer


def alerts(request: Request, now: float) -> dict[str, Any]:
    answer: dict[str, Any] = fresh("alerts")
    shift = now - 1_767_225_600.0
    for alert in answer["alerts"]:
        for key in ("started_at", "fired_at", "resolved_at", "updated_at"):
            if alert.get(key):
                alert[key] = rfc3339(_time(alert[key], 0) + shift)
    return answer


def distribution(request: Request, now: float) -> dict[str, Any]:
    model, version = version_of(request, now)
    feature = request.query_params.get("feature", "")
    path = FIXTURES / f"distribution_{model}_{version}_{feature}.json"
    if model == "fraud":
        raise Missing(409, {"error": "no reference yet", **reference_help(model, version)})
    if not path.exists():
        raise Missing(404, {"error": f"the stub has no distribution of {feature!r}"})
    answer: dict[str, Any] = fresh(path.stem)
    return answer


def endpoint(work: Callable[[Request, float], Any]) -> Callable[[Request], Any]:
    async def handle(request: Request) -> Response:
        try:
            return JSONResponse(work(request, time.time()))
        except Missing as exc:
            return JSONResponse(exc.body, exc.status)

    return handle


class StubTokenGuard:
    """401 for /api/* without the token; the dashboard's own paths stay open, as DESIGN proposes."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app, self.token = app, token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.token and scope["path"].startswith("/api/"):
            sent = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
            if sent != f"Bearer {self.token}":
                response = JSONResponse({"error": "missing or invalid API token"}, 401, {"WWW-Authenticate": "Bearer"})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def stub_app(token: str | None = None, window_s: int = 60) -> Starlette:
    settings = CollectorSettings(
        http=Address("127.0.0.1", 0), grpc=None, window_s=window_s, api_tokens=(token,) if token else ()
    )
    model = "/api/v1/models/{model:path}"
    routes = [
        *dashboard_routes(settings),
        Route("/api/v1/models", endpoint(lambda request, now: models(now))),
        Route(model + "/drift", endpoint(drift)),
        Route(model + "/timeseries", endpoint(timeseries)),
        Route(model + "/performance", endpoint(performance)),
        Route(model + "/operations", endpoint(operations)),
        Route(model + "/distribution", endpoint(distribution)),
        Route("/api/v1/alerts", endpoint(alerts)),
    ]
    app = Starlette(routes=routes)
    app.add_middleware(StubTokenGuard, token=token)
    return app


if __name__ == "__main__":  # pragma: no cover - for looking at the pages by hand
    import uvicorn

    uvicorn.run(stub_app(), host="127.0.0.1", port=int(sys.argv[1]) if len(sys.argv) > 1 else 8000)
