"""The alert life cycle on a real SQLite store: for, hysteresis, cooldown reminders, restarts, history."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from collector.alert_store import MemoryAlertStore, SQLiteAlertStore
from collector.alerts import AlertManager, Observation, rfc3339
from collector.rules import Rule, rule_from_json

T0 = 1_767_225_600.0  # 2026-01-01 00:00 UTC
STEP = 60.0


def psi_rule(**options: object) -> Rule:
    return rule_from_json({"name": "income drift", "metric": "psi", "feature": "income", "threshold": 0.25, **options})


def observe(manager: AlertManager, rule: Rule, value: float, t: float, feature: str = "income") -> list[str]:
    threshold = rule.threshold or 0.0
    obs = Observation(
        rule=rule,
        model="churn",
        version="3",
        feature=feature,
        value=value,
        breached=rule.breaches(value, threshold),
        cleared=rule.clears(value, threshold, rule.margin(threshold)),
        threshold=threshold,
        window=(t - 3600, t),
        links={"drift": "/api/v1/models/churn/drift"},
    )
    return [n.event for n in manager.observe([obs], t)]


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Callable[[], SQLiteAlertStore]]:
    """Opens the test's database again on each call (a restart); closes them all at the end."""
    opened: list[SQLiteAlertStore] = []

    def open_store() -> SQLiteAlertStore:
        opened.append(SQLiteAlertStore(str(tmp_path / "predwatch.db")))
        return opened[-1]

    yield open_store
    for store in opened:
        store.close()


def test_fires_after_for_and_resolves_after_clear_evaluations(db: Callable[[], SQLiteAlertStore]) -> None:
    manager = AlertManager(db())
    rule = psi_rule(**{"for": 2, "cooldown": "30m"})
    assert observe(manager, rule, 0.1, T0) == []
    assert observe(manager, rule, 0.3, T0 + STEP) == []
    [pending] = manager.active()
    assert pending.state == "pending" and pending.started_at == T0 + STEP
    assert observe(manager, rule, 0.31, T0 + 2 * STEP) == ["firing"]
    [firing] = manager.active()
    assert (firing.state, firing.fired_at, firing.value, firing.threshold) == ("firing", T0 + 2 * STEP, 0.31, 0.25)
    assert observe(manager, rule, 0.2, T0 + 3 * STEP) == []  # clear once (0.2 <= 0.225)
    assert observe(manager, rule, 0.2, T0 + 4 * STEP) == ["resolved"]
    assert manager.active() == []
    [resolved] = manager.history()
    assert resolved.state == "resolved" and resolved.resolved_at == T0 + 4 * STEP and resolved.id == firing.id


def test_pending_that_clears_is_discarded(db: Callable[[], SQLiteAlertStore]) -> None:
    store = db()
    manager = AlertManager(store)
    rule = psi_rule(**{"for": 3})
    observe(manager, rule, 0.3, T0)
    observe(manager, rule, 0.3, T0 + STEP)
    assert observe(manager, rule, 0.24, T0 + 2 * STEP) == []  # not a breach: the count starts again
    assert manager.active() == [] and store.alert_history() == []
    assert [observe(manager, rule, 0.3, T0 + k * STEP) for k in (3, 4, 5)] == [[], [], ["firing"]]


def test_hysteresis_band_does_not_flap(db: Callable[[], SQLiteAlertStore]) -> None:
    manager = AlertManager(db())
    rule = psi_rule(cooldown=0)
    events = []
    for k, value in enumerate([0.3, 0.24, 0.26, 0.23, 0.251, 0.249, 0.24, 0.26, 0.24, 0.23]):
        events += observe(manager, rule, value, T0 + k * STEP)
    assert events == ["firing"]  # hovering around 0.25 never gets below the 0.225 clear level
    later = [observe(manager, rule, v, T0 + (10 + k) * STEP) for k, v in enumerate([0.22, 0.24, 0.22, 0.2])]
    assert later == [[], [], [], ["resolved"]]  # a value in the band resets the clear count


def test_reminders_after_the_cooldown_only(db: Callable[[], SQLiteAlertStore]) -> None:
    manager = AlertManager(db())
    rule = psi_rule(cooldown="30m")
    events = [e for k in range(61) for e in observe(manager, rule, 0.4, T0 + k * STEP)]
    assert events == ["firing", "reminder", "reminder"]  # at 0, 30 and 60 minutes
    no_reminders = psi_rule(name="other", cooldown=0)
    events = [e for k in range(10) for e in observe(manager, no_reminders, 0.4, T0 + k * STEP)]
    assert events == ["firing"]


def test_each_feature_is_its_own_alert(db: Callable[[], SQLiteAlertStore]) -> None:
    manager = AlertManager(db())
    rule = psi_rule(feature="*")
    assert observe(manager, rule, 0.4, T0, "income") == ["firing"]
    assert observe(manager, rule, 0.5, T0, "age") == ["firing"]
    assert observe(manager, rule, 0.4, T0 + STEP, "income") == []
    assert sorted(a.feature or "" for a in manager.active()) == ["age", "income"]


def test_restart_keeps_state_and_sends_no_duplicates(db: Callable[[], SQLiteAlertStore]) -> None:
    rule = psi_rule(**{"for": 2, "cooldown": "1h"})
    first = AlertManager(db())
    observe(first, rule, 0.3, T0)
    assert observe(first, rule, 0.3, T0 + STEP) == ["firing"]

    second = AlertManager(db())  # a restart within the cooldown
    [alert] = second.active()
    assert alert.state == "firing" and alert.notified_at == T0 + STEP
    assert [e for k in range(2, 30) for e in observe(second, rule, 0.3, T0 + k * STEP)] == []
    assert observe(second, rule, 0.3, T0 + 61 * STEP) == ["reminder"]  # the cooldown still runs from the first
    observe(second, rule, 0.1, T0 + 62 * STEP)

    third = AlertManager(db())  # the clear count survives too
    assert observe(third, rule, 0.1, T0 + 63 * STEP) == ["resolved"]
    assert AlertManager(db()).active() == []


def test_restart_keeps_a_pending_count(db: Callable[[], SQLiteAlertStore]) -> None:
    rule = psi_rule(**{"for": 3})
    first = AlertManager(db())
    observe(first, rule, 0.3, T0)
    observe(first, rule, 0.3, T0 + STEP)
    assert observe(AlertManager(db()), rule, 0.3, T0 + 2 * STEP) == ["firing"]


def test_retire_resolves_alerts_of_removed_rules_silently(db: Callable[[], SQLiteAlertStore]) -> None:
    manager = AlertManager(db())
    observe(manager, psi_rule(), 0.4, T0)
    assert manager.retire(lambda alert: None, T0 + STEP) == 0
    assert manager.retire(lambda alert: "rule removed" if alert.rule == "income drift" else None, T0 + STEP) == 1
    assert manager.active() == []
    [gone] = manager.history()
    assert gone.state == "resolved" and gone.reason == "rule removed"
    assert gone.to_json()["reason"] == "rule removed"


def test_history_answer_filters_and_orders(db: Callable[[], SQLiteAlertStore]) -> None:
    manager = AlertManager(db())
    rule = psi_rule(feature="*")
    other = rule_from_json({"name": "p99", "metric": "latency_ms.p99", "threshold": 100, "for": 5})
    observe(manager, rule, 0.4, T0, "a")
    observe(manager, rule, 0.4, T0, "b")
    observe(manager, rule, 0.1, T0 + STEP, "a")
    observe(manager, rule, 0.1, T0 + 2 * STEP, "a")  # a resolves
    manager.observe([Observation(other, "fraud", "1", None, 150.0, True, False, 100.0, (T0, T0 + 300))], T0 + 3 * STEP)
    answer = manager.answer()["alerts"]
    assert [(a["state"], a["model"], a["feature"]) for a in answer] == [
        ("firing", "churn", "b"),
        ("pending", "fraud", None),
        ("resolved", "churn", "a"),
    ]
    assert [a["feature"] for a in manager.answer(model="churn")["alerts"]] == ["b", "a"]
    assert [a["state"] for a in manager.answer(state="active")["alerts"]] == ["firing", "pending"]
    assert [a["state"] for a in manager.answer(state="resolved")["alerts"]] == ["resolved"]
    assert [a["model"] for a in manager.answer(state="pending")["alerts"]] == ["fraud"]
    assert len(manager.answer(limit=1)["alerts"]) == 1
    with pytest.raises(ValueError, match="state must be"):
        manager.answer(state="open")


def test_alert_json_carries_its_context(db: Callable[[], SQLiteAlertStore]) -> None:
    manager = AlertManager(db())
    [notice] = manager.observe(
        [
            Observation(
                psi_rule(severity="critical"),
                "churn",
                "3",
                "income",
                0.4,
                True,
                False,
                0.25,
                (T0, T0 + 3600),
                {"drift": "/api/v1/models/churn/drift"},
            )
        ],
        T0 + 3600,
    )
    body = notice.payload()
    assert body["event"] == "firing" and body["id"] == notice.alert.id
    assert {k: body[k] for k in ("rule", "model", "version", "feature", "metric", "value", "op", "threshold")} == {
        "rule": "income drift",
        "model": "churn",
        "version": "3",
        "feature": "income",
        "metric": "psi",
        "value": 0.4,
        "op": ">",
        "threshold": 0.25,
    }
    assert body["window"] == {"start": "2026-01-01T00:00:00.000Z", "end": "2026-01-01T01:00:00.000Z"}
    assert body["started_at"] == body["fired_at"] == "2026-01-01T01:00:00.000Z" and body["resolved_at"] is None
    assert body["severity"] == "critical" and body["links"] == {"drift": "/api/v1/models/churn/drift"}
    assert body["summary"] == "[FIRING] critical income drift: churn v3 income psi = 0.4 (> 0.25)"
    assert rfc3339(None) is None


def test_prunes_old_resolved_alerts() -> None:
    store = MemoryAlertStore()
    manager = AlertManager(store, retention_s=86400, prune_every_s=3600)
    rule = psi_rule(resolve_after=1)
    observe(manager, rule, 0.4, T0)
    observe(manager, rule, 0.1, T0 + STEP)
    assert len(manager.history()) == 1
    observe(manager, rule, 0.1, T0 + 86400 + 2 * STEP)  # no alert for this value, but time moved on
    assert manager.history() == []


class FlakyStore(MemoryAlertStore):
    def __init__(self) -> None:
        super().__init__()
        self.broken = False

    def save_alerts(self, records: Any) -> None:
        if self.broken:
            raise OSError("disk full")
        super().save_alerts(records)


def test_a_failed_save_changes_nothing() -> None:
    store = FlakyStore()
    manager = AlertManager(store)
    rule = psi_rule()
    store.broken = True
    with pytest.raises(OSError):
        observe(manager, rule, 0.4, T0)
    assert manager.active() == []
    store.broken = False
    assert observe(manager, rule, 0.4, T0 + STEP) == ["firing"]  # the notice was not lost
    store.broken = True
    with pytest.raises(OSError):
        observe(manager, rule, 0.1, T0 + 2 * STEP)
    assert manager.active()[0].clears == 0
