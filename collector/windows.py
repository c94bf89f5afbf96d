"""Tumbling windows: inference rows folded into one Profile per (model, version, window start).

The ingest thread adds batches; a flusher hands closed windows to the store; API threads read open windows
and the store together, each row counted exactly once::

    agg = WindowAggregator(width_s=60)
    agg.add(batch)                                  # ingest thread
    records = agg.due()                             # flusher, every few seconds (drain_all() at shutdown)
    try:
        store.write_windows(records)
    except Exception:
        agg.failed(records)                         # the windows reopen and are retried at the next due()
        raise
    agg.committed(records)
    profile = agg.read_profile(store, "churn", "3", start_s, end_s)   # API threads: store + open windows

A row belongs to the window of its batch's event time, so late data for an older window opens a window of
its own (written later as a second part of the same window: the store adds the parts). Event times more than
`max_future_s` ahead of the clock, or not finite, count as arriving now.

Rows are buffered per window and sketched `flush_rows` at a time (vectorised updates; a one-row predict
call costs a list append). The lock is held only to append, to swap buffers and to merge finished
sketches, never while sketching. Memory is bounded: at most `max_open_windows` windows are open; batches
that would open another are rejected and counted in `rejected_batches` / `rejected_rows`.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Container, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from collector.records import InferenceBatch
from collector.sketches import ColumnKey, Profile, SketchConfig, batch_rows
from collector.store import ModelInfo, Store, WindowRecord

__all__ = ["WindowAggregator"]

T = TypeVar("T")
_Key = tuple[str, str, int]  # model, version, window start


@dataclass(slots=True)
class _Window:
    """A window's rows = profile + pending + every list in sketching, each row in exactly one of them.

    `profile` is mutated only under the aggregator's lock; batch lists are never mutated once swapped out."""

    profile: Profile
    first_s: float
    last_s: float
    rows: int = 0
    pending: list[InferenceBatch] = field(default_factory=list)
    pending_rows: int = 0
    sketching: list[list[InferenceBatch]] = field(default_factory=list)
    closed: bool = False


class WindowAggregator:
    def __init__(
        self,
        width_s: int = 60,
        config: SketchConfig | None = None,
        clock: Callable[[], float] = time.time,
        grace_s: float = 5.0,
        max_open_windows: int = 10_000,
        flush_rows: int = 512,
        max_future_s: float = 300.0,
        collector_id: str = "",
    ) -> None:
        if width_s < 1 or grace_s < 0 or max_open_windows < 1 or flush_rows < 1:
            raise ValueError("width_s, max_open_windows and flush_rows must be >= 1 and grace_s >= 0")
        self.width_s = int(width_s)
        self.config = config or SketchConfig()
        self.clock = clock
        self.grace_s = grace_s
        self.max_open_windows = max_open_windows
        self.flush_rows = flush_rows
        self.max_future_s = max_future_s
        self.collector_id = collector_id
        self.rejected_batches = 0
        self.rejected_rows = 0
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)  # notified when no flush is outstanding
        self._open: dict[_Key, _Window] = {}
        self._flushing: dict[int, tuple[WindowRecord, Profile]] = {}  # id(record) -> record, its profile
        self._taking = 0  # due()/drain_all() calls finishing their windows outside the lock
        self._seq = 0  # bumped whenever windows leave or re-enter the open map

    # -- ingest -------------------------------------------------------------------------------------------
    def add(self, batch: InferenceBatch) -> bool:
        """Fold a batch into its window; False when rejected because max_open_windows are open."""
        rows = batch_rows(batch)
        if rows == 0:
            return True
        t = self.event_time(batch.time_s)
        key = (batch.model, batch.version, int(t // self.width_s) * self.width_s)
        with self._lock:
            window = self._open.get(key)
            if window is None:
                if len(self._open) >= self.max_open_windows:
                    self.rejected_batches += 1
                    self.rejected_rows += rows
                    return False
                window = self._open[key] = _Window(Profile.zero(self.config), t, t)
            window.pending.append(batch)
            window.pending_rows += rows
            window.rows += rows
            window.first_s, window.last_s = min(window.first_s, t), max(window.last_s, t)
            if window.pending_rows < self.flush_rows:
                return True
            chunk, window.pending, window.pending_rows = window.pending, [], 0
            window.sketching.append(chunk)
        part = _sketch(chunk, self.config)
        with self._lock:
            if not window.closed:  # a closed window was finished by due(), chunk included
                window.profile.merge(part)
                window.sketching = [c for c in window.sketching if c is not chunk]
        return True

    def event_time(self, time_s: float) -> float:
        """The time a row counts at: its own, or now when that is not finite or more than max_future_s ahead."""
        now = self.clock()
        return time_s if math.isfinite(time_s) and time_s <= now + self.max_future_s else now

    def window_start(self, time_s: float) -> int:
        """The start of the window a row of event time `time_s` belongs to (the label join attributes by it)."""
        return int(self.event_time(time_s) // self.width_s) * self.width_s

    # -- flush --------------------------------------------------------------------------------------------
    def due(self, now: float | None = None) -> list[WindowRecord]:
        """Windows whose end + grace_s has passed, removed from the open set; confirm with committed()/failed()."""
        limit = (self.clock() if now is None else now) - self.grace_s
        return self._take(lambda key: key[2] + self.width_s <= limit)

    def drain_all(self) -> list[WindowRecord]:
        """Every open window (shutdown, SIGTERM); confirm with committed()/failed() like due()."""
        return self._take(lambda key: True)

    def committed(self, records: Iterable[WindowRecord]) -> None:
        """The store holds these records now: stop counting them here."""
        with self._lock:
            for rec in records:
                self._flushing.pop(id(rec), None)
            self._seq += 1
            self._settled.notify_all()

    def failed(self, records: Iterable[WindowRecord]) -> None:
        """The store write failed: reopen the windows (merged with any late data since) to retry later."""
        with self._lock:
            for rec in records:
                entry = self._flushing.pop(id(rec), None)
                if entry is None:
                    continue
                key = (rec.model, rec.version, rec.start_s)
                window = self._open.get(key)
                first = rec.first_s if rec.first_s is not None else float(rec.start_s)
                last = rec.last_s if rec.last_s is not None else float(rec.end_s)
                if window is None:  # may exceed max_open_windows for a while: never drop data bound for the store
                    window = self._open[key] = _Window(Profile.zero(self.config), first, last)
                window.profile.merge(entry[1])
                window.rows += rec.rows
                window.first_s, window.last_s = min(window.first_s, first), max(window.last_s, last)
            self._seq += 1
            self._settled.notify_all()

    def _take(self, pick: Callable[[_Key], bool]) -> list[WindowRecord]:
        with self._lock:
            keys = [key for key in self._open if pick(key)]
            if not keys:
                return []
            taken = [(key, self._open.pop(key)) for key in keys]
            for _, window in taken:
                window.closed = True  # from here on the window is ours alone: nobody else can reach it
            self._taking += 1
            self._seq += 1
        records = []
        try:
            for (model, version, start), window in taken:
                profile = window.profile
                for chunk in (window.pending, *window.sketching):
                    if chunk:
                        profile.merge(_sketch(chunk, self.config))
                record = WindowRecord.from_profile(
                    model, version, start, self.width_s, profile, self.collector_id, window.first_s, window.last_s
                )
                records.append((record, profile))
        finally:
            with self._lock:
                for record, profile in records:
                    self._flushing[id(record)] = (record, profile)
                self._taking -= 1
                self._settled.notify_all()
        return [record for record, _ in records]

    # -- reads --------------------------------------------------------------------------------------------
    def snapshot(
        self, model: str, version: str, start_s: float, end_s: float, columns: Container[ColumnKey] | None = None
    ) -> Profile:
        """The open windows of (model, version) that overlap [start_s, end_s), merged (not flushing ones)."""
        total = Profile.zero(self.config)
        for _, profile in self.snapshot_windows(model, version, start_s, end_s, columns):
            total.merge(profile)
        return total

    def snapshot_windows(
        self, model: str, version: str, start_s: float, end_s: float, columns: Container[ColumnKey] | None = None
    ) -> list[tuple[int, Profile]]:
        """Per open window overlapping [start_s, end_s), oldest first."""
        gathered = []
        with self._lock:
            for (m, v, start), window in self._open.items():
                if m == model and v == version and start < end_s and start + self.width_s > start_s:
                    copy = Profile.zero(self.config)
                    copy.merge(window.profile, columns)
                    gathered.append((start, copy, [list(window.pending), *window.sketching]))
        out = []
        for start, profile, chunks in sorted(gathered, key=lambda g: g[0]):
            for chunk in chunks:
                if chunk:
                    profile.merge(_sketch(chunk, self.config, columns))
            out.append((start, profile))
        return out

    def models(self) -> list[ModelInfo]:
        """The (model, version) pairs with open windows: their rows, first and last event time."""
        seen: dict[tuple[str, str], list[Any]] = {}
        with self._lock:
            for (model, version, _), w in self._open.items():
                s = seen.setdefault((model, version), [0, w.first_s, w.last_s])
                s[0] += w.rows
                s[1], s[2] = min(s[1], w.first_s), max(s[2], w.last_s)
        return [ModelInfo(m, v, *s) for (m, v), s in sorted(seen.items())]

    @property
    def open_windows(self) -> int:
        return len(self._open)

    def consistently(self, read: Callable[[], T], timeout_s: float = 2.0, attempts: int = 5) -> T:
        """Run `read` (open-window snapshots and store reads together) so that no window is missed or counted
        twice: it runs while no flush is outstanding and is retried when a flush started meanwhile. After
        `attempts` or `timeout_s` of waiting it returns the last result (best effort)."""
        result: T
        for _ in range(attempts):
            with self._lock:
                self._settled.wait_for(self._is_settled, timeout_s)
                seq = self._seq
            result = read()
            with self._lock:
                if self._seq == seq and self._is_settled():
                    return result
        return result

    def _is_settled(self) -> bool:
        return not self._flushing and not self._taking

    def read_profile(
        self,
        store: Store,
        model: str,
        version: str,
        start_s: float,
        end_s: float,
        columns: Sequence[ColumnKey] | None = None,
    ) -> Profile:
        """Stored windows and open ones overlapping [start_s, end_s), merged, each exactly once."""

        def read() -> Profile:
            total = store.read_profile(model, version, start_s, end_s, columns)
            if not total.columns:  # nothing stored: the store's empty Profile has the default sketch sizes
                total.config = self.config
            total.merge(self.snapshot(model, version, start_s, end_s, columns))
            return total

        return self.consistently(read)

    def window_profiles(
        self,
        store: Store,
        model: str,
        version: str,
        start_s: float,
        end_s: float,
        columns: Sequence[ColumnKey] | None = None,
    ) -> list[tuple[int, Profile]]:
        """Per-window profiles from the store and the open windows, oldest first, parts of a window merged."""

        def read() -> list[tuple[int, Profile]]:
            by_start = dict(store.window_profiles(model, version, start_s, end_s, columns))
            for start, profile in self.snapshot_windows(model, version, start_s, end_s, columns):
                if start in by_start:
                    by_start[start].merge(profile)
                else:
                    by_start[start] = profile
            return sorted(by_start.items())

        return self.consistently(read)


def _sketch(
    batches: Sequence[InferenceBatch], config: SketchConfig, columns: Container[ColumnKey] | None = None
) -> Profile:
    """One Profile of several batches: their columns concatenated, so each sketch is updated once."""
    profile = Profile.zero(config)
    if len(batches) == 1:
        profile.update_from(batches[0], columns)
        return profile
    rows = 0
    parts: dict[ColumnKey, list[Any]] = {}
    for batch in batches:
        n = batch_rows(batch)
        for role, cols in (("input", batch.inputs), ("output", batch.outputs)):
            for name, values in cols.items():
                parts.setdefault((role, name), []).append(values[:n])
        rows += n
    profile.update_columns(rows, {key: _concat(chunks) for key, chunks in parts.items()}, columns)
    return profile


def _concat(chunks: list[Any]) -> Any:
    """One column from its batches' pieces: an array when every piece is a (receiver's float64) array, else a list
    of Python scalars (a list of numpy scalars would take the sketches' slow path)."""
    if all(isinstance(chunk, np.ndarray) for chunk in chunks):
        return np.concatenate(chunks)
    out: list[Any] = []
    for chunk in chunks:
        out.extend(chunk.tolist() if isinstance(chunk, np.ndarray) else chunk)
    return out
