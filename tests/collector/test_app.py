"""The application as uvicorn serves it: routes, tokens, the start page, lifespan (gRPC, pipeline, final flush).

`serve()` is the real collector in a thread (uvicorn on an ephemeral port, lifespan on, SQLite in tmp_path);
test_api, test_cli and test_end_to_end use it too.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import uvicorn
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2_grpc import LogsServiceStub
from starlette.applications import Starlette

from collector.app import create_app
from collector.records import InferenceBatch
from collector.service import CollectorService
from collector.settings import Address, CollectorSettings
from collector.store_sqlite import SQLiteStore


@dataclass
class Running:
    url: str
    app: Starlette
    store: SQLiteStore
    grpc_port: int | None

    @property
    def service(self) -> CollectorService:
        service: CollectorService = self.app.state.service
        return service

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def wait_rows(self, model: str, rows: int, timeout_s: float = 15.0, token: str | None = None) -> None:
        deadline = time.monotonic() + timeout_s
        with self.client(token) as http:
            while True:
                seen = sum(m["rows"] for m in http.get("/api/v1/models").json() if m["model"] == model)
                if seen >= rows:
                    assert seen == rows, f"{seen} rows of {model}, expected {rows}"
                    return
                assert time.monotonic() < deadline, f"only {seen} of {rows} rows of {model} arrived"
                time.sleep(0.05)


@contextmanager
def serve(tmp_path: Path, grpc_on: bool = False, **overrides: Any) -> Iterator[Running]:
    options: dict[str, Any] = {
        "http": Address("127.0.0.1", 0),
        "grpc": Address("127.0.0.1", 0) if grpc_on else None,
        "store": f"sqlite:///{tmp_path / 'collector.db'}",
        "collector_id": "test",
        **overrides,
    }
    settings = CollectorSettings(**options)
    store = SQLiteStore(str(tmp_path / "collector.db"))
    app = create_app(settings, store)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="on", log_level="warning", ws="none")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the collector did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Running(f"http://127.0.0.1:{port}", app, store, app.state.grpc_port)
    finally:
        server.should_exit = True
        thread.join(30)
        store.close()


def inference(model: str, rows: int, t: float | None = None, version: str = "1") -> InferenceBatch:
    return InferenceBatch(
        model,
        version,
        time.time() if t is None else t,
        [f"{model}-{i}" for i in range(rows)],
        {"x": [float(i) for i in range(rows)]},
        {},
    )


def test_health_and_start_page(tmp_path: Path) -> None:
    with serve(tmp_path) as running, running.client() as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        page = http.get("/")  # the dashboard: it reads everything it shows from /api/v1
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "predwatch" in page.text
        assert http.get("/nope").status_code == 404


def test_api_token_guards_everything_but_health_and_otlp(tmp_path: Path) -> None:
    with serve(tmp_path, api_tokens=("api-secret",), ingest_tokens=("ingest-secret",)) as running:
        with running.client() as anonymous:
            assert anonymous.get("/healthz").status_code == 200
            assert anonymous.get("/").status_code == 200  # the page holds no data; its API calls carry the token
            for path in ("/api/v1/models", "/api/v1/models/x/drift", "/api/v1/status", "/metrics", "/anything"):
                response = anonymous.get(path)
                assert response.status_code == 401, path
                assert response.headers["www-authenticate"] == 'Bearer realm="predwatch"'
                assert "API token" in response.json()["error"]
        with running.client("wrong") as wrong:
            response = wrong.get("/api/v1/models")
            assert response.status_code == 401 and 'error="invalid_token"' in response.headers["www-authenticate"]
        with running.client("api-secret") as api:
            assert api.get("/api/v1/models").json() == []
            assert api.get("/").status_code == 200
            # The OTLP routes take the ingest token, not the API token.
            otlp = {"content-type": "application/x-protobuf"}
            body = ExportLogsServiceRequest().SerializeToString()
            assert api.post("/v1/logs", content=body, headers=otlp).status_code == 401
            ingest = {**otlp, "authorization": "Bearer ingest-secret"}
            assert httpx.post(running.url + "/v1/logs", content=body, headers=ingest).status_code == 200


def test_lifespan_serves_grpc_and_writes_every_window_at_shutdown(tmp_path: Path) -> None:
    with serve(tmp_path, grpc_on=True, ingest_tokens=("t",)) as running:
        assert running.grpc_port
        with grpc.insecure_channel(f"127.0.0.1:{running.grpc_port}") as channel:
            stub = LogsServiceStub(channel)  # type: ignore[no-untyped-call]
            stub.Export(ExportLogsServiceRequest(), metadata=[("authorization", "Bearer t")], timeout=10)
            with pytest.raises(grpc.RpcError) as refused:
                stub.Export(ExportLogsServiceRequest(), timeout=10)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        running.service._sink([inference("churn", 7)])
        service = running.service
        assert running.store.models() == []  # still in the open window
    assert service.windows_written == 1  # shutdown wrote it
    reopened = SQLiteStore(str(tmp_path / "collector.db"))
    try:
        assert [(m.model, m.rows) for m in reopened.models()] == [("churn", 7)]
    finally:
        reopened.close()


def test_malformed_otlp_is_answered_and_loses_nothing(tmp_path: Path) -> None:
    """Through the whole application: bad requests get 4xx, the collector keeps serving, stored data stays."""
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
    from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs

    def logs(*records: LogRecord) -> bytes:
        request = ExportLogsServiceRequest(resource_logs=[ResourceLogs(scope_logs=[ScopeLogs(log_records=records)])])
        data: bytes = request.SerializeToString()
        return data

    def event(model: str, values: list[float]) -> LogRecord:
        def column(items: list[AnyValue]) -> AnyValue:
            return AnyValue(array_value=ArrayValue(values=items))

        body = KeyValueList(
            values=[
                KeyValue(key="ids", value=column([AnyValue(string_value=f"i{k}") for k in range(len(values))])),
                KeyValue(
                    key="inputs",
                    value=AnyValue(
                        kvlist_value=KeyValueList(
                            values=[KeyValue(key="x", value=column([AnyValue(double_value=v) for v in values]))]
                        )
                    ),
                ),
            ]
        )
        attributes = [KeyValue(key="predwatch.model.name", value=AnyValue(string_value=model))]
        return LogRecord(event_name="predwatch.inference", attributes=attributes, body=AnyValue(kvlist_value=body))

    protobuf = {"content-type": "application/x-protobuf"}
    with serve(tmp_path) as running, running.client() as http:
        assert http.post("/v1/logs", content=logs(event("kept", [1.0, 2.0, 3.0])), headers=protobuf).status_code == 200
        running.wait_rows("kept", 3)
        assert running.service.flush_due(now=time.time() + 3600) == 1  # "kept" is in the store now
        valid = logs(event("m", [1.0]))
        billion = b"\x0a\xff\xff\xff\xff\x03" + b"\x00" * 10  # a resource_logs field claiming ~1 GB
        bad = [
            (valid[: len(valid) // 2], protobuf, 400),  # truncated
            (billion, protobuf, 400),
            (b'{"resourceLogs": 5}', {"content-type": "application/json"}, 400),
            (b"\xff\xfe not json", {"content-type": "application/json"}, 400),
            (valid, {"content-type": "text/plain"}, 415),
        ]
        for body, headers, status in bad:
            assert http.post("/v1/logs", content=body, headers=headers).status_code == status
        nan_inf = logs(event("odd", [math.nan, math.inf, -math.inf]))
        assert http.post("/v1/logs", content=nan_inf, headers=protobuf).status_code == 200
        many = logs(*(event(f"model-{i}", [float(i)]) for i in range(3000)))
        assert http.post("/v1/logs", content=many, headers=protobuf).status_code == 200
        running.wait_rows("model-2999", 1)
        models = http.get("/api/v1/models").json()
        assert len(models) == 3002 and {"kept", "odd"} <= {m["model"] for m in models}
        assert http.get("/healthz").status_code == 200
        assert http.get("/api/v1/status").json()["ingest"]["invalid"] == {"decode": 4, "unsupported_media_type": 1}
    reopened = SQLiteStore(str(tmp_path / "collector.db"))
    try:
        assert len(reopened.models()) == 3002
        assert reopened.read_profile("kept", "", 0, 2e9).rows == 3
    finally:
        reopened.close()
