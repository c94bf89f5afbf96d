"""The label join's rules as transactions over a `label_store.LabelTx` (collector.labels states them and runs them).

with store.transaction() as tx:
    join_predictions(tx, "churn", batches, now, pairs)           # a flush of buffered predictions, one model
    join_actuals(tx, actuals_batch, now, outcome, pairs)        # one checked batch of actuals
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from collector.label_pairs import Pairs
from collector.label_store import (
    ACTUAL_COUNTERS,
    ANY_VERSION,
    MAX_ID_LENGTH,
    HeldPrediction,
    Label,
    LabelTx,
    NewActual,
    NewPrediction,
    SeriesInfo,
)
from collector.label_values import storable
from collector.performance_labels import label_keys
from collector.records import ActualsBatch

__all__ = ["ActualsOutcome", "PredictionBatch", "join_actuals", "join_predictions"]

_RECEIVED, _MATCHED, _PENDING, _DUPLICATES, _CONFLICTS = range(5)


@dataclass(slots=True)
class ActualsOutcome:
    """What became of one batch of actuals: accepted = matched + pending + duplicates + conflicts."""

    accepted: int = 0
    matched: int = 0  # actuals that labeled at least one prediction now
    pending: int = 0  # actuals held until their prediction arrives
    duplicates: int = 0  # repeats of a held actual (same value), or actuals of predictions labeled already
    conflicts: int = 0  # repeats with another value: ignored, the first value stays
    pairs: int = 0  # prediction-actual pairs formed (an actual without a version may label several versions)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(slots=True)
class PredictionBatch:
    """One inference batch as the join keeps it (columns of plain values)."""

    model: str
    version: str
    task: str
    window_s: int
    time_s: float
    ids: list[str]
    labels: list[Label | None] | None
    scores: list[float | None] | None
    predictions: list[float | None] | None


def join_predictions(tx: LabelTx, model: str, group: list[PredictionBatch], now: int, pairs: Pairs) -> None:
    """Hold a flush's predictions of one model, labeling those whose actual is pending or known (see
    collector.labels for the rules); matched pairs go to `pairs`."""
    model_id = tx.model_id(model)
    rows: dict[tuple[str, int], NewPrediction] = {}
    repeats = 0
    for b in group:
        info = tx.series(model_id, b.version, b.task)
        s, regression = info.series, (info.task or b.task) == "regression"
        for i, pid in enumerate(b.ids):
            if (pid, s) in rows:
                repeats += 1
            elif not 0 < len(pid) <= MAX_ID_LENGTH:
                pairs.counters["predictions_bad_id"] += 1
            elif regression:
                rows[pid, s] = NewPrediction(pid, s, b.window_s, b.time_s, None, None, _at(b.predictions, i))
            else:
                rows[pid, s] = NewPrediction(pid, s, b.window_s, b.time_s, _at(b.labels, i), _at(b.scores, i), None)
    any_version: dict[str, Label] = {}  # ids another version of which was labeled by an actual without version
    for held in tx.find_predictions(model_id, list({pid for pid, _ in rows})):
        if rows.pop((held.id, held.series), None) is not None:
            repeats += 1
        if held.target == ANY_VERSION and held.actual is not None:
            any_version[held.id] = held.actual
    pairs.counters["duplicate_predictions"] += repeats
    if not rows:
        return
    pending: dict[str, dict[int, Label]] = {}
    for waiting_actual in tx.find_actuals(model_id, list({pid for pid, _ in rows})):
        pending.setdefault(waiting_actual.id, {})[waiting_actual.series] = waiting_actual.actual
    insert: list[NewPrediction] = []
    used: set[tuple[str, int]] = set()
    windows: dict[tuple[int, int], list[int]] = {}
    targets: dict[tuple[int, int], list[int]] = {}
    for (pid, s), row in rows.items():
        counts = windows.setdefault((s, row.window_s), [0, 0, 0])
        counts[0] += 1
        waiting = pending.get(pid, {})
        target = s if s in waiting else ANY_VERSION if ANY_VERSION in waiting or pid in any_version else None
        if target is None:
            insert.append(row)
            continue
        actual = waiting[target] if target in waiting else any_version[pid]
        insert.append(row._replace(actual=actual, target=target))
        counts[1] += 1
        pairs.add(tx.series_info(s), row.window_s, actual, row.label, row.score, row.prediction)
        if target in waiting and (pid, target) not in used:  # a pending actual labeled its first prediction
            used.add((pid, target))
            c = targets.setdefault((model_id, target), [0] * len(ACTUAL_COUNTERS))
            c[_MATCHED] += 1
            c[_PENDING] -= 1
    tx.insert_predictions(model_id, insert, now)
    tx.delete_actuals(model_id, used)
    tx.add_window_counts(windows)
    tx.add_actual_counts(targets)
    pairs.counters["predictions_held"] += len(insert)


def join_actuals(tx: LabelTx, batch: ActualsBatch, now: int, out: ActualsOutcome, pairs: Pairs) -> None:
    """Join one checked batch of actuals (see collector.labels for the rules), counting into `out`; matched
    pairs go to `pairs`."""
    model_id = tx.model_id(batch.model)
    target = ANY_VERSION if batch.version is None else tx.series(model_id, batch.version, None).series
    values: dict[str, Label] = {}
    for pid, value, raw in zip(batch.ids, label_keys(batch.actuals), batch.actuals, strict=True):
        value = storable(value, raw)
        assert value is not None, "actuals are checked before they are joined"
        if pid in values:
            _repeat(out, values[pid], value)
        else:
            values[pid] = value
    for waiting in tx.find_actuals(model_id, list(values)):  # pending ones
        if waiting.series == target and waiting.id in values:
            _repeat(out, waiting.actual, values.pop(waiting.id))
    if not values:
        return
    windows: dict[tuple[int, int], list[int]] = {}
    matched: set[str] = set()
    infos: dict[int, SeriesInfo] = {}
    for pid, s, window, label, score, prediction, _, _ in tx.label_predictions(model_id, list(values.items()), target):
        matched.add(pid)
        counts = windows.get((s, window))
        if counts is None:
            counts = windows[s, window] = [0, 0, 0]
            infos[s] = infos.get(s) or tx.series_info(s)
        counts[1] += 1
        pairs.add(infos[s], window, values[pid], label, score, prediction)
        out.pairs += 1
    rest = [pid for pid in values if pid not in matched]
    held_by_id: dict[str, list[HeldPrediction]] = {}
    for p in tx.find_predictions(model_id, rest, None if target == ANY_VERSION else target) if rest else ():
        held_by_id.setdefault(p.id, []).append(p)
    insert: list[NewActual] = []
    for pid in rest:
        held = held_by_id.get(pid)
        if not held:
            insert.append(NewActual(pid, target, values[pid]))
            continue
        # every prediction it could label is labeled already, or label_predictions would have labeled it
        same = next((p for p in held if p.target == target), None)
        if same is not None:
            assert same.actual is not None
            _repeat(out, same.actual, values[pid])
        else:
            out.duplicates += 1
    out.matched += len(matched)
    out.pending += len(insert)
    tx.insert_actuals(model_id, insert, now)
    tx.add_window_counts(windows)
    counts = [len(matched) + len(insert), len(matched), len(insert), out.duplicates, out.conflicts, 0]
    tx.add_actual_counts({(model_id, target): counts})


def _repeat(out: ActualsOutcome, first: Label, again: Label) -> None:
    if first == again and type(first) is type(again):
        out.duplicates += 1
    else:
        out.conflicts += 1


def _at(values: list[Any] | None, i: int) -> Any:
    return None if values is None else values[i]
