"""A real OTLP/HTTP endpoint for tests: decodes each protobuf request (gzip included) and keeps it.

`mode` makes it misbehave: "ok" answers 200, "stall" holds every request for `stall_s` before answering,
"unavailable" answers 503 with Retry-After.
"""

from __future__ import annotations

import gzip
import threading
import time
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

REQUESTS = {
    "/v1/traces": ExportTraceServiceRequest,
    "/v1/logs": ExportLogsServiceRequest,
    "/v1/metrics": ExportMetricsServiceRequest,
}


class OTLPServer:
    def __init__(self, mode: str = "ok", stall_s: float = 5.0) -> None:
        self.mode = mode
        self.stall_s = stall_s
        self.requests: dict[str, list[Any]] = {path: [] for path in REQUESTS}
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if server.mode == "stall":
                    server._stop.wait(server.stall_s)
                if server.mode == "unavailable":
                    self.send_response(503)
                    self.send_header("Retry-After", "1")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                encoding = self.headers.get("Content-Encoding", "")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                message = REQUESTS[self.path].FromString(body)
                with server._lock:
                    server.requests[self.path].append(message)
                    server.headers.append({k.lower(): v for k, v in self.headers.items()})
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> OTLPServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def wait_for(self, predicate: Any, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError("the expected telemetry did not arrive in time")
            time.sleep(0.02)

    # --- decoded views ---
    def log_records(self) -> Iterator[tuple[Any, Any]]:
        with self._lock:
            requests = list(self.requests["/v1/logs"])
        for request in requests:
            for rl in request.resource_logs:
                for sl in rl.scope_logs:
                    for record in sl.log_records:
                        yield rl.resource, record

    def spans(self) -> list[tuple[Any, Any]]:
        with self._lock:
            requests = list(self.requests["/v1/traces"])
        return [
            (rs.resource, span)
            for r in requests
            for rs in r.resource_spans
            for ss in rs.scope_spans
            for span in ss.spans
        ]

    def metrics(self, name: str) -> list[tuple[Any, Any]]:
        with self._lock:
            requests = list(self.requests["/v1/metrics"])
        return [
            (rm.resource, m)
            for r in requests
            for rm in r.resource_metrics
            for sm in rm.scope_metrics
            for m in sm.metrics
            if m.name == name
        ]


def value(v: AnyValue) -> Any:
    """An AnyValue as plain Python (independent of the SDK's own code)."""
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: value(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, kind)


def attributes(kvs: Any) -> dict[str, Any]:
    return {kv.key: value(kv.value) for kv in kvs}
