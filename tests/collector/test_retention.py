"""Retention: per-window rows that ended before now - retention go, at every level; everything else stays.

The main test feeds 200 days of predictions, labels and predict spans into a real collector (its ingest sink,
POST /api/v1/actuals, PUT .../reference), runs a pass and checks every table against the set computed here from
the times fed, then the API answers over the retained range against the ones read before the pass.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from collector.operations import OperationsState
from collector.records import InferenceBatch, PredictSpan
from collector.retention import Retention, store_sweeps
from collector.sketches import Profile
from collector.state_kinds import OPERATIONS
from collector.state_store_sqlite import DELETE_OLD
from collector.store import StateRecord, WindowRecord
from collector.store_sqlite import DEFAULT_TIERS, DELETE_OLD_WINDOWS, SQLiteStore
from tests.collector.test_app import Running, serve

DAY = 86_400
WIDTH = 60
RETENTION = 90 * DAY
ROWS = 1  # per batch (see feed)
Rows = set[tuple[Any, ...]]


def wait_for(condition: Any, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def rows(path: Path, sql: str) -> Rows:
    """Read straight from the file, beside the collector's own connections."""
    with closing(sqlite3.connect(path)) as db:
        return set(db.execute(sql))


def window_rows(path: Path) -> Rows:
    return rows(path, "SELECT model, version, tier, start_s FROM windows")


def state_rows(path: Path) -> Rows:
    return rows(path, "SELECT kind, model, version, tier, start_s FROM states")


def label_window_rows(path: Path) -> set[int]:
    return {start for (start,) in rows(path, "SELECT window_s FROM label_windows")}


def expected_windows(fed: dict[tuple[str, str], list[float]]) -> dict[tuple[Any, ...], int]:
    """Every row the store should hold for these event times, with the end of the window or bucket it covers."""
    out: dict[tuple[Any, ...], int] = {}
    for (model, version), times in fed.items():
        for t in times:
            start = int(t) // WIDTH * WIDTH
            out[(model, version, 0, start)] = start + WIDTH
            for tier in DEFAULT_TIERS:
                bucket = start // tier * tier
                out[(model, version, tier, bucket)] = bucket + tier
    return out


def kept(rows: dict[tuple[Any, ...], int], cutoff: float) -> Rows:
    return {key for key, end in rows.items() if not end < cutoff}


def event_times(now: float, cutoff: float) -> list[float]:
    """Twice a day over 200 days, at odd minutes, and windows on each side of the cutoff."""
    spread = [now - 600 - i * DAY / 2 - (i * 7919) % 3600 for i in range(400)]
    edges = [cutoff - WIDTH + 5, cutoff - 2 * WIDTH + 5, cutoff + 5]  # ends at, just before and after the cutoff
    return spread + edges


# -- the whole collector ----------------------------------------------------------------------------------------------
@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    with serve(tmp_path, flush_interval_s=0.05, grace_s=0, retention_s=RETENTION) as server:
        wait_for(lambda: server.service.retention.runs >= 1)  # the start-up pass ran, over an empty store
        yield server


def feed(running: Running, times: list[float], http: httpx.Client) -> None:
    """One row a batch: the ~180 batches of the last 90 days hold fewer values per column than the KLL sketch's
    k (200), so the sketches stay exact and answers read twice can be compared exactly."""
    rng = np.random.default_rng(7)
    batches: list[Any] = []
    for i, t in enumerate(times):
        ids = [f"p{i}-{j}" for j in range(ROWS)]
        inputs, outputs = {"x": rng.normal(size=ROWS).tolist()}, {"score": rng.uniform(size=ROWS).tolist()}
        batches.append(InferenceBatch("churn", "1", t, ids, inputs, outputs, task="binary_classification"))
        batches.append(PredictSpan("churn", "1", t, 0.002 * (1 + i % 7), i % 11 != 0, ROWS))
        if i % 40 == 0:  # a second series, sketches only (no outputs: nothing for the label join)
            batches.append(InferenceBatch("fraud", "2", t, [f"f{i}"], {"amount": [float(i)]}, {}))
    running.service._sink(batches)
    labeled = [i for i in range(len(times)) if i % 2 == 0]  # labels for every other batch
    body = {
        "model": "churn",
        "ids": [f"p{i}-{j}" for i in labeled for j in range(ROWS)],
        "actuals": [int((i + j) % 3 == 0) for i in labeled for j in range(ROWS)],
    }
    assert http.post("/api/v1/actuals", json=body).json()["matched"] == len(body["ids"])


def answers(http: httpx.Client, start: float, end: float) -> dict[str, Any]:
    window = {"version": "1", "start": str(start), "end": str(end)}
    out = {
        name: http.get(f"/api/v1/models/churn/{name}", params=window).json()
        for name in ("drift", "performance", "operations")
    }
    for step in ("1h", "6h", "1d"):
        params = {**window, "metric": "mean", "feature": "x", "step": step}
        out[f"mean/{step}"] = http.get("/api/v1/models/churn/timeseries", params=params).json()
    out["models"] = http.get("/api/v1/models").json()
    assert not any("error" in answer for answer in out.values() if isinstance(answer, dict)), out
    return out


def test_a_pass_deletes_exactly_what_ended_before_the_cutoff(running: Running, tmp_path: Path) -> None:
    db = tmp_path / "collector.db"
    now = float(int(time.time()) // WIDTH * WIDTH)
    cutoff = now - RETENTION
    times = event_times(now, cutoff)
    with running.client() as http:
        reference = {"inputs": {"x": np.linspace(-3, 3, 200).tolist()}, "outputs": {"score": [0.5] * 200}}
        assert http.put("/api/v1/models/churn/reference", params={"version": "1"}, json=reference).status_code == 200
        feed(running, times, http)
        windows = expected_windows({("churn", "1"): times, ("fraud", "2"): times[::40]})
        starts = {int(t) // WIDTH * WIDTH: int(t) // WIDTH * WIDTH + WIDTH for t in times}
        # performance states have rollups as the windows do; operations states are kept per window only
        states = {("operations", "churn", "1", 0, s): end for s, end in starts.items()}
        states |= {("performance", *key): end for key, end in expected_windows({("churn", "1"): times[::2]}).items()}
        # what went in, as computed here, once the flusher has written it all
        wait_for(lambda: (window_rows(db), state_rows(db)) == (set(windows), set(states)))
        assert label_window_rows(db) == set(starts)
        recent = answers(http, cutoff, now)
        last_month = answers(http, now - 30 * DAY, now)
        old = answers(http, now - 200 * DAY, cutoff - 2 * DAY)
        stored_reference = http.get("/api/v1/models/churn/reference", params={"version": "1"}).json()
        assert recent["drift"]["rows"] > 0 and recent["performance"]["labeled"] > 0 and old["drift"]["rows"] > 0

        deleted = running.service.retention.run(now)

        assert window_rows(db) == kept(windows, cutoff)
        assert state_rows(db) == kept(states, cutoff)
        assert label_window_rows(db) == {s for s, end in starts.items() if not end < cutoff}
        assert deleted == {
            "windows": len(windows) - len(kept(windows, cutoff)),
            "states": len(states) - len(kept(states, cutoff)),
            "label_windows": sum(end < cutoff for end in starts.values()),
        }
        assert deleted["windows"] > 0 and deleted["states"] > 0 and deleted["label_windows"] > 0
        # the window ending exactly at the cutoff stays, the one before it goes
        assert ("churn", "1", 0, cutoff - WIDTH) in window_rows(db)
        assert ("churn", "1", 0, cutoff - 2 * WIDTH) not in window_rows(db)
        assert answers(http, cutoff, now) == recent
        assert answers(http, now - 30 * DAY, now) == last_month
        gone = answers(http, now - 200 * DAY, cutoff - 2 * DAY)
        assert gone["drift"]["rows"] == 0 and gone["performance"]["labeled"] == 0
        assert gone["models"] == old["models"]  # model metadata is kept
        assert http.get("/api/v1/models/churn/reference", params={"version": "1"}).json() == stored_reference
        assert running.service.retention.run(now) == dict.fromkeys(deleted, 0)  # a second pass finds nothing


# -- the service: a pass at start-up, its counts in the log, /api/v1/status and /metrics -------------------------------
def fill(path: Path, now: float, days: int = 10) -> tuple[int, int, int]:
    """One window a day for `days` days, written through the store's own methods: a sketch window (and its
    rollups), an operations state and a label counter each. Returns the rows written per table."""
    store = SQLiteStore(str(path))
    starts = [int(now - d * DAY) // WIDTH * WIDTH for d in range(1, days + 1)]
    records = []
    for start in starts:
        profile = Profile.zero()
        profile.update_from(InferenceBatch("churn", "1", start, ["a"], {"x": [1.0]}, {}))
        records.append(WindowRecord.from_profile("churn", "1", start, WIDTH, profile, "c"))
    store.write_windows(records)
    store.write_states([StateRecord(OPERATIONS, "churn", "1", s, WIDTH, _operations_blob(), "c") for s in starts])
    labels = store.labels()
    with labels.transaction() as tx:
        series = tx.series(tx.model_id("churn"), "1", "regression").series
        tx.add_window_counts({(series, start): (1, 0, 0) for start in starts})
    store.put_reference("churn", "1", b"reference", {"rows": 1})
    counts = (len(window_rows(path)), len(state_rows(path)), len(label_window_rows(path)))
    store.close()
    return counts


def _operations_blob() -> bytes:
    state = OperationsState.zero()
    state.add_spans([PredictSpan("churn", "1", 0.0, 0.01, True, 1)])
    return state.to_bytes()


def test_the_service_runs_a_pass_at_start_and_counts_it(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "collector.db"
    written = fill(db, time.time(), days=10)  # days 1..10 ago
    caplog.set_level(logging.INFO, logger="collector.retention")
    with serve(tmp_path, retention_s=5.5 * DAY) as running, running.client() as http:
        wait_for(lambda: running.service.retention.runs >= 1)
        status = http.get("/api/v1/status").json()["retention"]
        metrics = http.get("/metrics").text
    # Days 6..10 ago are gone: 5 raw windows with their 10-min, 1-h and 6-h buckets, and the 1-day buckets of
    # days 7..10; day 6's 1-day bucket ended before the cutoff or not depending on the hour the test runs (the
    # exact rule is checked in the first test). The states here are operations states: raw windows only.
    assert status["runs"] == 1 and status["errors"] == 0 and status["retention_s"] == 5.5 * DAY
    deleted = status["deleted"]
    assert deleted["label_windows"] == deleted["states"] == 5 and deleted["windows"] in (24, 25)
    assert (len(window_rows(db)), len(state_rows(db)), len(label_window_rows(db))) == (
        written[0] - deleted["windows"],
        written[1] - deleted["states"],
        written[2] - 5,
    )
    for table, n in deleted.items():
        assert re.search(rf'^predwatch_retention_deleted_total{{table="{table}"}} {n}\.0$', metrics, re.M), table
    [line] = [r.getMessage() for r in caplog.records if r.name == "collector.retention"]
    assert line.startswith(
        f"retention: deleted {deleted['windows']} windows, {deleted['states']} states, 5 label_windows that ended"
    )
    store = SQLiteStore(str(db))
    assert store.get_reference("churn", "1") == (b"reference", {"rows": 1})
    assert [m.rows for m in store.models()] == [10]  # model metadata is not retention's
    store.close()


def test_retention_off_deletes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "collector.db"
    fill(db, time.time(), days=200)
    before = (window_rows(db), state_rows(db), label_window_rows(db))
    with serve(tmp_path, retention_s=0) as running:
        retention = running.service.retention
        assert not retention.enabled and retention.run() == dict.fromkeys(("windows", "states", "label_windows"), 0)
        assert retention.health()["runs"] == 0
    assert (window_rows(db), state_rows(db), label_window_rows(db)) == before


# -- batches ----------------------------------------------------------------------------------------------------------
def test_every_batch_is_bounded_and_every_row_counted(tmp_path: Path) -> None:
    db = tmp_path / "batches.db"
    store = SQLiteStore(str(db))
    now = 1_767_225_600.0
    records = []
    for model, version in (("a", "1"), ("a", "2"), ("b", "1")):
        for d in range(30):
            start = int(now - d * DAY - 3600)
            profile = Profile.zero()
            profile.update_from(InferenceBatch(model, version, start, ["i"], {"x": [float(d)]}, {}))
            records.append(WindowRecord.from_profile(model, version, start, WIDTH, profile))
    store.write_windows(records)
    before = window_rows(db)
    limits: list[int] = []
    sweeps = store_sweeps(store, WIDTH)
    windows = sweeps["windows"]

    def recording(end_s: float, limit: int) -> int:
        limits.append(limit)
        n = windows(end_s, limit)
        assert n <= limit
        return n

    retention = Retention({**sweeps, "windows": recording}, retention_s=10 * DAY, batch_rows=7, pause_s=0)
    counts = retention.run(now)
    cutoff = now - 10 * DAY
    ends = {(m, v, tier, start): start + (tier or WIDTH) for m, v, tier, start in before}
    assert window_rows(db) == {key for key, end in ends.items() if not end < cutoff}
    assert counts["windows"] == len(before) - len(window_rows(db)) > 3 * 7
    assert max(limits) <= 7 and len(limits) >= counts["windows"] // 7
    assert retention.health()["deleted"] == counts and retention.health()["runs"] == 1
    with pytest.raises(ValueError, match="limit"):
        store.delete_windows_before(now, 0)
    store.close()


def test_a_failing_table_is_counted_and_the_others_go_on(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "collector.db"
    written = fill(db, 1_767_225_600.0, days=3)
    store = SQLiteStore(str(db))

    def broken(end_s: float, limit: int) -> int:
        raise sqlite3.OperationalError("database is locked")

    sweeps = store_sweeps(store, WIDTH)
    retention = Retention({"states": broken, "windows": sweeps["windows"]}, retention_s=1.0, pause_s=0)
    assert retention.run(1_767_225_600.0 + DAY)["windows"] > 0
    assert retention.health()["errors"] == 1 and "deleting old states failed" in caplog.text
    assert len(state_rows(db)) == written[1]
    store.close()


@pytest.mark.parametrize("sql", [DELETE_OLD_WINDOWS, DELETE_OLD])
def test_deletes_search_an_index(tmp_path: Path, sql: str) -> None:
    """The label join's delete is in label_store_sqlite.QUERIES, whose plans test_label_store_sqlite checks."""
    store = SQLiteStore(str(tmp_path / "plan.db"))
    with store.transaction() as db:
        steps = [row[3] for row in db.execute("EXPLAIN QUERY PLAN " + sql, [1] * sql.count("?"))]
    store.close()
    assert all(not step.startswith("SCAN") and "TEMP B-TREE" not in step for step in steps), steps
    assert sum(step.startswith("SEARCH") for step in steps) == 2, steps
