"""GET /api/v1/models/{model}/operations: calls, errors, latency and resources of a model version (DESIGN.md).

    GET /api/v1/models/{model}/operations?version=&start=&end=&step=
    {"model", "version", "start", "end", ...collector.operations_metrics' keys, "series": [...]?}

The per-window operations states of the version (calls, from the SDK's metrics or its predict spans) and of
the processes (PROCESS_KEY: CPU, memory, IO) are read for [start, end), each window's processes attributed to
the instances that served the version in that window (`operations.attribute`), then merged; throughput is per
second of the range asked for (end - start). `step` (at least the window width) adds `series`: per step-wide
bucket holding data {"start", "end", "predictions", "calls", "errors", "error_rate", "throughput_per_s",
"latency_ms", "cpu_percent", "memory_bytes"}. `operations_answer` serves in-process readers too (alert rules).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from starlette.requests import Request

from collector.api_common import endpoint, model_param, resolve_version, rfc3339, time_range
from collector.api_performance import parse_step_param
from collector.operations import OperationsState, attribute
from collector.operations_ingest import PROCESS_KEY
from collector.operations_metrics import operations_metrics
from collector.service import CollectorService
from collector.state_kinds import OPERATIONS

__all__ = ["operations", "operations_answer"]

_SERIES = (
    *("predictions", "calls", "errors", "error_rate", "throughput_per_s", "latency_ms"),
    *("cpu_percent", "memory_bytes"),
)


def operations_answer(
    service: CollectorService, model: str, version: str, start_s: float, end_s: float, step_s: int | None = None
) -> dict[str, Any]:
    """The answer of GET .../operations as a dict."""
    windows = service.states.read(OPERATIONS, model, version, start_s, end_s)
    processes = dict(service.states.read(OPERATIONS, *PROCESS_KEY, start_s, end_s))
    attributed = [(start, attribute(calls, processes.get(start) or OperationsState.zero())) for start, calls in windows]
    answer: dict[str, Any] = {
        "model": model,
        "version": version,
        "start": rfc3339(start_s),
        "end": rfc3339(end_s),
        **operations_metrics(_merged(state for _, state in attributed), window_s=end_s - start_s),
    }
    if step_s is not None:
        by_bucket: dict[int, list[OperationsState]] = {}
        for start, state in attributed:
            by_bucket.setdefault(start // step_s * step_s, []).append(state)
        answer["series"] = []
        for bucket, states in sorted(by_bucket.items()):
            point = operations_metrics(_merged(states), window_s=step_s)
            answer["series"].append(
                {"start": rfc3339(bucket), "end": rfc3339(bucket + step_s), **{key: point[key] for key in _SERIES}}
            )
    return answer


def _merged(states: Iterable[OperationsState]) -> OperationsState:
    total = OperationsState.zero()
    for state in states:
        total.merge(state)
    return total


@endpoint
def operations(request: Request, service: CollectorService) -> dict[str, Any]:
    model = model_param(request)
    query = request.query_params
    start, end = time_range(query)
    version, _ = resolve_version(service, model, query.get("version"))
    return operations_answer(service, model, version, start, end, parse_step_param(request, service, start, end))
