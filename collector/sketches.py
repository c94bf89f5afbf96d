"""Mergeable column sketches: the state that drift, data quality and the dashboard are computed from.

A `ColumnSketch` summarises one column (a feature or a model output) over some rows; a `Profile` holds the
sketches of every column of one (model, version, time range). Both follow the datasketches life cycle
`zero()` -> `update(values)` -> `merge(other)` -> `to_bytes()` / `from_bytes()`, and merging is exact for
counts and moments and within the stated sketch error for the rest::

    profile = Profile.zero()
    profile.update_from(batch)                      # an InferenceBatch
    profile.merge(Profile.from_bytes(stored_blob))  # in place
    income = profile.columns[("input", "income")]
    income.kll.get_quantile(0.5), income.mean, income.variance, income.missing / income.count

Error bounds (datasketches, 99% confidence, independent of the number of values):
- KLL k=200: normalised rank error 1.33% for a single rank or quantile query, 1.65% for PMF/CDF (the whole
  distribution at once, i.e. what KS, PSI bins and Wasserstein read). Min and max are exact.
- Frequent strings lg_max_k=10: exact while a column has fewer than 768 distinct values; otherwise each
  count is off by at most 0.0034 * (n_string + n_bool) (epsilon 3.5 / 2^lg_max_k).
- Distinct counts (lg_k=12, one relative standard error): strings and bools go through the datasketches HLL
  (`hll`, 1.3%, 1.6% once merged; near-exact below a few hundred values); finite numbers through
  `numeric_hll`, a numpy HyperLogLog with the same lg_k (1.6%, linear-counting exact-ish while small),
  because per-value calls into the C++ HLL cost ~100 ns each and would double the cost of a numeric update.
  Numbers and strings never collide, so `distinct` is the sum; NaN, inf and None are not counted.
- count, missing, nan, inf, n_numeric, n_string, n_bool, n_other: exact. mean, m2: exact up to float64
  rounding (Chan et al.'s parallel update).
"""

from __future__ import annotations

import functools
import math
import struct
import zlib
from collections import Counter
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import datasketches as ds
import numpy as np

from collector import numeric_hll
from collector.records import InferenceBatch

__all__ = ["ColumnKey", "ColumnSketch", "Profile", "SketchConfig", "batch_rows"]

ColumnKey = tuple[str, str]  # (role, name), role "input" | "output"

_FORMAT = 1  # header byte of ColumnSketch and Profile blobs; bump on any layout change
_HEAD = struct.Struct("<BI")  # format, CRC-32 of the rest
_FIXED = struct.Struct("<HBBHIB")  # the SketchConfig, flags
_WIDE, _MOMENTS = 1, 2  # flags: counts are uint64 (else uint32); mean and m2 follow
_COUNTS32, _COUNTS64 = struct.Struct("<8I"), struct.Struct("<8Q")
_MOMENTS_S = struct.Struct("<dd")
_SIZES = struct.Struct("<4I")  # kll, frequent items, hll, numeric hll
_PROFILE_HEAD = struct.Struct("<BQQI")  # format, rows, dropped columns, columns
_COLUMN_HEAD = struct.Struct("<BHI")  # role, name length, sketch length
_MAX_PARTS = 64  # lazily merged HLL parts kept before they are unioned
_MAX_NAME = 1024  # characters; longer column names are refused like columns past max_columns
_NONE = type(None)
_NUMERIC_OR_NONE = {float, int, _NONE}
_STR_OR_NONE = {str, _NONE}
_ROLES = ("input", "output")


@dataclass(frozen=True, slots=True)
class SketchConfig:
    kll_k: int = 200
    items_lg_max_k: int = 10
    hll_lg_k: int = 12
    max_string_len: int = 128
    max_columns: int = 1000  # per Profile; further columns are counted in Profile.dropped_columns

    def __post_init__(self) -> None:
        if not 8 <= self.kll_k <= 65535:
            raise ValueError(f"kll_k must be in [8, 65535], got {self.kll_k}")
        if not 3 <= self.items_lg_max_k <= 20:
            raise ValueError(f"items_lg_max_k must be in [3, 20], got {self.items_lg_max_k}")
        if not 7 <= self.hll_lg_k <= 16:
            raise ValueError(f"hll_lg_k must be in [7, 16], got {self.hll_lg_k}")
        if not 1 <= self.max_string_len <= 65535 or self.max_columns < 1:
            raise ValueError("max_string_len must be in [1, 65535] and max_columns >= 1")


_DEFAULT = SketchConfig()


class ColumnSketch:
    """Everything predwatch keeps about one column. Numbers are finite int/float values (bool is not numeric).

    Empty cases: `min`, `max`, `mean` are nan without finite numbers, `variance` is nan below two of them.
    """

    __slots__ = (
        *("config", "count", "missing", "nan", "inf", "n_numeric", "n_string", "n_bool", "n_other"),
        *("mean", "m2", "kll", "items", "_hll", "_hll_parts", "_nhll", "_nhll_parts"),
    )

    def __init__(self, config: SketchConfig | None = None) -> None:
        self.config = config or _DEFAULT
        self.count = self.missing = self.nan = self.inf = 0
        self.n_numeric = self.n_string = self.n_bool = self.n_other = 0
        self.mean = math.nan
        self.m2 = 0.0
        self.kll = ds.kll_doubles_sketch(self.config.kll_k)
        self.items = ds.frequent_strings_sketch(self.config.items_lg_max_k)
        # HLLs merge lazily: serialised parts wait in the *_parts lists until `hll` / `numeric_hll` is read
        # (drift and most reads never ask for distinct counts, and a union costs more than the rest of a merge).
        self._hll = ds.hll_sketch(self.config.hll_lg_k, ds.HLL_4)
        self._hll_parts: list[bytes] = []
        self._nhll: np.ndarray | None = None  # uint8 registers, allocated with the first number
        self._nhll_parts: list[bytes] = []

    @classmethod
    def zero(cls, config: SketchConfig | None = None) -> ColumnSketch:
        return cls(config)

    # -- queries ------------------------------------------------------------------------------------------
    @property
    def min(self) -> float:
        return math.nan if self.kll.is_empty() else float(self.kll.get_min_value())

    @property
    def max(self) -> float:
        return math.nan if self.kll.is_empty() else float(self.kll.get_max_value())

    @property
    def hll(self) -> ds.hll_sketch:
        """Distinct strings and bools (datasketches HLL_4, lg_k from the config)."""
        if self._hll_parts:
            try:
                union = ds.hll_union(self.config.hll_lg_k)
                if not self._hll.is_empty():
                    union.update(self._hll)
                for blob in self._hll_parts:
                    union.update(ds.hll_sketch.deserialize(blob))
            except Exception as exc:
                raise ValueError(f"invalid HLL bytes: {exc}") from exc
            self._hll = union.get_result(ds.HLL_4)
            self._hll_parts = []
        return self._hll

    @property
    def numeric_hll(self) -> np.ndarray | None:
        """Registers of the distinct finite numbers (see `numeric_hll`); None before the first number."""
        if self._nhll_parts:
            parts = [numeric_hll.from_bytes(blob, self.config.hll_lg_k) for blob in self._nhll_parts]
            registers = self._nhll if self._nhll is not None else parts.pop()
            for part in parts:
                numeric_hll.merge(registers, part)
            self._nhll = registers
            self._nhll_parts = []
        return self._nhll

    @property
    def kind(self) -> str:
        categorical = self.n_string + self.n_bool
        if self.n_numeric > 0 and self.n_numeric >= categorical:
            return "numeric"
        return "categorical" if categorical > 0 else "empty"

    @property
    def variance(self) -> float:
        return self.m2 / (self.n_numeric - 1) if self.n_numeric >= 2 else math.nan

    @property
    def distinct(self) -> float:
        """Estimated distinct finite numbers, strings and bools (NaN/inf/None are not counted)."""
        numeric = 0.0 if self.numeric_hll is None else numeric_hll.estimate(self.numeric_hll)
        return numeric + (0.0 if self.hll.is_empty() else float(self.hll.get_estimate()))

    # -- update -------------------------------------------------------------------------------------------
    def update(self, values: Sequence[Any] | np.ndarray) -> None:
        if isinstance(values, np.ndarray):
            if values.ndim != 1:
                raise ValueError(f"a column is one-dimensional, got shape {values.shape}")
            if values.dtype.kind in "fiu":
                self.count += values.size
                self._update_numeric(np.ascontiguousarray(values, dtype=np.float64))
                return
            if values.dtype.kind == "b":
                self.count += values.size
                n_true = int(np.count_nonzero(values))
                self._update_strings({"true": n_true, "false": values.size - n_true}, booleans=True)
                return
        seq: Sequence[Any] = values.tolist() if isinstance(values, np.ndarray) else values
        self.count += len(seq)
        types = set(map(type, seq))
        if types <= _NUMERIC_OR_NONE:
            n_none = seq.count(None) if _NONE in types else 0
            try:  # numpy turns None into nan: those nans are taken back off in _update_numeric
                if n_none:
                    a = np.asarray(seq, dtype=np.float64)
                else:
                    a = np.fromiter(seq, dtype=np.float64, count=len(seq))
            except OverflowError:  # an int beyond float range: sort it out value by value
                self._update_mixed(seq)
                return
            self.missing += n_none
            self._update_numeric(a, n_none)
        elif types <= _STR_OR_NONE:
            counts = Counter(seq)
            self.missing += counts.pop(None, 0)
            self._update_strings(counts, booleans=False)
        else:
            self._update_mixed(seq)

    def _update_mixed(self, values: Iterable[Any]) -> None:
        numbers: list[float] = []
        strings: list[str] = []
        n_true = n_false = 0
        for v in values:
            if v is None:
                self.missing += 1
            elif isinstance(v, (bool, np.bool_)):
                if v:
                    n_true += 1
                else:
                    n_false += 1
            elif isinstance(v, str):
                strings.append(v)
            elif isinstance(v, (int, float, np.integer, np.floating)):
                try:
                    numbers.append(float(v))
                except OverflowError:  # |int| > 1.8e308: a finite number no float holds
                    numbers.append(math.inf if v > 0 else -math.inf)
            else:
                self.n_other += 1
        if numbers:
            self._update_numeric(np.asarray(numbers, dtype=np.float64))
        if n_true or n_false:
            self._update_strings({"true": n_true, "false": n_false}, booleans=True)
        if strings:
            self._update_strings(Counter(strings), booleans=False)

    def _update_numeric(self, a: np.ndarray, n_none: int = 0) -> None:
        total = float(a.sum())
        if not math.isfinite(total):  # a NaN or inf among the values (or a finite sum that overflows)
            finite = np.isfinite(a)
            n_nan = int(np.count_nonzero(np.isnan(a)))
            self.nan += n_nan - n_none
            self.inf += a.size - int(np.count_nonzero(finite)) - n_nan
            a = a[finite]
            total = float(a.sum())
        n = a.size
        if n == 0:
            return
        self.kll.update(a)
        mean_b = total / n
        d = a - mean_b
        self._add_moments(n, mean_b, float(d @ d))
        registers = self.numeric_hll
        if registers is None:
            registers = self._nhll = numeric_hll.new(self.config.hll_lg_k)
        numeric_hll.update(registers, a)

    def _add_moments(self, n_b: int, mean_b: float, m2_b: float) -> None:
        n_a = self.n_numeric
        n = n_a + n_b
        if n_a == 0:
            self.mean, self.m2 = mean_b, m2_b
        else:
            delta = mean_b - self.mean
            self.mean += delta * n_b / n
            self.m2 += m2_b + delta * delta * n_a * n_b / n
        self.n_numeric = n

    def _update_strings(self, counts: dict[str, int], booleans: bool) -> None:
        cut = self.config.max_string_len
        if not booleans and any(len(s) > cut for s in counts):
            cut_counts: Counter[str] = Counter()
            for s, c in counts.items():
                cut_counts[s[:cut]] += c
            counts = cut_counts
        for s, c in counts.items():
            if c == 0:
                continue
            try:
                self.items.update(s, c)
            except TypeError:  # lone surrogates (undecodable bytes smuggled into str) have no UTF-8 form
                s = s.encode("utf-8", "backslashreplace").decode("utf-8")
                self.items.update(s, c)
            self.hll.update(s)
            if booleans:
                self.n_bool += c
            else:
                self.n_string += c

    # -- merge --------------------------------------------------------------------------------------------
    def merge(self, other: ColumnSketch) -> None:
        self.count += other.count
        self.missing += other.missing
        self.nan += other.nan
        self.inf += other.inf
        self.n_string += other.n_string
        self.n_bool += other.n_bool
        self.n_other += other.n_other
        if other.n_numeric:
            self._add_moments(other.n_numeric, other.mean, other.m2)
            self.kll.merge(other.kll)
        self._nhll_parts += other._nhll_parts
        if other._nhll is not None:
            if self._nhll is None:
                self._nhll = other._nhll.copy()
            else:
                numeric_hll.merge(self._nhll, other._nhll)
        if not other.items.is_empty():
            self.items.merge(other.items)
        self._hll_parts += other._hll_parts
        if not other._hll.is_empty():
            self._hll_parts.append(other._hll.serialize_compact())
        if len(self._hll_parts) > _MAX_PARTS:
            self.hll  # noqa: B018 -- materialise to bound memory
        if len(self._nhll_parts) > _MAX_PARTS:
            self.numeric_hll  # noqa: B018

    # -- bytes --------------------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """Layout v1: format byte, CRC-32 of the rest, config + flags, counts, [mean, m2], section sizes, sections."""
        c = self.config
        sections = (
            self.kll.serialize() if self.n_numeric else b"",
            self.items.serialize() if not self.items.is_empty() else b"",
            self.hll.serialize_compact() if not self.hll.is_empty() else b"",
            numeric_hll.to_bytes(self.numeric_hll) if self.numeric_hll is not None else b"",
        )
        counts = self._counts()
        wide = counts[0] > 0xFFFFFFFF
        flags = (_WIDE if wide else 0) | (_MOMENTS if self.n_numeric else 0)
        parts = [
            _FIXED.pack(c.kll_k, c.items_lg_max_k, c.hll_lg_k, c.max_string_len, c.max_columns, flags),
            (_COUNTS64 if wide else _COUNTS32).pack(*counts),
            _MOMENTS_S.pack(self.mean, self.m2) if self.n_numeric else b"",
            _SIZES.pack(*map(len, sections)),
            *sections,
        ]
        body = b"".join(parts)
        return _HEAD.pack(_FORMAT, zlib.crc32(body)) + body

    @classmethod
    def from_bytes(cls, data: bytes | memoryview) -> ColumnSketch:
        """Raises ValueError for anything that is not a ColumnSketch written by this or an older version."""
        try:
            return cls._from_bytes(memoryview(data))
        except ValueError as exc:
            raise ValueError(f"invalid ColumnSketch bytes: {exc}") from exc
        except Exception as exc:  # struct.error, IndexError, datasketches' RuntimeError, ...
            raise ValueError(f"invalid ColumnSketch bytes: {type(exc).__name__}: {exc}") from exc

    @classmethod
    def _from_bytes(cls, data: memoryview) -> ColumnSketch:
        if len(data) < _HEAD.size or data[0] != _FORMAT:
            raise ValueError(f"unknown format {data[0] if len(data) else None}")
        _, crc = _HEAD.unpack_from(data)
        if zlib.crc32(data[_HEAD.size :]) != crc:
            raise ValueError("checksum mismatch")
        *conf, flags = _FIXED.unpack_from(data, _HEAD.size)
        pos = _HEAD.size + _FIXED.size
        counts_s = _COUNTS64 if flags & _WIDE else _COUNTS32
        counts = counts_s.unpack_from(data, pos)
        pos += counts_s.size
        self = cls.__new__(cls)
        self.config = _config(*conf)
        (self.count, self.missing, self.nan, self.inf, self.n_numeric, self.n_string, self.n_bool, self.n_other) = (
            counts
        )
        self.mean, self.m2 = math.nan, 0.0
        if flags & _MOMENTS:
            self.mean, self.m2 = _MOMENTS_S.unpack_from(data, pos)
            pos += _MOMENTS_S.size
        sizes = _SIZES.unpack_from(data, pos)
        pos += _SIZES.size
        if pos + sum(sizes) != len(data) or self.count != sum(counts[1:]):
            raise ValueError("inconsistent lengths or counts")
        blobs = []
        for size in sizes:
            blobs.append(data[pos : pos + size])
            pos += size
        c = self.config
        self.kll = ds.kll_doubles_sketch.deserialize(bytes(blobs[0])) if sizes[0] else ds.kll_doubles_sketch(c.kll_k)
        self.items = (
            ds.frequent_strings_sketch.deserialize(bytes(blobs[1]))
            if sizes[1]
            else ds.frequent_strings_sketch(c.items_lg_max_k)
        )
        self._hll = ds.hll_sketch(c.hll_lg_k, ds.HLL_4)
        self._hll_parts = [bytes(blobs[2])] if sizes[2] else []
        self._nhll = None
        self._nhll_parts = [bytes(blobs[3])] if sizes[3] else []
        if self.kll.n != self.n_numeric or self.items.total_weight != self.n_string + self.n_bool:
            raise ValueError("sketch sizes disagree with counts")
        return self

    def _counts(self) -> tuple[int, ...]:
        return (self.count, self.missing, self.nan, self.inf, self.n_numeric, self.n_string, self.n_bool, self.n_other)

    def __repr__(self) -> str:
        return f"ColumnSketch(kind={self.kind!r}, count={self.count}, missing={self.missing}, mean={self.mean:.6g})"


def batch_rows(batch: InferenceBatch) -> int:
    """Rows in a batch: its ids, else its longest column."""
    return len(batch.ids) or max(map(len, (*batch.inputs.values(), *batch.outputs.values())), default=0)


@dataclass(slots=True)
class Profile:
    """The column sketches of one (model, version, time range).

    Invariant: every column's `count` equals `rows`. A column absent from a batch (or from one side of a merge)
    counts those rows as missing, so `missing / count` is the true missing rate.
    """

    rows: int = 0
    columns: dict[ColumnKey, ColumnSketch] = field(default_factory=dict)
    config: SketchConfig = _DEFAULT
    dropped_columns: int = 0  # column additions refused because the profile already had max_columns

    @classmethod
    def zero(cls, config: SketchConfig | None = None) -> Profile:
        return cls(config=config or _DEFAULT)

    def update_from(self, batch: InferenceBatch, columns: Container[ColumnKey] | None = None) -> None:
        """Add a batch's rows; with `columns`, only those column sketches are kept up to date."""
        data = {("input", name): v for name, v in batch.inputs.items()}
        data.update({("output", name): v for name, v in batch.outputs.items()})
        self.update_columns(batch_rows(batch), data, columns)

    def update_columns(
        self,
        rows: int,
        data: Mapping[ColumnKey, Sequence[Any] | np.ndarray],
        columns: Container[ColumnKey] | None = None,
    ) -> None:
        """Add `rows` rows given column-wise; a column shorter than `rows` is missing for the rest."""
        seen: set[ColumnKey] = set()
        for key, values in data.items():
            if columns is not None and key not in columns:
                continue
            col = self._column(key)
            if col is None:
                continue
            seen.add(key)
            col.update(values[:rows] if len(values) > rows else values)
            if len(values) < rows:
                col.count += rows - len(values)
                col.missing += rows - len(values)
        for key, col in self.columns.items():
            if key not in seen:
                col.count += rows
                col.missing += rows
        self.rows += rows

    def merge(self, other: Profile, columns: Container[ColumnKey] | None = None) -> None:
        """Add `other` in place (restricted to `columns`, when given)."""
        for key, col in self.columns.items():
            if key not in other.columns:
                col.count += other.rows
                col.missing += other.rows
        for key, theirs in other.columns.items():
            if columns is not None and key not in columns:
                continue
            mine = self._column(key)
            if mine is not None:
                mine.merge(theirs)
        self.dropped_columns += other.dropped_columns
        self.rows += other.rows

    def _column(self, key: ColumnKey) -> ColumnSketch | None:
        col = self.columns.get(key)
        if col is None:
            if len(self.columns) >= self.config.max_columns or len(key[1]) > _MAX_NAME or key[0] not in _ROLES:
                self.dropped_columns += 1
                return None
            col = self.columns[key] = ColumnSketch(self.config)
            col.count = col.missing = self.rows
        return col

    def to_bytes(self) -> bytes:
        parts = [_PROFILE_HEAD.pack(_FORMAT, self.rows, self.dropped_columns, len(self.columns))]
        for (role, name), col in self.columns.items():
            raw = name.encode("utf-8", "surrogatepass")
            blob = col.to_bytes()
            parts += (_COLUMN_HEAD.pack(_ROLES.index(role), len(raw), len(blob)), raw, blob)
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes | memoryview, columns: Iterable[ColumnKey] | None = None) -> Profile:
        """Decode a profile; with `columns`, only those column sketches are decoded (the others are skipped)."""
        wanted = None if columns is None else set(columns)
        view = memoryview(data)
        try:
            fmt, rows, dropped, n_cols = _PROFILE_HEAD.unpack_from(view)
            if fmt != _FORMAT:
                raise ValueError(f"unknown format {fmt}")
            self = cls(rows=rows, dropped_columns=dropped)
            pos = _PROFILE_HEAD.size
            for _ in range(n_cols):
                role_i, name_len, size = _COLUMN_HEAD.unpack_from(view, pos)
                pos += _COLUMN_HEAD.size
                key = (_ROLES[role_i], bytes(view[pos : pos + name_len]).decode("utf-8", "surrogatepass"))
                pos += name_len
                if pos + size > len(view):
                    raise ValueError("truncated")
                if wanted is None or key in wanted:
                    col = ColumnSketch.from_bytes(view[pos : pos + size])
                    if col.count != rows:
                        raise ValueError(f"column {key[1]!r} has {col.count} values for {rows} rows")
                    self.columns[key] = col
                    self.config = col.config
                pos += size
            if pos != len(view):
                raise ValueError("trailing bytes")
        except Exception as exc:  # struct.error, IndexError, UnicodeDecodeError, ValueError
            raise ValueError(f"invalid Profile bytes: {exc}") from exc
        return self


@functools.lru_cache(maxsize=16)
def _config(*fields: int) -> SketchConfig:
    return SketchConfig(*fields)
