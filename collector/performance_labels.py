"""Class labels as the performance state keys them: one canonical value per class, whatever type it arrived in.

- bool -> int (True is 1, False is 0: a model predicting 0/1 and actuals sent as bools agree, as in numpy and
  scikit-learn); a float with an integral value -> int (1.0 is 1: JSON clients often send numbers as floats);
  other finite floats stay floats; str stays str, cut to `MAX_LABEL_LEN` characters, case and spaces kept.
- Strings are never parsed: "1" is not 1 and "true" is not True (a class named "1" and a class 1 are two
  classes; the confusion matrix shows both, which makes such a mismatch visible instead of hiding it).
- None, NaN, +-inf and anything else (lists, dicts, bytes, ...) have no class: the row is skipped and counted.
- numpy scalars and arrays are read as the Python values they hold.

Labels sort numbers first (by value), then strings: scikit-learn's order (`np.unique`) for homogeneous labels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["MAX_LABEL_LEN", "Label", "label_key", "label_keys", "sort_key"]

Label = int | float | str
MAX_LABEL_LEN = 256
_INT_OR_NONE = {int, type(None)}
_STR_OR_NONE = {str, type(None)}


def label_key(value: Any) -> Label | None:
    """The canonical class of one value, None when it has none."""
    if isinstance(value, str):
        return value[:MAX_LABEL_LEN]
    if isinstance(value, bool | np.bool_):
        return int(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        x = float(value)
        if not math.isfinite(x):
            return None
        return int(x) if x.is_integer() else x
    return None


def label_keys(values: Sequence[Any] | np.ndarray[Any, Any]) -> list[Label | None]:
    """`label_key` of each value, with fast paths for arrays and single-type lists."""
    if isinstance(values, np.ndarray):
        if values.ndim != 1:
            raise ValueError(f"labels are one-dimensional, got shape {values.shape}")
        if values.dtype.kind in "iub":
            return values.astype(np.int64).tolist()  # type: ignore[no-any-return]
        values = values.tolist()
    seq = list(values) if not isinstance(values, list) else values
    types = set(map(type, seq))
    if types <= _INT_OR_NONE:
        return seq
    if types <= _STR_OR_NONE and all(v is None or len(v) <= MAX_LABEL_LEN for v in seq):
        return seq
    return [label_key(v) for v in seq]


def sort_key(label: Label) -> tuple[int, int | float, str]:
    if isinstance(label, str):
        return (1, 0, label)
    return (0, label, "")  # int and float compare exactly, without a float() that could overflow
