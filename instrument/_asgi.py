"""`ASGIMiddleware`: a server span for every HTTP request, and each listed route's JSON exchange as predictions.

>>> app = Starlette(routes=[Route("/predict", predict, methods=["POST"])])
>>> app.add_middleware(instrument.ASGIMiddleware, model="churn", version="3", task="binary_classification")
>>> app = instrument.ASGIMiddleware(any_asgi_app, model="churn", routes=["/predict", "/v1/models/churn:predict"])

Non-HTTP scopes (lifespan, websocket) go straight to the application. The request body reaches the
application as sent and the response goes out as the application sends it; on a listed route the response's
`http.response.start` is held back until the first body message, to add the `x-prediction-id` header (see
`instrument._http` for how the ids are found). A response sent in several body messages (streaming) goes out
as it comes; the middleware then records it after its last message, and cannot put the ids in the header
unless the application called an `@instrument.monitor` function before it started the response. Place it inside
compression middleware (with Starlette: call `add_middleware` for it before GZipMiddleware), so that it sees
the JSON the application wrote.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.propagators.textmap import Getter

from instrument import _runtime
from instrument._context import ID_SINK
from instrument._guard import fault
from instrument._http import ID_HEADER, Exchange, HttpMonitor, Request
from instrument._http_extract import Extractor

__all__ = ["ASGIMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_ID_HEADER = ID_HEADER.encode("latin-1")


class _ScopeGetter(Getter[Scope]):
    """Propagation headers from an ASGI scope (names are lower-case bytes there)."""

    def get(self, carrier: Scope, key: str) -> list[str] | None:
        name = key.lower().encode("latin-1")
        values = [value.decode("latin-1") for k, value in carrier["headers"] if k == name]
        return values or None

    def keys(self, carrier: Scope) -> list[str]:
        return [k.decode("latin-1") for k, _ in carrier["headers"]]


_SCOPE_GETTER = _ScopeGetter()


def _with_ids(message: Message, value: str) -> Message:
    return {**message, "headers": [*message.get("headers", ()), (_ID_HEADER, value.encode("latin-1"))]}


class _Exchange(Exchange):
    """One request's exchange with the wrapped receive and send (set by the middleware once it is made)."""

    _receive: Receive
    _send: Send
    held: Message | None  # a response start waiting for the first body message

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request":
            self.add_request(message.get("body", b""), not message.get("more_body", False))
        return message

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.body":
            held = self.held
            if held is not None:
                self.held = None
                value = self.on_first_body(message.get("body", b""), not message.get("more_body", False))
                await self._send(_with_ids(held, value) if value else held)
            elif self.collecting:
                self.on_body(message.get("body", b""), not message.get("more_body", False))
            await self._send(message)
            return
        if kind == "http.response.start":
            # The size cap is checked on the body itself: reading Content-Length here would cost every request.
            hold, value = self.on_start(message["status"], None)
            if hold:
                self.held = message
                return
            if value:
                message = _with_ids(message, value)
        elif self.held is not None:  # a message other than a body (e.g. http.response.pathsend) ends the wait
            held, self.held = self.held, None
            await self._send(held)
        await self._send(message)

    async def send_status(self, message: Message) -> None:
        """send for a route that is only traced."""
        if message["type"] == "http.response.start":
            self.status = message["status"]
        await self._send(message)


class ASGIMiddleware:
    """Trace HTTP requests and record the JSON bodies of `routes` as predictions of `model`.

    `routes`: paths (exact match, without the app's root_path) or a function path -> bool. `extract`:
    `(request_json, response_json) -> (inputs, outputs)`, or None to record nothing, for bodies the default
    mapping does not read (see `instrument._http_extract`). Bodies over `max_body_bytes` and bodies that are
    not JSON are not recorded; they are counted in `predwatch.sdk.dropped`. The ids of a request's predictions
    go in the `x-prediction-id` response header, comma-separated (omitted, and counted, past
    `max_id_header_bytes`). `trace_all_routes=False` passes other routes through without a span. Other keyword
    arguments are those of `ModelMonitor` (task, features, outputs, classes, id_column, sample_rate, ...).
    """

    def __init__(
        self,
        app: ASGIApp,
        model: str,
        version: str = "",
        *,
        routes: Sequence[str] | Callable[[str], bool] = ("/predict",),
        extract: Extractor | None = None,
        max_body_bytes: int = 1 << 20,
        max_id_header_bytes: int = 4096,
        trace_all_routes: bool = True,
        **monitor_options: Any,
    ) -> None:
        self.app = app
        self.http = HttpMonitor(
            model,
            version,
            routes=routes,
            extract=extract,
            max_body_bytes=max_body_bytes,
            max_id_header_bytes=max_id_header_bytes,
            trace_all_routes=trace_all_routes,
            monitor_options=monitor_options,
        )
        self._named_routes = not callable(routes)

    def __repr__(self) -> str:
        return f"ASGIMiddleware({self.app!r}, {self.http.monitor!r})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        runtime = _runtime._RUNTIME or _runtime.current()
        if runtime is None:
            return await self.app(scope, receive, send)
        http = self.http
        exchange = None
        capture = False
        root = ""
        try:
            path = scope["path"]
            root = scope.get("root_path", "")
            route_path = path[len(root) :] if root and path.startswith(root) else path
            capture = http.listed(route_path)
            if capture or http.trace_all_routes:
                exchange = self._begin(runtime, scope, path, route_path, capture)
        except Exception as exc:
            fault("asgi.begin", exc)
        if exchange is None:
            return await self.app(scope, receive, send)

        exchange._receive, exchange._send, exchange.held = receive, send, None
        token = otel_context.attach(exchange.context)
        sink_token = ID_SINK.set(exchange.sink) if capture else None
        try:
            if capture:
                watched = type(exchange.request) is list  # else nothing to keep of the request's body
                await self.app(scope, exchange.receive if watched else receive, exchange.send)
                if exchange.held is not None:  # the application returned without a body message
                    held, exchange.held = exchange.held, None
                    await send(held)
            else:
                await self.app(scope, receive, exchange.send_status)
        except BaseException as exc:
            if exchange.held is not None:
                exchange.status = None  # the start was never sent: the server answers 500
            self._route(scope, root, exchange)
            exchange.end(exc)
            raise
        else:
            self._route(scope, root, exchange)
            exchange.end()
        finally:
            if sink_token is not None:
                ID_SINK.reset(sink_token)
            otel_context.detach(token)

    def _begin(
        self, runtime: _runtime.Runtime, scope: Scope, path: str, route_path: str, capture: bool
    ) -> _Exchange | None:
        headers = dict(scope["headers"])  # names are lower-case bytes in ASGI; the last of a repeated one wins
        raw_length = headers.get(b"content-length")
        length = int(raw_length) if raw_length is not None and raw_length.isdigit() else None
        carried = not headers.keys().isdisjoint(self.http.context_headers()[0])
        method = scope["method"]
        route = route_path if capture and self._named_routes else None

        def describe() -> Request:
            host, user_agent, client = headers.get(b"host"), headers.get(b"user-agent"), scope.get("client")
            return (
                method,
                scope.get("scheme", "http"),
                path,
                route,
                None if host is None else host.decode("latin-1"),
                scope.get("server"),
                client[0] if client else None,
                None if user_agent is None else user_agent.decode("latin-1"),
                scope.get("http_version"),
            )

        return self.http.begin(  # type: ignore[return-value]  # an _Exchange, as asked
            runtime, capture, method, route, describe, scope, _SCOPE_GETTER, length, carried, _Exchange
        )

    @staticmethod
    def _route(scope: Scope, root_path: str, exchange: Exchange) -> None:
        """http.route from the router, which leaves the matched route in the scope (Starlette, FastAPI); under a
        Mount the route's path is relative to the mount's, which the router adds to root_path."""
        span = exchange.span
        if span is None or not span.is_recording():
            return
        try:
            route = getattr(scope.get("route"), "path", None)
            if isinstance(route, str):
                mount = scope.get("root_path", "")[len(root_path) :]
                exchange.set_route(mount + route if mount else route)
        except Exception as exc:
            fault("asgi.route", exc)
