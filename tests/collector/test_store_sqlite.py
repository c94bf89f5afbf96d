"""SQLiteStore on real files: restarts, rollups equal to the raw windows, partial windows, bad data.

Exactness: rows and every count are compared exactly; means to 1e-9 relative (float64 merge order).
"""

from __future__ import annotations

import random
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest

from collector.rollups import cover as _cover
from collector.sketches import Profile
from collector.store import StoreError, WindowRecord
from collector.store_sqlite import SCHEMA_VERSION, SQLiteStore

DAY = 86400
T0 = 1_767_225_600  # 2026-01-01 00:00 UTC


def make_record(
    start: int, rows: int, seed: int, collector: str = "c1", width: int = 60, model: str = "m", version: str = "1"
) -> WindowRecord:
    rng = np.random.default_rng(seed)
    p = Profile.zero()
    p.update_columns(
        rows,
        {
            ("input", "x"): rng.normal(seed % 7, 1, rows).tolist(),
            ("input", "c"): [None if i % 5 == 0 else f"k{i % 3}" for i in range(rows)],
            ("output", "score"): rng.random(rows),
        },
    )
    return WindowRecord.from_profile(model, version, start, width, p, collector, start + 1.0, start + width - 1.0)


def merge_records(records: list[WindowRecord], start_s: float, end_s: float) -> Profile:
    """What a read must equal: every record whose window overlaps [start_s, end_s), merged directly."""
    total = Profile.zero()
    for r in records:
        if r.start_s < end_s and r.end_s > start_s:
            total.merge(Profile.from_bytes(r.profile))
    return total


def assert_same(got: Profile, want: Profile) -> None:
    assert got.rows == want.rows
    assert set(got.columns) == set(want.columns)
    for key, w in want.columns.items():
        g = got.columns[key]
        assert (g.count, g.missing, g.nan, g.inf, g.n_numeric, g.n_string, g.n_bool) == (
            w.count,
            w.missing,
            w.nan,
            w.inf,
            w.n_numeric,
            w.n_string,
            w.n_bool,
        ), key
        assert g.kll.n == w.kll.n and g.items.total_weight == w.items.total_weight
        if w.n_numeric:
            assert g.mean == pytest.approx(w.mean, rel=1e-9) and g.min == w.min and g.max == w.max


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "predwatch.db"


def test_write_read_and_restart(db: Path) -> None:
    records = [make_record(T0 + 60 * i, 20 + i, i) for i in range(30)]
    store = SQLiteStore(str(db))
    store.write_windows(records[:20])
    store.write_windows(records[20:])
    assert_same(store.read_profile("m", "1", T0, T0 + 1800), merge_records(records, T0, T0 + 1800))
    store.close()
    again = SQLiteStore(str(db))  # a restart loses nothing
    assert_same(again.read_profile("m", "1", T0, T0 + 1800), merge_records(records, T0, T0 + 1800))
    assert_same(again.read_profile("m", "1", T0 + 125, T0 + 600), merge_records(records, T0 + 125, T0 + 600))
    assert again.read_profile("m", "1", T0 + 1800, T0 + 3600).rows == 0
    assert again.read_profile("m", "2", T0, T0 + 1800).rows == 0
    assert again.read_profile("m", "1", T0 + 600, T0 + 600).rows == 0  # empty range
    (info,) = again.models()
    assert (info.model, info.version, info.rows) == ("m", "1", sum(r.rows for r in records))
    assert (info.first_seen, info.last_seen) == (T0 + 1.0, T0 + 29 * 60 + 59.0)
    again.close()


def test_rollups_equal_raw_windows_over_random_ranges(db: Path) -> None:
    # 3 days of windows, some minutes from two collectors (partial windows), some minutes empty
    records = []
    for i in range(0, 3 * 1440, 7):
        records.append(make_record(T0 - DAY // 2 + 60 * i, 5 + i % 11, i))
        if i % 3 == 0:
            records.append(make_record(T0 - DAY // 2 + 60 * i, 3, i + 100_000, collector="c2"))
    store = SQLiteStore(str(db))
    for i in range(0, len(records), 50):
        store.write_windows(records[i : i + 50])
    rnd = random.Random(11)
    lo, hi = T0 - DAY // 2, T0 + 2 * DAY + DAY // 2
    ranges: list[tuple[float, float]] = [(T0, T0 + DAY), (T0 - 3600, T0 + DAY + 3600), (lo - 100, hi + 100)]
    for _ in range(12):
        a, b = sorted((rnd.uniform(lo, hi), rnd.uniform(lo, hi)))
        ranges.append((a, b))
    for start, end in ranges:
        assert_same(store.read_profile("m", "1", start, end), merge_records(records, start, end))
    # the rollups hold every row written, for every tier
    total = sum(r.rows for r in records)
    con = sqlite3.connect(db)
    for tier in store.tiers:
        assert con.execute("SELECT sum(rows) FROM windows WHERE tier = ?", (tier,)).fetchone()[0] == total
    con.close()
    store.close()


def test_cover_partitions_every_start_once() -> None:
    rnd = random.Random(3)
    tiers = (86400, 21600, 3600, 600)
    for _ in range(300):
        lo = rnd.randrange(0, 4 * DAY)
        hi = lo + rnd.randrange(0, 3 * DAY)
        buckets: list[tuple[int, int, int]] = []
        raw: list[tuple[int, int]] = []
        _cover(lo, hi, tiers, buckets, raw)
        spans = sorted([(a, b) for _, a, b in buckets] + raw)
        merged_end = lo
        for a, b in spans:  # contiguous, no overlap, exactly [lo, hi)
            assert a == merged_end and b > a
            merged_end = b
        assert merged_end == hi or lo == hi
        pieces = sum((b - a) // t for t, a, b in buckets) + sum(b - a for a, b in raw) // 60
        assert pieces <= 50 + (hi - lo) // DAY


def test_partial_windows_from_two_collectors_and_repeated_writes(db: Path) -> None:
    store = SQLiteStore(str(db))
    a, b = make_record(T0, 10, 1, "c1"), make_record(T0, 7, 2, "c2")
    late = make_record(T0, 4, 3, "c1")  # late data for a window c1 had already flushed
    store.write_windows([a])
    store.write_windows([b, late])
    want = merge_records([a, b, late], T0, T0 + 60)
    assert_same(store.read_profile("m", "1", T0, T0 + 60), want)
    ((start, profile),) = store.window_profiles("m", "1", T0, T0 + 60)
    assert start == T0
    assert_same(profile, want)
    assert store.models()[0].rows == 21
    store.close()


def test_windows_that_start_before_a_range_are_included(db: Path) -> None:
    store = SQLiteStore(str(db))
    records = [make_record(T0 + 45 * i, 5, i, width=45) for i in range(100)]
    store.write_windows(records)
    for start, end in [(T0 + 30, T0 + 3000), (T0 + 599, T0 + 601), (T0 + 3599, T0 + 4500)]:
        assert_same(store.read_profile("m", "1", start, end), merge_records(records, start, end))
    store.close()


def test_window_profiles_raw_and_rollup_steps(db: Path) -> None:
    store = SQLiteStore(str(db))
    records = [make_record(T0 + 60 * i, 10, i) for i in range(180)]
    store.write_windows(records)
    series = store.window_profiles("m", "1", T0 + 90, T0 + 600, columns=[("input", "x")])
    assert [s for s, _ in series] == [T0 + 60 * i for i in range(1, 10)]
    assert all(set(p.columns) == {("input", "x")} and p.rows == 10 for _, p in series)
    hourly = store.window_profiles("m", "1", T0, T0 + 3 * 3600, step_s=3600)
    assert [(s, p.rows) for s, p in hourly] == [(T0 + 3600 * h, 600) for h in range(3)]
    with pytest.raises(ValueError, match="step_s"):
        store.window_profiles("m", "1", T0, T0 + 60, step_s=120)
    only = store.read_profile("m", "1", T0, T0 + 3 * 3600, columns=[("output", "score")])
    assert set(only.columns) == {("output", "score")} and only.columns[("output", "score")].count == 1800
    store.close()


def test_references_and_versions(db: Path) -> None:
    store = SQLiteStore(str(db))
    assert store.get_reference("m", "1") is None and store.newest_version("m") is None
    store.put_reference("m", "1", b"\x00blob", {"rows": 10, "source": "upload"})
    store.put_reference("m", "1", b"blob2", {"rows": 20})
    assert store.get_reference("m", "1") == (b"blob2", {"rows": 20})
    store.write_windows([make_record(T0 + 600, 5, 1, version="2"), make_record(T0, 5, 1, version="1")])
    store.write_windows([make_record(T0 + 1200, 5, 1, version="1")])
    assert store.newest_version("m") == "2"  # first seen most recently, though v1 was seen last
    assert [(i.version, i.rows) for i in store.models()] == [("1", 10), ("2", 5)]
    store.close()
    assert SQLiteStore(str(db)).get_reference("m", "1") == (b"blob2", {"rows": 20})


def test_bad_records_and_corrupt_rows_raise_clear_errors(db: Path) -> None:
    store = SQLiteStore(str(db))
    good = make_record(T0, 5, 1)
    garbage = WindowRecord("m", "1", T0 + 60, 60, 5, b"\x01not a profile", "c1")
    with pytest.raises(StoreError, match="record 'm' '1'"):
        store.write_windows([good, garbage])
    assert store.read_profile("m", "1", T0, T0 + 120).rows == 0  # all or nothing
    with pytest.raises(ValueError, match="rows"):
        store.write_windows([WindowRecord("m", "1", T0, 60, 6, good.profile)])
    store.write_windows([good])
    con = sqlite3.connect(db)
    con.execute("UPDATE windows SET profile = x'0102030405' WHERE tier = 0")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="window 'm' '1' start"):
        store.window_profiles("m", "1", T0, T0 + 60)
    with pytest.raises(StoreError, match="unreadable"):
        store.write_windows([good])  # merging into the corrupt row
    store.close()


def test_schema_version_and_tiers_are_checked(db: Path) -> None:
    SQLiteStore(str(db), tiers=(3600, 600)).close()
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()
    assert SQLiteStore(str(db)).tiers == (3600, 600)  # stored with the file
    with pytest.raises(ValueError, match="tiers"):
        SQLiteStore(str(db), tiers=(600,))
    con = sqlite3.connect(db)
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="schema"):
        SQLiteStore(str(db))
    with pytest.raises(ValueError):
        SQLiteStore(":memory:")


def test_read_queries_use_the_indexes(db: Path) -> None:
    store = SQLiteStore(str(db))
    store.write_windows([make_record(T0, 5, 1)])
    con = sqlite3.connect(db)
    queries = [
        "SELECT start_s, collector_id, profile FROM windows WHERE model = 'm' AND version = '1' AND tier = 0"
        " AND start_s >= 0 AND start_s < 10",
        "SELECT start_s, collector_id, profile FROM windows WHERE model = 'm' AND version = '1' AND tier = 0"
        " AND start_s > 0 AND start_s < 10 AND start_s + width_s > 5 ORDER BY start_s",
        "SELECT id, profile, width_s FROM windows WHERE model = 'm' AND version = '1' AND tier = 0 AND start_s = 1"
        " AND collector_id = ''",
        "SELECT version FROM models WHERE model = 'm' ORDER BY first_seen DESC, version DESC LIMIT 1",
        "SELECT blob, meta FROM refs WHERE model = 'm' AND version = '1'",
    ]
    for q in queries:
        plan = " ".join(row[3] for row in con.execute("EXPLAIN QUERY PLAN " + q))
        assert "USING" in plan and "SCAN windows" not in plan, plan
    con.close()
    store.close()


def test_concurrent_readers_while_writing(db: Path) -> None:
    store = SQLiteStore(str(db))
    records = [make_record(T0 + 60 * i, 10, i) for i in range(120)]
    errors: list[BaseException] = []
    done = threading.Event()

    def reader() -> None:
        try:
            last = 0
            while not done.is_set():
                rows = store.read_profile("m", "1", T0, T0 + 7200).rows
                assert rows % 10 == 0 and rows >= last  # whole windows, never going back
                last = rows
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for r in records:
        store.write_windows([r])
    done.set()
    for t in threads:
        t.join()
    assert not errors
    assert store.read_profile("m", "1", T0, T0 + 7200).rows == 1200
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.write_windows([records[0]])
