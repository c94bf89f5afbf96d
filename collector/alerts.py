"""The alert life cycle, per (rule, model, version, feature): pending -> firing -> resolved.

    manager = AlertManager(SQLiteAlertStore("predwatch.db"))
    notices = manager.observe([Observation(rule, "churn", "3", "income", 0.31, threshold=0.25, ...)], now)
    for notice in notices: dispatcher.notify(notice.payload(), notice.rule.notify)
    manager.answer(model="churn", state="firing")  # GET /api/v1/alerts

Per observation (the evaluator sends one per key and evaluation, and none when there is no data):
- no open alert: a breach opens one, `pending`; it fires at once when the rule's `for` is 1.
- pending: a breach counts; `for` breaches in a row fire it ("firing" notice). Any non-breach discards it
  (pending alerts are not kept in the history and never notify).
- firing: a breach refreshes the value and, once `cooldown` has passed since the last notice, sends a
  "reminder" (cooldown 0: no reminders). A value back past the threshold by the rule's margin is *clear*;
  `resolve_after` clear evaluations in a row resolve it ("resolved" notice). A value between the threshold
  and the margin (the hysteresis band) neither breaches nor clears, and resets the clear count: a value
  hovering at the threshold cannot flap.
Every change is persisted (`alert_store`) before its notice is returned, so a restarted manager carries on
with the same alerts, counts and last-notice times: no duplicate notifications after a restart (at most once:
a crash between saving and delivering loses that notice).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any, Literal

from collector.alert_store import AlertStore
from collector.notify import summary
from collector.rules import Rule

__all__ = ["Alert", "AlertManager", "AlertState", "Notice", "Observation", "rfc3339"]

AlertState = Literal["pending", "firing", "resolved"]
EventKind = Literal["firing", "reminder", "resolved"]
Key = tuple[str, str, str, str]  # rule, model, version, feature ('' when not per feature)
_ORDER = {"firing": 0, "pending": 1, "resolved": 2}


def rfc3339(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(slots=True)
class Alert:
    id: str
    rule: str
    model: str
    version: str
    feature: str | None
    metric: str
    severity: str
    state: AlertState
    op: str | None
    threshold: float | None
    value: float
    window_start: float
    window_end: float
    started_at: float  # the first breach (the alert became pending)
    updated_at: float
    fired_at: float | None = None
    resolved_at: float | None = None
    notified_at: float | None = None
    breaches: int = 0  # consecutive, while pending
    clears: int = 0  # consecutive, while firing
    detector: str | None = None
    reason: str | None = None  # why it resolved, when not by clear evaluations ("rule removed")
    links: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> Key:
        return (self.rule, self.model, self.version, self.feature or "")

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Alert:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in record.items() if k in names})

    def to_json(self, event: EventKind | None = None) -> dict[str, Any]:
        """The alert as the API and the notifiers show it (times in RFC 3339, UTC)."""
        out: dict[str, Any] = {"id": self.id}
        if event is not None:
            out["event"] = event
        out.update(
            rule=self.rule,
            model=self.model,
            version=self.version,
            feature=self.feature,
            metric=self.metric,
            state=self.state,
            severity=self.severity,
            value=self.value,
            op=self.op,
            threshold=self.threshold,
            window={"start": rfc3339(self.window_start), "end": rfc3339(self.window_end)},
            started_at=rfc3339(self.started_at),
            fired_at=rfc3339(self.fired_at),
            resolved_at=rfc3339(self.resolved_at),
            updated_at=rfc3339(self.updated_at),
            links=dict(self.links),
        )
        if self.detector is not None:
            out["detector"] = self.detector
        if self.reason is not None:
            out["reason"] = self.reason
        out["summary"] = summary(out)
        return out


@dataclass(frozen=True, slots=True)
class Observation:
    """One evaluation of one rule for one (model, version, feature) that had data."""

    rule: Rule
    model: str
    version: str
    feature: str | None
    value: float
    breached: bool
    cleared: bool
    threshold: float | None
    window: tuple[float, float]
    links: Mapping[str, str] = field(default_factory=dict)

    @property
    def key(self) -> Key:
        return (self.rule.name, self.model, self.version, self.feature or "")


@dataclass(frozen=True, slots=True)
class Notice:
    event: EventKind
    alert: Alert  # a snapshot taken at the transition
    rule: Rule

    def payload(self) -> dict[str, Any]:
        return self.alert.to_json(self.event)


class AlertManager:
    """Open alerts in memory, mirrored to `store`; thread-safe (the evaluator observes, the API reads)."""

    def __init__(
        self,
        store: AlertStore,
        *,
        clock: Callable[[], float] = time.time,
        retention_s: float = 30 * 86400,
        prune_every_s: float = 3600.0,
    ) -> None:
        self.store = store
        self.clock = clock
        self.retention_s = retention_s
        self._prune_every_s = prune_every_s
        self._pruned_at = float("-inf")
        self._lock = threading.Lock()
        self._open: dict[Key, Alert] = {}
        for record in store.open_alerts():
            alert = Alert.from_record(record)
            self._open[alert.key] = alert

    def observe(self, observations: Iterable[Observation], now: float | None = None) -> list[Notice]:
        """Advance the life cycle; persist; return the notices to send (firing, reminder, resolved).

        All or nothing: when the store fails, the exception propagates and the alerts stay as they were."""
        now = self.clock() if now is None else now
        notices: list[Notice] = []
        with self._lock:
            staged: dict[Key, Alert | None] = {}  # the open alert after this call; None: closed
            changed: dict[str, Alert] = {}
            discarded: list[str] = []
            for obs in observations:
                current = staged[obs.key] if obs.key in staged else self._open.get(obs.key)
                if current is None and not obs.breached:
                    continue
                alert = _new_alert(obs, now) if current is None else replace(current)
                _refresh(alert, obs, now)
                event = self._step(alert, obs, now)
                if alert.state == "pending" and not obs.breached:
                    staged[obs.key] = None
                    discarded.append(alert.id)
                    changed.pop(alert.id, None)
                    continue
                staged[obs.key] = None if alert.state == "resolved" else alert
                changed[alert.id] = alert
                if event is not None:
                    notices.append(Notice(event, replace(alert, links=dict(alert.links)), obs.rule))
            self.store.save_alerts([a.to_record() for a in changed.values()])
            self.store.delete_alerts(discarded)
            for key, staged_alert in staged.items():
                if staged_alert is None:
                    self._open.pop(key, None)
                else:
                    self._open[key] = staged_alert
        self._maybe_prune(now)
        return notices

    def _step(self, alert: Alert, obs: Observation, now: float) -> EventKind | None:
        rule = obs.rule
        if alert.state == "pending":
            if not obs.breached:
                return None
            alert.breaches += 1
            if alert.breaches < rule.for_:
                return None
            alert.state, alert.fired_at, alert.notified_at = "firing", now, now
            return "firing"
        if obs.breached:
            alert.clears = 0
            due = alert.notified_at is None or now - alert.notified_at >= rule.cooldown_s
            if rule.cooldown_s > 0 and due:
                alert.notified_at = now
                return "reminder"
            return None
        alert.clears = alert.clears + 1 if obs.cleared else 0
        if alert.clears < rule.clear_after:
            return None
        alert.state, alert.resolved_at = "resolved", now
        return "resolved"

    def retire(self, why: Callable[[Alert], str | None], now: float | None = None) -> int:
        """Resolve, without a notice, the open alerts for which `why(alert)` gives a reason (e.g. "rule removed",
        "model version inactive"): nothing would ever observe them again."""
        now = self.clock() if now is None else now
        with self._lock:
            gone = []
            for alert in list(self._open.values()):
                reason = why(alert)
                if reason is not None:
                    alert.state, alert.resolved_at, alert.updated_at, alert.reason = "resolved", now, now, reason
                    del self._open[alert.key]
                    gone.append(alert)
            self.store.save_alerts([a.to_record() for a in gone])
        return len(gone)

    def active(self, model: str | None = None) -> list[Alert]:
        with self._lock:
            found = [replace(a) for a in self._open.values() if model is None or a.model == model]
        return sorted(found, key=lambda a: (_ORDER[a.state], -a.started_at))

    def history(
        self, *, model: str | None = None, state: str | None = None, since: float | None = None, limit: int = 100
    ) -> list[Alert]:
        records = self.store.alert_history(model=model, state=state, since=since, limit=limit)
        return [Alert.from_record(r) for r in records]

    def answer(self, *, model: str | None = None, state: str | None = None, limit: int = 100) -> dict[str, Any]:
        """GET /api/v1/alerts: open alerts (firing first), then resolved ones, newest first, up to `limit`.

        `state`: "pending", "firing", "resolved", "active" (pending or firing) or None (all)."""
        if state not in (None, "pending", "firing", "resolved", "active"):
            raise ValueError(f"state must be pending, firing, resolved or active, got {state!r}")
        alerts = [a for a in self.active(model) if state in (None, "active", a.state)][:limit]
        if state in (None, "resolved") and len(alerts) < limit:
            alerts += self.history(model=model, state="resolved", limit=limit - len(alerts))
        return {"alerts": [a.to_json() for a in alerts]}

    def _maybe_prune(self, now: float) -> None:
        if now - self._pruned_at >= self._prune_every_s:
            self._pruned_at = now
            self.store.prune(now - self.retention_s)


def _new_alert(obs: Observation, now: float) -> Alert:
    rule = obs.rule
    return Alert(
        id=uuid.uuid4().hex,
        rule=rule.name,
        model=obs.model,
        version=obs.version,
        feature=obs.feature,
        metric=rule.metric,
        severity=rule.severity,
        state="pending",
        op=rule.op,
        threshold=obs.threshold,
        value=obs.value,
        window_start=obs.window[0],
        window_end=obs.window[1],
        started_at=now,
        updated_at=now,
        detector=None if rule.type == "threshold" else rule.type,
    )


def _refresh(alert: Alert, obs: Observation, now: float) -> None:
    alert.value, alert.threshold, alert.updated_at = obs.value, obs.threshold, now
    alert.window_start, alert.window_end = obs.window
    alert.severity, alert.op = obs.rule.severity, obs.rule.op
    alert.links = dict(obs.links)
