"""The label join's tables on the collector's SQLite file (`collector.label_store.LabelStore`).

    labels = SQLiteStore("predwatch.db").labels()
    with labels.transaction() as tx: ...                # the SQLiteStore's writer connection and lock

Every query is parameterised and every query path is an index: the predictions and pending actuals are
WITHOUT ROWID tables keyed (model_id, id, series), so a lookup by id for one version or for all versions of a
model is a primary-key search, and the expiry sweep walks an index on the time received. Ids go `_CHUNK` at a
time per statement (IN and VALUES lists padded to a few fixed lengths, so the statements stay cached); the
common path, actuals for held predictions, is one `UPDATE ... FROM (VALUES ...) RETURNING` per chunk: one
primary-key search and one row write per label. Prediction ids of 32 lowercase hex digits (the SDK's generated
ids) are stored as their 16 bytes, any other id as text: the two never collide, and each id round-trips
unchanged.

Cost: ids are random, so each label dirties about one page of a large table; SQLiteStore's writer connection
keeps a 64 MB page cache and checkpoints the WAL every 10,000 pages rather than 1,000 for that reason.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from collector.label_store import (
    ACTUAL_COUNTERS,
    ANY_VERSION,
    HeldActual,
    HeldPrediction,
    NewActual,
    NewPrediction,
    SeriesInfo,
    WindowCounts,
)

if TYPE_CHECKING:
    from collector.store_sqlite import SQLiteStore

__all__ = ["QUERIES", "SCHEMA", "SQLiteLabelStore", "id_key"]

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS label_models (model_id INTEGER PRIMARY KEY, model TEXT NOT NULL UNIQUE)",
    "CREATE TABLE IF NOT EXISTS label_series (series INTEGER PRIMARY KEY, model_id INTEGER NOT NULL,"
    " version TEXT NOT NULL, task TEXT, UNIQUE (model_id, version))",
    # id: TEXT, or a BLOB of 16 bytes for a 32-hex-digit id; label: the canonical class (int, real or text)
    # actual: NULL until labeled; target: the series the labeling actual was sent for (0: any version)
    "CREATE TABLE IF NOT EXISTS label_predictions (model_id INTEGER NOT NULL, id NOT NULL, series INTEGER NOT NULL,"
    " window_s INTEGER NOT NULL, time_s REAL NOT NULL, received_s INTEGER NOT NULL, label, score REAL,"
    " prediction REAL, actual, target INTEGER, PRIMARY KEY (model_id, id, series)) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS label_predictions_received ON label_predictions (received_s)",
    "CREATE TABLE IF NOT EXISTS label_actuals (model_id INTEGER NOT NULL, id NOT NULL, series INTEGER NOT NULL,"
    " received_s INTEGER NOT NULL, actual NOT NULL, PRIMARY KEY (model_id, id, series)) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS label_actuals_received ON label_actuals (received_s)",
    "CREATE TABLE IF NOT EXISTS label_windows (series INTEGER NOT NULL, window_s INTEGER NOT NULL,"
    " predictions INTEGER NOT NULL, matched INTEGER NOT NULL, expired INTEGER NOT NULL,"
    " PRIMARY KEY (series, window_s)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS label_actual_counts (model_id INTEGER NOT NULL, series INTEGER NOT NULL,"
    + "".join(f" {name} INTEGER NOT NULL," for name in ACTUAL_COUNTERS)
    + " PRIMARY KEY (model_id, series)) WITHOUT ROWID",
)

_CHUNK = 500
_SIZES = (1, 8, 64, _CHUNK)  # IN-list lengths: a lookup is padded with NULLs up to the next one


def _in(n: int) -> str:
    return "(" + ", ".join("?" * n) + ")"


def _values(n: int) -> str:
    return ", ".join(["(?, ?)"] * n)


_HELD = "id, series, window_s, label, score, prediction, actual, target"
_LABEL = (
    "UPDATE label_predictions AS p SET actual = v.column2, target = ? FROM (VALUES {values}) AS v"
    " WHERE p.model_id = ? AND p.id = v.column1{series} AND p.actual IS NULL"
    f" RETURNING {_HELD}"
)

# Every statement, by name; {ids} is an IN list, {values} a VALUES list (see _SIZES).
# tests/collector/test_label_store_sqlite.py runs EXPLAIN QUERY PLAN on each and checks that none scans a table.
QUERIES: dict[str, str] = {
    "model_get": "SELECT model_id FROM label_models WHERE model = ?",
    "model_add": "INSERT INTO label_models (model) VALUES (?)",
    "series_get": "SELECT series, task FROM label_series WHERE model_id = ? AND version = ?",
    "series_add": "INSERT INTO label_series (model_id, version, task) VALUES (?, ?, ?)",
    "series_task": "UPDATE label_series SET task = ? WHERE series = ?",
    "series_info": "SELECT s.series, m.model, s.version, s.task FROM label_series s"
    " JOIN label_models m ON m.model_id = s.model_id WHERE s.series = ?",
    "tasks": "SELECT s.version, s.task FROM label_models m JOIN label_series s ON s.model_id = m.model_id"
    " WHERE m.model = ?",
    "find_predictions": f"SELECT {_HELD} FROM label_predictions WHERE model_id = ? AND id IN {{ids}}",
    "find_predictions_series": f"SELECT {_HELD} FROM label_predictions"
    " WHERE model_id = ? AND series = ? AND id IN {ids}",
    "find_actuals": "SELECT id, series, actual FROM label_actuals WHERE model_id = ? AND id IN {ids}",
    "label_predictions": _LABEL.replace("{series}", ""),
    "label_predictions_series": _LABEL.replace("{series}", " AND p.series = ?"),
    "insert_predictions": "INSERT INTO label_predictions (model_id, id, series, window_s, time_s, received_s, label,"
    " score, prediction, actual, target) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "insert_actuals": "INSERT INTO label_actuals (model_id, id, series, received_s, actual) VALUES (?, ?, ?, ?, ?)",
    "delete_actuals": "DELETE FROM label_actuals WHERE model_id = ? AND id = ? AND series = ?",
    "window_counts_add": "INSERT INTO label_windows (series, window_s, predictions, matched, expired)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (series, window_s) DO UPDATE SET"
    " predictions = predictions + excluded.predictions, matched = matched + excluded.matched,"
    " expired = expired + excluded.expired",
    "actual_counts_add": f"INSERT INTO label_actual_counts (model_id, series, {', '.join(ACTUAL_COUNTERS)})"
    f" VALUES (?, ?, {', '.join('?' * len(ACTUAL_COUNTERS))}) ON CONFLICT (model_id, series) DO UPDATE SET "
    + ", ".join(f"{name} = {name} + excluded.{name}" for name in ACTUAL_COUNTERS),
    "window_counts": "SELECT w.window_s, w.predictions, w.matched, w.expired FROM label_models m"
    " JOIN label_series s ON s.model_id = m.model_id JOIN label_windows w ON w.series = s.series"
    " WHERE m.model = ? AND s.version = ? AND w.window_s > ? AND w.window_s < ? ORDER BY w.window_s",
    "actual_counts": f"SELECT c.series, s.version, {', '.join('c.' + n for n in ACTUAL_COUNTERS)}"
    " FROM label_models m JOIN label_actual_counts c ON c.model_id = m.model_id"
    " LEFT JOIN label_series s ON s.series = c.series WHERE m.model = ?",
    "expire_predictions": "SELECT model_id, id, series, window_s, actual IS NOT NULL FROM label_predictions"
    " WHERE received_s < ? ORDER BY received_s LIMIT ?",
    "delete_predictions": "DELETE FROM label_predictions WHERE model_id = ? AND id = ? AND series = ?",
    "expire_actuals": "SELECT model_id, id, series FROM label_actuals WHERE received_s < ? ORDER BY received_s LIMIT ?",
    # one series' oldest counters: a range of the primary key (series, window_s)
    "delete_windows": "DELETE FROM label_windows WHERE series = ? AND window_s IN"
    " (SELECT window_s FROM label_windows WHERE series = ? AND window_s < ? ORDER BY window_s LIMIT ?)",
}


# Outside QUERIES (whose statements must all search an index): a scan, but of one row per model version.
_ALL_SERIES = "SELECT series FROM label_series ORDER BY series"


def id_key(pid: str) -> str | bytes:
    """How an id is stored: the 16 bytes of 32 lowercase hex digits, else the text itself."""
    if len(pid) == 32:
        try:
            raw = bytes.fromhex(pid)
        except ValueError:
            return pid
        if len(raw) == 16 and raw.hex() == pid:
            return raw
    return pid


def _chunks(keys: Sequence[Any]) -> Iterator[tuple[int, list[Any]]]:
    """(padded length, padded chunk) pieces of at most _CHUNK keys."""
    for i in range(0, len(keys), _CHUNK):
        chunk = list(keys[i : i + _CHUNK])
        size = next(s for s in _SIZES if s >= len(chunk))
        yield size, chunk + [None] * (size - len(chunk))


def _held(back: Mapping[Any, str], row: Sequence[Any]) -> HeldPrediction:
    return HeldPrediction(back[row[0]], *row[1:])


class SQLiteLabelTx:
    """The primitives of one transaction (collector.label_store.LabelTx) on the writer connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self._series: dict[int, SeriesInfo] = {}

    def model_id(self, model: str) -> int:
        row = self.db.execute(QUERIES["model_get"], (model,)).fetchone()
        if row is not None:
            return int(row[0])
        cursor = self.db.execute(QUERIES["model_add"], (model,))
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def series(self, model_id: int, version: str, task: str | None) -> SeriesInfo:
        row = self.db.execute(QUERIES["series_get"], (model_id, version)).fetchone()
        if row is None:
            cursor = self.db.execute(QUERIES["series_add"], (model_id, version, task))
            assert cursor.lastrowid is not None
            series = cursor.lastrowid
        else:
            series, stored = int(row[0]), row[1]
            if stored is None and task is not None:
                self.db.execute(QUERIES["series_task"], (task, series))
            else:
                task = stored
        self._series.pop(series, None)
        return self.series_info(series)

    def series_info(self, series: int) -> SeriesInfo:
        info = self._series.get(series)
        if info is None:
            row = self.db.execute(QUERIES["series_info"], (series,)).fetchone()
            if row is None:
                raise KeyError(f"no label series {series}")
            info = self._series[series] = SeriesInfo(int(row[0]), row[1], row[2], row[3])
        return info

    def find_predictions(self, model_id: int, ids: Sequence[str], series: int | None = None) -> list[HeldPrediction]:
        back = {id_key(pid): pid for pid in ids}
        name = "find_predictions" if series is None else "find_predictions_series"
        head: tuple[int, ...] = (model_id,) if series is None else (model_id, series)
        out = []
        for size, chunk in _chunks(list(back)):
            sql = QUERIES[name].format(ids=_in(size))
            out += [_held(back, row) for row in self.db.execute(sql, (*head, *chunk))]
        return out

    def find_actuals(self, model_id: int, ids: Sequence[str]) -> list[HeldActual]:
        back = {id_key(pid): pid for pid in ids}
        out = []
        for size, chunk in _chunks(list(back)):
            sql = QUERIES["find_actuals"].format(ids=_in(size))
            out += [HeldActual(back[key], s, actual) for key, s, actual in self.db.execute(sql, (model_id, *chunk))]
        return out

    def label_predictions(self, model_id: int, actuals: Sequence[tuple[str, Any]], target: int) -> list[HeldPrediction]:
        back: dict[Any, str] = {}
        params: list[Any] = []
        for pid, actual in actuals:
            key = id_key(pid)
            back[key] = pid
            params += (key, actual)
        name = "label_predictions" if target == ANY_VERSION else "label_predictions_series"
        tail: tuple[int, ...] = (model_id,) if target == ANY_VERSION else (model_id, target)
        out = []
        for i in range(0, len(params), 2 * _CHUNK):
            chunk = params[i : i + 2 * _CHUNK]
            size = next(s for s in _SIZES if 2 * s >= len(chunk))
            chunk += [None] * (2 * size - len(chunk))  # (NULL, NULL) rows match no id
            sql = QUERIES[name].format(values=_values(size))
            out += [_held(back, row) for row in self.db.execute(sql, (target, *chunk, *tail))]
        return out

    def insert_predictions(self, model_id: int, rows: Sequence[NewPrediction], received_s: int) -> None:
        self.db.executemany(
            QUERIES["insert_predictions"],
            [(model_id, id_key(r[0]), r[1], r[2], r[3], received_s, *r[4:]) for r in rows],
        )

    def insert_actuals(self, model_id: int, rows: Sequence[NewActual], received_s: int) -> None:
        self.db.executemany(QUERIES["insert_actuals"], [(model_id, id_key(r[0]), r[1], received_s, r[2]) for r in rows])

    def delete_actuals(self, model_id: int, keys: Iterable[tuple[str, int]]) -> None:
        self.db.executemany(QUERIES["delete_actuals"], [(model_id, id_key(pid), s) for pid, s in keys])

    def add_window_counts(self, deltas: Mapping[tuple[int, int], Sequence[int]]) -> None:
        self.db.executemany(QUERIES["window_counts_add"], [(*key, *counts) for key, counts in deltas.items()])

    def add_actual_counts(self, deltas: Mapping[tuple[int, int], Sequence[int]]) -> None:
        self.db.executemany(QUERIES["actual_counts_add"], [(*key, *counts) for key, counts in deltas.items()])


class SQLiteLabelStore:
    """`label_store.LabelStore` on a SQLiteStore's file, writing through its writer connection and lock."""

    def __init__(self, store: SQLiteStore) -> None:
        self._store = store
        with store.transaction() as db:
            for statement in SCHEMA:
                db.execute(statement)

    @contextmanager
    def transaction(self) -> Iterator[SQLiteLabelTx]:
        with self._store.transaction() as db:
            yield SQLiteLabelTx(db)

    def expire(self, before_s: int, limit: int) -> int:
        with self._store.transaction() as db:
            predictions = db.execute(QUERIES["expire_predictions"], (before_s, limit)).fetchall()
            db.executemany(QUERIES["delete_predictions"], [row[:3] for row in predictions])
            windows: dict[tuple[int, int], list[int]] = {}
            for _, _, series, window, labeled in predictions:
                if not labeled:
                    windows.setdefault((series, window), [0, 0, 0])[2] += 1
            SQLiteLabelTx(db).add_window_counts(windows)
            actuals = db.execute(QUERIES["expire_actuals"], (before_s, limit)).fetchall()
            db.executemany(QUERIES["delete_actuals"], [row[:3] for row in actuals])
            targets: dict[tuple[int, int], list[int]] = {}
            pending, expired = ACTUAL_COUNTERS.index("pending"), ACTUAL_COUNTERS.index("expired")
            for model_id, _, series in actuals:
                counts = targets.setdefault((model_id, series), [0] * len(ACTUAL_COUNTERS))
                counts[pending] -= 1
                counts[expired] += 1
            SQLiteLabelTx(db).add_actual_counts(targets)
        return max(len(predictions), len(actuals))

    def delete_windows_before(self, end_s: float, width_s: int, limit: int) -> int:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        left = limit
        with self._store.transaction() as db:
            for (series,) in db.execute(_ALL_SERIES).fetchall():
                left -= db.execute(QUERIES["delete_windows"], (series, series, end_s - width_s, left)).rowcount
                if left == 0:
                    break
        return limit - left

    def tasks(self, model: str) -> dict[str, str | None]:
        with self._store.snapshot() as db:
            return {version: task for version, task in db.execute(QUERIES["tasks"], (model,))}

    def window_counts(self, model: str, version: str, start_s: float, end_s: float, width_s: int) -> list[WindowCounts]:
        with self._store.snapshot() as db:
            rows = db.execute(QUERIES["window_counts"], (model, version, start_s - width_s, end_s)).fetchall()
        return [WindowCounts(*row) for row in rows]

    def actual_counts(self, model: str) -> dict[str | None, dict[str, int]]:
        with self._store.snapshot() as db:
            rows = db.execute(QUERIES["actual_counts"], (model,)).fetchall()
        return {
            (None if series == ANY_VERSION else version): dict(zip(ACTUAL_COUNTERS, counts, strict=True))
            for series, version, *counts in rows
        }

    def held(self) -> tuple[int, int]:
        with self._store.snapshot() as db:
            predictions = db.execute("SELECT count(*) FROM label_predictions").fetchone()[0]
            actuals = db.execute("SELECT count(*) FROM label_actuals").fetchone()[0]
        return int(predictions), int(actuals)
