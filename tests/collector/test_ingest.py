from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest

from collector.ingest import Ingestor, Overloaded, ReceiverSettings
from collector.otlp_extract import Record
from collector.records import ActualsBatch, InferenceBatch, MetricPoint, PredictSpan


def inference(rows: int = 2) -> InferenceBatch:
    ids = [str(i) for i in range(rows)]
    return InferenceBatch(model="m", version="1", time_s=1.0, ids=ids, inputs={"x": [1.0] * rows}, outputs={})


class Sink:
    """Collects records; `gate` blocks it (a slow store), `fail` makes it raise."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.calls = 0
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.fail = False

    def __call__(self, records: list[Record]) -> None:
        self.entered.set()
        self.gate.wait(10)
        self.calls += 1
        if self.fail:
            raise RuntimeError("store down")
        self.records.extend(records)


@pytest.fixture
def sink() -> Sink:
    return Sink()


@pytest.fixture
def make(sink: Sink) -> Iterator[type[Ingestor]]:
    started: list[Ingestor] = []

    def factory(**kwargs: object) -> Ingestor:
        ingestor = Ingestor(sink, **kwargs)  # type: ignore[arg-type]
        ingestor.start()
        started.append(ingestor)
        return ingestor

    yield factory  # type: ignore[misc]
    sink.gate.set()
    for ingestor in started:
        ingestor.stop(drain=False, timeout_s=5)


def test_records_reach_the_sink_and_are_counted(make: type[Ingestor], sink: Sink) -> None:
    ingestor = make()
    ingestor.submit([inference(3)], size_bytes=100, rows=3, values=3)
    ingestor.submit(
        [ActualsBatch(model="m", version=None, time_s=1.0, ids=["0"], actuals=[1]), _span(), _metric()],
        size_bytes=50,
        rejected={"bad_ids": 2},
    )
    ingestor.submit([], size_bytes=10, rejected={"bad_ids": 1, "missing_model": 1})
    assert ingestor.stop(drain=True)
    assert len(sink.records) == 4
    stats = ingestor.stats()
    assert stats.accepted == {"inference": 1, "actuals": 1, "span": 1, "metric": 1}
    assert (stats.rows, stats.values) == (3, 3)
    assert stats.rejected == {"bad_ids": 3, "missing_model": 1}
    assert (stats.queue_records, stats.queue_bytes, stats.dropped, stats.sink_errors) == (0, 0, 0, 0)
    assert stats.sink_calls >= 1


def _span() -> PredictSpan:
    return PredictSpan(model="m", version="1", time_s=1.0, duration_s=0.01, ok=True, batch_size=1)


def _metric() -> MetricPoint:
    return MetricPoint(name="predwatch.predictions", kind="sum", time_s=1.0, value=1.0)


def test_bounded_by_records(make: type[Ingestor], sink: Sink) -> None:
    sink.gate.clear()
    ingestor = make(max_pending_records=3, retry_after_s=2.5)
    ingestor.submit([inference()], size_bytes=1)
    assert sink.entered.wait(5)  # the consumer holds the first batch: it still counts as pending
    ingestor.submit([inference(), inference()], size_bytes=1)
    with pytest.raises(Overloaded) as info:
        ingestor.submit([inference()], size_bytes=1)
    assert info.value.retry_after_s == 2.5 and info.value.retry_after_header == "3"
    with pytest.raises(Overloaded):
        ingestor.check_capacity()  # full: 3 of 3
    ingestor.submit([], size_bytes=1, rejected={"bad_ids": 1})  # nothing to queue: always fine
    stats = ingestor.stats()
    assert (stats.overloaded, stats.queue_records, stats.queue_bytes) == (2, 3, 2)
    sink.gate.set()
    assert ingestor.stop(drain=True)
    assert len(sink.records) == 3


def test_bounded_by_bytes_but_an_empty_queue_takes_anything(make: type[Ingestor], sink: Sink) -> None:
    sink.gate.clear()
    ingestor = make(max_pending_bytes=1000)
    ingestor.submit([inference()], size_bytes=5000)  # bigger than the bound, but the queue is empty
    assert sink.entered.wait(5)
    with pytest.raises(Overloaded):
        ingestor.submit([inference()], size_bytes=1)
    sink.gate.set()
    assert ingestor.stop(drain=True)
    assert len(sink.records) == 1


def test_a_failing_sink_is_logged_counted_and_survived(
    make: type[Ingestor], sink: Sink, caplog: pytest.LogCaptureFixture
) -> None:
    sink.fail = True
    ingestor = make()
    with caplog.at_level(logging.ERROR, logger="collector.ingest"):
        ingestor.submit([inference()], size_bytes=1)
        _wait(lambda: ingestor.stats().sink_errors == 1)
        ingestor.submit([inference()], size_bytes=1)
        _wait(lambda: ingestor.stats().sink_errors == 2)
    assert caplog.text.count("ingest sink failed") == 1  # then at most once a minute
    sink.fail = False
    ingestor.submit([inference()], size_bytes=1)
    assert ingestor.stop(drain=True)
    assert len(sink.records) == 1
    assert ingestor.stats().queue_records == 0


def test_stop_drains_then_refuses(make: type[Ingestor], sink: Sink) -> None:
    sink.gate.clear()
    ingestor = make()
    for _ in range(5):
        ingestor.submit([inference()], size_bytes=1)
    threading.Timer(0.05, sink.gate.set).start()
    assert ingestor.stop(drain=True, timeout_s=5)
    assert len(sink.records) == 5
    with pytest.raises(Overloaded):
        ingestor.submit([inference()], size_bytes=1)


def test_stop_without_drain_drops_and_counts(make: type[Ingestor], sink: Sink) -> None:
    sink.gate.clear()
    ingestor = make()
    ingestor.submit([inference()], size_bytes=1)
    assert sink.entered.wait(5)
    ingestor.submit([inference(), inference()], size_bytes=7)
    threading.Timer(0.05, sink.gate.set).start()
    assert ingestor.stop(drain=False, timeout_s=5)
    stats = ingestor.stats()
    assert (len(sink.records), stats.dropped, stats.queue_records, stats.queue_bytes) == (1, 2, 0, 0)


def test_stop_timeout_drops_what_is_left(make: type[Ingestor], sink: Sink) -> None:
    sink.gate.clear()
    ingestor = make()
    ingestor.submit([inference()], size_bytes=1)
    assert sink.entered.wait(5)
    ingestor.submit([inference()], size_bytes=1)
    assert not ingestor.stop(drain=True, timeout_s=0.05)
    assert ingestor.stats().dropped == 1


def test_invalid_requests_are_counted(make: type[Ingestor]) -> None:
    ingestor = make()
    ingestor.count_invalid("decode")
    ingestor.count_invalid("decode")
    ingestor.count_invalid("too_large")
    assert ingestor.stats().invalid == {"decode": 2, "too_large": 1}


def test_configuration_errors() -> None:
    with pytest.raises(ValueError):
        Ingestor(lambda records: None, max_pending_records=0)
    with pytest.raises(ValueError):
        Ingestor(lambda records: None, retry_after_s=0)
    with pytest.raises(ValueError):
        ReceiverSettings(max_body_bytes=0)
    with pytest.raises(ValueError):
        ReceiverSettings(decode_threads=0)
    ingestor = Ingestor(lambda records: None)
    assert ingestor.stop()  # never started
    ingestor = Ingestor(lambda records: None)
    ingestor.start()
    with pytest.raises(RuntimeError):
        ingestor.start()
    ingestor.stop()


def _wait(predicate: object, timeout_s: float = 5.0) -> None:
    event = threading.Event()
    for _ in range(int(timeout_s / 0.01)):
        if predicate():  # type: ignore[operator]
            return
        event.wait(0.01)
    raise AssertionError("condition not met in time")
