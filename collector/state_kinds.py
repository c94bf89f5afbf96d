"""The kinds of per-window state kept beside the profile windows, and how each is decoded, copied and merged.

    KINDS[PERFORMANCE].from_bytes(blob)          # collector.performance: ClassificationState | RegressionState
    merge_blobs(OPERATIONS, [stored, part])      # the store's read-merge-write: one blob holding both

Both kinds are exact under merge (see their modules), so a window's state may be written in any number of
parts, by any number of collectors, and read back as one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from collector.operations import OperationsState
from collector.performance import PerformanceState, merge_states, state_from_bytes

__all__ = ["KINDS", "OPERATIONS", "PERFORMANCE", "MergeableState", "StateKind", "kind", "merge_blobs"]

PERFORMANCE = "performance"
OPERATIONS = "operations"


class MergeableState(Protocol):
    def to_bytes(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class StateKind:
    name: str
    from_bytes: Callable[[bytes], Any]
    copy: Callable[[Any], Any]  # a new state equal to the argument, sharing nothing with it
    merge: Callable[[Any, Any], None]  # add the second state into the first; ValueError when they cannot merge


def _copy_performance(state: PerformanceState) -> PerformanceState:
    copy = merge_states([state])
    assert copy is not None
    return copy


def _merge_performance(total: PerformanceState, part: PerformanceState) -> None:
    if type(total) is not type(part):
        raise ValueError(f"cannot merge a {type(part).__name__} into a {type(total).__name__}")
    total.merge(part)  # type: ignore[arg-type]  # same type, checked above


def _merge_operations(total: OperationsState, part: OperationsState) -> None:
    total.merge(part)


KINDS: dict[str, StateKind] = {
    PERFORMANCE: StateKind(PERFORMANCE, state_from_bytes, _copy_performance, _merge_performance),
    OPERATIONS: StateKind(OPERATIONS, OperationsState.from_bytes, OperationsState.copy, _merge_operations),
}


def kind(name: str) -> StateKind:
    found = KINDS.get(name)
    if found is None:
        raise ValueError(f"unknown state kind {name!r}; known: {', '.join(KINDS)}")
    return found


def merge_blobs(name: str, blobs: Sequence[bytes]) -> bytes:
    """One blob holding every state in `blobs` (at least one). ValueError for unreadable or unmergeable blobs."""
    k = kind(name)
    total = k.from_bytes(blobs[0])
    for blob in blobs[1:]:
        k.merge(total, k.from_bytes(blob))
    data: bytes = total.to_bytes()
    return data
