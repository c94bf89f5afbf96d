"""`WSGIMiddleware`: a server span for every HTTP request, and each listed route's JSON exchange as predictions.

>>> app = Flask(__name__)
>>> app.wsgi_app = instrument.WSGIMiddleware(app.wsgi_app, model="churn", version="3", task="binary_classification")

The application reads `wsgi.input` through a thin proxy that hands the same bytes to the middleware. On a
listed route the middleware calls the server's `start_response` when the first body chunk is ready rather than
when the application calls it (servers send nothing before that chunk anyway), so it can add the
`x-prediction-id` header. A body is complete in that first chunk when the application returned a list, or a
`Content-Length` the chunk matches (Flask's `jsonify`); otherwise the response streams through and is recorded
after its last chunk, without ids in the header unless an `@instrument.monitor` function ran before
`start_response`. The server span ends when the server closes the response iterable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from opentelemetry import context as otel_context
from opentelemetry.propagators.textmap import Getter

from instrument import _runtime
from instrument._context import ID_SINK
from instrument._guard import fault
from instrument._http import ID_HEADER, Exchange, HttpMonitor, Request
from instrument._http_extract import Extractor

__all__ = ["WSGIMiddleware"]

ExcInfo = tuple[type[BaseException], BaseException, TracebackType] | tuple[None, None, None] | None
Write = Callable[[bytes], object]


class _EnvironGetter(Getter[WSGIEnvironment]):
    def get(self, carrier: WSGIEnvironment, key: str) -> list[str] | None:
        value = carrier.get("HTTP_" + key.upper().replace("-", "_"))
        return [value] if value is not None else None

    def keys(self, carrier: WSGIEnvironment) -> list[str]:
        return [k[5:].lower().replace("_", "-") for k in carrier if k.startswith("HTTP_")]


_GETTER = _EnvironGetter()


def _length(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


class _Input:
    """`wsgi.input` as the application sees it: the same stream, whose bytes also go to the exchange."""

    __slots__ = ("_exchange", "_length", "_read", "_stream")

    def __init__(self, stream: Any, exchange: Exchange, length: int | None) -> None:
        self._stream = stream
        self._exchange = exchange
        self._length = length
        self._read = 0

    def _seen(self, data: bytes, done: bool) -> bytes:
        self._read += len(data)
        length = self._length
        self._exchange.add_request(data, done or (length is not None and self._read >= length))
        return data

    def read(self, *args: Any) -> bytes:
        data = self._stream.read(*args)
        size = args[0] if args else -1
        return self._seen(data, size is None or size < 0 or (not data and size != 0))

    def readline(self, *args: Any) -> bytes:
        data = self._stream.readline(*args)
        return self._seen(data, not data and (not args or args[0] != 0))

    def readlines(self, *args: Any) -> list[bytes]:
        lines = self._stream.readlines(*args)
        for line in lines:
            self._seen(line, False)
        self._seen(b"", not args)
        return lines  # type: ignore[no-any-return]

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def __iter__(self) -> Iterator[bytes]:
        for line in self._stream:
            yield self._seen(line, False)
        self._seen(b"", True)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class _Call:
    """The wrapped start_response of one request."""

    __slots__ = ("_start_response", "exchange", "held", "server_write")

    def __init__(self, exchange: Exchange, start_response: StartResponse) -> None:
        self.exchange = exchange
        self._start_response = start_response
        self.held: tuple[str, list[tuple[str, str]], ExcInfo] | None = None
        self.server_write: Write | None = None  # set once the server's start_response was called

    def start_response(self, status: str, headers: list[tuple[str, str]], exc_info: ExcInfo = None) -> Write:
        exchange = self.exchange
        code = int(status[:3]) if status[:3].isdigit() else 500
        if exchange.sink is None or self.server_write is not None:  # a traced route, or a start already sent
            exchange.status = code
            self.server_write = self._start_response(status, headers, exc_info)
            return self.server_write
        hold, value = exchange.on_start(code, None)  # the size cap is checked on the body itself
        if hold:
            self.held = (status, headers, exc_info)
            return self.write
        self.held = None
        return self.send_start(status, headers, exc_info, value)

    def send_start(self, status: str, headers: list[tuple[str, str]], exc_info: ExcInfo, value: str | None) -> Write:
        if value:
            headers = [*headers, (ID_HEADER, value)]
        self.server_write = self._start_response(status, headers, exc_info)
        return self.server_write

    def write(self, data: bytes) -> None:
        """The legacy write() of an application whose start is held: the start goes out first, as it is."""
        held, self.held = self.held, None
        if held is not None:
            self.send_start(*held, None)
        assert self.server_write is not None
        self.server_write(data)


def _content_length(headers: list[tuple[str, str]]) -> int | None:
    try:
        for name, value in headers:
            if name.lower() == "content-length":
                return _length(value)
    except Exception as exc:
        fault("wsgi.headers", exc)
    return None


class _Body:
    """The response iterable. Iterating it sends a held start with the first chunk and runs the application's
    generator (if it is one) in the request's context; the server span ends at close()."""

    __slots__ = ("call", "closed", "error", "result")

    def __init__(self, call: _Call, result: Iterable[bytes]) -> None:
        self.call = call
        self.result = result
        self.error: BaseException | None = None
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        call = self.call
        exchange = call.exchange
        sink = exchange.sink
        token = otel_context.attach(exchange.context)
        sink_token = ID_SINK.set(sink) if sink is not None else None
        try:
            chunks: Iterable[bytes] = self.result
            if sink is not None and call.server_write is None:
                first, chunks = self._start(call, chunks)
                yield from first
            if exchange.collecting:
                for chunk in chunks:
                    exchange.on_body(chunk, False)
                    yield chunk
                exchange.on_body(b"", True)
            else:
                yield from chunks
        except GeneratorExit:
            raise
        except BaseException as exc:
            if call.server_write is None:
                exchange.status = None  # nothing was sent: the server answers 500
            self.error = exc
            raise
        finally:
            try:
                if sink_token is not None:
                    ID_SINK.reset(sink_token)
            except ValueError:  # an abandoned iterator, collected in another context
                pass
            otel_context.detach(token)

    @staticmethod
    def _start(call: _Call, result: Iterable[bytes]) -> tuple[Iterable[bytes], Iterable[bytes]]:
        """Take the first chunk (a generator application calls start_response then) and send a held start with
        it. Returns (chunks to send now, chunks still to come)."""
        whole = type(result) is list or type(result) is tuple
        if whole:
            first: Sequence[bytes] = result  # type: ignore[assignment]
            rest: Iterable[bytes] = ()
        else:
            rest = iter(result)
            chunk = next(rest, None)
            first = () if chunk is None else (chunk,)
        held = call.held
        if held is None:
            return first, rest  # sent already (or never started: the server will say so)
        status, headers, exc_info = held
        exchange = call.exchange
        body: bytes | None
        if whole:
            size = sum(map(len, first))
            body = b"".join(first) if size <= exchange.owner.max_body_bytes else None
            complete = True
        else:
            body = first[0] if first else b""
            length = _content_length(headers)
            complete = not first or (length is not None and len(body) == length)
        value = exchange.on_first_body(body, complete)
        call.held = None
        call.send_start(status, headers, exc_info, value)
        return first, rest

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        error = self.error
        try:
            close = getattr(self.result, "close", None)
            if close is not None:
                close()
        except BaseException as exc:
            error = error or exc
            raise
        finally:
            self.call.exchange.end(error)


class WSGIMiddleware:
    """Trace HTTP requests and record the JSON bodies of `routes` as predictions of `model`.

    Same options as `ASGIMiddleware`: `routes` (paths, exact match on PATH_INFO, or a function path -> bool),
    `extract`, `max_body_bytes`, `max_id_header_bytes`, `trace_all_routes`, and `ModelMonitor`'s keyword
    arguments. The predictions' ids go in the `x-prediction-id` response header.
    """

    def __init__(
        self,
        wsgi_app: WSGIApplication,
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
        self.wsgi_app = wsgi_app
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
        return f"WSGIMiddleware({self.wsgi_app!r}, {self.http.monitor!r})"

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        runtime = _runtime._RUNTIME or _runtime.current()
        if runtime is None:
            return self.wsgi_app(environ, start_response)
        http = self.http
        exchange = None
        capture = False
        try:
            path = environ.get("PATH_INFO") or "/"
            capture = http.listed(path)
            if capture or http.trace_all_routes:
                exchange = self._begin(runtime, environ, path, capture)
                if exchange is not None and capture and type(exchange.request) is list:
                    length = _length(environ.get("CONTENT_LENGTH"))
                    environ["wsgi.input"] = _Input(environ["wsgi.input"], exchange, length)
        except Exception as exc:
            fault("wsgi.begin", exc)
        if exchange is None:
            return self.wsgi_app(environ, start_response)

        call = _Call(exchange, start_response)
        token = otel_context.attach(exchange.context)
        sink_token = ID_SINK.set(exchange.sink) if capture else None
        try:
            result = self.wsgi_app(environ, call.start_response)
        except BaseException as exc:
            if call.held is not None:
                exchange.status = None
            exchange.end(exc)
            raise
        finally:
            if sink_token is not None:
                ID_SINK.reset(sink_token)
            otel_context.detach(token)
        return _Body(call, result)

    def _begin(self, runtime: _runtime.Runtime, environ: WSGIEnvironment, path: str, capture: bool) -> Exchange | None:
        method = environ.get("REQUEST_METHOD", "GET")
        route = path if capture and self._named_routes else None

        def describe() -> Request:
            protocol = environ.get("SERVER_PROTOCOL", "")
            port = environ.get("SERVER_PORT")
            return (
                method,
                environ.get("wsgi.url_scheme", "http"),
                environ.get("SCRIPT_NAME", "") + path,
                route,
                environ.get("HTTP_HOST"),
                (environ.get("SERVER_NAME", ""), int(port)) if port and port.isdigit() else None,
                environ.get("REMOTE_ADDR"),
                environ.get("HTTP_USER_AGENT"),
                protocol[5:] if protocol.startswith("HTTP/") else None,
            )

        carried = not environ.keys().isdisjoint(self.http.context_headers()[1])
        length = _length(environ.get("CONTENT_LENGTH"))
        return self.http.begin(runtime, capture, method, route, describe, environ, _GETTER, length, carried)
