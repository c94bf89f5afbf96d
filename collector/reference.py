"""Reference profiles: what "normal" looks like for each input and output column of a model version.

A profile is small and fixed in size whatever the number of reference rows (Evidently #506 asks for exactly
this): per numeric column the PSI bin edges and proportions, min/max/mean/std and `QUANTILE_ATOMS` (1,000)
equal-mass quantiles; per categorical column at most `max_categories` category counts. Build one with
`reference_build.reference_from_columns` (an upload of raw columns) or `reference_build.reference_from_sketches`
(a production time range), store it with `to_bytes()` and read it back with `ReferenceProfile.from_bytes()`:

    profile = reference_from_columns("churn", "3", inputs={"age": [31, 45, None]}, outputs={"score": [0.2, 0.9, 0.4]})
    blob = profile.to_bytes()
    assert ReferenceProfile.from_bytes(blob) == profile

Why 1,000 quantile atoms rather than a KLL sketch for KS and Wasserstein: the atoms `Q((j + 0.5) / 1000)`
(inverted-CDF quantiles, so always data values) give a CDF that is off by at most 0.0005 in rank everywhere,
deterministically, in 8 KB; a KLL of similar size (k ~ 1000) is off by ~0.3 % and differs from run to run
(random compaction). Below 1,000 finite rows the atoms are the sorted rows themselves, so small references
are exact.
"""

from __future__ import annotations

import json
import math
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from collector.distances import StepCDF

__all__ = [
    "FORMAT_VERSION",
    "QUANTILE_ATOMS",
    "CategoricalSummary",
    "ColumnReference",
    "ColumnSketchLike",
    "Kind",
    "NumericSummary",
    "ReferenceProfile",
    "Role",
    "Source",
]

Role = Literal["input", "output"]
Kind = Literal["numeric", "categorical", "empty"]
Source = Literal["upload", "production range"]

FORMAT_VERSION = 1
QUANTILE_ATOMS = 1000
_MAGIC = b"PWREF"
_ROLES = ("input", "output")
_KINDS = ("numeric", "categorical", "empty")
_SOURCES = ("upload", "production range")


class ColumnSketchLike(Protocol):
    """What drift and reference-from-sketches read from a column sketch (`sketches.ColumnSketch` has it all).

    `kll` is a `datasketches.kll_doubles_sketch` of the finite numbers; `items` a
    `datasketches.frequent_strings_sketch` of strings and bools (as "true"/"false"). Counts: `count` is every
    value, missing (None) included; `n_numeric` finite numbers, bool excluded.
    """

    @property
    def count(self) -> int: ...
    @property
    def missing(self) -> int: ...
    @property
    def nan(self) -> int: ...
    @property
    def inf(self) -> int: ...
    @property
    def n_numeric(self) -> int: ...
    @property
    def n_string(self) -> int: ...
    @property
    def n_bool(self) -> int: ...
    @property
    def n_other(self) -> int: ...
    @property
    def min(self) -> float: ...
    @property
    def max(self) -> float: ...
    @property
    def mean(self) -> float: ...
    @property
    def m2(self) -> float: ...
    @property
    def kll(self) -> Any: ...
    @property
    def items(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class NumericSummary:
    """The finite values of a numeric reference column.

    `edges` are the interior PSI edges (strictly increasing); bin i is `edges[i-1] <= x < edges[i]`, the first
    bin open to -inf and the last to +inf, so `len(proportions) == len(edges) + 1`. `quantiles` are the sorted
    equal-mass atoms (see the module docstring). `std` is the population standard deviation (ddof=0).
    """

    n: int
    min: float
    max: float
    mean: float
    std: float
    edges: tuple[float, ...]
    proportions: tuple[float, ...]
    quantiles: tuple[float, ...]

    def cdf(self) -> StepCDF:
        """The reference CDF for KS and Wasserstein: the atoms with equal weights, standing for `n` rows."""
        return StepCDF.from_sample(self.quantiles, n=self.n)


@dataclass(frozen=True, slots=True)
class CategoricalSummary:
    """The string/bool values of a categorical reference column: the kept categories (most frequent first) and
    `other`, the values of the categories beyond the cap. `n == sum(counts) + other`."""

    n: int
    categories: tuple[str, ...]
    counts: tuple[int, ...]
    other: int

    @property
    def truncated(self) -> bool:
        return self.other > 0

    def bin_counts(self) -> list[int]:
        """Counts over the PSI bins: one per kept category, then one for everything else."""
        return [*self.counts, self.other]


@dataclass(frozen=True, slots=True)
class ColumnReference:
    """One column of a reference. Counts are over all `count` values: `missing` (None), `nan`, `inf` and
    `mismatched` (values of the other kind: strings/bools in a numeric column, numbers in a categorical one,
    and anything that is neither). Exactly one summary is set for numeric and categorical columns with values;
    an "empty" column (no values of either kind) has neither."""

    name: str
    role: Role
    kind: Kind
    count: int
    missing: int = 0
    nan: int = 0
    inf: int = 0
    mismatched: int = 0
    numeric: NumericSummary | None = None
    categorical: CategoricalSummary | None = None

    @property
    def missing_rate(self) -> float | None:
        return self.missing / self.count if self.count else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role,
            "kind": self.kind,
            "count": self.count,
            "missing": self.missing,
            "nan": self.nan,
            "inf": self.inf,
            "mismatched": self.mismatched,
            "numeric": None if self.numeric is None else _numeric_to_dict(self.numeric),
            "categorical": None if self.categorical is None else _categorical_to_dict(self.categorical),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnReference:
        role, kind = data["role"], data["kind"]
        if role not in _ROLES or kind not in _KINDS:
            raise ValueError(f"column {data.get('name')!r}: unknown role {role!r} or kind {kind!r}")
        numeric, categorical = data.get("numeric"), data.get("categorical")
        return cls(
            name=str(data["name"]),
            role=role,
            kind=kind,
            count=int(data["count"]),
            missing=int(data["missing"]),
            nan=int(data["nan"]),
            inf=int(data["inf"]),
            mismatched=int(data["mismatched"]),
            numeric=None if numeric is None else _numeric_from_dict(numeric),
            categorical=None if categorical is None else _categorical_from_dict(categorical),
        )


@dataclass(frozen=True, slots=True)
class ReferenceProfile:
    """The reference of one model version. `source` says where it came from; `range_s` is the (start, end) Unix
    seconds of a production range. `actuals` is reserved for a summary of reference labels (not built yet)."""

    model: str
    version: str
    columns: tuple[ColumnReference, ...]
    rows: int
    created_at: float = field(default_factory=time.time)
    source: Source = "upload"
    range_s: tuple[float, float] | None = None
    actuals: dict[str, Any] | None = None

    def column(self, role: Role, name: str) -> ColumnReference | None:
        for column in self.columns:
            if column.role == role and column.name == name:
                return column
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "model": self.model,
            "version": self.version,
            "rows": self.rows,
            "created_at": self.created_at,
            "source": self.source,
            "range_s": None if self.range_s is None else list(self.range_s),
            "actuals": self.actuals,
            "columns": [column.to_dict() for column in self.columns],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReferenceProfile:
        version = data.get("format")
        if version != FORMAT_VERSION:
            raise ValueError(f"unsupported reference format {version!r}; this predwatch reads {FORMAT_VERSION}")
        if data["source"] not in _SOURCES:
            raise ValueError(f"unknown reference source {data['source']!r}")
        range_s = data.get("range_s")
        return cls(
            model=str(data["model"]),
            version=str(data["version"]),
            columns=tuple(ColumnReference.from_dict(column) for column in data["columns"]),
            rows=int(data["rows"]),
            created_at=float(data["created_at"]),
            source=data["source"],
            range_s=None if range_s is None else (float(range_s[0]), float(range_s[1])),
            actuals=data.get("actuals"),
        )

    def to_json(self) -> str:
        # allow_nan=False: a NaN here is a bug (summaries hold finite numbers only), not data to ship.
        return json.dumps(self.to_dict(), allow_nan=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> ReferenceProfile:
        return cls.from_dict(json.loads(text))

    def to_bytes(self) -> bytes:
        return _MAGIC + zlib.compress(self.to_json().encode())

    @classmethod
    def from_bytes(cls, blob: bytes) -> ReferenceProfile:
        if not blob.startswith(_MAGIC):
            raise ValueError("not a predwatch reference profile (bad magic)")
        try:
            text = zlib.decompress(blob[len(_MAGIC) :])
        except zlib.error as exc:
            raise ValueError("corrupt reference profile") from exc
        return cls.from_json(text)


def _floats(values: Any) -> tuple[float, ...]:
    out = tuple(float(v) for v in values)
    if not all(math.isfinite(v) for v in out):
        raise ValueError("reference summaries hold finite numbers only")
    return out


def _numeric_to_dict(s: NumericSummary) -> dict[str, Any]:
    return {
        "n": s.n,
        "min": s.min,
        "max": s.max,
        "mean": s.mean,
        "std": s.std,
        "edges": list(s.edges),
        "proportions": list(s.proportions),
        "quantiles": list(s.quantiles),
    }


def _numeric_from_dict(d: Mapping[str, Any]) -> NumericSummary:
    edges, proportions = _floats(d["edges"]), _floats(d["proportions"])
    quantiles = _floats(d["quantiles"])
    if len(proportions) != len(edges) + 1 or not quantiles or np.any(np.diff(edges) <= 0):
        raise ValueError("numeric reference summary: edges must increase and proportions be one longer")
    return NumericSummary(
        n=int(d["n"]),
        min=float(d["min"]),
        max=float(d["max"]),
        mean=float(d["mean"]),
        std=float(d["std"]),
        edges=edges,
        proportions=proportions,
        quantiles=quantiles,
    )


def _categorical_to_dict(s: CategoricalSummary) -> dict[str, Any]:
    return {"n": s.n, "categories": list(s.categories), "counts": list(s.counts), "other": s.other}


def _categorical_from_dict(d: Mapping[str, Any]) -> CategoricalSummary:
    categories = tuple(str(c) for c in d["categories"])
    counts = tuple(int(c) for c in d["counts"])
    if len(categories) != len(counts):
        raise ValueError("categorical reference summary: one count per category")
    return CategoricalSummary(n=int(d["n"]), categories=categories, counts=counts, other=int(d["other"]))
