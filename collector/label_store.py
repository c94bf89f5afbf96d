"""What the label join keeps between restarts, as a contract: collector.labels holds the rules, a store the rows.

Rows: sampled predictions, held for their time to live whether labeled or not (a labeled one carries its
actual and the target it was sent for, which recognises a repeated actual and a re-delivered prediction),
pending actuals (sent before their prediction arrived; removed once they label one), and counters per
prediction window and per actuals target. A series is one (model, version) with its task; an actual sent
without a version targets `ANY_VERSION`.

    with store.transaction() as tx:                 # all or nothing; serialised against every other writer
        model_id = tx.model_id("churn")
        series = tx.series(model_id, "3", "binary_classification")
        labeled = tx.label_predictions(model_id, [("a1", 1), ("a2", 0)], ANY_VERSION)   # the ones labeled now
        tx.insert_actuals(model_id, [NewActual("a3", ANY_VERSION, 1)], received_s=now)      # pending
    store.expire(before_s=now - ttl, limit=5000)    # one bounded transaction; call again while it returns limit
    store.delete_windows_before(cutoff, width_s=60, limit=5000)      # retention of the per-window counters

`collector.label_store_sqlite.SQLiteLabelStore` is the embedded store. A PostgreSQL store shared by several
collectors implements the same methods over the same tables, each transaction SERIALIZABLE (or locking the ids
it reads with SELECT ... FOR UPDATE), so a label that reaches another replica than its prediction still joins
exactly once. Ids are strings of 1 to `MAX_ID_LENGTH` characters; every method takes and returns them as given.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import NamedTuple, Protocol

__all__ = [
    "ACTUAL_COUNTERS",
    "ANY_VERSION",
    "MAX_ID_LENGTH",
    "HeldActual",
    "HeldPrediction",
    "Label",
    "LabelStore",
    "LabelTx",
    "NewActual",
    "NewPrediction",
    "SeriesInfo",
    "WindowCounts",
]

Label = int | float | str  # a canonical class or a regression target (collector.performance_labels.label_key)
ANY_VERSION = 0  # the series of an actual sent without a version: it labels that id in every version
MAX_ID_LENGTH = 256
ACTUAL_COUNTERS = ("received", "matched", "pending", "duplicates", "conflicts", "expired")


class SeriesInfo(NamedTuple):
    series: int
    model: str
    version: str
    task: str | None


class HeldPrediction(NamedTuple):
    id: str
    series: int
    window_s: int  # start of the window the prediction was made in: its label is attributed there
    label: Label | None
    score: float | None
    prediction: float | None
    actual: Label | None  # None until labeled
    target: int | None  # the target of the actual that labeled it


class NewPrediction(NamedTuple):
    id: str
    series: int
    window_s: int
    time_s: float  # event time
    label: Label | None
    score: float | None
    prediction: float | None
    actual: Label | None = None
    target: int | None = None


class HeldActual(NamedTuple):
    """A pending actual."""

    id: str
    series: int  # ANY_VERSION or the series of the version it was sent for
    actual: Label


class NewActual(NamedTuple):
    id: str
    series: int
    actual: Label


class WindowCounts(NamedTuple):
    """Predictions of one series made in one window: held (ever stored), matched (labeled), expired unlabeled."""

    window_s: int
    predictions: int
    matched: int
    expired: int


class LabelTx(Protocol):
    def model_id(self, model: str) -> int:
        """The model's id, created on first use."""

    def series(self, model_id: int, version: str, task: str | None) -> SeriesInfo:
        """The (model, version) series, created on first use; a task given where none was stored is kept."""

    def series_info(self, series: int) -> SeriesInfo: ...

    def find_predictions(self, model_id: int, ids: Sequence[str], series: int | None = None) -> list[HeldPrediction]:
        """Held predictions of these ids (of one series, or of every version when `series` is None)."""

    def find_actuals(self, model_id: int, ids: Sequence[str]) -> list[HeldActual]:
        """Pending actuals of these ids, whatever their target."""

    def label_predictions(
        self, model_id: int, actuals: Sequence[tuple[str, Label]], target: int
    ) -> list[HeldPrediction]:
        """Label the unlabeled held predictions of these (id, actual) pairs (of every version for ANY_VERSION,
        else of the target series) and return them as they are now. Each id at most once."""

    def insert_predictions(self, model_id: int, rows: Sequence[NewPrediction], received_s: int) -> None:
        """Hold new predictions (none of them is held yet), labeled or not."""

    def insert_actuals(self, model_id: int, rows: Sequence[NewActual], received_s: int) -> None:
        """Hold new pending actuals (none of them is pending yet for its target)."""

    def delete_actuals(self, model_id: int, keys: Iterable[tuple[str, int]]) -> None:
        """Drop pending (id, target) actuals that have labeled a prediction."""

    def add_window_counts(self, deltas: Mapping[tuple[int, int], Sequence[int]]) -> None:
        """Add (predictions, matched, expired) to the counters of each (series, window start)."""

    def add_actual_counts(self, deltas: Mapping[tuple[int, int], Sequence[int]]) -> None:
        """Add to the counters of each (model_id, target), in the order of ACTUAL_COUNTERS (pending may go down)."""


class LabelStore(Protocol):
    def transaction(self) -> AbstractContextManager[LabelTx]: ...

    def expire(self, before_s: int, limit: int) -> int:
        """Drop up to `limit` predictions and `limit` pending actuals received before `before_s`, counting the
        unlabeled predictions and the actuals as expired; returns the larger of the two numbers dropped (call
        again while it equals `limit`)."""

    def delete_windows_before(self, end_s: float, width_s: int, limit: int) -> int:
        """Retention: delete up to `limit` per-window counters (`window_counts`) of windows of width `width_s` that
        end before `end_s` (start + width_s < end_s), in one transaction; returns how many (call again while it
        equals `limit`). Held predictions, pending actuals and the actuals counters are left to `expire`."""

    def tasks(self, model: str) -> dict[str, str | None]:
        """version -> task of every series of `model` (empty for a model never seen)."""

    def window_counts(self, model: str, version: str, start_s: float, end_s: float, width_s: int) -> list[WindowCounts]:
        """Counters of the windows (of width `width_s`) overlapping [start_s, end_s), oldest first."""

    def actual_counts(self, model: str) -> dict[str | None, dict[str, int]]:
        """ACTUAL_COUNTERS per target version (None: actuals sent without a version)."""

    def held(self) -> tuple[int, int]:
        """(predictions, pending actuals) held now: counts every row, for benchmarks and tests."""
