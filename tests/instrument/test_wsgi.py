"""WSGIMiddleware under werkzeug's threaded server: Flask and plain WSGI applications."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from flask import Flask, Response, jsonify, request, stream_with_context
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode
from werkzeug.serving import WSGIRequestHandler, make_server

import instrument
from instrument import _runtime, semconv
from instrument._guard import STATS

from .conftest import Telemetry

ROUTES = ["/predict", "/monitored", "/echo", "/stream", "/boom"]
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


class Quiet(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


@contextlib.contextmanager
def serve(app: Any) -> Iterator[str]:
    """werkzeug's threaded server on an ephemeral port in a thread; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()


class Recorder:
    """The outermost WSGI layer: keeps what the application raised on its way to the server."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.raised: list[BaseException] = []

    def __call__(self, environ: Any, start_response: Any) -> Any:
        try:
            return self.app(environ, start_response)
        except BaseException as exc:
            self.raised.append(exc)
            raise


def flask_app(propagate: bool = False, **options: Any) -> tuple[Flask, dict[str, Any]]:
    app = Flask("test")
    app.config["PROPAGATE_EXCEPTIONS"] = propagate
    state: dict[str, Any] = {"received": [], "release": threading.Event(), "waited": []}

    @instrument.monitor(model="inner", version="1", task="regression")
    def model(rows: list[list[float]]) -> list[float]:
        return [float(sum(row)) for row in rows]

    @app.post("/predict")
    def predict() -> Any:
        return jsonify(predictions=[float(sum(row)) for row in request.get_json()["instances"]])

    @app.post("/monitored")
    def monitored() -> Any:
        return jsonify(predictions=model(request.get_json()["instances"]))

    @app.post("/echo")
    def echo() -> Any:
        body = request.get_data()
        state["received"].append(body)
        return Response(body, content_type=request.content_type)

    @app.post("/stream")
    def stream() -> Any:
        request.get_data()

        def chunks() -> Iterator[bytes]:
            yield b'{"predictions": ['
            state["waited"].append(state["release"].wait(10))
            yield b"1.0, 2.0]}"

        return Response(stream_with_context(chunks()), content_type="application/json")

    @app.post("/boom")
    def boom() -> Any:
        raise RuntimeError("model exploded")

    @app.get("/health")
    def health() -> Any:
        return "ok"

    options.setdefault("routes", ROUTES)
    app.wsgi_app = instrument.WSGIMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, model="http", version="2", task="regression", **options
    )
    return app, state


def server_spans(spans: list[ReadableSpan]) -> list[ReadableSpan]:
    return [s for s in spans if s.kind is SpanKind.SERVER]


def ids_of(response: httpx.Response) -> list[str]:
    return response.headers["x-prediction-id"].split(",")


def test_concurrent_requests_are_recorded_once_with_the_ids_returned(telemetry: Telemetry) -> None:
    app, _ = flask_app()
    sent = {i: [[float(i), float(j)] for j in range(1 + i % 3)] for i in range(50)}

    def post(i: int) -> httpx.Response:
        return httpx.post(url + "/predict", json={"instances": sent[i]})

    with serve(app) as url, ThreadPoolExecutor(10) as pool:
        answers = dict(zip(sent, pool.map(post, sent), strict=True))
    recorded = {
        pid: ([row["inputs"]["f0"], row["inputs"]["f1"]], row["outputs"]["prediction"])
        for pid, row in telemetry.rows().items()  # fails if any row was captured twice
    }
    assert len(recorded) == sum(len(rows) for rows in sent.values())
    for i, response in answers.items():
        assert response.json() == {"predictions": [sum(row) for row in sent[i]]}
        assert [recorded[pid] for pid in ids_of(response)] == [(row, sum(row)) for row in sent[i]]
    spans = telemetry.spans()
    servers = {s.context.span_id: s for s in server_spans(spans)}
    predicts = [s for s in spans if s.name == "predict http"]
    assert len(servers) == 50 and len(predicts) == 50
    assert all(s.parent is not None and s.parent.span_id in servers for s in predicts)


def test_a_monitored_predict_inside_the_request_is_not_recorded_twice(telemetry: Telemetry) -> None:
    app, _ = flask_app()
    sent = {i: [[float(i), 1.0]] * (1 + i % 2) for i in range(20)}

    def post(i: int) -> httpx.Response:
        return httpx.post(url + "/monitored", json={"instances": sent[i]})

    with serve(app) as url, ThreadPoolExecutor(5) as pool:
        answers = dict(zip(sent, pool.map(post, sent), strict=True))
    events = telemetry.events()
    assert {e.attributes[semconv.ATTR_MODEL_NAME] for e in events} == {"inner"}
    rows = telemetry.rows()
    assert len(rows) == sum(len(r) for r in sent.values())
    for i, response in answers.items():
        assert [rows[pid]["inputs"]["f0"] for pid in ids_of(response)] == [float(i)] * len(sent[i])
    spans = telemetry.spans()
    servers = {s.context.span_id for s in server_spans(spans)}
    inner = [s for s in spans if s.name == "predict inner"]
    assert len(inner) == 20 and all(s.parent is not None and s.parent.span_id in servers for s in inner)


def test_the_body_reaches_the_app_unchanged_and_odd_bodies_are_counted(telemetry: Telemetry) -> None:
    app, state = flask_app(max_body_bytes=100_000)
    payload = bytes(range(256)) * 300
    document = json.dumps({"instances": [[1.0, 2.0]], "note": "é"}).encode()
    big = json.dumps({"instances": [[float(i)] for i in range(20_000)]}).encode()
    with serve(app) as url, httpx.Client(base_url=url) as client:
        chunked = client.post("/echo", content=iter([payload[i : i + 7000] for i in range(0, len(payload), 7000)]))
        plain = client.post("/echo", content=document, headers={"content-type": "application/json"})
        large = client.post("/echo", content=big, headers={"content-type": "application/json"})
    assert state["received"] == [payload, document, big]
    assert chunked.content == payload and plain.content == document and large.content == big
    assert STATS.dropped["http_body_not_json"] == 1 and STATS.dropped["http_body_too_large"] == 1
    (event,) = telemetry.events()
    assert event.body["inputs"] == {"f0": [1.0], "f1": [2.0]} and event.body["ids"] == ids_of(plain)


def test_streaming_responses_stream_and_are_recorded_at_the_end(telemetry: Telemetry) -> None:
    app, state = flask_app()
    with serve(app) as url, httpx.Client(base_url=url) as client:
        with client.stream("POST", "/stream", json={"instances": [[1.0, 0.0], [2.0, 0.0]]}) as response:
            chunks = response.iter_raw()
            first = next(chunks)
            state["release"].set()
            rest = b"".join(chunks)
    assert first == b'{"predictions": [' and rest == b"1.0, 2.0]}" and state["waited"] == [True]
    assert "x-prediction-id" not in response.headers
    (event,) = telemetry.events()
    assert event.body["outputs"] == {"prediction": [1.0, 2.0]}
    (server,) = server_spans(telemetry.spans())
    assert server.attributes["http.response.status_code"] == 200


def test_an_app_crash_is_a_500_recorded_and_re_raised(telemetry: Telemetry, caplog: pytest.LogCaptureFixture) -> None:
    app, _ = flask_app(propagate=True)
    recorder = Recorder(app)
    handled, _ = flask_app()  # Flask's default: the view's exception becomes a 500 response
    with caplog.at_level(logging.CRITICAL), serve(recorder) as url, serve(handled) as url2:
        response = httpx.post(url + "/boom", json={"instances": [[1.0, 2.0]]})
        answered = httpx.post(url2 + "/boom", json={"instances": [[1.0, 2.0]]})
    assert response.status_code == 500 and answered.status_code == 500
    (raised,) = recorder.raised
    assert isinstance(raised, RuntimeError) and str(raised) == "model exploded"
    spans = telemetry.spans()
    crashed, failed = server_spans(spans)
    assert crashed.status.status_code is StatusCode.ERROR and crashed.attributes["error.type"] == "RuntimeError"
    assert crashed.attributes["http.response.status_code"] == 500
    assert failed.status.status_code is StatusCode.ERROR and failed.attributes["error.type"] == "500"
    (predict,) = [s for s in spans if s.name == "predict http"]  # the crash: a failed prediction
    assert predict.parent is not None and predict.parent.span_id == crashed.context.span_id
    assert predict.status.status_code is StatusCode.ERROR
    assert telemetry.events() == []


def test_trace_context_is_propagated_and_spans_follow_http_conventions(telemetry: Telemetry) -> None:
    app, _ = flask_app()
    with serve(app) as url, httpx.Client(base_url=url, headers={"user-agent": "tests/1"}) as client:
        response = client.post("/predict", json={"instances": [[1.0, 2.0]]}, headers={"traceparent": TRACEPARENT})
        assert client.get("/health").text == "ok"
    port = int(url.rsplit(":", 1)[1])
    deadline = time.monotonic() + 5
    while len(spans := telemetry.spans()) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)  # the server ends its span when it closes the response, after the client has it
    server, health = server_spans(spans)
    assert server.name == "POST /predict"
    assert server.parent is not None and server.parent.span_id == 0xB7AD6B7169203331
    assert server.context.trace_id == 0x0AF7651916CD43DD8448EB211C80319C
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
    (predict,) = [s for s in spans if s.name == "predict http"]
    assert predict.parent is not None and predict.parent.span_id == server.context.span_id
    (event,) = telemetry.events()
    assert event.trace_id == server.context.trace_id and event.body["ids"] == ids_of(response)
    assert health.name == "GET" and "http.route" not in health.attributes  # not a listed route: no template known


def test_plain_wsgi_applications(telemetry: Telemetry) -> None:
    body = b'{"predictions": [0.5, 0.25]}'
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]

    def generator_app(environ: Any, start_response: Any) -> Iterable[bytes]:
        environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
        start_response("200 OK", headers)  # only called once the server starts iterating
        yield body

    def list_app(environ: Any, start_response: Any) -> Iterable[bytes]:
        remaining = int(environ["CONTENT_LENGTH"])
        while remaining:  # by lines, as far as the body goes (the socket has no end before the response)
            remaining -= len(environ["wsgi.input"].readline(remaining))
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body[:10], body[10:]]

    def legacy_app(environ: Any, start_response: Any) -> Iterable[bytes]:
        environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
        write = start_response("200 OK", headers)
        write(body)
        return []

    request = {"instances": [[1.0], [2.0]]}
    for wsgi_app in (generator_app, list_app, legacy_app):
        middleware = instrument.WSGIMiddleware(wsgi_app, model="plain", routes=["/"], task="regression")
        with serve(middleware) as url:
            response = httpx.post(url, json=request)
        assert response.content == body
        if wsgi_app is legacy_app:  # write() sent the start before the body was known
            assert "x-prediction-id" not in response.headers
        else:
            assert len(ids_of(response)) == 2
    events = telemetry.events()
    assert len(events) == 2 and all(e.body["outputs"] == {"prediction": [0.5, 0.25]} for e in events)


def test_unlisted_routes_sdk_faults_and_a_disabled_sdk(telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch) -> None:
    app, _ = flask_app(trace_all_routes=False)
    with serve(app) as url:
        assert httpx.get(url + "/health").text == "ok"
    assert telemetry.spans() == []

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("SDK bug")

    monkeypatch.setattr("instrument._http.new_ids", broken)  # on the response's path: ids for the header
    app, _ = flask_app()
    with serve(app) as url:
        answer = httpx.post(url + "/predict", json={"instances": [[1.0, 2.0]]})
        monkeypatch.setattr(_runtime.current().tracer, "start_span", broken)  # type: ignore[union-attr]
        passed = httpx.post(url + "/predict", json={"instances": [[1.0, 2.0]]})
    assert answer.json() == passed.json() == {"predictions": [3.0]}
    assert STATS.errors["http.body"] == 1 and STATS.errors["http.begin"] == 1

    monkeypatch.setenv("PREDWATCH_DISABLED", "true")
    _runtime.reset_for_tests()
    app, _ = flask_app()
    with serve(app) as url:
        response = httpx.post(url + "/predict", json={"instances": [[1.0, 2.0]]})
    assert response.json() == {"predictions": [3.0]} and "x-prediction-id" not in response.headers


def test_the_input_stream_hands_every_read_to_the_middleware(telemetry: Telemetry) -> None:
    """In-process, with a stream that ends: each way of reading wsgi.input (PEP 3333) completes the body."""
    document = b'{"instances": [[1.0],\n[2.0]]}'
    readers = {
        "read": lambda stream: stream.read(),
        "read in pieces": lambda stream: [stream.read(5) for _ in range(10)],
        "readline": lambda stream: [stream.readline() for _ in range(3)],
        "readlines": lambda stream: stream.readlines(),
        "iteration": lambda stream: list(stream),
        "readinto": lambda stream: [stream.readinto(bytearray(8)) for _ in range(6)],
    }
    for name, read in readers.items():

        def app(environ: Any, start_response: Any, read: Any = read) -> Iterable[bytes]:
            read(environ["wsgi.input"])
            start_response("200 OK", [("Content-Type", "application/json")])
            return [b'{"predictions": [1.0, 2.0]}']

        middleware = instrument.WSGIMiddleware(app, model="m", routes=["/"], task="regression")
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/",
            "wsgi.input": io.BytesIO(document),
            "wsgi.url_scheme": "http",
            "SERVER_NAME": "localhost",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
        }
        started: list[Any] = []
        result = middleware(environ, lambda status, headers, exc_info=None, seen=started: seen.append(headers))
        assert b"".join(result) == b'{"predictions": [1.0, 2.0]}'
        result.close()  # type: ignore[attr-defined]
        assert len(dict(started[0])["x-prediction-id"].split(",")) == 2, name
    assert len(telemetry.events()) == len(readers)
