"""The bounded hand-off between the OTLP receivers and whatever consumes records.

    ingestor = Ingestor(sink=windows.add, max_pending_bytes=256 << 20, max_pending_records=100_000)
    ingestor.start()
    ingestor.submit(extracted.records, size_bytes=len(body), rejected=extracted.rejected)   # or raises Overloaded
    ...
    ingestor.stop(drain=True)   # on SIGTERM: everything accepted reaches the sink

Receivers decode and extract on the request's own thread, before submitting: partial_success must name the
rejected records in the response, a bad request is answered 400 before it costs queue space, and the queue then
holds compact records rather than raw bodies. One consumer thread hands everything pending to `sink` in one call
(amortising the sink's per-call cost); a sink that raises is logged and counted and the thread carries on.

The queue is bounded twice: by records and by bytes (the decompressed request size, a cheap proxy for the
records' memory). Past either bound `submit` raises Overloaded, which the receivers answer with HTTP 503 +
Retry-After or gRPC UNAVAILABLE, both retried by OTLP exporters. A request is always accepted into an empty
queue, so one body above `max_pending_bytes` cannot be refused forever.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from collector.otlp_decode import DEFAULT_MAX_BYTES
from collector.otlp_extract import Record
from collector.records import ActualsBatch, InferenceBatch, MetricPoint, PredictSpan

__all__ = ["IngestStats", "Ingestor", "Overloaded", "ReceiverSettings", "Sink"]

logger = logging.getLogger(__name__)

Sink = Callable[[list[Record]], None]

_KINDS: dict[type, str] = {
    InferenceBatch: "inference",
    ActualsBatch: "actuals",
    PredictSpan: "span",
    MetricPoint: "metric",
}
_LOG_EVERY_S = 60.0


@dataclass(frozen=True, slots=True)
class ReceiverSettings:
    """What the OTLP receivers need from the collector's configuration."""

    ingest_tokens: tuple[str, ...] = ()  # bearer tokens accepted on OTLP; empty: no authentication
    max_body_bytes: int = DEFAULT_MAX_BYTES  # cap on a request body, compressed and decompressed
    decode_threads: int = 2  # concurrent decodes per receiver: bounds the memory of bodies in flight

    def __post_init__(self) -> None:
        if self.max_body_bytes <= 0:
            raise ValueError(f"max_body_bytes must be positive, got {self.max_body_bytes}")
        if self.decode_threads <= 0:
            raise ValueError(f"decode_threads must be positive, got {self.decode_threads}")


class Overloaded(Exception):
    """The queue is full (or the ingestor is stopping): retry after `retry_after_s` seconds."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"collector overloaded, retry after {retry_after_s:g} s")
        self.retry_after_s = retry_after_s

    @property
    def retry_after_header(self) -> str:
        return str(max(1, math.ceil(self.retry_after_s)))


@dataclass(frozen=True, slots=True)
class IngestStats:
    """A snapshot of the ingest counters (monotonic, since start) and gauges (queue_*)."""

    accepted: dict[str, int] = field(default_factory=dict)  # records by kind: inference, actuals, span, metric
    rows: int = 0  # inference rows accepted
    values: int = 0  # feature and output values accepted
    rejected: dict[str, int] = field(default_factory=dict)  # records, by reason (partial_success)
    invalid: dict[str, int] = field(default_factory=dict)  # whole requests refused: decode, too_large, ...
    overloaded: int = 0  # requests refused with 503 / UNAVAILABLE
    sink_calls: int = 0
    sink_errors: int = 0
    dropped: int = 0  # records discarded by stop(drain=False) or a stop timeout
    queue_records: int = 0
    queue_bytes: int = 0
    max_records: int = 0
    max_bytes: int = 0


class Ingestor:
    def __init__(
        self,
        sink: Sink,
        *,
        max_pending_bytes: int = 256 * 1024 * 1024,
        max_pending_records: int = 100_000,
        retry_after_s: float = 1.0,
    ) -> None:
        if max_pending_bytes <= 0 or max_pending_records <= 0:
            raise ValueError("max_pending_bytes and max_pending_records must be positive")
        if retry_after_s <= 0:
            raise ValueError(f"retry_after_s must be positive, got {retry_after_s}")
        self._sink = sink
        self.max_pending_bytes = max_pending_bytes
        self.max_pending_records = max_pending_records
        self.retry_after_s = retry_after_s
        self._cond = threading.Condition()
        self._queue: deque[tuple[Sequence[Record], int]] = deque()
        self._pending_records = 0  # queued plus handed to the sink and not yet returned
        self._pending_bytes = 0
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._accepted: Counter[str] = Counter()
        self._rejected: Counter[str] = Counter()
        self._invalid: Counter[str] = Counter()
        self._rows = self._values = self._overloaded = 0
        self._sink_calls = self._sink_errors = self._dropped = 0
        self._last_error_log = -math.inf

    # --- producer side (receiver threads) -------------------------------------------------------------------

    def check_capacity(self) -> None:
        """Raise Overloaded now if a submit would be refused: lets receivers shed load before decoding."""
        with self._cond:
            if self._full(1, 1):  # room for at least one more record and byte
                self._overloaded += 1
                raise Overloaded(self.retry_after_s)

    def submit(
        self,
        records: Sequence[Record],
        *,
        size_bytes: int,
        rejected: Mapping[str, int] | None = None,
        rows: int = 0,
        values: int = 0,
    ) -> None:
        """Queue `records` for the sink and count the request's rejects; never blocks. Raises Overloaded."""
        with self._cond:
            if records:
                if self._full(len(records), size_bytes):
                    self._overloaded += 1
                    raise Overloaded(self.retry_after_s)
                self._queue.append((records, size_bytes))
                self._pending_records += len(records)
                self._pending_bytes += size_bytes
                for record in records:
                    self._accepted[_KINDS.get(type(record), "other")] += 1
                self._rows += rows
                self._values += values
                self._cond.notify()
            if rejected:
                self._rejected.update(rejected)

    def count_invalid(self, reason: str) -> None:
        """Count a whole request refused before extraction (decode, too_large, unsupported_media_type, ...)."""
        with self._cond:
            self._invalid[reason] += 1

    def _full(self, records: int, size_bytes: int) -> bool:
        if self._stopping:
            return True
        if not self._pending_records:
            return False
        return (
            self._pending_records + records > self.max_pending_records
            or self._pending_bytes + size_bytes > self.max_pending_bytes
        )

    # --- consumer side --------------------------------------------------------------------------------------

    def start(self) -> None:
        with self._cond:
            if self._thread is not None:
                raise RuntimeError("Ingestor already started")
            self._thread = threading.Thread(target=self._run, name="predwatch-ingest", daemon=True)
            self._thread.start()

    def stop(self, drain: bool = True, timeout_s: float | None = 30.0) -> bool:
        """Refuse new records, then deliver what is queued (drain=True) or drop it. True if the thread ended."""
        with self._cond:
            self._stopping = True
            if not drain:
                self._drop_queue()
            self._cond.notify_all()
            thread = self._thread
        if thread is None:
            return True
        thread.join(timeout_s)
        if thread.is_alive():
            with self._cond:
                self._drop_queue()
            return False
        return True

    def _drop_queue(self) -> None:
        dropped = sum(len(records) for records, _ in self._queue)
        self._dropped += dropped
        self._pending_records -= dropped
        self._pending_bytes -= sum(size for _, size in self._queue)
        self._queue.clear()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if not self._queue:
                    return
                batches = list(self._queue)
                self._queue.clear()
            records: list[Record] = [record for batch, _ in batches for record in batch]
            try:
                self._sink(records)
            except Exception:
                self._log_sink_error()
                ok = False
            else:
                ok = True
            with self._cond:
                self._sink_calls += 1
                self._sink_errors += not ok
                self._pending_records -= len(records)
                self._pending_bytes -= sum(size for _, size in batches)

    def _log_sink_error(self) -> None:
        now = time.monotonic()
        if now - self._last_error_log >= _LOG_EVERY_S:  # the first failure, then at most one a minute
            self._last_error_log = now
            logger.exception("ingest sink failed; its records are lost (%d failures so far)", self._sink_errors + 1)

    # --- health ---------------------------------------------------------------------------------------------

    def stats(self) -> IngestStats:
        with self._cond:
            return IngestStats(
                accepted=dict(self._accepted),
                rows=self._rows,
                values=self._values,
                rejected=dict(self._rejected),
                invalid=dict(self._invalid),
                overloaded=self._overloaded,
                sink_calls=self._sink_calls,
                sink_errors=self._sink_errors,
                dropped=self._dropped,
                queue_records=self._pending_records,
                queue_bytes=self._pending_bytes,
                max_records=self.max_pending_records,
                max_bytes=self.max_pending_bytes,
            )
