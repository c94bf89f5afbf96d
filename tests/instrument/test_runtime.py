"""configure(), the providers it picks, fork safety, exit, and never blocking the caller."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import instrument
from instrument import _runtime, semconv
from instrument._guard import STATS

from .conftest import Telemetry
from .otlp_server import OTLPServer, attributes, value

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(autouse=True)
def clean() -> Iterator[None]:
    _runtime.reset_for_tests()
    yield
    _runtime.reset_for_tests()


def run_python(code: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_configure_twice_is_harmless_and_reconfigure_replaces() -> None:
    telemetry = Telemetry()
    telemetry.configure()
    first = _runtime.current()
    telemetry.configure()
    assert _runtime.current() is first
    telemetry.configure(sample_rate=0.5)
    second = _runtime.current()
    assert second is not first and second is not None and second.sample_rate == 0.5
    assert first is not None and first.worker._stopped


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"endpoint": "localhost:4318"}, "endpoint= must be the collector's base URL"),
        ({"endpoint": "http://h:4318/v1/traces"}, "drop '/v1/traces'"),
        ({"sample_rate": 1.2}, "sample_rate= must be between 0 and 1"),
        ({"headers": {"a": 1}}, "header names and values must be strings"),
    ],
)
def test_bad_configuration_raises_at_once(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        instrument.configure(**kwargs)


def test_bad_environment_raises_at_configure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREDWATCH_SAMPLE_RATE", "lots")
    with pytest.raises(ValueError, match="PREDWATCH_SAMPLE_RATE must be a number"):
        instrument.configure()


def test_a_bad_environment_without_configure_never_breaks_predict(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREDWATCH_ENDPOINT", "not a url")
    predict = instrument.monitor(model="m")(lambda x: 1)
    assert predict([1]) == 1
    assert STATS.errors["configure"] == 1
    assert _runtime.current() is None


def test_the_applications_global_providers_are_used() -> None:
    result = run_python(
        """
        from opentelemetry import trace, metrics, _logs
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor, InMemoryLogRecordExporter
        spans, reader, logs = InMemorySpanExporter(), InMemoryMetricReader(), InMemoryLogRecordExporter()
        tp = TracerProvider(); tp.add_span_processor(SimpleSpanProcessor(spans)); trace.set_tracer_provider(tp)
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
        lp = LoggerProvider(); lp.add_log_record_processor(SimpleLogRecordProcessor(logs))
        _logs.set_logger_provider(lp)
        import instrument
        from instrument import _runtime
        predict = instrument.monitor(model="m", task="regression")(lambda x: [0.5])
        predict([[1.0]])
        instrument.flush()
        rt = _runtime.current()
        assert rt.providers == (tp, metrics.get_meter_provider(), lp), rt.providers
        assert rt._owned == [] and rt.aggregates is None
        assert [s.name for s in spans.get_finished_spans()] == ["predict m"]
        assert len(logs.get_finished_logs()) == 1
        data = reader.get_metrics_data()
        names = {m.name for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
        assert "predwatch.predictions" in names, names
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_exit_flushes_what_was_queued() -> None:
    with OTLPServer() as server:
        result = run_python(
            """
            import instrument
            predict = instrument.monitor(model="atexit", task="regression")(lambda x: [1.0] * len(x))
            predict([[1.0], [2.0]])
            """,
            env={"PREDWATCH_ENDPOINT": server.url, "PREDWATCH_SERVICE_NAME": "exiting"},
        )
        assert result.returncode == 0, result.stderr
        bodies = [value(r.body) for _, r in server.log_records()]
        assert [b["inputs"] for b in bodies] == [{"f0": [1.0, 2.0]}]
        assert server.metrics(semconv.METRIC_PREDICTIONS)


def test_fork_child_gets_its_own_identity_and_nothing_is_sent_twice() -> None:
    with OTLPServer() as server:
        result = run_python(
            """
            import os, instrument
            instrument.configure(service_name="forked", endpoint=os.environ["ENDPOINT"])
            monitor = instrument.ModelMonitor(model="fork", task="regression")
            monitor.log([[1.0]] * 3, [0.0] * 3)       # queued in the parent, not yet exported
            pid = os.fork()
            if pid == 0:
                monitor.log([[2.0]] * 5, [0.0] * 5)
                instrument.flush()
                os._exit(0)
            os.waitpid(pid, 0)
            instrument.flush()
            """,
            env={"ENDPOINT": server.url},
        )
        assert result.returncode == 0, result.stderr
        payloads = {}
        for resource, record in server.log_records():
            res = attributes(resource.attributes)
            payloads.setdefault((res["process.pid"], res["service.instance.id"]), []).append(value(record.body))
        assert len(payloads) == 2  # parent and child, each with its own pid and instance id
        rows = sorted(len(b["ids"]) for bodies in payloads.values() for b in bodies)
        assert rows == [3, 5]  # the parent's queued payload was not sent by the child too
        total = sum(m.sum.data_points[0].as_int for _, m in server.metrics(semconv.METRIC_PREDICTIONS))
        assert total == 8


@pytest.mark.parametrize("mode", ["closed", "stall", "unavailable"])
def test_a_dead_or_slow_collector_never_slows_predict(mode: str) -> None:
    """Exports happen on background threads: the caller's latency does not depend on the collector."""
    if mode == "closed":
        import socket

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{sock.getsockname()[1]}"
        sock.close()  # nothing listens there now
        server = None
    else:
        server = OTLPServer(mode=mode, stall_s=30.0).__enter__()
        endpoint = server.url
    try:
        instrument.configure(service_name="t", endpoint=endpoint, metric_interval_s=0.05)
        predict = instrument.monitor(model="m", task="regression")(lambda x: np.zeros(len(x)))
        X = np.zeros((10, 20))
        worst = 0.0
        started = time.perf_counter()
        for _ in range(300):
            t = time.perf_counter()
            predict(X)
            worst = max(worst, time.perf_counter() - t)
            time.sleep(0.002)  # let exports start (and hang) in the background meanwhile
        elapsed = time.perf_counter() - started
        # A blocking export would cost a connection timeout or a 30 s stall on some call.
        assert worst < 0.5, worst
        assert elapsed < 10.0, elapsed
        _runtime.current().worker.drain()
    finally:
        if server is not None:
            server.__exit__(None, None, None)
        _runtime.reset_for_tests()


def test_full_queues_drop_and_count() -> None:
    telemetry = Telemetry()
    telemetry.configure()
    runtime = _runtime.current()
    assert runtime is not None
    runtime.worker._max_calls = 5
    runtime.worker._max_payload_bytes = 2000
    runtime.worker._stopped = True  # nothing drains: the queues fill
    time.sleep(0.3)
    predict = instrument.monitor(model="m", task="regression")(lambda x: np.zeros(len(x)))
    for _ in range(20):
        predict(np.zeros((10, 5)))
    assert STATS.dropped["queue_full"] == 15
    assert STATS.dropped["payload_queue_full"] >= 1
    runtime.worker.drain()
    assert len(telemetry.rows()) == 10 * (20 - STATS.dropped["payload_queue_full"])
