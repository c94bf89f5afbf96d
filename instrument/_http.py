"""What the ASGI and WSGI middleware share: their options, the server span, and one request's capture.

`HttpMonitor` holds a middleware's options and never changes after `__init__`; everything about one request
lives in an `Exchange` made for it (so concurrent requests share nothing). The adapters feed an exchange the
request body as the application reads it and the response as the application sends it:

- `on_start(status, content_length)` when the response starts: whether to hold the start back until the first
  body chunk (only while the middleware may still have to record the request itself), and the
  `x-prediction-id` value when a monitored function already ran inside the request.
- `on_first_body(body, complete)` with the first chunk of a held response: the header value. A complete body
  is recorded at once, so its ids can go in the header; a streamed one is collected and recorded when it ends
  (`on_body(..., last=True)`), and its ids are not returned.
- `end(exc)`: status code, error, and the end of the server span.

Two cases for ids. (a) The application calls an `@instrument.monitor` function: that call appends its ids to the
`ID_SINK` list the middleware installs, they go in the header (those of every such call in the request, in
order), and the middleware records nothing itself. (b) Otherwise the middleware maps the JSON bodies to inputs
and outputs and records them through its own `ModelMonitor` (latency: from the request's arrival to its
complete response; parent: the server span), which makes the ids. With the default mapping and generated ids
the request's path stays short (`Exchange._defer`): the response gives the row count, hence the ids and the
call's metrics, and the request body goes to the worker thread, which parses it only when a row is sampled.
A custom `extract` or an `id_column` needs both bodies at once, and both are parsed on the request's path.

The rate limit (`_limit`) is asked once per request, in `begin`: a request it turns away gets a non-recording
server span from the SDK's own tracer, no payload, and a sink that tells monitored calls inside it not to record
either; its ids and metrics are made as for any other. With the default mapping and a body of known size, its
request body is not even watched (`Exchange.request` is UNNEEDED): the response alone gives the ids. A failed
request turned away is then a failed call of unknown size.

Not recorded in case (b): a response with status >= 400, a request without a body (GET, OPTIONS), bodies over
`max_body_bytes` or not JSON (both counted in `predwatch.sdk.dropped`; a request body that is not JSON is
found, and counted, only when its row was sampled: the prediction itself, read from the response, is counted
in the metrics). An exception from the application is a failed prediction (a `predict` span with status ERROR,
no payload). Every method here guards itself: faults are counted, never raised.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from time import perf_counter_ns
from typing import Any
from urllib.parse import quote

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.semconv.attributes import (
    client_attributes,
    error_attributes,
    http_attributes,
    network_attributes,
    server_attributes,
    url_attributes,
    user_agent_attributes,
)
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from instrument import _runtime
from instrument._capture import CaptureJob, error_type
from instrument._context import LAST_IDS, IdSink, RefusedIdSink
from instrument._guard import count_dropped, fault
from instrument._http_extract import (
    NOT_JSON,
    NOT_JSON_BODY,
    Extractor,
    default_extract,
    parse_json,
    request_inputs,
    response_outputs,
    response_rows,
)
from instrument._monitor import MISSING, ModelMonitor, wall_time_ns
from instrument._spans import LightTracer
from instrument._values import new_ids, sample_rows

__all__ = ["ID_HEADER", "Exchange", "HttpMonitor", "Request"]

ID_HEADER = "x-prediction-id"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})
_HEADER_TEXT = re.compile(r"[!-~]*")  # visible ASCII: what a header value may hold without encoding
_METHOD = http_attributes.HTTP_REQUEST_METHOD
_STATUS = http_attributes.HTTP_RESPONSE_STATUS_CODE
_ROUTE = http_attributes.HTTP_ROUTE
_ERROR_TYPE = error_attributes.ERROR_TYPE

# Reasons counted in `predwatch.sdk.dropped` when a listed route's exchange is not recorded.
TOO_LARGE = "http_body_too_large"
UNREAD = "http_request_unread"
EXTRACT_FAILED = "http_extract_failed"
HEADER_TOO_LONG = "http_id_header_too_long"
_MAX_CACHED_ATTRIBUTES = 256
UNNEEDED: tuple[()] = ()  # Exchange.request of a request whose body is neither recorded nor read


def _host_port(host: str | None, fallback: tuple[str, int] | None) -> tuple[str | None, int | None]:
    """server.address/server.port from a Host header ("h", "h:p", "[v6]:p"), else the socket's address."""
    if host:
        if host.startswith("["):
            address, _, rest = host[1:].partition("]")
            port = rest[1:] if rest.startswith(":") else ""
        else:
            address, _, port = host.rpartition(":") if host.count(":") == 1 else (host, "", "")
        return address, int(port) if port.isdigit() else None
    if fallback is not None:
        address, port_number = fallback
        return str(address), port_number if type(port_number) is int else None
    return None, None


def id_header_value(ids: list[str], limit: int) -> str | None:
    """The ids as one header value, comma-separated; an id that is not plain visible ASCII without commas is
    percent-encoded. None (and counted) when the value would be longer than `limit` bytes."""
    if not ids:
        return None
    value = ",".join(ids)
    if value.isalnum() and value.isascii():  # one id of ASCII letters and digits (the SDK's are hex)
        pass
    elif not _HEADER_TEXT.fullmatch(value) or value.count(",") != len(ids) - 1:
        value = ",".join(quote(i, safe="") for i in ids)
    if len(value) > limit:
        count_dropped(HEADER_TOO_LONG, 1, f"{len(ids)} prediction ids do not fit in the {ID_HEADER} header")
        return None
    return value


# (method, scheme, path, route, host, server, client, user_agent, protocol): see HttpMonitor._attributes
Request = tuple[str, str, str, str | None, str | None, tuple[str, int] | None, str | None, str | None, str | None]


class HttpMonitor:
    """One middleware's options; validated here, read-only afterwards."""

    def __init__(
        self,
        model: str,
        version: str,
        *,
        routes: Sequence[str] | Callable[[str], bool],
        extract: Extractor | None,
        max_body_bytes: int,
        max_id_header_bytes: int,
        trace_all_routes: bool,
        monitor_options: dict[str, Any],
    ) -> None:
        if callable(routes):
            self.listed: Callable[[str], bool] = routes
        elif isinstance(routes, str) or not all(isinstance(r, str) and r.startswith("/") for r in routes):
            raise TypeError(f"routes must be a list of paths such as ['/predict'] or a function, got {routes!r}")
        else:
            self.listed = frozenset(routes).__contains__
        if extract is not None and not callable(extract):
            raise TypeError(f"extract must be a function (request, response) -> (inputs, outputs), got {extract!r}")
        for name, value in (("max_body_bytes", max_body_bytes), ("max_id_header_bytes", max_id_header_bytes)):
            if type(value) is not int or value < 0:
                raise ValueError(f"{name} must be a number of bytes (an int >= 0), got {value!r}")
        self.monitor = ModelMonitor(model, version, **monitor_options)
        self.extract: Extractor = extract if extract is not None else default_extract
        self.custom_extract = extract is not None
        # The default mapping with generated ids: the response alone gives the row count, so the request body is
        # parsed on the worker thread, and only for sampled requests (see Exchange._defer).
        self.deferred = extract is None and self.monitor.id_column is None
        self.max_body_bytes = max_body_bytes
        self.max_id_header_bytes = max_id_header_bytes
        self.trace_all_routes = bool(trace_all_routes)
        from opentelemetry import propagate  # not at import: it loads the configured propagators (~80 ms)

        self.propagate = propagate.extract
        self._textmap = propagate.get_global_textmap
        self._fields: tuple[object, frozenset[bytes], frozenset[str]] = (None, frozenset(), frozenset())
        # Server-span attributes by request tuple (method, scheme, path, route, host, server, client, ...): only
        # ever read (set_attributes copies them), so concurrent requests may share an entry.
        self._attribute_cache: dict[tuple[Any, ...], dict[str, Any]] = {}

    def context_headers(self) -> tuple[frozenset[bytes], frozenset[str]]:
        """The headers the propagators read, as ASGI names (lower-case bytes) and WSGI environ keys: a request
        without any of them has no incoming context, and extracting it can be skipped."""
        textmap = self._textmap()
        cached = self._fields
        if cached[0] is not textmap:
            names = [name.lower() for name in textmap.fields]
            cached = (
                textmap,
                frozenset(name.encode("latin-1") for name in names),
                frozenset("HTTP_" + name.upper().replace("-", "_") for name in names),
            )
            self._fields = cached  # one tuple: a concurrent request sees the old fields or the new ones
        return cached[1], cached[2]

    def _attributes(
        self,
        method: str,
        scheme: str,
        path: str,
        route: str | None,
        host: str | None,
        server: tuple[str, int] | None,
        client: str | None,
        user_agent: str | None,
        protocol: str | None,
    ) -> dict[str, Any]:
        """The server span's HTTP semantic-convention attributes."""
        known = method in _METHODS
        attrs: dict[str, Any] = {_METHOD: method if known else "_OTHER", url_attributes.URL_SCHEME: scheme}
        if not known:
            attrs[http_attributes.HTTP_REQUEST_METHOD_ORIGINAL] = method
        attrs[url_attributes.URL_PATH] = path
        if route is not None:
            attrs[_ROUTE] = route
        address, port = _host_port(host, server)
        if address:
            attrs[server_attributes.SERVER_ADDRESS] = address
        if port is not None:
            attrs[server_attributes.SERVER_PORT] = port
        if client:
            attrs[client_attributes.CLIENT_ADDRESS] = client
        if user_agent:
            attrs[user_agent_attributes.USER_AGENT_ORIGINAL] = user_agent
        if protocol:
            attrs[network_attributes.NETWORK_PROTOCOL_VERSION] = protocol
        return attrs

    def _cached_attributes(self, request: tuple[Any, ...]) -> dict[str, Any]:
        """`_attributes(*request)`, from a small cache: requests to a server mostly repeat them."""
        try:
            found = self._attribute_cache.get(request)
        except TypeError:  # a part that is not hashable (an ASGI server given as a list, say)
            return self._attributes(*request)
        if found is None:
            found = self._attributes(*request)
            cache = self._attribute_cache
            if len(cache) >= _MAX_CACHED_ATTRIBUTES:
                cache.clear()
            cache[request] = found
        return found

    def begin(
        self,
        runtime: _runtime.Runtime,
        capture: bool,
        method: str,
        route: str | None,
        describe: Callable[[], Request],
        carrier: Any,
        getter: Any,
        request_length: int | None,
        carried: bool = True,
        exchange: type[Exchange] | None = None,
    ) -> Exchange | None:
        """Open the server span (or adopt an enclosing one) for a request, and take its rate-limit decision; None
        after a fault. `route`: http.route when known; `describe()`: what the span's attributes are made of, asked
        only for a span that records. `carried`: the request has one of the `context_headers()`. `exchange`: the
        class to make (an adapter's subclass of Exchange)."""
        t0 = perf_counter_ns()
        try:
            limit = runtime.limit
            admitted = limit is None or limit.admit()
            current = otel_context.get_current()
            outer = trace.get_current_span(current)
            if outer.is_recording() and getattr(outer, "kind", None) is SpanKind.SERVER:
                span, context = None, current  # already traced by an OpenTelemetry middleware
            else:
                name = (method if method in _METHODS else "HTTP") + (f" {route}" if route is not None else "")
                tracer = runtime.tracer
                parent = None
                if type(tracer) is LightTracer and tracer.attributes_unused:
                    # The SDK's own tracer samples without the attributes: they are made only for a recording span.
                    # It also applies the rate limit to a root span (one that continues no trace).
                    if carried:
                        parent = self.propagate(carrier, getter=getter)
                        outer = trace.get_current_span(parent)
                    span = tracer.start_child(name, outer, SpanKind.SERVER, context=parent, root=admitted)
                    if span.is_recording():
                        span.set_attributes(self._cached_attributes(describe()))
                else:
                    parent = self.propagate(carrier, getter=getter) if carried else None
                    attrs = self._attributes(*describe())
                    span = tracer.start_span(name, context=parent, kind=SpanKind.SERVER, attributes=attrs)
                context = trace.set_span_in_context(span, current if parent is None else parent)
            make = exchange or Exchange
            return make(self, runtime, span, context, t0, method, route, capture, request_length, admitted)
        except Exception as exc:
            fault("http.begin", exc)
            return None


class Exchange:
    """One request's state (made per request, never shared). What most requests never change is a class-level
    default rather than a slot set in every __init__."""

    status: int | None = None
    request_size = 0
    request_done = False
    response: list[bytes] | None = None  # a streamed response being collected
    response_size = 0
    collecting = False  # a streamed response is being collected for recording at its end
    recorded = False

    def __init__(
        self,
        owner: HttpMonitor,
        runtime: _runtime.Runtime,
        span: Span | None,
        context: Context,
        t0: int,
        method: str,
        route: str | None,
        capture: bool,
        request_length: int | None,
        admitted: bool = True,
    ) -> None:
        self.owner = owner
        self.runtime = runtime
        self.span = span  # ours to end; None when an enclosing server span was adopted
        self.context = context
        self.method = method
        self.route = route  # http.route as the span has it
        self.t0 = t0  # perf_counter_ns() when the request came in
        self.admitted = admitted  # by the rate limit: the request may be recorded
        # The ids of @monitor calls inside the request, which follow its rate-limit decision.
        self.sink: IdSink | None = None if not capture else IdSink() if admitted else RefusedIdSink()
        # Request body chunks while they may still be recorded (a list: the adapter hands it every chunk); None
        # once too large (or not a listed route); UNNEEDED for a body of known size that will not be recorded.
        self.request: list[bytes] | tuple[()] | None = None
        if capture:
            if request_length is not None and request_length > owner.max_body_bytes:
                count_dropped(TOO_LARGE, 1, f"a request body over max_body_bytes={owner.max_body_bytes} not captured")
            elif request_length and owner.deferred and not (admitted and self._sample_rate()):
                # The response alone gives the ids and metrics: the adapter need not watch the request's body.
                self.request, self.request_size, self.request_done = UNNEEDED, request_length, True
            else:
                self.request = []

    def _sample_rate(self) -> float:
        rate = self.owner.monitor.sample_rate
        return self.runtime.sample_rate if rate is None else rate

    # --- request ---------------------------------------------------------------------------------------
    def add_request(self, body: bytes, done: bool) -> None:
        chunks = self.request
        if type(chunks) is not list:
            return
        try:
            if body:
                self.request_size += len(body)
                if self.request_size > self.owner.max_body_bytes:
                    self.request = None
                    count_dropped(TOO_LARGE, 1, f"a request body over max_body_bytes={self.owner.max_body_bytes}")
                    return
                chunks.append(bytes(body))
            if done:
                self.request_done = True
        except Exception as exc:
            fault("http.request", exc)

    # --- response --------------------------------------------------------------------------------------
    def on_start(self, status: int, content_length: int | None) -> tuple[bool, str | None]:
        """(hold the start back until the first body chunk?, header value for ids already made)."""
        self.status = status
        sink = self.sink
        if sink is None:
            return False, None
        try:
            if sink:
                return False, id_header_value(sink, self.owner.max_id_header_bytes)
            if status >= 400 or self.request is None or (self.request_done and not self.request_size):
                return False, None  # not a prediction (an error, no request body), or a request too large
            if content_length is not None and content_length > self.owner.max_body_bytes:
                count_dropped(TOO_LARGE, 1, f"a response body over max_body_bytes={self.owner.max_body_bytes}")
                return False, None
            return True, None
        except Exception as exc:
            fault("http.start", exc)
            return False, None

    def on_first_body(self, body: bytes | None, complete: bool) -> str | None:
        """The header value to add to a held start, given the response's first body chunk (the whole body when
        `complete`; None for a whole body known to be over the size cap)."""
        try:
            sink = self.sink
            if sink:
                return id_header_value(sink, self.owner.max_id_header_bytes)
            if body is None or len(body) > self.owner.max_body_bytes:
                count_dropped(TOO_LARGE, 1, f"a response body over max_body_bytes={self.owner.max_body_bytes}")
                return None
            if not complete:
                self.response, self.response_size, self.collecting = [], 0, True
                self.on_body(body, False)
                return None
            ids = self._record(body)
            if not ids:
                return None
            owner = self.owner
            if len(ids) == 1 and owner.deferred and owner.max_id_header_bytes >= 32:
                return ids[0]  # one id the SDK made: 32 hex characters, nothing to check
            return id_header_value(ids, owner.max_id_header_bytes)
        except Exception as exc:
            fault("http.body", exc)
            return None

    def on_body(self, body: bytes, last: bool) -> None:
        """A chunk of a streamed response being collected; records the exchange after the last one."""
        try:
            chunks = self.response
            if chunks is not None and body:
                self.response_size += len(body)
                if self.response_size > self.owner.max_body_bytes:
                    self.response = chunks = None
                    count_dropped(TOO_LARGE, 1, f"a response body over max_body_bytes={self.owner.max_body_bytes}")
                else:
                    chunks.append(bytes(body))
            if last:
                self.collecting = False
                if chunks is not None and not self.sink:
                    self._record(b"".join(chunks))
                self.response = None
        except Exception as exc:
            fault("http.body", exc)

    def _record(self, body: bytes) -> list[str] | None:
        """Case (b): map the two bodies to inputs and outputs and record them; the ids, or None."""
        owner = self.owner
        chunks = self.request
        if chunks is None:
            return None
        if not self.request_done:
            count_dropped(UNREAD, 1, "the application answered without reading the whole request body")
            return None
        if not self.request_size:
            return None  # no body (GET, OPTIONS): nothing to record
        if owner.deferred:
            return self._defer(chunks[0] if len(chunks) == 1 else b"".join(chunks), body)
        request = parse_json(chunks[0] if len(chunks) == 1 else b"".join(chunks))
        response = parse_json(body) if request is not NOT_JSON else NOT_JSON
        if response is NOT_JSON:
            count_dropped(NOT_JSON_BODY, 1, f"a request or response on a monitored route is not JSON ({self.method})")
            return None
        try:
            pair = owner.extract(request, response)
        except Exception as exc:
            count_dropped(EXTRACT_FAILED, 1, f"extract() raised {type(exc).__name__}: {exc}")
            return None
        if pair is None:
            return None
        inputs, outputs = pair
        return self._finish(inputs, outputs, None)

    def _defer(self, request: bytes, body: bytes) -> list[str] | None:
        """Case (b) with the default mapping: ids from the response's row count, the call's metrics now, and the
        request body handed to the worker (parsed there) only when a row is sampled. The same records as
        `ModelMonitor.finish` makes, less work on the request's path."""
        response = parse_json(body)
        if response is NOT_JSON:
            count_dropped(NOT_JSON_BODY, 1, f"a response on a monitored route is not JSON ({self.method})")
            return None
        self.recorded = True
        monitor = self.owner.monitor
        runtime = self.runtime
        predictions = response.get("predictions") if type(response) is dict else None
        if type(predictions) is list and (not predictions or type(predictions[0]) is not dict):
            outputs, n = predictions, len(predictions)  # {"predictions": [values]}: what response_outputs gives
        else:
            outputs = response_outputs(response)
            n = response_rows(outputs)
        ids = new_ids(n)
        t0 = self.t0
        duration_ns = perf_counter_ns() - t0
        if self.admitted:
            rate = self._sample_rate()
            sampled, keep = sample_rows(ids, rate)
        else:
            sampled = False
        if sampled:
            start_ns = wall_time_ns(t0)
            job = CaptureJob(monitor, request, outputs, ids, keep, rate, n, self.context, None, start_ns, duration_ns)
            job.json_request = True
            runtime.worker.put_payload(job, len(request) + 64 * n + 256)
        runtime.worker.put_call((monitor, duration_ns / 1e9, None, n))
        LAST_IDS.set(ids)
        return ids

    def _finish(self, inputs: Any, outputs: Any, exc: BaseException | None) -> list[str] | None:
        self.recorded = True
        token = otel_context.attach(self.context)  # the server span is the predict span's parent
        try:
            t0 = self.t0
            return self.owner.monitor.finish(self.runtime, inputs, outputs, exc, t0, perf_counter_ns() - t0, None, None)
        finally:
            otel_context.detach(token)

    def set_route(self, route: str) -> None:
        span = self.span
        if span is not None and route != self.route:
            self.route = route
            try:
                span.set_attribute(_ROUTE, route)
                span.update_name(f"{self.method if self.method in _METHODS else 'HTTP'} {route}")
            except Exception as exc:
                fault("http.route", exc)

    def end(self, exc: BaseException | None = None) -> None:
        """Close the request: status and error on the server span; a crash in case (b) is a failed prediction."""
        failed = isinstance(exc, Exception)
        if failed and self.sink is not None and not self.sink and not self.recorded:
            try:
                self._finish(self._request_inputs(), None, exc)
            except Exception as fault_exc:
                fault("http.record", fault_exc)
        span = self.span
        if span is None:
            return
        try:
            if span.is_recording():
                status = self.status
                if failed:
                    if status is None:
                        status = 500  # the server answers 500 for an application that raised before responding
                    span.record_exception(exc)  # type: ignore[arg-type]
                    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"[:256]))
                if exc is not None:
                    span.set_attribute(_ERROR_TYPE, error_type(exc))  # also for a cancelled request
                if status is not None:
                    span.set_attribute(_STATUS, status)
                    if status >= 500 and exc is None:
                        span.set_attribute(_ERROR_TYPE, str(status))
                        span.set_status(Status(StatusCode.ERROR))
        except Exception as fault_exc:
            fault("http.end", fault_exc)
        finally:
            try:
                span.end()
            except Exception as fault_exc:
                fault("http.end", fault_exc)

    def _request_inputs(self) -> Any:
        """The request's rows for a failed prediction's batch size, when the default mapping can read them."""
        chunks = self.request
        if chunks is None or not self.request_done or self.owner.custom_extract:
            return MISSING
        doc = parse_json(b"".join(chunks))
        return MISSING if doc is NOT_JSON else request_inputs(doc)
