"""The embedded store: one SQLite file (standard library sqlite3), WAL mode, safe to reopen after a crash.

    store = SQLiteStore("predwatch.db")
    store.write_windows(records)                    # from WindowAggregator.due()
    profile = store.read_profile("churn", "3", time.time() - 86400, time.time())

Why rollups: drift over a day of 60-s windows would merge 1,440 profiles (28,800 sketches at 20 columns)
per request. Every window written is also merged into coarser buckets (10 min, 1 h, 6 h, 1 day by default,
aligned to the Unix epoch, i.e. UTC days), so a read covers its range with the fewest pieces: whole days,
then 6 h, 1 h and 10-minute buckets towards the edges and the raw windows at the very edges: about 20
pieces for a day, at most about 45 (plus one per whole day) for any range. A bucket holds the windows whose
*start* lies in it, so any window width works.

Concurrency: one writer connection behind a lock, one read-only connection per reading thread (WAL lets
readers run while the writer commits). Writes are read-merge-write inside `BEGIN IMMEDIATE`, so several
processes may share a file (they then serialise on SQLite's lock, waiting up to `busy_timeout_s`). Rollup
buckets merge the parts of every collector; raw windows keep one row per collector_id.

Per-window states of other kinds (performance, operations; collector.state_kinds) live in `states`, one row per
(kind, model, version, start, collector_id), added to on every write and merged by the reader, with rollups in
the same tiers (collector.state_store_sqlite). The label join keeps its own tables on the same file
(`labels()`, collector.label_store_sqlite), written through `transaction()` behind the same writer lock.

Retention (collector.retention) deletes old rows a bounded batch per transaction: `delete_windows_before` walks
`windows_key` per (model, version, tier) and `delete_states_before` walks `states_tier_key` per (series, tier), so
neither scans the table nor holds the writer lock for long. The `models` and `refs` rows are never deleted.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any

from collector.rollups import RAW as _RAW
from collector.rollups import cover as _cover
from collector.sketches import ColumnKey, Profile
from collector.state_store_sqlite import (
    STATES_SCHEMA,
    delete_states_before,
    migrate_states,
    read_state_pieces,
    read_states,
    write_states,
)
from collector.store import ModelInfo, StateRecord, StoreError, WindowRecord

if TYPE_CHECKING:
    from collector.label_store_sqlite import SQLiteLabelStore

__all__ = ["DEFAULT_TIERS", "SCHEMA_VERSION", "SQLiteStore"]

SCHEMA_VERSION = 2  # 2: states have rollups (a tier column); schema-1 files are upgraded on open
DEFAULT_TIERS = (600, 3600, 21600, 86400)
# One series' oldest windows that end before a time. `start_s < end` is implied (width >= 1) and lets the search
# range over windows_key; `start_s + width_s < end` is the rule itself.
DELETE_OLD_WINDOWS = (
    "DELETE FROM windows WHERE id IN (SELECT id FROM windows WHERE model = ? AND version = ? AND tier = ?"
    " AND start_s < ? AND start_s + width_s < ? ORDER BY start_s LIMIT ?)"
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS windows (
    id INTEGER PRIMARY KEY,
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    tier INTEGER NOT NULL,            -- 0: windows as written; else the rollup bucket width in seconds
    start_s INTEGER NOT NULL,
    collector_id TEXT NOT NULL,       -- '' for rollups, which merge every collector
    width_s INTEGER NOT NULL,
    rows INTEGER NOT NULL,
    profile BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS windows_key ON windows (model, version, tier, start_s, collector_id);
CREATE TABLE IF NOT EXISTS models (
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    rows INTEGER NOT NULL,
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL,
    max_width_s INTEGER NOT NULL,     -- bounds the scan for windows that start before a range and overlap it
    PRIMARY KEY (model, version)
);
CREATE TABLE IF NOT EXISTS refs (
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    blob BLOB NOT NULL,
    meta TEXT NOT NULL,
    updated_s REAL NOT NULL,
    PRIMARY KEY (model, version)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class SQLiteStore:
    """`store.Store` on one SQLite file. `tiers` (rollup widths, seconds) are fixed when the file is created."""

    def __init__(self, path: str, tiers: Sequence[int] | None = None, busy_timeout_s: float = 5.0) -> None:
        if path in ("", ":memory:"):
            raise ValueError("SQLiteStore needs a file path (readers use their own connections)")
        self.path = path
        self._busy_ms = int(busy_timeout_s * 1000)
        self._lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._closed = False
        self._writer = self._connect(readonly=False)
        self.tiers = self._init_schema(tiers)
        self._labels: SQLiteLabelStore | None = None

    # -- connections ----------------------------------------------------------------------------------------
    def _connect(self, readonly: bool) -> sqlite3.Connection:
        uri = f"file:{self.path}?mode=ro" if readonly else f"file:{self.path}"
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
        if not readonly:
            conn.execute("PRAGMA journal_mode = WAL")
            # The label join writes rows at random keys: each commit dirties a page per label. A 64 MB cache keeps
            # the index pages it searches in memory, and a checkpoint every 10,000 pages (40 MB of WAL) rather
            # than SQLite's 1,000 copies each page back once per many commits instead of once per commit.
            conn.execute("PRAGMA cache_size = -65536")
            conn.execute("PRAGMA wal_autocheckpoint = 10000")
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise StoreError("the store is closed")
            conn = self._local.conn = self._connect(readonly=True)
            with self._lock:
                self._readers.append(conn)
        return conn

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """The writer connection inside BEGIN IMMEDIATE ... COMMIT (ROLLBACK on any exception), holding the writer
        lock: other tables on this file (the label join's) write through it."""
        return self._write()

    def snapshot(self) -> AbstractContextManager[sqlite3.Connection]:
        """This thread's read-only connection inside one read transaction."""
        return self._snapshot()

    def labels(self) -> SQLiteLabelStore:
        """The label join's tables on this file (created on first use)."""
        with self._lock:
            labels = self._labels
        if labels is None:
            from collector.label_store_sqlite import SQLiteLabelStore

            labels = SQLiteLabelStore(self)
            with self._lock:
                self._labels = labels = self._labels or labels
        return labels

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._closed:
                raise StoreError("the store is closed")
            self._writer.execute("BEGIN IMMEDIATE")
            try:
                yield self._writer
            except BaseException:
                self._writer.execute("ROLLBACK")
                raise
            self._writer.execute("COMMIT")

    def _init_schema(self, tiers: Sequence[int] | None) -> tuple[int, ...]:
        with self._write() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(f"{self.path} has schema {version}; this predwatch reads up to {SCHEMA_VERSION}")
            # not executescript(): it would COMMIT our transaction
            for schema in (_SCHEMA, STATES_SCHEMA):
                if schema is STATES_SCHEMA:
                    migrate_states(db)
                for statement in schema.split(";\n"):
                    if statement.strip():
                        db.execute(statement)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            row = db.execute("SELECT value FROM meta WHERE key = 'tiers'").fetchone()
            if row is None:
                chosen = tuple(sorted(set(tiers or DEFAULT_TIERS), reverse=True))
                if not chosen or min(chosen) < 1:
                    raise ValueError(f"tiers must be positive widths in seconds, got {tiers}")
                db.execute("INSERT INTO meta (key, value) VALUES ('tiers', ?)", (json.dumps(chosen),))
                return chosen
            stored = tuple(json.loads(row[0]))
            if tiers is not None and tuple(sorted(set(tiers), reverse=True)) != stored:
                raise ValueError(f"{self.path} was created with rollup tiers {stored}, not {tuple(tiers)}")
            return stored

    # -- writes ---------------------------------------------------------------------------------------------
    def write_windows(self, records: Sequence[WindowRecord]) -> None:
        decoded: dict[int, Profile] = {}  # id(record) -> its profile, decoded once and never mutated
        targets: dict[tuple[str, str, int, int, str], list[WindowRecord]] = {}  # row key -> parts to add
        seen: dict[tuple[str, str], list[float]] = {}  # rows, first, last, max width
        for rec in records:
            if rec.width_s < 1 or not rec.model:
                raise ValueError(f"bad window record {rec.model!r} {rec.version!r} width {rec.width_s}")
            profile = decoded[id(rec)] = _decode(rec.profile, f"record {rec.model!r} {rec.version!r} {rec.start_s}")
            if profile.rows != rec.rows:
                raise ValueError(f"window record rows {rec.rows} != its profile's {profile.rows}")
            targets.setdefault((rec.model, rec.version, _RAW, rec.start_s, rec.collector_id), []).append(rec)
            for tier in self.tiers:
                targets.setdefault((rec.model, rec.version, tier, rec.start_s // tier * tier, ""), []).append(rec)
            first = rec.first_s if rec.first_s is not None else float(rec.start_s)
            last = rec.last_s if rec.last_s is not None else float(rec.end_s)
            s = seen.setdefault((rec.model, rec.version), [0, first, last, rec.width_s])
            s[0] += rec.rows
            s[1], s[2], s[3] = min(s[1], first), max(s[2], last), max(s[3], rec.width_s)
        with self._write() as db:
            for key, parts in targets.items():
                width = max(r.width_s for r in parts) if key[2] == _RAW else key[2]
                self._upsert(db, key, width, [decoded[id(r)] for r in parts], parts[0].profile)
            db.executemany(
                "INSERT INTO models (model, version, rows, first_seen, last_seen, max_width_s)"
                " VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (model, version) DO UPDATE SET rows = rows + excluded.rows,"
                " first_seen = min(first_seen, excluded.first_seen), last_seen = max(last_seen, excluded.last_seen),"
                " max_width_s = max(max_width_s, excluded.max_width_s)",
                [(m, v, int(s[0]), s[1], s[2], int(s[3])) for (m, v), s in seen.items()],
            )

    def _upsert(
        self, db: sqlite3.Connection, key: tuple[str, str, int, int, str], width: int, parts: list[Profile], blob: bytes
    ) -> None:
        """Add `parts` to the row at `key` (`blob` is the first part's bytes: stored as-is when it is all)."""
        row = db.execute(
            "SELECT id, profile, width_s FROM windows"
            " WHERE model = ? AND version = ? AND tier = ? AND start_s = ? AND collector_id = ?",
            key,
        ).fetchone()
        if row is None and len(parts) == 1:
            db.execute(
                "INSERT INTO windows (model, version, tier, start_s, collector_id, width_s, rows, profile)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (*key, width, parts[0].rows, blob),
            )
            return
        total = _decode(row[1], _where(key)) if row is not None else Profile.zero(parts[0].config)
        for part in parts:
            total.merge(part)
        if row is None:
            db.execute(
                "INSERT INTO windows (model, version, tier, start_s, collector_id, width_s, rows, profile)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (*key, width, total.rows, total.to_bytes()),
            )
        else:
            db.execute(
                "UPDATE windows SET width_s = ?, rows = ?, profile = ? WHERE id = ?",
                (max(width, row[2]), total.rows, total.to_bytes(), row[0]),
            )

    def put_reference(self, model: str, version: str, blob: bytes, meta: Mapping[str, Any]) -> None:
        text = json.dumps(dict(meta))
        with self._write() as db:
            db.execute(
                "INSERT INTO refs (model, version, blob, meta, updated_s) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (model, version) DO UPDATE SET blob = excluded.blob, meta = excluded.meta,"
                " updated_s = excluded.updated_s",
                (model, version, bytes(blob), text, time.time()),
            )

    def write_states(self, records: Sequence[StateRecord]) -> None:
        with self._write() as db:
            write_states(db, records, self.tiers)

    # -- retention ------------------------------------------------------------------------------------------
    def delete_windows_before(self, end_s: float, limit: int) -> int:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        with self._write() as db:
            series = db.execute("SELECT model, version FROM models ORDER BY model, version").fetchall()
            left = limit
            for model, version in series:
                for tier in (_RAW, *self.tiers):
                    left -= db.execute(DELETE_OLD_WINDOWS, (model, version, tier, end_s, end_s, left)).rowcount
                    if left == 0:
                        return limit
            return limit - left

    def delete_states_before(self, end_s: float, limit: int) -> int:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        with self._write() as db:
            return delete_states_before(db, end_s, limit, self.tiers)

    # -- reads ----------------------------------------------------------------------------------------------
    def read_states(self, kind: str, model: str, version: str, start_s: float, end_s: float) -> list[tuple[int, bytes]]:
        if end_s <= start_s:
            return []
        with self._snapshot() as db:
            return read_states(db, kind, model, version, start_s, end_s)

    def read_state_pieces(
        self, kind: str, model: str, version: str, start_s: float, end_s: float, step_s: int | None = None
    ) -> list[tuple[int, bytes]]:
        if step_s is not None and step_s < 1:
            raise ValueError(f"step_s must be None or >= 1, got {step_s}")
        if end_s <= start_s:
            return []
        with self._snapshot() as db:
            return read_state_pieces(db, kind, model, version, start_s, end_s, self.tiers, step_s)

    def read_profile(
        self, model: str, version: str, start_s: float, end_s: float, columns: Iterable[ColumnKey] | None = None
    ) -> Profile:
        wanted = None if columns is None else list(columns)
        total: Profile | None = None
        for key, blob in self._pieces(model, version, start_s, end_s):
            piece = _decode(blob, _where(key), wanted)
            if total is None:
                total = piece
            else:
                total.merge(piece)
        return total if total is not None else Profile.zero()

    def window_profiles(
        self,
        model: str,
        version: str,
        start_s: float,
        end_s: float,
        columns: Iterable[ColumnKey] | None = None,
        step_s: int | None = None,
    ) -> list[tuple[int, Profile]]:
        wanted = None if columns is None else list(columns)
        tier = _RAW if step_s is None else step_s
        if tier != _RAW and tier not in self.tiers:
            raise ValueError(f"step_s must be None or one of the rollup widths {self.tiers}, got {step_s}")
        with self._snapshot() as db:
            lo = math.floor(start_s) - (self._max_width(db, model, version) if tier == _RAW else tier)
            rows = db.execute(
                "SELECT start_s, collector_id, profile FROM windows WHERE model = ? AND version = ? AND tier = ?"
                " AND start_s > ? AND start_s < ? AND start_s + width_s > ? ORDER BY start_s",
                (model, version, tier, lo, end_s, start_s),
            ).fetchall()
        out: list[tuple[int, Profile]] = []
        for start, collector, blob in rows:
            profile = _decode(blob, _where((model, version, tier, start, collector)), wanted)
            if out and out[-1][0] == start:
                out[-1][1].merge(profile)
            else:
                out.append((start, profile))
        return out

    def _pieces(
        self, model: str, version: str, start_s: float, end_s: float
    ) -> list[tuple[tuple[str, str, int, int, str], bytes]]:
        """The blobs that together hold every window overlapping [start_s, end_s) exactly once."""
        if end_s <= start_s:
            return []
        with self._snapshot() as db:
            return list(self._pieces_in(db, model, version, start_s, end_s))

    def _pieces_in(
        self, db: sqlite3.Connection, model: str, version: str, start_s: float, end_s: float
    ) -> Iterator[tuple[tuple[str, str, int, int, str], bytes]]:
        lo, hi = math.ceil(start_s), math.ceil(end_s)  # integer starts s with start_s <= s < end_s
        buckets: list[tuple[int, int, int]] = []
        raw: list[tuple[int, int]] = []
        _cover(lo, hi, self.tiers, buckets, raw)
        query = (
            "SELECT start_s, collector_id, profile FROM windows WHERE model = ? AND version = ? AND tier = ?"
            " AND start_s >= ? AND start_s < ?"
        )
        for tier, a, b in buckets:
            for start, collector, blob in db.execute(query, (model, version, tier, a, b)):
                yield (model, version, tier, start, collector), blob
        for a, b in raw:
            for start, collector, blob in db.execute(query, (model, version, _RAW, a, b)):
                yield (model, version, _RAW, start, collector), blob
        straddlers = db.execute(  # windows that start before the range and reach into it
            "SELECT start_s, collector_id, profile FROM windows WHERE model = ? AND version = ? AND tier = ?"
            " AND start_s >= ? AND start_s < ? AND start_s + width_s > ?",
            (model, version, _RAW, lo - self._max_width(db, model, version), lo, start_s),
        )
        for start, collector, blob in straddlers:
            yield (model, version, _RAW, start, collector), blob

    @staticmethod
    def _max_width(db: sqlite3.Connection, model: str, version: str) -> int:
        row = db.execute("SELECT max_width_s FROM models WHERE model = ? AND version = ?", (model, version)).fetchone()
        return int(row[0]) if row else 0

    @contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: the queries of one read see one committed state of the file."""
        db = self._reader()
        db.execute("BEGIN")
        try:
            yield db
        finally:
            db.execute("COMMIT")

    def models(self) -> list[ModelInfo]:
        rows = self._reader().execute(
            "SELECT model, version, rows, first_seen, last_seen FROM models ORDER BY model, version"
        )
        return [ModelInfo(*row) for row in rows]

    def newest_version(self, model: str) -> str | None:
        row = (
            self._reader()
            .execute(
                "SELECT version FROM models WHERE model = ? ORDER BY first_seen DESC, version DESC LIMIT 1", (model,)
            )
            .fetchone()
        )
        return None if row is None else str(row[0])

    def get_reference(self, model: str, version: str) -> tuple[bytes, dict[str, Any]] | None:
        row = (
            self._reader()
            .execute("SELECT blob, meta FROM refs WHERE model = ? AND version = ?", (model, version))
            .fetchone()
        )
        return None if row is None else (bytes(row[0]), json.loads(row[1]))

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for conn in self._readers:
                conn.close()
            self._writer.close()


def _decode(blob: bytes, where: str, columns: list[ColumnKey] | None = None) -> Profile:
    try:
        return Profile.from_bytes(blob, columns)
    except ValueError as exc:
        raise StoreError(f"unreadable profile in {where}: {exc}") from exc


def _where(key: tuple[str, str, int, int, str]) -> str:
    model, version, tier, start, collector = key
    kind = "window" if tier == _RAW else f"{tier}-s rollup"
    return f"{kind} {model!r} {version!r} start {start} collector {collector!r}"
