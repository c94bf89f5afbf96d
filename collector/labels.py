"""The label join: sampled predictions meet their late ground truth by prediction id, in either order.

    join = LabelJoin(store.labels(), on_state=states_add, ttl_s=7 * 86400, window_start=windows.window_start)
    join.add_predictions(inference_batches)     # ingest thread: buffered, written on flush() or when the buffer fills
    outcome = join.add_actuals(actuals_batch)   # API or OTLP: ActualsOutcome (accepted, matched, pending, ...)
    join.flush(final=False)                     # flusher tick: write predictions, hand on states, expire

What a prediction keeps: (model, version, id, event time, window start, label, score, prediction); the task
of its version (declared by the SDK, else implied by its outputs: `label_values.infer_task`) decides which of
label and score (classification) or prediction (regression) it needs.

Rules:
- Both directions. An actual whose prediction is not held yet waits (pending) and joins when the prediction
  arrives; a prediction waits for its actual likewise. Each is kept `ttl_s` after the collector received it,
  then dropped; a prediction dropped unlabeled counts as expired in its window, a pending actual dropped
  counts as expired for its target. Labeled predictions are kept for their TTL too: they recognise repeats.
- Versions. An actual sent with a version labels that version's prediction only; one sent without a version
  labels the prediction of that id in every version (a shadow deployment scores the same request twice),
  also of versions whose prediction arrives later while a labeled one is held. A prediction that finds
  both kinds of pending actual takes the one for its own version.
- Dedupe: first wins. A prediction is labeled at most once, by the first actual to reach it; later ones
  change nothing. An actual repeated for the same id and target counts in `duplicates` when it carries the
  same value and in `conflicts` when it carries another: either way it is ignored and the first value stays
  (a pair counted in a performance state merged across windows and collectors cannot be taken back, and
  OTLP delivers at least once, so a repeat is far likelier a retry than a correction). A new actual whose
  predictions are all labeled already by another target also counts as a duplicate. A prediction delivered
  twice is held once (`duplicate_predictions`).
- Attribution. A matched pair belongs to the window of the PREDICTION (when the model was right or wrong,
  not when the truth became known). Pairs wait as plain columns and become one performance state per
  (model, version, window), with one vectorised update, when handed to `on_state`: at every flush, before a
  performance read (`emit_states`), and whenever `max_buffer_rows` of them wait.
- Values. Labels are canonicalised as the performance state does (collector.performance_labels): True is 1,
  1.0 is 1, "1" stays a string. `problem(batch)` says why a batch cannot be joined (the API answers 422).
- Predictions are buffered in memory (at most `max_buffer_rows`, then written at once) and written at every
  flush and before any actuals are joined, so an actual never misses a prediction this process holds.
  Each write and each batch of actuals is one transaction of the store: all or nothing. A crash loses the
  buffer and the pairs not yet handed on (at most one flush interval), as it loses the open windows; a
  stop loses nothing.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from collector.label_pairs import Pairs, StateSink
from collector.label_rules import ActualsOutcome, PredictionBatch, join_actuals, join_predictions
from collector.label_store import (
    MAX_ID_LENGTH,
    LabelStore,
)
from collector.label_values import check_actuals, floats, infer_task, pad, show, storable
from collector.performance_labels import label_keys
from collector.records import ActualsBatch, InferenceBatch
from instrument import semconv

__all__ = ["ActualsOutcome", "LabelJoin"]

logger = logging.getLogger(__name__)

_RECEIVED, _MATCHED, _PENDING, _DUPLICATES, _CONFLICTS = range(5)


class LabelJoin:
    def __init__(
        self,
        store: LabelStore,
        on_state: StateSink,
        *,
        ttl_s: float,
        window_start: Callable[[float], int],
        clock: Callable[[], float] = time.time,
        max_buffer_rows: int = 50_000,
        expire_every_s: float = 60.0,
        expire_limit: int = 5000,
    ) -> None:
        if not ttl_s > 0 or max_buffer_rows < 1:
            raise ValueError("ttl_s must be positive and max_buffer_rows >= 1")
        self.store = store
        self.on_state = on_state
        self.ttl_s = ttl_s
        self.window_start = window_start
        self.clock = clock
        self.max_buffer_rows = max_buffer_rows
        self.expire_every_s = expire_every_s
        self.expire_limit = expire_limit
        self.counters: Counter[str] = Counter()  # since start, for /api/v1/status (update through _count)
        self._counters_lock = threading.Lock()
        self._buffer: list[PredictionBatch] = []
        self._buffered = 0
        self._buffer_lock = threading.Lock()
        self._write_lock = threading.Lock()  # one writer of buffered predictions or actuals at a time
        self._next_expiry = -math.inf
        self._pairs = Pairs()  # matched, committed, not yet handed to on_state
        self._pairs_lock = threading.Lock()

    # -- predictions ----------------------------------------------------------------------------------------
    def add_predictions(self, batches: Sequence[InferenceBatch]) -> None:
        """Buffer the predictions of `batches` (the ingest thread: no I/O unless the buffer is full)."""
        kept = [b for b in map(self._prepare, batches) if b is not None]
        if not kept:
            return
        with self._buffer_lock:
            self._buffer.extend(kept)
            self._buffered += sum(len(b.ids) for b in kept)
            full = self._buffered >= self.max_buffer_rows
        if full:
            self.write_predictions()

    def _prepare(self, batch: InferenceBatch) -> PredictionBatch | None:
        n = len(batch.ids)
        task = infer_task(batch.task, batch.outputs)
        if task is None or n == 0:
            self._count({"predictions_without_outputs": n})
            return None
        window = self.window_start(batch.time_s)
        out = batch.outputs
        if task == "regression":
            return PredictionBatch(batch.model, batch.version, task, window, batch.time_s, batch.ids, None, None,
                          floats(out.get(semconv.COL_PREDICTION), n))  # fmt: skip
        labels = out.get(semconv.COL_LABEL)
        return PredictionBatch(
            batch.model,
            batch.version,
            task,
            window,
            batch.time_s,
            batch.ids,
            [None] * n if labels is None else pad([storable(v, v) for v in label_keys(labels[:n])], n),
            floats(out.get(semconv.COL_SCORE), n),
            None,
        )

    def write_predictions(self) -> None:
        """Write the buffered predictions now, joining them with held actuals. On failure they go back to the
        buffer (up to 10 x max_buffer_rows; past that the oldest are dropped and counted) and the error is raised."""
        with self._write_lock:
            self._write_buffer()

    def _write_buffer(self) -> None:
        with self._buffer_lock:
            batches, self._buffer, self._buffered = self._buffer, [], 0
        if not batches:
            return
        pairs = Pairs()
        by_model: dict[str, list[PredictionBatch]] = {}
        for b in batches:
            by_model.setdefault(b.model, []).append(b)
        now = int(self.clock())
        try:
            with self.store.transaction() as tx:
                for model, group in by_model.items():
                    join_predictions(tx, model, group, now, pairs)
        except BaseException:
            self._put_back(batches)
            raise
        self._committed(pairs)

    def _put_back(self, batches: list[PredictionBatch]) -> None:
        with self._buffer_lock:
            self._buffer[:0] = batches
            self._buffered += sum(len(b.ids) for b in batches)
            while self._buffered > 10 * self.max_buffer_rows and self._buffer:
                dropped = self._buffer.pop(0)
                self._buffered -= len(dropped.ids)
                self._count({"predictions_dropped": len(dropped.ids)})

    # -- actuals --------------------------------------------------------------------------------------------
    def add_actuals(self, batch: ActualsBatch) -> ActualsOutcome:
        """Join one batch of checked actuals (see `tasks` and `check_actuals`) in one transaction: all or nothing.
        Buffered predictions are written first. Raises what the store raises."""
        with self._write_lock:
            self._write_buffer()
            outcome = ActualsOutcome(accepted=len(batch.ids))
            pairs = Pairs()
            with self.store.transaction() as tx:
                join_actuals(tx, batch, int(self.clock()), outcome, pairs)
        self._count({f"actuals_{name}": getattr(outcome, name) for name in ("matched", "pending", "duplicates")})
        self._count({"actuals_conflicts": outcome.conflicts})
        self._committed(pairs)
        return outcome

    def _count(self, counts: dict[str, int]) -> None:
        with self._counters_lock:
            self.counters.update(counts)

    def _committed(self, pairs: Pairs) -> None:
        self._count(pairs.counters)
        with self._pairs_lock:
            self._pairs.extend(pairs)
            full = self._pairs.size >= self.max_buffer_rows
        if full:
            self.emit_states()

    def emit_states(self) -> None:
        """Hand the pairs matched so far to `on_state`, one performance state per (model, version, window): on
        every flush, before a read of performance, and whenever max_buffer_rows pairs wait."""
        with self._pairs_lock:
            pairs, self._pairs = self._pairs, Pairs()
        pairs.emit(self.on_state)
        self._count(pairs.counters)

    def add_actuals_batches(self, batches: Sequence[ActualsBatch]) -> None:
        """The OTLP handler: each batch checked like an API request; one that fails its checks, or whose write
        fails, is dropped, counted and logged, and the others still go in."""
        for batch in batches:
            problem = self.problem(batch)
            if problem is not None:
                self._count({"actuals_rejected": len(batch.ids)})
                logger.warning("dropped %d actuals of model %r: %s", len(batch.ids), batch.model, problem)
                continue
            try:
                self.add_actuals(batch)
            except Exception:
                self._count({"actuals_failed": len(batch.ids)})
                logger.exception("could not join %d actuals of model %r", len(batch.ids), batch.model)

    def problem(self, batch: ActualsBatch) -> str | None:
        """Why a batch cannot be joined (bad ids or values for the model's task), None when it can."""
        if len(batch.ids) != len(batch.actuals):
            return f"{len(batch.ids)} ids but {len(batch.actuals)} actuals"
        for i, pid in enumerate(batch.ids):
            if not isinstance(pid, str) or not 0 < len(pid) <= MAX_ID_LENGTH:
                return f"ids[{i}] is {show(pid)}: ids are strings of 1 to {MAX_ID_LENGTH} characters"
        tasks = self.tasks(batch.model)
        wanted = {tasks.get(batch.version)} if batch.version is not None else set(tasks.values())
        for task in sorted(t for t in wanted if t is not None):
            problem = check_actuals(batch.actuals, task)
            if problem is not None:
                return f"{problem} (model {batch.model!r} is {task})"
        return check_actuals(batch.actuals, None)

    # -- flush, reads -----------------------------------------------------------------------------------------
    def flush(self, final: bool = False) -> None:
        """The flusher's tick: write buffered predictions, hand matched pairs on as states, and expire what is
        older than the TTL (at most every expire_every_s)."""
        try:
            self.write_predictions()
        finally:
            self.emit_states()
        now = self.clock()
        if final or now < self._next_expiry:
            return
        done = self.expire(now)
        self._next_expiry = now + (self.expire_every_s if done else 0.0)  # a backlog goes on at the next tick

    def expire(self, now: float, max_rounds: int = 10) -> bool:
        """Drop what was received more than ttl_s before `now`, `expire_limit` rows a transaction and at most
        `max_rounds` transactions (so one tick never holds the writer for long); True when nothing is left."""
        before = int(now - self.ttl_s)
        for _ in range(max_rounds):
            if self.store.expire(before, self.expire_limit) < self.expire_limit:
                return True
        return False

    def tasks(self, model: str) -> dict[str, str | None]:
        """version -> task of the versions of `model` this join has seen (buffered predictions included)."""
        with self._buffer_lock:
            buffered = {b.version: b.task for b in self._buffer if b.model == model}
        stored = self.store.tasks(model)
        return {**buffered, **{v: t for v, t in stored.items() if t is not None or v not in buffered}}

    def health(self) -> dict[str, Any]:
        with self._buffer_lock:
            buffered = self._buffered
        with self._pairs_lock:
            pairs = self._pairs.size
        with self._counters_lock:
            counters = dict(self.counters)
        return {"buffered_predictions": buffered, "buffered_pairs": pairs, "ttl_s": self.ttl_s, **counters}
