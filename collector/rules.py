"""An alerting rule: what to watch, when to fire, whom to tell, what to run. Parsed from TOML or JSON.

    rule = rule_from_json({"name": "income drift", "metric": "psi", "feature": "income", "threshold": 0.25})

A rule (one `[[rules]]` table or one JSON object; unknown keys are an error naming the rule and the key):

    name         required, unique
    model        "*" (default) or a model name;  version: optional, default every version
    metric       a key of the drift answer per feature (psi, js, wasserstein, ks.statistic, missing_rate, ...),
                 of the performance metrics (accuracy, f1, auc_roc, rmse, ...; `<m>_drop` = reference - current,
                 `<m>_rise` = current - reference, `<m>_ratio` = current / reference; multiclass: f1.macro),
                 or of the operations answer (latency_ms.p99, error_rate, throughput_per_s, cpu_percent, ...).
                 Other keys: prefix with "drift.", "performance." or "operations.".
    feature      drift metrics only: a column name or "*" (default: every column, each its own alert)
    role         drift metrics only: "input", "output" or "*" (default)
    op           ">" (default), ">=", "<", "<=". Detector rules: the direction to watch (default both).
    threshold    a number, or "learned": mean +- k * sigma of the metric over the reference windows (k = 3)
    for          consecutive evaluations breaching before the alert fires (default 1)
    severity     "info", "warning" (default), "critical"
    notify       notifier names; omitted: every notifier (the built-in "log" included); []: none
    cooldown     "30m", "1h", "90s" or seconds (default 1h): the least time between two notifications of
                 one firing alert, and between two runs of the rule's action for one model version
    window       how far back each evaluation looks (default: drift and performance 1h, operations 5m)
    min_count    the least rows behind a value (drift: the column's count, performance: labeled rows,
                 operations: calls); fewer is "no data" (default 100)
    resolve_after  consecutive clear evaluations before a firing alert resolves (default 2; detectors 60)
    clear_margin   how far back past the threshold a value must be to count as clear (default: 10% of
                 |threshold|; learned thresholds: sigma / 2)
    action       {webhook = "url"} or {command = "argv as one string"}, optional timeout (default 5m)
    type         "threshold" (default), "page_hinkley" or "adwin" (streaming change detection)
    delta, lambda, alpha, warmup, scale   detector parameters in units of the series' sigma (page_hinkley:
                 delta 0.1, lambda 50, alpha 1 - 1e-4; adwin: delta 0.002; warmup 30 values; scale: a fixed
                 sigma instead of the warm-up's; see detectors.py). `window` defaults to one evaluation step.
    enabled      true (default);  description: free text

No data (the metric is absent, None, or has too few rows) changes nothing: it neither advances `for` nor
counts towards `resolve_after`.
"""

from __future__ import annotations

import math
import operator
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "Action",
    "MetricRef",
    "Rule",
    "RuleError",
    "parse_duration",
    "parse_metric",
    "rule_from_json",
    "rule_to_json",
]

Op = Literal[">", ">=", "<", "<="]
Severity = Literal["info", "warning", "critical"]
RuleType = Literal["threshold", "page_hinkley", "adwin"]
Kind = Literal["drift", "performance", "operations"]
Derived = Literal["drop", "rise", "ratio"]

OPS: tuple[Op, ...] = (">", ">=", "<", "<=")
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "critical")
RULE_TYPES: tuple[RuleType, ...] = ("threshold", "page_hinkley", "adwin")
DRIFT_METRICS = frozenset(
    "psi js wasserstein count missing_rate nan_rate inf_rate type_mismatch_rate out_of_range_rate "
    "new_category_rate ks.statistic ks.p_value chi2.statistic chi2.p_value".split()
)
PERFORMANCE_METRICS = frozenset(
    "accuracy precision recall f1 auc_roc gini ks log_loss brier rmse mae mape r2 mean_error "
    "precision.macro recall.macro f1.macro precision.micro recall.micro f1.micro precision.weighted "
    "recall.weighted f1.weighted".split()
)
OPERATIONS_METRICS = frozenset(
    "predictions calls errors error_rows error_rate throughput_per_s calls_per_s latency_ms.p50 latency_ms.p90 "
    "latency_ms.p95 latency_ms.p99 latency_ms.mean latency_ms.max batch_size.mean batch_size.p50 batch_size.p99 "
    "batch_size.max cpu_percent cpu_percent_max memory_bytes memory_bytes_max open_file_descriptors threads".split()
)
DEFAULT_WINDOW_S: dict[Kind, float] = {"drift": 3600.0, "performance": 3600.0, "operations": 300.0}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_COMPARE = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class RuleError(ValueError):
    """A rule or notifier that cannot be used; the message names the rule and the field."""

    def __init__(self, rule: str, key: str, message: str) -> None:
        super().__init__(f"rule {rule!r}: {key}: {message}")
        self.rule, self.key = rule, key


@dataclass(frozen=True, slots=True)
class MetricRef:
    """Where a rule's metric lives: which answer, the key path in it, and the derivation against the reference."""

    kind: Kind
    path: tuple[str, ...]
    derived: Derived | None = None

    @property
    def base(self) -> str:
        return ".".join(self.path)


@dataclass(frozen=True, slots=True)
class Action:
    webhook: str | None = None
    command: tuple[str, ...] | None = None  # argv, from shlex.split; never run through a shell
    timeout_s: float = 300.0


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    metric: str
    model: str = "*"
    version: str | None = None
    feature: str | None = None  # drift metrics: a column or "*"; None elsewhere
    role: str = "*"
    op: Op | None = ">"  # None: a detector watching both directions
    threshold: float | None = None  # None with learned=True, or for detector rules
    learned: bool = False
    k: float = 3.0
    for_: int = 1
    severity: Severity = "warning"
    notify: tuple[str, ...] | None = None  # None: every notifier
    cooldown_s: float = 3600.0
    window_s: float | None = None  # None: DEFAULT_WINDOW_S of the metric's kind
    min_count: int = 100
    resolve_after: int | None = None  # None: 2, or 60 for detector rules
    clear_margin: float | None = None
    action: Action | None = None
    type: RuleType = "threshold"
    params: Mapping[str, float] = field(default_factory=dict)  # detector parameters
    enabled: bool = True
    description: str | None = None
    builtin: bool = False

    @property
    def ref(self) -> MetricRef:
        return parse_metric(self.metric)

    @property
    def lookback_s(self) -> float:
        return self.window_s if self.window_s is not None else DEFAULT_WINDOW_S[self.ref.kind]

    @property
    def clear_after(self) -> int:
        if self.resolve_after is not None:
            return self.resolve_after
        return 2 if self.type == "threshold" else 60

    def matches(self, model: str, version: str) -> bool:
        return self.enabled and self.model in ("*", model) and self.version in (None, version)

    def breaches(self, value: float, threshold: float) -> bool:
        return bool(_COMPARE[self.op or ">"](value, threshold))

    def clears(self, value: float, threshold: float, margin: float) -> bool:
        """Back past the threshold by `margin` (hysteresis): `>` clears at value <= threshold - margin."""
        if self.op in (">", ">="):
            return value <= threshold - margin
        return value >= threshold + margin

    def margin(self, threshold: float, sigma: float | None = None) -> float:
        if self.clear_margin is not None:
            return self.clear_margin
        return sigma / 2 if sigma is not None else 0.1 * abs(threshold)


def parse_metric(metric: str) -> MetricRef:
    """Raises ValueError for a metric that names no answer's key."""
    for kind in ("drift", "performance", "operations"):
        if metric.startswith(kind + "."):
            rest = metric[len(kind) + 1 :]
            if not rest:
                break
            return MetricRef(kind, tuple(rest.split(".")))
    if metric in DRIFT_METRICS:
        return MetricRef("drift", tuple(metric.split(".")))
    if metric in OPERATIONS_METRICS:
        return MetricRef("operations", tuple(metric.split(".")))
    if metric in PERFORMANCE_METRICS:
        return MetricRef("performance", tuple(metric.split(".")))
    for suffix in ("drop", "rise", "ratio"):
        base = metric.removesuffix("_" + suffix)
        if base != metric and base in PERFORMANCE_METRICS:
            return MetricRef("performance", tuple(base.split(".")), suffix)
    raise ValueError(
        f"unknown metric {metric!r}: use a drift key ({', '.join(sorted(DRIFT_METRICS))}), a performance metric "
        f"({', '.join(sorted(PERFORMANCE_METRICS))}, or <metric>_drop/_rise/_ratio), an operations key "
        f"({', '.join(sorted(OPERATIONS_METRICS))}), or prefix a key with drift./performance./operations."
    )


def parse_duration(value: object) -> float:
    """Seconds from a number or a string like "30m", "1h30m", "90s", "2d", "500ms". Raises ValueError."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and value.strip():
        text = value.strip().replace(" ", "")
        pos, seconds = 0, 0.0
        for match in _DURATION.finditer(text):
            if match.start() != pos:
                break
            seconds += float(match.group(1)) * _UNITS[match.group(2)]
            pos = match.end()
        if pos != len(text):
            raise ValueError(f"expected a duration like '30m', '1h' or '90s', got {value!r}")
    else:
        raise ValueError(f"expected a duration like '30m', '1h' or '90s', got {value!r}")
    if not (math.isfinite(seconds) and seconds >= 0):
        raise ValueError(f"a duration must be finite and >= 0, got {value!r}")
    return seconds


_KEYS = frozenset(
    "name model version metric feature role op threshold k for severity notify cooldown window min_count "
    "resolve_after clear_margin action type delta lambda alpha warmup scale enabled description".split()
)
_DETECTOR_PARAMS = {
    "page_hinkley": ("delta", "lambda", "alpha", "warmup", "scale"),
    "adwin": ("delta", "warmup", "scale"),
}


def rule_from_json(data: Mapping[str, Any], *, builtin: bool = False) -> Rule:
    """A rule from one `[[rules]]` table or one JSON object. Raises RuleError naming the rule and the field."""
    if not isinstance(data, Mapping):
        raise RuleError("?", "rule", f"expected a table/object, got {type(data).__name__}")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise RuleError(str(name) if name is not None else "?", "name", "a non-empty string is required")
    r = _Reader(name, data)
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise RuleError(name, unknown[0], f"unknown key (known: {', '.join(sorted(_KEYS))})")
    metric = r.text("metric", required=True)
    try:
        ref = parse_metric(metric)
    except ValueError as exc:
        raise RuleError(name, "metric", str(exc)) from None
    rule_type = r.choice("type", RULE_TYPES, "threshold")
    is_drift = ref.kind == "drift"
    feature = r.text("feature", "*" if is_drift else None)
    if feature is not None and not is_drift:
        raise RuleError(name, "feature", f"only drift metrics are per feature; {metric!r} is a {ref.kind} metric")
    role = r.choice("role", ("input", "output", "*"), "*")
    op = r.choice("op", OPS, ">" if rule_type == "threshold" else None)
    raw_threshold = data.get("threshold")
    learned = raw_threshold == "learned"
    threshold: float | None = None
    if rule_type == "threshold":
        if raw_threshold is None:
            raise RuleError(name, "threshold", 'a number or "learned" is required')
        if not learned:
            threshold = r.number("threshold")
    elif raw_threshold is not None:
        raise RuleError(name, "threshold", f"a {rule_type} rule detects changes and takes no threshold")
    params: dict[str, float] = {}
    for key in _DETECTOR_PARAMS.get(rule_type, ()):
        if key in data:
            params[key] = r.number(key, positive=key != "warmup")
    stray = sorted({"delta", "lambda", "alpha", "warmup", "scale"} & set(data) - set(params))
    if stray:
        raise RuleError(name, stray[0], f"not a parameter of a {rule_type} rule")
    notify = data.get("notify")
    if notify is not None and (not isinstance(notify, list) or not all(isinstance(n, str) for n in notify)):
        raise RuleError(name, "notify", f"expected a list of notifier names, got {notify!r}")
    window = data.get("window")
    return Rule(
        name=name,
        metric=metric,
        model=r.text("model", "*") or "*",
        version=r.text("version", None, coerce=True),
        feature=feature,
        role=role or "*",
        op=op,
        threshold=threshold,
        learned=learned,
        k=r.number("k", 3.0, positive=True),
        for_=r.integer("for", 1, minimum=1),
        severity=r.choice("severity", SEVERITIES, "warning") or "warning",
        notify=None if notify is None else tuple(notify),
        cooldown_s=r.duration("cooldown", 3600.0),
        window_s=None if window is None else r.duration("window", 0.0, positive=True),
        min_count=r.integer("min_count", 100, minimum=0),
        resolve_after=r.integer("resolve_after", None, minimum=1),
        clear_margin=r.number("clear_margin", None, minimum=0.0),
        action=_action(name, data.get("action")),
        type=rule_type or "threshold",
        params=params,
        enabled=r.boolean("enabled", True),
        description=r.text("description", None),
        builtin=builtin,
    )


def _action(name: str, value: Any) -> Action | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or set(value) - {"webhook", "command", "timeout"}:
        raise RuleError(name, "action", f"expected {{webhook = url}} or {{command = '...'}}, got {value!r}")
    webhook, command = value.get("webhook"), value.get("command")
    if (webhook is None) == (command is None):
        raise RuleError(name, "action", "give exactly one of webhook and command")
    timeout = _Reader(name, value).duration("timeout", 300.0, positive=True)
    if webhook is not None:
        if not isinstance(webhook, str) or not webhook.startswith(("http://", "https://")):
            raise RuleError(name, "action.webhook", f"expected an http(s) URL, got {webhook!r}")
        return Action(webhook=webhook, timeout_s=timeout)
    try:
        argv = shlex.split(command) if isinstance(command, str) else None
    except ValueError as exc:
        raise RuleError(name, "action.command", str(exc)) from None
    if not argv:
        raise RuleError(name, "action.command", f"expected a command line, got {command!r}")
    return Action(command=tuple(argv), timeout_s=timeout)


class _Reader:
    def __init__(self, rule: str, data: Mapping[str, Any]) -> None:
        self.rule, self.data = rule, data

    def _fail(self, key: str, message: str) -> RuleError:
        return RuleError(self.rule, key, f"{message}, got {self.data[key]!r}")

    def text(self, key: str, default: str | None = None, *, required: bool = False, coerce: bool = False) -> Any:
        value = self.data.get(key)
        if value is None:
            if required:
                raise RuleError(self.rule, key, "is required")
            return default
        if coerce and isinstance(value, int) and not isinstance(value, bool):
            return str(value)  # version = 3 means "3"
        if not isinstance(value, str) or not value:
            raise self._fail(key, "expected a non-empty string")
        return value

    def choice(self, key: str, options: Sequence[str], default: str | None) -> Any:
        value = self.data.get(key, default)
        if value is not default and value not in options:
            raise self._fail(key, f"expected one of {', '.join(options)}")
        return value

    def number(
        self, key: str, default: float | None = None, *, positive: bool = False, minimum: float | None = None
    ) -> Any:
        value = self.data.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise self._fail(key, "expected a finite number")
        if (positive and value <= 0) or (minimum is not None and value < minimum):
            raise self._fail(key, "expected a positive number" if positive else f"expected a number >= {minimum}")
        return float(value)

    def integer(self, key: str, default: int | None, *, minimum: int) -> Any:
        value = self.data.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self._fail(key, f"expected an integer >= {minimum}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise self._fail(key, "expected true or false")
        return value

    def duration(self, key: str, default: float, *, positive: bool = False) -> float:
        if self.data.get(key) is None:
            return default
        try:
            seconds = parse_duration(self.data[key])
        except ValueError as exc:
            raise RuleError(self.rule, key, str(exc)) from None
        if positive and seconds <= 0:
            raise self._fail(key, "expected a positive duration")
        return seconds


def rule_to_json(rule: Rule) -> dict[str, Any]:
    """The JSON form `rule_from_json` reads back into an equal rule (for GET /api/v1/rules)."""
    out: dict[str, Any] = {"name": rule.name, "model": rule.model, "metric": rule.metric, "type": rule.type}
    if rule.version is not None:
        out["version"] = rule.version
    if rule.feature is not None:
        out["feature"] = rule.feature
        out["role"] = rule.role
    if rule.op is not None:
        out["op"] = rule.op
    if rule.type == "threshold":
        out["threshold"] = "learned" if rule.learned else rule.threshold
    out.update({"k": rule.k, "for": rule.for_, "severity": rule.severity, "cooldown": rule.cooldown_s})
    if rule.notify is not None:
        out["notify"] = list(rule.notify)
    if rule.window_s is not None:
        out["window"] = rule.window_s
    out.update({"min_count": rule.min_count, "enabled": rule.enabled})
    if rule.resolve_after is not None:
        out["resolve_after"] = rule.resolve_after
    if rule.clear_margin is not None:
        out["clear_margin"] = rule.clear_margin
    if rule.action is not None:
        a = rule.action
        out["action"] = {"webhook": a.webhook} if a.webhook else {"command": shlex.join(a.command or ())}
        out["action"]["timeout"] = a.timeout_s
    out.update(rule.params)
    if rule.description is not None:
        out["description"] = rule.description
    return out
