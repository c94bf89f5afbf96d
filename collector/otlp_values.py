"""OTLP AnyValue -> Python values, with a fast path for the columns of predwatch payloads.

    any_value(AnyValue(double_value=1.5))            # 1.5
    attributes(span.attributes)                      # {"predwatch.model.name": "churn", ...}
    columns([kv.value.array_value for kv in body])   # [[1.5, None, ...], ["a", "b", ...]]

Mapping: empty -> None, double -> float (NaN and inf kept), int -> int, string -> str, bool -> bool, bytes ->
lowercase hex str; in attributes arrays -> list and kvlists -> dict. A payload column holds scalars only: an
array or kvlist inside one raises NonScalar.

Speed: reading a upb repeated field from Python builds a wrapper object per element (~50-100 ns) before any
field is read. Numeric columns therefore skip the wrappers: their serialised bytes are parsed with numpy, all
columns of a payload in one pass (numpy's fixed cost per call is paid per payload, not per column). Other
columns read one oneof member per element and look at the falsy results only.

`columns(arrays, dense_doubles=True)` (the receiver's inference payloads) leaves a column of doubles without
missing values as a float64 numpy array instead of a list: the sketches take arrays as they are, which saves
building and re-reading a Python float per value (~100 ns of the ~250 ns a value costs from list to sketch).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import partial
from itertools import accumulate, compress
from operator import not_
from typing import Any

import numpy as np
import numpy.typing as npt
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue

from collector.records import Column

__all__ = ["NonScalar", "any_value", "attributes", "column", "columns"]

_SCALARS = frozenset(("double_value", "string_value", "int_value", "bool_value"))


class NonScalar(ValueError):
    """A payload column holds an array or a kvlist."""


def any_value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    if kind == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, kind)


def attributes(key_values: Iterable[KeyValue]) -> dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in key_values}


def column(array: ArrayValue) -> list[Any]:
    """One payload column as a list of Python scalars; raises NonScalar."""
    values = columns([array])[0]
    assert isinstance(values, list)
    return values


def columns(arrays: Sequence[ArrayValue], *, dense_doubles: bool = False) -> list[Column]:
    """Payload columns as lists of Python scalars, in order (float64 arrays for columns of doubles without
    missing values when `dense_doubles`); raises NonScalar."""
    kinds = [_first_kind(array) for array in arrays]
    results: list[Column | None] = [None] * len(arrays)
    doubles = partial(_doubles, dense=dense_doubles)
    for group, fast_path in (((None, "double_value"), doubles), (("int_value", "bool_value"), _small_ints)):
        picked = [i for i, kind in enumerate(kinds) if kind in group and arrays[i].values]
        if not picked:
            continue
        data = [arrays[i].SerializeToString() for i in picked]
        counts = [len(arrays[i].values) for i in picked]
        fast = fast_path(data, counts, [kinds[i] for i in picked])
        if fast is None and len(picked) > 1:  # one column spoils the batch: try each on its own
            for j, i in enumerate(picked):
                results[i] = _first(fast_path([data[j]], [counts[j]], [kinds[i]]))
        elif fast is not None:
            for i, values in zip(picked, fast, strict=True):
                results[i] = values
    return [
        values if values is not None else _slow_column(array, kind)
        for values, array, kind in zip(results, arrays, kinds, strict=True)
    ]


def _first(batch: list[Column] | None) -> Column | None:
    return None if batch is None else batch[0]


def _first_kind(array: ArrayValue) -> str | None:
    for value in array.values:  # the kind of the first non-missing value
        kind: str | None = value.WhichOneof("value")
        if kind:
            return kind
    return None


def _slow_column(array: ArrayValue, kind: str | None) -> list[Any]:
    # Reading the first element's oneof member from every element is exact wherever the result is truthy: a
    # proto3 oneof member that is not set reads as its default (0, 0.0, "", False), all falsy. The falsy entries
    # (None, zeros, empty strings, other kinds) are then looked at one by one, on wrappers made only once.
    elements = list(array.values)
    result: list[Any]
    if kind == "string_value":
        result = [v.string_value for v in elements]
    elif kind == "int_value":
        result = [v.int_value for v in elements]
    elif kind == "bool_value":
        result = [v.bool_value for v in elements]
    else:
        result = [v.double_value for v in elements]
    if not all(result):
        for i in compress(range(len(result)), map(not_, result)):
            result[i] = _scalar(elements[i])
    return result


def _scalar(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind in _SCALARS:
        return getattr(value, kind)
    if kind == "bytes_value":
        return value.bytes_value.hex()
    raise NonScalar(kind)


# --- numpy over the wire bytes -------------------------------------------------------------------------------
# Each element of ArrayValue.values is serialised as 0A <length> <AnyValue>: a double is 0A 09 21 <8 bytes LE>,
# an empty AnyValue (None) 0A 00, a bool 0A 02 10 <0|1>, an int below 128 0A 02 18 <v>. upb re-serialises a
# parsed message canonically, and the concatenation of whole columns is itself a sequence of elements, so a
# layout that matches element by element from the first byte to the last is the exact parse.


def _doubles(data: list[bytes], counts: list[int], kinds: list[str | None], dense: bool = False) -> list[Column] | None:
    """Columns of doubles and missing values, or None when anything else is in there."""
    blob = b"".join(data)
    size, total = len(blob), sum(counts)
    if size == 11 * total:  # no gaps: a fixed stride
        grid = np.frombuffer(blob, dtype=np.uint8).reshape(total, 11)
        if not ((grid[:, 0] == 0x0A).all() and (grid[:, 1] == 9).all() and (grid[:, 2] == 0x21).all()):
            return None
        values = grid[:, 3:].copy().view("<f8").ravel()
        if dense:
            bounds = [0, *accumulate(counts)]
            return [values[bounds[i] : bounds[i + 1]] for i in range(len(counts))]
        return _split(values.tolist(), counts)
    # Gaps: find every position that looks like an element start, then prove they chain from byte 0 to the end.
    # A look-alike inside a double's 8 bytes breaks the chain (rare) and sends the batch to the slow path.
    raw = np.frombuffer(blob + b"\x00\x00", dtype=np.uint8)
    lengths = raw[1 : size + 1]
    looks = (raw[:size] == 0x0A) & ((lengths == 0) | ((lengths == 9) & (raw[2 : size + 2] == 0x21)))
    starts = np.flatnonzero(looks)
    if len(starts) != total:
        return None
    ends = starts + 2 + lengths[starts]
    if starts[0] != 0 or ends[-1] != size or not np.array_equal(starts[1:], ends[:-1]):
        return None
    present = lengths[starts] == 9
    # An unaligned float64 view with a 1-byte stride: gathering at start + 3 reads each double in place.
    floats = np.ndarray(shape=(max(size - 7, 0),), dtype="<f8", buffer=blob, strides=(1,))[starts[present] + 3]
    if dense:
        return _dense_with_gaps(floats, present, counts)
    return _split(_with_gaps(floats.tolist(), np.flatnonzero(~present).tolist()), counts)


def _dense_with_gaps(
    floats: npt.NDArray[np.float64], present: npt.NDArray[np.bool_], counts: list[int]
) -> list[Column]:
    """Per column: its doubles as an array when none is missing, else a list with None in the gaps."""
    bounds = [0, *accumulate(counts)]
    taken = np.concatenate(([0], np.cumsum(present)))[bounds].tolist()  # present values before each column
    out: list[Column] = []
    for i in range(len(counts)):
        values = floats[taken[i] : taken[i + 1]]
        if len(values) == counts[i]:
            out.append(values)
        else:
            out.append(_with_gaps(values.tolist(), np.flatnonzero(~present[bounds[i] : bounds[i + 1]]).tolist()))
    return out


def _small_ints(data: list[bytes], counts: list[int], kinds: list[str | None]) -> list[Column] | None:
    """Columns of bools, or of ints in [0, 127] (labels, flags, small counts), with no gaps."""
    blob = b"".join(data)
    total = sum(counts)
    if len(blob) != 4 * total:
        return None
    grid = np.frombuffer(blob, dtype=np.uint8).reshape(total, 4)
    tags = np.repeat(np.array([0x10 if kind == "bool_value" else 0x18 for kind in kinds], dtype=np.uint8), counts)
    if not ((grid[:, 0] == 0x0A).all() and (grid[:, 1] == 2).all() and (grid[:, 2] == tags).all()):
        return None
    payload = grid[:, 3]
    if (payload >= 0x80).any():
        return None
    bounds = [0, *accumulate(counts)]
    out: list[Column] = []
    for i, kind in enumerate(kinds):
        part = payload[bounds[i] : bounds[i + 1]]
        out.append((part != 0).tolist() if kind == "bool_value" else part.tolist())
    return out


def _with_gaps(values: list[Any], gaps: list[int]) -> list[Any]:
    """`values` with None inserted so that it sits at each index of `gaps` (ascending) in the result."""
    if not gaps:
        return values
    out: list[Any] = []
    taken = 0
    for gap in gaps:
        take = gap - len(out)
        out += values[taken : taken + take]
        out.append(None)
        taken += take
    out += values[taken:]
    return out


def _split(values: list[Any], counts: list[int]) -> list[Column]:
    if len(counts) == 1:
        return [values]
    bounds = [0, *accumulate(counts)]
    return [values[bounds[i] : bounds[i + 1]] for i in range(len(counts))]
