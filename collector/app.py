"""The collector as one ASGI application: OTLP/HTTP, the JSON API, /healthz and a start page; OTLP/gRPC and the
pipeline threads run for the application's lifespan.

    store = SQLiteStore("predwatch.db")
    app = create_app(CollectorSettings(), store)
    uvicorn.run(app, host="127.0.0.1", port=4318)        # lifespan startup starts the pipeline and gRPC
    store.close()                                         # after shutdown has written every open window

Lifespan shutdown (uvicorn runs it on SIGTERM/SIGINT once HTTP has stopped accepting and in-flight requests
are done): stop gRPC (in-flight calls get 5 s), drain the ingest queue into the windows, write every open
window to the store. `app.state.service` is the CollectorService, `app.state.grpc_port` the bound gRPC port.

Access: with API tokens set, every path except /healthz and the OTLP routes needs `Authorization: Bearer
<api token>` (401 otherwise); the OTLP routes check the ingest tokens themselves. Paths added later (the
dashboard, /metrics) are guarded by default.
"""

from __future__ import annotations

import html
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from urllib.parse import quote

import anyio.to_thread
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from collector.api import api_routes
from collector.api_common import rfc3339
from collector.auth import BearerAuth, challenge
from collector.ingest import ReceiverSettings
from collector.receiver_grpc import GrpcReceiver
from collector.receiver_http import otlp_routes
from collector.service import CollectorService
from collector.settings import CollectorSettings
from collector.store import ModelInfo, Store

__all__ = ["create_app"]

logger = logging.getLogger("collector")

OPEN_PATHS = frozenset(("/healthz", "/v1/traces", "/v1/logs", "/v1/metrics"))


class TokenGuard:
    """Pure ASGI middleware: 401 for any HTTP request outside `open_paths` without a valid bearer token."""

    def __init__(self, app: ASGIApp, auth: BearerAuth, open_paths: frozenset[str] = OPEN_PATHS) -> None:
        self.app = app
        self.auth = auth
        self.open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.auth.enabled or scope["path"] in self.open_paths:
            await self.app(scope, receive, send)
            return
        authorization = next((v for k, v in scope["headers"] if k == b"authorization"), None)
        if self.auth.check(authorization):
            await self.app(scope, receive, send)
            return
        response = JSONResponse(
            {"error": "missing or invalid API token: send Authorization: Bearer <token>"},
            status_code=401,
            headers={"WWW-Authenticate": challenge(invalid_token=authorization is not None)},
        )
        await response(scope, receive, send)


def create_app(settings: CollectorSettings, store: Store) -> Starlette:
    service = CollectorService(store, settings)
    receiver = ReceiverSettings(ingest_tokens=settings.ingest_tokens, max_body_bytes=settings.max_body_bytes)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        service.start()
        grpc: GrpcReceiver | None = None
        try:
            if settings.grpc is not None:
                grpc = GrpcReceiver(service.ingestor, receiver)
                app.state.grpc_port = grpc.start(str(settings.grpc))
                logger.info("OTLP/gRPC listening on %s:%d", settings.grpc.host, app.state.grpc_port)
            yield
        finally:
            if grpc is not None:
                await anyio.to_thread.run_sync(partial(grpc.stop, 5.0))
            clean = await anyio.to_thread.run_sync(service.stop)
            logger.info(
                "stopped: %d windows written%s",
                service.windows_written,
                "" if clean else f"; {service.lost_rows} rows could not be written",
            )

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def index(request: Request) -> Response:
        models = await anyio.to_thread.run_sync(service.models)
        return HTMLResponse(_index_page(models))

    routes = [
        *otlp_routes(service.ingestor, receiver),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/", index, methods=["GET"]),
        *api_routes(service),
    ]
    middleware = [Middleware(TokenGuard, auth=BearerAuth(settings.api_tokens))]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.service = service
    app.state.grpc_port = None
    return app


def _index_page(models: list[ModelInfo]) -> str:
    rows = []
    for m in models:
        base = f"/api/v1/models/{quote(m.model, safe='')}"
        version = f"version={quote(m.version, safe='')}"
        links = " ".join(
            f'<a href="{html.escape(url)}">{name}</a>'
            for name, url in (
                ("drift", f"{base}/drift?{version}"),
                ("reference", f"{base}/reference?{version}"),
                ("rows over time", f"{base}/timeseries?metric=rows&{version}"),
            )
        )
        rows.append(
            f"<tr><td>{html.escape(m.model)}</td><td>{html.escape(m.version)}</td><td>{m.rows}</td>"
            f"<td>{rfc3339(m.last_seen)}</td><td>{links}</td></tr>"
        )
    body = "\n".join(rows) or '<tr><td colspan="5">No predictions received yet.</td></tr>'
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>predwatch</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem}}td,th{{padding:.25rem .75rem;text-align:left}}</style>
</head><body>
<h1>predwatch collector</h1>
<p>The dashboard is coming; meanwhile each model's JSON is a click away (<a href="/api/v1/models">all models</a>).</p>
<table><thead><tr><th>model</th><th>version</th><th>rows</th><th>last seen</th><th>JSON</th></tr></thead>
<tbody>
{body}
</tbody></table>
</body></html>
"""
