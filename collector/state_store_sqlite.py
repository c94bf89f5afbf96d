"""The `states` tables of SQLiteStore: per-window mergeable states (collector.state_kinds) beside the profiles.

One raw row (tier 0) per (kind, model, version, window start, collector_id); a write adds the new part to the
row's state (decode, merge, encode), so a window that receives labels for days stays one row. Like the sketch
windows, every part is also added to one rollup row per tier (10 min, 1 h, 6 h, 1 day by default: the store's
`tiers`; collector_id '' since they merge every collector) at its start floored to the tier, so a late label
reaches the rollups of its old window too. States merge exactly (counts; float sums up to rounding order), so
a range read (`read_state_pieces`) returns the coarsest rows that lie wholly inside the range and raw rows at
its edges: about 20 blobs for a day instead of 1,440. `read_states` returns the raw rows, one per collector.

`state_series` keeps the widest raw window of each (kind, model, version) so that a range read is one indexed
range scan; it also lists the series that `delete_states_before` (retention) walks, tier by tier, oldest rows
first, without scanning the table.

Files written before rollups existed (schema 1) get the `tier` column on open (`migrate_states`); their
windows have no rollups, so reads use raw rows for windows that start before `rollups_from` (meta
'state_rollups_from': one past the newest start stored at the upgrade) and rollups from there on.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Sequence

from collector.rollups import RAW, plan
from collector.state_kinds import PERFORMANCE, merge_blobs
from collector.store import StateRecord, StoreError

__all__ = [
    "STATES_SCHEMA",
    "delete_states_before",
    "migrate_states",
    "read_state_pieces",
    "read_states",
    "rollups_from",
    "write_states",
]

STATES_SCHEMA = """
CREATE TABLE IF NOT EXISTS states (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,               -- collector.state_kinds: performance, operations
    model TEXT NOT NULL,              -- '' (and version '') for the operations state of the processes
    version TEXT NOT NULL,
    start_s INTEGER NOT NULL,
    collector_id TEXT NOT NULL,       -- '' for rollups, which merge every collector
    width_s INTEGER NOT NULL,
    blob BLOB NOT NULL,
    tier INTEGER NOT NULL DEFAULT 0   -- 0: windows as written; else the rollup bucket width in seconds
);
CREATE UNIQUE INDEX IF NOT EXISTS states_tier_key ON states (kind, model, version, tier, start_s, collector_id);
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
    " WHERE kind = ? AND model = ? AND version = ? AND tier = ? AND start_s = ? AND collector_id = ?"
)
INSERT = (
    "INSERT INTO states (kind, model, version, tier, start_s, collector_id, width_s, blob)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
UPDATE = "UPDATE states SET width_s = ?, blob = ? WHERE id = ?"
UPSERT_SERIES = (
    "INSERT INTO state_series (kind, model, version, max_width_s) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (kind, model, version) DO UPDATE SET max_width_s = max(max_width_s, excluded.max_width_s)"
)
MAX_WIDTH = "SELECT max_width_s FROM state_series WHERE kind = ? AND model = ? AND version = ?"
RANGE = (
    "SELECT start_s, blob FROM states WHERE kind = ? AND model = ? AND version = ? AND tier = 0"
    " AND start_s > ? AND start_s < ? AND start_s + width_s > ? ORDER BY start_s"
)
PIECES = (
    "SELECT start_s, blob FROM states WHERE kind = ? AND model = ? AND version = ? AND tier = ?"
    " AND start_s >= ? AND start_s < ?"
)
# raw windows that start before a range and reach into it
STRADDLERS = (
    "SELECT start_s, blob FROM states WHERE kind = ? AND model = ? AND version = ? AND tier = 0"
    " AND start_s >= ? AND start_s < ? AND start_s + width_s > ?"
)
SERIES = "SELECT kind, model, version FROM state_series ORDER BY kind, model, version"
# One tier of one series. `start_s < end` is implied by the rule (width >= 1) and makes it a range search over
# states_tier_key; `start_s + width_s < end` is the rule itself, so a rollup row goes only once its whole bucket
# ended before the cutoff.
DELETE_OLD = (
    "DELETE FROM states WHERE id IN (SELECT id FROM states WHERE kind = ? AND model = ? AND version = ? AND tier = ?"
    " AND start_s < ? AND start_s + width_s < ? ORDER BY start_s LIMIT ?)"
)
ROLLUPS_FROM = "SELECT value FROM meta WHERE key = 'state_rollups_from'"
_NO_START = -(2**62)  # before any window: every window of a file created with rollups has them

_Key = tuple[str, str, str, int, int, str]  # kind, model, version, tier, start, collector_id


def migrate_states(db: sqlite3.Connection) -> None:
    """Inside the caller's write transaction, after the `meta` table exists and before STATES_SCHEMA: give a
    schema-1 `states` table its tier column and key, and record (once per file) from which window start on the
    rollups are complete."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(states)")}
    if columns and "tier" not in columns:
        db.execute("ALTER TABLE states ADD COLUMN tier INTEGER NOT NULL DEFAULT 0")
        db.execute("DROP INDEX IF EXISTS states_key")  # (kind, model, version, start_s, collector_id)
    if db.execute(ROLLUPS_FROM).fetchone() is None:
        newest = db.execute("SELECT max(start_s) FROM states").fetchone()[0] if columns else None
        start = _NO_START if newest is None else int(newest) + 1
        db.execute("INSERT INTO meta (key, value) VALUES ('state_rollups_from', ?)", (str(start),))


def rollups_from(db: sqlite3.Connection) -> int:
    row = db.execute(ROLLUPS_FROM).fetchone()
    return _NO_START if row is None else int(row[0])


# The kinds kept in rollup rows as well. Not operations: its reader attributes each window's process state to
# the instances that served the model in that window, which a bucket merged before reading would blur.
ROLLED_UP = frozenset({PERFORMANCE})


def write_states(db: sqlite3.Connection, records: Sequence[StateRecord], tiers: Sequence[int]) -> None:
    """Inside the caller's write transaction: each record into its raw row and one rollup row per tier. Raises
    ValueError for a bad record, StoreError for a stored state that cannot be read (nothing is written then: the
    caller rolls back)."""
    targets: dict[_Key, list[StateRecord]] = {}  # row -> parts to add, in record order
    for rec in records:
        if rec.width_s < 1 or not rec.kind:
            raise ValueError(f"bad state record {rec.kind!r} {rec.model!r} {rec.version!r} width {rec.width_s}")
        targets.setdefault((rec.kind, rec.model, rec.version, RAW, rec.start_s, rec.collector_id), []).append(rec)
        for tier in tiers if rec.kind in ROLLED_UP else ():
            bucket = rec.start_s // tier * tier
            targets.setdefault((rec.kind, rec.model, rec.version, tier, bucket, ""), []).append(rec)
    for key, parts in targets.items():
        width = max(r.width_s for r in parts) if key[3] == RAW else key[3]
        _add(db, key, width, [bytes(r.blob) for r in parts])
    db.executemany(UPSERT_SERIES, [(r.kind, r.model, r.version, r.width_s) for r in records])


def _add(db: sqlite3.Connection, key: _Key, width: int, blobs: list[bytes]) -> None:
    """Add `blobs` to the row at `key`: one decode, merge and encode for all of them."""
    row = db.execute(SELECT_ONE, key).fetchone()
    stored = [] if row is None else [bytes(row[1])]
    if not stored and len(blobs) == 1:
        db.execute(INSERT, (*key, width, blobs[0]))
        return
    try:
        blob = merge_blobs(key[0], [*stored, *blobs])
    except ValueError as exc:
        raise StoreError(f"cannot add to the stored {key[0]} state {key}: {exc}") from exc
    if row is None:
        db.execute(INSERT, (*key, width, blob))
    else:
        db.execute(UPDATE, (max(width, int(row[2])), blob, row[0]))


def read_states(
    db: sqlite3.Connection, kind: str, model: str, version: str, start_s: float, end_s: float
) -> list[tuple[int, bytes]]:
    """Inside the caller's read transaction: (start, blob) of the raw rows overlapping [start_s, end_s)."""
    row = db.execute(MAX_WIDTH, (kind, model, version)).fetchone()
    if row is None:
        return []
    lo = math.floor(start_s) - int(row[0])
    rows = db.execute(RANGE, (kind, model, version, lo, end_s, start_s)).fetchall()
    return [(int(start), bytes(blob)) for start, blob in rows]


def read_state_pieces(
    db: sqlite3.Connection,
    kind: str,
    model: str,
    version: str,
    start_s: float,
    end_s: float,
    tiers: Sequence[int],
    step_s: int | None = None,
) -> list[tuple[int, bytes]]:
    """Inside the caller's read transaction: (start, blob) of rows that together hold every state overlapping
    [start_s, end_s) exactly once, rollups where they fit (see collector.rollups.plan for `step_s`)."""
    row = db.execute(MAX_WIDTH, (kind, model, version)).fetchone()
    if row is None:
        return []
    if kind not in ROLLED_UP:
        tiers = ()
    lo, hi = math.ceil(start_s), math.ceil(end_s)  # integer starts s with start_s <= s < end_s
    complete = max(lo, min(hi, rollups_from(db)))  # windows before it may be missing from their rollups
    segments = (
        [(RAW, lo, complete), *plan(complete, hi, tiers, step_s)] if lo < complete else plan(lo, hi, tiers, step_s)
    )
    out: list[tuple[int, bytes]] = []
    for tier, a, b in segments:
        out += db.execute(PIECES, (kind, model, version, tier, a, b)).fetchall()
    out += db.execute(STRADDLERS, (kind, model, version, lo - int(row[0]), lo, start_s)).fetchall()
    return [(int(start), bytes(blob)) for start, blob in out]


def delete_states_before(db: sqlite3.Connection, end_s: float, limit: int, tiers: Sequence[int]) -> int:
    """Inside the caller's write transaction: delete up to `limit` states, raw or rollup (every kind, series and
    tier), that end before `end_s`, oldest first within a series and tier; returns how many. `state_series`
    rows stay (they only bound reads)."""
    left = limit
    for key in db.execute(SERIES).fetchall():
        for tier in (RAW, *tiers):
            left -= db.execute(DELETE_OLD, (*key, tier, end_s, end_s, left)).rowcount
            if left == 0:
                return limit
    return limit - left
