"""Where alerting keeps what must survive a restart: alerts (open and history), marks, API rules.

    store = SQLiteAlertStore("predwatch.db")      # the collector's database file: own tables, own connection
    manager = AlertManager(store)

Records are plain JSON-able dicts (`alerts.Alert.to_record()`); the store indexes the fields it filters on
(`id`, `rule`, `model`, `version`, `feature`, `state`, `updated_at`) and keeps the whole record as JSON.
Marks are small JSON documents by (kind, key): detector states ("detector") and action runs ("action").

`SQLiteAlertStore` uses the standard library's sqlite3 with WAL, its own connection behind a lock, and its
`alerting_*` tables (the window store's tables and `user_version` are left alone). `MemoryAlertStore` keeps
the same contract in memory (tests, or a collector that must not write).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

__all__ = ["AlertStore", "MemoryAlertStore", "SQLiteAlertStore"]

Record = dict[str, Any]
_OPEN = ("pending", "firing")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerting_alerts (
    id TEXT PRIMARY KEY,
    rule TEXT NOT NULL,
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    feature TEXT NOT NULL,            -- '' for metrics that are not per feature
    state TEXT NOT NULL,              -- pending | firing | resolved
    updated_at REAL NOT NULL,
    body TEXT NOT NULL                -- the whole record, JSON
);
CREATE INDEX IF NOT EXISTS alerting_alerts_recent ON alerting_alerts (updated_at);
CREATE INDEX IF NOT EXISTS alerting_alerts_state ON alerting_alerts (state, updated_at);
CREATE INDEX IF NOT EXISTS alerting_alerts_model ON alerting_alerts (model, updated_at);
CREATE UNIQUE INDEX IF NOT EXISTS alerting_alerts_open ON alerting_alerts (rule, model, version, feature)
    WHERE state IN ('pending', 'firing');
CREATE TABLE IF NOT EXISTS alerting_marks (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (kind, key)
);
CREATE TABLE IF NOT EXISTS alerting_rules (name TEXT PRIMARY KEY, body TEXT NOT NULL, updated_at REAL NOT NULL)
"""


class AlertStore(Protocol):
    def open_alerts(self) -> list[Record]:
        """Every pending or firing alert."""

    def save_alerts(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Insert or replace by `id`, all or none."""

    def delete_alerts(self, ids: Sequence[str]) -> None: ...

    def alert_history(
        self, *, model: str | None = None, state: str | None = None, since: float | None = None, limit: int = 100
    ) -> list[Record]:
        """Alerts updated at or after `since`, most recently updated first."""

    def prune(self, before_s: float) -> int:
        """Delete resolved alerts last updated before `before_s`; returns how many."""

    def get_marks(self, kind: str) -> dict[str, Record]: ...

    def put_marks(self, kind: str, marks: Mapping[str, Mapping[str, Any]]) -> None: ...

    def load_rules(self) -> list[Record]: ...

    def save_rule(self, name: str, body: Mapping[str, Any]) -> None: ...

    def delete_rule(self, name: str) -> None: ...

    def close(self) -> None: ...


def _row(record: Mapping[str, Any]) -> tuple[Any, ...]:
    r = record
    body = json.dumps(r, allow_nan=False, separators=(",", ":"))
    return (r["id"], r["rule"], r["model"], r["version"], r.get("feature") or "", r["state"], r["updated_at"], body)


class SQLiteAlertStore:
    def __init__(self, path: str, busy_timeout_s: float = 5.0) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        if path != ":memory:":
            self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")
        with self._tx() as db:
            for statement in _SCHEMA.split(";\n"):  # not executescript(): it would COMMIT our transaction
                db.execute(statement)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def open_alerts(self) -> list[Record]:
        rows = self._query("SELECT body FROM alerting_alerts WHERE state IN (?, ?) ORDER BY updated_at", _OPEN)
        return [json.loads(body) for (body,) in rows]

    def save_alerts(self, records: Sequence[Mapping[str, Any]]) -> None:
        if records:
            with self._tx() as db:
                db.executemany(
                    "INSERT OR REPLACE INTO alerting_alerts VALUES (?, ?, ?, ?, ?, ?, ?, ?)", map(_row, records)
                )

    def delete_alerts(self, ids: Sequence[str]) -> None:
        if ids:
            with self._tx() as db:
                db.executemany("DELETE FROM alerting_alerts WHERE id = ?", [(i,) for i in ids])

    def alert_history(
        self, *, model: str | None = None, state: str | None = None, since: float | None = None, limit: int = 100
    ) -> list[Record]:
        where, args = ["1 = 1"], []
        for clause, value in (("model = ?", model), ("state = ?", state), ("updated_at >= ?", since)):
            if value is not None:
                where.append(clause)
                args.append(value)
        sql = f"SELECT body FROM alerting_alerts WHERE {' AND '.join(where)} ORDER BY updated_at DESC LIMIT ?"
        return [json.loads(body) for (body,) in self._query(sql, [*args, max(0, limit)])]

    def prune(self, before_s: float) -> int:
        with self._tx() as db:
            cursor = db.execute("DELETE FROM alerting_alerts WHERE state = 'resolved' AND updated_at < ?", (before_s,))
            return cursor.rowcount

    def get_marks(self, kind: str) -> dict[str, Record]:
        rows = self._query("SELECT key, value FROM alerting_marks WHERE kind = ?", (kind,))
        return {key: json.loads(value) for key, value in rows}

    def put_marks(self, kind: str, marks: Mapping[str, Mapping[str, Any]]) -> None:
        if marks:
            now = time.time()
            rows = [(kind, key, json.dumps(value, allow_nan=False), now) for key, value in marks.items()]
            with self._tx() as db:
                db.executemany("INSERT OR REPLACE INTO alerting_marks VALUES (?, ?, ?, ?)", rows)

    def load_rules(self) -> list[Record]:
        return [json.loads(body) for (body,) in self._query("SELECT body FROM alerting_rules ORDER BY name")]

    def save_rule(self, name: str, body: Mapping[str, Any]) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO alerting_rules VALUES (?, ?, ?)", (name, json.dumps(body), time.time()))

    def delete_rule(self, name: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM alerting_rules WHERE name = ?", (name,))

    def close(self) -> None:
        with self._lock:
            self._db.close()


class MemoryAlertStore:
    """The same contract, in memory: lost at exit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._alerts: dict[str, Record] = {}
        self._marks: dict[str, dict[str, Record]] = {}
        self._rules: dict[str, Record] = {}

    def open_alerts(self) -> list[Record]:
        with self._lock:
            found = [json.loads(json.dumps(r)) for r in self._alerts.values() if r["state"] in _OPEN]
        return sorted(found, key=lambda r: r["updated_at"])

    def save_alerts(self, records: Sequence[Mapping[str, Any]]) -> None:
        with self._lock:
            for record in records:
                self._alerts[record["id"]] = json.loads(json.dumps(record, allow_nan=False))

    def delete_alerts(self, ids: Sequence[str]) -> None:
        with self._lock:
            for i in ids:
                self._alerts.pop(i, None)

    def alert_history(
        self, *, model: str | None = None, state: str | None = None, since: float | None = None, limit: int = 100
    ) -> list[Record]:
        with self._lock:
            found = [
                json.loads(json.dumps(r))
                for r in self._alerts.values()
                if (model is None or r["model"] == model)
                and (state is None or r["state"] == state)
                and (since is None or r["updated_at"] >= since)
            ]
        return sorted(found, key=lambda r: r["updated_at"], reverse=True)[: max(0, limit)]

    def prune(self, before_s: float) -> int:
        with self._lock:
            old = [i for i, r in self._alerts.items() if r["state"] == "resolved" and r["updated_at"] < before_s]
            for i in old:
                del self._alerts[i]
        return len(old)

    def get_marks(self, kind: str) -> dict[str, Record]:
        with self._lock:
            return json.loads(json.dumps(self._marks.get(kind, {})))  # type: ignore[no-any-return]

    def put_marks(self, kind: str, marks: Mapping[str, Mapping[str, Any]]) -> None:
        with self._lock:
            self._marks.setdefault(kind, {}).update(json.loads(json.dumps(marks, allow_nan=False)))

    def load_rules(self) -> list[Record]:
        with self._lock:
            return [json.loads(json.dumps(self._rules[name])) for name in sorted(self._rules)]

    def save_rule(self, name: str, body: Mapping[str, Any]) -> None:
        with self._lock:
            self._rules[name] = json.loads(json.dumps(body))

    def delete_rule(self, name: str) -> None:
        with self._lock:
            self._rules.pop(name, None)

    def close(self) -> None:
        pass
