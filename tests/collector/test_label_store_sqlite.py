"""The label join's SQLite tables: every query path indexed, ids stored compactly and returned unchanged, the
primitives of a transaction, expiry, counters, and that everything survives a reopen."""

from __future__ import annotations

import re
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.label_store import ANY_VERSION, NewActual, NewPrediction, WindowCounts
from collector.label_store_sqlite import QUERIES, _in, _values, id_key
from collector.state_store_sqlite import MAX_WIDTH, RANGE, SELECT_ONE
from collector.store_sqlite import SQLiteStore

ALLOWED_SCANS = re.compile(r"^(SCAN v|SCAN \d+ CONSTANT ROWS|MATERIALIZE v)$")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    s = SQLiteStore(str(tmp_path / "labels.db"))
    yield s
    s.close()


def plan(db: sqlite3.Connection, sql: str) -> list[str]:
    sql = sql.format(ids=_in(64), values=_values(64)) if "{" in sql else sql
    return [row[3] for row in db.execute("EXPLAIN QUERY PLAN " + sql, [1] * sql.count("?"))]


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_every_label_query_uses_an_index(store: SQLiteStore, name: str) -> None:
    store.labels()
    with store.transaction() as db:
        steps = plan(db, QUERIES[name])
    for step in steps:
        assert not step.startswith("SCAN") or ALLOWED_SCANS.match(step), (name, steps)
        assert "TEMP B-TREE" not in step, (name, steps)  # no sort outside an index
    if not QUERIES[name].startswith("INSERT"):
        assert any(step.startswith("SEARCH") for step in steps), (name, steps)


@pytest.mark.parametrize("sql", [SELECT_ONE, RANGE, MAX_WIDTH])
def test_every_state_query_uses_an_index(store: SQLiteStore, sql: str) -> None:
    with store.transaction() as db:
        steps = plan(db, sql)
    assert steps and all(step.startswith("SEARCH") for step in steps), steps


@pytest.mark.parametrize(
    ("pid", "stored"),
    [
        ("0123456789abcdef0123456789abcdef", bytes.fromhex("0123456789abcdef0123456789abcdef")),
        ("0123456789ABCDEF0123456789ABCDEF", "0123456789ABCDEF0123456789ABCDEF"),  # upper case stays text
        ("0123456789abcdef0123456789abcdeg", "0123456789abcdef0123456789abcdeg"),
        ("0123 456789abcdef0123456789abcde", "0123 456789abcdef0123456789abcde"),
        ("order-42", "order-42"),
        ("é" * 32, "é" * 32),
    ],
)
def test_ids_are_stored_compactly_and_come_back_unchanged(store: SQLiteStore, pid: str, stored: object) -> None:
    assert id_key(pid) == stored
    labels = store.labels()
    with labels.transaction() as tx:
        model = tx.model_id("m")
        series = tx.series(model, "1", "binary_classification").series
        tx.insert_predictions(model, [NewPrediction(pid, series, 60, 61.5, 1, 0.9, None)], received_s=100)
        tx.insert_actuals(model, [NewActual(pid, ANY_VERSION, 0)], received_s=100)
    with labels.transaction() as tx:
        [held] = tx.find_predictions(model, [pid, "other"])
        [actual] = tx.find_actuals(model, [pid])
    assert (held.id, held.window_s, held.label, held.score, held.actual) == (pid, 60, 1, 0.9, None)
    assert (actual.id, actual.series, actual.actual) == (pid, ANY_VERSION, 0)


def test_labeling_returns_the_rows_it_labeled_once(store: SQLiteStore) -> None:
    labels = store.labels()
    ids = [uuid.UUID(int=i).hex for i in range(1203)]  # more than two chunks of 500
    with labels.transaction() as tx:
        model = tx.model_id("m")
        v1 = tx.series(model, "1", "regression").series
        v2 = tx.series(model, "2", None).series
        assert tx.series(model, "2", "regression").task == "regression"  # a missing task is filled in
        tx.insert_predictions(model, [NewPrediction(p, v1, 0, 1.0, None, None, float(i)) for i, p in enumerate(ids)], 5)
        tx.insert_predictions(model, [NewPrediction(ids[0], v2, 0, 1.0, None, None, 7.0)], 5)
    with labels.transaction() as tx:
        first = tx.label_predictions(model, [(p, i % 3) for i, p in enumerate(ids)], ANY_VERSION)
        again = tx.label_predictions(model, [(p, 9) for p in ids], ANY_VERSION)
    assert len(first) == 1204 and again == []
    assert {(h.id, h.series) for h in first} == {(p, v1) for p in ids} | {(ids[0], v2)}
    assert all(h.actual == int(h.id, 16) % 3 and h.target == ANY_VERSION for h in first)
    with labels.transaction() as tx:
        only_v2 = tx.label_predictions(model, [(ids[1], 5)], v2)  # v2 holds no prediction of ids[1]
        held = tx.find_predictions(model, ids[:2], v1)
    assert only_v2 == [] and [(h.id, h.actual) for h in held] == [(ids[0], 0), (ids[1], 1)]


def test_counters_expiry_and_reopen(tmp_path: Path) -> None:
    path = str(tmp_path / "labels.db")
    store = SQLiteStore(path)
    labels = store.labels()
    with labels.transaction() as tx:
        model = tx.model_id("m")
        series = tx.series(model, "1", "multiclass_classification").series
        tx.insert_predictions(model, [NewPrediction("a", series, 0, 1.0, "x", None, None)], received_s=10)
        tx.insert_predictions(model, [NewPrediction("b", series, 60, 61.0, "y", None, None, "y", series)], 10)
        tx.insert_predictions(model, [NewPrediction("c", series, 60, 61.0, "y", None, None)], received_s=50)
        tx.insert_actuals(model, [NewActual("z", ANY_VERSION, "x")], received_s=10)
        tx.add_window_counts({(series, 0): (1, 0, 0), (series, 60): (2, 1, 0)})
        tx.add_actual_counts({(model, ANY_VERSION): (1, 0, 1, 0, 0, 0), (model, series): (0, 0, 0, 2, 1, 0)})
    assert labels.held() == (3, 1)
    assert labels.expire(before_s=20, limit=1) == 1  # one of each at a time
    assert labels.expire(before_s=20, limit=1) == 1
    assert labels.expire(before_s=20, limit=1) == 0
    assert labels.held() == (1, 0)
    store.close()

    store = SQLiteStore(path)
    labels = store.labels()
    assert labels.tasks("m") == {"1": "multiclass_classification"} and labels.tasks("nope") == {}
    assert labels.window_counts("m", "1", 0, 120, 60) == [WindowCounts(0, 1, 0, 1), WindowCounts(60, 2, 1, 0)]
    assert labels.window_counts("m", "1", 60, 120, 60) == [WindowCounts(60, 2, 1, 0)]
    assert labels.window_counts("m", "2", 0, 120, 60) == []
    counts = labels.actual_counts("m")
    assert counts[None] == {"received": 1, "matched": 0, "pending": 0, "duplicates": 0, "conflicts": 0, "expired": 1}
    assert counts["1"]["duplicates"] == 2 and counts["1"]["conflicts"] == 1
    with labels.transaction() as tx:
        assert [h.id for h in tx.find_predictions(tx.model_id("m"), ["a", "b", "c"])] == ["c"]
    store.close()


def test_a_failed_transaction_leaves_nothing(store: SQLiteStore) -> None:
    labels = store.labels()
    with pytest.raises(RuntimeError), labels.transaction() as tx:
        model = tx.model_id("m")
        series = tx.series(model, "1", "regression").series
        tx.insert_predictions(model, [NewPrediction("a", series, 0, 1.0, None, None, 1.0)], received_s=1)
        raise RuntimeError("boom")
    assert labels.held() == (0, 0) and labels.tasks("m") == {}
