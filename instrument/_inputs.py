"""Model inputs as named columns of OTLP-safe values.

Accepted: numpy 0/1/2-D (and N-D, flattened per row) and structured arrays, pandas DataFrame and Series,
a dict of columns, one dict row, a list of dict rows, a list of lists, a list of scalars, a scalar, and
torch tensors. pandas and torch are only looked at when the application already imported them.

Shape rules that are not obvious:
- A 1-D array or list of scalars is one row when `features` names exactly that many (> 1) features;
  otherwise it is one feature with a value per row.
- A dict is columns when every value is a sequence of one common length; otherwise it is one row.
- A pandas Series indexed by feature names (strings) is one row; otherwise it is one column.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np

from instrument._values import array_values, clean_list, clean_value, tensor_array

__all__ = ["Columns", "UnsupportedInput", "column_values", "input_columns", "row_count"]

Columns = dict[str, list[Any]]
MAX_FEATURES = 2000


class UnsupportedInput(Exception):
    """The input could not be mapped to columns; `reason` names why (a dropped-telemetry reason)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


_POSITIONAL = [f"f{i}" for i in range(64)]


def _names(width: int, features: Sequence[str] | None) -> list[str]:
    if features is not None and len(features) == width:
        return list(features)
    return _POSITIONAL[:width] if width <= len(_POSITIONAL) else [f"f{i}" for i in range(width)]


def _module_of(obj: object) -> str:
    return type(obj).__module__.partition(".")[0]


_SCALARS = frozenset({float, int, str, bool, type(None)})


def _is_sequence(value: object) -> bool:
    if type(value) in _SCALARS:
        return False
    if isinstance(value, list | tuple):
        return True
    if isinstance(value, np.ndarray) or _module_of(value) in ("pandas", "torch"):
        return getattr(value, "ndim", 0) > 0  # not a 0-d array or tensor, nor a pandas scalar (NA, NaT, Timestamp)
    return False


def column_values(series: Any, max_len: int) -> list[Any]:
    """A pandas Series (or Index) as a column. numpy dtypes go vectorised (NaN stays a float, NaT -> None); the
    others (nullable Int64/Float64/boolean, str/string, category, tz-aware datetimes, object) turn every missing
    marker (pd.NA, NaN, NaT, None) into None and keep integers as ints."""
    dtype = series.dtype
    if isinstance(dtype, np.dtype) and dtype.kind != "O":
        return array_values(series.to_numpy(), max_len)
    values = series.astype(object).tolist()
    missing = series.isna().tolist()
    return clean_list([None if gone else v for v, gone in zip(values, missing, strict=True)], max_len)


def _from_array(arr: np.ndarray[Any, Any], features: Sequence[str] | None, max_len: int) -> tuple[Columns, int]:
    if arr.dtype.names:  # structured array: one column per field
        rows = arr.reshape(-1)
        return {name: array_values(rows[name], max_len) for name in arr.dtype.names}, rows.shape[0]
    if arr.ndim == 0:
        name = features[0] if features else "f0"
        return {name: [clean_value(arr.item(), max_len)]}, 1
    if arr.ndim == 1:
        if features is not None and len(features) > 1 and len(features) == arr.shape[0]:
            values = array_values(arr, max_len)
            return {name: [v] for name, v in zip(features, values, strict=True)}, 1
        name = features[0] if features is not None and len(features) == 1 else "f0"
        return {name: array_values(arr, max_len)}, arr.shape[0]
    n = arr.shape[0]
    flat = arr.reshape(n, math.prod(arr.shape[1:]))  # not -1: that fails for an empty batch
    width = flat.shape[1]
    if width > MAX_FEATURES:
        raise UnsupportedInput("too_many_features", f"inputs have {width} features per row (cap {MAX_FEATURES})")
    names = _names(width, features)
    if (
        flat.dtype.kind in "fbiu"
        and flat.dtype.itemsize <= 8
        and not (flat.dtype.kind == "u" and flat.dtype.itemsize == 8)
    ):
        return dict(zip(names, flat.T.tolist(), strict=True)), n
    return {name: array_values(flat[:, i], max_len) for i, name in enumerate(names)}, n


def _from_dataframe(df: Any, max_len: int) -> tuple[Columns, int]:
    if df.shape[1] > MAX_FEATURES:
        raise UnsupportedInput("too_many_features", f"inputs have {df.shape[1]} features per row (cap {MAX_FEATURES})")
    return {str(name): column_values(series, max_len) for name, series in df.items()}, int(df.shape[0])


def _series_is_row(series: Any, features: Sequence[str] | None) -> bool:
    index = series.index
    if len(index) == 0 or not all(isinstance(k, str) for k in index):
        return False
    return features is None or not set(index) - set(features)


def _from_series(series: Any, features: Sequence[str] | None, max_len: int) -> tuple[Columns, int]:
    if _series_is_row(series, features):
        labels = [str(k) for k in series.index]
        values = column_values(series, max_len)
        return {name: [v] for name, v in zip(labels, values, strict=True)}, 1
    name = str(series.name) if series.name is not None else (features[0] if features else "f0")
    values = column_values(series, max_len)
    return {name: values}, len(values)


def _column(values: Any, max_len: int) -> list[Any]:
    if _module_of(values) == "torch":
        values = tensor_array(values)
    if isinstance(values, np.ndarray):
        if values.ndim == 1:
            return array_values(values, max_len)
        return clean_list(values.tolist(), max_len)  # a vector per row: kept as one value (its text) per row
    if _module_of(values) == "pandas":
        if values.ndim == 1:
            return column_values(values, max_len)  # whatever the index: a column is never read as a row here
        return clean_list(values.to_numpy().tolist(), max_len)
    return clean_list(values, max_len)


def _from_mapping(data: Mapping[Any, Any], max_len: int) -> tuple[Columns, int]:
    if len(data) > MAX_FEATURES:
        raise UnsupportedInput("too_many_features", f"inputs have {len(data)} features per row (cap {MAX_FEATURES})")
    values = list(data.values())
    if values and all(_is_sequence(v) for v in values):
        lengths = {len(v) for v in values}
        if len(lengths) == 1:
            return {str(k): _column(v, max_len) for k, v in data.items()}, lengths.pop()
    names = list(data) if all(type(k) is str for k in data) else [str(k) for k in data]
    return {name: [v] for name, v in zip(names, clean_list(values, max_len), strict=True)}, 1


_DICTS = {dict}  # rows that are all plain dicts


def _from_rows_of_dicts(rows: Sequence[Mapping[Any, Any]], max_len: int) -> tuple[Columns, int]:
    if _DICTS == set(map(type, rows)):
        keys = tuple(rows[0])
        if len(keys) <= MAX_FEATURES and all(map(keys.__eq__, map(tuple, rows))):
            # the same keys in the same order (rows of one form): transposed in one step
            columns = zip(*map(dict.values, cast("Sequence[dict[Any, Any]]", rows)), strict=True)
            return {str(k): clean_list(list(c), max_len) for k, c in zip(keys, columns, strict=True)}, len(rows)
    names: dict[Any, None] = {}
    for row in rows:
        if not isinstance(row, Mapping):
            raise UnsupportedInput("mixed_rows", "a list of rows mixes dicts with other values")
        names.update(dict.fromkeys(row))
    if len(names) > MAX_FEATURES:
        raise UnsupportedInput("too_many_features", f"inputs have {len(names)} features per row (cap {MAX_FEATURES})")
    return {str(k): clean_list([row.get(k) for row in rows], max_len) for k in names}, len(rows)


def _from_rows(rows: Sequence[Any], features: Sequence[str] | None, max_len: int) -> tuple[Columns, int]:
    width = len(rows[0])
    if any(len(row) != width for row in rows):
        raise UnsupportedInput("ragged_rows", "rows of the input have different lengths")
    if width > MAX_FEATURES:
        raise UnsupportedInput("too_many_features", f"inputs have {width} features per row (cap {MAX_FEATURES})")
    names = _names(width, features)
    if len(rows) == 1:  # one row (an HTTP request's, typically): its values cleaned together, not a column each
        return {name: [v] for name, v in zip(names, clean_list(list(rows[0]), max_len), strict=True)}, 1
    return {name: clean_list(col, max_len) for name, col in zip(names, zip(*rows, strict=True), strict=True)}, len(rows)


def input_columns(obj: Any, features: Sequence[str] | None, max_len: int) -> tuple[Columns, int]:
    """(columns, rows) for one call's input; raises UnsupportedInput for what cannot be mapped."""
    if isinstance(obj, np.ndarray):
        return _from_array(obj, features, max_len)
    module = _module_of(obj)
    if module == "pandas":
        pd = sys.modules["pandas"]
        if isinstance(obj, pd.DataFrame):
            return _from_dataframe(obj, max_len)
        if isinstance(obj, pd.Series):
            return _from_series(obj, features, max_len)
    elif module == "torch":
        torch = sys.modules["torch"]
        if isinstance(obj, torch.Tensor):
            return _from_array(tensor_array(obj), features, max_len)
    if isinstance(obj, Mapping):
        return _from_mapping(obj, max_len)
    if isinstance(obj, list | tuple):
        if not obj:
            return {}, 0
        first = obj[0]
        if isinstance(first, Mapping):
            return _from_rows_of_dicts(obj, max_len)
        if isinstance(first, list | tuple | np.ndarray):
            return _from_rows(obj, features, max_len)
        if features is not None and len(features) > 1 and len(features) == len(obj):
            return {name: [clean_value(v, max_len)] for name, v in zip(features, obj, strict=True)}, 1
        name = features[0] if features is not None and len(features) == 1 else "f0"
        return {name: clean_list(obj, max_len)}, len(obj)
    if obj is None or isinstance(obj, str | bytes | int | float | np.generic):
        name = features[0] if features else "f0"
        return {name: [clean_value(obj, max_len)]}, 1
    raise UnsupportedInput("unsupported_input", f"inputs of type {type(obj).__qualname__} are not understood")


def _array_rows(shape: tuple[int, ...], structured: bool, features: Sequence[str] | None) -> int:
    """Rows of a numpy array or torch tensor by the same rules as _from_array."""
    if structured:
        return math.prod(shape)  # one row per record
    if not shape:
        return 1
    if len(shape) == 1 and features is not None and len(features) > 1 and len(features) == shape[0]:
        return 1
    return int(shape[0])


def row_count(obj: Any, features: Sequence[str] | None) -> int:
    """The number of rows in an input without converting it (for calls whose payload is not captured)."""
    try:
        kind = type(obj)
        if kind is dict:
            first = next(iter(obj.values()), None)
            if not _is_sequence(first):
                return 1  # a row: input_columns reads a dict as columns only when every value is a sequence
        elif kind is list and obj and (type(obj[0]) is dict or type(obj[0]) is list):
            return len(obj)  # rows
        if isinstance(obj, np.ndarray):
            return _array_rows(obj.shape, bool(obj.dtype.names), features)
        module = _module_of(obj)
        if module == "pandas":
            return 1 if type(obj).__name__ == "Series" and _series_is_row(obj, features) else len(obj)
        if module == "torch":
            return _array_rows(tuple(obj.shape), False, features)
        if isinstance(obj, Mapping):
            values = list(obj.values())
            if values and all(_is_sequence(v) for v in values) and len({len(v) for v in values}) == 1:
                return len(values[0])
            return 1
        if isinstance(obj, list | tuple):
            if obj and not isinstance(obj[0], Mapping | list | tuple | np.ndarray):
                if features is not None and len(features) > 1 and len(features) == len(obj):
                    return 1
            return len(obj)
        return 1
    except Exception:
        return 1
