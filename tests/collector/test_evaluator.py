"""The evaluator end to end: an in-memory MetricSource with DESIGN-shaped answers, a real SQLite alert store,
real local webhook servers, a real command action."""

from __future__ import annotations

import itertools
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from collector.actions import ActionRunner
from collector.alert_store import SQLiteAlertStore
from collector.alerts import AlertManager
from collector.drift import profile_drift
from collector.evaluator import Evaluator, metric_values
from collector.notify import Dispatcher, NotifierSpec
from collector.reference_build import reference_from_columns
from collector.rule_config import DEFAULT_RULES, RuleSet
from collector.rules import Rule, rule_from_json
from collector.sketches import Profile
from collector.store import WindowRecord
from collector.store_sqlite import SQLiteStore
from tests.collector.test_notify import WebhookServer, dead_url

T0 = 1_767_225_600.0
STEP = 60.0


class FakeSource:
    """Answers shaped like the JSON API's, from values the test sets; records the ranges asked for."""

    def __init__(self) -> None:
        self.listed: list[tuple[str, str]] = [("churn", "3")]
        self.psi: dict[tuple[str, str], dict[str, float]] = {("churn", "3"): {"income": 0.02, "age": 0.03}}
        self.count = 500
        self.metrics: dict[tuple[str, str], dict[str, Any]] = {}
        self.reference_metrics: dict[tuple[str, str], dict[str, Any]] = {}
        self.ops: dict[tuple[str, str], dict[str, Any]] = {}
        self.series: dict[tuple[str, str | None], list[float]] = {}
        self.calls: list[tuple[str, str, float, float]] = []
        self.failing: set[str] = set()

    def models(self) -> Sequence[tuple[str, str]]:
        if "models" in self.failing:
            raise RuntimeError("store unavailable")
        return list(self.listed)

    def _check(self, kind: str, model: str) -> None:
        if kind in self.failing or model in self.failing:
            raise RuntimeError(f"{kind} failed")

    def drift(self, model: str, version: str, start_s: float, end_s: float) -> Mapping[str, Any] | None:
        self._check("drift", model)
        self.calls.append(("drift", model, start_s, end_s))
        values = self.psi.get((model, version))
        if values is None:
            return None
        features = [
            {
                "name": name,
                "role": "input",
                "kind": "numeric",
                "count": self.count,
                "missing_rate": 0.0,
                "psi": psi,
                "ks": {"statistic": psi / 2, "p_value": 0.5},
                "js": psi / 3,
                "wasserstein": psi,
                "status": "ok",
            }
            for name, psi in values.items()
        ]
        features.append({"name": "score", "role": "output", "kind": "numeric", "count": self.count, "psi": 0.9})
        return {
            "model": model,
            "version": version,
            "start": start_s,
            "end": end_s,
            "rows": self.count,
            "features": features,
        }

    def performance(self, model: str, version: str, start_s: float, end_s: float) -> Mapping[str, Any] | None:
        self._check("performance", model)
        metrics = self.metrics.get((model, version))
        if metrics is None:
            return None
        return {
            "model": model,
            "version": version,
            "task": "binary_classification",
            "labeled": self.count,
            "metrics": metrics,
        }

    def operations(self, model: str, version: str, start_s: float, end_s: float) -> Mapping[str, Any] | None:
        self._check("operations", model)
        self.calls.append(("operations", model, start_s, end_s))
        return self.ops.get((model, version))

    def reference_performance(self, model: str, version: str) -> Mapping[str, Any] | None:
        return self.reference_metrics.get((model, version))

    def reference_series(self, model: str, version: str, metric: str, feature: str | None) -> Sequence[float]:
        self._check("reference_series", model)
        return self.series.get((metric, feature), [])


def ops(calls: int = 1000, errors: int = 0, p99: float = 20.0) -> dict[str, Any]:
    return {
        "predictions": calls - errors,
        "calls": calls,
        "errors": errors,
        "error_rate": errors / calls,
        "throughput_per_s": calls / 300,
        "latency_ms": {"p50": 5.0, "p90": 9.0, "p95": 12.0, "p99": p99},
        "cpu_percent": 12.5,
        "memory_bytes": 2.5e8,
    }


def rule(**data: Any) -> Rule:
    base: dict[str, Any] = {"name": "income drift", "metric": "psi", "feature": "income", "threshold": 0.25}
    if data.get("type") in ("page_hinkley", "adwin"):
        del base["threshold"]
    return rule_from_json({**base, **data})


Opener = Callable[[], SQLiteAlertStore]


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Opener]:
    """Opens the test's alert database again on each call (a restart); closes them all at the end."""
    opened: list[SQLiteAlertStore] = []

    def open_store() -> SQLiteAlertStore:
        opened.append(SQLiteAlertStore(str(tmp_path / "predwatch.db")))
        return opened[-1]

    yield open_store
    for store in opened:
        store.close()


@pytest.fixture
def server() -> Iterator[WebhookServer]:
    s = WebhookServer()
    yield s
    s.close()


def make(db: Opener, rules: Sequence[Rule] | RuleSet, source: FakeSource, **options: Any) -> Evaluator:
    return Evaluator(rules, source, AlertManager(db()), **options)


def test_fires_once_stays_quiet_within_the_cooldown_resolves_once(
    db: Opener, server: WebhookServer, tmp_path: Path
) -> None:
    script = tmp_path / "retrain.py"
    script.write_text("import sys, pathlib\npathlib.Path(sys.argv[1]).open('a').write(sys.stdin.read() + '\\n')\n")
    log = tmp_path / "retrain.log"
    drift = rule(
        **{
            "for": 2,
            "cooldown": "30m",
            "notify": ["team"],
            "action": {"command": f"'{sys.executable}' '{script}' '{log}'"},
        }
    )
    source = FakeSource()
    dispatcher = Dispatcher([NotifierSpec("team", "webhook", url=server.url)])
    store = db()
    actions = ActionRunner(store)
    evaluator = Evaluator([drift], source, AlertManager(store), dispatcher, actions, base_url="http://pw:4318")

    ticks = itertools.count(T0 + STEP, STEP)
    for _ in range(3):
        assert evaluator.evaluate(next(ticks)).notices == []
    source.psi[("churn", "3")]["income"] = 0.4  # drift arrives
    assert evaluator.evaluate(next(ticks)).notices == []  # pending
    assert [n.event for n in evaluator.evaluate(next(ticks)).notices] == ["firing"]
    for _ in range(25):  # 25 minutes, inside the 30-minute cooldown
        assert evaluator.evaluate(next(ticks)).notices == []
    assert dispatcher.flush() and actions.flush()
    [firing] = server.wait_for(1)
    assert firing["event"] == "firing" and firing["feature"] == "income" and firing["value"] == 0.4
    assert firing["links"]["drift"].startswith("http://pw:4318/api/v1/models/churn/drift?version=3&start=")
    assert firing["links"]["alerts"] == "http://pw:4318/api/v1/alerts?model=churn"
    [ran] = log.read_text().splitlines()
    assert json.loads(ran) == firing  # the action got the same alert JSON on stdin

    source.psi[("churn", "3")]["income"] = 0.05  # drift goes away
    assert evaluator.evaluate(next(ticks)).notices == []
    assert [n.event for n in evaluator.evaluate(next(ticks)).notices] == ["resolved"]
    for _ in range(5):
        assert evaluator.evaluate(next(ticks)).notices == []
    assert dispatcher.flush()
    bodies = server.wait_for(2)
    assert [b["event"] for b in bodies] == ["firing", "resolved"] and len(log.read_text().splitlines()) == 1
    dispatcher.close()
    actions.close()


def test_a_restart_sends_no_duplicate(db: Opener, server: WebhookServer) -> None:
    source = FakeSource()
    source.psi[("churn", "3")]["income"] = 0.4
    first_dispatcher = Dispatcher([NotifierSpec("team", "webhook", url=server.url)])
    first = make(db, [rule(cooldown="1h")], source, notifiers=first_dispatcher)
    assert [n.event for n in first.evaluate(T0).notices] == ["firing"]
    assert first_dispatcher.flush()
    first_dispatcher.close()
    dispatcher = Dispatcher([NotifierSpec("team", "webhook", url=server.url)])
    second = make(db, [rule(cooldown="1h")], source, notifiers=dispatcher)  # same database, new objects
    for k in range(1, 30):
        assert second.evaluate(T0 + k * STEP).notices == []
    assert dispatcher.flush() and len(server.bodies) == 1
    dispatcher.close()


def test_each_matching_feature_and_model(db: Opener) -> None:
    source = FakeSource()
    source.listed = [("churn", "3"), ("churn", "4"), ("fraud", "1")]
    source.psi[("churn", "4")] = {"income": 0.5, "age": 0.6}
    source.psi[("fraud", "1")] = {"amount": 0.9}
    rules = [rule(feature="*", role="input"), rule(name="churn only", feature="*", model="churn", version="4")]
    report = make(db, rules, source).evaluate(T0)
    fired = sorted((n.rule.name, n.alert.model, n.alert.version, n.alert.feature) for n in report.notices)
    assert fired == [
        ("churn only", "churn", "4", "age"),
        ("churn only", "churn", "4", "income"),
        ("churn only", "churn", "4", "score"),
        ("income drift", "churn", "4", "age"),
        ("income drift", "churn", "4", "income"),
        ("income drift", "fraud", "1", "amount"),
    ]
    assert report.values == 2 + 2 + 1 + 3  # inputs of churn 3, churn 4, fraud 1; every column of churn 4


def test_answers_are_fetched_once_per_range(db: Opener) -> None:
    source = FakeSource()
    rules = [rule(name=f"r{i}", feature="*") for i in range(5)] + [rule(name="short", window="10m")]
    make(db, rules, source).evaluate(T0)
    assert [(c[0], c[3] - c[2]) for c in source.calls] == [("drift", 3600.0), ("drift", 600.0)]


def test_the_defaults(db: Opener) -> None:
    source = FakeSource()
    source.ops[("churn", "3")] = ops(errors=100, p99=1500.0)
    source.metrics[("churn", "3")] = {"accuracy": 0.80, "f1": 0.7}
    source.reference_metrics[("churn", "3")] = {"accuracy": 0.90}
    source.psi[("churn", "3")]["age"] = 0.3
    evaluator = make(db, DEFAULT_RULES, source)
    fired = set()
    for k in range(3):
        fired |= {(n.rule.name, n.alert.feature) for n in evaluator.evaluate(T0 + k * STEP).notices}
    assert fired == {("input drift", "age"), ("accuracy drop", None), ("p99 latency", None), ("error rate", None)}
    [accuracy] = [a for a in evaluator.alerts.active() if a.rule == "accuracy drop"]
    assert accuracy.value == pytest.approx(0.10)  # reference 0.90 - current 0.80
    assert [c[3] - c[2] for c in source.calls if c[0] == "operations"][0] == 300.0


def test_regression_default_and_no_reference() -> None:
    rmse = next(r for r in DEFAULT_RULES if r.name == "rmse rise")
    answer = {"labeled": 500, "metrics": {"rmse": 13.0}}
    assert metric_values(rmse, answer, {"rmse": 10.0}) == [(None, 1.3)]
    assert metric_values(rmse, answer, None) == []  # no reference performance: no data
    assert metric_values(rmse, answer, {"rmse": 0.0}) == []


def test_no_data_changes_nothing(db: Opener) -> None:
    source = FakeSource()
    source.psi[("churn", "3")]["income"] = 0.4
    evaluator = make(db, [rule(resolve_after=1)], source)
    assert [n.event for n in evaluator.evaluate(T0).notices] == ["firing"]
    source.count = 50  # fewer rows than min_count
    report = evaluator.evaluate(T0 + STEP)
    assert report.notices == [] and report.values == 0 and report.no_data == 1
    assert [a.state for a in evaluator.alerts.active()] == ["firing"]
    source.psi[("churn", "3")]["income"] = float("nan")
    source.count = 500
    assert evaluator.evaluate(T0 + 2 * STEP).notices == []
    del source.psi[("churn", "3")]  # no reference: the source answers None
    assert evaluator.evaluate(T0 + 3 * STEP).no_data == 1


def test_operations_values() -> None:
    error_rate = rule_from_json({"name": "e", "metric": "error_rate", "threshold": 0.05})
    without = {k: v for k, v in ops(calls=200, errors=200).items() if k != "error_rate"}
    assert metric_values(error_rate, without, None) == [(None, 1.0)]  # every call failed: still counted by calls
    assert metric_values(error_rate, {**without, "calls": 50}, None) == []
    p99 = rule_from_json({"name": "p", "metric": "latency_ms.p99", "threshold": 5, "min_count": 0})
    assert metric_values(p99, ops(p99=7.5), None) == [(None, 7.5)]
    assert metric_values(p99, {"latency_ms": {"p99": None}}, None) == []


def test_learned_thresholds(db: Opener) -> None:
    source = FakeSource()
    reference = [0.02, 0.03, 0.025, 0.035, 0.02, 0.03]
    source.series[("js", "income")] = reference
    source.psi[("churn", "3")]["income"] = 0.15  # js = psi / 3 = 0.05
    evaluator = make(db, [rule(metric="js", threshold="learned")], source)
    [notice] = evaluator.evaluate(T0).notices
    expected = statistics.fmean(reference) + 3 * statistics.stdev(reference)
    assert notice.alert.threshold == pytest.approx(expected) and notice.alert.value == pytest.approx(0.05)
    lower = rule(name="low", metric="js", threshold="learned", op="<", k=2)
    source.psi[("churn", "3")]["income"] = 0.03  # 0.01
    [low] = make(db, [lower], source).evaluate(T0).notices
    assert low.alert.threshold == pytest.approx(statistics.fmean(reference) - 2 * statistics.stdev(reference))
    source.series.clear()
    assert make(db, [rule(name="none", metric="js", threshold="learned")], source).evaluate(T0).values == 0


def test_page_hinkley_rule_finds_gradual_drift_below_the_threshold(db: Opener) -> None:
    rng = np.random.default_rng(1)
    source = FakeSource()
    ph = rule(name="slow drift", type="page_hinkley", op=">", notify=[])
    evaluator = make(db, [ph], source)
    fired_at = None
    for k in range(400):
        drift = 0.0002 * max(0, k - 200)  # PSI creeping up, 0.06 after 300 more steps: never near 0.25
        source.psi[("churn", "3")]["income"] = 0.02 + 0.004 * rng.normal() + drift
        if evaluator.evaluate(T0 + k * STEP).notices and fired_at is None:
            fired_at = k
        if k == 150:  # a restart half way: the detector's state comes back from the store
            evaluator = make(db, [ph], source)
    assert fired_at is not None and 200 < fired_at < 330
    [alert] = evaluator.alerts.active()
    assert alert.detector == "page_hinkley" and alert.threshold is None and alert.value < 0.25


def test_detector_rules_take_one_value_per_window(db: Opener) -> None:
    source = FakeSource()
    adwin = rule(name="a", type="adwin", window="5m")
    evaluator = make(db, [adwin], source)
    counts = [evaluator.evaluate(T0 + k * STEP).values for k in range(11)]
    assert counts == [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]
    state = evaluator.alerts.store.get_marks("detector")
    [mark] = state.values()
    assert mark["fed_until"] == T0 + 10 * STEP and len(mark["state"]["buffer"]) == 3
    every_step = make(db, [rule(name="b", type="adwin")], source)
    jittered = [every_step.evaluate(T0 + k * STEP + (0.02 if k % 2 else -0.02)).values for k in range(6)]
    assert jittered == [1] * 6  # timer jitter does not skip steps


def test_source_failures_are_counted_not_raised(db: Opener, caplog: pytest.LogCaptureFixture) -> None:
    source = FakeSource()
    source.listed = [("churn", "3"), ("fraud", "1")]
    source.psi[("fraud", "1")] = {"income": 0.9}
    source.failing = {"churn"}
    evaluator = make(db, [rule()], source)
    report = evaluator.evaluate(T0)
    assert [n.alert.model for n in report.notices] == ["fraud"]
    assert report.errors == ["drift('churn', '3'): RuntimeError('drift failed')"] and evaluator.errors == 1
    source.failing = {"models"}
    assert evaluator.evaluate(T0 + STEP).errors == ["models(): RuntimeError('store unavailable')"]
    source.failing = {"reference_series"}
    assert make(db, [rule(name="l", threshold="learned")], source).evaluate(T0).errors[0].startswith("reference_series")
    assert "alert evaluation: drift('churn', '3')" in caplog.text


def test_dead_and_stalling_webhooks_do_not_slow_evaluation(db: Opener) -> None:
    staller = WebhookServer(stall=True)
    dispatcher = Dispatcher(
        [
            NotifierSpec("dead", "webhook", url=dead_url()),
            NotifierSpec("stall", "webhook", url=staller.url, timeout_s=30),
        ]
    )
    source = FakeSource()
    source.listed = [(f"m{i}", "1") for i in range(20)]
    source.psi = {(f"m{i}", "1"): {"income": 0.1} for i in range(20)}
    evaluator = make(db, [rule(feature="*", cooldown=0, resolve_after=1)], source, notifiers=dispatcher)
    started = time.monotonic()
    notices = 0
    for k in range(10):
        for i in range(20):
            source.psi[(f"m{i}", "1")]["income"] = 0.4 if (i + k) % 2 else 0.1  # fire and resolve every minute
        notices += len(evaluator.evaluate(T0 + k * STEP).notices)
    assert notices >= 150
    assert time.monotonic() - started < 10.0  # 200 notifications queued to channels that never answer
    assert staller.arrived.wait(10) and dispatcher.stats()["stall"].sent == 0
    dispatcher.close(timeout_s=0.5)
    staller.close()


def test_removed_rules_retire_their_alerts(db: Opener) -> None:
    source = FakeSource()
    source.psi[("churn", "3")]["income"] = 0.4
    rules = RuleSet([rule()])
    evaluator = make(db, rules, source)
    assert len(evaluator.evaluate(T0).notices) == 1
    rules.put(rule(enabled=False))  # an API rule replaces the config rule
    assert evaluator.evaluate(T0 + STEP).notices == [] and evaluator.alerts.active() == []
    assert evaluator.alerts.history()[0].reason == "rule removed"
    rules.remove("income drift")  # the config rule is back
    assert len(evaluator.evaluate(T0 + 2 * STEP).notices) == 1
    rules.put(rule(model="fraud"))  # no longer covers churn
    evaluator.evaluate(T0 + 3 * STEP)
    assert evaluator.alerts.active() == [] and evaluator.alerts.history()[0].reason == "rule removed"
    rules.remove("income drift")
    assert len(evaluator.evaluate(T0 + 4 * STEP).notices) == 1
    source.failing = {"models"}  # a failed listing retires nothing
    evaluator.evaluate(T0 + 5 * STEP)
    assert len(evaluator.alerts.active()) == 1
    source.failing = set()
    source.listed = [("churn", "4")]  # version 3 is gone
    evaluator.evaluate(T0 + 6 * STEP)
    assert evaluator.alerts.active() == [] and evaluator.alerts.history()[0].reason == "model version inactive"


def test_the_background_loop(db: Opener) -> None:
    source = FakeSource()
    evaluator = make(db, [rule()], source, step_s=0.05, clock=time.time)
    evaluator.start()
    deadline = time.monotonic() + 10
    while evaluator.evaluations < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    evaluator.stop()
    assert evaluator.evaluations >= 3 and evaluator.last_report is not None
    with pytest.raises(ValueError):
        make(db, [], source, step_s=0)


class StoreDriftSource(FakeSource):
    """Drift computed by the collector's own parts: windows in a real SQLiteStore, a reference built from raw
    columns, `drift.profile_drift` -- the answer shape the JSON API serves."""

    def __init__(self, store: Any, reference: Any) -> None:
        super().__init__()
        self.store, self.reference = store, reference

    def models(self) -> Sequence[tuple[str, str]]:
        return [(m.model, m.version) for m in self.store.models()]

    def drift(self, model: str, version: str, start_s: float, end_s: float) -> Mapping[str, Any] | None:
        profile = self.store.read_profile(model, version, start_s, end_s)
        groups: dict[str, dict[str, Any]] = {"input": {}, "output": {}}
        for (role, name), column in profile.columns.items():
            groups[role][name] = column
        features = profile_drift(self.reference, groups["input"], groups["output"])
        return {"model": model, "version": version, "rows": profile.rows, "features": features}


def test_real_drift_answers_fire_and_resolve(db: Opener, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    store = SQLiteStore(str(tmp_path / "windows.db"))
    reference = reference_from_columns(
        "churn",
        "3",
        inputs={"income": rng.normal(50, 10, 5000).tolist(), "plan": rng.choice(["a", "b"], 5000).tolist()},
    )
    source = StoreDriftSource(store, reference)
    evaluator = make(db, [rule(feature="*", role="input", window="10m", resolve_after=1)], source)

    def window(start: float, income_mean: float) -> None:
        profile = Profile.zero()
        n = 400
        data = {
            ("input", "income"): rng.normal(income_mean, 10, n).tolist(),
            ("input", "plan"): rng.choice(["a", "b"], n).tolist(),
        }
        profile.update_columns(n, data)
        store.write_windows([WindowRecord.from_profile("churn", "3", int(start), 60, profile)])

    events = []
    for k in range(30):
        t = T0 + k * STEP
        window(t, 50.0 if k < 10 or k >= 20 else 65.0)  # income shifts by 1.5 sigma for ten minutes
        events += [(k, n.event, n.alert.feature) for n in evaluator.evaluate(t + STEP).notices]
    assert [e[1:] for e in events] == [("firing", "income"), ("resolved", "income")], events
    assert 10 <= events[0][0] <= 16 and 20 <= events[1][0] <= 29  # the 10-minute window mixes old and new
    store.close()
