"""The SDK's one piece of global state: providers, instruments and the worker thread.

`configure()` builds it; the first monitored call builds it from the environment when the application never
called `configure()`. The application's own providers are used when passed or already set globally; else
the SDK builds private ones with OTLP/HTTP exporters (they are not installed as the global providers, so an
application's OpenTelemetry set-up is never changed behind its back). After `fork()` the child rebuilds it
lazily, with its own `process.pid` and `service.instance.id`.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from opentelemetry import _logs, metrics, trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.context import Context
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import NonRecordingSpan, SpanContext

from instrument import semconv
from instrument._aggregate import DESCRIPTIONS, CallAggregates, add_metrics
from instrument._capture import CaptureJob, coalesce, prepare_jobs
from instrument._config import Settings, load_settings
from instrument._exporters import otlp_exporters
from instrument._guard import STATS, fault
from instrument._limit import RateLimit
from instrument._payload import Payload
from instrument._resources import register_resource_metrics
from instrument._spans import LightTracerProvider
from instrument._version import __version__
from instrument._worker import AGGREGATED_SLICE, Worker

__all__ = ["Runtime", "configure", "current", "flush", "shutdown"]

logger = logging.getLogger("instrument")


def _is_unset(provider: object) -> bool:
    # The API hands out proxies until an application sets a provider.
    return type(provider).__name__ in ("ProxyTracerProvider", "_ProxyMeterProvider", "ProxyLoggerProvider")


def _resource(settings: Settings) -> Resource:
    attrs: dict[str, Any] = {
        "service.name": settings.service_name,
        "service.instance.id": uuid.uuid4().hex,
        "host.name": socket.gethostname(),
        "process.pid": os.getpid(),
        "telemetry.distro.name": "predwatch",
        "telemetry.distro.version": __version__,
    }
    if settings.service_version:
        attrs["service.version"] = settings.service_version
    if settings.environment:
        attrs["deployment.environment.name"] = settings.environment
    return Resource.create(attrs)  # OTEL_RESOURCE_ATTRIBUTES fills what is not set here


class Runtime:
    def __init__(
        self,
        settings: Settings,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        logger_provider: Any = None,
    ) -> None:
        self.settings = settings
        self.sample_rate = settings.sample_rate
        self.limit = None if settings.rate_limit is None else RateLimit(settings.rate_limit)
        self.pid = os.getpid()
        self._owned: list[Any] = []
        self.aggregates: CallAggregates | None = None  # set when the SDK owns the metrics pipeline
        tracer_provider = tracer_provider or trace.get_tracer_provider()
        meter_provider = meter_provider or metrics.get_meter_provider()
        logger_provider = logger_provider or _logs.get_logger_provider()
        if _is_unset(tracer_provider) or _is_unset(meter_provider) or _is_unset(logger_provider):
            resource = _resource(settings)
            spans, logs, metric_exporter = otlp_exporters(
                settings.endpoint, settings.headers, settings.export_timeout_s
            )
            if _is_unset(tracer_provider):
                # The SDK's own spans only: a lighter recorder behind OpenTelemetry's API (see _spans).
                # Bigger batches than OpenTelemetry's default 512: a traced server makes two spans per request,
                # and each export costs an HTTP round trip and a gzip set-up.
                processor = BatchSpanProcessor(
                    spans, schedule_delay_millis=2000, max_queue_size=8192, max_export_batch_size=2048
                )
                tracer_provider = LightTracerProvider(resource, processor)
                self._owned.append(tracer_provider)
            if _is_unset(meter_provider):
                reader = PeriodicExportingMetricReader(
                    metric_exporter, export_interval_millis=settings.metric_interval_s * 1000
                )
                meter_provider = MeterProvider(metric_readers=[reader], resource=resource, shutdown_on_exit=False)
                self._owned.append(meter_provider)
                self.aggregates = CallAggregates(semconv.DURATION_BUCKETS_S, semconv.BATCH_BUCKETS)
                scope = InstrumentationScope(semconv.SCOPE_NAME, __version__)
                aggregates = self.aggregates
                metric_exporter.augment = lambda data: add_metrics(data, resource, scope, aggregates.collect())
            if _is_unset(logger_provider):
                logger_provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
                logger_provider.add_log_record_processor(BatchLogRecordProcessor(logs, schedule_delay_millis=500))
                self._owned.append(logger_provider)
        self.providers = (tracer_provider, meter_provider, logger_provider)
        self.tracer = tracer_provider.get_tracer(semconv.SCOPE_NAME, __version__)
        self.logger = logger_provider.get_logger(semconv.SCOPE_NAME, __version__)
        meter = meter_provider.get_meter(semconv.SCOPE_NAME, __version__)
        self.meter = meter
        if self.aggregates is None:  # the application's MeterProvider: ordinary instruments
            self.duration = meter.create_histogram(
                semconv.METRIC_DURATION,
                unit="s",
                description=DESCRIPTIONS[2],
                explicit_bucket_boundaries_advisory=list(semconv.DURATION_BUCKETS_S),
            )
            self.batch_size = meter.create_histogram(
                semconv.METRIC_BATCH_SIZE,
                unit="{row}",
                description=DESCRIPTIONS[1],
                explicit_bucket_boundaries_advisory=list(semconv.BATCH_BUCKETS),
            )
            self.predictions = meter.create_counter(
                semconv.METRIC_PREDICTIONS, unit="{prediction}", description=DESCRIPTIONS[0]
            )
        self._register_self_metrics()
        if settings.resource_metrics:
            try:
                register_resource_metrics(meter)
            except Exception as exc:
                fault("resource.register", exc)
        self.worker = Worker(
            self._record_calls,
            self._run_jobs,
            max_calls=settings.max_queue,
            max_payload_bytes=settings.max_pending_payload_bytes,
            call_slice=AGGREGATED_SLICE if self.aggregates is not None else 32,
        )

    def _register_self_metrics(self) -> None:
        def counts(table: Mapping[str, int], key: str) -> Iterable[Observation]:
            return [Observation(n, {key: reason}) for reason, n in list(table.items())]

        def dropped(_o: CallbackOptions) -> Iterable[Observation]:
            return counts(STATS.dropped, semconv.ATTR_REASON)

        def errors(_o: CallbackOptions) -> Iterable[Observation]:
            return counts(STATS.errors, "predwatch.where")

        def coerced(_o: CallbackOptions) -> Iterable[Observation]:
            return counts(STATS.coerced, semconv.ATTR_REASON)

        def queued(_o: CallbackOptions) -> Iterable[Observation]:
            return [Observation(self.worker.pending)]

        self.meter.create_observable_counter(semconv.METRIC_DROPPED, [dropped], description="Telemetry dropped")
        self.meter.create_observable_counter(semconv.METRIC_ERRORS, [errors], description="Faults inside the SDK")
        self.meter.create_observable_counter(semconv.METRIC_COERCED, [coerced], description="Values coerced")
        self.meter.create_observable_up_down_counter("predwatch.sdk.queue.size", [queued])

    # --- worker thread -------------------------------------------------------------------------------------
    def _record_calls(self, batch: list[tuple[Any, float | None, str | None, int]]) -> None:
        if self.aggregates is not None:
            self.aggregates.add(batch)
            return
        rows_by_attrs: dict[int, tuple[Mapping[str, Any], int]] = {}
        record_duration = self.duration.record
        record_batch = self.batch_size.record
        for monitor, duration_s, error_type, rows in batch:
            attrs = monitor.metric_attributes(error_type)
            if duration_s is not None:
                record_duration(duration_s, attrs)
            record_batch(rows, attrs)
            key = id(attrs)
            seen = rows_by_attrs.get(key)
            rows_by_attrs[key] = (attrs, rows + (seen[1] if seen else 0))
        for attrs, rows in rows_by_attrs.values():
            self.predictions.add(rows, attrs)

    def _run_jobs(self, jobs: list[Callable[[Runtime], None]]) -> None:
        """Payload jobs of one drain: sampled calls are converted, then sent coalesced; others run as they are."""
        sampled = []
        for job in jobs:
            if isinstance(job, CaptureJob):
                sampled.append(job)
                continue
            try:
                job(self)
            except Exception as exc:
                fault("worker.payload", exc)
        for payload in coalesce(prepare_jobs(self, sampled), self.settings.max_event_bytes):
            self.emit(payload)

    def emit(self, payload: Payload) -> None:
        """Emit a payload's log events (worker thread)."""
        context = Context()
        span_context: SpanContext | None = payload.span_context
        if span_context is not None and span_context.is_valid:
            context = trace.set_span_in_context(NonRecordingSpan(span_context), context)
        for body, attrs in payload.events():
            self.logger.emit(
                timestamp=payload.time_ns,
                context=context,
                severity_number=SeverityNumber.INFO,
                body=body,
                attributes=attrs,
                event_name=payload.event_name,
            )

    # --- life cycle ----------------------------------------------------------------------------------------
    def flush(self, timeout_s: float) -> bool:
        self.worker.drain()
        ok = True
        for provider in self.providers:
            flush = getattr(provider, "force_flush", None)
            if flush is not None:
                try:
                    ok = bool(flush(int(timeout_s * 1000))) and ok
                except Exception as exc:
                    fault("flush", exc)
                    ok = False
        return ok

    def close(self, timeout_s: float) -> None:
        self.worker.stop(timeout_s)
        self.flush(timeout_s)
        for provider in self._owned:
            try:
                provider.shutdown()
            except Exception as exc:
                fault("shutdown", exc)


_LOCK = threading.RLock()
_RUNTIME: Runtime | None = None
_DISABLED = False  # set by PREDWATCH_DISABLED/OTEL_SDK_DISABLED, shutdown(), or a failed lazy start
_ARGS: dict[str, Any] = {}  # the last configure() call, replayed after fork
_EXIT_REGISTERED = False


def _build(args: Mapping[str, Any]) -> Runtime | None:
    global _EXIT_REGISTERED
    providers = {k: args.get(k) for k in ("tracer_provider", "meter_provider", "logger_provider")}
    settings = load_settings(**{k: v for k, v in args.items() if k not in providers})
    if settings.disabled:
        return None
    runtime = Runtime(settings, **providers)
    if not _EXIT_REGISTERED:
        # Registered after the providers exist, so it runs before their own exit handlers (atexit is LIFO).
        atexit.register(_at_exit)
        _EXIT_REGISTERED = True
    return runtime


def configure(**args: Any) -> None:
    """See `instrument.configure`."""
    global _RUNTIME, _DISABLED, _ARGS
    load_settings(**{k: v for k, v in args.items() if not k.endswith("_provider")})  # validate first: raise now
    with _LOCK:
        old = _RUNTIME
        if old is not None and args == _ARGS and old.pid == os.getpid():
            return  # configured twice the same way: nothing to do
        _ARGS = dict(args)
        _RUNTIME = _build(_ARGS)
        _DISABLED = _RUNTIME is None
    if old is not None:
        logger.info("predwatch: reconfigured; flushing the previous pipeline")
        old.close(timeout_s=5.0)


def current() -> Runtime | None:
    """The runtime, built on first use; None when the SDK is disabled."""
    runtime = _RUNTIME
    if runtime is not None or _DISABLED:
        return runtime
    return _start_lazily()


def _start_lazily() -> Runtime | None:
    global _RUNTIME, _DISABLED
    with _LOCK:
        if _RUNTIME is None and not _DISABLED:
            try:
                _RUNTIME = _build(_ARGS)
            except Exception as exc:
                fault("configure", exc)
                _RUNTIME = None
            _DISABLED = _RUNTIME is None
        return _RUNTIME


def flush(timeout_s: float = 10.0) -> bool:
    runtime = _RUNTIME
    if runtime is None:
        return True
    return runtime.flush(timeout_s)


def shutdown(timeout_s: float = 10.0) -> None:
    global _RUNTIME, _DISABLED
    with _LOCK:
        runtime, _RUNTIME = _RUNTIME, None
        _DISABLED = True
    if runtime is not None:
        runtime.close(timeout_s)


def reset_for_tests() -> None:
    """Forget all state so that a test can configure from scratch (does not flush)."""
    global _RUNTIME, _DISABLED, _ARGS
    with _LOCK:
        if _RUNTIME is not None:
            _RUNTIME.worker.stop(1.0)
        _RUNTIME, _DISABLED, _ARGS = None, False, {}
        STATS.reset()


def _at_exit() -> None:
    try:
        shutdown(timeout_s=5.0)
    except Exception:  # pragma: no cover - interpreter shutdown: nothing safe left to do
        pass


def _after_fork_in_child() -> None:
    global _RUNTIME, _LOCK
    _LOCK = threading.RLock()
    if _RUNTIME is not None:
        _RUNTIME = None  # rebuilt lazily from _ARGS; the parent's exporters stay silent here


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
