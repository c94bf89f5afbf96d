"""The `states` tables of SQLiteStore: per-window mergeable states (collector.state_kinds) beside the profiles.

One row per (kind, model, version, window start, collector_id); a write adds the new part to the row's state
(decode, merge, encode), so a window that receives labels for days stays one row. Reads return every
collector's row and leave the merging to the caller, who knows the state's type. `state_series` keeps the
widest window of each (kind, model, version) so that a range read is one indexed range scan; it also lists the
series that `delete_states_before` (retention) walks, oldest rows first, without scanning the table.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Sequence

from collector.state_kinds import merge_blobs
from collector.store import StateRecord, StoreError

__all__ = ["STATES_SCHEMA", "delete_states_before", "read_states", "write_states"]

STATES_SCHEMA = """
CREATE TABLE IF NOT EXISTS states (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,               -- collector.state_kinds: performance, operations
    model TEXT NOT NULL,              -- '' (and version '') for the operations state of the processes
    version TEXT NOT NULL,
    start_s INTEGER NOT NULL,
    collector_id TEXT NOT NULL,
    width_s INTEGER NOT NULL,
    blob BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS states_key ON states (kind, model, version, start_s, collector_id);
CREATE TABLE IF NOT EXISTS state_series (
    kind TEXT NOT NULL,
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    max_width_s INTEGER NOT NULL,     -- bounds the scan for states that start before a range and overlap it
    PRIMARY KEY (kind, model, version)
);
"""

SELECT_ONE = (
    "SELECT id, blob, width_s FROM states"
    " WHERE kind = ? AND model = ? AND version = ? AND start_s = ? AND collector_id = ?"
)
INSERT = "INSERT INTO states (kind, model, version, start_s, collector_id, width_s, blob) VALUES (?, ?, ?, ?, ?, ?, ?)"
UPDATE = "UPDATE states SET width_s = ?, blob = ? WHERE id = ?"
UPSERT_SERIES = (
    "INSERT INTO state_series (kind, model, version, max_width_s) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (kind, model, version) DO UPDATE SET max_width_s = max(max_width_s, excluded.max_width_s)"
)
MAX_WIDTH = "SELECT max_width_s FROM state_series WHERE kind = ? AND model = ? AND version = ?"
RANGE = (
    "SELECT start_s, blob FROM states WHERE kind = ? AND model = ? AND version = ?"
    " AND start_s > ? AND start_s < ? AND start_s + width_s > ? ORDER BY start_s"
)
SERIES = "SELECT kind, model, version FROM state_series ORDER BY kind, model, version"
# `start_s < end` is implied by the rule (width >= 1) and makes it a range search over states_key.
DELETE_OLD = (
    "DELETE FROM states WHERE id IN (SELECT id FROM states WHERE kind = ? AND model = ? AND version = ?"
    " AND start_s < ? AND start_s + width_s < ? ORDER BY start_s LIMIT ?)"
)


def write_states(db: sqlite3.Connection, records: Sequence[StateRecord]) -> None:
    """Inside the caller's write transaction. Raises ValueError for a bad record, StoreError for a stored state
    that cannot be read (nothing is written then: the caller rolls back)."""
    for rec in records:
        if rec.width_s < 1 or not rec.kind:
            raise ValueError(f"bad state record {rec.kind!r} {rec.model!r} {rec.version!r} width {rec.width_s}")
    for rec in records:
        key = (rec.kind, rec.model, rec.version, rec.start_s, rec.collector_id)
        row = db.execute(SELECT_ONE, key).fetchone()
        if row is None:
            db.execute(INSERT, (*key, rec.width_s, bytes(rec.blob)))
            continue
        try:
            blob = merge_blobs(rec.kind, [bytes(row[1]), bytes(rec.blob)])
        except ValueError as exc:
            raise StoreError(f"cannot add to the stored {rec.kind} state {key}: {exc}") from exc
        db.execute(UPDATE, (max(rec.width_s, int(row[2])), blob, row[0]))
    db.executemany(UPSERT_SERIES, [(r.kind, r.model, r.version, r.width_s) for r in records])


def read_states(
    db: sqlite3.Connection, kind: str, model: str, version: str, start_s: float, end_s: float
) -> list[tuple[int, bytes]]:
    """Inside the caller's read transaction: (start, blob) of the rows overlapping [start_s, end_s)."""
    row = db.execute(MAX_WIDTH, (kind, model, version)).fetchone()
    if row is None:
        return []
    lo = math.floor(start_s) - int(row[0])
    rows = db.execute(RANGE, (kind, model, version, lo, end_s, start_s)).fetchall()
    return [(int(start), bytes(blob)) for start, blob in rows]


def delete_states_before(db: sqlite3.Connection, end_s: float, limit: int) -> int:
    """Inside the caller's write transaction: delete up to `limit` states (every kind and series) that end before
    `end_s`, oldest first within a series; returns how many. `state_series` rows stay (they only bound reads)."""
    left = limit
    for key in db.execute(SERIES).fetchall():
        left -= db.execute(DELETE_OLD, (*key, end_s, end_s, left)).rowcount
        if left == 0:
            break
    return limit - left
