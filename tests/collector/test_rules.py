"""Rules: parsing from TOML/JSON tables, errors that name the rule and the field, metric references, JSON round trip."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from collector.rule_config import DEFAULT_RULES
from collector.rules import (
    Action,
    MetricRef,
    Rule,
    RuleError,
    parse_duration,
    parse_metric,
    rule_from_json,
    rule_to_json,
)

DESIGN_RULE = """
[[rules]]
name = "income drift"
model = "churn"
version = "3"
metric = "psi"
feature = "income"
op = ">"
threshold = 0.25
for = 2
severity = "critical"
notify = ["ml-team"]
cooldown = "30m"
action = { webhook = "http://trainer.internal/retrain" }
"""


def test_the_design_example_parses() -> None:
    rule = rule_from_json(tomllib.loads(DESIGN_RULE)["rules"][0])
    assert rule == Rule(
        name="income drift",
        metric="psi",
        model="churn",
        version="3",
        feature="income",
        op=">",
        threshold=0.25,
        for_=2,
        severity="critical",
        notify=("ml-team",),
        cooldown_s=1800.0,
        action=Action(webhook="http://trainer.internal/retrain"),
    )
    assert rule.ref == MetricRef("drift", ("psi",))
    assert rule.lookback_s == 3600.0  # drift default: the last hour
    assert rule.clear_after == 2 and rule.min_count == 100


def test_defaults_of_a_minimal_rule() -> None:
    rule = rule_from_json({"name": "p99", "metric": "latency_ms.p99", "threshold": 500})
    assert (rule.model, rule.version, rule.feature, rule.op, rule.for_) == ("*", None, None, ">", 1)
    assert (rule.severity, rule.notify, rule.cooldown_s, rule.lookback_s) == ("warning", None, 3600.0, 300.0)
    assert rule.type == "threshold" and rule.enabled and not rule.learned
    drift = rule_from_json({"name": "d", "metric": "js", "threshold": 0.1})
    assert drift.feature == "*" and drift.role == "*"
    assert rule_from_json({"name": "v", "metric": "psi", "threshold": 1, "version": 3}).version == "3"


@pytest.mark.parametrize(
    ("metric", "ref"),
    [
        ("psi", MetricRef("drift", ("psi",))),
        ("ks.statistic", MetricRef("drift", ("ks", "statistic"))),
        ("chi2.p_value", MetricRef("drift", ("chi2", "p_value"))),
        ("out_of_range_rate", MetricRef("drift", ("out_of_range_rate",))),
        ("ks", MetricRef("performance", ("ks",))),  # credit-scoring KS of the classifier, not the drift test
        ("accuracy", MetricRef("performance", ("accuracy",))),
        ("accuracy_drop", MetricRef("performance", ("accuracy",), "drop")),
        ("rmse_ratio", MetricRef("performance", ("rmse",), "ratio")),
        ("mae_rise", MetricRef("performance", ("mae",), "rise")),
        ("f1.macro", MetricRef("performance", ("f1", "macro"))),
        ("f1.macro_drop", MetricRef("performance", ("f1", "macro"), "drop")),
        ("latency_ms.p99", MetricRef("operations", ("latency_ms", "p99"))),
        ("error_rate", MetricRef("operations", ("error_rate",))),
        ("operations.gpu.utilization_percent", MetricRef("operations", ("gpu", "utilization_percent"))),
        ("drift.nan_rate", MetricRef("drift", ("nan_rate",))),
        ("performance.auc_roc_error_bound", MetricRef("performance", ("auc_roc_error_bound",))),
    ],
)
def test_metric_references(metric: str, ref: MetricRef) -> None:
    assert parse_metric(metric) == ref


@pytest.mark.parametrize("metric", ["", "pis", "accuracy_dropp", "latency_ms", "drift.", "psi_drop"])
def test_unknown_metrics_are_refused(metric: str) -> None:
    with pytest.raises(ValueError, match="unknown metric"):
        parse_metric(metric)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30m", 1800),
        ("1h", 3600),
        ("90s", 90),
        ("2d", 172800),
        ("1h30m", 5400),
        ("500ms", 0.5),
        ("1.5h", 5400),
        (45, 45),
        (0, 0),
        ("0s", 0),
    ],
)
def test_durations(text: Any, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "30", "m", "30x", "1h 30", "-5m", -1, True, None, "30m1", float("inf")])
def test_bad_durations(text: Any) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"treshold": 1}, "treshold", "unknown key"),
        ({"op": "=>"}, "op", "expected one of >, >=, <, <="),
        ({"threshold": None}, "threshold", "is required"),
        ({"threshold": "high"}, "threshold", "expected a finite number"),
        ({"metric": "psy"}, "metric", "unknown metric"),
        ({"metric": None}, "metric", "is required"),
        ({"metric": "accuracy", "feature": "income"}, "feature", "only drift metrics are per feature"),
        ({"severity": "page"}, "severity", "expected one of info, warning, critical"),
        ({"for": 0}, "for", "expected an integer >= 1"),
        ({"for": 1.5}, "for", "expected an integer >= 1"),
        ({"cooldown": "soon"}, "cooldown", "expected a duration"),
        ({"window": "0s"}, "window", "expected a positive duration"),
        ({"notify": "ml-team"}, "notify", "expected a list"),
        ({"action": {"webhook": "http://a", "command": "x"}}, "action", "exactly one"),
        ({"action": {"command": ""}}, "action.command", "expected a command line"),
        ({"action": {"command": "retrain 'unclosed"}}, "action.command", "quotation"),
        ({"action": {"webhook": "ftp://x"}}, "action.webhook", "http(s) URL"),
        ({"action": {"url": "http://x"}}, "action", "expected {webhook = url}"),
        ({"type": "cusum"}, "type", "expected one of threshold, page_hinkley, adwin"),
        ({"type": "adwin"}, "threshold", "takes no threshold"),
        ({"delta": 0.1}, "delta", "not a parameter of a threshold rule"),
        ({"type": "adwin", "threshold": None, "lambda": 5}, "lambda", "not a parameter of a adwin rule"),
        ({"enabled": "yes"}, "enabled", "expected true or false"),
        ({"k": -1}, "k", "expected a positive number"),
    ],
)
def test_errors_name_the_rule_and_the_field(change: dict[str, Any], field: str, message: str) -> None:
    data = {"name": "income drift", "metric": "psi", "threshold": 0.25, **change}
    with pytest.raises(RuleError, match="income drift") as info:
        rule_from_json({k: v for k, v in data.items() if v is not None})
    assert info.value.rule == "income drift" and info.value.key == field
    assert message in str(info.value)
    assert str(info.value).startswith(f"rule 'income drift': {field}: ")


def test_a_rule_needs_a_name() -> None:
    with pytest.raises(RuleError, match="name"):
        rule_from_json({"metric": "psi", "threshold": 1})
    with pytest.raises(RuleError, match="expected a table"):
        rule_from_json(["psi"])  # type: ignore[arg-type]


def test_learned_threshold_and_detectors() -> None:
    learned = rule_from_json({"name": "l", "metric": "js", "threshold": "learned", "k": 2.5, "op": "<"})
    assert learned.learned and learned.threshold is None and learned.k == 2.5
    ph = rule_from_json({"name": "ph", "metric": "psi", "feature": "age", "type": "page_hinkley", "lambda": 30})
    assert ph.type == "page_hinkley" and ph.op is None and ph.params == {"lambda": 30.0}
    assert ph.clear_after == 60  # detector alerts stay up an hour of clean evaluations unless told otherwise
    adwin = rule_from_json({"name": "a", "metric": "accuracy", "type": "adwin", "op": "<", "delta": 0.01})
    assert adwin.op == "<" and adwin.params == {"delta": 0.01}


def test_command_actions_are_split_without_a_shell() -> None:
    rule = rule_from_json(
        {
            "name": "r",
            "metric": "psi",
            "threshold": 1,
            "action": {"command": "python retrain.py --model 'my model' ; rm", "timeout": "2m"},
        }
    )
    assert rule.action == Action(command=("python", "retrain.py", "--model", "my model", ";", "rm"), timeout_s=120.0)


def test_comparisons_and_hysteresis() -> None:
    up = rule_from_json({"name": "u", "metric": "psi", "threshold": 0.25})
    assert up.breaches(0.26, 0.25) and not up.breaches(0.25, 0.25)
    assert up.margin(0.25) == pytest.approx(0.025)
    assert up.clears(0.22, 0.25, 0.025) and not up.clears(0.23, 0.25, 0.025)
    down = rule_from_json({"name": "d", "metric": "accuracy", "op": "<=", "threshold": 0.8, "clear_margin": 0.05})
    assert down.breaches(0.8, 0.8) and not down.breaches(0.81, 0.8)
    assert down.margin(0.8) == 0.05 and down.clears(0.86, 0.8, 0.05) and not down.clears(0.84, 0.8, 0.05)
    assert up.margin(1.0, sigma=0.2) == pytest.approx(0.1)  # learned thresholds: half a sigma


def test_matching() -> None:
    rule = rule_from_json({"name": "r", "metric": "psi", "threshold": 1, "model": "churn", "version": "3"})
    assert rule.matches("churn", "3") and not rule.matches("churn", "4") and not rule.matches("fraud", "3")
    anywhere = rule_from_json({"name": "r", "metric": "psi", "threshold": 1})
    assert anywhere.matches("fraud", "1")
    assert not rule_from_json({"name": "r", "metric": "psi", "threshold": 1, "enabled": False}).matches("a", "1")


@pytest.mark.parametrize(
    "data",
    [
        {
            "name": "a",
            "metric": "psi",
            "threshold": 0.25,
            "feature": "income",
            "role": "input",
            "for": 2,
            "notify": ["x"],
            "cooldown": "30m",
            "action": {"webhook": "http://t/retrain"},
            "description": "why",
        },
        {
            "name": "b",
            "metric": "accuracy_drop",
            "threshold": "learned",
            "k": 2,
            "op": ">=",
            "window": "6h",
            "min_count": 0,
            "resolve_after": 5,
            "clear_margin": 0.01,
            "enabled": False,
            "notify": [],
        },
        {
            "name": "c",
            "metric": "latency_ms.p99",
            "type": "page_hinkley",
            "op": ">",
            "delta": 0.2,
            "lambda": 20,
            "warmup": 10,
            "scale": 3.5,
            "action": {"command": "retrain --model 'a b'", "timeout": 60},
        },
        {"name": "d", "metric": "error_rate", "type": "adwin", "version": "7"},
    ],
)
def test_json_round_trip(data: dict[str, Any]) -> None:
    rule = rule_from_json(data)
    assert rule_from_json(rule_to_json(rule)) == rule


def test_builtin_rules_round_trip_and_are_flagged() -> None:
    for rule in DEFAULT_RULES:
        assert rule.builtin
        assert rule_from_json(rule_to_json(rule), builtin=True) == rule
