"""Build reference profiles from raw columns (an upload) or from sketches (a production time range).

Column kind (`infer_kind`, the same rule as `sketches.ColumnSketch.kind`): the values are split into finite
numbers (int/float and numpy numbers; bool is not a number), categorical values (str and bool) and the rest
(None, NaN, ±inf, other types). The column is numeric when it has finite numbers and at least as many of them
as categorical values, else categorical when it has categorical values, else "empty". The minority kind and
other types count as `mismatched`. Integer columns with few distinct values (0/1 flags, ratings 1-5) stay
numeric: the wire carries them as numbers, the current window keeps them in a KLL sketch, and the decile edges
collapse so each frequent value gets a bin of its own; send them as strings to have them treated as
categories. Strings are cut to `DEFAULT_MAX_STRING_LEN` characters as the sketches cut them.

Numeric reference from raw values (exact): interior PSI edges at `np.quantile(finite, i / bins)` for
i = 1..bins-1 (numpy's default linear method), duplicates merged; exact bin proportions; min/max; mean and
population std; `QUANTILE_ATOMS` inverted-CDF quantile atoms (all sorted values when there are fewer).
From a sketch: edges at the KLL's quantiles `get_quantiles(i / bins, inclusive=True)`, proportions from its
PMF, atoms from its quantiles at the midpoint ranks (or its items when it still holds every value exactly).

Categorical: exact counts of the `max_categories` most frequent categories (ties by name), the rest summed
as `other`; from a sketch, the frequent-items estimates.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import numpy.typing as npt
from datasketches import frequent_items_error_type

from collector.reference import (
    QUANTILE_ATOMS,
    CategoricalSummary,
    ColumnReference,
    ColumnSketchLike,
    Kind,
    NumericSummary,
    ReferenceProfile,
    Role,
)
from collector.sketches import SketchConfig

__all__ = [
    "DEFAULT_BINS",
    "DEFAULT_MAX_CATEGORIES",
    "DEFAULT_MAX_STRING_LEN",
    "column_reference_from_sketch",
    "column_reference_from_values",
    "infer_kind",
    "reference_from_columns",
    "reference_from_sketches",
]

DEFAULT_BINS = 10
DEFAULT_MAX_CATEGORIES = 1000
# Categories are cut to the length the current window's sketch keeps, or long ones would never match.
DEFAULT_MAX_STRING_LEN = SketchConfig().max_string_len

Column = Iterable[object] | npt.NDArray[np.generic]
T = TypeVar("T")


@dataclass(slots=True)
class _Split:
    """Raw values sorted by type. `numbers` holds finite values and infinities (NaN is counted apart)."""

    numbers: npt.NDArray[np.float64]
    strings: list[str] = field(default_factory=list)
    count: int = 0
    missing: int = 0
    nan: int = 0
    other: int = 0

    @property
    def finite(self) -> npt.NDArray[np.float64]:
        return self.numbers[np.isfinite(self.numbers)]


def _split(values: Column) -> _Split:
    if isinstance(values, np.ndarray) and values.dtype.kind in "fiu":
        floats = values.astype(np.float64).ravel()
        is_nan = np.isnan(floats)
        return _Split(numbers=floats[~is_nan], count=floats.size, nan=int(is_nan.sum()))
    if isinstance(values, np.ndarray) and values.dtype.kind == "b":
        flags = values.ravel()
        return _Split(numbers=np.empty(0), strings=np.where(flags, "true", "false").tolist(), count=flags.size)
    items = values.tolist() if isinstance(values, np.ndarray) else list(values)
    types = set(map(type, items))
    n_none = items.count(None) if type(None) in types else 0
    if types <= {float, int, type(None)}:  # the common cases, vectorised
        try:
            floats = np.asarray(items, dtype=np.float64)  # None becomes NaN here: taken back off below
        except OverflowError:  # an int beyond float range: sorted out value by value below
            pass
        else:
            is_nan = np.isnan(floats)
            return _Split(numbers=floats[~is_nan], count=len(items), missing=n_none, nan=int(is_nan.sum()) - n_none)
    if types <= {str, type(None)}:
        strings = [str(value) for value in items if value is not None]
        return _Split(numbers=np.empty(0), strings=strings, count=len(items), missing=n_none)
    split = _Split(numbers=np.empty(0))
    numbers: list[float] = []
    for value in items:
        split.count += 1
        if value is None:
            split.missing += 1
        elif isinstance(value, bool | np.bool_):
            split.strings.append("true" if value else "false")
        elif isinstance(value, int | float | np.integer | np.floating):
            try:
                number = float(value)
            except OverflowError:  # an int beyond float range
                number = math.inf if value > 0 else -math.inf
            if math.isnan(number):
                split.nan += 1
            else:
                numbers.append(number)
        elif isinstance(value, str):
            split.strings.append(value)
        else:
            split.other += 1
    split.numbers = np.asarray(numbers, dtype=np.float64)
    return split


def _kind(finite: int, categorical: int) -> Kind:
    if finite > 0 and finite >= categorical:
        return "numeric"
    return "categorical" if categorical > 0 else "empty"


def infer_kind(values: Column) -> Kind:
    """ "numeric", "categorical" or "empty" by the majority rule in the module docstring."""
    split = _split(values)
    return _kind(split.finite.size, len(split.strings))


def _check(bins: int, max_categories: int) -> None:
    if bins < 2:
        raise ValueError(f"bins must be at least 2, got {bins}")
    if max_categories < 1:
        raise ValueError(f"max_categories must be at least 1, got {max_categories}")


def _levels(bins: int) -> npt.NDArray[np.float64]:
    return np.arange(1, bins) / bins


def _atom_ranks() -> npt.NDArray[np.float64]:
    return (np.arange(QUANTILE_ATOMS) + 0.5) / QUANTILE_ATOMS


def _numeric_from_values(finite: npt.NDArray[np.float64], bins: int) -> NumericSummary:
    edges = np.unique(np.quantile(finite, _levels(bins)))
    counts = np.bincount(np.searchsorted(edges, finite, side="right"), minlength=edges.size + 1)
    if finite.size <= QUANTILE_ATOMS:
        atoms = np.sort(finite)
    else:
        atoms = np.quantile(finite, _atom_ranks(), method="inverted_cdf")
    return NumericSummary(
        n=int(finite.size),
        min=float(finite.min()),
        max=float(finite.max()),
        mean=float(finite.mean()),
        std=float(finite.std()),
        edges=tuple(edges.tolist()),
        proportions=tuple((counts / finite.size).tolist()),
        quantiles=tuple(atoms.tolist()),
    )


def _categorical_from_counts(counter: Mapping[str, int], total: int, max_categories: int) -> CategoricalSummary:
    ranked = sorted(counter.items(), key=lambda item: (-item[1], item[0]))[:max_categories]
    kept = sum(count for _, count in ranked)
    return CategoricalSummary(
        n=total,
        categories=tuple(name for name, _ in ranked),
        counts=tuple(int(count) for _, count in ranked),
        other=max(total - kept, 0),
    )


def column_reference_from_values(
    name: str,
    role: Role,
    values: Column,
    *,
    kind: Kind | None = None,
    bins: int = DEFAULT_BINS,
    max_categories: int = DEFAULT_MAX_CATEGORIES,
    max_string_len: int = DEFAULT_MAX_STRING_LEN,
) -> ColumnReference:
    """The exact reference of one raw column (a list, or a 1-D numpy array). `kind` overrides `infer_kind`."""
    _check(bins, max_categories)
    split = _split(values)
    kind = kind or _kind(split.finite.size, len(split.strings))
    n_inf = int(np.isinf(split.numbers).sum())
    if kind == "numeric":
        finite = split.finite
        return ColumnReference(
            name=name,
            role=role,
            kind=kind,
            count=split.count,
            missing=split.missing,
            nan=split.nan,
            inf=n_inf,
            mismatched=len(split.strings) + split.other,
            numeric=_numeric_from_values(finite, bins) if finite.size else None,
        )
    counter = Counter(value[:max_string_len] for value in split.strings)
    return ColumnReference(
        name=name,
        role=role,
        kind=kind,
        count=split.count,
        missing=split.missing,
        nan=split.nan,
        inf=n_inf,
        mismatched=split.numbers.size + split.other,
        categorical=_categorical_from_counts(counter, len(split.strings), max_categories) if counter else None,
    )


def _numeric_from_sketch(sketch: ColumnSketchLike, bins: int) -> NumericSummary:
    kll = sketch.kll
    n = int(kll.n)
    edges = np.unique(np.asarray(kll.get_quantiles(_levels(bins).tolist(), True), dtype=np.float64))
    proportions = np.asarray(kll.get_pmf(edges.tolist(), False), dtype=np.float64)
    if n <= QUANTILE_ATOMS and not kll.is_estimation_mode():
        retained = np.asarray(list(kll), dtype=np.float64).reshape(-1, 2)
        atoms = np.sort(np.repeat(retained[:, 0], retained[:, 1].astype(np.int64)))
    else:
        atoms = np.asarray(kll.get_quantiles(_atom_ranks().tolist(), True), dtype=np.float64)
    return NumericSummary(
        n=n,
        min=float(sketch.min),
        max=float(sketch.max),
        mean=float(sketch.mean),
        std=math.sqrt(max(float(sketch.m2), 0.0) / n),
        edges=tuple(edges.tolist()),
        proportions=tuple(proportions.tolist()),
        quantiles=tuple(atoms.tolist()),
    )


def column_reference_from_sketch(
    name: str,
    role: Role,
    sketch: ColumnSketchLike,
    *,
    kind: Kind | None = None,
    bins: int = DEFAULT_BINS,
    max_categories: int = DEFAULT_MAX_CATEGORIES,
) -> ColumnReference:
    """The reference of one column from its sketch over a production range (quantiles within the KLL's error)."""
    _check(bins, max_categories)
    numbers, categorical = sketch.n_numeric + sketch.inf, sketch.n_string + sketch.n_bool
    kind = kind or _kind(sketch.n_numeric, categorical)
    numeric_summary = categorical_summary = None
    if kind == "numeric":
        mismatched = categorical + sketch.n_other
        numeric_summary = _numeric_from_sketch(sketch, bins) if sketch.n_numeric else None
    else:
        mismatched = numbers + sketch.n_other
        if not sketch.items.is_empty():
            rows = sketch.items.get_frequent_items(frequent_items_error_type.NO_FALSE_NEGATIVES)
            counter = {str(row[0]): int(row[1]) for row in rows}
            categorical_summary = _categorical_from_counts(counter, int(sketch.items.total_weight), max_categories)
    return ColumnReference(
        name=name,
        role=role,
        kind=kind,
        count=int(sketch.count),
        missing=int(sketch.missing),
        nan=int(sketch.nan),
        inf=int(sketch.inf),
        mismatched=int(mismatched),
        numeric=numeric_summary,
        categorical=categorical_summary,
    )


def _groups(inputs: Mapping[str, T], outputs: Mapping[str, T] | None) -> list[tuple[Role, Mapping[str, T]]]:
    return [("input", inputs), ("output", outputs or {})]


def _rows(columns: Iterable[ColumnReference]) -> int:
    counts = {column.count for column in columns}
    if len(counts) > 1:
        raise ValueError(f"reference columns differ in length: {sorted(counts)}")
    return counts.pop() if counts else 0


def reference_from_columns(
    model: str,
    version: str,
    inputs: Mapping[str, Column],
    outputs: Mapping[str, Column] | None = None,
    *,
    kinds: Mapping[str, Kind] | None = None,
    bins: int = DEFAULT_BINS,
    max_categories: int = DEFAULT_MAX_CATEGORIES,
    max_string_len: int = DEFAULT_MAX_STRING_LEN,
    created_at: float | None = None,
) -> ReferenceProfile:
    """A profile from raw columns (`PUT /api/v1/models/{m}/reference`, `predwatch reference set`).

    `kinds` forces the kind of named columns. Raises ValueError when the columns differ in length.
    """
    kinds = kinds or {}
    columns = [
        column_reference_from_values(
            name,
            role,
            values,
            kind=kinds.get(name),
            bins=bins,
            max_categories=max_categories,
            max_string_len=max_string_len,
        )
        for role, group in _groups(inputs, outputs)
        for name, values in group.items()
    ]
    return ReferenceProfile(
        model=model,
        version=version,
        columns=tuple(columns),
        rows=_rows(columns),
        created_at=time.time() if created_at is None else created_at,
        source="upload",
    )


def reference_from_sketches(
    model: str,
    version: str,
    inputs: Mapping[str, ColumnSketchLike],
    outputs: Mapping[str, ColumnSketchLike] | None = None,
    *,
    range_s: tuple[float, float] | None = None,
    bins: int = DEFAULT_BINS,
    max_categories: int = DEFAULT_MAX_CATEGORIES,
    created_at: float | None = None,
) -> ReferenceProfile:
    """A profile from the merged sketches of a production range (`source="production range"`).

    `rows` is the largest column count (columns seen in fewer events have smaller counts).
    """
    columns = [
        column_reference_from_sketch(name, role, sketch, bins=bins, max_categories=max_categories)
        for role, group in _groups(inputs, outputs)
        for name, sketch in group.items()
    ]
    return ReferenceProfile(
        model=model,
        version=version,
        columns=tuple(columns),
        rows=max((column.count for column in columns), default=0),
        created_at=time.time() if created_at is None else created_at,
        source="production range",
        range_s=range_s,
    )
