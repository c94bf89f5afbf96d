"""GET /api/v1/models/{model}/distribution: one column's reference and current distributions, for the dashboard.

    /distribution?feature=income&role=input&version=3&start=...&end=...&bins=30
    {"model", "version", "feature", "role", "kind", "start", "end", "psi", "status",
     "reference": {"count", "missing_rate", "n", "min", "max", "mean", "std"},
     "current":   {"count", "missing_rate", "n", "min", "max", "mean", "std"},
     numeric:     "histogram": {"edges": [e0, ..., eK], "reference": [K shares], "current": [K shares],
                                "below": {"reference", "current"}, "above": {"reference", "current"}},
                  "psi_bins": {"edges": [interior edges], "reference": [...], "current": [...]},
                  "quantiles": {"p": [0.01, ...], "reference": [...], "current": [...]}
     categorical: "categories": [{"name", "reference", "current", "new"}], "other": {"reference", "current"}}

Shares are of the column's values of its kind (finite numbers; strings and bools), so each side sums to 1;
`missing_rate` is of every value and `n` counts the values of the kind. `histogram` has `bins` (default 30)
equal, round-width bins over the 0.5 %..99.5 % quantiles of both sides together, so one outlier does not
flatten the plot; the mass outside is in `below`/`above`. Bin i is `edges[i] <= x < edges[i+1]`; for
integer-valued columns the width is whole and edges fall halfway between integers. `psi_bins` are the bins
PSI compared (DESIGN.md: reference deciles, open ends). Reference shares come from the profile's equal-mass
quantile atoms (off by at most 1/1000 each), current ones from the window sketches (KLL rank error).
Categorical: the reference's kept categories (most frequent first), then up to `MAX_NEW_CATEGORIES` new ones
(`new`: true, reference 0); `other` holds everything else. A side without values has null shares.

Errors as the other endpoints: 400 without `feature` or with a bad `role`/`bins`, 404 unknown model or a column
the reference lacks, 409 without a reference (with how to set one).
"""

from __future__ import annotations

import math
from typing import Any, cast

import numpy as np
from datasketches import frequent_items_error_type
from starlette.requests import Request
from starlette.routing import Route

from collector.api_common import ApiError, endpoint, model_param, resolve_version, rfc3339, time_range
from collector.api_reference import load_reference
from collector.drift import MAX_NEW_CATEGORIES, column_drift
from collector.reference import ColumnReference, NumericSummary, Role
from collector.service import CollectorService
from collector.sketches import ColumnSketch

__all__ = ["QUANTILES", "distribution_routes", "histogram_edges"]

QUANTILES = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)
DEFAULT_BINS = 30
MAX_BINS = 200
_TAIL = 0.005  # the plotted range leaves this share out on each side


def distribution_routes(service: CollectorService) -> list[Route]:
    path = "/api/v1/models/{model:path}/distribution"
    return [Route(path, distribution(service), methods=["GET"])]


@endpoint
def distribution(request: Request, service: CollectorService) -> dict[str, Any]:
    model = model_param(request)
    query = request.query_params
    feature = query.get("feature") or ""
    if not feature:
        raise ApiError(400, "name the column with feature=")
    role = query.get("role") or None
    if role not in (None, "input", "output"):
        raise ApiError(400, f"role={role!r}: use input or output")
    bins_text = query.get("bins") or str(DEFAULT_BINS)
    if not bins_text.isdigit() or not 1 <= int(bins_text) <= MAX_BINS:
        raise ApiError(400, f"bins={bins_text!r}: use a whole number from 1 to {MAX_BINS}")
    start, end = time_range(query)
    version, _ = resolve_version(service, model, query.get("version"))
    reference = load_reference(service, model, version)
    roles = [role] if role else ["input", "output"]
    ref = next((c for r in roles if (c := reference.column(cast(Role, r), feature)) is not None), None)
    if ref is None:
        raise ApiError(404, f"the reference of {model!r} version {version!r} has no column {feature!r}")
    profile = service.read_profile(model, version, start, end, [(ref.role, ref.name)])
    cur = profile.columns.get((ref.role, ref.name))
    drift = column_drift(ref, cur, service.settings.thresholds)
    answer: dict[str, Any] = {
        "model": model,
        "version": version,
        "feature": ref.name,
        "role": ref.role,
        "kind": ref.kind,
        "start": rfc3339(start),
        "end": rfc3339(end),
        "psi": drift["psi"],
        "status": drift["status"],
        "reference": _reference_stats(ref),
        "current": _current_stats(ref, cur),
    }
    if ref.kind == "numeric" and ref.numeric is not None:
        answer |= _numeric(ref.numeric, cur, int(bins_text))
    elif ref.kind == "categorical" and ref.categorical is not None:
        answer |= _categorical(ref, cur)
    return answer


# -- summaries --------------------------------------------------------------------------------------------------
def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _reference_stats(ref: ColumnReference) -> dict[str, Any]:
    stats: dict[str, Any] = {"count": ref.count, "missing_rate": ref.missing_rate, "n": 0}
    stats |= {"min": None, "max": None, "mean": None, "std": None}
    if ref.numeric is not None:
        s = ref.numeric
        stats |= {"n": s.n, "min": s.min, "max": s.max, "mean": s.mean, "std": s.std}
    elif ref.categorical is not None:
        stats["n"] = ref.categorical.n
    return stats


def _current_stats(ref: ColumnReference, cur: ColumnSketch | None) -> dict[str, Any]:
    count = 0 if cur is None else cur.count
    stats: dict[str, Any] = {"count": count, "missing_rate": cur.missing / count if cur and count else None, "n": 0}
    stats |= {"min": None, "max": None, "mean": None, "std": None}
    if cur is None:
        return stats
    if ref.kind == "numeric":
        n = cur.n_numeric
        std = math.sqrt(cur.m2 / n) if n else math.nan  # population std, as the reference's
        stats |= {"n": n, "min": _finite(cur.min), "max": _finite(cur.max), "mean": _finite(cur.mean)}
        stats["std"] = _finite(std)
    elif ref.kind == "categorical":
        stats["n"] = 0 if cur.items.is_empty() else int(cur.items.total_weight)
    return stats


# -- numeric ----------------------------------------------------------------------------------------------------
def histogram_edges(lo: float, hi: float, bins: int, integers: bool = False) -> list[float]:
    """About `bins` equal bins of a round width (1, 2 or 5 x 10^k) covering [lo, hi]; the last edge is above hi.

    With `integers`, the width is whole and the edges sit halfway between integers, one bar per value when
    the range is narrow. A single value (lo == hi) gets one bin around it."""
    span = hi - lo
    if not span > 0:
        half = 0.5 if integers or lo == 0 else abs(lo) * 0.05
        return [lo - half, hi + half]
    raw = span / bins
    power = 10.0 ** math.floor(math.log10(raw))
    width = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    if integers:
        width = max(1.0, float(round(width)))
        first = math.floor(lo) - 0.5
    else:
        first = math.floor(lo / width) * width
    count = max(1, math.floor((hi - first) / width) + 1)
    return [float(f"{first + i * width:.12g}") for i in range(count + 1)]  # 0.3, not 0.30000000000000004


def _atom_quantile(summary: NumericSummary, p: float) -> float:
    """Quantile p of the reference: atom j stands at rank (j + 0.5) / m, ends clamped to min and max."""
    atoms = np.asarray(summary.quantiles)
    ranks = (np.arange(atoms.size) + 0.5) / atoms.size
    grid = np.concatenate(([0.0], ranks, [1.0]))
    values = np.concatenate(([summary.min], atoms, [summary.max]))
    return float(np.interp(p, grid, values))


def _atom_shares(summary: NumericSummary, edges: list[float]) -> list[float]:
    """Shares of the reference below edges[0], in each bin, and at or above edges[-1] (len(edges) + 1)."""
    atoms = np.asarray(summary.quantiles)
    cumulative = np.searchsorted(atoms, np.asarray(edges), side="left") / atoms.size
    return [float(x) for x in np.diff(np.concatenate(([0.0], cumulative, [1.0])))]


def _numeric(summary: NumericSummary, cur: ColumnSketch | None, bins: int) -> dict[str, Any]:
    has_current = cur is not None and not cur.kll.is_empty()
    lows, highs = [_atom_quantile(summary, _TAIL)], [_atom_quantile(summary, 1 - _TAIL)]
    if cur is not None and has_current:
        low, high = cur.kll.get_quantiles([_TAIL, 1 - _TAIL])
        lows.append(float(low))
        highs.append(float(high))
    integral = all(float(q).is_integer() for q in (*summary.quantiles, summary.min, summary.max))
    if cur is not None and has_current:
        integral = integral and float(cur.min).is_integer() and float(cur.max).is_integer()
    edges = histogram_edges(min(lows), max(highs), bins, integers=integral)
    reference = _atom_shares(summary, edges)
    current: list[float] | None = None
    if cur is not None and has_current:
        current = [float(x) for x in cur.kll.get_pmf(edges, False)]
    psi_current = None if cur is None or not has_current else cur.kll.get_pmf(list(summary.edges), False)
    quantiles = None if cur is None or not has_current else cur.kll.get_quantiles(list(QUANTILES))
    return {
        "histogram": {
            "edges": edges,
            "reference": reference[1:-1],
            "current": None if current is None else current[1:-1],
            "below": {"reference": reference[0], "current": None if current is None else current[0]},
            "above": {"reference": reference[-1], "current": None if current is None else current[-1]},
        },
        "psi_bins": {
            "edges": list(summary.edges),
            "reference": list(summary.proportions),
            "current": None if psi_current is None else [float(x) for x in psi_current],
        },
        "quantiles": {
            "p": list(QUANTILES),
            "reference": [_atom_quantile(summary, p) for p in QUANTILES],
            "current": None if quantiles is None else [float(x) for x in quantiles],
        },
    }


# -- categorical ------------------------------------------------------------------------------------------------
def _categorical(ref: ColumnReference, cur: ColumnSketch | None) -> dict[str, Any]:
    summary = ref.categorical
    assert summary is not None
    items = None if cur is None or cur.items.is_empty() else cur.items
    n = 0 if items is None else int(items.total_weight)
    rows: list[dict[str, Any]] = []
    seen = 0.0
    for name, count in zip(summary.categories, summary.counts, strict=True):
        estimate = 0.0 if items is None else float(items.get_estimate(name))
        seen += estimate
        rows.append({"name": name, "reference": count / summary.n, "current": estimate / n if n else None})
    known = set(summary.categories)
    if items is not None:
        frequent = items.get_frequent_items(frequent_items_error_type.NO_FALSE_POSITIVES)
        for item in [row for row in frequent if row[0] not in known][:MAX_NEW_CATEGORIES]:
            seen += float(item[1])
            rows.append({"name": str(item[0]), "reference": 0.0, "current": float(item[1]) / n, "new": True})
    for row in rows:
        row.setdefault("new", False)
    # Frequent-items estimates may overshoot in estimation mode: "other" never goes below 0.
    other_current = max(n - seen, 0.0) / n if n else None
    return {"categories": rows, "other": {"reference": summary.other / summary.n, "current": other_current}}
