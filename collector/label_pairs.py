"""Matched (prediction, actual) pairs, turned into one performance state per window when handed on::

    pairs = Pairs()
    pairs.add(series_info, window_s, actual, label, score, prediction)    # per matched pair
    pending.extend(pairs)     # once the transaction that matched them has committed
    pending.emit(on_state)    # on_state(model, version, window_s, state): one vectorised update per window

Why pairs wait as plain columns rather than states: a binary state holds a 10,000-bin score histogram per
class (160 KB), and a batch of labels for a day of predictions touches hundreds of windows. Built once per
flush tick, each window costs one state and one update however many batches labeled it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from collector.label_store import Label, SeriesInfo
from collector.performance import PerformanceState, zero_state

__all__ = ["Pairs", "StateSink"]

StateSink = Callable[[str, str, int, PerformanceState], None]
_Key = tuple[int, int]  # series, window start


class Pairs:
    def __init__(self) -> None:
        self.counters: Counter[str] = Counter()
        self.size = 0  # pairs held
        self._columns: dict[_Key, tuple[list[Label], list[Any], list[Any]]] = {}
        self._series: dict[int, SeriesInfo] = {}  # series ids are the store's: stable once committed

    def add(
        self,
        series: SeriesInfo,
        window_s: int,
        actual: Label,
        label: Label | None,
        score: float | None,
        prediction: float | None,
    ) -> None:
        key = (series.series, window_s)
        columns = self._columns.get(key)
        if columns is None:
            if series.task is None:  # a series gets its task from its first predictions: this does not happen
                self.counters["pairs_without_task"] += 1
                return
            columns = self._columns[key] = ([], [], [])
            self._series[series.series] = series
        actuals, outputs, scores = columns
        self.size += 1
        actuals.append(actual)
        if series.task == "regression":
            outputs.append(prediction)
        else:
            outputs.append(label)
            scores.append(score)

    def extend(self, other: Pairs) -> None:
        """Take the pairs (not the counters) of `other`."""
        self._series.update(other._series)
        for key, (actuals, outputs, scores) in other._columns.items():
            mine = self._columns.get(key)
            if mine is None:
                self._columns[key] = (actuals, outputs, scores)
            else:
                mine[0].extend(actuals)
                mine[1].extend(outputs)
                mine[2].extend(scores)
        self.size += other.size
        other._columns = {}
        other.size = 0

    def emit(self, on_state: StateSink) -> None:
        """One state per (model, version, window) to `on_state`, which owns it from then on."""
        for (series, window), (actuals, outputs, scores) in self._columns.items():
            model, version, task = self._series[series][1:]
            assert task is not None
            state = zero_state(task)
            if task == "regression":
                state.update(actuals, predictions=outputs)
            else:
                state.update(actuals, labels=outputs, scores=scores)
            self.counters["pairs"] += len(actuals)
            on_state(model, version, window, state)
        self._columns.clear()
        self.size = 0
