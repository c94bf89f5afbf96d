"""Reference endpoints: upload raw columns, take a production range, read the stored profile back.

    PUT  /api/v1/models/{model}/reference?version=V
         {"inputs": {col: [...]}, "outputs": {col: [...]}, "actuals": [...]?, "target": "churned"?,
          "kinds": {col: "numeric" | "categorical"}?}
    POST /api/v1/models/{model}/reference/from-range?version=V&start=&end=&source_version=
    GET  /api/v1/models/{model}/reference?version=V

The upload is checked before anything is built: a JSON object with only those keys; `inputs`/`outputs` map
non-empty names (at most 256 characters) to lists of scalars (number, string, bool, null), all of one
length, at least one row and one column; `actuals` a list of scalars of that length too. 400: not JSON;
413: above `max_reference_bytes` (also after gzip/deflate decompression); 415: not JSON content; 422: a JSON
value of the wrong shape, each message naming the column. Without `version` the newest version seen is meant.

PSI edges come from the raw values exactly (`reference_from_columns`). Actuals are kept as a summary of their
distribution under `ReferenceProfile.actuals` ({"name", "count", "column", "performance"?}); with outputs the
SDK's way (`label`/`score` or `prediction`) they also build the reference's performance state once, here
(collector.reference_performance), for GET .../performance to show beside production's. `task` (optional)
names the model's task when the collector has not seen it yet.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from functools import partial
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response

from collector.api_common import (
    ApiError,
    Endpoint,
    endpoint,
    json_response,
    model_param,
    parse_json_object,
    read_json_body,
    reference_help,
    resolve_version,
    rfc3339,
    time_range,
)
from collector.otlp_extract import MAX_NAME_LENGTH
from collector.reference import ReferenceProfile
from collector.reference_build import column_reference_from_values, reference_from_columns, reference_from_sketches
from collector.reference_performance import reference_performance
from collector.service import CollectorService
from collector.sketches import ColumnSketch
from collector.store import StoreError
from instrument import semconv

__all__ = ["get_reference", "load_reference", "parse_upload", "put_reference", "reference_from_range"]

_KEYS = frozenset(("inputs", "outputs", "actuals", "target", "kinds", "task"))
_SCALARS = frozenset((type(None), bool, int, float, str))
_KINDS = ("numeric", "categorical")


def load_reference(service: CollectorService, model: str, version: str) -> ReferenceProfile:
    """The stored reference, or 409 with how to set one."""
    try:
        profile = service.reference(model, version)
    except (ValueError, KeyError, TypeError) as exc:
        raise ApiError(500, f"the stored reference cannot be read ({exc}); upload it again") from exc
    if profile is None:
        message = f"model {model!r} version {version!r} has no reference yet"
        raise ApiError(409, message, **reference_help(model, version))
    return profile


@dataclasses.dataclass(slots=True)
class Upload:
    inputs: dict[str, list[Any]]
    outputs: dict[str, list[Any]]
    rows: int
    actuals: list[Any] | None = None
    target: str | None = None
    kinds: dict[str, Any] = dataclasses.field(default_factory=dict)
    task: str | None = None


def parse_upload(raw: bytes, max_columns: int) -> Upload:
    """The checked upload; ApiError 400 (not JSON) or 422 (wrong shape)."""
    data = parse_json_object(raw, _KEYS, '{"inputs": {"<column>": [...]}, "outputs": {...}}')
    inputs, outputs = _group(data, "inputs"), _group(data, "outputs")
    if not inputs and not outputs:
        raise ApiError(422, "the reference has no columns: give 'inputs' and/or 'outputs'")
    if len(inputs) + len(outputs) > max_columns:
        raise ApiError(422, f"{len(inputs) + len(outputs)} columns is more than the {max_columns} allowed")
    lengths = {
        (role, name): len(values)
        for role, group in (("input", inputs), ("output", outputs))
        for name, values in group.items()
    }
    rows = max(lengths.values())
    short = [f"{role} {name!r} has {n}" for (role, name), n in lengths.items() if n != rows]
    if short:
        raise ApiError(422, f"columns differ in length: {rows} rows, but " + ", ".join(short[:5]))
    if rows == 0:
        raise ApiError(422, "the reference has no rows")
    actuals = data.get("actuals")
    if actuals is not None:
        _check_values("actuals", actuals)
        if len(actuals) != rows:
            raise ApiError(422, f"'actuals' has {len(actuals)} values for {rows} rows")
    target = data.get("target")
    if target is not None and (not isinstance(target, str) or not target):
        raise ApiError(422, "'target' must be the name of the actuals column")
    kinds = data.get("kinds") or {}
    if not isinstance(kinds, dict) or any(kind not in _KINDS for kind in kinds.values()):
        raise ApiError(422, f"'kinds' must map column names to one of {list(_KINDS)}")
    missing = sorted(set(kinds) - set(inputs) - set(outputs))
    if missing:
        raise ApiError(422, f"'kinds' names columns that are not in the upload: {missing}")
    task = data.get("task")
    if task is not None and task not in semconv.TASKS:
        raise ApiError(422, f"'task' must be one of {list(semconv.TASKS)}")
    return Upload(inputs, outputs, rows, actuals, target, kinds, task)


def _group(data: dict[str, Any], key: str) -> dict[str, list[Any]]:
    group = data.get(key)
    if group is None:
        return {}
    if not isinstance(group, dict):
        raise ApiError(422, f"'{key}' must be an object of columns: {{\"<column>\": [values...]}}")
    for name, values in group.items():
        if not name or len(name) > MAX_NAME_LENGTH:
            raise ApiError(422, f"'{key}': column names must have 1 to {MAX_NAME_LENGTH} characters")
        _check_values(f"{key}.{name}", values)
    return group


def _check_values(where: str, values: Any) -> None:
    if not isinstance(values, list):
        raise ApiError(422, f"{where} must be a list of values, got {type(values).__name__}")
    bad = set(map(type, values)) - _SCALARS
    if bad:
        kinds = sorted("object" if t is dict else "array" if t is list else t.__name__ for t in bad)
        raise ApiError(
            422, f"{where} holds {' and '.join(kinds)} values; a column holds numbers, strings, booleans or null"
        )


def _summary(profile: ReferenceProfile) -> dict[str, Any]:
    return {
        "model": profile.model,
        "version": profile.version,
        "source": profile.source,
        "rows": profile.rows,
        "created_at": rfc3339(profile.created_at),
        "range": None if profile.range_s is None else [rfc3339(t) for t in profile.range_s],
        "columns": [{"name": c.name, "role": c.role, "kind": c.kind, "count": c.count} for c in profile.columns],
        "actuals": None if profile.actuals is None else _actuals_summary(profile.actuals),
    }


def _actuals_summary(actuals: Mapping[str, Any]) -> dict[str, Any]:
    """name and count; with the task when the reference's performance was built from them."""
    out = {"name": actuals.get("name"), "count": actuals.get("count")}
    performance = actuals.get("performance")
    if isinstance(performance, Mapping):
        out["task"] = performance.get("task")
    return out


def _store(service: CollectorService, profile: ReferenceProfile) -> dict[str, Any]:
    meta = {"source": profile.source, "rows": profile.rows, "columns": len(profile.columns)}
    service.store.put_reference(profile.model, profile.version, profile.to_bytes(), meta)
    return _summary(profile)


# -- PUT --------------------------------------------------------------------------------------------------------
def put_reference(service: CollectorService) -> Endpoint:
    limit = service.settings.max_reference_bytes

    async def put(request: Request) -> Response:
        try:
            raw = await _read_json_body(request, limit)
            return await anyio.to_thread.run_sync(partial(_put, service, request, raw))
        except ApiError as exc:
            return json_response(exc.body, exc.status)
        except StoreError as exc:
            return json_response({"error": f"the store could not save the reference: {exc}"}, 500)

    return put


async def _read_json_body(request: Request, limit: int) -> bytes:
    return await read_json_body(request, limit, "max_reference_bytes")


def _put(service: CollectorService, request: Request, raw: bytes) -> Response:
    model = model_param(request)
    upload = parse_upload(raw, service.settings.sketch.max_columns)
    version = request.query_params.get("version") or None
    if version is None:
        versions = service.versions(model)
        if not versions:
            raise ApiError(
                400,
                f"no data seen for model {model!r} yet, so there is no newest version to attach the reference to:"
                " pass ?version= (predwatch reference set ... --version V)",
            )
        version = versions[0].version
    elif len(version) > MAX_NAME_LENGTH:
        raise ApiError(400, f"version must have at most {MAX_NAME_LENGTH} characters")
    try:
        profile = reference_from_columns(
            model,
            version,
            upload.inputs,
            upload.outputs,
            kinds=upload.kinds,
            max_string_len=service.settings.sketch.max_string_len,
        )
    except ValueError as exc:
        raise ApiError(422, f"cannot build a reference from these columns: {exc}") from None
    if upload.actuals is not None:
        name = upload.target or "actuals"
        column = column_reference_from_values(name, "output", upload.actuals)
        summary = {"name": name, "count": len(upload.actuals), "column": column.to_dict()}
        task = upload.task or service.labels.tasks(model).get(version)
        performance = reference_performance(upload.outputs, upload.actuals, task)
        if performance is not None:
            summary["performance"] = performance
        profile = dataclasses.replace(profile, actuals=summary)
    return json_response(_store(service, profile))


# -- POST from-range --------------------------------------------------------------------------------------------
@endpoint
def reference_from_range(request: Request, service: CollectorService) -> dict[str, Any]:
    model = model_param(request)
    query = request.query_params
    start, end = time_range(query)
    version, _ = resolve_version(service, model, query.get("version"))
    source = query.get("source_version") or version
    if source != version:
        source, _ = resolve_version(service, model, source)
    profile = service.read_profile(model, source, start, end)
    if profile.rows == 0:
        raise ApiError(
            422, f"model {model!r} version {source!r} has no rows between {rfc3339(start)} and {rfc3339(end)}"
        )
    groups: dict[str, dict[str, ColumnSketch]] = {"input": {}, "output": {}}
    for (role, name), column in profile.columns.items():
        groups[role][name] = column
    reference = reference_from_sketches(model, version, groups["input"], groups["output"], range_s=(start, end))
    return _store(service, reference)


# -- GET --------------------------------------------------------------------------------------------------------
@endpoint
def get_reference(request: Request, service: CollectorService) -> dict[str, Any]:
    model = model_param(request)
    version, _ = resolve_version(service, model, request.query_params.get("version"))
    profile = load_reference(service, model, version)
    return {**_summary(profile), "profile": _finite(profile.to_dict())}


def _finite(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
