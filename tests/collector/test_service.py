from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from collector.ingest import Overloaded
from collector.records import ActualsBatch, InferenceBatch, MetricPoint, PredictSpan
from collector.service import CollectorService
from collector.settings import CollectorSettings
from collector.state_kinds import OPERATIONS, PERFORMANCE
from collector.store import WindowRecord
from collector.store_sqlite import SQLiteStore

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z, a window boundary


class Clock:
    def __init__(self, now: float = T0 + 10) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FlakyStore(SQLiteStore):
    """A real SQLite store whose writes fail while `failing` is set."""

    failing = False

    def write_windows(self, records: Sequence[WindowRecord]) -> None:
        if self.failing:
            raise OSError("disk full")
        super().write_windows(records)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FlakyStore]:
    s = FlakyStore(str(tmp_path / "service.db"))
    yield s
    s.close()


def settings(**overrides: Any) -> CollectorSettings:
    return CollectorSettings(grpc=None, collector_id="test", grace_s=0, **overrides)


def batch(
    time_s: float, rows: int = 10, model: str = "churn", version: str = "3", shift: float = 0.0
) -> InferenceBatch:
    x = np.arange(rows, dtype=np.float64) + shift
    return InferenceBatch(
        model, version, time_s, [f"id{i}" for i in range(rows)], {"x": x, "c": ["a"] * rows}, {"score": x.tolist()}
    )


def wait_for(condition: Any, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_batches_reach_windows_and_closed_windows_reach_the_store(store: FlakyStore) -> None:
    clock = Clock()
    service = CollectorService(store, settings(), clock=clock)
    service.start()
    try:
        service.ingestor.submit([batch(T0 + 1), batch(T0 + 61, rows=5)], size_bytes=100)
        wait_for(lambda: service.ingestor.stats().queue_records == 0)
        assert service.read_profile("churn", "3", T0, T0 + 120).rows == 15  # open windows are visible at once
        assert service.flush_due() == 0  # nothing has closed yet
        clock.now = T0 + 60
        assert service.flush_due() == 1
        assert store.read_profile("churn", "3", T0, T0 + 60).rows == 10
        assert service.read_profile("churn", "3", T0, T0 + 120).rows == 15  # each row counted once
        assert [(m.model, m.version, m.rows) for m in service.models()] == [("churn", "3", 15)]
    finally:
        assert service.stop()
    assert store.read_profile("churn", "3", T0, T0 + 120).rows == 15  # stop wrote the open window
    assert service.windows_written == 2


def broken(records: list[Any]) -> None:
    raise RuntimeError("handler bug")


def test_other_records_go_to_their_handler_or_are_counted(store: FlakyStore) -> None:
    service = CollectorService(store, settings(), clock=Clock())
    seen: list[Any] = []
    service.add_handler(ActualsBatch, seen.extend)
    actuals = ActualsBatch("churn", "3", T0, ["id1"], [1])
    span = PredictSpan("churn", "3", T0, 0.01, True, 1)
    service.add_handler(PredictSpan, broken)  # a failing handler is logged and counted
    service._sink([actuals, span, batch(T0)])
    assert seen == [actuals]
    assert service.handler_errors == 1
    service._handlers.pop(PredictSpan)
    service._sink([span, span])
    assert service.ignored == {"PredictSpan": 2}
    assert service.windows.open_windows == 1


def test_a_failing_store_loses_nothing(store: FlakyStore) -> None:
    clock = Clock()
    service = CollectorService(store, settings(), clock=clock)
    service._sink([batch(T0 + 1)])
    clock.now = T0 + 60
    store.failing = True
    assert service.flush_due() == 0
    assert service.write_errors == 1
    assert service.read_profile("churn", "3", T0, T0 + 60).rows == 10  # reopened, still readable
    service._sink([batch(T0 + 2, rows=3)])  # late data joins the reopened window
    store.failing = False
    assert service.flush_due() == 1
    assert store.read_profile("churn", "3", T0, T0 + 60).rows == 13


def test_stop_drains_the_queue_and_writes_open_windows(store: FlakyStore) -> None:
    service = CollectorService(store, settings(), clock=Clock())
    service.start()
    service.ingestor.submit([batch(T0 + i) for i in range(50)], size_bytes=1000)
    assert service.stop()
    assert store.read_profile("churn", "3", T0, T0 + 60).rows == 500
    with pytest.raises(Overloaded):  # stopped: the receivers answer 503
        service.ingestor.submit([batch(T0)], size_bytes=1)
    assert service.stop()  # idempotent


def test_stop_with_a_dead_store_reports_the_loss(store: FlakyStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("collector.service.time.sleep", lambda s: None)
    service = CollectorService(store, settings(), clock=Clock())
    service._sink([batch(T0 + 1)])
    store.failing = True
    assert not service.stop()
    assert (service.lost_rows, service.write_errors) == (10, 3)
    assert service.read_profile("churn", "3", T0, T0 + 60).rows == 10  # still in memory


def test_the_flusher_writes_closed_windows_on_its_own(store: FlakyStore) -> None:
    service = CollectorService(store, settings(window_s=1, flush_interval_s=0.02))  # the real clock
    service.start()
    try:
        service.ingestor.submit([batch(time.time())], size_bytes=10)
        wait_for(lambda: service.windows_written >= 1)
        assert store.read_profile("churn", "3", time.time() - 60, time.time() + 1).rows == 10
        assert service.health()["windows"]["written"] >= 1
    finally:
        service.stop()
    with pytest.raises(RuntimeError, match="once"):
        service.start()


def test_versions_newest_first_and_health(store: FlakyStore) -> None:
    clock = Clock()
    service = CollectorService(store, settings(), clock=clock)
    service._sink([batch(T0 + 1, version="1"), batch(T0 + 2, model="other")])
    clock.now = T0 + 200
    service.flush_due()
    service._sink([batch(T0 + 130, version="2"), batch(T0 + 131, version="1")])
    assert [(v.version, v.rows) for v in service.versions("churn")] == [("2", 10), ("1", 20)]
    assert service.versions("nope") == []
    health = service.health()
    assert health["windows"]["open"] == 2 and health["windows"]["written"] == 2
    assert health["store"]["write_windows"]["count"] == 1
    assert set(health["ingest"]) >= {"rows", "queue_records", "rejected", "overloaded", "ignored"}


def test_references_are_decoded_once_per_upload(store: FlakyStore) -> None:
    from collector.reference_build import reference_from_columns

    service = CollectorService(store, settings(), clock=Clock())
    assert service.reference("churn", "3") is None
    first = reference_from_columns("churn", "3", {"x": [1.0, 2.0, 3.0]})
    store.put_reference("churn", "3", first.to_bytes(), {})
    decoded = service.reference("churn", "3")
    assert decoded == first and service.reference("churn", "3") is decoded  # cached
    second = reference_from_columns("churn", "3", {"x": [5.0, 6.0]})
    store.put_reference("churn", "3", second.to_bytes(), {})
    assert service.reference("churn", "3") == second  # a new upload is read again
    store.put_reference("churn", "4", b"garbage", {})
    with pytest.raises(ValueError, match="not a predwatch reference"):
        service.reference("churn", "4")


def test_flushers_run_on_the_timer_and_once_finally(store: FlakyStore) -> None:
    service = CollectorService(store, settings(window_s=1, flush_interval_s=0.02))
    calls: list[bool] = []
    service.add_flusher(calls.append)
    service.add_flusher(lambda final: broken([]))  # a failing flusher is counted, the others still run
    service.start()
    wait_for(lambda: len(calls) >= 2)
    assert service.stop()
    assert set(calls[:-1]) == {False} and calls[-1] is True
    assert service.handler_errors >= 3


class FlakyStatesStore(FlakyStore):
    """State writes fail too while `failing` is set."""

    def write_states(self, records: Sequence[Any]) -> None:
        if self.failing:
            raise OSError("disk full")
        super().write_states(records)


def test_predictions_actuals_and_operations_reach_their_states(tmp_path: Path) -> None:
    store = FlakyStatesStore(str(tmp_path / "states.db"))
    clock = Clock()
    service = CollectorService(store, settings(), clock=clock)
    labeled = InferenceBatch(
        "churn", "3", T0 + 1, ["a", "b"], {"x": [1.0, 2.0]}, {"label": [1, 0]}, task="binary_classification"
    )
    span = PredictSpan("churn", "3", T0 + 2, 0.01, True, 2, resource={"service.instance.id": "pod-1"})
    cpu = MetricPoint("process.cpu.utilization", "gauge", T0 + 3, 0.5, resource={"service.instance.id": "pod-1"})
    service._sink([labeled, span, cpu, ActualsBatch("churn", None, T0 + 5, ["a", "b"], [1, 1])])
    assert service.windows.read_profile(store, "churn", "3", T0, T0 + 60).rows == 2  # the windows saw them first
    assert service.labels.counters["actuals_matched"] == 2  # the buffer was written before the actuals joined
    service.labels.flush()
    [(start, state)] = service.states.read(PERFORMANCE, "churn", "3", T0, T0 + 60)
    assert (start, state.count) == (T0, 2)
    assert [s for s, _ in service.states.read(OPERATIONS, "", "", T0, T0 + 60)] == [T0]  # the process state
    health = service.health()
    assert health["labels"]["pairs"] == 2 and health["states"]["open"] == 3
    store.failing = True
    clock.now = T0 + 120
    service._flush_states(final=False)
    assert service.health()["states"]["write_errors"] == 1
    store.failing = False
    assert service.stop()  # the stop writes what the failed tick could not
    assert [s for s, _ in store.read_states(PERFORMANCE, "churn", "3", T0, T0 + 60)] == [T0]
    assert len(store.read_states(OPERATIONS, "churn", "3", T0, T0 + 60)) == 1
    store.close()


def test_states_that_cannot_be_written_at_stop_are_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("collector.service.time.sleep", lambda s: None)
    store = FlakyStatesStore(str(tmp_path / "states.db"))
    service = CollectorService(store, settings(), clock=Clock())
    service._sink([PredictSpan("churn", "3", T0 + 2, 0.01, True, 2)])
    store.failing = True
    assert not service.stop()
    assert service.lost_states == 1
    store.close()
