"""Model outputs normalised into the columns the collector relies on (DESIGN.md, "Output normalisation").

- binary_classification: a 1-D float array is the positive-class score -> `score` and `label`
  (score >= threshold); an (n, 2) probability array -> `score` = column 1; integer, bool or string outputs
  -> `label` only, as given. Labels from scores are `classes[0]`/`classes[1]` when `classes` is given,
  else 0/1; a NaN score has no label (None).
- multiclass_classification: an (n, k) probability array -> `label` (argmax, named by `classes`) and
  `score` (the max probability); 1-D outputs -> `label`.
- regression: `prediction` (an (n, k) array -> `prediction_0..`).
- no task: columns named by `outputs=`, else a 1-D float output is `prediction`, any other 1-D output
  `label`, and 2-D outputs `output_0..`.
A dict of columns or a DataFrame keeps its own column names whatever the task.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from instrument import semconv
from instrument._inputs import Columns, UnsupportedInput, column_values
from instrument._values import array_values, clean_list, clean_value, tensor_array
from instrument.semconv import COL_LABEL, COL_PREDICTION, COL_SCORE

__all__ = ["output_columns"]

_SCALARS = frozenset({float, int, bool, str})


def _as_array(obj: Any, max_len: int) -> np.ndarray[Any, Any]:
    module = type(obj).__module__.partition(".")[0]
    if module == "torch":
        return tensor_array(obj)
    if module == "pandas":
        if isinstance(obj.dtype, np.dtype) or obj.dtype.kind == "f" or not obj.hasnans:
            return obj.to_numpy()  # type: ignore[no-any-return]
        # nullable ints/bools, strings, categories with missing values: labels with None, not NaN scores
        values = np.empty(len(obj), dtype=object)
        values[:] = column_values(obj, max_len)
        return values
    if isinstance(obj, np.ndarray):
        return obj
    if isinstance(obj, list | tuple) and obj and isinstance(obj[0], list | tuple | np.ndarray):
        if len({len(r) for r in obj}) > 1:
            raise UnsupportedInput("ragged_outputs", "rows of the output have different lengths")
        return np.asarray(obj)
    arr = np.asarray(obj)
    if arr.dtype.kind == "U" and isinstance(obj, list | tuple) and not all(isinstance(v, str) for v in obj):
        return np.asarray(obj, dtype=object)  # numpy would turn [1, "a"] into strings
    return arr


def _labels(
    index: np.ndarray[Any, Any], classes: Sequence[Any] | None, max_len: int
) -> list[Any]:  # index: integer class positions
    if classes is None:
        return index.tolist()  # type: ignore[no-any-return]
    table = np.asarray(clean_list(list(classes), max_len), dtype=object)
    return table[index].tolist()  # type: ignore[no-any-return]


def _named(arr: np.ndarray[Any, Any], names: Sequence[str] | None, prefix: str, max_len: int) -> Columns:
    if arr.ndim == 1:
        return {names[0] if names else prefix: array_values(arr, max_len)}
    width = arr.shape[1]
    labels = list(names) if names is not None and len(names) == width else [f"{prefix}_{i}" for i in range(width)]
    return {name: array_values(arr[:, i], max_len) for i, name in enumerate(labels)}


def _column(value: Any, max_len: int) -> list[Any]:
    """One entry of a dict output: a sequence is a column, anything else (0-d arrays and tensors too) one value."""
    if isinstance(value, list | tuple):
        return clean_list(value, max_len)
    module = type(value).__module__.partition(".")[0]
    if module == "torch" or isinstance(value, np.ndarray):
        arr = tensor_array(value) if module == "torch" else value
        return array_values(arr.reshape(-1), max_len) if arr.ndim <= 1 else clean_list(arr.tolist(), max_len)
    if module == "pandas" and getattr(value, "ndim", 0) == 1:
        return column_values(value, max_len)
    if isinstance(value, np.generic) or not hasattr(value, "tolist"):
        return [clean_value(value, max_len)]
    listed = value.tolist()
    return clean_list(listed, max_len) if isinstance(listed, list) else [clean_value(listed, max_len)]


def output_columns(
    obj: Any,
    *,
    task: str | None,
    names: Sequence[str] | None,
    classes: Sequence[Any] | None,
    threshold: float,
    max_len: int,
) -> tuple[Columns, int]:
    """(columns, rows) for one call's output; raises UnsupportedInput for what cannot be mapped."""
    if type(obj) in _SCALARS:  # one prediction as a plain Python number: the common single-row case
        if task == "binary_classification" and type(obj) is float:
            return {COL_SCORE: [obj], COL_LABEL: _labels(np.asarray([int(obj >= threshold)]), classes, max_len)}, 1
        name = COL_PREDICTION if task == "regression" or (task is None and type(obj) is float) else COL_LABEL
        return {names[0] if names and task not in semconv.TASKS[:2] else name: [clean_value(obj, max_len)]}, 1
    if isinstance(obj, Mapping):
        columns = {str(k): _column(v, max_len) for k, v in obj.items()}
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise UnsupportedInput("ragged_outputs", "output columns have different lengths")
        return columns, lengths.pop() if lengths else 0
    if "pandas" in sys.modules and isinstance(obj, sys.modules["pandas"].DataFrame):
        return {str(k): column_values(s, max_len) for k, s in obj.items()}, int(obj.shape[0])

    arr = _as_array(obj, max_len)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    elif arr.ndim > 2:
        raise UnsupportedInput("unsupported_output", f"outputs with {arr.ndim} dimensions are not understood")
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    n = int(arr.shape[0])
    numeric = arr.dtype.kind in "fiu"

    if task == "binary_classification":
        if arr.ndim == 2:
            if arr.shape[1] != 2 or not numeric:
                raise UnsupportedInput("unsupported_output", f"binary outputs of shape {arr.shape} (want n or n x 2)")
            arr = arr[:, 1]
        if arr.dtype.kind == "f":
            score = arr.astype(np.float64, copy=False)
            positive = (score >= threshold).astype(np.intp)
            labels = _labels(positive, classes, max_len)
            nan = np.isnan(score)
            if nan.any():  # no score, no label
                labels = [None if missing else label for label, missing in zip(labels, nan.tolist(), strict=True)]
            return {COL_SCORE: score.tolist(), COL_LABEL: labels}, n
        return {COL_LABEL: array_values(arr, max_len)}, n

    if task == "multiclass_classification":
        if arr.ndim == 2:
            if not numeric:
                raise UnsupportedInput("unsupported_output", "multiclass probabilities must be numeric")
            best = np.argmax(arr, axis=1)
            score = arr[np.arange(n), best].astype(np.float64)
            if classes is not None and len(classes) != arr.shape[1]:
                classes = None
            return {COL_LABEL: _labels(best, classes, max_len), COL_SCORE: score.tolist()}, n
        return {COL_LABEL: array_values(arr, max_len)}, n

    if task == "regression":
        return _named(arr, names, COL_PREDICTION, max_len), n

    if arr.ndim == 1:
        default = COL_PREDICTION if arr.dtype.kind == "f" else COL_LABEL
        return {names[0] if names else default: array_values(arr, max_len)}, n
    return _named(arr, names, "output", max_len), n
