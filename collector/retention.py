"""Retention: per-window data that ended more than `retention_s` ago is deleted, a bounded batch at a time.

    retention = Retention(store_sweeps(store, width_s=60), retention_s=90 * 86400)
    retention.start()             # a pass now, then one every `every_s` (an hour), on its own thread
    retention.run(now)            # one pass by hand: {"windows": 120, "states": 40, "label_windows": 20}
    retention.stop()

A pass deletes, table after table, the rows whose window ended before `now - retention_s` (see collector.store:
start + width < cutoff, at every rollup level), in batches of at most `batch_rows` rows, one transaction each,
with a pause of `pause_s` between them. A row costs what its blob weighs (a 20-column window is ~80 KB and takes
~0.3 ms to delete, a label counter a few microseconds), so the batch size adapts: it starts at `FIRST_BATCH`,
halves after a transaction that took longer than `batch_s` and doubles after one that took under half of it.
The store's writer lock, and SQLite's lock on the file, are thus held for about `batch_s` at a time: the
flusher's window writes and the label join wait at most about that long, and ingest itself only queues into
memory. A backlog (a database that grew for a year before retention was set) is worked off by the first pass,
in the background. Deleted rows leave free pages that SQLite reuses: the file stops growing; it does not shrink.

Touched: sketch windows and their rollups, performance and operations states, the label join's per-window
counters. Never touched: references, the models table (rows, first and last seen), alert state and history
(collector.alerts prunes its own), held predictions and pending actuals (they expire after `label_ttl`,
collector.labels). A table whose delete fails is logged and counted; the others go on, and the next pass
tries again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from collector.store import Store

__all__ = ["Retention", "Sweep", "store_sweeps"]

logger = logging.getLogger(__name__)

# (delete the rows that ended before this time, at most this many in one transaction) -> how many were deleted
Sweep = Callable[[float, int], int]

EVERY_S = 3600.0
BATCH_ROWS = 2000  # the most rows one transaction deletes
FIRST_BATCH = 10  # small: a row of a 1,000-column model is ~4 MB
BATCH_S = 0.05  # the time one transaction should take
PAUSE_S = 0.05


def store_sweeps(store: Store, width_s: int) -> dict[str, Sweep]:
    """The per-window tables of `store`, by the name their counts go under. `width_s`: the label join's window
    width (its counters are stored by window start only)."""
    labels = store.labels()

    def label_windows(end_s: float, limit: int) -> int:
        return labels.delete_windows_before(end_s, width_s, limit)

    return {
        "windows": store.delete_windows_before,
        "states": store.delete_states_before,
        "label_windows": label_windows,
    }


class Retention:
    def __init__(
        self,
        sweeps: Mapping[str, Sweep],
        retention_s: float,
        *,
        every_s: float = EVERY_S,
        batch_rows: int = BATCH_ROWS,
        batch_s: float = BATCH_S,
        pause_s: float = PAUSE_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not (retention_s >= 0 and every_s > 0 and batch_rows >= 1 and batch_s > 0 and pause_s >= 0):
            raise ValueError("retention_s and pause_s must be >= 0, every_s and batch_s > 0, batch_rows >= 1")
        self.sweeps = dict(sweeps)
        self.retention_s = retention_s
        self.every_s = every_s
        self.batch_rows = batch_rows
        self.batch_s = batch_s
        self.pause_s = pause_s
        self.clock = clock
        self.deleted: Counter[str] = Counter(dict.fromkeys(self.sweeps, 0))  # since start, by table
        self.runs = 0
        self.errors = 0
        self.last_run_s: float | None = None  # the `now` of the last finished pass
        self._stats = threading.Lock()
        self._one_pass = threading.Lock()  # the thread's pass and one run by hand never interleave
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return self.retention_s > 0

    def start(self) -> None:
        """Run a pass now and then every `every_s`, on a daemon thread; nothing when retention is off."""
        if not self.enabled or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="predwatch-retention", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop after the batch in progress (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run()
            except Exception:  # never let the thread die: the next pass tries again
                logger.exception("retention pass failed")
            if self._stop.wait(self.every_s):
                return

    def run(self, now: float | None = None) -> dict[str, int]:
        """One pass: delete what ended before `now - retention_s` from every table; rows deleted, by table."""
        if not self.enabled:
            return dict.fromkeys(self.sweeps, 0)
        now = self.clock() if now is None else now
        cutoff = now - self.retention_s
        began = time.monotonic()
        with self._one_pass:
            counts = {name: self._sweep(name, sweep, cutoff) for name, sweep in self.sweeps.items()}
        with self._stats:
            self.runs += 1
            self.last_run_s = now
        logger.info(
            "retention: deleted %s that ended before %s (%.1f s)",
            ", ".join(f"{n} {name}" for name, n in counts.items()),
            datetime.fromtimestamp(cutoff, UTC).isoformat(timespec="seconds"),
            time.monotonic() - began,
        )
        return counts

    def _sweep(self, name: str, sweep: Sweep, cutoff: float) -> int:
        total, limit = 0, min(FIRST_BATCH, self.batch_rows)
        while True:
            began = time.monotonic()
            try:
                n = sweep(cutoff, limit)
            except Exception:
                with self._stats:
                    self.errors += 1
                logger.exception("retention: deleting old %s failed; the next pass tries again", name)
                return total
            took = time.monotonic() - began
            total += n
            with self._stats:  # counted batch by batch: /metrics shows a long first pass progressing
                self.deleted[name] += n
            # A full batch means more may be left. The pause lets the writers waiting for the lock in first.
            if n < limit or self._stop.wait(self.pause_s):
                return total
            limit = self._next_limit(limit, took)

    def _next_limit(self, limit: int, took_s: float) -> int:
        if took_s > self.batch_s:
            return max(1, limit // 2)
        if took_s < self.batch_s / 2:
            return min(self.batch_rows, limit * 2)
        return limit

    def health(self) -> dict[str, Any]:
        with self._stats:
            return {
                "retention_s": self.retention_s,
                "runs": self.runs,
                "errors": self.errors,
                "last_run_s": self.last_run_s,
                "deleted": dict(self.deleted),
            }
