"""The collector's pipeline: receivers -> Ingestor -> WindowAggregator -> store, with a flusher on a timer.

    service = CollectorService(store, settings)
    service.start()                       # the ingest, flusher and retention threads
    otlp_routes(service.ingestor, ...)    # receivers submit records to service.ingestor
    service.read_profile("churn", "3", start_s, end_s)      # stored windows + open ones
    service.stop()                        # SIGTERM: drain the queue, write every open window, stop the threads

Records other than inference batches (actuals, predict spans, metric points) go to the handler registered for
their type with `add_handler` (label join, operations metrics); without one they are counted in `ignored` and
dropped. A handler registered for InferenceBatch sees the batches too, after the windows have. State of their
own reaches the store through `add_flusher(flush)`: `flush(False)` on every tick, `flush(True)` once at stop,
after the queue has drained. Built in: `labels` (collector.labels, the label join: inference batches and
actuals), `operations` (metric points and predict spans), both folding into `states` (collector.state_windows:
performance and operations per window, written after the flushers on every tick and at stop). A handler,
flusher or store that fails is logged and counted, never fatal: the windows (and states) a failed write held
reopen and are written at the next flush.
`reference(model, version)` decodes a stored reference once per upload; `models()`/`versions()` merge the
store's model table with the open windows. `retention` (collector.retention) deletes stored per-window data
older than `settings.retention_s` at start and then hourly, on its own thread, a bounded batch per transaction.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from collector.ingest import Ingestor
from collector.labels import LabelJoin
from collector.operations import OperationsState
from collector.operations_ingest import OperationsIngest, StateKey
from collector.otlp_extract import Record
from collector.performance import PerformanceState
from collector.records import ActualsBatch, InferenceBatch, MetricPoint, PredictSpan
from collector.reference import ReferenceProfile
from collector.retention import Retention, store_sweeps
from collector.settings import CollectorSettings
from collector.sketches import ColumnKey, Profile
from collector.state_kinds import OPERATIONS, PERFORMANCE
from collector.state_windows import StateWindows
from collector.store import ModelInfo, Store
from collector.windows import WindowAggregator

__all__ = ["CollectorService", "Handler"]

logger = logging.getLogger(__name__)

Handler = Callable[[list[Any]], None]
_STOP_ATTEMPTS = 3
_REFERENCE_CACHE = 64  # decoded reference profiles kept (a 20-column one is ~0.5 MB of floats)


class CollectorService:
    def __init__(self, store: Store, settings: CollectorSettings, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.settings = settings
        self.windows = WindowAggregator(
            width_s=settings.window_s,
            config=settings.sketch,
            clock=clock,
            grace_s=settings.grace_s,
            collector_id=settings.collector_id,
        )
        self.ingestor = Ingestor(
            self._sink, max_pending_bytes=settings.queue_bytes, max_pending_records=settings.queue_records
        )
        self._handlers: dict[type, Handler] = {}
        self._flushers: list[Callable[[bool], None]] = []
        self.ignored: Counter[str] = Counter()  # records without a handler, by type name
        self.handler_errors = 0
        self.windows_written = 0
        self.write_errors = 0
        self.lost_rows = 0  # rows of windows that could not be written at stop
        self._write_calls = 0
        self._write_seconds = 0.0
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        self._lock = threading.Lock()  # start/stop
        self._stopped = False
        self._last_error_log = -math.inf
        self._references: OrderedDict[tuple[str, str], tuple[bytes, ReferenceProfile]] = OrderedDict()
        self._cache_lock = threading.Lock()
        self.lost_states = 0  # per-window states that could not be written at stop
        self.states = StateWindows(
            store, settings.window_s, grace_s=settings.grace_s, collector_id=settings.collector_id, clock=clock
        )
        self.labels = LabelJoin(
            store.labels(),
            self._add_performance,
            ttl_s=settings.label_ttl_s,
            window_start=self.windows.window_start,
            clock=clock,
        )
        self.operations = OperationsIngest(settings.window_s, clock=clock)
        self.add_handler(InferenceBatch, self.labels.add_predictions)
        self.add_handler(ActualsBatch, self.labels.add_actuals_batches)
        self.add_handler(MetricPoint, lambda points: self._add_operations(self.operations.fold(points=points)))
        self.add_handler(PredictSpan, lambda spans: self._add_operations(self.operations.fold(spans=spans)))
        self.add_flusher(self.labels.flush)
        self.retention = Retention(store_sweeps(store, settings.window_s), settings.retention_s, clock=clock)

    def _add_performance(self, model: str, version: str, window_s: int, state: PerformanceState) -> None:
        self.states.add(PERFORMANCE, model, version, window_s, state)

    def _add_operations(self, parts: dict[StateKey, OperationsState]) -> None:
        for (model, version, start), part in parts.items():
            self.states.add(OPERATIONS, model, version, start, part)

    def add_handler(self, record_type: type, handler: Handler) -> None:
        """Send records of `record_type` (ActualsBatch, PredictSpan, MetricPoint) to `handler`, a list at a time."""
        self._handlers[record_type] = handler

    def add_flusher(self, flush: Callable[[bool], None]) -> None:
        """Call `flush(final)` on every flusher tick (final=False) and once in stop() once the ingest queue has
        drained (final=True): other per-window state (operations, the label join) reaches the store the same way."""
        self._flushers.append(flush)

    # -- life cycle -------------------------------------------------------------------------------------------
    def start(self) -> None:
        with self._lock:
            if self._flusher is not None or self._stopped:
                raise RuntimeError("CollectorService can be started once")
            self.ingestor.start()
            self._flusher = threading.Thread(target=self._flush_loop, name="predwatch-flusher", daemon=True)
            self._flusher.start()
            self.retention.start()

    def stop(self, timeout_s: float = 30.0) -> bool:
        """Refuse new records, deliver the queued ones, write every open window. True when nothing was lost.

        Idempotent; safe to call without start()."""
        with self._lock:
            if self._stopped:
                return self.lost_rows == 0
            self._stopped = True
            self.retention.stop(timeout_s)  # first: the final writes below should not wait behind its batches
            drained = self.ingestor.stop(drain=True, timeout_s=timeout_s)
            self._stop.set()
            if self._flusher is not None:
                self._flusher.join(timeout_s)
            self._run_flushers(final=True)
            for attempt in range(_STOP_ATTEMPTS):
                if self._flush_states(final=True):
                    break
                if attempt + 1 < _STOP_ATTEMPTS:
                    time.sleep(0.5)
            else:
                self.lost_states = self.states.open_states
                logger.error("could not write %d per-window states to the store at shutdown", self.lost_states)
            for attempt in range(_STOP_ATTEMPTS):
                records = self.windows.drain_all()
                if not records:
                    break
                if self._write(records):
                    break
                if attempt + 1 < _STOP_ATTEMPTS:
                    time.sleep(0.5)
            else:
                pending = self.windows.drain_all()
                self.windows.failed(pending)  # back in memory: reads still see them until the process ends
                self.lost_rows += sum(r.rows for r in pending)
                logger.error(
                    "could not write %d windows (%d rows) to the store at shutdown", len(pending), self.lost_rows
                )
            return drained and self.lost_rows == 0 and self.lost_states == 0 and self.ingestor.stats().dropped == 0

    # -- ingest -----------------------------------------------------------------------------------------------
    def _sink(self, records: list[Record]) -> None:
        others: defaultdict[type, list[Any]] = defaultdict(list)
        add = self.windows.add
        observed = InferenceBatch in self._handlers
        for record in records:
            if type(record) is InferenceBatch:
                add(record)  # False (rejected past max_open_windows) is counted by the aggregator
                if observed:
                    others[InferenceBatch].append(record)
            else:
                others[type(record)].append(record)
        for record_type, batch in others.items():
            handler = self._handlers.get(record_type)
            if handler is None:
                self.ignored[record_type.__name__] += len(batch)
                continue
            try:
                handler(batch)
            except Exception:
                self.handler_errors += 1
                self._log_error("the %s handler failed", record_type.__name__)

    # -- flush ------------------------------------------------------------------------------------------------
    def flush_due(self, now: float | None = None) -> int:
        """Write the windows that have closed; returns how many were written (0 also when the write failed)."""
        records = self.windows.due(now)
        return len(records) if records and self._write(records) else 0

    def _write(self, records: Sequence[Any]) -> bool:
        began = time.perf_counter()
        try:
            self.store.write_windows(records)
        except Exception:
            self.windows.failed(records)
            self.write_errors += 1
            self._log_error("writing %d windows to the store failed; they will be retried", len(records))
            return False
        finally:
            self._write_calls += 1
            self._write_seconds += time.perf_counter() - began
        self.windows.committed(records)
        self.windows_written += len(records)
        return True

    def _flush_loop(self) -> None:
        interval = min(self.settings.flush_interval_s, max(self.settings.window_s / 4, 0.05))
        while not self._stop.wait(interval):
            try:
                self.flush_due()
            except Exception:  # never let the flusher die: the next tick retries
                self._log_error("flushing windows failed")
            self._run_flushers(final=False)
            self._flush_states(final=False)

    def _flush_states(self, final: bool) -> bool:
        try:
            self.states.flush(final)
        except Exception:  # counted in states.write_errors
            self._log_error("writing per-window states to the store failed; they will be retried")
            return False
        return True

    def _run_flushers(self, final: bool) -> None:
        for flush in self._flushers:
            try:
                flush(final)
            except Exception:
                self.handler_errors += 1
                self._log_error("a flusher failed (final=%s)", final)

    def _log_error(self, message: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self._last_error_log >= 60.0:
            self._last_error_log = now
            logger.exception(message, *args)

    # -- reads ------------------------------------------------------------------------------------------------
    def read_profile(
        self, model: str, version: str, start_s: float, end_s: float, columns: Sequence[ColumnKey] | None = None
    ) -> Profile:
        return self.windows.read_profile(self.store, model, version, start_s, end_s, columns)

    def models(self) -> list[ModelInfo]:
        """Every (model, version) seen, stored or only in open windows, rows counted once."""
        stored, live = self.windows.consistently(lambda: (self.store.models(), self.windows.models()))
        merged: dict[tuple[str, str], ModelInfo] = {(m.model, m.version): m for m in stored}
        for m in live:
            seen = merged.get((m.model, m.version))
            if seen is not None:
                m = ModelInfo(
                    m.model,
                    m.version,
                    seen.rows + m.rows,
                    min(seen.first_seen, m.first_seen),
                    max(seen.last_seen, m.last_seen),
                )
            merged[(m.model, m.version)] = m
        return [merged[key] for key in sorted(merged)]

    def reference(self, model: str, version: str) -> ReferenceProfile | None:
        """The stored reference profile (None without one); decoded once per upload, not per read. Raises
        ValueError for a stored blob that cannot be read."""
        found = self.store.get_reference(model, version)
        if found is None:
            return None
        blob = found[0]
        key = (model, version)
        with self._cache_lock:
            hit = self._references.get(key)
            if hit is not None and hit[0] == blob:
                self._references.move_to_end(key)
                return hit[1]
        profile = ReferenceProfile.from_bytes(blob)
        with self._cache_lock:
            self._references[key] = (blob, profile)
            while len(self._references) > _REFERENCE_CACHE:
                self._references.popitem(last=False)
        return profile

    def versions(self, model: str) -> list[ModelInfo]:
        """The versions of `model`, newest (most recently first seen) first."""
        found = [m for m in self.models() if m.model == model]
        return sorted(found, key=lambda m: (m.first_seen, m.version), reverse=True)

    def health(self) -> dict[str, Any]:
        stats = self.ingestor.stats()
        return {
            "ingest": {
                "accepted": stats.accepted,
                "rows": stats.rows,
                "values": stats.values,
                "rejected": stats.rejected,
                "invalid": stats.invalid,
                "overloaded": stats.overloaded,
                "dropped": stats.dropped,
                "queue_records": stats.queue_records,
                "queue_bytes": stats.queue_bytes,
                "sink_errors": stats.sink_errors,
                "ignored": dict(self.ignored),
            },
            "windows": {
                "open": self.windows.open_windows,
                "written": self.windows_written,
                "write_errors": self.write_errors,
                "rejected_rows": self.windows.rejected_rows,
                "width_s": self.settings.window_s,
            },
            "store": {"write_windows": {"count": self._write_calls, "sum_s": self._write_seconds}},
            "states": {
                "open": self.states.open_states,
                "written": self.states.written,
                "write_errors": self.states.write_errors,
            },
            "labels": self.labels.health(),
            "retention": self.retention.health(),
            "operations": {"skipped": dict(self.operations.skipped), "dropped": dict(self.operations.deltas.dropped)},
        }
