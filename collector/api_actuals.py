"""POST /api/v1/actuals: ground truth for earlier predictions, joined by prediction id (collector.labels).

    POST /api/v1/actuals  {"model": "churn", "version": "3"?, "ids": ["a1", "a2"], "actuals": [1, 0]}
    200 {"model", "version", "accepted", "matched", "pending", "duplicates", "conflicts", "pairs"}

accepted = matched (labeled a held prediction now) + pending (held until its prediction arrives) + duplicates
+ conflicts (see collector.labels for the rules; pairs may exceed matched when an actual without a version
labels several versions). `predwatch.actuals` log events over OTLP go through the same checks and join.

A request is checked whole before anything is stored, and joined in one transaction: all or nothing.
400 not JSON; 413 above the OTLP body limit (max_body_bytes); 415 not JSON content; 404 a model (or version)
this collector has never seen; 422 anything else: unknown keys, a model or version that is not a name, ids that
are not strings of 1 to 256 characters, ids and actuals of different lengths, more than `MAX_ROWS` rows, an
actual that is null, NaN or not a scalar, or one of the wrong type for the model's task (a string for a
regression model, 0.5 for a classifier).
"""

from __future__ import annotations

import json
import time
from functools import partial
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response

from collector.api_common import ApiError, Endpoint, json_response, parse_json_object, read_json_body, resolve_version
from collector.label_store import MAX_ID_LENGTH
from collector.otlp_extract import MAX_NAME_LENGTH
from collector.records import ActualsBatch
from collector.service import CollectorService
from collector.store import StoreError

__all__ = ["MAX_ROWS", "parse_actuals", "post_actuals"]

MAX_ROWS = 100_000
_KEYS = frozenset(("model", "version", "ids", "actuals"))


def parse_actuals(raw: bytes, now_s: float) -> ActualsBatch:
    """The request as an ActualsBatch; ApiError 400 (not JSON) or 422 (wrong shape). Values are checked against
    the model's task later, once the model is known (`LabelJoin.problem`)."""
    data = parse_json_object(raw, _KEYS, '{"model": "...", "ids": [...], "actuals": [...]}')
    model, version = data.get("model"), data.get("version")
    if not isinstance(model, str) or not 0 < len(model) <= MAX_NAME_LENGTH:
        raise ApiError(422, f"'model' must name the model (1 to {MAX_NAME_LENGTH} characters)")
    if version is not None and (not isinstance(version, str) or len(version) > MAX_NAME_LENGTH):
        raise ApiError(422, f"'version' must be a string of at most {MAX_NAME_LENGTH} characters, or left out")
    ids, actuals = data.get("ids"), data.get("actuals")
    if not isinstance(ids, list) or not isinstance(actuals, list):
        raise ApiError(422, "'ids' and 'actuals' must be lists of the same length")
    if len(ids) != len(actuals):
        raise ApiError(422, f"'ids' has {len(ids)} values but 'actuals' has {len(actuals)}: one actual per id")
    if len(ids) > MAX_ROWS:
        raise ApiError(422, f"{len(ids)} rows is more than {MAX_ROWS:,} in one request: send them in parts")
    for i, pid in enumerate(ids):
        if not isinstance(pid, str) or not 0 < len(pid) <= MAX_ID_LENGTH:
            shown = json.dumps(pid)[:40]
            raise ApiError(422, f"ids[{i}] is {shown}: prediction ids are strings of 1 to {MAX_ID_LENGTH} characters")
    return ActualsBatch(model=model, version=version, time_s=now_s, ids=ids, actuals=actuals)


def post_actuals(service: CollectorService) -> Endpoint:
    limit = service.settings.max_body_bytes

    async def post(request: Request) -> Response:
        try:
            raw = await read_json_body(request, limit, "max_body_bytes")
            return await anyio.to_thread.run_sync(partial(_post, service, raw))
        except ApiError as exc:
            return json_response(exc.body, exc.status)
        except StoreError as exc:
            return json_response({"error": f"the store could not take the actuals: {exc}"}, 500)

    return post


def _post(service: CollectorService, raw: bytes) -> Response:
    batch = parse_actuals(raw, time.time())
    if not service.versions(batch.model):  # a typo in the model's name must not vanish into pending actuals
        raise ApiError(
            404,
            f"no data seen for model {batch.model!r} yet: its actuals are taken once its first predictions have "
            "arrived (the SDK sends them within seconds: retry then); actuals for ids not seen yet of a known model "
            "are held until their predictions arrive",
        )
    resolve_version(service, batch.model, batch.version)  # 404 for a version never seen
    problem = service.labels.problem(batch)
    if problem is not None:
        raise ApiError(422, problem)
    outcome = service.labels.add_actuals(batch)
    answer: dict[str, Any] = {"model": batch.model, "version": batch.version, **outcome.as_dict()}
    return json_response(answer)
