"""The rules in force: defaults, a whole config document, notifier references, API rules that persist."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from collector.alert_store import MemoryAlertStore, SQLiteAlertStore
from collector.notify import NotifierSpec
from collector.rule_config import DEFAULT_RULES, RuleSet, load_alerting, parse_alerting
from collector.rules import RuleError, rule_from_json

CONFIG = """
[[notifiers]]
name = "ml-team"
type = "webhook"
url = "http://alerts.internal/hook"

[[notifiers]]
name = "chat"
type = "slack"
url = "https://hooks.slack.com/services/T/B/X"
timeout = 3

[[rules]]
name = "income drift"
model = "churn"
metric = "psi"
feature = "income"
threshold = 0.25
notify = ["ml-team", "log"]

[[rules]]
name = "p99 latency"          # replaces the built-in rule of that name
metric = "latency_ms.p99"
threshold = 250
"""


def test_a_config_document() -> None:
    config = load_alerting(tomllib.loads(CONFIG))
    assert config.notifiers == (
        NotifierSpec("ml-team", "webhook", url="http://alerts.internal/hook"),
        NotifierSpec("chat", "slack", url="https://hooks.slack.com/services/T/B/X", timeout_s=3.0),
    )
    names = [r.name for r in config.rules]
    assert names == ["input drift", "accuracy drop", "rmse rise", "error rate", "income drift", "p99 latency"]
    p99 = config.rules[-1]
    assert p99.threshold == 250 and not p99.builtin


def test_defaults_false_leaves_only_the_config() -> None:
    config = load_alerting({**tomllib.loads(CONFIG), "defaults": False})
    assert [r.name for r in config.rules] == ["income drift", "p99 latency"]
    assert load_alerting({}).rules == DEFAULT_RULES
    with pytest.raises(ValueError, match="defaults must be true or false"):
        load_alerting({"defaults": "no"})


def test_the_defaults() -> None:
    by_name = {r.name: r for r in DEFAULT_RULES}
    drift = by_name["input drift"]
    assert (drift.metric, drift.feature, drift.role, drift.op, drift.threshold) == ("psi", "*", "input", ">", 0.25)
    assert by_name["accuracy drop"].ref.derived == "drop" and by_name["accuracy drop"].threshold == 0.05
    assert by_name["rmse rise"].ref.derived == "ratio" and by_name["rmse rise"].threshold == 1.25
    assert by_name["p99 latency"].threshold == 1000 and by_name["p99 latency"].lookback_s == 300
    assert by_name["error rate"].threshold == 0.05 and by_name["error rate"].severity == "critical"
    assert all(r.notify is None and r.builtin for r in DEFAULT_RULES)


def test_config_errors() -> None:
    with pytest.raises(RuleError, match=r"rule 'x': notify: no notifier named 'pager'"):
        parse_alerting([{"name": "x", "metric": "psi", "threshold": 1, "notify": ["pager"]}])
    with pytest.raises(RuleError, match="two rules have this name"):
        parse_alerting([{"name": "x", "metric": "psi", "threshold": 1}] * 2)
    with pytest.raises(ValueError, match="duplicate name 'a'"):
        parse_alerting(notifiers=[{"name": "a", "type": "log"}, {"name": "a", "type": "log"}])
    with pytest.raises(ValueError, match=r"notifier 'a': url"):
        parse_alerting(notifiers=[{"name": "a", "type": "webhook"}])


def test_rule_set_api_rules_replace_and_persist(tmp_path: Path) -> None:
    path = str(tmp_path / "predwatch.db")
    stores = [SQLiteAlertStore(path) for _ in range(3)]  # three starts of the collector
    config = parse_alerting([{"name": "income drift", "metric": "psi", "feature": "income", "threshold": 0.25}])
    rules = RuleSet(config.rules, store=stores[0])
    assert rules.source("input drift") == "builtin" and rules.source("income drift") == "config"
    rules.put(rule_from_json({"name": "income drift", "metric": "psi", "feature": "income", "threshold": 0.4}))
    rules.put(rule_from_json({"name": "f1", "metric": "f1_drop", "threshold": 0.1}))
    assert rules.get("income drift").threshold == 0.4  # type: ignore[union-attr]

    again = RuleSet(config.rules, store=stores[1])  # a restart
    assert {r.name: r.threshold for r in again.rules()}["income drift"] == 0.4
    assert again.source("f1") == "api"
    assert again.remove("income drift")  # the API rule goes, the config rule comes back
    assert again.get("income drift").threshold == 0.25  # type: ignore[union-attr]
    assert not again.remove("nothing")
    with pytest.raises(ValueError, match="config file or the built-in defaults"):
        again.remove("input drift")
    assert [r.name for r in RuleSet(store=stores[2]).rules()] == ["f1"]
    for store in stores:
        store.close()


def test_a_stored_rule_this_version_cannot_read_is_skipped(caplog: pytest.LogCaptureFixture) -> None:
    store = MemoryAlertStore()
    store.save_rule("old", {"name": "old", "metric": "psi", "threshold": 1, "from_the_future": True})
    store.save_rule("ok", {"name": "ok", "metric": "psi", "threshold": 1})
    assert [r.name for r in RuleSet(store=store).rules()] == ["ok"]
    assert "ignoring a stored rule" in caplog.text
