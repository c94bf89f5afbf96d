"""Per-window states of other kinds than profiles (performance, operations), in memory until written to the store.

    states = StateWindows(store, width_s=60)
    states.add("performance", "churn", "3", window_start, part)        # any thread; `part` is owned from here on
    states.flush()                                                      # flusher: windows whose end + grace passed
    states.flush(final=True)                                            # shutdown: everything
    states.read("performance", "churn", "3", start_s, end_s)           # [(window start, state)], store + memory
    states.read_merged("performance", "churn", "3", start_s, end_s, step_s=3600)   # [(hour, state)], from rollups

A part for a window that has already been written (labels arrive long after their predictions' window closed)
is simply another part: it waits in memory for the next flush and the store adds it to the stored state, so a
state is written at most once per flush tick whatever the number of parts. Reads merge the stored states and
the ones in memory, each part counted exactly once: a read that overlaps a write waits for it (or retries).
A write that fails puts its states back, merged with whatever arrived meanwhile, for the next flush.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

from collector.state_kinds import kind
from collector.store import StateRecord, Store, StoreError

__all__ = ["StateWindows"]

_Key = tuple[str, str, str, int]  # kind, model, version, window start


class StateWindows:
    def __init__(
        self,
        store: Store,
        width_s: int,
        *,
        grace_s: float = 5.0,
        collector_id: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        if width_s < 1 or grace_s < 0:
            raise ValueError("width_s must be >= 1 and grace_s >= 0")
        self.store = store
        self.width_s = int(width_s)
        self.grace_s = grace_s
        self.collector_id = collector_id
        self.clock = clock
        self.written = 0
        self.write_errors = 0
        self._open: dict[_Key, Any] = {}
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)
        self._writing = 0  # flushes between taking their states and committing (or putting them back)
        self._seq = 0  # bumped by every flush, so that a read can tell one happened meanwhile
        self._flush_lock = threading.Lock()  # one flush at a time

    def add(self, kind_name: str, model: str, version: str, start_s: int, part: Any) -> None:
        """Merge `part` into the open state of its window (it becomes that state when there is none)."""
        merge = kind(kind_name).merge
        key = (kind_name, model, version, int(start_s))
        with self._lock:
            state = self._open.get(key)
            if state is None:
                self._open[key] = part
            else:
                merge(state, part)

    @property
    def open_states(self) -> int:
        return len(self._open)

    # -- flush --------------------------------------------------------------------------------------------
    def flush(self, final: bool = False) -> int:
        """Write the states whose window ended `grace_s` ago (all of them when `final`); returns how many.
        Raises the store's exception after putting the states back."""
        with self._flush_lock:
            limit = self.clock() - self.grace_s
            with self._lock:
                keys = [k for k in self._open if final or k[3] + self.width_s <= limit]
                if not keys:
                    return 0
                taken = {k: self._open.pop(k) for k in keys}
                self._writing += 1
                self._seq += 1
            try:
                records = [
                    StateRecord(k[0], k[1], k[2], k[3], self.width_s, state.to_bytes(), self.collector_id)
                    for k, state in taken.items()
                ]
                self.store.write_states(records)
            except BaseException:
                with self._lock:
                    for k, state in taken.items():
                        newer = self._open.get(k)
                        if newer is not None:
                            kind(k[0]).merge(state, newer)
                        self._open[k] = state
                    self.write_errors += 1
                    self._done()
                raise
            with self._lock:
                self.written += len(records)
                self._done()
            return len(records)

    def _done(self) -> None:
        self._writing -= 1
        self._seq += 1
        self._settled.notify_all()

    # -- reads --------------------------------------------------------------------------------------------
    def read(
        self, kind_name: str, model: str, version: str, start_s: float, end_s: float, timeout_s: float = 5.0
    ) -> list[tuple[int, Any]]:
        """Per window overlapping [start_s, end_s), oldest first: the stored parts and the open one, merged.
        Raises StoreError for a stored state that cannot be read."""
        key_range = (kind_name, model, version, start_s, end_s)
        stored, live = self._read(*key_range, timeout_s, lambda: self.store.read_states(*key_range))
        return _merged(kind_name, model, version, stored, live, lambda start: start)

    def read_merged(
        self,
        kind_name: str,
        model: str,
        version: str,
        start_s: float,
        end_s: float,
        step_s: int | None = None,
        timeout_s: float = 5.0,
    ) -> list[tuple[int, Any]]:
        """Every state overlapping [start_s, end_s) merged, from the store's rollups where they fit: with
        `step_s`, per step-wide bucket holding data (epoch-aligned, keyed by its start), oldest first; without,
        at most one item keyed by floor(start_s). Equal to merging `read`'s windows (by bucket). Raises
        StoreError for a stored state that cannot be read."""
        key_range = (kind_name, model, version, start_s, end_s)
        stored, live = self._read(
            *key_range, timeout_s, lambda: self.store.read_state_pieces(*key_range, step_s=step_s)
        )
        first = math.floor(start_s)
        bucket: Callable[[int], int] = (lambda _: first) if step_s is None else (lambda start: start // step_s * step_s)
        return _merged(kind_name, model, version, stored, live, bucket)

    def _read(
        self,
        kind_name: str,
        model: str,
        version: str,
        start_s: float,
        end_s: float,
        timeout_s: float,
        read_stored: Callable[[], list[tuple[int, bytes]]],
    ) -> tuple[list[tuple[int, bytes]], list[tuple[int, Any]]]:
        """What `read_stored` returns and copies of the open states of the range, each part counted exactly once:
        a read that overlaps a write waits for it (or retries)."""
        k = kind(kind_name)
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                self._settled.wait_for(lambda: not self._writing, max(deadline - time.monotonic(), 0.0))
                seq = self._seq
            stored = read_stored()
            with self._lock:
                if (self._seq == seq and not self._writing) or time.monotonic() > deadline:
                    live = [
                        (key[3], k.copy(state))
                        for key, state in self._open.items()
                        if key[:3] == (kind_name, model, version) and key[3] < end_s and key[3] + self.width_s > start_s
                    ]
                    return stored, live


def _merged(
    kind_name: str,
    model: str,
    version: str,
    stored: list[tuple[int, bytes]],
    live: list[tuple[int, Any]],
    bucket: Callable[[int], int],
) -> list[tuple[int, Any]]:
    """Decode the stored blobs and merge them with the open states, per bucket of their start."""
    k = kind(kind_name)
    merged: dict[int, Any] = {}
    for start, blob in stored:
        try:
            state = k.from_bytes(blob)
        except ValueError as exc:
            raise StoreError(f"unreadable {kind_name} state {model!r} {version!r} start {start}: {exc}") from exc
        _merge_into(merged, bucket(start), state, k.merge)
    for start, state in live:
        _merge_into(merged, bucket(start), state, k.merge)
    return sorted(merged.items())


def _merge_into(merged: dict[int, Any], start: int, state: Any, merge: Callable[[Any, Any], None]) -> None:
    total = merged.get(start)
    if total is None:
        merged[start] = state
    else:
        merge(total, state)
