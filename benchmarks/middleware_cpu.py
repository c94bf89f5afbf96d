"""The CPU time the ASGI/WSGI middleware adds to a request, measured in process, without a server.

    .venv/bin/python -m benchmarks.middleware_cpu [--blocks 16] [--size 2000] [--servers asgi,wsgi] [--variants ...]
    .venv/bin/python -m benchmarks.middleware_cpu --bytecodes asgi untraced     # where it goes, deterministically

Requests per second through a real server (`benchmarks.middleware`) are what a user sees, but on a shared
machine they move by ±20 % from one second to the next. This drives the same apps straight through their
ASGI/WSGI interfaces (a prepared request, no sockets) in one process per variant, alternating blocks of the
bare app and the app with the middleware, and reports the median difference in process CPU time (all
threads: the SDK's worker and export threads included, each block flushed before its clock stops; a block
is 2,000 requests, so that the exports a flush forces cost about what they cost a server, where the
processors export every few seconds). Each ASGI request runs as a task of its own, as a server runs it, so
the event loop turns (and releases the GIL) between requests: a background thread that wants the GIL too
often shows here as it does in a server. Drift in the machine's speed hits both halves of a pair alike, so
the figure is steady to a few microseconds; divided by the server's own CPU time per request it estimates the
loss in requests per second. A real server under load costs more per request than this estimate (its
requests interleave; the server runs read 5-10 points above it), so it is a floor, not the figure to quote.

`--bytecodes KIND VARIANT` counts instead the Python bytecodes a request executes (sys.settrace), by function,
bare and with the middleware: the same count on every run and every machine, so a change to the hot path can
be judged without timing it. The worker's share is counted too (its queue is drained on the measuring
thread); the export threads' encoding is not. The defaults' count depends on the clock (traced requests run
so slowly that the rate limit admits most of them): count `untraced` or `unlimited` instead.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from benchmarks.middleware import BODY, DEFAULT_VARIANTS, SERVER_CPU, SERVERS, VARIANTS, can_pin
from benchmarks.sdk_overhead import otlp_sink

_SCOPE = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "POST",
    "scheme": "http",
    "path": "/predict",
    "raw_path": b"/predict",
    "root_path": "",
    "query_string": b"",
    "headers": [
        (b"host", b"127.0.0.1:8000"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(BODY)).encode()),
        (b"user-agent", b"bench"),
    ],
    "client": ("127.0.0.1", 50000),
    "server": ("127.0.0.1", 8000),
}
_ENVIRON = {
    "REQUEST_METHOD": "POST",
    "PATH_INFO": "/predict",
    "SCRIPT_NAME": "",
    "QUERY_STRING": "",
    "SERVER_NAME": "127.0.0.1",
    "SERVER_PORT": "8000",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "CONTENT_TYPE": "application/json",
    "CONTENT_LENGTH": str(len(BODY)),
    "HTTP_HOST": "127.0.0.1:8000",
    "HTTP_USER_AGENT": "bench",
    "REMOTE_ADDR": "127.0.0.1",
    "wsgi.url_scheme": "http",
    "wsgi.version": (1, 0),
    "wsgi.multithread": True,
    "wsgi.multiprocess": False,
    "wsgi.run_once": False,
}


def _asgi_driver(app: Any) -> Callable[[int], None]:
    request = {"type": "http.request", "body": BODY, "more_body": False}

    async def receive() -> dict[str, Any]:
        return request

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start" and message["status"] != 200:
            raise RuntimeError(f"the app answered {message['status']}")

    async def requests(n: int) -> None:
        for _ in range(n):  # each request a task of its own, as a server makes it: the loop turns between them
            await asyncio.create_task(app(dict(_SCOPE), receive, send))

    return lambda n: asyncio.run(requests(n))


def _wsgi_driver(app: Any) -> Callable[[int], None]:
    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        if not status.startswith("200"):
            raise RuntimeError(f"the app answered {status}")
        return lambda data: None

    def requests(n: int) -> None:
        for _ in range(n):
            environ = {**_ENVIRON, "wsgi.input": io.BytesIO(BODY), "wsgi.errors": sys.stderr}
            result = app(environ, start_response)
            try:
                b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()

    return requests


def _drives(kind: str, name: str, service_name: str, endpoint: str) -> dict[str, Callable[[int], None]]:
    """This process configured for variant `name`; {"bare": drive, name: drive}, each `drive(n)` sending n requests."""
    from benchmarks.middleware import _asgi_app, _wsgi_app, configure

    variant = configure(name, service_name, endpoint)
    make, driver = (_asgi_app, _asgi_driver) if kind == "asgi" else (_wsgi_app, _wsgi_driver)
    return {"bare": driver(make(VARIANTS["bare"])), name: driver(make(variant))}


def measure(kind: str, name: str, endpoint: str, blocks: int, size: int) -> dict[str, float]:
    """In this process (configured for `name`): bare and middleware CPU µs per request, alternating blocks."""
    import instrument

    drives = _drives(kind, name, f"bench-cpu-{kind}-{name}", endpoint)

    def block(label: str, n: int) -> float:
        cpu = time.process_time()
        drives[label](n)
        instrument.flush()  # the export of this block's spans, logs and metrics is part of its cost
        return (time.process_time() - cpu) / n * 1e6

    for label in drives:  # warm-up: imports, first-call set-up
        block(label, size)
    bare, added = [], []
    for i in range(blocks):
        order = ("bare", name) if i % 2 else (name, "bare")
        times = {label: block(label, size) for label in order}
        bare.append(times["bare"])
        added.append(times[name] - times["bare"])
    low, _, high = statistics.quantiles(added, n=4)
    return {"bare_us": statistics.median(bare), "added_us": statistics.median(added), "q1": low, "q3": high}


def bytecodes(kind: str, name: str, endpoint: str, n: int = 50) -> tuple[float, float, list[tuple[float, str]]]:
    """(bare bytecodes per request, with the middleware, [(added per request, "file:function"), ...])."""
    import collections
    from types import FrameType

    import instrument
    from instrument import _runtime

    drives = _drives(kind, name, f"bench-ops-{kind}-{name}", endpoint)
    for drive in drives.values():
        drive(300)
    instrument.flush()
    runtime = _runtime.current()
    assert runtime is not None
    runtime.worker.stop()  # from here the queue is drained on this thread, where the count sees it
    counts: dict[str, collections.Counter[str]] = {}
    for label, drive in drives.items():
        counter: collections.Counter[str] = collections.Counter()

        def trace(frame: FrameType, event: str, arg: Any, counter: collections.Counter[str] = counter) -> Any:
            frame.f_trace_opcodes = True
            if event == "opcode":
                code = frame.f_code
                counter[f"{code.co_filename.rpartition('site-packages/')[2]}:{code.co_name}"] += 1
            return trace

        sys.settrace(trace)
        try:
            drive(n)
            runtime.worker.drain()
        finally:
            sys.settrace(None)
        counts[label] = counter
    bare, with_middleware = counts["bare"], counts[name]
    added = sorted(
        ((with_middleware[k] - bare[k]) / n, k.replace(os.getcwd() + os.sep, "")) for k in bare | with_middleware
    )
    return bare.total() / n, with_middleware.total() / n, added[::-1]


def run(
    blocks: int = 16,
    size: int = 2000,
    variants: Sequence[str] = DEFAULT_VARIANTS,
    kinds: Sequence[str] = SERVERS,
    pin: bool = True,
) -> dict[str, dict[str, float]]:
    """{f"{kind}_{variant}": measure(...)} for each kind and variant but bare, each in its own process."""
    pin = pin and can_pin()
    if pin:  # this process and the sink it starts: off the measuring processes' CPU
        os.sched_setaffinity(0, os.sched_getaffinity(0) - {SERVER_CPU})
    results: dict[str, dict[str, float]] = {}
    with otlp_sink() as endpoint:
        for kind in kinds:
            for name in variants:
                if name == "bare":
                    continue
                cmd = [sys.executable, "-m", "benchmarks.middleware_cpu", "--measure", kind, name, endpoint]
                cmd += ["--blocks", str(blocks), "--size", str(size)]
                preexec = (lambda: os.sched_setaffinity(0, {SERVER_CPU})) if pin else None
                out = subprocess.run(cmd, capture_output=True, text=True, check=True, preexec_fn=preexec).stdout
                results[f"{kind}_{name}"] = json.loads(out.strip().splitlines()[-1])
    return results


def report(results: dict[str, dict[str, float]], server_cpu_us: dict[str, float] | None = None) -> str:
    """`server_cpu_us`: the bare server's CPU µs per request by kind (from `benchmarks.middleware`), for the
    estimate of the requests/s lost."""
    titles = {"asgi": "FastAPI", "wsgi": "Flask"}
    lines = ["CPU the middleware adds per request, in process (median of alternating blocks, with the quartiles)"]
    for key, r in results.items():
        kind, name = key.split("_", 1)
        line = f"  {titles[kind]:<9}{VARIANTS[name].label:<34}+{r['added_us']:5.1f} us ({r['q1']:.1f} to {r['q3']:.1f})"
        line += f"  app alone {r['bare_us']:5.1f} us"
        if server_cpu_us and kind in server_cpu_us:
            share = r["added_us"] / (server_cpu_us[kind] + r["added_us"])
            line += f"  >= {100 * share:4.1f} % fewer req/s at {server_cpu_us[kind]:.0f} us/req served (a floor)"
        lines.append(line)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--blocks", type=int, default=16)
    parser.add_argument("--size", type=int, default=2000, help="requests per block")
    parser.add_argument("--variants", default=",".join(DEFAULT_VARIANTS), help=f"of {', '.join(VARIANTS)}")
    parser.add_argument("--servers", default=",".join(SERVERS), help="asgi (FastAPI), wsgi (Flask) or both")
    parser.add_argument("--no-pin", action="store_true", help="let the OS place the measuring processes")
    parser.add_argument("--bytecodes", nargs=2, metavar=("KIND", "VARIANT"), help="count bytecodes per request")
    parser.add_argument("--measure", nargs=3, metavar=("KIND", "VARIANT", "ENDPOINT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bytecodes:
        kind, name = args.bytecodes
        if kind not in SERVERS or name not in VARIANTS or name == "bare":
            parser.error(f"--bytecodes takes one of {', '.join(SERVERS)} and a variant other than bare")
        with otlp_sink() as endpoint, contextlib.redirect_stdout(sys.stderr):
            bare, total, added = bytecodes(kind, name, endpoint)
        print(f"Python bytecodes per request: {bare:.0f} bare, {total:.0f} with the middleware ({name}), by function:")
        for count, where in added:
            if abs(count) >= 5:
                print(f"  {count:+7.0f}  {where}")
        return
    if args.measure:
        with contextlib.redirect_stdout(sys.stderr):  # anything the apps print stays off the result line
            result = measure(*args.measure, args.blocks, args.size)
        print(json.dumps(result))
        return
    variants = [v for v in args.variants.split(",") if v]
    if set(variants) - set(VARIANTS):
        parser.error(f"unknown variants; choose from {', '.join(VARIANTS)}")
    kinds = [k for k in args.servers.split(",") if k]
    if not kinds or set(kinds) - set(SERVERS):
        parser.error(f"--servers takes {' or '.join(SERVERS)}")
    print(report(run(args.blocks, args.size, variants, kinds, not args.no_pin)))


if __name__ == "__main__":
    main()
