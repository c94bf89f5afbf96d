"""GET /api/v1/models/{model}/timeseries: one metric per time bucket, for charts and heat maps.

    /timeseries?metric=psi&feature=income&start=2026-01-01T00:00:00Z&end=...&step=1h
    {"model", "version", "metric", "feature", "role", "start", "end", "step",
     "points": [{"start", "end", "rows", "count", "value", "status"?}, ...]}

Metrics: `rows` (model level, no feature); per column without a reference `count`, `missing_rate`,
`nan_rate`, `inf_rate`, `mean`, `std`, `min`, `max`; per column against the reference (409 without one)
`psi`, `js`, `ks`, `ks_p_value`, `wasserstein`, `chi2`, `chi2_p_value`, `out_of_range_rate`,
`new_category_rate`, `type_mismatch_rate` (these points carry the column's `status` too).

`step`: seconds or `30s`/`10m`/`1h`/`1d`, at least the window width; by default the smallest of the window
width and the store's rollup widths that gives at most 500 points. Buckets are aligned to the Unix epoch and a
window falls in the bucket of its start; only buckets holding data are listed. `role` (input|output) picks
between an input and an output of the same name; without it the input wins.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any, cast

from starlette.requests import Request

from collector.api_common import ApiError, endpoint, model_param, resolve_version, rfc3339, time_range
from collector.api_reference import load_reference
from collector.drift import column_drift
from collector.reference import Role
from collector.service import CollectorService
from collector.sketches import ColumnKey, ColumnSketch, Profile

__all__ = ["DEFAULT_POINTS", "MAX_POINTS", "METRICS", "timeseries"]

DEFAULT_POINTS = 500
MAX_POINTS = 5000
_STATS = ("count", "missing_rate", "nan_rate", "inf_rate", "mean", "std", "min", "max")
_DRIFT: dict[str, tuple[str, ...]] = {
    "psi": ("psi",),
    "js": ("js",),
    "ks": ("ks", "statistic"),
    "ks_p_value": ("ks", "p_value"),
    "wasserstein": ("wasserstein",),
    "chi2": ("chi2", "statistic"),
    "chi2_p_value": ("chi2", "p_value"),
    "out_of_range_rate": ("out_of_range_rate",),
    "new_category_rate": ("new_category_rate",),
    "type_mismatch_rate": ("type_mismatch_rate",),
}
METRICS = ("rows", *_STATS, *_DRIFT)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_STEP = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")


def parse_step(text: str, width_s: int) -> int:
    match = _STEP.match(text)
    if match is None:
        raise ApiError(400, f"step={text!r} is not a duration: use seconds or 30s, 10m, 1h, 1d")
    step = int(match.group(1)) * _UNITS[match.group(2) or "s"]
    if step < width_s:
        raise ApiError(400, f"step={text!r} is shorter than the {width_s}-s window: nothing finer is kept")
    return step


def _default_step(span_s: float, width_s: int, tiers: Sequence[int]) -> int:
    candidates = sorted({width_s, *(t for t in tiers if t > width_s)})
    return next((c for c in candidates if span_s / c <= DEFAULT_POINTS), candidates[-1])


@endpoint
def timeseries(request: Request, service: CollectorService) -> dict[str, Any]:
    model = model_param(request)
    query = request.query_params
    metric = query.get("metric") or ""
    if metric not in METRICS:
        raise ApiError(400, f"metric={metric!r} is not one of {', '.join(METRICS)}")
    feature = query.get("feature") or None
    role = query.get("role") or None
    if role not in (None, "input", "output"):
        raise ApiError(400, f"role={role!r}: use input or output")
    if metric != "rows" and feature is None:
        raise ApiError(400, f"metric={metric!r} is per column: name it with feature=")
    start, end = time_range(query)
    width = service.settings.window_s
    tiers: Sequence[int] = getattr(service.store, "tiers", ())
    step = parse_step(query["step"], width) if query.get("step") else _default_step(end - start, width, tiers)
    if (end - start) / step > MAX_POINTS:
        raise ApiError(400, f"{math.ceil((end - start) / step)} points is more than {MAX_POINTS}: use a larger step")
    version, _ = resolve_version(service, model, query.get("version"))

    reference = load_reference(service, model, version) if metric in _DRIFT else None
    roles = [role] if role else ["input", "output"]
    if reference is not None and feature is not None:
        roles = [r for r in roles if reference.column(cast(Role, r), feature) is not None]
        if not roles:
            raise ApiError(404, f"the reference of {model!r} version {version!r} has no column {feature!r}")
    keys: list[ColumnKey] = [(r, feature) for r in roles] if feature is not None else []
    buckets = _buckets(service, model, version, start, end, step, tiers, keys)
    if keys and not role:  # the input of that name, if the data has one
        present = [k for k in keys if any(k in profile.columns for _, profile in buckets)]
        keys = present[:1] or keys[:1]
    key = keys[0] if keys else None

    points = []
    for bucket, profile in buckets:
        point: dict[str, Any] = {"start": rfc3339(bucket), "end": rfc3339(bucket + step), "rows": profile.rows}
        if key is None:
            point["value"] = profile.rows
        else:
            column = profile.columns.get(key)
            point["count"] = profile.rows if column is None else column.count
            if reference is None:
                point["value"] = _stat(metric, column, profile.rows)
            else:
                ref_column = reference.column(cast(Role, key[0]), key[1])
                assert ref_column is not None
                answer = column_drift(ref_column, column, service.settings.thresholds)
                value: Any = answer
                for part in _DRIFT[metric]:
                    value = value.get(part) if isinstance(value, dict) else None
                point["value"] = value
                point["status"] = answer["status"]
        points.append(point)
    return {
        "model": model,
        "version": version,
        "metric": metric,
        "feature": feature,
        "role": None if key is None else key[0],
        "start": rfc3339(start),
        "end": rfc3339(end),
        "step": step,
        "points": points,
    }


def _buckets(
    service: CollectorService,
    model: str,
    version: str,
    start: float,
    end: float,
    step: int,
    tiers: Sequence[int],
    columns: list[ColumnKey],
) -> list[tuple[int, Profile]]:
    """Profiles per step-wide bucket, stored windows (or rollups that tile the step) and open ones merged."""
    tier = max((t for t in tiers if step % t == 0), default=None)
    wanted = columns or [("", "")]  # no column: read the row counts only

    def read() -> list[tuple[int, Profile]]:
        stored = service.store.window_profiles(model, version, start, end, wanted, step_s=tier)
        live = service.windows.snapshot_windows(model, version, start, end, wanted)
        merged: dict[int, Profile] = {}
        for window_start, profile in [*stored, *live]:
            bucket = window_start // step * step
            if bucket in merged:
                merged[bucket].merge(profile)
            else:
                merged[bucket] = profile
        return sorted(merged.items())

    return service.windows.consistently(read)


def _stat(metric: str, column: ColumnSketch | None, rows: int) -> float | int | None:
    if column is None:  # the column never arrived in this bucket: all its rows are missing
        return {"count": rows, "missing_rate": 1.0 if rows else None}.get(metric)
    count = column.count
    if metric == "count":
        return count
    if metric in ("missing_rate", "nan_rate", "inf_rate"):
        part = {"missing_rate": column.missing, "nan_rate": column.nan, "inf_rate": column.inf}[metric]
        return part / count if count else None
    value = {
        "mean": column.mean,
        "std": math.sqrt(column.variance) if column.n_numeric >= 2 else math.nan,
        "min": column.min,
        "max": column.max,
    }[metric]
    return value if math.isfinite(value) else None
