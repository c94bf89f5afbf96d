"""The collector end to end: ingest throughput and CPU per value, memory after 1M and 2M rows, drift read time
over a day of windows, and bytes per stored window per column (README "Performance", issue 3's targets).

    .venv/bin/python -m benchmarks.collector_ingest [--rows 1000000] [--clients 4]

Ingest: a real `predwatch collector` subprocess (uvicorn, SQLite in a temporary directory) receives
OTLP/HTTP protobuf `predwatch.inference` payloads of 512 rows x 20 features (+1 output column), built by the
SDK's own encoder and gzip-compressed as the SDK sends them, posted by `--clients` threads of this process.
CPU per value is the collector process's user+system CPU time over every value it received (the receiver,
decoding, extraction, sketching and the flusher included; the clients excluded), so values/s per core is its
inverse. Memory is the collector's RSS once the first 1M rows are in the sketches, then again after 2M.

Drift: a second collector on a store holding a day of 60-s windows (20 numeric features, 512 rows each,
written through SQLiteStore as the flusher writes them) answers GET /api/v1/models/{m}/drift for the last 24 h
(uploaded reference of 5,000 rows); the median of `--repeat` requests, HTTP included.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import psutil

ROWS_PER_REQUEST = 512
FEATURES = 20
MODEL = "bench"


def sdk_payloads(count: int, seed: int = 0) -> list[bytes]:
    """`count` distinct gzip-compressed ExportLogsServiceRequest bodies, each one 512 x 20 `ModelMonitor.log`."""
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider

    import instrument
    from instrument import _runtime
    from instrument._encode import encode_logs

    _runtime.reset_for_tests()
    exporter = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    logs = LoggerProvider(shutdown_on_exit=False)
    logs.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    instrument.configure(
        service_name="bench",
        tracer_provider=TracerProvider(shutdown_on_exit=False),
        meter_provider=MeterProvider(shutdown_on_exit=False),
        logger_provider=logs,
        resource_metrics=False,
    )
    monitor = instrument.ModelMonitor(model=MODEL, version="1", task="regression")
    rng = np.random.default_rng(seed)
    for _ in range(count):
        x = rng.normal(size=(ROWS_PER_REQUEST, FEATURES)) * np.arange(1, FEATURES + 1)
        monitor.log({f"f{j}": x[:, j] for j in range(FEATURES)}, rng.normal(size=ROWS_PER_REQUEST))
        instrument.flush()  # one call per event: calls the worker picks up together would travel as one
    records = exporter.get_finished_logs()
    _runtime.reset_for_tests()
    assert len(records) == count, f"{len(records)} events for {count} calls"  # each request holds 512 rows
    return [gzip.compress(encode_logs([r]), compresslevel=1, mtime=0) for r in records]


@contextlib.contextmanager
def collector(store_path: str, *extra: str) -> Iterator[tuple[str, psutil.Process]]:
    """A `predwatch collector` subprocess on an ephemeral port: (base URL, its process)."""
    command = [sys.executable, "-m", "collector.cli", "collector", "--http", "127.0.0.1:0", "--grpc", "off"]
    command += ["--store", f"sqlite:///{store_path}", "--log-level", "info", *extra]
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        url = _wait_for_url(proc)
        yield url, psutil.Process(proc.pid)
    finally:
        proc.terminate()
        proc.wait(60)


def _wait_for_url(proc: subprocess.Popen[str]) -> str:
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:
        lines.append(line)
        found = re.search(r"listening on (http://\S+)", line)
        if found:
            threading.Thread(target=proc.stderr.read, daemon=True).start()  # keep the pipe drained
            url = found.group(1)
            for _ in range(200):
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(url + "/healthz").status_code == 200:
                        return url
                time.sleep(0.05)
    raise RuntimeError("the collector did not start:\n" + "".join(lines))


def _send(url: str, payloads: list[bytes], requests: int, clients: int) -> None:
    headers = {"content-type": "application/x-protobuf", "content-encoding": "gzip"}
    counter = iter(range(requests))
    lock = threading.Lock()

    def client() -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                while http.post("/v1/logs", content=payloads[i % len(payloads)]).status_code == 503:
                    time.sleep(0.05)  # backpressure: retry as an OTLP exporter would

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _wait_ingested(url: str, rows: int) -> None:
    while True:
        ingest = httpx.get(url + "/api/v1/status").json()["ingest"]
        if ingest["rows"] >= rows and ingest["queue_records"] == 0:
            return
        time.sleep(0.02)


class QueuePeak:
    """The largest ingest queue (bytes) /api/v1/status reports while the block runs: what RSS follows."""

    def __init__(self, url: str) -> None:
        self.url, self.peak, self._stop = url, 0, threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> QueuePeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _poll(self) -> None:
        with httpx.Client(base_url=self.url) as http:
            while not self._stop.wait(0.05):
                self.peak = max(self.peak, http.get("/api/v1/status").json()["ingest"]["queue_bytes"])


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def run_ingest(rows: int = 1_000_000, clients: int = 4) -> dict[str, float]:
    payloads = sdk_payloads(16)
    per_request = ROWS_PER_REQUEST * (FEATURES + 1)
    requests = rows // ROWS_PER_REQUEST
    results: dict[str, float] = {"payload_bytes": float(statistics.mean(map(len, payloads)))}
    with tempfile.TemporaryDirectory() as tmp, collector(os.path.join(tmp, "ingest.db")) as (url, process):
        _send(url, payloads, 8, 1)  # warm up: imports, first window, connection
        _wait_ingested(url, 8 * ROWS_PER_REQUEST)
        for label, done in (("1m", 8), ("2m", 8 + requests)):
            cpu0, wall0 = _cpu(process), time.perf_counter()
            with QueuePeak(url) as queue:
                _send(url, payloads, requests, clients)
                _wait_ingested(url, (done + requests) * ROWS_PER_REQUEST)
            cpu, wall = _cpu(process) - cpu0, time.perf_counter() - wall0
            results[f"queue_peak_mb_{label}"] = queue.peak / 1e6
            values = requests * per_request
            results[f"cpu_ns_per_value_{label}"] = cpu / values * 1e9
            results[f"values_per_cpu_s_{label}"] = values / cpu
            results[f"values_per_s_wall_{label}"] = values / wall
            results[f"rss_mb_after_{label}"] = process.memory_info().rss / 1e6
        results["rows_per_run"] = float(requests * ROWS_PER_REQUEST)
    return results


def _day_of_windows(store_path: str, rng: np.random.Generator) -> tuple[float, int]:
    """Write 1,440 60-s windows ending now (20 numeric features x 512 rows each): (bytes per window column, end)."""
    from collector.sketches import Profile
    from collector.store import WindowRecord
    from collector.store_sqlite import SQLiteStore

    store = SQLiteStore(store_path)
    now = int(time.time()) // 60 * 60
    base = [rng.normal(j, 1 + j, size=ROWS_PER_REQUEST) for j in range(FEATURES)]
    records, blob_bytes = [], 0
    for i in range(1440):
        profile = Profile.zero()
        profile.update_columns(
            ROWS_PER_REQUEST, {("input", f"f{j}"): base[j] + (i % 13) * 0.01 for j in range(FEATURES)}
        )
        record = WindowRecord.from_profile(MODEL, "1", now - (1440 - i) * 60, 60, profile, "bench")
        blob_bytes += len(record.profile)
        records.append(record)
        if len(records) == 60:
            store.write_windows(records)
            records = []
    store.close()
    return blob_bytes / (1440 * FEATURES), now


def run_drift(repeat: int = 20) -> dict[str, float]:
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "day.db")
        blob_per_column, end = _day_of_windows(path, rng)
        day = {"start": str(end - 86_400), "end": str(end)}  # 24 h, not aligned to the 6-h and 1-day rollups
        db_bytes = sum(os.path.getsize(os.path.join(tmp, f)) for f in os.listdir(tmp))
        with collector(path) as (url, _):
            reference = {"inputs": {f"f{j}": rng.normal(j, 1 + j, 5000).tolist() for j in range(FEATURES)}}
            httpx.put(f"{url}/api/v1/models/{MODEL}/reference", params={"version": "1"}, json=reference, timeout=60)
            times = []
            with httpx.Client(base_url=url, timeout=60) as http:
                for _ in range(repeat + 1):
                    began = time.perf_counter()
                    answer = http.get(f"/api/v1/models/{MODEL}/drift", params=day).json()
                    times.append(time.perf_counter() - began)
            assert answer["rows"] == 1440 * ROWS_PER_REQUEST and len(answer["features"]) == FEATURES, answer
    return {
        "drift_ms_median": statistics.median(times[1:]) * 1e3,
        "drift_ms_first": times[0] * 1e3,
        "window_blob_bytes_per_column": blob_per_column,
        "db_bytes_per_window_column": db_bytes / (1440 * FEATURES),
    }


def run(rows: int = 1_000_000, clients: int = 4, repeat: int = 20) -> dict[str, float]:
    return {**run_ingest(rows, clients), **run_drift(repeat)}


def report(results: dict[str, Any]) -> str:
    r = results
    rows = int(r["rows_per_run"])
    return "\n".join(
        [
            f"Collector end to end: OTLP/HTTP protobuf+gzip, {ROWS_PER_REQUEST} rows x {FEATURES} features + 1 output"
            f" per request ({r['payload_bytes'] / 1e3:.0f} kB), {rows:,} rows per run",
            f"  CPU per value (collector process)   {r['cpu_ns_per_value_1m']:8.0f} ns  then "
            f"{r['cpu_ns_per_value_2m']:.0f} ns",
            f"  values per CPU-second (per core)    {r['values_per_cpu_s_1m'] / 1e6:8.2f} M   then "
            f"{r['values_per_cpu_s_2m'] / 1e6:.2f} M        target >= 1 M",
            f"  values per second, wall (2 cores)   {r['values_per_s_wall_1m'] / 1e6:8.2f} M   then "
            f"{r['values_per_s_wall_2m'] / 1e6:.2f} M   (clients share the machine)",
            f"  collector RSS after 1M / 2M rows    {r['rss_mb_after_1m']:8.0f} MB  / {r['rss_mb_after_2m']:.0f} MB"
            "        target: independent of rows",
            f"  peak ingest queue (the RSS driver)  {r['queue_peak_mb_1m']:8.0f} MB  / {r['queue_peak_mb_2m']:.0f} MB"
            "        bounded by [limits] queue_bytes (64 MiB)",
            f"Drift, 20 features, last 24 h of 60-s windows, over HTTP: {r['drift_ms_median']:.1f} ms median"
            f" (first {r['drift_ms_first']:.1f} ms)   target < 50 ms",
            f"Stored window per column: {r['window_blob_bytes_per_column']:.0f} bytes (raw window),"
            f" {r['db_bytes_per_window_column']:.0f} bytes with rollups and indexes",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per measured run (two runs)")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    print(report(run(args.rows, args.clients, args.repeat)))


if __name__ == "__main__":
    main()
