"""The alert store: SQLite on a real file (shared with the window store) and the in-memory twin, one contract."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from collector.alert_store import AlertStore, MemoryAlertStore, SQLiteAlertStore
from collector.store_sqlite import SCHEMA_VERSION, SQLiteStore


def record(i: int, *, model: str = "churn", state: str = "firing", t: float = 0.0, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"a{i}",
        "rule": f"r{i}",
        "model": model,
        "version": "1",
        "feature": None,
        "state": state,
        "updated_at": t or float(i),
        "value": 0.5,
        **extra,
    }


@pytest.fixture(params=["sqlite", "memory"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], AlertStore]]:
    opened: list[AlertStore] = []

    def make() -> AlertStore:
        store: AlertStore = SQLiteAlertStore(str(tmp_path / "p.db")) if request.param == "sqlite" else shared
        opened.append(store)
        return store

    shared = MemoryAlertStore()
    yield make
    for store in opened:
        store.close()


def test_alerts_round_trip_and_filters(make_store: Callable[[], AlertStore]) -> None:
    store = make_store()
    store.save_alerts([record(1), record(2, state="pending"), record(3, model="fraud", state="resolved")])
    store.save_alerts([record(4, state="resolved", extra={"nested": [1, 2]})])
    assert [r["id"] for r in store.open_alerts()] == ["a1", "a2"]
    assert [r["id"] for r in store.alert_history()] == ["a4", "a3", "a2", "a1"]
    assert [r["id"] for r in store.alert_history(model="churn")] == ["a4", "a2", "a1"]
    assert [r["id"] for r in store.alert_history(state="resolved")] == ["a4", "a3"]
    assert [r["id"] for r in store.alert_history(model="churn", state="resolved")] == ["a4"]
    assert [r["id"] for r in store.alert_history(since=2.5, limit=1)] == ["a4"]
    assert store.alert_history(since=2.5)[0]["extra"] == {"nested": [1, 2]}
    store.save_alerts([record(1, state="resolved", t=10.0)])  # replace by id
    assert [r["id"] for r in store.open_alerts()] == ["a2"]
    store.delete_alerts(["a2"])
    assert store.open_alerts() == []
    assert store.prune(before_s=5.0) == 2  # a3, a4; a1 was updated at 10
    assert [r["id"] for r in store.alert_history()] == ["a1"]


def test_marks_and_rules(make_store: Callable[[], AlertStore]) -> None:
    store = make_store()
    store.put_marks("action", {"k1": {"started_at": 1.0}, "k2": {"started_at": 2.0}})
    store.put_marks("action", {"k1": {"started_at": 3.0, "ok": True}})
    store.put_marks("detector", {"k1": {"state": {"n": 1}}})
    assert store.get_marks("action") == {"k1": {"started_at": 3.0, "ok": True}, "k2": {"started_at": 2.0}}
    assert store.get_marks("nothing") == {}
    store.save_rule("b", {"name": "b"})
    store.save_rule("a", {"name": "a"})
    store.delete_rule("b")
    assert store.load_rules() == [{"name": "a"}]


def test_state_survives_reopening(make_store: Callable[[], AlertStore]) -> None:
    first = make_store()
    first.save_alerts([record(1)])
    first.put_marks("action", {"k": {"started_at": 1.0}})
    first.save_rule("a", {"name": "a"})
    second = make_store()
    assert [r["id"] for r in second.open_alerts()] == ["a1"]
    assert second.get_marks("action") == {"k": {"started_at": 1.0}}
    assert second.load_rules() == [{"name": "a"}]


def test_nan_is_refused_before_it_is_stored(make_store: Callable[[], AlertStore]) -> None:
    store = make_store()
    with pytest.raises(ValueError):
        store.save_alerts([record(1, value=float("nan"))])
    assert store.open_alerts() == []


def test_shares_a_file_with_the_window_store(tmp_path: Path) -> None:
    path = str(tmp_path / "predwatch.db")
    windows = SQLiteStore(path)
    alerts = SQLiteAlertStore(path)
    alerts.save_alerts([record(1)])
    windows.close()
    windows = SQLiteStore(path)  # reopening checks user_version: the alert tables must not have touched it
    assert windows.models() == []
    alerts.close()
    windows.close()
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"alerting_alerts", "alerting_marks", "alerting_rules", "windows"} <= tables


def test_history_queries_use_indexes(tmp_path: Path) -> None:
    store = SQLiteAlertStore(str(tmp_path / "p.db"))
    db = sqlite3.connect(str(tmp_path / "p.db"))
    for where in ("", "WHERE model = 'm'", "WHERE state = 'resolved'", "WHERE model = 'm' AND state = 'firing'"):
        plan = " ".join(
            row[-1]
            for row in db.execute(
                f"EXPLAIN QUERY PLAN SELECT body FROM alerting_alerts {where} ORDER BY updated_at DESC LIMIT 10"
            )
        )
        assert "USING INDEX" in plan and "TEMP B-TREE" not in plan, (where, plan)
    plan = " ".join(
        r[-1]
        for r in db.execute("EXPLAIN QUERY PLAN SELECT body FROM alerting_alerts WHERE state IN ('pending', 'firing')")
    )
    assert "USING INDEX" in plan
    db.close()
    store.close()


def test_one_open_alert_per_key(tmp_path: Path) -> None:
    store = SQLiteAlertStore(str(tmp_path / "p.db"))
    store.save_alerts([record(1, rule="r"), record(2, rule="r", state="resolved")])
    store.save_alerts([record(3, rule="r")])  # a second open alert for the key replaces the first
    assert [r["id"] for r in store.open_alerts()] == ["a3"]
    store.close()


def test_concurrent_writers(tmp_path: Path) -> None:
    store = SQLiteAlertStore(str(tmp_path / "p.db"))
    errors: list[BaseException] = []

    def write(offset: int) -> None:
        try:
            for i in range(50):
                store.save_alerts([record(offset + i, state="resolved")])
                store.put_marks("action", {str(offset + i): {"n": i}})
                store.alert_history(limit=5)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(k * 1000,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(store.alert_history(limit=1000)) == 200 and len(store.get_marks("action")) == 200
    store.close()
