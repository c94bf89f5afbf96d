"""Rule evaluation: every step, each rule against each model version the source lists.

    evaluator = Evaluator(rule_set, source, AlertManager(store), dispatcher, ActionRunner(store), step_s=60)
    evaluator.start()                    # a daemon thread: evaluate() every step, aligned to the step
    report = evaluator.evaluate(now)     # or drive it yourself (tests, a scheduler)

`source` is any `MetricSource`: the answers of the JSON API as dicts (DESIGN.md "JSON API"). For each model
version and matching rule an evaluation reads the rule's metric over [now - window, now):
- drift: one value per column of the drift answer's `features` that matches `feature` and `role`;
- performance: `metrics[<metric>]`; `<m>_drop`/`_rise`/`_ratio` compare with `reference_performance()`;
- operations: the answer's key path; `error_rate` is errors / calls when the answer lacks it.
The rows behind a value, checked against `min_count`: the column's `count` (drift), `labeled` or
`metrics.count` (performance), `calls` or else `predictions` (operations).
Non-finite values, absent keys and fewer than `min_count` rows are "no data" (nothing changes).
Threshold rules compare with `threshold`, or with mean +- k sigma of `reference_series()` ("learned",
cached for `learned_ttl_s`). Detector rules feed one value per *non-overlapping* window (default: one step;
overlapping windows would feed the detector correlated values, which inflates false alarms) to a
`detectors.Scaled` detector (scale: the rule's `scale`, else learned from the first `warmup` values; Page-Hinkley
delta 0.1, lambda 50, ADWIN delta 0.002, in sigma units) whose state persists in the alert store
("detector" marks); a changed rule starts a fresh detector.
Open alerts that nothing would observe again are resolved without a notice: their rule was removed, disabled or
no longer covers the model version ("rule removed"), or the source no longer lists the version ("model version
inactive"; a source should list the versions seen recently, e.g. in the last day).
Answers are fetched once per (kind, model, version, range) per evaluation; a failing source call is logged,
counted and skipped, never raised.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import statistics
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote, urlencode

from collector.alerts import Alert, AlertManager, Notice, Observation, rfc3339
from collector.detectors import ADWIN, Direction, PageHinkley, Scaled
from collector.rule_config import RuleSet
from collector.rules import Rule

__all__ = ["ActionSink", "EvaluationReport", "Evaluator", "MetricSource", "NotifySink", "metric_values"]

_log = logging.getLogger("predwatch.alerts")
Value = tuple[str | None, float]  # (feature, value)


class MetricSource(Protocol):
    def models(self) -> Sequence[tuple[str, str]]:
        """The (model, version) pairs to evaluate (e.g. those seen in the last day)."""

    def drift(self, model: str, version: str, start_s: float, end_s: float) -> Mapping[str, Any] | None:
        """The drift answer; None when there is none (no reference)."""

    def performance(self, model: str, version: str, start_s: float, end_s: float) -> Mapping[str, Any] | None: ...

    def operations(self, model: str, version: str, start_s: float, end_s: float) -> Mapping[str, Any] | None: ...

    def reference_performance(self, model: str, version: str) -> Mapping[str, Any] | None:
        """The reference's performance metrics (the shape of the performance answer's `metrics`), or None."""

    def reference_series(self, model: str, version: str, metric: str, feature: str | None) -> Sequence[float]:
        """The rule metric's values over the reference's windows (for learned thresholds); [] when unknown."""


class NotifySink(Protocol):
    def notify(self, event: Mapping[str, Any], names: Sequence[str] | None = None) -> None: ...


class ActionSink(Protocol):
    def trigger(self, rule: Rule, alert: Mapping[str, Any], now: float) -> bool: ...


@dataclass(slots=True)
class EvaluationReport:
    at: float
    values: int = 0  # rule evaluations that had data
    no_data: int = 0
    notices: list[Notice] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    duration_s: float = 0.0


def _dig(data: Any, path: Sequence[str]) -> Any:
    for key in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _enough(count: Any, rule: Rule) -> bool:
    n = _number(count)
    return n is None or n >= rule.min_count


def metric_values(rule: Rule, answer: Mapping[str, Any] | None, reference: Mapping[str, Any] | None) -> list[Value]:
    """The rule's metric read from one answer (one value per matching column for drift metrics)."""
    if answer is None:
        return []
    ref = rule.ref
    if ref.kind == "drift":
        found: list[Value] = []
        for column in answer.get("features") or ():
            if rule.feature not in ("*", column.get("name")) or rule.role not in ("*", column.get("role")):
                continue
            value = _number(_dig(column, ref.path))
            if value is not None and _enough(column.get("count"), rule):
                found.append((str(column.get("name")), value))
        return found
    if ref.kind == "operations":
        calls = answer.get("calls", answer.get("predictions"))
        value = _number(_dig(answer, ref.path))
        if value is None and ref.path == ("error_rate",):
            errors, n = _number(answer.get("errors")), _number(calls)
            value = errors / n if errors is not None and n else None
        return [(None, value)] if value is not None and _enough(calls, rule) else []
    metrics = answer.get("metrics")
    value = _number(_dig(metrics, ref.path))
    if value is None or not _enough(answer.get("labeled", _dig(metrics, ("count",))), rule):
        return []
    if ref.derived is not None:
        base = _number(_dig(reference, ref.path))
        if base is None or (ref.derived == "ratio" and base == 0):
            return []
        value = base - value if ref.derived == "drop" else value - base if ref.derived == "rise" else value / base
    return [(None, value)]


class Evaluator:
    def __init__(
        self,
        rules: RuleSet | Iterable[Rule],
        source: MetricSource,
        alerts: AlertManager,
        notifiers: NotifySink | None = None,
        actions: ActionSink | None = None,
        clock: Callable[[], float] = time.time,
        *,
        step_s: float = 60.0,
        base_url: str = "",
        learned_ttl_s: float = 3600.0,
    ) -> None:
        if not step_s > 0:
            raise ValueError(f"step_s must be positive, got {step_s}")
        self.rules = rules if isinstance(rules, RuleSet) else RuleSet(rules)
        self.source, self.alerts, self.notifiers, self.actions = source, alerts, notifiers, actions
        self.clock, self.step_s, self.base_url = clock, step_s, base_url.rstrip("/")
        self.learned_ttl_s = learned_ttl_s
        self.last_report: EvaluationReport | None = None
        self.evaluations = 0
        self.errors = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._learned: dict[tuple[str, str, str, str | None], tuple[float, tuple[float, float] | None]] = {}
        self._detectors: dict[str, dict[str, Any]] = alerts.store.get_marks("detector")

    # -- one evaluation -------------------------------------------------------------------------------------
    def evaluate(self, now: float | None = None) -> EvaluationReport:
        with self._lock:
            now = self.clock() if now is None else now
            started = time.monotonic()
            report = EvaluationReport(now)
            rules = [r for r in self.rules.rules() if r.enabled]
            answers: dict[tuple[Any, ...], Any] = {}
            observations: list[Observation] = []
            detector_marks: dict[str, dict[str, Any]] = {}
            listed: set[tuple[str, str]] | None
            try:
                models = list(self.source.models())
                listed = set(models)
            except Exception as exc:  # a source failure must not stop the loop
                models, listed = [], None
                self._error(report, f"models(): {exc!r}")
            for model, version in models:
                for rule in rules:
                    if rule.matches(model, version):
                        self._rule(rule, model, version, now, answers, observations, detector_marks, report)
            try:
                self.alerts.store.put_marks("detector", detector_marks)
            except Exception as exc:  # kept in memory; a restart would lose this step's detector updates
                self._error(report, f"saving detector states: {exc!r}")
            try:
                self.alerts.retire(_retirement(rules, listed), now)
                report.notices = self.alerts.observe(observations, now)
            except Exception as exc:  # the store failed: report it, try again next step
                self._error(report, f"alert store: {exc!r}")
            for notice in report.notices:
                self._dispatch(notice, now)
            report.duration_s = time.monotonic() - started
            self.evaluations += 1
            self.last_report = report
            return report

    def _rule(
        self,
        rule: Rule,
        model: str,
        version: str,
        now: float,
        answers: dict[tuple[Any, ...], Any],
        observations: list[Observation],
        marks: dict[str, dict[str, Any]],
        report: EvaluationReport,
    ) -> None:
        detector = rule.type != "threshold"
        window = rule.window_s if rule.window_s is not None else (self.step_s if detector else rule.lookback_s)
        start = now - window
        kind = rule.ref.kind
        answer = self._fetch(answers, report, kind, model, version, start, now)
        reference = None
        if rule.ref.derived is not None:
            reference = self._fetch(answers, report, "reference_performance", model, version)
        values = metric_values(rule, answer, reference)
        if not values:
            report.no_data += 1
        links = self._links(kind, model, version, start, now)
        for feature, value in values:
            verdict: tuple[bool, bool, float | None] | None
            if detector:
                verdict = self._detect(rule, model, version, feature, value, (start, now), marks)
            else:
                verdict = self._compare(rule, model, version, feature, value, now, report)
            if verdict is None:
                report.no_data += 1
                continue
            report.values += 1
            breached, cleared, threshold = verdict
            observations.append(
                Observation(rule, model, version, feature, value, breached, cleared, threshold, (start, now), links)
            )

    def _compare(
        self,
        rule: Rule,
        model: str,
        version: str,
        feature: str | None,
        value: float,
        now: float,
        report: EvaluationReport,
    ) -> tuple[bool, bool, float] | None:
        sigma = None
        threshold = rule.threshold
        if rule.learned:
            learned = self._learn(rule, model, version, feature, now, report)
            if learned is None:
                return None
            threshold, sigma = learned
        assert threshold is not None
        return rule.breaches(value, threshold), rule.clears(value, threshold, rule.margin(threshold, sigma)), threshold

    def _learn(
        self, rule: Rule, model: str, version: str, feature: str | None, now: float, report: EvaluationReport
    ) -> tuple[float, float] | None:
        key = (rule.name, model, version, feature)
        cached = self._learned.get(key)
        if cached is None or now - cached[0] >= self.learned_ttl_s:
            result = None
            try:
                series = self.source.reference_series(model, version, rule.metric, feature)
                finite = [x for x in (_number(v) for v in series) if x is not None]
                if len(finite) >= 3:
                    mean, sigma = statistics.fmean(finite), statistics.stdev(finite)
                    below = rule.op in ("<", "<=")
                    result = (mean - rule.k * sigma if below else mean + rule.k * sigma, sigma)
            except Exception as exc:
                self._error(report, f"reference_series({model!r}, {version!r}, {rule.metric!r}): {exc!r}")
            cached = self._learned[key] = (now, result)
        return cached[1]

    def _detect(
        self,
        rule: Rule,
        model: str,
        version: str,
        feature: str | None,
        value: float,
        window: tuple[float, float],
        marks: dict[str, dict[str, Any]],
    ) -> tuple[bool, bool, None] | None:
        key = json.dumps([rule.name, model, version, feature])
        fingerprint = _fingerprint(rule)
        mark = self._detectors.get(key)
        if mark is None or mark.get("fingerprint") != fingerprint:
            mark = {"fingerprint": fingerprint, "fed_until": None, "state": _new_detector(rule).to_dict()}
        start, end = window
        if mark["fed_until"] is not None and start < mark["fed_until"] - 0.1 * (end - start):
            return None  # one value per non-overlapping window (10% slack for timer jitter)
        detector = Scaled.from_dict(mark["state"])
        changed = detector.update(value)
        self._detectors[key] = marks[key] = {"fingerprint": fingerprint, "fed_until": end, "state": detector.to_dict()}
        return changed, not changed, None

    def _fetch(self, answers: dict[tuple[Any, ...], Any], report: EvaluationReport, kind: str, *args: Any) -> Any:
        key = (kind, *args)
        if key not in answers:
            try:
                answers[key] = getattr(self.source, kind)(*args)
            except Exception as exc:  # one failing model or metric must not stop the others
                answers[key] = None
                self._error(report, f"{kind}{args[:2]}: {exc!r}")
        return answers[key]

    def _links(self, kind: str, model: str, version: str, start: float, end: float) -> dict[str, str]:
        base, m = self.base_url, quote(model, safe="")
        query = urlencode({"version": version, "start": rfc3339(start), "end": rfc3339(end)})
        return {kind: f"{base}/api/v1/models/{m}/{kind}?{query}", "alerts": f"{base}/api/v1/alerts?model={m}"}

    def _dispatch(self, notice: Notice, now: float) -> None:
        payload = notice.payload()
        try:
            if self.notifiers is not None:
                self.notifiers.notify(payload, notice.rule.notify)
            if self.actions is not None and notice.event == "firing" and notice.rule.action is not None:
                self.actions.trigger(notice.rule, payload, now)
        except Exception:  # both sinks promise not to raise; this is the last line
            self.errors += 1
            _log.exception("alert dispatch failed")

    def _error(self, report: EvaluationReport, message: str) -> None:
        self.errors += 1
        report.errors.append(message)
        _log.warning("alert evaluation: %s", message)

    # -- the loop -------------------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="predwatch-evaluator", daemon=True)
            self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.step_s - self.clock() % self.step_s):
            try:
                self.evaluate()
            except Exception:  # keep evaluating
                self.errors += 1
                _log.exception("alert evaluation failed")


def _retirement(rules: Sequence[Rule], listed: set[tuple[str, str]] | None) -> Callable[[Alert], str | None]:
    """Why an open alert can never be observed again: its rule is gone or no longer covers its model version, or
    the source stopped listing the version (only judged when the listing worked)."""
    by_name = {r.name: r for r in rules}

    def why(alert: Alert) -> str | None:
        rule = by_name.get(alert.rule)
        if rule is None or not rule.matches(alert.model, alert.version):
            return "rule removed"
        if listed is not None and (alert.model, alert.version) not in listed:
            return "model version inactive"
        return None

    return why


def _new_detector(rule: Rule) -> Scaled:
    p = rule.params
    direction: Direction = "up" if rule.op in (">", ">=") else "down" if rule.op in ("<", "<=") else "both"
    inner: PageHinkley | ADWIN
    if rule.type == "page_hinkley":
        inner = PageHinkley(p.get("delta", 0.1), p.get("lambda", 50.0), p.get("alpha", 1 - 1e-4), direction=direction)
    else:
        inner = ADWIN(p.get("delta", 0.002), direction=direction)
    return Scaled(inner, p.get("scale"), int(p.get("warmup", 30)))


def _fingerprint(rule: Rule) -> str:
    text = json.dumps([rule.type, rule.op, sorted(rule.params.items()), rule.metric, rule.window_s])
    return hashlib.sha256(text.encode()).hexdigest()[:16]
