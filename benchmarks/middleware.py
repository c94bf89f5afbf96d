"""Requests per second of a trivial predict endpoint with and without the ASGI/WSGI middleware.

    .venv/bin/python -m benchmarks.middleware [--seconds 2] [--rounds 6] [--servers asgi,wsgi] [--variants ...]
                                              [--no-pin] [--no-cpu]

One run measures a FastAPI app under uvicorn and a Flask app under werkzeug's threaded server (one JSON row of
20 features in, one score out, validated by pydantic on FastAPI), each bare and with the middleware: with its
defaults (every request's metrics and id; traces and bodies of at most 100 requests a second, the SDK's rate
limit), with every request traced and its bodies recorded (`rate_limit="off"`), with nothing sampled (the fixed
cost: spans not recording, no payload; ids, metrics and body parsing still run), and around an app whose
predict is an `@instrument.monitor` function (defaults). Each server runs in its own process with
the SDK's own pipeline, exporting over OTLP/HTTP to a do-nothing sink in another process; the load comes from
this process (pure Python, asyncio, HTTP/1.1 on loopback; werkzeug closes the connection after each response,
so its clients reconnect). The servers are pinned to one CPU and the load generator and sink to the others
(`--no-pin` to let the OS place them), so that a server gets one whole core and nothing else runs on it.
In each round a kind's variants run one after the other between two runs of its bare server, and each loss is
taken against the mean of those two; the median over rounds is reported with its range. The machines this
runs on are shared and noisy: nothing else should run meanwhile, and one run is the unit to compare within.
Then `benchmarks.middleware_cpu` measures the CPU time the middleware adds per request in process, a steadier
figure, and estimates the loss from it and the bare server's CPU time per request.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import psutil

from benchmarks.sdk_overhead import otlp_sink

SERVERS = ("asgi", "wsgi")
BODY = json.dumps({"instances": [[round(0.1 * i, 1) for i in range(20)]]}).encode()


@dataclass(frozen=True)
class Variant:
    label: str
    middleware: dict[str, Any] | None = None  # its keyword arguments; None: no middleware
    monitored: bool = False  # the endpoint calls an @instrument.monitor function
    sample_rate: float = 1.0  # payloads recorded
    traced: float = 1.0  # requests traced (OpenTelemetry's parent-based trace-id ratio sampler)
    rate_limit: str | None = None  # the SDK's rate limit on traced and recorded calls; None: its default


VARIANTS = {
    "bare": Variant("bare"),
    "recorded": Variant("+ middleware (defaults)", {}),
    "unlimited": Variant("+ middleware, every request", {}, rate_limit="off"),
    "untraced": Variant("+ middleware, nothing sampled", {}, sample_rate=0.0, traced=0.0),
    "monitored": Variant("+ middleware, @monitor inside", {}, monitored=True),
    # Not run by default; they split the cost up further (--variants ...).
    "sampled": Variant("+ middleware, 10 % sampled", {}, sample_rate=0.1, traced=0.1, rate_limit="off"),
    "traced": Variant("+ middleware, span only", {"routes": []}, rate_limit="off"),
    "recorded_few": Variant("+ middleware, all traced, 2.5 % recorded", {}, sample_rate=0.025, rate_limit="off"),
    "passthrough": Variant("+ middleware, route not listed", {"routes": [], "trace_all_routes": False}),
}
DEFAULT_VARIANTS = ("bare", "recorded", "unlimited", "untraced", "monitored")


# --- the servers (child processes) ----------------------------------------------------------------------------
SERVER_CPU = 1  # with --pin, the servers run on this CPU, the load generator and the OTLP sink on the others


def _pin(cpu: int) -> Callable[[], None]:
    return lambda: os.sched_setaffinity(0, {cpu})


def can_pin() -> bool:
    return (
        hasattr(os, "sched_setaffinity") and SERVER_CPU in os.sched_getaffinity(0) and len(os.sched_getaffinity(0)) > 1
    )


def _asgi_app(variant: Variant) -> Any:
    from fastapi import FastAPI
    from pydantic import BaseModel

    import instrument

    @instrument.monitor(model="bench", version="1", task="binary_classification")
    def model(rows: list[list[float]]) -> list[float]:
        return [0.5] * len(rows)

    class PredictRequest(BaseModel):
        instances: list[list[float]]

    class PredictResponse(BaseModel):
        predictions: list[float]

    async def predict(request: PredictRequest) -> PredictResponse:
        rows = request.instances
        return PredictResponse(predictions=model(rows) if variant.monitored else [0.5] * len(rows))

    # The annotations are strings here (postponed evaluation) naming local classes: FastAPI needs the classes.
    predict.__annotations__ = {"request": PredictRequest, "return": PredictResponse}
    app = FastAPI()
    app.post("/predict")(predict)

    if variant.middleware is not None:
        app.add_middleware(
            instrument.ASGIMiddleware,  # type: ignore[arg-type]  # Starlette's factory protocol
            model="bench",
            version="1",
            task="binary_classification",
            **variant.middleware,
        )
    return app


def _wsgi_app(variant: Variant) -> Any:
    from flask import Flask, jsonify, request

    import instrument

    @instrument.monitor(model="bench", version="1", task="binary_classification")
    def model(rows: list[list[float]]) -> list[float]:
        return [0.5] * len(rows)

    app = Flask("bench")

    @app.post("/predict")
    def predict() -> Any:
        rows = request.get_json()["instances"]
        return jsonify(predictions=model(rows) if variant.monitored else [0.5] * len(rows))

    if variant.middleware is not None:
        app.wsgi_app = instrument.WSGIMiddleware(  # type: ignore[method-assign]
            app.wsgi_app, model="bench", version="1", task="binary_classification", **variant.middleware
        )
    return app


def configure(name: str, service_name: str, endpoint: str) -> Variant:
    """Configure this process's SDK for variant `name`: its trace sampler and payload sample rate."""
    import instrument

    variant = VARIANTS[name]
    if variant.traced < 1.0:
        os.environ["OTEL_TRACES_SAMPLER"] = "parentbased_traceidratio"
        os.environ["OTEL_TRACES_SAMPLER_ARG"] = str(variant.traced)
    instrument.configure(
        service_name=service_name, endpoint=endpoint, sample_rate=variant.sample_rate, rate_limit=variant.rate_limit
    )
    return variant


def serve(kind: str, name: str, endpoint: str) -> None:
    """Run one server; prints its port on stdout."""

    variant = configure(name, f"bench-{kind}-{name}", endpoint)
    # IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP, and
    # without it a response written in two parts waits for the client's delayed ACK (40 ms).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    if kind == "asgi":
        import uvicorn

        config = uvicorn.Config(_asgi_app(variant), log_level="warning", access_log=False, lifespan="off")
        print(port, flush=True)
        uvicorn.Server(config).run(sockets=[sock])
    else:
        from werkzeug.serving import WSGIRequestHandler, make_server

        class Quiet(WSGIRequestHandler):
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                pass

        sock.close()
        server = make_server("127.0.0.1", port, _wsgi_app(variant), threaded=True, request_handler=Quiet)
        print(port, flush=True)
        server.serve_forever()


@contextlib.contextmanager
def server(kind: str, variant: str, endpoint: str, pin: bool) -> Iterator[tuple[int, int]]:
    cmd = [sys.executable, "-m", "benchmarks.middleware", "--serve", kind, variant, endpoint]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, preexec_fn=_pin(SERVER_CPU) if pin else None)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        for _ in range(200):  # until it accepts connections
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            time.sleep(0.05)
        yield port, proc.pid
    finally:
        proc.terminate()
        proc.wait(10)


# --- the load generator (this process) ------------------------------------------------------------------------
async def _connection(port: int, request: bytes, stop: float, counts: list[int]) -> None:
    """Send requests one after the other; reconnects when the server closes (werkzeug closes after each)."""
    writer = None
    try:
        while time.perf_counter() < stop:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request)
            head = (await reader.readuntil(b"\r\n\r\n")).lower()
            start = head.index(b"content-length:") + 15
            await reader.readexactly(int(head[start : head.index(b"\r\n", start)]))
            if not head.startswith(b"http/1.1 200"):
                raise RuntimeError(f"the server answered {head[:40]!r}")
            counts[0] += 1
            if b"connection: close" in head:
                writer.close()
                writer = None
    finally:
        if writer is not None:
            writer.close()


def load(port: int, pid: int, seconds: float, connections: int) -> tuple[float, float, float]:
    """(requests per second, the server's CPU share, this process's) for `seconds` of load."""
    request = (
        f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(BODY)}\r\n\r\n"
    ).encode() + BODY
    counts = [0]

    async def main() -> None:
        stop = time.perf_counter() + seconds
        await asyncio.gather(*(_connection(port, request, stop, counts) for _ in range(connections)))

    target = psutil.Process(pid)
    server_cpu, cpu, wall = sum(target.cpu_times()[:2]), time.process_time(), time.perf_counter()
    asyncio.run(main())
    wall = time.perf_counter() - wall
    server_cpu = sum(target.cpu_times()[:2]) - server_cpu
    return counts[0] / wall, server_cpu / wall, (time.process_time() - cpu) / wall


def _cpu_us(sample: tuple[float, float, float]) -> float:
    """The server's CPU time per request, in µs, from (requests/s, CPU share, load generator's share)."""
    rps, cpu_share, _ = sample
    return 1e6 * cpu_share / rps


def run(
    seconds: float = 2.0,
    rounds: int = 6,
    connections: int = 16,
    variants: Sequence[str] = DEFAULT_VARIANTS,
    kinds: Sequence[str] = SERVERS,
    pin: bool = True,
) -> dict[str, float]:
    names = [v for v in variants if v != "bare"]
    pin = pin and can_pin()
    if pin:  # this process and the sink it starts: off the servers' CPU
        os.sched_setaffinity(0, os.sched_getaffinity(0) - {SERVER_CPU})
    results: dict[str, float] = {"pinned": float(pin)}
    with contextlib.ExitStack() as stack:
        endpoint = stack.enter_context(otlp_sink())
        servers = {(k, v): stack.enter_context(server(k, v, endpoint, pin)) for k in kinds for v in ["bare", *names]}
        for port, pid in servers.values():
            load(port, pid, 1.0, connections)  # warm-up: imports, first-call set-up
        samples: dict[tuple[str, str], list[tuple[float, float, float]]] = {key: [] for key in servers}
        bare_pairs: dict[str, list[float]] = {k: [] for k in kinds}
        for _ in range(rounds):
            for kind in kinds:
                # bare, each variant, bare again: each variant is compared with the mean of the two bare runs
                # around it, seconds apart, so that drift in the machine's speed hits both alike.
                before = load(*servers[(kind, "bare")], seconds, connections)
                for name in names:
                    samples[(kind, name)].append(load(*servers[(kind, name)], seconds, connections))
                after = load(*servers[(kind, "bare")], seconds, connections)
                samples[(kind, "bare")] += [before, after]
                bare_pairs[kind].append((before[0] + after[0]) / 2)
    for (kind, name), values in samples.items():
        results[f"{kind}_{name}_rps"] = statistics.median(v[0] for v in values)
        results[f"{kind}_{name}_server_cpu"] = statistics.median(v[1] for v in values)
        results[f"{kind}_{name}_cpu_us"] = statistics.median(_cpu_us(v) for v in values)
        if name == "bare":
            continue
        losses = [1.0 - v[0] / bare for v, bare in zip(values, bare_pairs[kind], strict=True)]
        results[f"{kind}_{name}_loss"] = statistics.median(losses)
        results[f"{kind}_{name}_loss_min"], results[f"{kind}_{name}_loss_max"] = min(losses), max(losses)
    results["client_cpu_max"] = max(v[2] for values in samples.values() for v in values)
    results["cpus"] = float(os.cpu_count() or 0)
    return results


def _loss(r: dict[str, float], key: str, metric: str) -> str:
    low, high = 100 * r[f"{key}_{metric}_min"], 100 * r[f"{key}_{metric}_max"]
    return f"{100 * r[f'{key}_{metric}']:5.1f} % ({low:.0f} to {high:.0f})"


def report(results: dict[str, float]) -> str:
    r = results
    lines = [
        "Middleware cost on a trivial predict endpoint: requests/s, the server's CPU time per request, and how many",
        "fewer requests/s than the bare runs of the same round (median over rounds, with the range)",
    ]
    titles = {"asgi": "FastAPI + uvicorn", "wsgi": "Flask + werkzeug threaded"}
    for kind in SERVERS:
        for name, variant in VARIANTS.items():
            key = f"{kind}_{name}"
            if f"{key}_rps" not in r:
                continue
            cpu = f"{r[f'{key}_cpu_us']:5.0f} us/req"
            loss = "" if name == "bare" else f"  {_loss(r, key, 'loss')} fewer"
            lines.append(f"  {titles[kind]:<26}{variant.label:<32}{r[f'{key}_rps']:6.0f} req/s {cpu}{loss}")
    where = f"servers pinned to CPU {SERVER_CPU}, load and sink on the others" if r["pinned"] else "servers not pinned"
    lines.append(
        f"  load generator CPU at most {100 * r['client_cpu_max']:.0f} % of a core ({r['cpus']:.0f} CPUs; {where})"
    )
    lines.append("  target: at most 10 % fewer requests per second with the middleware")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--no-pin", action="store_true", help="let the OS place the servers (default: one CPU)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--variants", default=",".join(DEFAULT_VARIANTS), help=f"of {', '.join(VARIANTS)}")
    parser.add_argument("--servers", default=",".join(SERVERS), help="asgi (FastAPI), wsgi (Flask) or both")
    parser.add_argument("--no-cpu", action="store_true", help="skip the in-process CPU measurement")
    parser.add_argument("--serve", nargs=3, metavar=("KIND", "VARIANT", "ENDPOINT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(*args.serve)
        return
    variants = [v for v in args.variants.split(",") if v]
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants {sorted(unknown)}; choose from {', '.join(VARIANTS)}")
    kinds = [k for k in args.servers.split(",") if k]
    if not kinds or set(kinds) - set(SERVERS):
        parser.error(f"--servers takes {' or '.join(SERVERS)}")
    results = run(args.seconds, args.rounds, args.connections, variants, kinds, not args.no_pin)
    print(report(results), flush=True)
    if not args.no_cpu:  # the steadier figure: the CPU time added per request, measured in process
        from benchmarks import middleware_cpu

        added = middleware_cpu.run(variants=variants, kinds=kinds, pin=not args.no_pin)
        print(middleware_cpu.report(added, {k: results[f"{k}_bare_cpu_us"] for k in kinds}))


if __name__ == "__main__":
    main()
