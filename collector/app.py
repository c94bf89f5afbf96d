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

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import anyio.to_thread
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from collector.alerting import Alerting
from collector.api import api_routes
from collector.api_distribution import distribution_routes
from collector.auth import BearerAuth, challenge
from collector.dashboard import dashboard_routes, is_public
from collector.ingest import ReceiverSettings
from collector.receiver_grpc import GrpcReceiver
from collector.receiver_http import otlp_routes
from collector.service import CollectorService
from collector.settings import CollectorSettings
from collector.store import Store

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
        path = scope.get("path", "")
        if scope["type"] != "http" or not self.auth.enabled or path in self.open_paths or is_public(path):
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
    alerting = Alerting.build(settings, service, store)  # raises ValueError for a bad rule or notifier
    receiver = ReceiverSettings(ingest_tokens=settings.ingest_tokens, max_body_bytes=settings.max_body_bytes)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        service.start()
        alerting.start()
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
            await anyio.to_thread.run_sync(alerting.stop)
            clean = await anyio.to_thread.run_sync(service.stop)
            logger.info(
                "stopped: %d windows written%s",
                service.windows_written,
                "" if clean else f"; {service.lost_rows} rows could not be written",
            )

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    routes = [
        *otlp_routes(service.ingestor, receiver),
        Route("/healthz", healthz, methods=["GET"]),
        *dashboard_routes(settings),
        *alerting.routes(service),
        *distribution_routes(service),
        *api_routes(service),
    ]
    middleware = [Middleware(TokenGuard, auth=BearerAuth(settings.api_tokens))]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.service = service
    app.state.alerting = alerting
    app.state.grpc_port = None
    return app
