"""A real uvicorn server in a thread, on an ephemeral port, for route and browser tests.

with serve(app) as url:          # "http://127.0.0.1:54321"; lifespan runs when the app has one
    httpx.get(url + "/")
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import uvicorn
from starlette.types import ASGIApp


@contextmanager
def serve(app: ASGIApp, lifespan: Literal["auto", "on", "off"] = "auto") -> Iterator[str]:
    # ws="none": the dashboard needs no websockets, and uvicorn's websocket backends warn on import.
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan=lifespan, log_level="warning", ws="none")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="test-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the test server did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
