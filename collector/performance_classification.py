"""Classification performance: a mergeable state of (actual, predicted) counts and binary score histograms.

    state = ClassificationState.zero("binary_classification")
    state.update(actuals=[1, 0, True], labels=[1, 1, 1], scores=[0.9, 0.6, None])   # matched pairs of a window
    state.merge(ClassificationState.from_bytes(blob))                               # another window or replica
    classification_metrics(state)["f1"]

State: counts per (actual, predicted) pair of canonical labels (`performance_labels`), exact under merge while
the union holds at most `max_classes` labels; labels past the cap are pooled into one class shown as "_other"
(its rows still count, `other_correct` keeps how many of them were right, so accuracy stays exact). Binary
tasks also keep one `ScoreStats` per actual class (at most `max_score_classes`, the rest pooled) from which
ROC/PR, AUC, Gini, KS, log loss and Brier are read (`performance_scores`: error bounds). Multiclass scores (the
max probability only) support none of these, so multiclass states ignore scores and report them as None.

Rows: an actual without a class (None, NaN, ...) is skipped and counted in `missing_actual`; then a predicted
label without one in `missing_label`; `count` is the rest. Among counted rows of a binary state, a score of
None is `unscored`, a NaN, infinite, non-numeric or out-of-[0, 1] score is `invalid_score`, and the others are
`scored_count`.

`classification_metrics(state)` (the `metrics` of GET /api/v1/models/{m}/performance) returns every key below,
None where it cannot be computed (an empty state: count 0 and everything else None):

    count, task, positive_label, accuracy, precision, recall, f1, auc_roc, gini, ks, log_loss, brier,
    auc_roc_error_bound, gini_error_bound, ks_error_bound, scored_count,
    confusion_matrix {"labels": [...], "matrix": [[...]]}   rows are actuals, columns predictions (sorted labels)
    roc_curve {"fpr", "tpr", "thresholds"}, pr_curve {"precision", "recall", "thresholds"},
    skipped {"missing_actual", "missing_label", "unscored", "invalid_score"}

- Binary: precision, recall and f1 are floats for `positive_label`; None where their denominator is 0
  (scikit-learn's zero_division=nan). The positive label is the argument if given, else 1 when the labels are
  numbers (True counts as 1), else the greater of exactly two string labels (scikit-learn's order, and the
  SDK's `classes[1]` for scikit-learn models); otherwise None, and the metrics that need it are None.
- Multiclass: precision, recall and f1 are {"macro", "micro", "weighted"} over the labels of actuals and
  predictions together; a class with a zero denominator contributes 0 (scikit-learn's default zero_division).
"""

from __future__ import annotations

import json
import struct
from collections import Counter
from collections.abc import Iterable, KeysView, Sequence
from dataclasses import dataclass
from itertools import compress
from typing import Any, Literal

import numpy as np

from collector.performance_codec import KIND_CLASSIFICATION, Reader, pack, unpack
from collector.performance_labels import Label, label_key, label_keys, sort_key
from collector.performance_scores import FEW, ScoreStats, binary_score_metrics, score_values

__all__ = ["OTHER_LABEL", "ClassificationState", "ClassificationTask", "PerformanceConfig", "classification_metrics"]

ClassificationTask = Literal["binary_classification", "multiclass_classification"]
Key = Label | None  # None: the pooled class past max_classes (or past max_score_classes for scores)
OTHER_LABEL = "_other"
_TASKS: tuple[ClassificationTask, ...] = ("binary_classification", "multiclass_classification")
_FIXED = struct.Struct("<BIIH5Q")  # task, config, other_correct, missing_actual, missing_label, unscored, invalid
_COUNT = struct.Struct("<I")
_MAX_COUNT = 1 << 62


@dataclass(frozen=True, slots=True)
class PerformanceConfig:
    max_classes: int = 1000  # distinct labels kept per state; the rest pooled into "_other"
    score_bins: int = 10_000  # binary score histogram resolution (see performance_scores for the error)
    max_score_classes: int = 8  # actual classes with their own score histogram (binary tasks)

    def __post_init__(self) -> None:
        if not 2 <= self.max_classes <= 100_000:
            raise ValueError(f"max_classes must be in [2, 100000], got {self.max_classes}")
        if not 10 <= self.score_bins <= 1_000_000:
            raise ValueError(f"score_bins must be in [10, 1000000], got {self.score_bins}")
        if not 2 <= self.max_score_classes <= 64:
            raise ValueError(f"max_score_classes must be in [2, 64], got {self.max_score_classes}")


class ClassificationState:
    __slots__ = (
        *("task", "config", "labels", "pairs", "scores", "other_correct"),
        *("missing_actual", "missing_label", "unscored", "invalid_score"),
    )

    def __init__(self, task: ClassificationTask = "binary_classification", config: PerformanceConfig | None = None):
        if task not in _TASKS:
            raise ValueError(f"task must be one of {', '.join(_TASKS)}, got {task!r}")
        self.task: ClassificationTask = task
        self.config = config or PerformanceConfig()
        self.labels: dict[Label, None] = {}  # kept labels, first seen first
        self.pairs: dict[tuple[Key, Key], int] = {}  # (actual, predicted) -> rows
        self.scores: dict[Key, ScoreStats] = {}  # actual class -> its rows' scores (binary only)
        self.other_correct = 0  # rows in the ("_other", "_other") cell whose labels were equal
        self.missing_actual = self.missing_label = self.unscored = self.invalid_score = 0

    @classmethod
    def zero(
        cls, task: ClassificationTask = "binary_classification", config: PerformanceConfig | None = None
    ) -> ClassificationState:
        return cls(task, config)

    @property
    def count(self) -> int:
        return sum(self.pairs.values())

    @property
    def binary(self) -> bool:
        return self.task == "binary_classification"

    # -- update -------------------------------------------------------------------------------------------
    def update(
        self,
        actuals: Sequence[Any] | np.ndarray[Any, Any],
        labels: Sequence[Any] | np.ndarray[Any, Any] | None = None,
        scores: Sequence[Any] | np.ndarray[Any, Any] | None = None,
        predictions: Sequence[Any] | np.ndarray[Any, Any] | None = None,
    ) -> None:
        """Add matched rows. Raises ValueError (and adds nothing) for missing labels or unequal lengths."""
        if predictions is not None or labels is None:
            raise ValueError("a classification state takes actuals and labels (and scores), not predictions")
        n = len(actuals)
        if len(labels) != n or (scores is not None and len(scores) != n):
            raise ValueError(
                f"{n} actuals, {len(labels)} labels and {'no' if scores is None else len(scores)} scores: "
                "the lengths must be equal"
            )
        a, p = label_keys(actuals), label_keys(labels)
        s = score_values(scores, n) if self.binary and scores is not None else None
        keep: list[bool] | None = None
        if None in a or None in p:
            keep = [x is not None and y is not None for x, y in zip(a, p, strict=True)]
            n_missing_actual = a.count(None)
            self.missing_actual += n_missing_actual
            self.missing_label += n - n_missing_actual - sum(keep)
            a = [x for x, k in zip(a, keep, strict=True) if k]
            p = [y for y, k in zip(p, keep, strict=True) if k]
        self._add_pairs(Counter(zip(a, p, strict=True)).items())
        if not self.binary:
            return
        if s is None:
            self.unscored += len(a)
            return
        values, unscored = s
        if n <= FEW:  # a handful of rows (one label joined at a time): Python beats numpy's cost per operation
            rows: Iterable[tuple[float, bool]] = zip(values.tolist(), unscored.tolist(), strict=True)
            groups: dict[Key, list[float]] = {}
            for x, (v, none) in zip(a, rows if keep is None else compress(rows, keep), strict=True):
                if none:
                    self.unscored += 1
                elif 0.0 <= v <= 1.0:
                    groups.setdefault(x, []).append(v)
                else:
                    self.invalid_score += 1
            for x, group in groups.items():
                self._score_stats(self._admit(x)).add(group)
            return
        if keep is not None:
            mask = np.asarray(keep, dtype=bool)
            values, unscored = values[mask], unscored[mask]
        valid = (values >= 0.0) & (values <= 1.0)  # False for NaN
        n_unscored = int(np.count_nonzero(unscored))
        self.unscored += n_unscored
        self.invalid_score += values.size - int(np.count_nonzero(valid)) - n_unscored
        if not valid.all():
            a = [x for x, v in zip(a, valid.tolist(), strict=True) if v]
            values = values[valid]
        codes: dict[Key, int] = {}
        index = np.fromiter((codes.setdefault(x, len(codes)) for x in a), dtype=np.intp, count=len(a))
        for key, code in codes.items():
            self._score_stats(self._admit(key)).add(values if len(codes) == 1 else values[index == code])

    def _admit(self, label: Key) -> Key:
        if label is None or label in self.labels:
            return label
        if len(self.labels) < self.config.max_classes:
            self.labels[label] = None
            return label
        return None

    def _add_pairs(self, counts: Iterable[tuple[tuple[Key, Key], int]], labels: KeysView[Label] | None = None) -> None:
        """Add pair counts; `labels`: every label in them, when known (all kept already: no admission)."""
        pairs = self.pairs
        if labels is not None and self.labels.keys() >= labels:
            for key, c in counts:
                pairs[key] = pairs.get(key, 0) + c
            return
        for (x, y), c in counts:
            kx, ky = self._admit(x), self._admit(y)
            if kx is None and ky is None and x is not None and x == y:
                self.other_correct += c
            pairs[kx, ky] = pairs.get((kx, ky), 0) + c

    def _score_stats(self, key: Key) -> ScoreStats:
        stats = self.scores.get(key)
        if stats is None:
            if key is not None and sum(k is not None for k in self.scores) >= self.config.max_score_classes:
                return self._score_stats(None)
            stats = self.scores[key] = ScoreStats(self.config.score_bins)
        return stats

    # -- merge --------------------------------------------------------------------------------------------
    def merge(self, other: ClassificationState) -> None:
        """Add `other` in place: exact while the union has at most max_classes (and max_score_classes) labels."""
        if other.task != self.task or other.config != self.config:
            raise ValueError(
                f"cannot merge a {other.task} state with {other.config} into a {self.task} state with {self.config}"
            )
        self._add_pairs(other.pairs.items(), other.labels.keys())
        self.other_correct += other.other_correct
        self.missing_actual += other.missing_actual
        self.missing_label += other.missing_label
        self.unscored += other.unscored
        self.invalid_score += other.invalid_score
        for key, stats in other.scores.items():
            self._score_stats(self._admit(key)).merge(stats)

    # -- bytes --------------------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """Layout v1 (inside `performance_codec`'s envelope): task, config and counters; the labels as a JSON
        list; the pairs as index arrays (index len(labels) is "_other") and counts; the score histograms."""
        c = self.config
        labels = list(self.labels)
        index: dict[Key, int] = {label: i for i, label in enumerate(labels)}
        index[None] = len(labels)
        fixed = _FIXED.pack(
            _TASKS.index(self.task),
            *(c.max_classes, c.score_bins, c.max_score_classes),
            *(self.other_correct, self.missing_actual, self.missing_label, self.unscored, self.invalid_score),
        )
        text = json.dumps(labels).encode()
        cells = list(self.pairs.items())
        parts = [fixed, _COUNT.pack(len(text)), text, _COUNT.pack(len(cells))]
        parts.append(np.array([index[x] for (x, _), _ in cells], dtype="<u4").tobytes())
        parts.append(np.array([index[y] for (_, y), _ in cells], dtype="<u4").tobytes())
        parts.append(np.array([n for _, n in cells], dtype="<i8").tobytes())
        parts.append(_COUNT.pack(len(self.scores)))
        for key, stats in self.scores.items():
            parts += (_COUNT.pack(index[key]), stats.to_bytes())
        return pack(KIND_CLASSIFICATION, b"".join(parts))

    @classmethod
    def from_bytes(cls, data: bytes | memoryview) -> ClassificationState:
        """Raises ValueError for anything that is not a state written by this or an older version."""
        try:
            return cls._read(unpack(KIND_CLASSIFICATION, data))
        except ValueError as exc:
            raise ValueError(f"invalid ClassificationState bytes: {exc}") from exc
        except Exception as exc:  # struct.error, OverflowError, RecursionError, ...
            raise ValueError(f"invalid ClassificationState bytes: {type(exc).__name__}: {exc}") from exc

    @classmethod
    def _read(cls, body: Reader) -> ClassificationState:
        task_i, max_classes, bins, max_score, *counters = body.take(_FIXED)
        if task_i >= len(_TASKS) or any(x >= _MAX_COUNT for x in counters):
            raise ValueError("bad task or counters")
        self = cls(_TASKS[task_i], PerformanceConfig(max_classes, bins, max_score))
        self.other_correct, self.missing_actual, self.missing_label, self.unscored, self.invalid_score = counters
        labels = json.loads(body.raw(body.take(_COUNT)[0]).decode())
        if not isinstance(labels, list) or len(labels) > max_classes:
            raise ValueError("labels must be a list of at most max_classes")
        for label in labels:
            if label is None or type(label_key(label)) is not type(label) or label_key(label) != label:
                raise ValueError(f"{label!r} is not a canonical label")
        self.labels = dict.fromkeys(labels)
        if len(self.labels) != len(labels):
            raise ValueError("duplicate labels")
        keys: list[Key] = [*labels, None]
        (n_cells,) = body.take(_COUNT)
        xs, ys, ns = body.array("<u4", n_cells), body.array("<u4", n_cells), body.array("<i8", n_cells)
        if n_cells and (max(xs.max(), ys.max()) > len(labels) or ns.min() <= 0):
            raise ValueError("pair index out of range or empty pair")
        if ns.sum(dtype=np.float64) >= _MAX_COUNT:
            raise ValueError("pair counts too large")
        used = np.zeros(len(keys), dtype=bool)
        used[xs], used[ys] = True, True
        if not used[:-1].all():
            raise ValueError("a label in no pair")
        cells = zip(map(keys.__getitem__, xs.tolist()), map(keys.__getitem__, ys.tolist()), strict=True)
        self.pairs = dict(zip(cells, ns.tolist(), strict=True))
        if len(self.pairs) != n_cells:
            raise ValueError("duplicate pairs")
        if self.other_correct > self.pairs.get((None, None), 0):
            raise ValueError("other_correct exceeds the pooled cell")
        (n_scores,) = body.take(_COUNT)
        if n_scores and not self.binary:
            raise ValueError("score histograms in a multiclass state")
        for _ in range(n_scores):
            (i,) = body.take(_COUNT)
            if i > len(labels) or keys[i] in self.scores:
                raise ValueError("score class out of range or repeated")
            self.scores[keys[i]] = ScoreStats.read(body, bins)
        body.done()
        if self.scores:
            if sum(k is not None for k in self.scores) > max_score:
                raise ValueError("more score classes than max_score_classes")
            rows = np.bincount(xs, weights=ns.astype(np.float64), minlength=len(keys))  # per actual class
            untracked = self.count - sum(rows[keys.index(k)] for k in self.scores if k is not None)
            if any(st.n > (untracked if k is None else rows[keys.index(k)]) for k, st in self.scores.items()):
                raise ValueError("more scores than rows for a class")  # None pools the classes without their own
        return self

    def __repr__(self) -> str:
        return f"ClassificationState(task={self.task!r}, count={self.count}, labels={len(self.labels)})"


# -- metrics ------------------------------------------------------------------------------------------------
def classification_metrics(
    state: ClassificationState, positive_label: Any = None, max_curve_points: int = 200
) -> dict[str, Any]:
    """The performance metrics of `state` (see the module docstring for the keys and their shape)."""
    out: dict[str, Any] = dict.fromkeys(
        (
            *("count", "task", "positive_label", "accuracy", "precision", "recall", "f1"),
            *("auc_roc", "gini", "ks", "log_loss", "brier", "auc_roc_error_bound", "gini_error_bound"),
            *("ks_error_bound", "scored_count", "confusion_matrix", "roc_curve", "pr_curve"),
        )
    )
    count = state.count
    out.update(
        count=count,
        task=state.task,
        scored_count=sum(stats.n for stats in state.scores.values()),
        skipped={
            "missing_actual": state.missing_actual,
            "missing_label": state.missing_label,
            "unscored": state.unscored,
            "invalid_score": state.invalid_score,
        },
    )
    positive = _positive(state, positive_label) if state.binary else None
    out["positive_label"] = positive
    if state.binary and positive is not None:
        negatives = [stats for key, stats in state.scores.items() if key != positive]
        scored = binary_score_metrics(state.scores.get(positive), negatives, state.config.score_bins, max_curve_points)
        out.update(scored)
    if count == 0:
        return out
    keys: list[Key] = [*sorted(state.labels, key=sort_key)]
    if any(None in pair for pair in state.pairs):
        keys.append(None)
    where = {key: i for i, key in enumerate(keys)}
    matrix = np.zeros((len(keys), len(keys)), dtype=np.int64)
    for (x, y), n in state.pairs.items():
        matrix[where[x], where[y]] = n
    tp = np.diagonal(matrix).copy()
    if None in where:
        tp[where[None]] = state.other_correct
    predicted, actual = matrix.sum(axis=0), matrix.sum(axis=1)
    out["accuracy"] = int(tp.sum()) / count
    out["confusion_matrix"] = {
        "labels": [OTHER_LABEL if key is None else key for key in keys],
        "matrix": matrix.tolist(),
    }
    if state.binary:
        if positive is not None and positive in where:
            i = where[positive]
            t, pp, ap = int(tp[i]), int(predicted[i]), int(actual[i])
            out.update(
                precision=t / pp if pp else None,
                recall=t / ap if ap else None,
                f1=2 * t / (pp + ap) if pp + ap else None,
            )
        return out
    with np.errstate(divide="ignore", invalid="ignore"):
        per_class = {
            "precision": np.where(predicted > 0, tp / predicted, 0.0),
            "recall": np.where(actual > 0, tp / actual, 0.0),
            "f1": np.where(predicted + actual > 0, 2 * tp / (predicted + actual), 0.0),
        }
    micro = {
        "precision": int(tp.sum()) / int(predicted.sum()),
        "recall": int(tp.sum()) / int(actual.sum()),
        "f1": 2 * int(tp.sum()) / int(predicted.sum() + actual.sum()),
    }
    weights = actual / actual.sum()
    for name, values in per_class.items():
        out[name] = {"macro": float(values.mean()), "micro": micro[name], "weighted": float(values @ weights)}
    return out


def _positive(state: ClassificationState, given: Any) -> Label | None:
    if given is not None:
        return label_key(given)
    labels = list(state.labels)
    if all(not isinstance(label, str) for label in labels):
        return 1
    if len(labels) == 2 and all(isinstance(label, str) for label in labels):
        return max(labels, key=sort_key)
    return None
