"""Model outputs normalised into the columns the collector relies on (DESIGN.md, "Output normalisation").

- binary_classification: a 1-D float array is the positive-class score -> `score` and `label`
  (score >= threshold); an (n, 2) probability array -> `score` = column 1; integer, bool or string outputs
  -> `label` only. Labels are `classes[0]`/`classes[1]` when `classes` is given, else 0/1.
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
from instrument._inputs import Columns, UnsupportedInput
from instrument._values import array_values, clean_list, clean_value
from instrument.semconv import COL_LABEL, COL_PREDICTION, COL_SCORE

__all__ = ["output_columns"]

_SCALARS = frozenset({float, int, bool, str})


def _as_array(obj: Any) -> np.ndarray[Any, Any]:
    module = type(obj).__module__.partition(".")[0]
    if module == "torch":
        return obj.detach().cpu().numpy()  # type: ignore[no-any-return]
    if module == "pandas":
        return obj.to_numpy()  # type: ignore[no-any-return]
    if isinstance(obj, np.ndarray):
        return obj
    if isinstance(obj, list | tuple) and obj and isinstance(obj[0], list | tuple):
        return np.asarray(obj, dtype=object if len({len(r) for r in obj}) > 1 else None)
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
        columns = {
            str(k): clean_list(v.tolist() if hasattr(v, "tolist") else list(v), max_len)
            if isinstance(v, list | tuple | np.ndarray) or hasattr(v, "tolist")
            else [clean_value(v, max_len)]
            for k, v in obj.items()
        }
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise UnsupportedInput("ragged_outputs", "output columns have different lengths")
        return columns, lengths.pop() if lengths else 0
    if "pandas" in sys.modules and isinstance(obj, sys.modules["pandas"].DataFrame):
        return {str(k): clean_list(obj[k].to_numpy().tolist(), max_len) for k in obj.columns}, int(obj.shape[0])

    arr = _as_array(obj)
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
            return {COL_SCORE: score.tolist(), COL_LABEL: _labels(positive, classes, max_len)}, n
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
