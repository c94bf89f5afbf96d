"""OTLP/HTTP receiver: Starlette routes for POST /v1/traces, /v1/logs and /v1/metrics.

    routes = otlp_routes(ingestor, ReceiverSettings(ingest_tokens=("s3cret",)))
    app = Starlette(routes=[*routes, ...])

Answers, in the order they are checked:

    401  ingest token configured and `authorization: Bearer ...` missing or wrong (WWW-Authenticate)
    415  content type other than protobuf/JSON, or a content encoding other than gzip/deflate/identity
    413  Content-Length, the body read, or the decompressed body above `max_body_bytes`
    503  queue full (checked before the body is read, and again on submit), with Retry-After
    400  undecodable body (bad protobuf, JSON, compressed stream, or a client that went away)
    200  an Export*ServiceResponse in the request's format; partial_success names rejected records

Error bodies are google.rpc.Status messages in the request's format (plain text for 415). Decoding and
extraction run in a worker thread (`decode_threads` at a time): they are CPU-bound, and this port also serves
the API, the dashboard and /healthz, which must not stall behind a 64 MiB body.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial

import anyio
import anyio.to_thread
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from collector.auth import BearerAuth, challenge
from collector.ingest import Ingestor, Overloaded, ReceiverSettings
from collector.otlp_decode import (
    DecodeError,
    Format,
    OtlpError,
    Signal,
    TooLarge,
    UnsupportedMediaType,
    check_encoding,
    decode_request,
    decompress,
    encode_response,
    encode_status,
    parse_content_type,
)
from collector.otlp_extract import NOUNS, Extracted, extract

__all__ = ["otlp_routes"]

# google.rpc.Code numbers for the Status bodies of error answers.
_GRPC_CODES = {400: 3, 401: 16, 413: 8, 503: 14}
_INVALID_REASONS = {400: "decode", 413: "too_large", 415: "unsupported_media_type"}


def otlp_routes(ingestor: Ingestor, settings: ReceiverSettings | None = None) -> list[Route]:
    """The three OTLP/HTTP routes, feeding `ingestor`."""
    receiver = _Receiver(ingestor, settings or ReceiverSettings())
    return [
        Route("/v1/traces", receiver.endpoint("traces"), methods=["POST"], name="otlp_traces"),
        Route("/v1/logs", receiver.endpoint("logs"), methods=["POST"], name="otlp_logs"),
        Route("/v1/metrics", receiver.endpoint("metrics"), methods=["POST"], name="otlp_metrics"),
    ]


class _Receiver:
    def __init__(self, ingestor: Ingestor, settings: ReceiverSettings) -> None:
        self._ingestor = ingestor
        self._max_bytes = settings.max_body_bytes
        self._auth = BearerAuth(settings.ingest_tokens)
        self._limiter = anyio.CapacityLimiter(settings.decode_threads)

    def endpoint(self, signal: Signal) -> Callable[[Request], Awaitable[Response]]:
        async def export(request: Request) -> Response:
            return await self._export(signal, request)

        export.__name__ = f"export_{signal}"
        return export

    async def _export(self, signal: Signal, request: Request) -> Response:
        headers = request.headers
        authorization = headers.get("authorization")
        if not self._auth.check(authorization):
            self._ingestor.count_invalid("unauthenticated")
            fmt_401 = _format_or_none(headers.get("content-type")) or Format.PROTOBUF
            return _error(fmt_401, 401, "missing or invalid bearer token", auth=authorization is not None)
        try:
            fmt = parse_content_type(headers.get("content-type"))
            encoding = check_encoding(headers.get("content-encoding"))
        except UnsupportedMediaType as exc:
            self._ingestor.count_invalid("unsupported_media_type")
            return PlainTextResponse(str(exc), status_code=415)
        try:
            _check_length(headers.get("content-length"), self._max_bytes)
            self._ingestor.check_capacity()
            body = await _read_body(request, self._max_bytes)
            result, size = await anyio.to_thread.run_sync(
                partial(self._decode, signal, body, fmt, encoding), limiter=self._limiter
            )
            self._ingestor.submit(
                result.records, size_bytes=size, rejected=result.rejected, rows=result.rows, values=result.values
            )
        except Overloaded as exc:
            return _error(fmt, 503, str(exc), headers={"Retry-After": exc.retry_after_header})
        except OtlpError as exc:
            self._ingestor.count_invalid(_INVALID_REASONS.get(exc.status, "decode"))
            return _error(fmt, exc.status, str(exc))
        content = encode_response(signal, fmt, result.rejected_count, result.error_message(NOUNS[signal]))
        return Response(content, media_type=fmt.media_type)

    def _decode(self, signal: Signal, body: bytes, fmt: Format, encoding: str | None) -> tuple[Extracted, int]:
        data = decompress(body, encoding, self._max_bytes)
        return extract(signal, decode_request(signal, data, fmt, max_bytes=self._max_bytes)), len(data)


def _format_or_none(content_type: str | None) -> Format | None:
    try:
        return parse_content_type(content_type)
    except UnsupportedMediaType:
        return None


def _check_length(header: str | None, max_bytes: int) -> None:
    if header is None:
        return  # chunked: _read_body enforces the cap as it reads
    try:
        length = int(header)
    except ValueError:
        raise DecodeError(f"invalid Content-Length {header[:32]!r}") from None
    if length > max_bytes:
        raise TooLarge(f"body of {length} bytes is above the {max_bytes}-byte limit")


async def _read_body(request: Request, max_bytes: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_bytes:
                raise TooLarge(f"body is above the {max_bytes}-byte limit")
            chunks.append(chunk)
    except ClientDisconnect:
        raise DecodeError("client disconnected before sending the whole body") from None
    return b"".join(chunks)


def _error(
    fmt: Format, status: int, message: str, *, auth: bool = False, headers: dict[str, str] | None = None
) -> Response:
    headers = dict(headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = challenge(invalid_token=auth)
    content = encode_status(fmt, _GRPC_CODES.get(status, 3), message)
    return Response(content, status_code=status, media_type=fmt.media_type, headers=headers)
