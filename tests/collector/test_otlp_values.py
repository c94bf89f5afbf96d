from __future__ import annotations

import math
import random
import struct
from typing import Any

import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList

from collector.otlp_values import NonScalar, any_value, attributes, column, columns

# A double whose 8 bytes contain what looks like element starts (0A 00, 0A 09 21): a trap for the byte parser.
LOOK_ALIKE = struct.unpack("<d", bytes([0x0A, 0x00, 0x0A, 0x09, 0x21, 0x00, 0x0A, 0x3F]))[0]


def same(actual: list[Any], expected: list[Any]) -> bool:
    """Equal element by element, with the same types, NaN equal to NaN."""
    return len(actual) == len(expected) and all(
        type(a) is type(e) and (a == e or (isinstance(a, float) and math.isnan(a) and math.isnan(e)))
        for a, e in zip(actual, expected, strict=True)
    )


def reference(array: ArrayValue) -> list[Any]:
    """The obvious conversion, one WhichOneof per value."""
    out: list[Any] = []
    for value in array.values:
        kind = value.WhichOneof("value")
        if kind in ("array_value", "kvlist_value"):
            raise NonScalar(kind)
        out.append(None if kind is None else value.bytes_value.hex() if kind == "bytes_value" else getattr(value, kind))
    return out


def parsed(values: list[AnyValue]) -> ArrayValue:
    """Built, serialised and parsed back: what the receivers hold."""
    return ArrayValue.FromString(ArrayValue(values=values).SerializeToString())


def test_any_value_and_attributes() -> None:
    kvlist = KeyValueList(values=[KeyValue(key="k", value=AnyValue(int_value=1))])
    array = ArrayValue(values=[AnyValue(string_value="a"), AnyValue(), AnyValue(bool_value=True)])
    attrs = attributes(
        [
            KeyValue(key="s", value=AnyValue(string_value="x")),
            KeyValue(key="d", value=AnyValue(double_value=float("inf"))),
            KeyValue(key="b", value=AnyValue(bytes_value=b"\x01\xab")),
            KeyValue(key="a", value=AnyValue(array_value=array)),
            KeyValue(key="m", value=AnyValue(kvlist_value=kvlist)),
            KeyValue(key="none", value=AnyValue()),
        ]
    )
    assert attrs == {"s": "x", "d": float("inf"), "b": "01ab", "a": ["a", None, True], "m": {"k": 1}, "none": None}
    assert any_value(AnyValue(int_value=-(2**63))) == -(2**63)


@pytest.mark.parametrize(
    "values",
    [
        [],
        [None] * 5,
        [1.5, 2.5, float("nan"), float("inf"), -0.0],
        [None, 1.5, None, None, 0.0, LOOK_ALIKE, None],
        [LOOK_ALIKE] * 50,
        [True, False, True],
        [0, 1, 127],
        [0, 128, 1],
        [-1, 2**63 - 1],
        [1, None, 2],
        [True, None],
        ["a", "", None, "é"],
        [None, "a"],
        [b"\x00", None, b""],
        [1, 2.5, "s", True, None, b"\xff", 0, 0.0, "", False],
    ],
)
def test_column_kinds(values: list[Any]) -> None:
    array = parsed([_any(value) for value in values])
    assert same(column(array), reference(array))


def _any(value: Any) -> AnyValue:
    if value is None:
        return AnyValue()
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    return AnyValue(string_value=value)


def test_nested_values_raise() -> None:
    for nested in (AnyValue(array_value=ArrayValue()), AnyValue(kvlist_value=KeyValueList())):
        with pytest.raises(NonScalar):
            column(parsed([AnyValue(double_value=1.0), nested]))
        with pytest.raises(NonScalar):
            column(parsed([nested]))


def test_one_odd_column_does_not_spoil_the_batch() -> None:
    dense = parsed([AnyValue(double_value=float(i)) for i in range(100)])
    gappy = parsed([AnyValue(double_value=float(i)) if i % 3 else AnyValue() for i in range(100)])
    odd = parsed([AnyValue(double_value=1.0), AnyValue(string_value="x")] * 50)
    flags = parsed([AnyValue(bool_value=i % 2 == 0) for i in range(100)])
    labels = parsed([AnyValue(int_value=i % 3) for i in range(100)])
    big = parsed([AnyValue(int_value=1000 + i) for i in range(100)])
    arrays = [dense, odd, gappy, flags, big, labels]
    for result, array in zip(columns(arrays), arrays, strict=True):
        assert same(result, reference(array))


def test_random_columns_match_the_obvious_conversion() -> None:
    rng = random.Random(0)
    makers = [
        lambda: AnyValue(),
        lambda: AnyValue(double_value=rng.random()),
        lambda: AnyValue(double_value=rng.choice([0.0, -0.0, math.nan, math.inf, -math.inf, LOOK_ALIKE])),
        lambda: AnyValue(int_value=rng.randint(-(2**63), 2**63 - 1)),
        lambda: AnyValue(int_value=rng.randint(0, 130)),
        lambda: AnyValue(bool_value=rng.random() > 0.5),
        lambda: AnyValue(string_value=rng.choice(["", "a", "\n", "\x0a\x00"])),
        lambda: AnyValue(bytes_value=rng.choice([b"", b"\x0a\x09"])),
        lambda: AnyValue(array_value=ArrayValue()),
    ]
    for _ in range(3000):
        arrays = []
        for _ in range(rng.randint(1, 4)):
            pool = rng.sample(makers, rng.randint(1, 3))
            arrays.append(parsed([rng.choice(pool)() for _ in range(rng.randint(0, 12))]))
        try:
            expected: Any = [reference(array) for array in arrays]
        except NonScalar:
            expected = "nested"
        try:
            actual: Any = columns(arrays)
        except NonScalar:
            actual = "nested"
        if expected == "nested":
            assert actual == "nested", arrays
        else:
            assert actual != "nested" and all(map(same, actual, expected)), arrays


def test_dense_doubles_come_as_float64_arrays() -> None:
    """`dense_doubles=True` (the receivers' inference payloads): a column of doubles with none missing is a float64
    array; a column with gaps, and every other kind, stays a list, whatever the other columns hold."""
    import numpy as np

    dense = parsed([AnyValue(double_value=v) for v in (1.5, math.nan, -math.inf, LOOK_ALIKE, -0.0)])
    gappy = parsed([AnyValue(double_value=1.0), AnyValue(), AnyValue(double_value=2.0)])
    flags = parsed([AnyValue(bool_value=True), AnyValue(bool_value=False)])
    words = parsed([AnyValue(string_value="a"), AnyValue()])
    for arrays in ([dense], [dense, flags, words], [gappy, dense], [dense, gappy, dense]):
        got = columns(arrays, dense_doubles=True)
        for result, array in zip(got, arrays, strict=True):
            if array is dense:
                assert isinstance(result, np.ndarray) and result.dtype == np.float64
                assert same(result.tolist(), reference(array))
            else:
                assert isinstance(result, list) and same(result, reference(array))
    assert all(isinstance(result, list) for result in columns([dense, gappy]))  # the default is unchanged


def test_dense_doubles_on_random_columns_match_the_obvious_conversion() -> None:
    import numpy as np

    rng = random.Random(1)
    for _ in range(500):
        arrays = [
            parsed(
                [
                    AnyValue(double_value=rng.choice([rng.random(), math.nan, LOOK_ALIKE]))
                    if rng.random() > gap
                    else AnyValue()
                    for _ in range(rng.randint(1, 20))
                ]
            )
            for gap in (rng.choice([0.0, 0.0, 0.3]) for _ in range(rng.randint(1, 4)))
        ]
        for result, array in zip(columns(arrays, dense_doubles=True), arrays, strict=True):
            values = result.tolist() if isinstance(result, np.ndarray) else result
            assert same(values, reference(array)), arrays
            assert isinstance(result, np.ndarray) == (None not in values)
