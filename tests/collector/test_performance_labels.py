"""Label normalisation: one canonical class per value, whatever type it arrived in."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from collector.performance_labels import MAX_LABEL_LEN, label_key, label_keys, sort_key


@pytest.mark.parametrize(
    ("value", "key"),
    [
        (True, 1),
        (False, 0),
        (np.bool_(True), 1),
        (1, 1),
        (np.int64(-3), -3),
        (1.0, 1),
        (-0.0, 0),
        (np.float32(2.5), 2.5),
        (2.5, 2.5),
        ("1", "1"),
        ("true", "true"),
        (np.str_("cat"), "cat"),
        (10**30, 10**30),
        (None, None),
        (math.nan, None),
        (math.inf, None),
        ([1], None),
        (b"a", None),
    ],
)
def test_label_key(value: Any, key: Any) -> None:
    got = label_key(value)
    assert got == key and type(got) is type(key)


def test_label_keys_fast_paths_agree_with_label_key() -> None:
    cases: list[Any] = [
        [1, 0, None],
        ["a", None, "b"],
        ["x" * (MAX_LABEL_LEN + 5), "y"],
        [True, 0, 1.0, "1", None, math.nan],
        np.array([True, False]),
        np.array([1, 2], dtype=np.uint8),
        np.array([1.0, 2.5, np.nan]),
        np.array(["a", "b"]),
        (1, 2),
    ]
    for values in cases:
        got = label_keys(values)
        expected = [label_key(v) for v in (values.tolist() if isinstance(values, np.ndarray) else values)]
        assert got == expected
        assert [type(g) for g in got] == [type(e) for e in expected]
    assert label_keys(["x" * 1000]) == ["x" * MAX_LABEL_LEN]


def test_sort_order_numbers_then_strings() -> None:
    labels: list[Any] = ["b", 2, "a", 1.5, -1, 10**400]
    assert sorted(labels, key=sort_key) == [-1, 1.5, 2, 10**400, "a", "b"]
