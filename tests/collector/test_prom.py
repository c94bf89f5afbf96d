"""`/metrics`: rendered by prometheus_client from a fresh registry and read back with its own text parser."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from collector.alert_store import SQLiteAlertStore
from collector.alerts import AlertManager
from collector.evaluator import Evaluator
from collector.notify import Dispatcher, NotifierSpec
from collector.prom import CollectorHealth, health_from_status, register_metrics
from tests.collector.test_evaluator import T0, FakeSource, ops, rule
from tests.collector.test_notify import dead_url

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(registry: CollectorRegistry) -> tuple[Samples, dict[str, str]]:
    text = generate_latest(registry).decode()
    samples: Samples = {}
    types: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples, types


def labels(**kv: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(kv.items()))


def test_model_families(tmp_path: Path) -> None:
    source = FakeSource()
    source.ops[("churn", "3")] = {
        **ops(errors=10),
        "errors_by_type": {"ValueError": 10},
        "instances": [{}],
        "source": "metrics",
    }
    source.metrics[("churn", "3")] = {
        "accuracy": 0.91,
        "f1": {"macro": 0.8, "micro": 0.9},
        "confusion_matrix": {"labels": [0, 1], "matrix": [[1, 2], [3, 4]]},
        "count": 500,
    }
    registry = CollectorRegistry()
    register_metrics(registry, source, clock=lambda: T0)
    samples, types = scrape(registry)
    income = labels(model="churn", version="3", feature="income", role="input")
    assert samples[("predwatch_drift_psi", income)] == 0.02
    assert samples[("predwatch_drift_ks_statistic", income)] == 0.01
    assert samples[("predwatch_drift_ks_p_value", income)] == 0.5
    assert samples[("predwatch_drift_js", income)] == pytest.approx(0.02 / 3)
    assert samples[("predwatch_drift_count", income)] == 500
    assert samples[("predwatch_drift_status", income)] == 0
    assert samples[("predwatch_drift_psi", labels(model="churn", version="3", feature="score", role="output"))] == 0.9
    mv = {"model": "churn", "version": "3"}
    assert samples[("predwatch_performance", labels(**mv, metric="accuracy"))] == 0.91
    assert samples[("predwatch_performance", labels(**mv, metric="f1.macro"))] == 0.8
    assert not any(k[0] == "predwatch_performance" and ("metric", "confusion_matrix") in k[1] for k in samples)
    assert samples[("predwatch_performance_labeled", labels(**mv))] == 500
    assert samples[("predwatch_operations_latency_ms", labels(**mv, stat="p99"))] == 20.0
    assert samples[("predwatch_operations_error_rate", labels(**mv))] == 0.01
    assert samples[("predwatch_operations_throughput_per_s", labels(**mv))] == pytest.approx(1000 / 300)
    assert samples[("predwatch_operations_errors_by_type", labels(**mv, stat="ValueError"))] == 10
    assert types["predwatch_drift_psi"] == "gauge"
    truncated = {k[1][0][1]: v for k, v in samples.items() if k[0] == "predwatch_metrics_truncated"}
    assert truncated == {"models": 0, "features": 0}


def test_error_rate_is_derived_when_absent() -> None:
    source = FakeSource()
    source.ops[("churn", "3")] = {k: v for k, v in ops(calls=200, errors=50).items() if k != "error_rate"}
    registry = CollectorRegistry()
    register_metrics(registry, source)
    samples, _ = scrape(registry)
    assert samples[("predwatch_operations_error_rate", labels(model="churn", version="3"))] == 0.25


def test_cardinality_is_bounded_and_the_cut_is_counted() -> None:
    source = FakeSource()
    source.listed = [(f"m{i}", "1") for i in range(100)]
    source.psi = {(f"m{i}", "1"): {f"f{j}": j / 1000 for j in range(200)} for i in range(100)}
    registry = CollectorRegistry()
    register_metrics(registry, source, max_models=10, max_features=5)
    samples, _ = scrape(registry)
    psi = [dict(k[1]) for k in samples if k[0] == "predwatch_drift_psi"]
    assert len(psi) == 10 * 5
    assert {p["model"] for p in psi} == {f"m{i}" for i in range(10)}
    assert {p["feature"] for p in psi} == {"score", "f199", "f198", "f197", "f196"}  # the highest PSI first
    assert samples[("predwatch_metrics_truncated", labels(what="models"))] == 90
    assert samples[("predwatch_metrics_truncated", labels(what="features"))] == 10 * (201 - 5)


def test_answers_are_cached_between_scrapes() -> None:
    source = FakeSource()
    now = [T0]
    registry = CollectorRegistry()
    register_metrics(registry, source, clock=lambda: now[0], cache_ttl_s=30)
    scrape(registry)
    scrape(registry)
    assert [c[0] for c in source.calls] == ["drift", "operations"]
    now[0] += 31
    scrape(registry)
    assert len(source.calls) == 4
    assert source.calls[-2][2:] == (T0 + 31 - 3600, T0 + 31)


def test_a_failing_source_does_not_fail_the_scrape() -> None:
    source = FakeSource()
    source.failing = {"drift"}
    registry = CollectorRegistry()
    register_metrics(registry, source)
    samples, _ = scrape(registry)
    assert samples[("predwatch_metrics_source_errors_total", ())] == 1
    source.failing = {"models"}
    collector = register_metrics(CollectorRegistry(), source)
    list(collector.collect())
    assert collector.source_errors == 1


def test_alerts_notifiers_evaluator_and_health(tmp_path: Path) -> None:
    source = FakeSource()
    source.psi[("churn", "3")] = {"income": 0.4, "age": 0.5, "zip": 0.01}
    dispatcher = Dispatcher([NotifierSpec("dead", "webhook", url=dead_url(), max_attempts=1)])
    evaluator = Evaluator(
        [rule(feature="*", role="input"), rule(name="slow", feature="*", role="input", **{"for": 3})],
        source,
        AlertManager(store := SQLiteAlertStore(str(tmp_path / "p.db"))),
        dispatcher,
    )
    evaluator.evaluate(T0)
    assert dispatcher.flush()
    status: dict[str, Any] = {
        "ingest": {
            "accepted": 120,
            "rows": 9000,
            "rejected": 3,
            "invalid": 2,
            "overloaded": 1,
            "dropped": 0,
            "queue_records": 7,
            "queue_bytes": 2048,
            "ignored": {"unknown_event": 4},
        },
        "windows": {"open": 2, "written": 30, "write_errors": 1, "rejected_rows": 5},
        "store": {"write": {"count": 30, "sum_s": 0.6}, "read": {"count": 4, "sum_s": 0.2}},
        "retention": {"runs": 2, "deleted": {"windows": 1500, "states": 300, "label_windows": 0}},
    }
    registry = CollectorRegistry()
    register_metrics(
        registry,
        source,
        alerts=evaluator.alerts,
        dispatcher=dispatcher,
        evaluator=evaluator,
        health=lambda: health_from_status(status),
    )
    samples, types = scrape(registry)
    firing = labels(rule="income drift", model="churn", version="3", severity="warning", state="firing")
    assert samples[("predwatch_alerts", firing)] == 2  # income and age, summed over features
    assert (
        samples[
            ("predwatch_alerts", labels(rule="slow", model="churn", version="3", severity="warning", state="pending"))
        ]
        == 2
    )
    assert samples[("predwatch_notifications_failed_total", labels(notifier="dead"))] == 2
    assert samples[("predwatch_notifications_sent_total", labels(notifier="log"))] == 2
    assert samples[("predwatch_notifier_failing", labels(notifier="dead"))] == 1
    assert samples[("predwatch_notifier_failing", labels(notifier="log"))] == 0
    assert ("predwatch_notifier_last_failure_timestamp_seconds", labels(notifier="dead")) in samples
    assert samples[("predwatch_rule_evaluations_total", ())] == 1
    assert types["predwatch_rule_evaluations"] == "counter"
    assert samples[("predwatch_ingest_rows_total", ())] == 9000
    assert samples[("predwatch_ingest_queue_records", ())] == 7
    assert samples[("predwatch_ingest_rejected_total", labels(reason="invalid"))] == 2
    assert samples[("predwatch_ingest_rejected_total", labels(reason="ignored_unknown_event"))] == 4
    assert samples[("predwatch_ingest_rejected_total", labels(reason="window_rows"))] == 5
    assert samples[("predwatch_store_seconds_count", labels(op="write"))] == 30
    assert samples[("predwatch_store_seconds_sum", labels(op="write"))] == 0.6
    assert types["predwatch_store_seconds"] == "summary"
    assert samples[("predwatch_windows_open", ())] == 2 and samples[("predwatch_store_errors_total", ())] == 1
    assert samples[("predwatch_retention_deleted_total", labels(table="windows"))] == 1500
    assert samples[("predwatch_retention_deleted_total", labels(table="label_windows"))] == 0
    assert types["predwatch_retention_deleted"] == "counter"
    dispatcher.close(timeout_s=0.1)
    store.close()


def test_partial_health_and_a_failing_health_callable() -> None:
    registry = CollectorRegistry()
    register_metrics(registry, FakeSource(), health=lambda: CollectorHealth(queue_records=3))
    samples, _ = scrape(registry)
    assert samples[("predwatch_ingest_queue_records", ())] == 3
    assert not any(k[0].startswith("predwatch_ingest_rows") for k in samples)

    def broken() -> CollectorHealth:
        raise RuntimeError("no")

    registry = CollectorRegistry()
    register_metrics(registry, FakeSource(), health=broken)
    samples, _ = scrape(registry)
    assert samples[("predwatch_metrics_source_errors_total", ())] == 1
