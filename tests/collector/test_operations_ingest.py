from __future__ import annotations

import math
import time
from collections.abc import Iterable
from typing import Any

import numpy as np
import pytest
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource

from collector.histogram import LATENCY_BOUNDS
from collector.operations import OperationsState
from collector.operations_ingest import PROCESS_KEY, CumulativeToDelta, OperationsIngest
from collector.operations_metrics import operations_metrics
from collector.otlp_extract import extract_metrics
from collector.records import MetricPoint
from instrument import semconv

from .test_histogram import bucket_edges

MODEL = {semconv.ATTR_MODEL_NAME: "churn", semconv.ATTR_MODEL_VERSION: "3", semconv.ATTR_OUTCOME: "ok"}
RESOURCE = {"service.name": "app", "service.instance.id": "p1", "host.name": "h1"}


class AppProcess:
    """An application with its own MeterProvider (cumulative temporality, the SDK's default)."""

    def __init__(self) -> None:
        self.reader = InMemoryMetricReader()
        self.provider = MeterProvider(metric_readers=[self.reader], resource=Resource.create(RESOURCE))
        meter = self.provider.get_meter("predwatch")
        self.predictions = meter.create_counter(semconv.METRIC_PREDICTIONS)
        self.duration = meter.create_histogram(
            semconv.METRIC_DURATION, unit="s", explicit_bucket_boundaries_advisory=list(semconv.DURATION_BUCKETS_S)
        )
        self.disk_read = 0

        def disk(_options: CallbackOptions) -> Iterable[Observation]:
            return [Observation(self.disk_read, {"disk.io.direction": "read"})]

        meter.create_observable_counter("process.disk.io", [disk], unit="By")

    def call(self, latency_s: float, rows: int) -> None:
        self.duration.record(latency_s, MODEL)
        self.predictions.add(rows, MODEL)

    def export(self) -> list[MetricPoint]:
        data = self.reader.get_metrics_data()
        assert data is not None
        request = ExportMetricsServiceRequest.FromString(encode_metrics(data).SerializeToString())
        points = [p for p in extract_metrics(request).records if isinstance(p, MetricPoint)]
        assert points and all(not p.delta for p in points if p.kind != "gauge")
        return points


def run_app() -> tuple[list[np.ndarray], list[np.ndarray], list[list[MetricPoint]]]:
    """Four exports, the process restarting after the second: the latencies and rows of each phase, the exports."""
    rng = np.random.default_rng(4)
    latencies = [rng.lognormal(-5, 1, size=n) for n in (50, 80, 30, 60)]
    rows = [rng.integers(1, 20, size=len(x)) for x in latencies]
    disk = [100, 250, 40, 90]  # cumulative bytes read; the restart starts again from zero
    app = AppProcess()
    exports = []
    for phase in range(4):
        if phase == 2:
            app.provider.shutdown()
            time.sleep(0.002)  # a new start time
            app = AppProcess()
        for latency, n in zip(latencies[phase], rows[phase], strict=True):
            app.call(float(latency), int(n))
        app.disk_read = disk[phase]
        exports.append(app.export())
        time.sleep(0.002)
    app.provider.shutdown()
    return latencies, rows, exports


def fold_all(ingest: OperationsIngest, exports: list[list[MetricPoint]]) -> dict[tuple[str, str], OperationsState]:
    """Fold the exports in order (it matters for cumulative points) and merge each (model, version)'s windows."""
    out: dict[tuple[str, str], OperationsState] = {}
    for points in exports:
        for (model, version, _), state in ingest.fold(points).items():
            out.setdefault((model, version), OperationsState.zero()).merge(state)
    return out


def test_cumulative_sdk_points_become_exact_deltas_across_a_restart() -> None:
    watching = OperationsIngest(60, started_s=time.time() - 1)  # up before the application started
    late = OperationsIngest(60, started_s=time.time() + 3600)  # started after: the first points are baselines
    latencies, rows, exports = run_app()
    seen, seen_late = fold_all(watching, exports), fold_all(late, exports)

    answer = operations_metrics(seen[("churn", "3")], 60.0)
    every = np.concatenate(latencies)
    assert answer["predictions"] == int(np.concatenate(rows).sum()) and answer["calls"] == len(every)
    assert answer["latency_ms"]["mean"] == pytest.approx(every.mean() * 1e3)
    assert answer["latency_ms"]["max"] == pytest.approx(every.max() * 1e3)
    for name, q in (("p50", 0.5), ("p99", 0.99)):
        lo, hi = bucket_edges(LATENCY_BOUNDS, float(np.quantile(every, q, method="inverted_cdf")), 0.0, math.inf)
        assert lo * 1e3 <= answer["latency_ms"][name] <= hi * 1e3
    process = operations_metrics(seen[PROCESS_KEY], 60.0)
    assert process["disk_read_bytes"] == 100 + 150 + 40 + 50

    after_baseline = operations_metrics(seen_late[("churn", "3")], 60.0)
    assert after_baseline["predictions"] == int(np.concatenate(rows[1:]).sum())  # phase 1 was the baseline
    assert after_baseline["calls"] == sum(map(len, latencies[1:]))
    assert operations_metrics(seen_late[PROCESS_KEY], 60.0)["disk_read_bytes"] == 150 + 40 + 50
    assert late.deltas.dropped["baseline"] == 3  # predictions, duration, disk read


def point(value: float, time_s: float, start_s: float | None = 1.0, **kw: Any) -> MetricPoint:
    kw.setdefault("attributes", {"disk.io.direction": "read"})
    return MetricPoint(
        kw.pop("name", "process.disk.io"),
        "sum",
        time_s,
        value,
        resource=RESOURCE,
        start_time_s=start_s,
        delta=False,
        **kw,
    )


def test_counter_rules() -> None:
    deltas = CumulativeToDelta(started_s=0.5)
    seen = [deltas.convert(p) for p in (point(10, 2), point(30, 3), point(30, 3), point(25, 2.5), point(12, 4))]
    values = [None if p is None else (p.value, p.start_time_s, p.delta) for p in seen]
    # started after the ingest: counted whole; +20; duplicate and out of order dropped; lower value = restart
    assert values == [(10, 1.0, True), (20, 2, True), None, None, (12, 1.0, True)]
    assert deltas.dropped == {"out_of_order": 2}
    restarted = deltas.convert(point(3, 5, start_s=4.5))  # a new start time: a restart, counted whole
    assert restarted is not None and restarted.value == 3
    assert deltas.convert(point(2, 6, start_s=None)) is not None  # no start time: only the drop tells (2 < 3)

    unknown_start = CumulativeToDelta(started_s=0.5)
    assert unknown_start.convert(point(10, 2, start_s=None)) is None and unknown_start.dropped == {"baseline": 1}


def test_series_memory_is_bounded() -> None:
    deltas = CumulativeToDelta(max_series=2, started_s=100.0)  # every first point is a baseline
    for direction in ("read", "write", "other"):
        assert deltas.convert(point(5, 200, attributes={"disk.io.direction": direction})) is None
    assert len(deltas._last) == 2
    assert deltas.convert(point(9, 201, attributes={"disk.io.direction": "read"})) is None  # evicted: baselines again
    converted = deltas.convert(point(9, 201, attributes={"disk.io.direction": "other"}))
    assert converted is not None and converted.value == 4
    with pytest.raises(ValueError):
        CumulativeToDelta(max_series=0)


def hist(
    counts: list[int], time_s: float, lo: float | None, hi: float | None, bounds: list[float] | None = None
) -> MetricPoint:
    return MetricPoint(
        semconv.METRIC_DURATION,
        "histogram",
        time_s,
        float(sum(counts)),
        attributes=MODEL,
        resource=RESOURCE,
        start_time_s=1.0,
        delta=False,
        count=sum(counts),
        bounds=bounds or [0.1, 1.0],
        counts=counts,
        min=lo,
        max=hi,
    )


def test_histogram_rules() -> None:
    deltas = CumulativeToDelta(started_s=0.5)
    first = deltas.convert(hist([1, 1, 0], 2, 0.05, 0.5))
    assert first is not None and (first.counts, first.min, first.max) == ([1, 1, 0], 0.05, 0.5)
    grown = deltas.convert(hist([1, 3, 1], 3, 0.05, 2.0))
    assert grown is not None and (grown.counts, grown.count, grown.value) == ([0, 2, 1], 3, 3.0)
    assert (grown.min, grown.max) == (None, 2.0)  # a new max is the delta's; the old min tells nothing
    reset = deltas.convert(hist([0, 1, 0], 4, 0.3, 0.3))
    assert reset is not None and reset.counts == [0, 1, 0] and reset.min == 0.3  # a bucket went down: restart
    rebounded = deltas.convert(hist([0, 1, 0, 5], 5, 0.3, 9.0, bounds=[0.1, 1.0, 5.0]))
    assert rebounded is not None and rebounded.counts == [0, 1, 0, 5]  # new bounds: a new series, whole


def test_routing_and_windows() -> None:
    now = 10_000.0
    ingest = OperationsIngest(60, clock=lambda: now, started_s=0.0)
    r = {"service.instance.id": "a"}
    points = [
        MetricPoint(semconv.METRIC_PREDICTIONS, "sum", 9_990.0, 3, attributes=MODEL, resource=r),
        MetricPoint(
            semconv.METRIC_PREDICTIONS, "sum", 9_959.9, 2, attributes={semconv.ATTR_MODEL_NAME: "x"}, resource=r
        ),
        MetricPoint(semconv.METRIC_PREDICTIONS, "sum", 1e12, 1, attributes=MODEL, resource=r),  # future: now
        MetricPoint(semconv.METRIC_PREDICTIONS, "sum", math.nan, 1, attributes=MODEL, resource=r),  # not finite: now
        MetricPoint(semconv.METRIC_PREDICTIONS, "sum", 9_990.0, 1, resource=r),  # no model
        MetricPoint(semconv.METRIC_PREDICTIONS, "sum", 9_990.0, 1, attributes={semconv.ATTR_MODEL_NAME: "m" * 300}),
        MetricPoint("system.memory.usage", "sum", 9_990.0, 1, resource=r),  # not an operations metric
        MetricPoint("predwatch.sdk.dropped", "sum", 9_990.0, 1, resource=r),  # self-metrics: not operations
        MetricPoint("process.thread.count", "gauge", 9_960.0, 4, resource=r),
    ]
    parts = ingest.fold(points)
    predictions = {key: operations_metrics(state, 60)["predictions"] for key, state in parts.items()}
    assert predictions == {("churn", "3", 9_960): 5, ("x", "", 9_900): 2, (*PROCESS_KEY, 9_960): 0}
    assert ingest.skipped == {"no_model": 1, "bad_model": 1}
    assert operations_metrics(parts[("", "", 9_960)], 60)["threads"] == 4.0
    with pytest.raises(ValueError):
        OperationsIngest(0)
