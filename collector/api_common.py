"""What every JSON API endpoint shares: errors as JSON, query parameters, times, model and version lookup.

    @endpoint
    def drift(request: Request, service: CollectorService) -> dict[str, Any]:   # runs in a worker thread
        start_s, end_s = time_range(request.query_params)                        # ApiError(400) if malformed
        ...

Errors are `{"error": "<what went wrong and how to fix it>", ...}` with the status of the ApiError raised:
400 malformed request (bad query parameter, undecodable JSON), 404 unknown model or version, 409 a state that
the caller can change (no reference yet), 413 body too large, 415 unsupported content type, 422 well-formed
JSON of the wrong shape. Times in answers are RFC 3339 UTC strings.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import quote

import anyio.to_thread
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from collector.otlp_decode import OtlpError, check_encoding, decompress
from collector.service import CollectorService
from collector.store import ModelInfo, StoreError

__all__ = [
    "DAY_S",
    "ApiError",
    "Endpoint",
    "endpoint",
    "json_response",
    "model_param",
    "parse_time",
    "read_json_body",
    "reference_help",
    "resolve_version",
    "rfc3339",
    "time_range",
]

logger = logging.getLogger(__name__)

DAY_S = 86_400.0
Endpoint = Callable[[Request], Awaitable[Response]]


class ApiError(Exception):
    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": message, **extra}


def json_response(content: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    body = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def endpoint(
    work: Callable[[Request, CollectorService], Any],
) -> Callable[[CollectorService], Endpoint]:
    """Make an endpoint of `work(request, service)`, run in a worker thread (store reads block); its result is
    the JSON answer, an ApiError the error answer, a StoreError a 500 that says the store failed."""

    def bind(service: CollectorService) -> Endpoint:
        async def handle(request: Request) -> Response:
            return await anyio.to_thread.run_sync(partial(_run, work, request, service))

        handle.__name__ = work.__name__
        return handle

    return bind


def _run(work: Callable[[Request, CollectorService], Any], request: Request, service: CollectorService) -> Response:
    try:
        return json_response(work(request, service))
    except ApiError as exc:
        return json_response(exc.body, exc.status)
    except StoreError as exc:
        logger.error("store error answering %s: %s", request.url.path, exc)
        return json_response({"error": f"the store could not answer: {exc}"}, 500)


async def read_json_body(request: Request, limit: int, limit_name: str) -> bytes:
    """The request body, decompressed (gzip, deflate): 415 unless JSON content, 413 past `limit` bytes (named
    `limit_name` in the message) before or after decompression, 400 for a broken body or a client gone."""
    media = request.headers.get("content-type", "application/json").partition(";")[0].strip().lower()
    if media not in ("application/json", "text/json", "") and not media.endswith("+json"):
        raise ApiError(415, f"send the body as application/json, not {media!r}")
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise ApiError(413, f"the body of {length} bytes is above the {limit}-byte limit ({limit_name})")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError(413, f"the body is above the {limit}-byte limit ({limit_name})")
            chunks.append(chunk)
    except ClientDisconnect:
        raise ApiError(400, "the client went away before sending the whole body") from None
    try:
        encoding = check_encoding(request.headers.get("content-encoding"))
        return decompress(b"".join(chunks), encoding, limit)
    except OtlpError as exc:
        hint = f" ({limit_name})" if exc.status == 413 else ""
        raise ApiError(exc.status, f"{exc}{hint}") from None


# -- parameters -------------------------------------------------------------------------------------------------
def parse_time(text: str, name: str) -> float:
    """RFC 3339 (`2026-01-01T12:00:00Z`, `...+02:00`) or Unix seconds (`1767225600`, `1767225600.5`)."""
    value = text.strip()
    try:
        seconds = float(value)
    except ValueError:
        seconds = _rfc3339_seconds(value, text, name)
    if not math.isfinite(seconds) or abs(seconds) > 1e11:
        raise ApiError(400, f"{name}={text!r} is out of range")
    return seconds


def _rfc3339_seconds(value: str, text: str, name: str) -> float:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ApiError(
            400, f"{name}={text!r} is not a time: use RFC 3339 (2026-01-01T12:00:00Z) or Unix seconds"
        ) from None
    if parsed.tzinfo is None:
        raise ApiError(400, f"{name}={text!r} has no time zone: add Z (UTC) or an offset such as +02:00")
    return parsed.timestamp()


def time_range(
    query: Mapping[str, str], default_span_s: float = DAY_S, now: float | None = None
) -> tuple[float, float]:
    """[start, end) from `start`/`end`; end defaults to now, start to end minus `default_span_s`."""
    end = parse_time(query["end"], "end") if query.get("end") else (time.time() if now is None else now)
    start = parse_time(query["start"], "start") if query.get("start") else end - default_span_s
    if start >= end:
        raise ApiError(400, f"start ({rfc3339(start)}) must be before end ({rfc3339(end)})")
    return start, end


def rfc3339(seconds: float) -> str:
    moment = datetime.fromtimestamp(seconds, UTC)
    text = moment.isoformat(timespec="milliseconds" if moment.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def model_param(request: Request) -> str:
    model = str(request.path_params["model"])
    if not model:
        raise ApiError(404, "no model named ''")
    return model


def resolve_version(service: CollectorService, model: str, version: str | None) -> tuple[str, list[ModelInfo]]:
    """The version asked for, else the newest seen; 404 for a model never seen (and for an unknown version,
    unless it has a reference: a version may be given its reference before its first prediction)."""
    versions = service.versions(model)
    if version is None or version == "":
        if not versions:
            raise ApiError(404, f"no data seen for model {model!r}; is the SDK sending to this collector?")
        return versions[0].version, versions
    if not any(v.version == version for v in versions) and service.store.get_reference(model, version) is None:
        if not versions:
            raise ApiError(404, f"no data seen for model {model!r}; is the SDK sending to this collector?")
        known = ", ".join(repr(v.version) for v in versions)
        raise ApiError(404, f"model {model!r} has no version {version!r}; versions seen: {known}")
    return version, versions


def reference_help(model: str, version: str) -> dict[str, Any]:
    """How to set a reference, for 409 answers."""
    url = f"/api/v1/models/{quote(model, safe='')}/reference?version={quote(version, safe='')}"
    return {
        "how_to_fix": "upload the training (reference) data, or use a production time range as the reference",
        "put_url": url,
        "put_body": {"inputs": {"<feature>": ["..."]}, "outputs": {"<column>": ["..."]}, "actuals": ["..."]},
        "from_range_url": f"/api/v1/models/{quote(model, safe='')}/reference/from-range"
        f"?version={quote(version, safe='')}&start=<time>&end=<time>",
        "cli": f"predwatch reference set {_shell(model)} FILE --version {_shell(version)}",
    }


def _shell(word: str) -> str:
    safe = word and all(c.isalnum() or c in "-_.:/" for c in word)
    return word if safe else "'" + word.replace("'", "'\\''") + "'"


def parse_json_object(raw: bytes, keys: frozenset[str] | set[str], shape: str) -> dict[str, Any]:
    """A JSON object body holding only `keys`; ApiError 400 (not JSON) or 422 (not an object, unknown keys).
    `shape` shows the expected body in the message."""
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise ApiError(400, "the body is not valid JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise ApiError(422, f"the body must be a JSON object: {shape}")
    unknown = sorted(set(data) - set(keys))
    if unknown:
        raise ApiError(422, f"unknown keys {unknown}; the body holds {sorted(keys)}")
    return data
