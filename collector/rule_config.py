"""The rules in force: built-in defaults, a config file's [[rules]] and [[notifiers]], and rules from the API.

    config = parse_alerting(settings.rules, settings.notifiers, settings.default_rules)   # raw config tables
    config = load_alerting(tomllib.loads(text))                                           # a whole document
    rule_set = RuleSet(config.rules, store=alert_store)      # + rules added through POST /api/v1/rules
    dispatcher = Dispatcher(config.notifiers)

Built-in rules (on unless `defaults = false`; a config or API rule of the same name replaces one):

    input drift     psi > 0.25 on every input column, last 1 h, for 2, warning, cooldown 6h
    accuracy drop   accuracy_drop > 0.05 (5 points below the reference), last 1 h, for 2, critical
    rmse rise       rmse_ratio > 1.25 (RMSE 25% above the reference), last 1 h, for 2, critical
    p99 latency     latency_ms.p99 > 1000 ms, last 5 min, for 3, warning, cooldown 30m
    error rate      error_rate > 0.05, last 5 min, for 3, critical, cooldown 30m

All keep min_count 100 (rows behind a value) and notify every notifier. The performance rules need the
reference's performance (labels with the reference) and stay silent without it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from collector.notify import NotifierSpec, parse_notifier
from collector.rules import Rule, RuleError, rule_from_json, rule_to_json

__all__ = ["DEFAULT_RULES", "AlertingConfig", "RuleSet", "RuleStore", "load_alerting", "parse_alerting"]

_log = logging.getLogger("predwatch.alerts")

# Built-in rules (README "Alerting"): on unless `defaults = false`; a rule of the same name replaces one.
DEFAULT_RULES: tuple[Rule, ...] = tuple(
    rule_from_json(spec, builtin=True)
    for spec in (
        # PSI (CSI) above the "drift" band on any input column, over the last hour, two evaluations running.
        {"name": "input drift", "metric": "psi", "feature": "*", "role": "input", "threshold": 0.25, "for": 2,
         "cooldown": "6h"},
        # Accuracy five points below the reference's (classification; needs labels and reference labels).
        {"name": "accuracy drop", "metric": "accuracy_drop", "threshold": 0.05, "for": 2, "severity": "critical"},
        # RMSE a quarter above the reference's (regression).
        {"name": "rmse rise", "metric": "rmse_ratio", "threshold": 1.25, "for": 2, "severity": "critical"},
        # Slow predictions: p99 over the last 5 minutes above one second, three evaluations running.
        {"name": "p99 latency", "metric": "latency_ms.p99", "threshold": 1000, "for": 3, "cooldown": "30m"},
        # Failing predictions: more than 5% of calls raised, over the last 5 minutes.
        {"name": "error rate", "metric": "error_rate", "threshold": 0.05, "for": 3, "severity": "critical",
         "cooldown": "30m"},
    )
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class AlertingConfig:
    rules: tuple[Rule, ...]
    notifiers: tuple[NotifierSpec, ...]


def parse_alerting(
    rules: Iterable[Mapping[str, Any]] = (), notifiers: Iterable[Mapping[str, Any]] = (), defaults: bool = True
) -> AlertingConfig:
    """The rules (built-in ones first unless `defaults` is False) and notifiers of a config. Raises ValueError."""
    specs = tuple(parse_notifier(item) for item in notifiers)
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"notifiers: duplicate name {next(n for n in names if names.count(n) > 1)!r}")
    known = {*names, "log"}
    parsed = [rule_from_json(item) for item in rules]
    seen: set[str] = set()
    for rule in parsed:
        if rule.name in seen:
            raise RuleError(rule.name, "name", "two rules have this name")
        seen.add(rule.name)
        missing = sorted(set(rule.notify or ()) - known)
        if missing:
            raise RuleError(
                rule.name, "notify", f"no notifier named {missing[0]!r} (known: {', '.join(sorted(known))})"
            )
    builtin = [r for r in DEFAULT_RULES if r.name not in seen] if defaults else []
    return AlertingConfig(tuple(builtin + parsed), specs)


def load_alerting(document: Mapping[str, Any]) -> AlertingConfig:
    """From a parsed config document (`tomllib.loads(text)`): its [[rules]], [[notifiers]] and `defaults`."""
    defaults = document.get("defaults", True)
    if not isinstance(defaults, bool):
        raise ValueError(f"defaults must be true or false, got {defaults!r}")
    return parse_alerting(document.get("rules", ()), document.get("notifiers", ()), defaults)


class RuleStore(Protocol):
    """Where rules added through the API persist (alert_store.SQLiteAlertStore is one)."""

    def load_rules(self) -> list[dict[str, Any]]: ...

    def save_rule(self, name: str, body: Mapping[str, Any]) -> None: ...

    def delete_rule(self, name: str) -> None: ...


class RuleSet:
    """The rules in force: built-in and config rules, then those added through the API, which persist in `store`
    and replace a built-in or config rule of the same name. Thread-safe; `rules()` returns a snapshot.

    Removing an API rule brings back the config rule it replaced; config and built-in rules cannot be removed
    (edit the file, set `defaults = false`, or put a rule of the same name with `enabled = false`)."""

    def __init__(self, rules: Iterable[Rule] = (), store: RuleStore | None = None) -> None:
        self._lock = threading.Lock()
        self._store = store
        self._config: dict[str, Rule] = {r.name: r for r in rules}
        self._api: dict[str, Rule] = {}
        for body in store.load_rules() if store is not None else ():
            try:
                rule = rule_from_json(body)
            except ValueError as exc:  # written by another predwatch version: keep serving the others
                _log.warning("ignoring a stored rule: %s", exc)
                continue
            self._api[rule.name] = rule

    def rules(self) -> list[Rule]:
        with self._lock:
            return list({**self._config, **self._api}.values())

    def get(self, name: str) -> Rule | None:
        with self._lock:
            return self._api.get(name) or self._config.get(name)

    def source(self, name: str) -> Literal["builtin", "config", "api"] | None:
        with self._lock:
            if name in self._api:
                return "api"
            rule = self._config.get(name)
        return None if rule is None else "builtin" if rule.builtin else "config"

    def put(self, rule: Rule) -> None:
        """Add or replace an API rule (persisted before it takes effect)."""
        with self._lock:
            if self._store is not None:
                self._store.save_rule(rule.name, rule_to_json(rule))
            self._api[rule.name] = rule

    def remove(self, name: str) -> bool:
        """Remove an API rule; False when there is none of that name. Raises ValueError for config rules."""
        with self._lock:
            if name not in self._api:
                if name in self._config:
                    raise ValueError(f"rule {name!r} comes from the config file or the built-in defaults")
                return False
            if self._store is not None:
                self._store.delete_rule(name)
            del self._api[name]
            return True
