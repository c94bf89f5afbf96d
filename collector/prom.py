"""`GET /metrics`: a prometheus_client custom collector over the collector's answers and its own health.

    registry = CollectorRegistry()
    register_metrics(registry, source, alerts=manager, dispatcher=dispatcher, actions=runner,
                     evaluator=evaluator, health=lambda: health_from_status(service.health()))
    body = generate_latest(registry)        # starlette: Response(body, media_type=CONTENT_TYPE_LATEST)

Computed when scraped (answers cached `cache_ttl_s`, so frequent scrapes cost nothing extra). Families, labels:

    predwatch_drift_{psi,js,wasserstein,ks_statistic,ks_p_value,chi2_statistic,chi2_p_value,missing_rate,
        out_of_range_rate,new_category_rate,count,status}           {model, version, feature, role}
        over the last `drift_window_s` (1 h); status 0 ok, 1 warning, 2 drift
    predwatch_performance{metric} (numbers of `metrics`, one level of tables: f1.macro) and
        predwatch_performance_labeled    {model, version}; last `performance_window_s` (1 h)
    predwatch_operations_<key> (every number of the operations answer; error_rate derived when absent) and
        predwatch_operations_<key>{stat} for tables (latency_ms{stat="p99"}, 20 stats at most)
                                         {model, version}; last `operations_window_s` (5 min)
    predwatch_alerts                     {rule, model, version, severity, state}  open alerts (features summed)
    predwatch_notifications_{sent,failed,retries,dropped}_total, predwatch_notifier_queue_depth,
        predwatch_notifier_failing (1: the last attempt failed), predwatch_notifier_last_failure_timestamp_seconds
                                         {notifier}
    predwatch_actions_total              {outcome: started, succeeded, failed, skipped, dropped}
    predwatch_rule_evaluations_total, predwatch_rule_evaluation_errors_total,
        predwatch_rule_evaluation_duration_seconds (the last one)
    predwatch_ingest_records_total, predwatch_ingest_rows_total, predwatch_ingest_rejected_total{reason},
        predwatch_ingest_queue_records, predwatch_ingest_queue_bytes, predwatch_windows_open,
        predwatch_windows_written_total, predwatch_store_errors_total, predwatch_store_seconds{op} (summary)
    predwatch_retention_deleted_total    {table: windows, states, label_windows}  rows deleted by retention
    predwatch_metrics_truncated          {what: models, features}  series left out of the last scrape
    predwatch_metrics_source_errors_total

Cardinality is bounded: at most `max_models` model versions (in the source's order) and, per model version,
`max_features` columns (the highest PSI first); what was cut is counted in predwatch_metrics_truncated.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric, SummaryMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from collector.actions import ActionRunner
from collector.alerts import AlertManager
from collector.evaluator import Evaluator, MetricSource, metric_values
from collector.notify import Dispatcher
from collector.rules import rule_from_json

__all__ = ["CollectorHealth", "PredwatchCollector", "health_from_status", "register_metrics"]

_DRIFT = (
    "psi",
    "js",
    "wasserstein",
    "ks.statistic",
    "ks.p_value",
    "chi2.statistic",
    "chi2.p_value",
    "missing_rate",
    "out_of_range_rate",
    "new_category_rate",
    "count",
)
_STATUS = {"ok": 0, "warning": 1, "drift": 2}
_NAME = re.compile(r"[^a-zA-Z0-9_]")
_ERROR_RATE = rule_from_json({"name": "error_rate", "metric": "error_rate", "threshold": 0, "min_count": 0})
_MAX_LABEL = 200
_MAX_STATS = 20  # per table of the operations answer (errors_by_type has one entry per exception type)


@dataclass(frozen=True, slots=True)
class CollectorHealth:
    """The collector's own figures; None (or empty) leaves a family out. Totals are counters since start."""

    ingest_records_total: float | None = None
    ingest_rows_total: float | None = None
    rejected_total: Mapping[str, float] = field(default_factory=dict)  # by reason
    queue_records: float | None = None
    queue_bytes: float | None = None
    windows_open: float | None = None
    windows_written_total: float | None = None
    store_errors_total: float | None = None
    store_seconds: Mapping[str, tuple[float, float]] = field(default_factory=dict)  # op -> (count, sum of s)
    retention_deleted_total: Mapping[str, float] = field(default_factory=dict)  # by table


def health_from_status(status: Mapping[str, Any]) -> CollectorHealth:
    """From `CollectorService.health()` ({"ingest": {...}, "windows": {...}}); absent keys are left out."""
    ingest, windows = status.get("ingest") or {}, status.get("windows") or {}
    rejected: dict[str, Any] = {}
    for key in ("rejected", "invalid", "overloaded", "dropped", "sink_errors"):
        value = ingest.get(key)
        if isinstance(value, Mapping):  # counts by reason: one series per reason
            rejected.update({f"{key}_{reason}": n for reason, n in value.items()})
        elif value is not None:
            rejected[key] = value
    rejected.update({f"ignored_{k}": v for k, v in (ingest.get("ignored") or {}).items()})
    if "rejected_rows" in windows:
        rejected["window_rows"] = windows["rejected_rows"]
    store = status.get("store") or {}
    retention = status.get("retention") or {}
    return CollectorHealth(
        ingest_records_total=ingest.get("accepted"),
        ingest_rows_total=ingest.get("rows"),
        rejected_total=rejected,
        queue_records=ingest.get("queue_records"),
        queue_bytes=ingest.get("queue_bytes"),
        windows_open=windows.get("open"),
        windows_written_total=windows.get("written"),
        store_errors_total=windows.get("write_errors"),
        store_seconds={op: (v["count"], v["sum_s"]) for op, v in store.items() if isinstance(v, Mapping)},
        retention_deleted_total=dict(retention.get("deleted") or {}),
    )


def _by_psi(column: Mapping[str, Any]) -> tuple[bool, float]:
    psi = _num(column.get("psi"))
    return (psi is None, -(psi or 0.0))  # the highest PSI first, columns without one last


def _label(value: Any) -> str:
    return str(value)[:_MAX_LABEL]


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return None
    return float(value)


class PredwatchCollector(Collector):
    def __init__(
        self,
        source: MetricSource,
        *,
        alerts: AlertManager | None = None,
        dispatcher: Dispatcher | None = None,
        actions: ActionRunner | None = None,
        evaluator: Evaluator | None = None,
        health: Callable[[], CollectorHealth] | None = None,
        clock: Callable[[], float] = time.time,
        drift_window_s: float = 3600.0,
        performance_window_s: float = 3600.0,
        operations_window_s: float = 300.0,
        max_models: int = 50,
        max_features: int = 50,
        cache_ttl_s: float = 30.0,
    ) -> None:
        self.source, self.alerts, self.dispatcher, self.actions = source, alerts, dispatcher, actions
        self.evaluator, self.health, self.clock = evaluator, health, clock
        self.windows = {"drift": drift_window_s, "performance": performance_window_s, "operations": operations_window_s}
        self.max_models, self.max_features, self.cache_ttl_s = max_models, max_features, cache_ttl_s
        self.source_errors = 0
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str, str], tuple[float, Any]] = {}

    def describe(self) -> list[Metric]:
        return []  # nothing to check at registration: families are computed when scraped

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            yield from self._models()
            yield from self._alerts()
            yield from self._notifiers()
            yield from self._self()

    def _answer(self, kind: str, model: str, version: str, now: float) -> Any:
        key = (kind, model, version)
        hit = self._cache.get(key)
        if hit is not None and now - hit[0] < self.cache_ttl_s:
            return hit[1]
        try:
            answer = getattr(self.source, kind)(model, version, now - self.windows[kind], now)
        except Exception:  # a scrape must not fail because one model's answer did
            self.source_errors += 1
            answer = None
        self._cache[key] = (now, answer)
        return answer

    def _models(self) -> Iterator[Metric]:
        now = self.clock()
        try:
            models = list(self.source.models())
        except Exception:
            self.source_errors += 1
            models = []
        kept, cut_models = models[: self.max_models], max(0, len(models) - self.max_models)
        listed = set(kept)
        self._cache = {k: v for k, v in self._cache.items() if (k[1], k[2]) in listed}
        labels = ["model", "version", "feature", "role"]
        drift = {
            key: GaugeMetricFamily(f"predwatch_drift_{_NAME.sub('_', key)}", f"drift {key}, last window", labels=labels)
            for key in (*_DRIFT, "status")
        }
        perf = GaugeMetricFamily("predwatch_performance", "performance metric", labels=["model", "version", "metric"])
        labeled = GaugeMetricFamily("predwatch_performance_labeled", "labeled rows", labels=["model", "version"])
        ops: dict[str, GaugeMetricFamily] = {}
        cut_features = 0
        for model, version in kept:
            mv = [_label(model), _label(version)]
            features = list((self._answer("drift", model, version, now) or {}).get("features") or ())
            features.sort(key=_by_psi)
            cut_features += max(0, len(features) - self.max_features)
            for column in features[: self.max_features]:
                values = [*mv, _label(column.get("name")), _label(column.get("role"))]
                for key in _DRIFT:
                    head, _, tail = key.partition(".")
                    found = column.get(head)
                    value = _num(found.get(tail) if tail and isinstance(found, Mapping) else found)
                    if value is not None:
                        drift[key].add_metric(values, value)
                if column.get("status") in _STATUS:
                    drift["status"].add_metric(values, _STATUS[column["status"]])
            answer = self._answer("performance", model, version, now) or {}
            for name, value in (answer.get("metrics") or {}).items():
                parts = value.items() if isinstance(value, Mapping) else [("", value)]
                for sub, item in parts:
                    if (number := _num(item)) is not None:
                        perf.add_metric([*mv, _label(f"{name}.{sub}" if sub else name)], number)
            if (count := _num(answer.get("labeled"))) is not None:
                labeled.add_metric(mv, count)
            self._operations(ops, mv, self._answer("operations", model, version, now))
        truncated = GaugeMetricFamily(
            "predwatch_metrics_truncated", "series left out of the last scrape", labels=["what"]
        )
        truncated.add_metric(["models"], cut_models)
        truncated.add_metric(["features"], cut_features)
        yield from (*drift.values(), perf, labeled, *ops.values(), truncated)

    @staticmethod
    def _operations(families: dict[str, GaugeMetricFamily], mv: list[str], answer: Any) -> None:
        if not isinstance(answer, Mapping):
            return
        answer = dict(answer)
        if "error_rate" not in answer and (found := metric_values(_ERROR_RATE, answer, None)):
            answer["error_rate"] = found[0][1]
        for key, value in answer.items():
            name = "predwatch_operations_" + _NAME.sub("_", str(key))
            if isinstance(value, Mapping):
                stats = [(k, n) for k, v in value.items() if (n := _num(v)) is not None][:_MAX_STATS]
                if stats and name not in families:
                    families[name] = GaugeMetricFamily(name, f"operations {key}", labels=["model", "version", "stat"])
                for stat, number in stats:
                    families[name].add_metric([*mv, _label(stat)], number)
            elif (scalar := _num(value)) is not None:
                if name not in families:
                    families[name] = GaugeMetricFamily(name, f"operations {key}", labels=["model", "version"])
                families[name].add_metric(mv, scalar)

    def _alerts(self) -> Iterator[Metric]:
        if self.alerts is None:
            return
        family = GaugeMetricFamily(
            "predwatch_alerts", "open alerts", labels=["rule", "model", "version", "severity", "state"]
        )
        counts: dict[tuple[str, str, str, str, str], int] = {}
        for a in self.alerts.active():
            labels = (a.rule, a.model, a.version, a.severity, str(a.state))
            counts[labels] = counts.get(labels, 0) + 1
        for labels, n in sorted(counts.items()):
            family.add_metric([_label(k) for k in labels], n)
        yield family

    def _notifiers(self) -> Iterator[Metric]:
        if self.dispatcher is not None:
            stats = self.dispatcher.stats()
            for what in ("sent", "failed", "retries", "dropped"):
                counter = CounterMetricFamily(
                    f"predwatch_notifications_{what}", f"notifications {what}", labels=["notifier"]
                )
                for name, s in stats.items():
                    counter.add_metric([name], getattr(s, what))
                yield counter
            depth = GaugeMetricFamily("predwatch_notifier_queue_depth", "queued notifications", labels=["notifier"])
            failing = GaugeMetricFamily("predwatch_notifier_failing", "1: the last attempt failed", labels=["notifier"])
            last = GaugeMetricFamily(
                "predwatch_notifier_last_failure_timestamp_seconds", "last failure", labels=["notifier"]
            )
            for name, s in stats.items():
                depth.add_metric([name], s.queued)
                failed_last = s.last_error_at is not None and (s.last_sent_at or 0.0) < s.last_error_at
                failing.add_metric([name], 1.0 if failed_last else 0.0)
                if s.last_error_at is not None:
                    last.add_metric([name], s.last_error_at)
            yield from (depth, failing, last)
        if self.actions is not None:
            actions = CounterMetricFamily("predwatch_actions", "rule actions", labels=["outcome"])
            for outcome, n in self.actions.counts.items():
                actions.add_metric([outcome], n)
            yield actions

    def _self(self) -> Iterator[Metric]:
        if self.evaluator is not None:
            yield CounterMetricFamily("predwatch_rule_evaluations", "evaluations", value=self.evaluator.evaluations)
            yield CounterMetricFamily(
                "predwatch_rule_evaluation_errors", "evaluation errors", value=self.evaluator.errors
            )
            if self.evaluator.last_report is not None:
                yield GaugeMetricFamily(
                    "predwatch_rule_evaluation_duration_seconds",
                    "the last evaluation",
                    value=self.evaluator.last_report.duration_s,
                )
        h = None
        if self.health is not None:
            try:
                h = self.health()
            except Exception:
                self.source_errors += 1
        yield CounterMetricFamily("predwatch_metrics_source_errors", "failed answers", value=self.source_errors)
        if h is None:
            return
        for name, value, counter in (
            ("predwatch_ingest_records", h.ingest_records_total, True),
            ("predwatch_ingest_rows", h.ingest_rows_total, True),
            ("predwatch_windows_written", h.windows_written_total, True),
            ("predwatch_store_errors", h.store_errors_total, True),
            ("predwatch_ingest_queue_records", h.queue_records, False),
            ("predwatch_ingest_queue_bytes", h.queue_bytes, False),
            ("predwatch_windows_open", h.windows_open, False),
        ):
            if (number := _num(value)) is not None:
                kind = CounterMetricFamily if counter else GaugeMetricFamily
                yield kind(name, name.removeprefix("predwatch_").replace("_", " "), value=number)
        if h.rejected_total:
            rejected = CounterMetricFamily("predwatch_ingest_rejected", "rejected by reason", labels=["reason"])
            for reason, n in sorted(h.rejected_total.items()):
                rejected.add_metric([_label(reason)], n)
            yield rejected
        if h.store_seconds:
            latency = SummaryMetricFamily("predwatch_store_seconds", "store operation time", labels=["op"])
            for op, (count, total) in sorted(h.store_seconds.items()):
                latency.add_metric([_label(op)], count_value=int(count), sum_value=total)
            yield latency
        if h.retention_deleted_total:
            deleted = CounterMetricFamily(
                "predwatch_retention_deleted", "per-window rows deleted by retention", labels=["table"]
            )
            for table, n in sorted(h.retention_deleted_total.items()):
                deleted.add_metric([_label(table)], n)
            yield deleted


def register_metrics(registry: CollectorRegistry, source: MetricSource, **options: Any) -> PredwatchCollector:
    """Build a `PredwatchCollector` (options as its constructor's) and register it on `registry`."""
    collector = PredwatchCollector(source, **options)
    registry.register(collector)
    return collector
