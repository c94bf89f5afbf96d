"""GET /api/v1/models/{model}/compare: two versions of one model side by side (A/B tests, shadow deployments).

    GET /api/v1/models/{model}/compare?versions=A,B&start=&end=&positive_label=
    GET /api/v1/models/{model}/compare?champion=A&challenger=B&start=&end=
    {"model", "start", "end", "champion", "challenger",
     "versions": [{"version", "role", "drift": {...} | null, "performance": {...}, "operations": {...}}, ...],
     "difference": {"performance": {metric: challenger - champion}, "operations": {...}, "drift": {...}}}

Each version's drift, performance and operations are exactly the answers of GET .../drift, .../performance
and .../operations for the same range (drift is null for a version without a reference; the `notes` list
says so). `difference` holds challenger minus champion for every scalar both have: accuracy, precision,
recall, f1 (binary), auc_roc, gini, ks, log_loss, brier, rmse, mae, mape, r2, mean_error; predictions,
error_rate, throughput_per_s, latency p50/p90/p95/p99 (ms); drifting features and the largest PSI.
404 for a version this collector has not seen; 400 unless exactly two different versions are named.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from collector.api import drift_answer
from collector.api_common import ApiError, endpoint, model_param, resolve_version, rfc3339, time_range
from collector.api_operations import operations_answer
from collector.api_performance import performance_answer
from collector.service import CollectorService

__all__ = ["compare", "compare_answer"]

_PERFORMANCE = (
    *("accuracy", "precision", "recall", "f1", "auc_roc", "gini", "ks", "log_loss", "brier"),
    *("rmse", "mae", "mape", "r2", "mean_error"),
)


def compare_answer(
    service: CollectorService,
    model: str,
    champion: str,
    challenger: str,
    start_s: float,
    end_s: float,
    positive_label: str | None = None,
) -> dict[str, Any]:
    versions, notes = [], []
    for version, role in ((champion, "champion"), (challenger, "challenger")):
        try:
            drift = drift_answer(service, model, version, start_s, end_s)
        except ValueError as exc:
            drift, reason = None, f"its stored reference cannot be read ({exc})"
        else:
            reason = "it has no reference yet"
        if drift is None:
            notes.append(f"no drift for version {version!r}: {reason}")
        versions.append(
            {
                "version": version,
                "role": role,
                "drift": drift,
                "performance": performance_answer(service, model, version, start_s, end_s, positive_label),
                "operations": operations_answer(service, model, version, start_s, end_s),
            }
        )
    answer: dict[str, Any] = {
        "model": model,
        "start": rfc3339(start_s),
        "end": rfc3339(end_s),
        "champion": champion,
        "challenger": challenger,
        "versions": versions,
        "difference": _difference(versions[0], versions[1]),
    }
    if notes:
        answer["notes"] = notes
    return answer


def _difference(a: dict[str, Any], b: dict[str, Any]) -> dict[str, dict[str, float]]:
    def pick(side: dict[str, Any]) -> dict[str, dict[str, Any]]:
        metrics = side["performance"]["metrics"] or {}
        ops = side["operations"]
        drift = side["drift"]
        return {
            "performance": {key: metrics.get(key) for key in _PERFORMANCE},
            "operations": {
                "predictions": ops["predictions"],
                "error_rate": ops["error_rate"],
                "throughput_per_s": ops["throughput_per_s"],
                **{f"latency_{q}_ms": ops["latency_ms"][q] for q in ("p50", "p90", "p95", "p99")},
            },
            "drift": {}
            if drift is None
            else {
                "drifting_features": sum(f["status"] == "drift" for f in drift["features"]),
                "max_psi": max((f["psi"] for f in drift["features"] if f.get("psi") is not None), default=None),
            },
        }

    first, second = pick(a), pick(b)
    return {
        group: {
            key: second[group][key] - value
            for key, value in values.items()
            if _number(value) and _number(second[group].get(key))
        }
        for group, values in first.items()
    }


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@endpoint
def compare(request: Request, service: CollectorService) -> dict[str, Any]:
    model = model_param(request)
    query = request.query_params
    if query.get("versions"):
        named = [v.strip() for v in query["versions"].split(",")]
    else:
        named = [query.get("champion") or "", query.get("challenger") or ""]
    if len(named) != 2 or not all(named) or named[0] == named[1]:
        raise ApiError(400, "name two different versions: ?versions=A,B or ?champion=A&challenger=B")
    start, end = time_range(query)
    champion, _ = resolve_version(service, model, named[0])
    challenger, _ = resolve_version(service, model, named[1])
    return compare_answer(service, model, champion, challenger, start, end, query.get("positive_label"))
