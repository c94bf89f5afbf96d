"""What the collector keeps between restarts: window profiles, model versions seen, reference profiles, per-window
states of other kinds (performance, operations: `StateRecord`) and the label join's tables (`labels()`).

`Store` is the contract; `store_sqlite.SQLiteStore` is the embedded default and a PostgreSQL store shared by
several collectors implements the same methods. Several collectors may each write a *partial* window (the
same model, version and start, each with its own `collector_id`): a store keeps or merges them so that every
read merges all of them, and a read over a range equals what one collector would have seen (counts exactly,
sketches within their error). Writing the same (window, collector_id) twice adds the two parts, as happens
when late data reopens a window that was already flushed.

Ranges are half-open `[start_s, end_s)` in Unix seconds; a read includes every window that overlaps the range
(a window is never split). Profiles read back are fresh objects the caller may mutate.

Retention (collector.retention) deletes rows by their end: a window, rollup bucket or state of width w that
starts at s goes once s + w < the cutoff, so a read of any range starting at or after the cutoff answers as
before. Each delete call is one bounded transaction; model metadata (`models()`) and references are kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from collector.label_store import LabelStore
from collector.sketches import ColumnKey, Profile

__all__ = ["ModelInfo", "StateRecord", "Store", "StoreError", "WindowRecord"]


class StoreError(Exception):
    """A store could not do what was asked (unreadable data, incompatible schema); the message says why."""


@dataclass(frozen=True, slots=True)
class WindowRecord:
    """One closed (or partial) tumbling window of one model version, as one collector saw it."""

    model: str
    version: str
    start_s: int
    width_s: int
    rows: int
    profile: bytes  # Profile.to_bytes()
    collector_id: str = ""
    first_s: float | None = None  # event times of the first and last row; None: the window's bounds
    last_s: float | None = None

    @property
    def end_s(self) -> int:
        return self.start_s + self.width_s

    @classmethod
    def from_profile(
        cls,
        model: str,
        version: str,
        start_s: int,
        width_s: int,
        profile: Profile,
        collector_id: str = "",
        first_s: float | None = None,
        last_s: float | None = None,
    ) -> WindowRecord:
        return cls(model, version, start_s, width_s, profile.rows, profile.to_bytes(), collector_id, first_s, last_s)


@dataclass(frozen=True, slots=True)
class StateRecord:
    """One window's mergeable state of a `kind` (see collector.state_kinds) for one (model, version), as one
    collector saw it. Operations keep their process-level state under model "" and version ""."""

    kind: str
    model: str
    version: str
    start_s: int
    width_s: int
    blob: bytes  # the state's to_bytes()
    collector_id: str = ""

    @property
    def end_s(self) -> int:
        return self.start_s + self.width_s


@dataclass(frozen=True, slots=True)
class ModelInfo:
    model: str
    version: str
    rows: int
    first_seen: float  # Unix seconds
    last_seen: float


class Store(Protocol):
    def write_windows(self, records: Sequence[WindowRecord]) -> None:
        """Store windows atomically (all or none); a second write of the same window and collector adds to it."""

    def read_profile(
        self, model: str, version: str, start_s: float, end_s: float, columns: Iterable[ColumnKey] | None = None
    ) -> Profile:
        """All windows overlapping [start_s, end_s) merged (an empty Profile when there are none).

        `columns` limits which column sketches are decoded and merged (the others are absent)."""

    def window_profiles(
        self,
        model: str,
        version: str,
        start_s: float,
        end_s: float,
        columns: Iterable[ColumnKey] | None = None,
        step_s: int | None = None,
    ) -> list[tuple[int, Profile]]:
        """Per-window profiles overlapping the range, oldest first, partial windows merged per start.

        `step_s` None gives the stored windows; a rollup width (see the store's `tiers`) gives coarser points."""

    def models(self) -> list[ModelInfo]: ...

    def newest_version(self, model: str) -> str | None:
        """The version of `model` first seen most recently (None for an unknown model)."""

    def put_reference(self, model: str, version: str, blob: bytes, meta: Mapping[str, Any]) -> None:
        """Set (replace) the reference profile of a model version; `meta` must be JSON-serialisable."""

    def get_reference(self, model: str, version: str) -> tuple[bytes, dict[str, Any]] | None: ...

    def write_states(self, records: Sequence[StateRecord]) -> None:
        """Add each state to the stored one of its (kind, model, version, start, collector_id), all or none."""

    def read_states(self, kind: str, model: str, version: str, start_s: float, end_s: float) -> list[tuple[int, bytes]]:
        """(window start, blob) of every stored state overlapping [start_s, end_s), one per collector, oldest first."""

    def read_state_pieces(
        self, kind: str, model: str, version: str, start_s: float, end_s: float, step_s: int | None = None
    ) -> list[tuple[int, bytes]]:
        """(start, blob) of stored rows, windows and rollup buckets, that together hold every state overlapping
        [start_s, end_s) exactly once, in no particular order: merged, they equal the merge of `read_states`.
        With `step_s` no row holds windows of two step-wide buckets (aligned to the epoch), so a row belongs to
        the bucket of its start. ValueError for a step_s below 1."""

    def delete_windows_before(self, end_s: float, limit: int) -> int:
        """Delete up to `limit` stored windows, rollups of every tier included, that end before `end_s`
        (start + width < end_s), oldest first within a series, in one transaction; returns how many (call again
        while it equals `limit`). ValueError for a limit below 1."""

    def delete_states_before(self, end_s: float, limit: int) -> int:
        """The same for the per-window states of every kind (performance, operations)."""

    def labels(self) -> LabelStore:
        """The label join's tables in this store (collector.label_store)."""

    def close(self) -> None: ...
