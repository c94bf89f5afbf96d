"""ASGIMiddleware under a real uvicorn server: spans, recorded bodies, ids in the header, and never in the way."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import uvicorn
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route

import instrument
from instrument import _runtime, semconv
from instrument._guard import STATS
from instrument._spans import LightTracer

from .conftest import Telemetry
from .otlp_server import OTLPServer, attributes, value

ROUTES = ["/predict", "/monitored", "/echo", "/expand", "/stream", "/boom", "/missing", "/form", "/v1/predict"]
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@contextlib.contextmanager
def serve(app: Any) -> Iterator[str]:
    """uvicorn on an ephemeral port in a thread; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # IPPROTO_TCP: TCP_NODELAY
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, lifespan="on", log_config=None, loop="asyncio", http="h11", ws="none")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)


class App:
    """A Starlette app with one endpoint per case, behind the middleware (added the Starlette way)."""

    def __init__(self, **options: Any) -> None:
        self.lifespan: list[str] = []
        self.received: list[bytes] = []
        self.raised: list[BaseException] = []  # what reached the server
        self.stream_release = threading.Event()
        self.stream_waited: list[bool] = []

        @instrument.monitor(model="inner", version="1", task="regression")
        def model(rows: list[list[float]]) -> list[float]:
            return [float(sum(row)) for row in rows]

        async def predict(request: Request) -> Response:
            rows = (await request.json())["instances"]
            return JSONResponse({"predictions": [float(sum(row)) for row in rows]})

        async def monitored(request: Request) -> Response:  # case (a), predict in the thread pool
            rows = (await request.json())["instances"]
            return JSONResponse({"predictions": await run_in_threadpool(model, rows)})

        async def echo(request: Request) -> Response:
            body = await request.body()
            self.received.append(body)
            return Response(body, media_type=request.headers.get("content-type"))

        async def expand(request: Request) -> Response:  # a small request, a large answer
            rows = (await request.json())["instances"]
            return JSONResponse({"predictions": [0.123456789] * int(rows[0][0])})

        async def stream(request: Request) -> Response:
            await request.body()

            async def chunks() -> AsyncIterator[bytes]:
                yield b'{"predictions": ['
                self.stream_waited.append(await asyncio.to_thread(self.stream_release.wait, 10))
                yield b"1.0, 2.0]}"

            return StreamingResponse(chunks(), media_type="application/json")

        async def boom(request: Request) -> Response:
            await request.body()
            raise RuntimeError("model exploded")

        async def form(request: Request) -> Response:  # a request that is not JSON, a JSON answer
            await request.body()
            return JSONResponse({"predictions": [0.5]})

        async def missing(request: Request) -> Response:
            return JSONResponse({"detail": "no such model"}, status_code=404)

        async def health(request: Request) -> Response:
            return PlainTextResponse("ok")

        @contextlib.asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            self.lifespan.append("startup")
            yield
            self.lifespan.append("shutdown")

        post = ["POST"]
        app = Starlette(
            routes=[
                Route("/predict", predict, methods=post),
                Route("/monitored", monitored, methods=post),
                Route("/echo", echo, methods=post),
                Route("/expand", expand, methods=post),
                Route("/stream", stream, methods=post),
                Route("/boom", boom, methods=post),
                Route("/missing", missing, methods=post),
                Route("/form", form, methods=post),
                Route("/health", health),
                Mount("/v1", routes=[Route("/predict", predict, methods=post)]),
            ],
            lifespan=lifespan,
        )
        options.setdefault("routes", ROUTES)
        app.add_middleware(instrument.ASGIMiddleware, model="http", version="2", task="regression", **options)
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await self.app(scope, receive, send)
        except BaseException as exc:
            self.raised.append(exc)
            raise


def server_spans(spans: list[ReadableSpan]) -> list[ReadableSpan]:
    return [s for s in spans if s.kind is SpanKind.SERVER]


def ids_of(response: httpx.Response) -> list[str]:
    return response.headers["x-prediction-id"].split(",")


def test_concurrent_requests_are_recorded_once_with_the_ids_returned(telemetry: Telemetry) -> None:
    app = App()
    sent = {i: [[float(i), float(j)] for j in range(1 + i % 3)] for i in range(50)}
    with serve(app) as url, httpx.Client(base_url=url) as client:
        with ThreadPoolExecutor(10) as pool:
            answers = dict(
                zip(sent, pool.map(lambda i: client.post("/predict", json={"instances": sent[i]}), sent), strict=True)
            )
    events = telemetry.events()
    assert all(e.attributes[semconv.ATTR_MODEL_NAME] == "http" for e in events)
    recorded = {
        pid: ([row["inputs"]["f0"], row["inputs"]["f1"]], row["outputs"]["prediction"])
        for pid, row in telemetry.rows().items()  # fails if any row was captured twice
    }
    assert len(recorded) == sum(len(rows) for rows in sent.values())  # every row once, none twice
    for i, response in answers.items():
        assert response.status_code == 200
        assert response.json() == {"predictions": [sum(row) for row in sent[i]]}
        assert [recorded[pid] for pid in ids_of(response)] == [(row, sum(row)) for row in sent[i]]

    spans = telemetry.spans()
    servers = {s.context.span_id: s for s in server_spans(spans)}
    predicts = [s for s in spans if s.name == "predict http"]
    assert len(servers) == 50 and len(predicts) == 50
    for span in predicts:  # each predict span is the child of its request's server span
        assert span.parent is not None and span.parent.span_id in servers
        assert servers[span.parent.span_id].context.trace_id == span.context.trace_id
    # an event holding one call carries its predict span; events merging several calls carry none
    linked = {e.span_id for e in events if e.span_id}
    assert linked <= {s.context.span_id for s in predicts}
    assert all(e.span_id == 0 for e in events if e.attributes[semconv.ATTR_PAYLOAD_ROWS] > 3)


def test_a_monitored_predict_inside_the_request_is_not_recorded_twice(telemetry: Telemetry) -> None:
    app = App()
    sent = {i: [[float(i), 1.0]] * (1 + i % 2) for i in range(20)}
    with serve(app) as url, httpx.Client(base_url=url) as client:
        with ThreadPoolExecutor(5) as pool:
            answers = dict(
                zip(sent, pool.map(lambda i: client.post("/monitored", json={"instances": sent[i]}), sent), strict=True)
            )
    events = telemetry.events()
    assert {e.attributes[semconv.ATTR_MODEL_NAME] for e in events} == {"inner"}  # the middleware recorded nothing
    rows = telemetry.rows()
    assert len(rows) == sum(len(r) for r in sent.values())
    for i, response in answers.items():
        assert [rows[pid]["inputs"]["f0"] for pid in ids_of(response)] == [float(i)] * len(sent[i])
    spans = telemetry.spans()
    servers = {s.context.span_id for s in server_spans(spans)}
    inner = [s for s in spans if s.name == "predict inner"]
    assert len(inner) == 20 and all(s.parent is not None and s.parent.span_id in servers for s in inner)
    assert not [s for s in spans if s.name == "predict http"]


def test_the_body_reaches_the_app_unchanged(telemetry: Telemetry) -> None:
    app = App()
    payload = bytes(range(256)) * 300  # not JSON, 76 kB, sent chunked in pieces
    document = json.dumps({"instances": [[1.0, 2.0]], "note": "é"}).encode()
    with serve(app) as url, httpx.Client(base_url=url) as client:
        chunked = client.post("/echo", content=iter([payload[i : i + 7000] for i in range(0, len(payload), 7000)]))
        plain = client.post("/echo", content=document, headers={"content-type": "application/json"})
        empty = client.post("/echo")
    assert app.received == [payload, document, b""]
    assert chunked.content == payload and plain.content == document and empty.content == b""
    assert STATS.dropped["http_body_not_json"] == 1  # the binary body, counted and passed on; no body: no count
    (event,) = telemetry.events()  # the JSON echo is recorded: its response reads as outputs
    assert event.body["inputs"] == {"f0": [1.0], "f1": [2.0]}


def test_bodies_over_the_cap_are_passed_on_and_counted(telemetry: Telemetry) -> None:
    app = App(max_body_bytes=1000)
    big = {"instances": [[float(i), 1.0] for i in range(100)]}  # ~1.5 kB
    with serve(app) as url, httpx.Client(base_url=url) as client:
        declared = client.post("/echo", json=big)
        streamed = client.post("/echo", content=iter([json.dumps(big).encode()]))  # no Content-Length
        answer = client.post("/expand", json={"instances": [[100.0]]})
    assert declared.json() == big and streamed.json() == big
    assert answer.status_code == 200 and len(answer.json()["predictions"]) == 100
    assert "x-prediction-id" not in declared.headers and "x-prediction-id" not in answer.headers
    assert STATS.dropped["http_body_too_large"] == 3
    assert telemetry.events() == []


def test_streaming_responses_stream_and_are_recorded_at_the_end(telemetry: Telemetry) -> None:
    app = App()
    with serve(app) as url, httpx.Client(base_url=url) as client:
        with client.stream("POST", "/stream", json={"instances": [[1.0, 0.0], [2.0, 0.0]]}) as response:
            chunks = response.iter_raw()
            first = next(chunks)  # arrives while the app still waits for us
            app.stream_release.set()
            rest = b"".join(chunks)
    assert first == b'{"predictions": [' and rest == b"1.0, 2.0]}"
    assert app.stream_waited == [True]
    assert "x-prediction-id" not in response.headers  # the start went out before the body was known
    (event,) = telemetry.events()
    assert event.body["outputs"] == {"prediction": [1.0, 2.0]} and len(event.body["ids"]) == 2


def test_lifespan_events_reach_the_app(telemetry: Telemetry) -> None:
    app = App()
    with serve(app) as url:
        assert app.lifespan == ["startup"]
        assert httpx.get(url + "/health").text == "ok"
    assert app.lifespan == ["startup", "shutdown"]
    assert [s.name for s in telemetry.spans()] == ["GET /health"]  # no span for the lifespan scope


def test_an_app_crash_is_a_500_recorded_and_re_raised(telemetry: Telemetry, caplog: pytest.LogCaptureFixture) -> None:
    app = App()
    with caplog.at_level(logging.ERROR), serve(app) as url:
        response = httpx.post(url + "/boom", json={"instances": [[1.0, 2.0], [3.0, 4.0]]})
    assert response.status_code == 500
    (raised,) = app.raised  # it went through the middleware up to the server
    assert isinstance(raised, RuntimeError) and str(raised) == "model exploded"
    spans = telemetry.spans()
    (server,) = server_spans(spans)
    assert server.status.status_code is StatusCode.ERROR
    assert server.attributes["error.type"] == "RuntimeError"
    assert server.attributes["http.response.status_code"] == 500
    assert [e.name for e in server.events] == ["exception"]
    (predict,) = [s for s in spans if s.name == "predict http"]  # a failed prediction, child of the request
    assert predict.parent is not None and predict.parent.span_id == server.context.span_id
    assert predict.status.status_code is StatusCode.ERROR and predict.attributes[semconv.ATTR_BATCH_SIZE] == 2
    assert telemetry.events() == []
    (errors,) = telemetry.points(semconv.METRIC_PREDICTIONS)
    assert errors.attributes[semconv.ATTR_OUTCOME] == "error" and errors.value == 2


def test_trace_context_is_propagated_and_spans_follow_http_conventions(telemetry: Telemetry) -> None:
    app = App()
    with serve(app) as url, httpx.Client(base_url=url, headers={"user-agent": "tests/1"}) as client:
        response = client.post("/predict", json={"instances": [[1.0, 2.0]]}, headers={"traceparent": TRACEPARENT})
        client.get("/health")
        client.post("/missing", json={})
        mounted = client.post("/v1/predict", json={"instances": [[1.0, 2.0]]})
    port = int(url.rsplit(":", 1)[1])
    spans = telemetry.spans()
    server, health, missing, under_mount = server_spans(spans)
    assert server.name == "POST /predict"
    assert server.parent is not None and server.parent.is_remote
    assert (server.context.trace_id, server.parent.span_id) == (0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331)
    assert dict(server.attributes) == {
        "http.request.method": "POST",
        "url.scheme": "http",
        "url.path": "/predict",
        "http.route": "/predict",
        "server.address": "127.0.0.1",
        "server.port": port,
        "client.address": "127.0.0.1",
        "user_agent.original": "tests/1",
        "network.protocol.version": "1.1",
        "http.response.status_code": 200,
    }
    (predict,) = [s for s in spans if s.name == "predict http" and s.context.trace_id == server.context.trace_id]
    assert predict.parent is not None and predict.parent.span_id == server.context.span_id
    rows = telemetry.rows()
    (pid,) = ids_of(response)
    event = rows[pid]["event"]
    if event.attributes[semconv.ATTR_PAYLOAD_ROWS] == 1:  # not merged with another call's rows: linked to its trace
        assert event.trace_id == server.context.trace_id
    assert health.name == "GET /health" and health.attributes["http.route"] == "/health"  # from Starlette's router
    assert health.parent is None and "http.request.method" in health.attributes
    assert missing.attributes["http.response.status_code"] == 404 and missing.status.status_code is StatusCode.UNSET
    assert under_mount.attributes["http.route"] == "/v1/predict" and len(ids_of(mounted)) == 1
    assert len(telemetry.rows()) == 2  # the 404 is not a prediction


def test_unlisted_routes_are_traced_or_passed_straight_through(telemetry: Telemetry) -> None:
    with serve(App(trace_all_routes=False)) as url:
        assert httpx.get(url + "/health").text == "ok"
        httpx.post(url + "/predict", json={"instances": [[1.0, 2.0]]})
    assert [s.name for s in telemetry.spans() if s.kind is SpanKind.SERVER] == ["POST /predict"]


def test_custom_extract_sampling_and_id_columns(telemetry: Telemetry) -> None:
    def extract(request: Any, response: Any) -> Any:
        if request.get("skip"):
            return None
        if request.get("fail"):
            raise KeyError("features")
        return {"key": [r["key"] for r in request["instances"]], "x": [r["x"] for r in request["instances"]]}, [
            float(p) for p in response["predictions"]
        ]

    rows = [{"key": "a,b", "x": 1.0}, {"key": "ü 2", "x": 2.0}]
    body = {"instances": rows}

    async def predict(request: Request) -> Response:
        return JSONResponse({"predictions": [r["x"] * 2 for r in (await request.json())["instances"]]})

    app = Starlette(routes=[Route("/predict", predict, methods=["POST"])])
    app.add_middleware(instrument.ASGIMiddleware, model="m", task="regression", extract=extract, id_column="key")
    with serve(app) as url, httpx.Client(base_url=url) as client:
        keyed = client.post("/predict", json=body)
        skipped = client.post("/predict", json={**body, "skip": True})
        failed = client.post("/predict", json={**body, "fail": True})
        telemetry.configure(sample_rate=0.0)
        unsampled = client.post("/predict", json={"instances": [{"key": "z", "x": 3.0}]})
    assert ids_of(keyed) == ["a%2Cb", "%C3%BC%202"]  # percent-encoded: a comma or space would break the list
    assert "x-prediction-id" not in skipped.headers and "x-prediction-id" not in failed.headers
    assert failed.status_code == 200 and STATS.dropped["http_extract_failed"] == 1
    assert ids_of(unsampled) == ["z"]
    (event,) = telemetry.events()
    assert event.body == {"ids": ["a,b", "ü 2"], "inputs": {"x": [1.0, 2.0]}, "outputs": {"prediction": [2.0, 4.0]}}


def test_ids_that_do_not_fit_the_header_are_left_out_and_counted(telemetry: Telemetry) -> None:
    with serve(App(max_id_header_bytes=40)) as url:
        one = httpx.post(url + "/predict", json={"instances": [[1.0, 2.0]]})
        two = httpx.post(url + "/predict", json={"instances": [[1.0, 2.0], [3.0, 4.0]]})
    assert len(ids_of(one)) == 1 and "x-prediction-id" not in two.headers
    assert STATS.dropped["http_id_header_too_long"] == 1
    assert len(telemetry.rows()) == 3  # both requests recorded, ids or not


def test_sdk_faults_never_reach_the_request(telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("SDK bug")

    monkeypatch.setattr("instrument._http.new_ids", broken)  # on the response's path: ids for the header
    with serve(App()) as url, httpx.Client(base_url=url) as client:
        answer = client.post("/predict", json={"instances": [[1.0, 2.0]]})
        monkeypatch.setattr(_runtime.current().tracer, "start_span", broken)  # type: ignore[union-attr]
        passed = client.post("/predict", json={"instances": [[1.0, 2.0]]})
    assert answer.json() == passed.json() == {"predictions": [3.0]}
    assert STATS.errors["http.body"] == 1 and STATS.errors["http.begin"] == 1


def test_non_http_scopes_and_a_disabled_sdk_pass_straight_through(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[Any, Any, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append((scope, receive, send))

    middleware = instrument.ASGIMiddleware(app, model="m")

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: Any) -> None:
        pass

    for scope in ({"type": "websocket", "path": "/predict"}, {"type": "lifespan"}):
        asyncio.run(middleware(scope, receive, send))
        assert seen.pop() == (scope, receive, send)  # the very same objects

    monkeypatch.setenv("PREDWATCH_DISABLED", "true")
    _runtime.reset_for_tests()
    scope = {"type": "http", "method": "POST", "path": "/predict", "headers": []}
    asyncio.run(middleware(scope, receive, send))
    assert seen.pop() == (scope, receive, send)
    _runtime.reset_for_tests()


def test_options_are_checked_when_the_middleware_is_made() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        pass

    with pytest.raises(TypeError, match="routes"):
        instrument.ASGIMiddleware(app, model="m", routes="/predict")
    with pytest.raises(TypeError, match="extract"):
        instrument.ASGIMiddleware(app, model="m", extract="instances")
    with pytest.raises(ValueError, match="max_body_bytes"):
        instrument.ASGIMiddleware(app, model="m", max_body_bytes=-1)
    with pytest.raises(ValueError, match="task"):
        instrument.ASGIMiddleware(app, model="m", task="ranking")
    with pytest.raises(TypeError):
        instrument.ASGIMiddleware(app, model="m", sample=0.5)
    assert "churn" in repr(instrument.ASGIMiddleware(app, model="churn", routes=lambda path: path.endswith(":predict")))


def test_an_enclosing_opentelemetry_server_span_is_adopted(telemetry: Telemetry) -> None:
    inner = App()
    tracer = telemetry.tracer_provider.get_tracer("another-instrumentation")

    async def outer(scope: Any, receive: Any, send: Any) -> None:  # e.g. opentelemetry-instrumentation-asgi
        if scope["type"] != "http":
            return await inner(scope, receive, send)
        with tracer.start_as_current_span("POST", kind=SpanKind.SERVER):
            await inner(scope, receive, send)

    with serve(outer) as url:
        response = httpx.post(url + "/predict", json={"instances": [[1.0, 2.0]]})
    spans = telemetry.spans()
    (server,) = server_spans(spans)  # not a second one
    assert server.instrumentation_scope is not None and server.instrumentation_scope.name == "another-instrumentation"
    (predict,) = [s for s in spans if s.name == "predict http"]
    assert predict.parent is not None and predict.parent.span_id == server.context.span_id
    assert telemetry.events()[0].body["ids"] == ids_of(response)


def test_routes_are_matched_below_the_root_path(telemetry: Telemetry) -> None:
    """In-process: an app mounted under /api sees path /api/predict and root_path /api."""
    sent: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b"[0.5]"})

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b'{"instances": [[1, 2]]}', "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    middleware = instrument.ASGIMiddleware(app, model="m", task="regression")
    scope = {"type": "http", "method": "POST", "path": "/api/predict", "root_path": "/api", "headers": []}
    asyncio.run(middleware(scope, receive, send))
    start, body = sent
    (pid,) = [value.decode() for name, value in start["headers"] if name == b"x-prediction-id"]
    assert body == {"type": "http.response.body", "body": b"[0.5]"}
    (event,) = telemetry.events()
    assert event.body == {"ids": [pid], "inputs": {"f0": [1], "f1": [2]}, "outputs": {"prediction": [0.5]}}
    (server,) = server_spans(telemetry.spans())
    assert server.name == "POST /predict" and server.attributes["url.path"] == "/api/predict"


def test_the_sdks_own_pipeline_exports_the_same_spans_and_rows() -> None:
    """No application tracer provider: the SDK's own tracer, encoders and batch processors, decoded by a real
    OTLP/HTTP endpoint. Attributes are built only for recording spans there; the request body is parsed on the
    worker, and one that is not JSON is counted there while its prediction still counts."""
    _runtime.reset_for_tests()
    app = App()
    with OTLPServer() as otlp:
        instrument.configure(service_name="own-pipeline", endpoint=otlp.url, resource_metrics=False)
        runtime = _runtime.current()
        assert runtime is not None and isinstance(runtime.tracer, LightTracer)
        with serve(app) as url, httpx.Client(base_url=url, headers={"user-agent": "tests/1"}) as client:
            response = client.post("/predict", json={"instances": [[1.0, 2.0]]}, headers={"traceparent": TRACEPARENT})
            text = client.post("/echo", content=b"a=1", headers={"content-type": "text/plain"})
            client.get("/health")
        assert text.status_code == 200 and text.content == b"a=1"  # not JSON either way: no ids
        (pid,) = ids_of(response)
        assert instrument.flush()
        otlp.wait_for(lambda: len(otlp.spans()) >= 3 and list(otlp.log_records()))
        by_name = {span.name: span for _, span in otlp.spans()}
        server, predict, health = by_name["POST /predict"], by_name["predict http"], by_name["GET /health"]
        port = int(url.rsplit(":", 1)[1])
        assert server.kind == server.SPAN_KIND_SERVER and attributes(server.attributes) == {
            "http.request.method": "POST",
            "url.scheme": "http",
            "url.path": "/predict",
            "http.route": "/predict",
            "server.address": "127.0.0.1",
            "server.port": port,
            "client.address": "127.0.0.1",
            "user_agent.original": "tests/1",
            "network.protocol.version": "1.1",
            "http.response.status_code": 200,
        }
        assert server.trace_id.hex() == "0af7651916cd43dd8448eb211c80319c"
        assert server.parent_span_id.hex() == "b7ad6b7169203331"
        assert predict.trace_id == server.trace_id and predict.parent_span_id == server.span_id
        assert attributes(health.attributes)["http.response.status_code"] == 200
        [(_, record)] = list(otlp.log_records())
        body = value(record.body)
        assert body["ids"] == [pid] and body["inputs"] == {"f0": [1.0], "f1": [2.0]}
    _runtime.reset_for_tests()


def test_a_request_body_that_is_not_json_is_counted_and_its_prediction_kept(telemetry: Telemetry) -> None:
    # The response alone gives the ids and the metrics; the worker finds the request unreadable and counts it.
    app = App()
    with serve(app) as url, httpx.Client(base_url=url) as client:
        response = client.post("/form", data={"age": "41"})
    assert response.json() == {"predictions": [0.5]} and len(ids_of(response)) == 1
    assert telemetry.events() == []
    assert STATS.dropped["http_body_not_json"] == 1
    (point,) = telemetry.points(semconv.METRIC_PREDICTIONS)
    assert point.value == 1 and point.attributes[semconv.ATTR_OUTCOME] == "ok"
