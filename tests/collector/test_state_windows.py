"""Per-window states beside the profiles: in memory until their window closes, merged with the store on read
(each part counted once, also while a flush is writing), parts added up in the store, restart-safe."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from collector.operations import OperationsState
from collector.performance import zero_state
from collector.performance_regression import RegressionState
from collector.records import PredictSpan
from collector.state_kinds import OPERATIONS, PERFORMANCE, merge_blobs
from collector.state_windows import StateWindows
from collector.store import StateRecord, StoreError
from collector.store_sqlite import SQLiteStore

T0 = 1_767_225_600


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class SlowStore(SQLiteStore):
    """A real store whose writes wait for `release` (and fail while `failing`)."""

    failing = False

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.entered = threading.Event()
        self.release = threading.Event()
        self.release.set()

    def write_states(self, records: Sequence[StateRecord]) -> None:
        self.entered.set()
        self.release.wait(10)
        if self.failing:
            raise OSError("disk full")
        super().write_states(records)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SlowStore]:
    s = SlowStore(str(tmp_path / "states.db"))
    yield s
    s.close()


def regression(*pairs: tuple[float, float]) -> RegressionState:
    state = RegressionState.zero()
    state.update([a for a, _ in pairs], predictions=[p for _, p in pairs])
    return state


def counts(windows: list[tuple[int, Any]]) -> dict[int, int]:
    return {start - T0: state.count for start, state in windows}


def test_open_states_are_read_with_stored_ones_and_written_when_due(store: SlowStore) -> None:
    clock = Clock(T0 + 10)
    states = StateWindows(store, 60, grace_s=5, collector_id="c1", clock=clock)
    states.add(PERFORMANCE, "m", "1", T0, regression((1, 2)))
    states.add(PERFORMANCE, "m", "1", T0, regression((3, 3), (4, 5)))  # merged into the open state
    states.add(PERFORMANCE, "m", "1", T0 + 60, regression((1, 1)))
    states.add(PERFORMANCE, "m", "2", T0, regression((1, 1)))
    assert states.flush() == 0  # nothing has closed
    assert counts(states.read(PERFORMANCE, "m", "1", T0, T0 + 120)) == {0: 3, 60: 1}
    clock.now = T0 + 65
    assert states.flush() == 2 and states.open_states == 1
    assert [start for start, _ in store.read_states(PERFORMANCE, "m", "1", T0, T0 + 120)] == [T0]
    states.add(PERFORMANCE, "m", "1", T0, regression((9, 9)))  # a late label for a written window
    assert counts(states.read(PERFORMANCE, "m", "1", T0, T0 + 120)) == {0: 4, 60: 1}
    assert counts(states.read(PERFORMANCE, "m", "1", T0 + 60, T0 + 61)) == {60: 1}
    assert states.flush(final=True) == 2
    assert counts(states.read(PERFORMANCE, "m", "1", T0, T0 + 120)) == {0: 4, 60: 1}
    assert len(store.read_states(PERFORMANCE, "m", "1", T0, T0 + 120)) == 2  # the late part was added, not appended


def test_a_read_during_a_flush_counts_each_part_once(store: SlowStore) -> None:
    states = StateWindows(store, 60, grace_s=0, clock=Clock(T0 + 120))
    states.add(PERFORMANCE, "m", "1", T0, regression((1, 2), (2, 2)))
    store.release.clear()
    flusher = threading.Thread(target=states.flush)
    flusher.start()
    assert store.entered.wait(5)
    seen: list[dict[int, int]] = []
    reader = threading.Thread(target=lambda: seen.append(counts(states.read(PERFORMANCE, "m", "1", T0, T0 + 60))))
    reader.start()
    reader.join(0.2)
    assert reader.is_alive()  # it waits for the write rather than miss the state or count it twice
    store.release.set()
    flusher.join(5)
    reader.join(5)
    assert seen == [{0: 2}]


def test_a_failed_write_puts_the_states_back(store: SlowStore) -> None:
    states = StateWindows(store, 60, grace_s=0, clock=Clock(T0 + 120))
    states.add(PERFORMANCE, "m", "1", T0, regression((1, 2)))
    store.failing = True
    with pytest.raises(OSError):
        states.flush()
    states.add(PERFORMANCE, "m", "1", T0, regression((5, 5)))  # arrived meanwhile
    assert states.write_errors == 1 and counts(states.read(PERFORMANCE, "m", "1", T0, T0 + 60)) == {0: 2}
    store.failing = False
    assert states.flush() == 1
    assert counts(states.read(PERFORMANCE, "m", "1", T0, T0 + 60)) == {0: 2}


def test_collectors_write_parts_that_reads_merge_and_a_reopen_keeps(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    for collector in ("a", "b"):
        store = SQLiteStore(path)
        states = StateWindows(store, 60, grace_s=0, collector_id=collector, clock=Clock(T0 + 600))
        states.add(PERFORMANCE, "m", "1", T0, regression((1, 2)))
        span = PredictSpan("m", "1", T0 + 1, 0.002, True, 4, resource={"service.instance.id": collector})
        ops = OperationsState.zero()
        ops.add_spans([span])
        states.add(OPERATIONS, "m", "1", T0, ops)
        states.flush()
        store.close()
    store = SQLiteStore(path)
    states = StateWindows(store, 60, clock=Clock(T0 + 600))
    assert counts(states.read(PERFORMANCE, "m", "1", T0 - 30, T0 + 30)) == {0: 2}
    [(_, ops)] = states.read(OPERATIONS, "m", "1", T0, T0 + 60)
    assert sorted(ops.instances) == ["a", "b"]
    assert states.read(OPERATIONS, "m", "2", T0, T0 + 60) == []
    store.close()


def test_kinds_merge_blobs_and_refuse_garbage(store: SlowStore) -> None:
    a, b = regression((1, 2)), regression((2, 2))
    assert RegressionState.from_bytes(merge_blobs(PERFORMANCE, [a.to_bytes(), b.to_bytes()])).count == 2
    binary = zero_state("binary_classification")
    with pytest.raises(ValueError, match="cannot merge"):
        merge_blobs(PERFORMANCE, [a.to_bytes(), binary.to_bytes()])
    with pytest.raises(ValueError, match="unknown state kind"):
        merge_blobs("profiles", [a.to_bytes()])
    store.write_states([StateRecord(PERFORMANCE, "m", "1", T0, 60, b"garbage")])
    with pytest.raises(StoreError, match="cannot add to the stored performance state"):
        store.write_states([StateRecord(PERFORMANCE, "m", "1", T0, 60, a.to_bytes())])
    states = StateWindows(store, 60)
    with pytest.raises(StoreError, match="unreadable performance state"):
        states.read(PERFORMANCE, "m", "1", T0, T0 + 60)
    with pytest.raises(ValueError, match="bad state record"):
        store.write_states([StateRecord(PERFORMANCE, "m", "1", T0, 0, a.to_bytes())])
