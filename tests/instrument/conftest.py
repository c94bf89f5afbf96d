"""Fixtures: the real OpenTelemetry SDK with in-memory exporters, to read exactly what the SDK emits."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import instrument
from instrument import _runtime, semconv


class Telemetry:
    def __init__(self) -> None:
        self.span_exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider(shutdown_on_exit=False)
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.span_exporter))
        self.metric_reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.metric_reader], shutdown_on_exit=False)
        self.log_exporter = InMemoryLogRecordExporter()
        self.logger_provider = LoggerProvider(shutdown_on_exit=False)
        self.logger_provider.add_log_record_processor(SimpleLogRecordProcessor(self.log_exporter))

    def configure(self, **kwargs: Any) -> None:
        kwargs.setdefault("resource_metrics", False)
        instrument.configure(
            service_name="test-service",
            tracer_provider=self.tracer_provider,
            meter_provider=self.meter_provider,
            logger_provider=self.logger_provider,
            **kwargs,
        )

    def spans(self) -> list[ReadableSpan]:
        instrument.flush()
        return list(self.span_exporter.get_finished_spans())

    def events(self, name: str = semconv.EVENT_INFERENCE) -> list[Any]:
        instrument.flush()
        return [r.log_record for r in self.log_exporter.get_finished_logs() if r.log_record.event_name == name]

    def rows(self, name: str = semconv.EVENT_INFERENCE) -> dict[str, dict[str, Any]]:
        """Every captured row by prediction id, across events (calls captured together share one event)."""
        found: dict[str, dict[str, Any]] = {}
        for event in self.events(name):
            body = event.body
            for k, pid in enumerate(body["ids"]):
                assert pid not in found, f"prediction {pid} captured twice"
                row: dict[str, Any] = {"event": event}
                for table in ("inputs", "outputs"):
                    row[table] = {col: values[k] for col, values in body.get(table, {}).items()}
                found[pid] = row
        return found

    def points(self, metric: str) -> list[Any]:
        instrument.flush()
        data = self.metric_reader.get_metrics_data()
        found = []
        for rm in data.resource_metrics if data else []:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    if m.name == metric:
                        found.extend(m.data.data_points)
        return found


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    _runtime.reset_for_tests()
    t = Telemetry()
    t.configure()
    yield t
    _runtime.reset_for_tests()
