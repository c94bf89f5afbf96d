"""A real collector (create_app, SQLite) fed by the SDK with drifting data spread over the last 12 hours.

    with live_collector(tmp_path) as url:     # the dashboard at url + "/"
        ...

`ModelMonitor.log` sends a batch for every half hour over OTLP/HTTP; a log processor in front of the exporter
dates the records back to their half hour (the SDK stamps them with the call time), so the collector's windows
hold 12 hours of history without the test waiting for it. Model "churn" version "2" drifts: `age` moves up and
`plan` gains a category the reference never had, `income` stays put; its reference is uploaded through the
API. Model "fraud" version "1" gets rows and no reference.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from starlette.applications import Starlette

import instrument
from collector.api_distribution import distribution_routes
from collector.app import create_app
from collector.dashboard import dashboard_routes
from collector.settings import Address, CollectorSettings
from collector.store_sqlite import SQLiteStore
from instrument import _runtime
from tests.browser.server import serve

HOURS = 12
SLICES = 2 * HOURS  # a batch every half hour
ROWS_PER_SLICE = 150
FRAUD_ROWS = 120


class Backdate(LogRecordProcessor):
    """Stamps every log record with `time_ns` (set before each batch is logged and flushed)."""

    def __init__(self) -> None:
        self.time_ns = 0

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        log_record.log_record.timestamp = self.time_ns
        log_record.log_record.observed_timestamp = self.time_ns

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def rows(rng: np.random.Generator, n: int, drift: float) -> dict[str, Any]:
    plans = ["basic", "pro", "team", "trial"]
    p = np.array([0.6, 0.3, 0.1, 0.0]) * (1 - drift) + np.array([0.3, 0.25, 0.15, 0.3]) * drift
    return {
        "age": rng.normal(40 + 12 * drift, 10, n),
        "income": rng.lognormal(10, 0.5, n),
        "plan": rng.choice(plans, n, p=p).tolist(),
    }


def score(inputs: dict[str, Any]) -> np.ndarray:
    z = (inputs["age"] - 45) / 10 + (np.log(inputs["income"]) - 10)
    return np.asarray(1 / (1 + np.exp(-z)))


def mount_dashboard(app: Starlette, settings: CollectorSettings) -> None:
    """Add the dashboard and the distribution endpoint, unless create_app already serves them."""
    paths = {getattr(route, "path", "") for route in app.router.routes}
    names = {getattr(route, "name", "") for route in app.router.routes}
    if not any(path.endswith("/distribution") for path in paths):
        app.router.routes[:0] = distribution_routes(app.state.service)
    if "dashboard" not in names:
        app.router.routes[:0] = dashboard_routes(settings)


def feed(url: str, now: float) -> None:
    rng = np.random.default_rng(11)
    backdate = Backdate()
    provider = LoggerProvider(resource=Resource.create({"service.name": "churn-api"}), shutdown_on_exit=False)
    provider.add_log_record_processor(backdate)
    provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(endpoint=f"{url}/v1/logs")))
    _runtime.reset_for_tests()
    instrument.configure(service_name="churn-api", endpoint=url, logger_provider=provider, resource_metrics=False)
    try:
        churn = instrument.ModelMonitor(model="churn", version="2", task="binary_classification")
        fraud = instrument.ModelMonitor(model="fraud", version="1", task="binary_classification")
        for part in range(SLICES):
            backdate.time_ns = int((now - (SLICES - part - 0.5) * 1800) * 1e9)
            inputs = rows(rng, ROWS_PER_SLICE, part / (SLICES - 1))
            churn.log(inputs, score(inputs))
            if part == SLICES - 1:
                fraud.log({"amount": rng.lognormal(4, 1, FRAUD_ROWS)}, rng.uniform(size=FRAUD_ROWS))
            assert instrument.flush(timeout_s=30)
    finally:
        instrument.shutdown(timeout_s=10)
        _runtime.reset_for_tests()
        provider.shutdown()


def upload_reference(http: httpx.Client) -> None:
    rng = np.random.default_rng(5)
    ref = rows(rng, 5000, 0.0)
    s = score(ref)
    body = {
        "inputs": {"age": ref["age"].tolist(), "income": ref["income"].tolist(), "plan": ref["plan"]},
        "outputs": {"score": s.tolist(), "label": (s >= 0.5).astype(int).tolist()},
    }
    answer = http.put("/api/v1/models/churn/reference", params={"version": "2"}, json=body)
    assert answer.status_code == 200, answer.text


def wait_rows(http: httpx.Client, expected: int) -> None:
    deadline = time.monotonic() + 20
    while True:
        seen = sum(m["rows"] for m in http.get("/api/v1/models").json())
        if seen >= expected:
            assert seen == expected, f"{seen} rows arrived, {expected} were sent"
            return
        assert time.monotonic() < deadline, f"only {seen} of {expected} rows arrived"
        time.sleep(0.05)


@contextmanager
def live_collector(folder: Path) -> Iterator[str]:
    settings = CollectorSettings(
        http=Address("127.0.0.1", 0), grpc=None, store=f"sqlite:///{folder}/live.db", collector_id="browser"
    )
    store = SQLiteStore(str(folder / "live.db"))
    app = create_app(settings, store)
    mount_dashboard(app, settings)
    try:
        with serve(app, lifespan="on") as url, httpx.Client(base_url=url, timeout=30) as http:
            feed(url, time.time())
            upload_reference(http)
            wait_rows(http, SLICES * ROWS_PER_SLICE + FRAUD_ROWS)
            yield url
    finally:
        store.close()
