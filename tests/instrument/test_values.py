"""instrument._values: OTLP-safe scalars, prediction ids and the per-id sampling rule.

Statistical tolerance: the sampled share of N ids at rate p must lie within 4 binomial standard deviations,
4 * sqrt(p * (1 - p) / N), of p (a false alarm about once in 16,000 runs for a fair rule).
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import math
import os
import random
import re
import zlib
from collections import Counter
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

from instrument._guard import STATS
from instrument._values import array_values, clean_list, clean_value, is_sampled, new_ids, sample_mask

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
HEX_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def coerced() -> Iterator[Counter[str]]:
    """STATS.coerced, empty at the start of the test and reset after it."""
    STATS.reset()
    yield STATS.coerced
    STATS.reset()


def assert_otlp_scalar(value: Any) -> None:
    kind = type(value)
    assert kind in (type(None), bool, int, float, str), f"{value!r} is a {kind.__module__}.{kind.__qualname__}"
    if kind is int:
        assert INT64_MIN <= value <= INT64_MAX, f"{value} does not fit in int64"


def same(actual: Any, expected: Any) -> bool:
    """Equal value and exact type; NaN equals NaN."""
    if type(expected) is float and math.isnan(expected):
        return type(actual) is float and math.isnan(actual)
    return type(actual) is type(expected) and actual == expected


def assert_same_list(actual: list[Any], expected: list[Any]) -> None:
    assert type(actual) is list
    assert len(actual) == len(expected), (actual, expected)
    bad = [(i, a, e) for i, (a, e) in enumerate(zip(actual, expected, strict=True)) if not same(a, e)]
    assert not bad, f"(index, got, expected): {bad[:5]}"


# --- clean_value -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, True, False, 0, -1, INT64_MIN, INT64_MAX, 0.0, -2.5, 1e300, "", "abc"])
def test_clean_value_keeps_plain_values(value: Any, coerced: Counter[str]) -> None:
    assert same(clean_value(value, 8), value)
    assert not coerced


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, np.float64("nan"), np.float32("inf")])
def test_clean_value_keeps_nan_and_inf_as_floats(value: Any) -> None:
    out = clean_value(value, 8)
    assert type(out) is float
    assert (math.isnan(out) and math.isnan(value)) or out == value


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (np.float64(0.25), 0.25),
        (np.float32(0.5), 0.5),
        (np.float16(-2.0), -2.0),
        (np.int8(-5), -5),
        (np.int16(300), 300),
        (np.int32(-70000), -70000),
        (np.int64(INT64_MAX), INT64_MAX),
        (np.int64(INT64_MIN), INT64_MIN),
        (np.uint8(255), 255),
        (np.uint32(2**32 - 1), 2**32 - 1),
        (np.uint64(INT64_MAX), INT64_MAX),
        (np.bool_(True), True),
        (np.bool_(False), False),
        (np.str_("abc"), "abc"),
        (np.bytes_(b"abc"), "abc"),
    ],
    ids=lambda v: type(v).__name__,
)
def test_clean_value_turns_numpy_scalars_into_python(value: Any, expected: Any) -> None:
    assert same(clean_value(value, 8), expected)


@pytest.mark.parametrize("value", [INT64_MAX + 1, INT64_MIN - 1, 2**64, -(2**80), np.uint64(2**64 - 1)])
def test_clean_value_makes_ints_outside_int64_floats_and_counts_them(value: Any, coerced: Counter[str]) -> None:
    out = clean_value(value, 8)
    assert type(out) is float
    assert out == float(int(value))
    assert coerced["int_overflow"] == 1


@pytest.mark.parametrize("make", [str, np.str_], ids=["str", "numpy_str"])
def test_clean_value_cuts_long_strings_at_max_len_and_counts_them(make: Any, coerced: Counter[str]) -> None:
    assert clean_value(make("abcde"), 5) == "abcde"
    assert not coerced
    out = clean_value(make("abcdef"), 5)
    assert type(out) is str and out == "abcde"
    assert coerced["truncated"] == 1


@pytest.mark.parametrize(
    "value",
    [pd.NA, pd.NaT, np.datetime64("NaT"), np.datetime64("NaT", "ns"), np.timedelta64("NaT"), None],
    ids=["pd.NA", "pd.NaT", "datetime64_NaT", "datetime64_ns_NaT", "timedelta64_NaT", "None"],
)
def test_clean_value_turns_missing_markers_into_none(value: Any) -> None:
    assert clean_value(value, 64) is None


def test_clean_value_dates_and_times_become_iso_strings() -> None:
    assert clean_value(dt.date(2024, 1, 2), 64) == "2024-01-02"
    assert clean_value(dt.datetime(2024, 1, 2, 3, 4, 5), 64) == "2024-01-02T03:04:05"
    assert clean_value(dt.time(3, 4, 5), 64) == "03:04:05"
    assert clean_value(pd.Timestamp("2024-01-02 03:04:05", tz="UTC"), 64) == "2024-01-02T03:04:05+00:00"
    out = clean_value(np.datetime64("2024-01-02T03:04:05"), 64)
    assert type(out) is str and out.startswith("2024-01-02T03:04:05")
    assert clean_value(np.timedelta64(90, "s"), 64) == str(np.timedelta64(90, "s"))


def test_clean_value_decimal_becomes_float() -> None:
    assert same(clean_value(decimal.Decimal("1.25"), 8), 1.25)
    assert math.isnan(clean_value(decimal.Decimal("NaN"), 8))


def test_clean_value_bytes_are_decoded_cut_and_counted(coerced: Counter[str]) -> None:
    assert clean_value(b"abc", 8) == "abc"
    assert clean_value(bytearray(b"abcdef"), 4) == "abcd"
    assert clean_value(b"\xffab", 8) == "\ufffdab"
    assert coerced["bytes"] == 3


class _Odd:
    def __str__(self) -> str:
        return "odd-object-with-a-long-text"


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text")


class _Colour(enum.IntEnum):
    RED = 3


class _Ratio(float):
    pass


class _Name(str):
    pass


def test_clean_value_turns_other_objects_into_their_str_cut_and_counted(coerced: Counter[str]) -> None:
    assert clean_value(_Odd(), 64) == "odd-object-with-a-long-text"
    assert clean_value(_Odd(), 3) == "odd"
    assert clean_value([1, 2], 64) == "[1, 2]"
    assert clean_value(1 + 2j, 64) == "(1+2j)"
    assert clean_value(_Unprintable(), 64) == "<_Unprintable>"
    assert coerced["object"] == 5


def test_clean_value_subclasses_of_plain_types_become_the_plain_type() -> None:
    assert same(clean_value(_Colour.RED, 8), 3)
    assert same(clean_value(_Ratio(0.5), 8), 0.5)
    assert same(clean_value(_Name("abc"), 8), "abc")
    assert same(clean_value(_Name("abcdef"), 4), "abcd")


def test_clean_value_extended_precision_numpy_scalars_are_otlp_safe() -> None:
    # np.longdouble / np.clongdouble: .item() returns the numpy scalar itself on x86-64 Linux.
    assert same(clean_value(np.longdouble(1.5), 8), 1.5)
    out = clean_value(np.clongdouble(1.5 + 2j), 64)
    assert_otlp_scalar(out)


def test_clean_value_zero_dimensional_arrays_are_scalars() -> None:
    assert same(clean_value(np.array(2.5), 8), 2.5)
    assert same(clean_value(np.array(7, dtype=np.uint8), 8), 7)
    assert same(clean_value(np.array("abcdefghij"), 8), "abcdefgh")
    assert clean_value(np.array(np.datetime64("NaT")), 8) is None


def test_clean_value_is_otlp_safe_for_everything() -> None:
    values = [
        None, True, 7, 2**70, 1.5, "x" * 100, b"\x00\x01", bytearray(b"a"), np.int64(3), np.uint64(2**64 - 1),
        np.float32(1.5), np.bool_(False), np.str_("s"), np.datetime64("2024-01-01"), np.datetime64("NaT"),
        np.timedelta64(5, "D"), np.void(b"ab"), np.complex64(1j), pd.NA, pd.NaT, pd.Timestamp("2024-01-01"),
        pd.Timedelta("1h"), decimal.Decimal("2.5"), dt.date(2024, 1, 1), dt.datetime(2024, 1, 1), dt.time(1, 2),
        dt.timedelta(seconds=3), _Colour.RED, _Ratio(0.5), _Name("n"), _Odd(), _Unprintable(), object(), [1, [2]],
        {"a": 1}, (1, 2), {1, 2}, frozenset(), range(3), ...,
    ]  # fmt: skip
    for value in values:
        out = clean_value(value, 40)
        assert_otlp_scalar(out)
        if type(out) is str:
            assert len(out) <= 40, (value, out)


# --- clean_list --------------------------------------------------------------------------------------------


def test_clean_list_keeps_plain_lists(coerced: Counter[str]) -> None:
    values = [1.5, None, True, math.nan, -math.inf]
    assert_same_list(clean_list(values, 4), [1.5, None, True, math.nan, -math.inf])
    assert_same_list(clean_list([1, 2, INT64_MAX, "abcd"], 4), [1, 2, INT64_MAX, "abcd"])
    assert_same_list(clean_list([], 4), [])
    assert not coerced


def test_clean_list_cleans_each_value_that_needs_it(coerced: Counter[str]) -> None:
    values = (1, INT64_MAX + 1, "abcdefghijkl", np.float32(0.5), np.int64(2), pd.NA, None, b"ab", dt.date(2024, 1, 2))
    assert_same_list(
        clean_list(values, 10), [1, float(INT64_MAX + 1), "abcdefghij", 0.5, 2, None, None, "ab", "2024-01-02"]
    )
    assert coerced == Counter({"int_overflow": 1, "truncated": 1, "bytes": 1})


@pytest.mark.parametrize(
    "values",
    [[INT64_MIN - 1, 0], [0, INT64_MAX + 1], ["ok", "too long"], [1.5, "too long"], [True, 2**64]],
)
def test_clean_list_does_not_skip_out_of_range_values_in_simple_lists(values: list[Any]) -> None:
    out = clean_list(values, 4)
    for value in out:
        assert_otlp_scalar(value)
        if type(value) is str:
            assert len(value) <= 4


# --- array_values ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_array_values_floats_keep_nan_and_inf(dtype: Any) -> None:
    arr = np.array([0.5, -1.0, np.nan, np.inf, -np.inf], dtype=dtype)
    assert_same_list(array_values(arr, 8), [0.5, -1.0, math.nan, math.inf, -math.inf])


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64])
def test_array_values_integers_are_python_ints(dtype: Any, coerced: Counter[str]) -> None:
    info = np.iinfo(dtype)
    top = min(int(info.max), INT64_MAX)
    arr = np.array([int(info.min), 0, 1, top], dtype=dtype)
    assert_same_list(array_values(arr, 8), [int(info.min), 0, 1, top])
    assert not coerced


def test_array_values_uint64_beyond_int64_become_floats_and_are_counted(coerced: Counter[str]) -> None:
    big = [2**64 - 1, 2**63, 1, 0]
    out = array_values(np.array(big, dtype=np.uint64), 8)
    assert_same_list(out, [float(v) for v in big])
    assert coerced["int_overflow"] == 2  # two of the four values do not fit in int64


def test_array_values_bools() -> None:
    assert_same_list(array_values(np.array([True, False]), 8), [True, False])


def test_array_values_unicode_strings_are_cut_at_max_len(coerced: Counter[str]) -> None:
    assert_same_list(array_values(np.array(["ab", "abcd"]), 4), ["ab", "abcd"])
    assert not coerced
    assert_same_list(array_values(np.array(["ab", "abcdefgh", "abcdef"]), 4), ["ab", "abcd", "abcd"])
    assert coerced["truncated"] == 2


def test_array_values_byte_strings_are_decoded() -> None:
    assert_same_list(array_values(np.array([b"ab", b"\xff"]), 8), ["ab", "\ufffd"])


def test_array_values_datetimes_become_strings_and_nat_none() -> None:
    arr = np.array(["2024-01-02T03:04:05", "NaT", "1999-12-31"], dtype="datetime64[ns]")
    out = array_values(arr, 64)
    assert out[1] is None
    assert type(out[0]) is str and out[0].startswith("2024-01-02T03:04:05")
    assert type(out[2]) is str and out[2].startswith("1999-12-31")
    deltas = np.array([90, "NaT"], dtype="timedelta64[s]")
    assert_same_list(array_values(deltas, 64), [str(np.timedelta64(90, "s")), None])


def test_strings_made_from_dates_and_times_are_cut_at_max_len() -> None:
    arr = np.array(["2024-01-02T03:04:05", "NaT"], dtype="datetime64[ns]")
    assert array_values(arr, 10) == ["2024-01-02", None]
    assert array_values(np.array([90], dtype="timedelta64[s]"), 2) == ["90"]
    assert clean_value(np.datetime64("2024-01-02T03:04:05"), 10) == "2024-01-02"
    assert clean_value(dt.datetime(2024, 1, 2, 3, 4, 5), 10) == "2024-01-02"
    assert clean_value(pd.Timestamp("2024-01-02 03:04:05"), 10) == "2024-01-02"
    assert clean_value(dt.date(2024, 1, 2), 4) == "2024"
    assert clean_value(dt.time(3, 4, 5), 2) == "03"


def test_array_values_object_arrays_are_cleaned_per_value(coerced: Counter[str]) -> None:
    arr = np.array([1, None, "abcdefg", np.int64(2), pd.NA, 2**64, decimal.Decimal("0.5"), _Odd()], dtype=object)
    assert_same_list(array_values(arr, 6), [1, None, "abcdef", 2, None, float(2**64), 0.5, "odd-ob"])
    assert coerced["int_overflow"] == 1 and coerced["object"] == 1 and coerced["truncated"] == 1


def test_array_values_complex_and_void_become_strings() -> None:
    assert_same_list(array_values(np.array([1 + 2j]), 64), [str(1 + 2j)])
    out = array_values(np.array([b"ab"], dtype="V2"), 64)
    assert type(out[0]) is str


def test_array_values_extended_precision_floats_are_python_floats() -> None:
    assert_same_list(array_values(np.array([1.5, np.nan], dtype=np.longdouble), 8), [1.5, math.nan])


def test_array_values_empty() -> None:
    for dtype in (np.float64, np.int64, np.uint64, np.bool_, "U3", "datetime64[s]", object):
        assert array_values(np.array([], dtype=dtype), 8) == []


# --- new_ids -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3, 17, 1000])
def test_new_ids_are_n_lowercase_hex_ids_of_128_bits(n: int) -> None:
    ids = new_ids(n)
    assert type(ids) is list and len(ids) == n
    for one in ids:
        assert type(one) is str and HEX_ID.fullmatch(one), one


@pytest.mark.parametrize("n", [0, -1])
def test_new_ids_empty_for_no_rows(n: int) -> None:
    assert new_ids(n) == []


def test_new_ids_are_unique_over_100k() -> None:
    batch = new_ids(100_000)
    singles = [new_ids(1)[0] for _ in range(1000)]
    assert len(set(batch) | set(singles)) == 100_000 + 1000


def test_new_ids_use_all_hex_digits_in_every_random_position() -> None:
    ids = new_ids(5000) + [new_ids(1)[0] for _ in range(5000)]
    for position in range(12, 32):  # the first 12 are the time in milliseconds
        assert len({one[position] for one in ids}) == 16, position


def test_new_ids_start_with_the_time_so_they_sort_by_creation() -> None:
    import time

    before = time.time_ns() // 1_000_000
    ids = new_ids(3)
    after = time.time_ns() // 1_000_000
    assert {one[:12] for one in ids} == {ids[0][:12]}
    assert before <= int(ids[0][:12], 16) <= after
    time.sleep(0.002)
    assert new_ids(1)[0] > ids[0]


def test_new_ids_differ_after_fork() -> None:
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report its ids through the pipe and leave without running pytest's teardown
        code = 1
        try:
            os.close(read_fd)
            os.write(write_fd, " ".join(new_ids(1) + new_ids(3)).encode())
            os.close(write_fd)
            code = 0
        finally:
            os._exit(code)
    os.close(write_fd)
    parent = new_ids(1) + new_ids(3)
    with os.fdopen(read_fd, "rb") as pipe:
        child = pipe.read().decode().split()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert len(child) == 4 and all(HEX_ID.fullmatch(one) for one in child)
    assert not set(child) & set(parent)


# --- is_sampled / sample_mask ------------------------------------------------------------------------------


def _hex_ids(n: int) -> list[str]:
    rng = random.Random(20260101)
    return [f"{rng.getrandbits(128):032x}" for _ in range(n)]


SHARE_N = 200_000


@pytest.fixture(scope="module")
def share_ids() -> dict[str, list[str]]:
    return {"random_hex": _hex_ids(SHARE_N), "sequential": [str(i) for i in range(SHARE_N)]}


@pytest.mark.parametrize("kind", ["random_hex", "sequential"])
@pytest.mark.parametrize("rate", [0.01, 0.1, 0.5])
def test_sampled_share_matches_the_rate(share_ids: dict[str, list[str]], kind: str, rate: float) -> None:
    ids = share_ids[kind]
    sampled = sum(sample_mask(ids, rate))
    share = sampled / SHARE_N
    sd = math.sqrt(rate * (1 - rate) / SHARE_N)
    assert abs(share - rate) <= 4 * sd, f"{kind} ids at rate {rate}: share {share:.5f}, 4 sd = {4 * sd:.5f}"
    head = ids[:20_000]  # is_sampled gives the same count (checked on a slice: it is the slow path)
    assert sum(is_sampled(i, rate) for i in head) == sum(sample_mask(head, rate))


MIXED_IDS = ["", "0", "1", "abc", "ÿ", "日本語", "\ud800", "a" * 500, *new_ids(300), *(str(i) for i in range(300))]


@pytest.mark.parametrize("rate", [0.0, 1e-9, 0.01, 0.25, 0.5, 0.999, 1.0])
def test_sample_mask_agrees_with_is_sampled(rate: float) -> None:
    assert sample_mask(MIXED_IDS, rate) == [is_sampled(i, rate) for i in MIXED_IDS]


def test_is_sampled_is_the_documented_crc32_rule() -> None:
    # Other processes (log_actuals, the collector) must reproduce the decision from the id alone.
    for rate in (0.01, 0.3, 0.75):
        for prediction_id in MIXED_IDS:
            crc = zlib.crc32(prediction_id.encode("utf-8", "surrogatepass"))
            assert is_sampled(prediction_id, rate) is (crc < rate * 2**32)


def test_is_sampled_is_deterministic() -> None:
    ids = new_ids(1000)
    first = [is_sampled(i, 0.3) for i in ids]
    assert [is_sampled(i, 0.3) for i in ids] == first
    assert [is_sampled(str(i), 0.3) for i in list(ids)] == first  # equal strings, other objects
    assert 0 < sum(first) < len(ids)


def test_is_sampled_is_monotone_in_the_rate() -> None:
    ids = new_ids(2000)
    rates = [0.0, 0.05, 0.2, 0.5, 0.8, 1.0]
    for low, high in zip(rates, rates[1:], strict=False):
        for prediction_id in ids:
            assert is_sampled(prediction_id, high) or not is_sampled(prediction_id, low)


@pytest.mark.parametrize("rate", [0.0, -0.5, -math.inf])
def test_rate_zero_or_below_samples_nothing(rate: float) -> None:
    assert not any(is_sampled(i, rate) for i in MIXED_IDS)
    assert sample_mask(MIXED_IDS, rate) == [False] * len(MIXED_IDS)


@pytest.mark.parametrize("rate", [1.0, 1.5, math.inf])
def test_rate_one_or_above_samples_everything(rate: float) -> None:
    ids = [*MIXED_IDS, *_hex_ids(20_000)]
    assert all(is_sampled(i, rate) for i in ids)
    assert sample_mask(ids, rate) == [True] * len(ids)


def test_sample_mask_of_no_ids() -> None:
    assert sample_mask([], 0.5) == []
