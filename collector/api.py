"""The JSON API under /api/v1 (DESIGN.md, "JSON API"): models, drift, reference, per-window series.

    GET  /api/v1/models                                        every model version seen, open windows included
    GET  /api/v1/models/{model}/drift?version=&start=&end=     per-column drift against the reference
    GET  /api/v1/models/{model}/timeseries?metric=&feature=&role=&version=&start=&end=&step=
    PUT  /api/v1/models/{model}/reference?version=             columnar JSON (see api_reference)
    POST /api/v1/models/{model}/reference/from-range?version=&start=&end=&source_version=
    GET  /api/v1/models/{model}/reference?version=             the stored reference profile
    GET  /api/v1/models/{model}/performance?version=&start=&end=&positive_label=&step=   (api_performance)
    GET  /api/v1/models/{model}/operations?version=&start=&end=&step=                    (api_operations)
    GET  /api/v1/models/{model}/compare?versions=A,B&start=&end=                         (api_compare)
    POST /api/v1/actuals                                       ground truth by prediction id (api_actuals)
    GET  /api/v1/status                                        ingest counters, open windows, label join

`version` defaults to the newest version seen (the one first seen most recently); the range to the last 24 h.
Beyond DESIGN.md the drift answer carries an overall `status` (the worst column's) and a `reference` summary
(source, rows, created_at), and every column object carries the extra rates of `drift.column_drift`.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from collector.api_actuals import post_actuals
from collector.api_common import endpoint, model_param, resolve_version, rfc3339, time_range
from collector.api_operations import operations
from collector.api_performance import performance
from collector.api_reference import get_reference, load_reference, put_reference, reference_from_range
from collector.api_timeseries import timeseries
from collector.drift import profile_drift
from collector.reference import ReferenceProfile
from collector.service import CollectorService

__all__ = ["api_routes", "drift_answer"]

_SEVERITY = {"ok": 0, "warning": 1, "drift": 2}


def api_routes(service: CollectorService) -> list[Route]:
    prefix = "/api/v1"
    model = prefix + "/models/{model:path}"
    from collector.api_compare import compare  # here: it imports drift_answer from this module

    return [
        Route(prefix + "/models", models(service), methods=["GET"]),
        Route(prefix + "/status", status(service), methods=["GET"]),
        Route(prefix + "/actuals", post_actuals(service), methods=["POST"]),
        Route(model + "/drift", drift(service), methods=["GET"]),
        Route(model + "/performance", performance(service), methods=["GET"]),
        Route(model + "/operations", operations(service), methods=["GET"]),
        Route(model + "/compare", compare(service), methods=["GET"]),
        Route(model + "/timeseries", timeseries(service), methods=["GET"]),
        Route(model + "/reference/from-range", reference_from_range(service), methods=["POST"]),
        Route(model + "/reference", put_reference(service), methods=["PUT"]),
        Route(model + "/reference", get_reference(service), methods=["GET"]),
    ]


@endpoint
def models(request: Request, service: CollectorService) -> list[dict[str, Any]]:
    return [
        {
            "model": m.model,
            "version": m.version,
            "rows": m.rows,
            "first_seen": rfc3339(m.first_seen),
            "last_seen": rfc3339(m.last_seen),
        }
        for m in service.models()
    ]


@endpoint
def status(request: Request, service: CollectorService) -> dict[str, Any]:
    return {"status": "ok", **service.health()}


@endpoint
def drift(request: Request, service: CollectorService) -> dict[str, Any]:
    model = model_param(request)
    query = request.query_params
    start, end = time_range(query)
    version, _ = resolve_version(service, model, query.get("version"))
    return drift_of(service, load_reference(service, model, version), start, end)


def drift_answer(
    service: CollectorService, model: str, version: str, start_s: float, end_s: float
) -> dict[str, Any] | None:
    """The answer of GET .../drift for [start_s, end_s) as a dict; None when the version has no reference (for
    in-process readers: alert rules, reports). Raises ValueError when the stored reference cannot be read."""
    reference = service.reference(model, version)
    return None if reference is None else drift_of(service, reference, start_s, end_s)


def drift_of(service: CollectorService, reference: ReferenceProfile, start_s: float, end_s: float) -> dict[str, Any]:
    wanted = [(column.role, column.name) for column in reference.columns]
    profile = service.read_profile(reference.model, reference.version, start_s, end_s, wanted)
    groups: dict[str, dict[str, Any]] = {"input": {}, "output": {}}
    for (role, name), column in profile.columns.items():
        groups[role][name] = column
    features = profile_drift(reference, groups["input"], groups["output"], service.settings.thresholds)
    worst = max((f["status"] for f in features), key=_SEVERITY.__getitem__, default="ok")
    return {
        "model": reference.model,
        "version": reference.version,
        "start": rfc3339(start_s),
        "end": rfc3339(end_s),
        "rows": profile.rows,
        "status": worst,
        "reference": {
            "source": reference.source,
            "rows": reference.rows,
            "created_at": rfc3339(reference.created_at),
        },
        "features": features,
    }
