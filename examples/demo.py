"""`make demo`: a collector, the example FastAPI model server and drifting traffic with late labels, then the
drift (and performance/operations) report and the dashboard URL.

    .venv/bin/python -m examples.demo [--duration 60] [--port 4318] [--window 10] [--once]

Starts `predwatch collector` on SQLite in a temporary directory (port 4318 if free, else any free port), sets
the reference from the training split (PUT /api/v1/models/cancer/reference), starts `examples.fastapi_app`,
replays the held-out split against it for `--duration` seconds (drift injected after the first third,
labels posted late), prints the report and the URLs, and keeps everything running until Ctrl-C (or exits
at once with `--once`). Ctrl-C or SIGTERM stops the children and waits for them.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

import instrument
from collector.report import ReportError, fetch, render, use_colour
from examples.cancer import MODEL, VERSION, train
from examples.traffic import replay

ROOT = Path(__file__).resolve().parent.parent


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class Children:
    """Child processes, each logging to a file; stopped (SIGTERM, then SIGKILL) in reverse order."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, *args: str, pattern: str, timeout_s: float = 60) -> str:
        """Start `python -m args...` and return the URL its log announces (the first group of `pattern`)."""
        log = self.logs / f"{name}.log"
        with open(log, "wb") as out:
            # A session of its own: a Ctrl-C in the terminal reaches the demo only, which stops the children in order.
            proc = subprocess.Popen(
                [sys.executable, "-m", *args],
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                start_new_session=True,
            )
        self.procs.append(proc)
        deadline = time.monotonic() + timeout_s
        while True:
            found = re.search(pattern, log.read_text(errors="replace"))
            if found:
                return found.group(1)
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        for proc in reversed(self.procs):  # the server first: its SDK flushes to the collector as it exits
            if proc.poll() is None:
                proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def _sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def running(port: int, window_s: int) -> Iterator[tuple[Children, str, str]]:
    with tempfile.TemporaryDirectory(prefix="predwatch-demo-") as tmp:
        children = Children(Path(tmp))
        try:
            store = f"sqlite:///{Path(tmp) / 'demo.db'}"
            collector = children.start(
                "collector",
                *("collector.cli", "collector", "--http", f"127.0.0.1:{port}", "--grpc", "off"),
                *("--store", store, "--window", str(window_s)),
                pattern=r"listening on (http://\S+)",
            )
            _wait_healthy(collector)
            server = children.start(
                "server",
                *("examples.fastapi_app", "--port", "0", "--collector", collector),
                pattern=r"serving model cancer on (http://\S+)",
            )
            yield children, collector, server
        finally:
            children.stop()


def _wait_healthy(url: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.05)
    raise RuntimeError(f"the collector at {url} did not answer /healthz")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="predwatch demo: a monitored model with drifting traffic.")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of traffic (default 60)")
    parser.add_argument("--rate", type=float, default=20.0, help="requests per second (default 20)")
    parser.add_argument("--label-delay", type=float, default=5.0, help="seconds before labels are posted")
    parser.add_argument("--port", type=int, help="collector port (default 4318 if free, else any free port)")
    parser.add_argument("--window", type=int, default=10, help="collector window in seconds (default 10)")
    parser.add_argument("--once", action="store_true", help="exit after printing the report")
    args = parser.parse_args(argv)
    port = args.port if args.port is not None else (4318 if _free(4318) else 0)
    signal.signal(signal.SIGTERM, _sigterm)
    try:
        with running(port, args.window) as (children, collector, server):
            pids = " ".join(str(p.pid) for p in children.procs)
            print(f"collector {collector}, model server {server} (pids {pids}); logs in {children.logs}", flush=True)
            cancer = train()
            answer = httpx.put(
                f"{collector}/api/v1/models/{MODEL}/reference", params={"version": VERSION}, json=cancer.reference()
            )
            answer.raise_for_status()
            print(f"reference set: {answer.json()['rows']} training rows", flush=True)
            drift_after = max(1, int(args.duration * args.rate / 3)) if args.rate > 0 else 200
            print(f"sending traffic for {args.duration:g} s, drift after {drift_after} requests ...", flush=True)
            stats = replay(
                server,
                collector,
                duration_s=args.duration,
                rate=args.rate,
                drift_after=drift_after,
                label_delay_s=min(args.label_delay, args.duration / 2),
                cancer=cancer,
            )
            instrument.shutdown()  # labels sent through the SDK (a collector without /api/v1/actuals) are out
            via = "POST /api/v1/actuals" if stats.labels_via == "api" else "the SDK"
            print(
                f"{stats.requests} requests, {stats.rows} rows ({stats.drifted_rows} drifted), "
                f"{stats.labels_sent} late labels via {via}",
                flush=True,
            )
            _report(collector, args.duration)
            print(f"dashboard  {collector}/\nAPI        {collector}/api/v1/models\n"
                  f"report     predwatch report {MODEL} --url {collector}", flush=True)  # fmt: skip
            if not args.once:
                print("running; Ctrl-C stops everything", flush=True)
                while all(p.poll() is None for p in children.procs):
                    time.sleep(0.5)
                print("a child process exited; stopping", file=sys.stderr)
                return 1
    except KeyboardInterrupt:
        print("\nstopped", file=sys.stderr)
    except (RuntimeError, httpx.HTTPError) as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
    return 0


def _report(collector: str, duration_s: float) -> None:
    time.sleep(1.0)  # the server's SDK exports on its own schedule
    try:
        answers = fetch(collector, MODEL, VERSION, since_s=duration_s + 120, wait_s=15)
    except ReportError as exc:
        print(f"no report: {exc}", file=sys.stderr)
        return
    print(render(answers, colour=use_colour(sys.stdout)), flush=True)


if __name__ == "__main__":
    sys.exit(main())
