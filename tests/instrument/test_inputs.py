"""instrument._inputs: every accepted input type as named columns of OTLP-safe values, and row_count.

Each case in CASES states the columns and row count the module docstring's shape rules give; the same table
checks that `row_count` (used for ids when the payload is not captured) agrees with `input_columns`.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from instrument._guard import STATS
from instrument._inputs import MAX_FEATURES, UnsupportedInput, input_columns, row_count

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
MAX_LEN = 32
LONG = "abcdefghij" * 4  # longer than MAX_LEN
CUT = LONG[:MAX_LEN]
NAN = math.nan
INF = math.inf


@pytest.fixture
def coerced() -> Iterator[Counter[str]]:
    STATS.reset()
    yield STATS.coerced
    STATS.reset()


class StartsWith:
    """An expected string whose exact tail (a datetime's precision) the contract leaves open."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def __repr__(self) -> str:
        return f"StartsWith({self.prefix!r})"


def assert_otlp_columns(columns: Any, rows: int) -> None:
    """Columns are {str: list} with one OTLP-safe Python scalar per row."""
    assert type(columns) is dict
    assert type(rows) is int and rows >= 0
    for name, values in columns.items():
        assert type(name) is str, name
        assert type(values) is list, (name, type(values))
        assert len(values) == rows, f"column {name!r} has {len(values)} values for {rows} rows"
        for value in values:
            kind = type(value)
            assert kind in (type(None), bool, int, float, str), f"{name}: {value!r} is a {kind.__qualname__}"
            if kind is int:
                assert INT64_MIN <= value <= INT64_MAX, f"{name}: {value} does not fit in int64"
            if kind is str:
                assert len(value) <= MAX_LEN, f"{name}: {value!r} is longer than {MAX_LEN}"


def _same(actual: Any, expected: Any) -> bool:
    if isinstance(expected, StartsWith):
        return type(actual) is str and actual.startswith(expected.prefix)
    if type(expected) is float and math.isnan(expected):
        return type(actual) is float and math.isnan(actual)
    return type(actual) is type(expected) and actual == expected


def assert_columns(actual: dict[str, list[Any]], expected: dict[str, list[Any]]) -> None:
    assert list(actual) == list(expected), "column names or order"
    for name, want in expected.items():
        got = actual[name]
        assert len(got) == len(want), f"column {name!r}: {got!r} != {want!r}"
        bad = [(i, g, w) for i, (g, w) in enumerate(zip(got, want, strict=True)) if not _same(g, w)]
        assert not bad, f"column {name!r} (row, got, expected): {bad[:5]}"


class _Odd:
    def __str__(self) -> str:
        return "odd-object"


def _structured(n: int) -> np.ndarray[Any, Any]:
    arr = np.zeros(n, dtype=[("a", "f8"), ("b", "i4"), ("c", "U3")])
    arr["a"] = np.arange(n) + 0.5
    arr["b"] = np.arange(n) * 10
    arr["c"] = [f"c{i}" for i in range(n)]
    return arr


_D1 = "2024-01-02T03:04"
_D2 = "1999-12-31T23:59"

# (make the input, features, expected columns, expected rows)
Case = tuple[Callable[[], Any], list[str] | None, dict[str, list[Any]], int]

CASES: dict[str, Case] = {
    # --- numpy ---------------------------------------------------------------------------------------------
    "np_0d_float": (lambda: np.array(2.5), None, {"f0": [2.5]}, 1),
    "np_0d_named": (lambda: np.array(7), ["x"], {"x": [7]}, 1),
    "np_1d_float_column": (lambda: np.array([0.5, NAN, INF, -1.0]), None, {"f0": [0.5, NAN, INF, -1.0]}, 4),
    "np_1d_one_feature": (lambda: np.array([1, 2, 3]), ["x"], {"x": [1, 2, 3]}, 3),
    "np_1d_row_by_features": (
        lambda: np.array([1.0, 2.0, 3.0]),
        ["a", "b", "c"],
        {"a": [1.0], "b": [2.0], "c": [3.0]},
        1,
    ),
    "np_1d_features_other_length": (lambda: np.array([1.0, 2.0, 3.0]), ["a", "b"], {"f0": [1.0, 2.0, 3.0]}, 3),
    "np_1d_single_value_one_feature": (lambda: np.array([4.0]), ["a"], {"a": [4.0]}, 1),
    "np_1d_int8": (lambda: np.array([-128, 127], dtype=np.int8), None, {"f0": [-128, 127]}, 2),
    "np_1d_uint8": (lambda: np.array([0, 255], dtype=np.uint8), None, {"f0": [0, 255]}, 2),
    "np_1d_uint64_overflow": (
        lambda: np.array([2**64 - 1, 1], dtype=np.uint64),
        None,
        {"f0": [float(2**64 - 1), 1.0]},
        2,
    ),
    "np_1d_bool": (lambda: np.array([True, False]), None, {"f0": [True, False]}, 2),
    "np_1d_str_cut": (lambda: np.array(["ab", LONG]), None, {"f0": ["ab", CUT]}, 2),
    "np_1d_datetime_nat": (
        lambda: np.array([_D1, "NaT", _D2], dtype="datetime64[s]"),
        None,
        {"f0": [StartsWith(_D1), None, StartsWith(_D2)]},
        3,
    ),
    "np_1d_timedelta_nat": (
        lambda: np.array([90, "NaT"], dtype="timedelta64[s]"),
        None,
        {"f0": [str(np.timedelta64(90, "s")), None]},
        2,
    ),
    "np_1d_object": (
        lambda: np.array([1, None, LONG, 2**64, decimal.Decimal("0.5"), _Odd(), pd.NA], dtype=object),
        None,
        {"f0": [1, None, CUT, float(2**64), 0.5, "odd-object", None]},
        7,
    ),
    "np_1d_empty": (lambda: np.array([], dtype=np.float64), None, {"f0": []}, 0),
    "np_2d_float": (
        lambda: np.array([[1.0, NAN], [3.0, -INF]]),
        None,
        {"f0": [1.0, 3.0], "f1": [NAN, -INF]},
        2,
    ),
    "np_2d_named": (lambda: np.array([[1, 2], [3, 4], [5, 6]]), ["a", "b"], {"a": [1, 3, 5], "b": [2, 4, 6]}, 3),
    "np_2d_features_other_length": (lambda: np.array([[1, 2]]), ["a"], {"f0": [1], "f1": [2]}, 1),
    "np_2d_int32": (lambda: np.array([[-1, 2]], dtype=np.int32), None, {"f0": [-1], "f1": [2]}, 1),
    "np_2d_uint64_overflow": (
        lambda: np.array([[2**64 - 1, 1], [0, 2]], dtype=np.uint64),
        None,
        {"f0": [float(2**64 - 1), 0.0], "f1": [1, 2]},
        2,
    ),
    "np_2d_bool": (lambda: np.array([[True], [False]]), None, {"f0": [True, False]}, 2),
    "np_2d_str": (
        lambda: np.array([["a", LONG], ["b", "c"]]),
        None,
        {"f0": ["a", "b"], "f1": [CUT, "c"]},
        2,
    ),
    "np_2d_object": (
        lambda: np.array([[1, "x"], [None, 2.5]], dtype=object),
        None,
        {"f0": [1, None], "f1": ["x", 2.5]},
        2,
    ),
    "np_2d_datetime": (
        lambda: np.array([[_D1], ["NaT"]], dtype="datetime64[m]"),
        None,
        {"f0": [StartsWith(_D1), None]},
        2,
    ),
    "np_2d_empty_batch": (lambda: np.zeros((0, 3)), None, {"f0": [], "f1": [], "f2": []}, 0),
    "np_3d_flattened_per_row": (
        lambda: np.arange(12).reshape(2, 2, 3),
        None,
        {f"f{j}": [int(v) for v in np.arange(12).reshape(2, 6)[:, j]] for j in range(6)},
        2,
    ),
    "np_structured": (
        lambda: _structured(3),
        None,
        {"a": [0.5, 1.5, 2.5], "b": [0, 10, 20], "c": ["c0", "c1", "c2"]},
        3,
    ),
    "np_structured_features_as_many_as_rows": (
        lambda: _structured(3),
        ["a", "b", "c"],
        {"a": [0.5, 1.5, 2.5], "b": [0, 10, 20], "c": ["c0", "c1", "c2"]},
        3,
    ),
    "np_structured_2d": (
        lambda: _structured(4).reshape(2, 2),
        None,
        {"a": [0.5, 1.5, 2.5, 3.5], "b": [0, 10, 20, 30], "c": ["c0", "c1", "c2", "c3"]},
        4,
    ),
    # --- pandas --------------------------------------------------------------------------------------------
    "df_numeric": (
        lambda: pd.DataFrame(
            {"f": [0.5, NAN], "i": [1, -2], "u": np.array([3, 4], dtype=np.uint16), "b": [True, False]}
        ),
        None,
        {"f": [0.5, NAN], "i": [1, -2], "u": [3, 4], "b": [True, False]},
        2,
    ),
    "df_uint64_overflow": (
        lambda: pd.DataFrame({"u": np.array([2**64 - 1, 1], dtype=np.uint64)}),
        None,
        {"u": [float(2**64 - 1), 1.0]},
        2,
    ),
    "df_int_column_names": (lambda: pd.DataFrame([[1, 2]]), None, {"0": [1], "1": [2]}, 1),
    "df_object_mixed": (
        lambda: pd.DataFrame({"o": pd.Series([1, LONG, None, 2**64], dtype=object)}),
        None,
        {"o": [1, CUT, None, float(2**64)]},
        4,
    ),
    "df_string": (
        lambda: pd.DataFrame({"s": pd.array(["a", None, LONG], dtype="string")}),
        None,
        {"s": ["a", None, CUT]},
        3,
    ),
    "df_default_str_with_missing": (
        lambda: pd.DataFrame({"s": ["a", None, "c"]}),
        None,
        {"s": ["a", None, "c"]},
        3,
    ),
    "df_categorical": (
        lambda: pd.DataFrame({"c": pd.Categorical(["x", None, "y", "x"])}),
        None,
        {"c": ["x", None, "y", "x"]},
        4,
    ),
    "df_categorical_int": (
        lambda: pd.DataFrame({"c": pd.Categorical([1, None, 2])}),
        None,
        {"c": [1, None, 2]},
        3,
    ),
    "df_nullable_int64": (
        lambda: pd.DataFrame({"n": pd.array([1, None, 3], dtype="Int64")}),
        None,
        {"n": [1, None, 3]},
        3,
    ),
    "df_nullable_int64_no_missing": (
        lambda: pd.DataFrame({"n": pd.array([1, 2], dtype="Int64")}),
        None,
        {"n": [1, 2]},
        2,
    ),
    "df_nullable_float64": (
        lambda: pd.DataFrame({"n": pd.array([1.5, None], dtype="Float64")}),
        None,
        {"n": [1.5, None]},
        2,
    ),
    "df_nullable_boolean": (
        lambda: pd.DataFrame({"n": pd.array([True, None, False], dtype="boolean")}),
        None,
        {"n": [True, None, False]},
        3,
    ),
    "df_datetime_nat": (
        lambda: pd.DataFrame({"d": pd.to_datetime([_D1, None, _D2])}),
        None,
        {"d": [StartsWith(_D1[:8]), None, StartsWith(_D2[:8])]},
        3,
    ),
    "df_datetime_tz_nat": (
        lambda: pd.DataFrame({"d": pd.to_datetime([_D1, None]).tz_localize("UTC")}),
        None,
        {"d": [StartsWith(_D1[:8]), None]},
        2,
    ),
    "df_empty": (lambda: pd.DataFrame({"a": [], "b": []}), None, {"a": [], "b": []}, 0),
    "series_row": (lambda: pd.Series({"a": 1.5, "b": 2.5}), None, {"a": [1.5], "b": [2.5]}, 1),
    "series_row_mixed": (
        lambda: pd.Series({"a": 1, "b": LONG, "c": None, "d": pd.NA}),
        None,
        {"a": [1], "b": [CUT], "c": [None], "d": [None]},
        1,
    ),
    "series_row_within_features": (
        lambda: pd.Series({"a": 1.0, "b": 2.0}),
        ["a", "b", "c"],
        {"a": [1.0], "b": [2.0]},
        1,
    ),
    "series_column_named": (lambda: pd.Series([1.0, 2.0, 3.0], name="x"), None, {"x": [1.0, 2.0, 3.0]}, 3),
    "series_column_unnamed_feature": (lambda: pd.Series([1, 2]), ["x"], {"x": [1, 2]}, 2),
    "series_column_unnamed": (lambda: pd.Series([True, False]), None, {"f0": [True, False]}, 2),
    "series_str_index_outside_features": (
        lambda: pd.Series([1.0, 2.0], index=["u1", "u2"], name="score"),
        ["a", "b"],
        {"score": [1.0, 2.0]},
        2,
    ),
    "series_column_string_missing": (
        lambda: pd.Series(["a", None], name="s"),
        None,
        {"s": ["a", None]},
        2,
    ),
    "series_column_int64_missing": (
        lambda: pd.Series(pd.array([None, 7], dtype="Int64"), name="n"),
        None,
        {"n": [None, 7]},
        2,
    ),
    "series_column_datetime": (
        lambda: pd.Series(pd.to_datetime([_D1, None]), name="d"),
        None,
        {"d": [StartsWith(_D1[:8]), None]},
        2,
    ),
    # --- dict of columns / dict row ------------------------------------------------------------------------
    "dict_of_lists": (
        lambda: {"a": [1, 2, 3], "b": ["x", "y", LONG], "c": [0.5, None, NAN]},
        None,
        {"a": [1, 2, 3], "b": ["x", "y", CUT], "c": [0.5, None, NAN]},
        3,
    ),
    "dict_of_tuples": (lambda: {"a": (1, 2), "b": (True, False)}, None, {"a": [1, 2], "b": [True, False]}, 2),
    "dict_of_arrays": (
        lambda: {"a": np.array([1.5, 2.5]), "b": np.array([1, 2], dtype=np.uint64), "c": np.array(["p", "q"])},
        None,
        {"a": [1.5, 2.5], "b": [1, 2], "c": ["p", "q"]},
        2,
    ),
    "dict_of_series": (
        lambda: {"a": pd.Series([1.0, 2.0]), "b": pd.Series(["x", None])},
        None,
        {"a": [1.0, 2.0], "b": ["x", None]},
        2,
    ),
    "dict_of_series_with_string_index": (
        lambda: {"a": pd.Series([1.0, 2.0, 3.0], index=["u1", "u2", "u3"]), "b": [4, 5, 6]},
        None,
        {"a": [1.0, 2.0, 3.0], "b": [4, 5, 6]},
        3,
    ),
    "dict_of_tensors": (
        lambda: {"a": torch.tensor([1.0, 2.0]), "b": torch.tensor([3, 4])},
        None,
        {"a": [1.0, 2.0], "b": [3, 4]},
        2,
    ),
    "dict_of_mixed_columns": (
        lambda: {"a": [1, 2], "b": np.array([0.5, 1.5]), "c": pd.Series([True, False]), "d": ("x", "y")},
        None,
        {"a": [1, 2], "b": [0.5, 1.5], "c": [True, False], "d": ["x", "y"]},
        2,
    ),
    "dict_non_str_keys": (lambda: {1: [1, 2], 2.5: [3, 4]}, None, {"1": [1, 2], "2.5": [3, 4]}, 2),
    "dict_row": (
        lambda: {"a": 1, "b": 2.5, "c": LONG, "d": None, "e": True},
        None,
        {"a": [1], "b": [2.5], "c": [CUT], "d": [None], "e": [True]},
        1,
    ),
    "dict_row_numpy_scalars": (
        lambda: {"a": np.float32(0.5), "b": np.int64(3), "c": np.str_("s"), "d": np.datetime64("NaT")},
        None,
        {"a": [0.5], "b": [3], "c": ["s"], "d": [None]},
        1,
    ),
    "dict_row_strings_only": (lambda: {"a": "xy", "b": "z"}, None, {"a": ["xy"], "b": ["z"]}, 1),
    "dict_row_with_a_list_value": (lambda: {"a": [1, 2], "b": 3}, None, {"a": [str([1, 2])], "b": [3]}, 1),
    "dict_ragged_is_a_row": (
        lambda: {"a": [1, 2], "b": (3, 4, 5)},
        None,
        {"a": [str([1, 2])], "b": [str((3, 4, 5))]},
        1,
    ),
    "dict_row_of_pandas_missing": (lambda: {"a": pd.NA, "b": pd.NaT}, None, {"a": [None], "b": [None]}, 1),
    "dict_row_of_timestamps": (
        lambda: {"when": pd.Timestamp(_D1)},
        None,
        {"when": [StartsWith(_D1)]},
        1,
    ),
    "dict_row_of_0d_tensors": (
        lambda: {"a": torch.tensor(1.5), "b": torch.tensor(2)},
        None,
        {"a": [1.5], "b": [2]},
        1,
    ),
    # --- rows ----------------------------------------------------------------------------------------------
    "list_of_dict_rows_missing_keys": (
        lambda: [{"a": 1, "b": "x"}, {"b": "y", "c": 2.5}, {}],
        None,
        {"a": [1, None, None], "b": ["x", "y", None], "c": [None, 2.5, None]},
        3,
    ),
    "list_of_dict_rows_same_keys": (
        lambda: [{"a": 1, "b": "x"}, {"a": 2.5, "b": None}, {"a": np.float32(0.5), "b": LONG}],
        None,
        {"a": [1, 2.5, 0.5], "b": ["x", None, CUT]},
        3,
    ),
    "list_of_dict_rows_keys_in_other_orders": (
        lambda: [{"a": 1, "b": 2}, {"b": 3, "a": 4}],
        None,
        {"a": [1, 4], "b": [2, 3]},
        2,
    ),
    "tuple_of_dict_rows": (lambda: ({"a": np.int64(1)}, {"a": 2**64}), None, {"a": [1, float(2**64)]}, 2),
    "list_of_lists": (lambda: [[1, 2.5], [3, None]], None, {"f0": [1, 3], "f1": [2.5, None]}, 2),
    "list_of_lists_named": (lambda: [[1, "x"], [2, "y"]], ["n", "s"], {"n": [1, 2], "s": ["x", "y"]}, 2),
    "list_of_lists_features_other_length": (lambda: [[1, 2]], ["a"], {"f0": [1], "f1": [2]}, 1),
    "tuple_of_tuples": (lambda: ((1, 2), (3, 4)), None, {"f0": [1, 3], "f1": [2, 4]}, 2),
    "list_of_arrays": (
        lambda: [np.array([1.0, 2.0]), np.array([3.0, 4.0])],
        None,
        {"f0": [1.0, 3.0], "f1": [2.0, 4.0]},
        2,
    ),
    "list_of_scalars": (lambda: [1.5, 2.5, NAN], None, {"f0": [1.5, 2.5, NAN]}, 3),
    "list_of_scalars_one_feature": (lambda: [1, 2], ["x"], {"x": [1, 2]}, 2),
    "list_of_scalars_row_by_features": (
        lambda: [1, "b", None],
        ["a", "b", "c"],
        {"a": [1], "b": ["b"], "c": [None]},
        1,
    ),
    "list_of_strings": (lambda: ["a", LONG], None, {"f0": ["a", CUT]}, 2),
    "list_of_mixed_scalars": (
        lambda: [1, None, np.float64(0.5), "s", 2**64, True],
        None,
        {"f0": [1, None, 0.5, "s", float(2**64), True]},
        6,
    ),
    "tuple_of_scalars": (lambda: (1, 2, 3), None, {"f0": [1, 2, 3]}, 3),
    "empty_list": (lambda: [], None, {}, 0),
    # --- scalars -------------------------------------------------------------------------------------------
    "int": (lambda: 3, None, {"f0": [3]}, 1),
    "int_named": (lambda: 3, ["x", "y"], {"x": [3]}, 1),
    "int_overflow": (lambda: -(2**70), None, {"f0": [float(-(2**70))]}, 1),
    "float_nan": (lambda: NAN, None, {"f0": [NAN]}, 1),
    "bool": (lambda: False, None, {"f0": [False]}, 1),
    "str_cut": (lambda: LONG, None, {"f0": [CUT]}, 1),
    "bytes": (lambda: b"ab", None, {"f0": ["ab"]}, 1),
    "none": (lambda: None, None, {"f0": [None]}, 1),
    "numpy_float32": (lambda: np.float32(0.25), None, {"f0": [0.25]}, 1),
    "numpy_uint64_overflow": (lambda: np.uint64(2**64 - 1), None, {"f0": [float(2**64 - 1)]}, 1),
    "numpy_nat": (lambda: np.datetime64("NaT"), None, {"f0": [None]}, 1),
    # --- torch ---------------------------------------------------------------------------------------------
    "torch_2d_float": (
        lambda: torch.tensor([[0.5, 1.5], [2.5, float("nan")]]),
        None,
        {"f0": [0.5, 2.5], "f1": [1.5, NAN]},
        2,
    ),
    "torch_2d_int": (lambda: torch.tensor([[1, 2], [3, 4]]), ["a", "b"], {"a": [1, 3], "b": [2, 4]}, 2),
    "torch_requires_grad": (
        lambda: torch.tensor([[1.0, 2.0]], requires_grad=True) * 2,
        None,
        {"f0": [2.0], "f1": [4.0]},
        1,
    ),
    "torch_1d_column": (lambda: torch.tensor([1.0, 2.0, 3.0]), None, {"f0": [1.0, 2.0, 3.0]}, 3),
    "torch_1d_row_by_features": (
        lambda: torch.tensor([1.0, 2.0, 3.0]),
        ["a", "b", "c"],
        {"a": [1.0], "b": [2.0], "c": [3.0]},
        1,
    ),
    "torch_0d": (lambda: torch.tensor(4.0), None, {"f0": [4.0]}, 1),
    "torch_bool": (lambda: torch.tensor([True, False]), None, {"f0": [True, False]}, 2),
    "torch_float16": (lambda: torch.tensor([0.5, 1.0], dtype=torch.float16), None, {"f0": [0.5, 1.0]}, 2),
    "torch_bfloat16": (lambda: torch.tensor([0.5, 1.0], dtype=torch.bfloat16), None, {"f0": [0.5, 1.0]}, 2),
    "torch_3d": (
        lambda: torch.arange(8).reshape(2, 2, 2),
        None,
        {"f0": [0, 4], "f1": [1, 5], "f2": [2, 6], "f3": [3, 7]},
        2,
    ),
    "torch_empty_batch": (lambda: torch.zeros(0, 2), None, {"f0": [], "f1": []}, 0),
}


@pytest.mark.parametrize(("make", "features", "expected", "rows"), list(CASES.values()), ids=list(CASES))
def test_input_columns(
    make: Callable[[], Any], features: list[str] | None, expected: dict[str, list[Any]], rows: int
) -> None:
    columns, n = input_columns(make(), features, MAX_LEN)
    assert_otlp_columns(columns, n)
    assert n == rows
    assert_columns(columns, expected)


@pytest.mark.parametrize(("make", "features", "expected", "rows"), list(CASES.values()), ids=list(CASES))
def test_row_count_agrees_with_input_columns(
    make: Callable[[], Any], features: list[str] | None, expected: dict[str, list[Any]], rows: int
) -> None:
    counted = row_count(make(), features)
    _, n = input_columns(make(), features, MAX_LEN)
    assert counted == n == rows


def test_input_columns_does_not_change_its_input() -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0], "s": ["x", LONG]})
    rows = [{"a": 1, "s": LONG}]
    columns = {"a": [2**64, 1], "s": [LONG, "y"]}
    arr = np.array([[1.0, 2.0]])
    input_columns(frame, None, MAX_LEN)
    input_columns(rows, None, MAX_LEN)
    input_columns(columns, None, MAX_LEN)
    input_columns(arr, None, MAX_LEN)
    assert frame.equals(pd.DataFrame({"a": [1.0, 2.0], "s": ["x", LONG]}))
    assert rows == [{"a": 1, "s": LONG}]
    assert columns == {"a": [2**64, 1], "s": [LONG, "y"]}
    assert arr.tolist() == [[1.0, 2.0]]


def test_numbers_match_numpy_for_a_random_batch() -> None:
    rng = np.random.default_rng(7)
    arr = rng.normal(size=(500, 6))
    arr[rng.random(arr.shape) < 0.05] = np.nan
    columns, n = input_columns(arr, None, MAX_LEN)
    assert n == 500
    for j in range(6):
        got = np.array(columns[f"f{j}"], dtype=np.float64)
        np.testing.assert_array_equal(got, arr[:, j])  # NaN positions equal too


def test_dataframe_columns_match_the_frame() -> None:
    rng = np.random.default_rng(8)
    frame = pd.DataFrame({"x": rng.normal(size=200), "k": rng.integers(-5, 5, 200), "c": rng.choice(["p", "q"], 200)})
    columns, n = input_columns(frame, None, MAX_LEN)
    assert n == 200
    assert columns["x"] == frame["x"].tolist()
    assert columns["k"] == [int(v) for v in frame["k"]]
    assert columns["c"] == [str(v) for v in frame["c"]]


@pytest.mark.parametrize(
    "obj",
    [
        {"emb": np.arange(6.0).reshape(2, 3), "x": [1, 2]},
        {"emb": torch.arange(6.0).reshape(2, 3), "x": [1, 2]},
        {"emb": [[1, 2, 3], [4, 5, 6]], "x": [1, 2]},
    ],
    ids=["numpy", "torch", "lists"],
)
def test_dict_column_of_vectors_keeps_one_value_per_row(obj: dict[str, Any]) -> None:
    # How a vector-valued column is shown is the module's choice; every column must still have one value a row.
    columns, n = input_columns(obj, None, 64)
    assert n == 2 == row_count(obj, None)
    assert columns["x"] == [1, 2]
    for values in columns.values():
        assert len(values) == n


# --- coercions are counted ---------------------------------------------------------------------------------


def test_coercions_are_counted(coerced: Counter[str]) -> None:
    input_columns({"s": [LONG, "ok"], "o": [_Odd(), 1], "b": [b"x", b"y"]}, None, MAX_LEN)
    assert coerced == Counter({"truncated": 1, "object": 1, "bytes": 2})
    input_columns(np.array([2**64 - 1, 2**63, 1], dtype=np.uint64), None, MAX_LEN)
    assert coerced["int_overflow"] == 2
    input_columns([[2**70, 1]], None, MAX_LEN)
    assert coerced["int_overflow"] == 3
    input_columns(np.array([LONG] * 4), None, MAX_LEN)
    assert coerced["truncated"] == 5


def test_plain_inputs_count_no_coercion(coerced: Counter[str]) -> None:
    input_columns(np.ones((10, 3)), None, MAX_LEN)
    input_columns(pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}), None, MAX_LEN)
    input_columns([{"a": 1.5, "b": "s"}], None, MAX_LEN)
    input_columns({"a": [1, 2], "b": [True, None]}, None, MAX_LEN)
    assert not coerced


# --- what cannot be mapped ---------------------------------------------------------------------------------


def test_ragged_rows_are_unsupported() -> None:
    with pytest.raises(UnsupportedInput) as info:
        input_columns([[1, 2], [3]], None, MAX_LEN)
    assert info.value.reason == "ragged_rows"
    with pytest.raises(UnsupportedInput) as info:
        input_columns(((1,), (2, 3)), None, MAX_LEN)
    assert info.value.reason == "ragged_rows"


def test_rows_mixing_dicts_and_other_values_are_unsupported() -> None:
    with pytest.raises(UnsupportedInput) as info:
        input_columns([{"a": 1}, [1]], None, MAX_LEN)
    assert info.value.reason == "mixed_rows"


@pytest.mark.parametrize(
    "make",
    [
        lambda w: np.zeros((2, w)),
        lambda w: np.zeros((2, 1, w)),
        lambda w: torch.zeros(2, w),
        lambda w: pd.DataFrame(np.zeros((2, w))),
        lambda w: {f"c{i}": [1, 2] for i in range(w)},
        lambda w: {f"c{i}": 1 for i in range(w)},
        lambda w: [list(range(w))],
        lambda w: [{f"c{i}": 1} for i in range(w)],
    ],
    ids=["np_2d", "np_3d", "torch", "dataframe", "dict_columns", "dict_row", "list_of_lists", "dict_rows"],
)
def test_too_many_features_are_unsupported(make: Callable[[int], Any]) -> None:
    columns, _ = input_columns(make(MAX_FEATURES), None, MAX_LEN)
    assert len(columns) == MAX_FEATURES
    with pytest.raises(UnsupportedInput) as info:
        input_columns(make(MAX_FEATURES + 1), None, MAX_LEN)
    assert info.value.reason == "too_many_features"
    assert str(MAX_FEATURES + 1) in str(info.value)


@pytest.mark.parametrize(
    "obj",
    [object(), {1, 2}, frozenset(), (i for i in range(2)), range(3), _Odd(), dt.date(2024, 1, 1), pd.Timestamp(0)],
    ids=["object", "set", "frozenset", "generator", "range", "custom", "date", "pd_timestamp"],
)
def test_other_types_are_unsupported(obj: Any) -> None:
    with pytest.raises(UnsupportedInput) as info:
        input_columns(obj, None, MAX_LEN)
    assert info.value.reason == "unsupported_input"
    assert type(obj).__qualname__ in str(info.value)


def test_unsupported_input_carries_a_reason() -> None:
    err = UnsupportedInput("ragged_rows", "rows differ")
    assert isinstance(err, Exception)
    assert err.reason == "ragged_rows" and str(err) == "rows differ"


class _BadLength:
    def __len__(self) -> int:
        raise RuntimeError("no length")


@pytest.mark.parametrize(
    "obj",
    [_BadLength(), [_BadLength()], {"a": _BadLength()}, object(), [[1, 2], [3]]],
    ids=["bad_len", "list_bad_len", "dict_bad_len", "object", "ragged"],
)
def test_row_count_never_raises(obj: Any) -> None:
    n = row_count(obj, None)
    assert type(n) is int and n >= 0
