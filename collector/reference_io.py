"""Read a reference data set from CSV, Parquet or JSON into columns of plain Python values.

    table = read_table("train.csv")                 # format from the extension, or fmt="csv"|"parquet"|"json"
    table.columns["income"][:3]                      # [52000.5, None, 61000.0]

pandas is not used: the collector does not depend on it, and the rules below are few enough to state.

CSV (the standard library's csv module; the delimiter is sniffed among , ; tab |): a cell that is empty or
one of NA, N/A, n/a, NULL, null, None, <NA>, #N/A is missing (None). A column whose other cells are all
numbers becomes numbers (int when every one is an integer, else float; `nan` and `inf` are floats); all
true/false (any case) becomes bools; anything else stays text, as pandas' read_csv would infer it.

Parquet (needs pyarrow: `pip install pyarrow`): nulls are None; dates, times and decimals become text and
floats; nested columns are refused.

JSON: an object of columns `{"col": [...]}`, the API's body `{"inputs": {...}, "outputs": {...},
"actuals": [...]}` (roles kept), a list of row objects, or JSON Lines (one row object per line); values
must be scalars.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["FORMATS", "ReferenceFileError", "Table", "detect_format", "read_table"]

FORMATS = ("csv", "parquet", "json")
_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".json": "json",
    ".jsonl": "json",
    ".ndjson": "json",
}
_MISSING = frozenset(("", "NA", "N/A", "n/a", "NULL", "null", "None", "<NA>", "#N/A"))
_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|inf|infinity|nan)$", re.IGNORECASE)
_BOOLS = {"true": True, "false": False}
_SCALARS = (type(None), bool, int, float, str)


class ReferenceFileError(ValueError):
    """The file cannot be read as a reference; the message says which file, line or column, and why."""


@dataclass(slots=True)
class Table:
    columns: dict[str, list[Any]]
    outputs: list[str] = field(default_factory=list)  # set by files in the API's shape
    target: str | None = None

    @property
    def rows(self) -> int:
        return max((len(v) for v in self.columns.values()), default=0)


def detect_format(path: str | Path) -> str:
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    fmt = _EXTENSIONS.get(suffixes[-1]) if suffixes else None
    if fmt is None:
        raise ReferenceFileError(f"cannot tell the format of {path} from its name: pass --format csv|parquet|json")
    return fmt


def read_table(path: str | Path, fmt: str | None = None) -> Table:
    """Raises ReferenceFileError (a missing file included) with a message for the user."""
    path = Path(path)
    if not path.is_file():
        raise ReferenceFileError(f"no such file: {path}")
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise ReferenceFileError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    table = {"csv": _read_csv, "parquet": _read_parquet, "json": _read_json}[fmt](path)
    if not table.columns:
        raise ReferenceFileError(f"{path} holds no columns")
    return table


# -- CSV ------------------------------------------------------------------------------------------------------
def _read_csv(path: Path) -> Table:
    try:
        with _open_text(path) as f:
            sample = f.read(64 * 1024)
            f.seek(0)
            try:
                dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t|")
            except csv.Error:
                dialect = csv.excel_tab if path.suffix.lower() == ".tsv" else csv.excel
            reader = csv.reader(f, dialect)
            header = next(reader, None)
            if header is None:
                raise ReferenceFileError(f"{path} is empty")
            names = [name.strip() for name in header]
            _check_names(path, names)
            cells: list[list[str]] = [[] for _ in names]
            for row in reader:
                if not row:
                    continue
                if len(row) != len(names):
                    raise ReferenceFileError(
                        f"{path}, line {reader.line_num}: {len(row)} fields where the header has {len(names)}"
                    )
                for column, cell in zip(cells, row, strict=True):
                    column.append(cell)
    except UnicodeDecodeError as exc:
        raise ReferenceFileError(f"{path} is not UTF-8 text: {exc}") from None
    except csv.Error as exc:
        raise ReferenceFileError(f"{path} is not valid CSV: {exc}") from None
    return Table({name: _convert_cells(column) for name, column in zip(names, cells, strict=True)})


def _open_text(path: Path) -> io.TextIOWrapper:
    if path.suffix.lower() == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115 - returned to a with block


def _convert_cells(cells: list[str]) -> list[Any]:
    stripped = [cell.strip() for cell in cells]
    present = [cell for cell in stripped if cell not in _MISSING]
    if present and all(_INT.match(cell) for cell in present):
        return [None if cell in _MISSING else int(cell) for cell in stripped]
    if present and all(_FLOAT.match(cell) for cell in present):
        return [None if cell in _MISSING else float(cell) for cell in stripped]
    if present and all(cell.lower() in _BOOLS for cell in present):
        return [None if cell in _MISSING else _BOOLS[cell.lower()] for cell in stripped]
    return [None if cell in _MISSING else cell for cell in cells]


def _check_names(path: Path, names: list[str]) -> None:
    if any(not name for name in names):
        raise ReferenceFileError(f"{path}: every column needs a name in the header")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ReferenceFileError(f"{path}: duplicate column names {duplicates}")


# -- Parquet ----------------------------------------------------------------------------------------------------
def _read_parquet(path: Path) -> Table:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ReferenceFileError("reading Parquet needs pyarrow: pip install pyarrow (or convert to CSV)") from None
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise ReferenceFileError(f"{path} is not a readable Parquet file: {exc}") from None
    columns: dict[str, list[Any]] = {}
    for name, chunked in zip(table.column_names, table.columns, strict=True):
        kind = chunked.type
        if pa.types.is_nested(kind):
            raise ReferenceFileError(f"{path}: column {name!r} is nested ({kind}); a feature holds scalars")
        if pa.types.is_dictionary(kind):
            chunked = chunked.cast(kind.value_type)
        values = chunked.to_pylist()
        if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)):
            values = [_scalar(v) for v in values]
        columns[str(name)] = values
    _check_names(path, list(columns))
    return Table(columns)


def _scalar(value: Any) -> Any:
    if value is None or isinstance(value, _SCALARS):
        return value
    if isinstance(value, bytes):
        return value.hex()
    try:
        number = float(value)  # Decimal
    except (TypeError, ValueError):
        return value.isoformat() if hasattr(value, "isoformat") else str(value)
    return number


# -- JSON ---------------------------------------------------------------------------------------------------------
def _read_json(path: Path) -> Table:
    try:
        with _open_text(path) as f:
            text = f.read()
    except UnicodeDecodeError as exc:
        raise ReferenceFileError(f"{path} is not UTF-8 text: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg != "Extra data":
            raise ReferenceFileError(f"{path} is not valid JSON: {exc}") from None
        data = _json_lines(path, text)
    if isinstance(data, list):
        return Table(_rows_to_columns(path, data))
    if not isinstance(data, dict):
        raise ReferenceFileError(f"{path}: expected an object of columns or a list of rows")
    if isinstance(data.get("inputs"), dict):  # the API's body shape
        columns = {**data["inputs"], **(data.get("outputs") or {})}
        table = Table(_checked(path, columns), outputs=list(data.get("outputs") or {}))
        if data.get("actuals") is not None:
            table.target = str(data.get("target") or "actuals")
            table.columns[table.target] = _checked(path, {table.target: data["actuals"]})[table.target]
        return table
    return Table(_checked(path, data))


def _json_lines(path: Path, text: str) -> list[Any]:
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ReferenceFileError(f"{path}, line {number}: not valid JSON: {exc}") from None
    return rows


def _rows_to_columns(path: Path, rows: list[Any]) -> dict[str, list[Any]]:
    names: dict[str, None] = {}
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ReferenceFileError(f"{path}: row {i + 1} is not an object of column values")
        names.update(dict.fromkeys(row))
    return _checked(path, {name: [row.get(name) for row in rows] for name in names})


def _checked(path: Path, columns: dict[str, Any]) -> dict[str, list[Any]]:
    for name, values in columns.items():
        if not isinstance(values, list):
            raise ReferenceFileError(f"{path}: column {name!r} must be a list of values")
        if not all(isinstance(v, _SCALARS) for v in values):
            raise ReferenceFileError(f"{path}: column {name!r} holds nested values; a feature holds scalars")
    return columns
