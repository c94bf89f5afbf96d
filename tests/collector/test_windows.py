"""WindowAggregator: tumbling windows, late data, flush protocol, snapshots, the cap, and exact reads
through the store while windows flush concurrently (every row counted once: rows compared exactly)."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import numpy as np
import pytest

from collector.records import InferenceBatch
from collector.sketches import Profile
from collector.store import WindowRecord
from collector.store_sqlite import SQLiteStore
from collector.windows import WindowAggregator

T0 = 1_767_225_600.0  # 2026-01-01 00:00 UTC


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def batch(t: float, xs: list[float], model: str = "m", version: str = "1") -> InferenceBatch:
    ids = [f"{t}-{i}" for i in range(len(xs))]
    return InferenceBatch(model, version, t, ids, {"x": list(xs)}, {"score": [x / 10 for x in xs]})


def only(records: list[WindowRecord]) -> Profile:
    (record,) = records
    return Profile.from_bytes(record.profile)


def test_rows_fold_into_tumbling_windows_and_flush_after_grace() -> None:
    clock = Clock(T0 + 10)
    agg = WindowAggregator(width_s=60, clock=clock, grace_s=5, collector_id="c1", flush_rows=4)
    xs = [float(i) for i in range(10)]
    for i in range(0, 10, 2):  # 5 batches of 2 rows: sketched 4 rows at a time, the rest pending
        assert agg.add(batch(T0 + 1 + i, xs[i : i + 2]))
    agg.add(batch(T0 + 61, [100.0]))  # the next window
    assert agg.due(T0 + 64) == []  # end + grace not reached
    records = agg.due(T0 + 65)
    assert [(r.start_s, r.width_s, r.rows, r.collector_id) for r in records] == [(int(T0), 60, 10, "c1")]
    assert (records[0].first_s, records[0].last_s) == (T0 + 1, T0 + 9)
    p = only(records)
    x = p.columns[("input", "x")]
    assert (p.rows, x.count, x.n_numeric) == (10, 10, 10)
    assert x.mean == pytest.approx(np.mean(xs), rel=1e-12) and x.variance == pytest.approx(np.var(xs, ddof=1))
    agg.committed(records)
    assert [r.start_s for r in agg.drain_all()] == [int(T0) + 60]


def test_late_data_opens_its_own_window() -> None:
    clock = Clock(T0 + 200)
    agg = WindowAggregator(width_s=60, clock=clock)
    agg.add(batch(T0 + 190, [1.0]))
    agg.add(batch(T0 + 5, [2.0, 3.0]))  # 3 minutes late: its own window, keyed by event time
    agg.add(batch(T0 + 70, [4.0]))
    starts = sorted(r.start_s for r in agg.due(T0 + 200))
    assert starts == [int(T0), int(T0) + 60]
    assert agg.open_windows == 1
    agg.committed([])


def test_snapshot_sees_everything_ingested() -> None:
    agg = WindowAggregator(width_s=60, clock=Clock(T0 + 100), flush_rows=3)
    values = list(np.random.default_rng(1).normal(size=30))
    for i, v in enumerate(values):
        agg.add(batch(T0 + 3 * i, [float(v)]))  # rows 0-19 in window T0, rows 20-29 in window T0 + 60
    agg.add(batch(T0 + 30, [9.0], version="2"))
    whole = agg.snapshot("m", "1", T0, T0 + 120)
    x = whole.columns[("input", "x")]
    assert (whole.rows, x.n_numeric) == (30, 30)
    assert x.mean == pytest.approx(np.mean(values), rel=1e-12)
    assert agg.snapshot("m", "1", T0 + 60, T0 + 61).rows == 10
    assert agg.snapshot("m", "1", T0 + 59.5, T0 + 60.5).rows == 30  # overlaps both windows
    assert agg.snapshot("m", "1", T0 + 120, T0 + 180).rows == 0
    only_x = agg.snapshot("m", "1", T0, T0 + 120, columns={("input", "x")})
    assert set(only_x.columns) == {("input", "x")}
    per_window = agg.snapshot_windows("m", "1", T0, T0 + 120)
    assert [(s, p.rows) for s, p in per_window] == [(int(T0), 20), (int(T0) + 60, 10)]
    info = {(i.model, i.version): i for i in agg.models()}
    assert info[("m", "1")].rows == 30 and info[("m", "2")].rows == 1
    assert (info[("m", "1")].first_seen, info[("m", "1")].last_seen) == (T0, T0 + 87)


def test_open_window_cap_rejects_and_counts() -> None:
    agg = WindowAggregator(width_s=60, clock=Clock(T0), max_open_windows=2)
    assert agg.add(batch(T0, [1.0], model="a"))
    assert agg.add(batch(T0, [1.0], model="b"))
    assert agg.add(batch(T0 + 1, [1.0, 2.0], model="a"))  # an open window still takes rows
    assert not agg.add(batch(T0, [1.0, 2.0, 3.0], model="c"))
    assert (agg.rejected_batches, agg.rejected_rows, agg.open_windows) == (1, 3, 2)


def test_future_and_non_finite_event_times_count_as_now() -> None:
    clock = Clock(T0 + 30)
    agg = WindowAggregator(width_s=60, clock=clock, max_future_s=300)
    agg.add(batch(T0 + 10 * 86400, [1.0]))
    agg.add(batch(math.nan, [2.0]))
    agg.add(batch(T0 + 200, [3.0]))  # a little ahead: trusted
    assert sorted(r.start_s for r in agg.drain_all()) == [int(T0), int(T0) + 180]


def test_failed_flush_reopens_windows() -> None:
    clock = Clock(T0 + 100)
    agg = WindowAggregator(width_s=60, clock=clock)
    agg.add(batch(T0 + 1, [1.0, 2.0]))
    records = agg.due()
    agg.add(batch(T0 + 2, [3.0]))  # late data arrives while the write is failing
    agg.failed(records)
    (again,) = agg.due()
    p = Profile.from_bytes(again.profile)
    assert p.rows == 3 and p.columns[("input", "x")].mean == pytest.approx(2.0)
    assert (again.first_s, again.last_s) == (T0 + 1, T0 + 2)


def test_read_through_store_counts_every_row_once(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "w.db"))
    clock = Clock(T0)
    agg = WindowAggregator(width_s=60, clock=clock, grace_s=0, flush_rows=16)
    started = done = 0  # rows handed to add(), rows add() has returned for
    stop = threading.Event()
    errors: list[BaseException] = []
    lock = threading.Lock()

    def reader() -> None:
        try:
            while not stop.is_set():
                with lock:
                    before = done
                rows = agg.read_profile(store, "m", "1", T0 - 3600, T0 + 7200).rows
                with lock:
                    after = started
                assert before <= rows <= after, (before, rows, after)
                series = agg.window_profiles(store, "m", "1", T0 - 3600, T0 + 7200)
                assert len({s for s, _ in series}) == len(series)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for i in range(1500):
        clock.now = T0 + i * 2.0
        # every 7th batch is late: it reopens a window that may already be in the store
        event_s = clock.now - (130 if i % 7 == 0 else 0)
        with lock:
            started += 2
        agg.add(batch(event_s, [float(i), float(i) + 0.5]))
        with lock:
            done += 2
        if i % 10 == 0:
            records = agg.due()
            store.write_windows(records)
            agg.committed(records)
    stop.set()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    final = agg.read_profile(store, "m", "1", T0 - 3600, T0 + 7200)
    assert final.rows == 3000
    x = final.columns[("input", "x")]
    assert x.mean == pytest.approx(np.mean([v for i in range(1500) for v in (i, i + 0.5)]), rel=1e-9)
    records = agg.drain_all()
    store.write_windows(records)
    agg.committed(records)
    assert store.read_profile("m", "1", T0 - 3600, T0 + 7200).rows == 3000
    store.close()


def test_constructor_validation() -> None:
    with pytest.raises(ValueError):
        WindowAggregator(width_s=0)


def test_array_and_list_columns_sketch_the_same() -> None:
    """The receivers hand doubles without gaps over as float64 arrays; small batches sketched together (one
    array piece, one list piece) give the same profile as the same values in lists."""
    from collector.sketches import SketchConfig

    config = SketchConfig(kll_k=1000)  # large enough that no KLL compaction hides a difference
    rng = np.random.default_rng(0)
    parts = [rng.normal(size=n) for n in (3, 5, 4)]
    as_arrays = WindowAggregator(width_s=60, clock=Clock(T0 + 1), config=config, flush_rows=100)
    as_lists = WindowAggregator(width_s=60, clock=Clock(T0 + 1), config=config, flush_rows=100)
    for i, xs in enumerate(parts):
        column: list[float | None] | np.ndarray = xs if i != 1 else [*xs.tolist(), None]
        ids = [f"{i}-{j}" for j in range(len(column))]
        as_arrays.add(InferenceBatch("m", "1", T0 + i, ids, {"x": column}, {}))
        as_lists.add(InferenceBatch("m", "1", T0 + i, ids, {"x": list(column)}, {}))
    got = as_arrays.snapshot("m", "1", T0, T0 + 60).columns[("input", "x")]
    expected = as_lists.snapshot("m", "1", T0, T0 + 60).columns[("input", "x")]
    assert (
        (got.count, got.missing, got.n_numeric) == (expected.count, expected.missing, expected.n_numeric) == (13, 1, 12)
    )
    assert got.mean == pytest.approx(expected.mean, rel=1e-12)
    assert sorted(v for v, _ in got.kll) == sorted(v for v, _ in expected.kll) == sorted(np.concatenate(parts))


def test_read_profile_keeps_the_configured_sketch_size_when_nothing_is_stored(tmp_path: Path) -> None:
    from collector.sketches import SketchConfig

    store = SQLiteStore(str(tmp_path / "w.db"))
    agg = WindowAggregator(width_s=60, clock=Clock(T0 + 1), config=SketchConfig(kll_k=1000))
    agg.add(batch(T0 + 1, [float(i) for i in range(600)]))
    x = agg.read_profile(store, "m", "1", T0, T0 + 60).columns[("input", "x")]
    assert (x.kll.k, x.kll.is_estimation_mode()) == (1000, False)  # not merged into a default k=200 sketch
    store.close()
