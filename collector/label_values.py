"""What the label join accepts as actuals and keeps of a prediction's outputs, as plain values.

check_actuals([1, 0, "yes"], "binary_classification")     # None when fine, else why not (for a 4xx)
infer_task(None, ["label", "score"])                       # "multiclass_classification"
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from collector.label_store import Label
from instrument import semconv

__all__ = ["check_actuals", "floats", "infer_task", "pad", "show", "storable"]

_CLASSIFICATION = ("binary_classification", "multiclass_classification")


def infer_task(task: str | None, outputs: Iterable[str]) -> str | None:
    """The batch's task, else what its output columns imply: `prediction` regression, `label` multiclass (the
    metrics of multiclass are right for two classes too; declare the task to get binary precision/recall)."""
    if task in semconv.TASKS:
        return task
    names = set(outputs)
    if semconv.COL_LABEL in names:
        return "multiclass_classification"
    if semconv.COL_PREDICTION in names:
        return "regression"
    return None


def check_actuals(values: Sequence[Any], task: str | None) -> str | None:
    """Why `values` cannot be actuals of a model of `task` (None: they can; None task: any finite scalar)."""
    for i, v in enumerate(values):
        what = f"actuals[{i}] is {show(v)}"
        if v is None or isinstance(v, float) and not math.isfinite(v):
            return f"{what}: send only known outcomes (no null, NaN or infinity)"
        if not isinstance(v, bool | int | float | str):
            return f"{what}: an actual is a number, a string or a boolean"
        if task == "regression" and (isinstance(v, bool | str)):
            return f"{what}, but a regression model's actuals are numbers"
        if task in _CLASSIFICATION and isinstance(v, float) and not v.is_integer():
            return f"{what}, but a classifier's actuals are class labels (strings, integers or booleans)"
    return None


def show(v: Any) -> str:
    """A value as an error message names it."""
    if isinstance(v, str):
        return repr(v[:40] + "..." if len(v) > 40 else v) + " (a string)"
    return "null" if v is None else f"{v!r} ({type(v).__name__})"


def storable(value: Label | None, raw: Any) -> Label | None:
    """`value`, as a float when it is an integer beyond the 64 bits a store keeps (1e20 as a class or a target)."""
    if type(value) is int and not -(2**63) <= value < 2**63:
        return float(raw)
    return value


def floats(column: Any, n: int) -> list[float | None] | None:
    """The first n values of a column as finite floats, None for anything else (and for missing rows)."""
    if column is None:
        return None
    values = column[:n].tolist() if hasattr(column, "tolist") else list(column[:n])
    out: list[float | None] = [
        float(v) if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) else None
        for v in values
    ]
    return pad(out, n)


def pad(values: list[Any], n: int) -> list[Any]:
    return values if len(values) >= n else values + [None] * (n - len(values))
