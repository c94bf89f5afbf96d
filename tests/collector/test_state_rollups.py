"""Rollups of the per-window states: written through SQLiteStore.write_states (late parts and several collectors
included), read over random ranges and steps, and checked against the merge of the raw parts computed here."""

from __future__ import annotations

import math
import random
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from collector.operations import OperationsState
from collector.operations_metrics import operations_metrics
from collector.performance import performance_metrics, zero_state
from collector.performance_classification import ClassificationState
from collector.records import PredictSpan
from collector.state_kinds import OPERATIONS, PERFORMANCE, kind
from collector.store import StateRecord
from collector.store_sqlite import DEFAULT_TIERS, SQLiteStore

T0 = 1_767_225_600 + 5 * 3600 + 17 * 60  # 2026-01-01 05:17 UTC: no tier is aligned with the first window
WIDTH = 60
DAYS = 2
KINDS = (PERFORMANCE, OPERATIONS)
Part = tuple[str, int, bytes]  # kind, window start, blob


def performance_part(rng: np.random.Generator) -> bytes:
    state = zero_state("binary_classification")
    n = int(rng.integers(1, 6))
    actuals = rng.integers(0, 2, size=n).tolist()
    state.update(actuals, labels=actuals[::-1], scores=rng.uniform(size=n).tolist())
    return state.to_bytes()


def operations_part(rng: np.random.Generator) -> bytes:
    state = OperationsState.zero()
    spans = [
        PredictSpan("m", "1", T0, float(rng.exponential(0.01)), bool(rng.uniform() < 0.9), int(rng.integers(1, 9)))
        for _ in range(int(rng.integers(1, 4)))
    ]
    for i, span in enumerate(spans):
        span.resource = {"service.instance.id": f"pod-{i % 2}"}
    state.add_spans(spans)
    return state.to_bytes()


def write_history(store: SQLiteStore, seed: int = 7) -> list[Part]:
    """Days of windows (not every one: a few gaps) from two collectors, one write_states per minute as the
    flusher does, then late parts for old windows (labels that came days later). Returns every part written."""
    rng = np.random.default_rng(seed)
    parts: list[Part] = []
    for i in range(DAYS * 1440):
        start = T0 + i * WIDTH
        records = []
        for collector in ("a", "b"):
            if rng.uniform() < 0.3:
                for name, make in ((PERFORMANCE, performance_part), (OPERATIONS, operations_part)):
                    blob = make(rng)
                    records.append(StateRecord(name, "m", "1", start, WIDTH, blob, collector))
                    parts.append((name, start, blob))
        store.write_states(records)
    late = [T0 + int(i) * WIDTH for i in rng.integers(0, DAYS * 1440, size=200)]
    for start in late:
        blob = performance_part(rng)
        store.write_states([StateRecord(PERFORMANCE, "m", "1", start, WIDTH, blob, "a")])
        parts.append((PERFORMANCE, start, blob))
    return parts


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SQLiteStore, list[Part]]]:
    store = SQLiteStore(str(tmp_path_factory.mktemp("rollups") / "states.db"))
    yield store, write_history(store)
    store.close()


def merged_parts(parts: list[Part], name: str, start_s: float, end_s: float, step_s: int | None) -> dict[int, Any]:
    """The reference: every part whose window overlaps the range, decoded and merged with the kind's own merge,
    per step-wide bucket of its window start (one bucket keyed floor(start_s) without a step)."""
    overlapping = [
        (start, blob)
        for part_kind, start, blob in parts
        if part_kind == name and start < end_s and start + WIDTH > start_s
    ]
    return _by_bucket(name, overlapping, start_s, step_s)


def read(store: SQLiteStore, name: str, start_s: float, end_s: float, step_s: int | None) -> dict[int, Any]:
    return _by_bucket(name, store.read_state_pieces(name, "m", "1", start_s, end_s, step_s), start_s, step_s)


def _by_bucket(name: str, pieces: Iterable[tuple[int, bytes]], start_s: float, step_s: int | None) -> dict[int, Any]:
    """Decoded pieces merged per step-wide bucket of their start (one bucket keyed floor(start_s) without a step)."""
    k = kind(name)
    out: dict[int, Any] = {}
    for start, blob in pieces:
        key = math.floor(start_s) if step_s is None else start // step_s * step_s
        state = k.from_bytes(blob)
        if key in out:
            k.merge(out[key], state)
        else:
            out[key] = state
    return out


def assert_same_states(name: str, got: dict[int, Any], want: dict[int, Any]) -> None:
    """Counts, confusion cells and score histograms exactly; the metrics, whose float sums may round differently
    in another merge order, to 1e-12."""
    assert got.keys() == want.keys()
    for key, state in want.items():
        mine = got[key]
        if name == PERFORMANCE:
            assert isinstance(mine, ClassificationState) and isinstance(state, ClassificationState)
            assert mine.pairs == state.pairs and mine.count == state.count
            assert mine.scores.keys() == state.scores.keys()
            for label, stats in state.scores.items():
                assert mine.scores[label].n == stats.n
                assert np.array_equal(mine.scores[label].hist, stats.hist)
            assert_close(performance_metrics(mine), performance_metrics(state))
        else:
            assert sorted(mine.instances) == sorted(state.instances)
            assert_close(operations_metrics(mine, window_s=3600), operations_metrics(state, window_s=3600))


def assert_close(got: Any, want: Any) -> None:
    if isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys()
        for key in want:
            assert_close(got[key], want[key])
    elif isinstance(want, list | tuple):
        assert isinstance(got, list | tuple) and len(got) == len(want)
        for a, b in zip(got, want, strict=True):
            assert_close(a, b)
    elif isinstance(want, float) and not isinstance(want, bool):
        assert got == pytest.approx(want, rel=1e-12, abs=1e-15, nan_ok=True)
    else:
        assert got == want


def state_rows(path: str) -> set[tuple[Any, ...]]:
    with closing(sqlite3.connect(path)) as db:
        return set(db.execute("SELECT kind, tier, start_s, width_s, collector_id FROM states"))


# -- reads ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", KINDS)
def test_random_ranges_equal_the_merge_of_the_raw_parts(history: tuple[SQLiteStore, list[Part]], name: str) -> None:
    store, parts = history
    rnd = random.Random(name)
    end_all = T0 + DAYS * 86_400
    ranges = [(T0 - 3600.0, end_all + 3600.0), (float(T0 + 86_400 - T0 % 86_400), T0 + 2 * 86_400 - T0 % 86_400)]
    for _ in range(25):
        a, b = sorted(rnd.uniform(T0 - 600, end_all + 600) for _ in range(2))
        ranges.append((a, b))
        ranges.append((float(int(a)), float(int(a)) + rnd.choice((59.5, 600, 3600, 86_400))))
    for a, b in ranges:
        want = merged_parts(parts, name, a, b, None)
        assert_same_states(name, read(store, name, a, b, None), want)


@pytest.mark.parametrize("name", KINDS)
@pytest.mark.parametrize("step_s", [120, 600, 3600, 5400, 86_400])
def test_steps_put_each_piece_in_one_bucket(history: tuple[SQLiteStore, list[Part]], name: str, step_s: int) -> None:
    store, parts = history
    rnd = random.Random(step_s)
    for _ in range(3):
        a = rnd.uniform(T0 - 600, T0 + DAYS * 86_400)
        b = min(a + rnd.uniform(0, 2 * 86_400), a + 2000 * step_s)
        assert_same_states(name, read(store, name, a, b, step_s), merged_parts(parts, name, a, b, step_s))


def test_a_day_reads_rollups_not_every_window(history: tuple[SQLiteStore, list[Part]]) -> None:
    store, _ = history
    day = T0 - T0 % 86_400 + 86_400
    raw = store.read_states(PERFORMANCE, "m", "1", day + 1234.5, day + 86_400 + 1234.5)
    pieces = store.read_state_pieces(PERFORMANCE, "m", "1", day + 1234.5, day + 86_400 + 1234.5)
    assert len(raw) > 500 and len(pieces) < 60
    assert store.read_state_pieces(PERFORMANCE, "m", "1", day, day + 86_400) == store.read_state_pieces(
        PERFORMANCE, "m", "1", day, day + 86_400, step_s=86_400
    )
    assert len(store.read_state_pieces(PERFORMANCE, "m", "1", day, day + 86_400)) == 1
    with pytest.raises(ValueError, match="step_s"):
        store.read_state_pieces(PERFORMANCE, "m", "1", day, day + 86_400, step_s=0)


def test_rollup_rows_merge_every_collector(history: tuple[SQLiteStore, list[Part]]) -> None:
    rows = state_rows(history[0].path)
    assert {c for _, tier, _, _, c in rows if tier == 0} == {"a", "b"}
    assert {c for _, tier, _, _, c in rows if tier} == {""}
    assert {tier for _, tier, _, _, _ in rows} == {0, *DEFAULT_TIERS}
    assert all(width == tier for _, tier, _, width, _ in rows if tier)


# -- retention --------------------------------------------------------------------------------------------------------
def test_retention_deletes_only_rows_that_ended_before_the_cutoff_at_every_tier(tmp_path: Path) -> None:
    path = str(tmp_path / "retention.db")
    store = SQLiteStore(path)
    parts = write_history(store, seed=11)
    cutoff = T0 + 86_400 + 7 * 3600 + 30  # inside a 1-day, a 6-h and a 1-h bucket and a raw window
    for start in (cutoff - 30, cutoff - 90):  # a raw window reaching over the cutoff, and one ending 30 s before
        blob = performance_part(np.random.default_rng(start))
        store.write_states([StateRecord(PERFORMANCE, "m", "1", start, WIDTH, blob, "c")])
        parts.append((PERFORMANCE, start, blob))
    before = state_rows(path)
    deleted = 0
    while (n := store.delete_states_before(cutoff, 500)) == 500:
        deleted += n
    deleted += n
    after = state_rows(path)
    want = {row for row in before if not row[2] + row[3] < cutoff}
    assert after == want and deleted == len(before) - len(want)
    for tier in (0, *DEFAULT_TIERS):
        assert any(row[1] == tier for row in before - after), tier  # every tier lost rows ...
        assert any(row[1] == tier and row[2] < cutoff for row in after), tier  # ... and kept one reaching over it
    for name in KINDS:  # every range that starts at or after the cutoff reads as before
        for a, b in ((cutoff, T0 + DAYS * 86_400), (cutoff + 1000.5, cutoff + 86_400)):
            assert_same_states(name, read(store, name, a, b, None), merged_parts(parts, name, a, b, None))
    store.close()


# -- an older file ----------------------------------------------------------------------------------------------------
SCHEMA_1 = """
CREATE TABLE states (
    id INTEGER PRIMARY KEY, kind TEXT NOT NULL, model TEXT NOT NULL, version TEXT NOT NULL,
    start_s INTEGER NOT NULL, collector_id TEXT NOT NULL, width_s INTEGER NOT NULL, blob BLOB NOT NULL
);
CREATE UNIQUE INDEX states_key ON states (kind, model, version, start_s, collector_id);
CREATE TABLE state_series (
    kind TEXT NOT NULL, model TEXT NOT NULL, version TEXT NOT NULL, max_width_s INTEGER NOT NULL,
    PRIMARY KEY (kind, model, version)
);
PRAGMA user_version = 1;
"""


def test_a_schema_1_file_reads_its_raw_rows_and_rollups_from_then_on(tmp_path: Path) -> None:
    path = str(tmp_path / "old.db")
    rng = np.random.default_rng(3)
    old: list[Part] = []
    with closing(sqlite3.connect(path)) as db:  # a day and a half written by the previous version: no rollups
        db.executescript(SCHEMA_1)
        for i in range(0, 2160, 3):
            start = T0 + i * WIDTH
            for name, make in ((PERFORMANCE, performance_part), (OPERATIONS, operations_part)):
                blob = make(rng)
                db.execute(
                    "INSERT INTO states (kind, model, version, start_s, collector_id, width_s, blob)"
                    " VALUES (?, 'm', '1', ?, 'a', ?, ?)",
                    (name, start, WIDTH, blob),
                )
                old.append((name, start, blob))
        db.executemany("INSERT INTO state_series VALUES (?, 'm', '1', ?)", [(k, WIDTH) for k in KINDS])
        db.commit()
    store = SQLiteStore(path)
    new: list[Part] = []
    for i in range(2160, 2880, 2):  # the next day and a half, and late labels for the old windows
        start = T0 + i * WIDTH
        blob = performance_part(rng)
        store.write_states([StateRecord(PERFORMANCE, "m", "1", start, WIDTH, blob, "a")])
        new.append((PERFORMANCE, start, blob))
    for _, start, _ in old[::40]:
        blob = performance_part(rng)
        store.write_states([StateRecord(PERFORMANCE, "m", "1", start, WIDTH, blob, "b")])
        new.append((PERFORMANCE, start, blob))
    store.close()
    store = SQLiteStore(path)  # reopened: the upgrade happened once
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 2
        assert db.execute("SELECT count(*) FROM states WHERE tier = 0").fetchone()[0] == len(old) + len(new)
    parts = old + new
    rnd = random.Random(5)
    for name in KINDS:
        for _ in range(8):
            a, b = sorted(rnd.uniform(T0 - 600, T0 + 2 * 86_400) for _ in range(2))
            assert_same_states(name, read(store, name, a, b, None), merged_parts(parts, name, a, b, None))
            assert_same_states(name, read(store, name, a, b, 3600), merged_parts(parts, name, a, b, 3600))
    newest_old = max(start for _, start, _ in old)
    late = T0 + 2200 * WIDTH - (T0 + 2200 * WIDTH) % 86_400 + 86_400  # a whole day after the upgrade
    assert late > newest_old
    assert len(store.read_state_pieces(PERFORMANCE, "m", "1", late, late + 86_400)) == 1
    assert len(store.read_state_pieces(PERFORMANCE, "m", "1", T0, T0 + 86_400)) > 400  # before: raw rows
    store.close()
