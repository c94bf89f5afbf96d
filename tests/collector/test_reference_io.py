from __future__ import annotations

import gzip
import json
import math
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from collector.reference_io import ReferenceFileError, detect_format, read_table

CSV = """id,age,income,plan,active,zip,note
1,31,52000.5,pro,true,01234,
2,45,,basic,False,75001,NA
3,,61000,pro,TRUE,10115,hello
4,29,nan,team,false,99999,x
"""


def test_csv_types_follow_the_column(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_text(CSV)
    columns = read_table(path).columns
    assert columns["id"] == [1, 2, 3, 4]
    assert columns["age"] == [31, 45, None, 29]
    assert columns["income"][:3] == [52000.5, None, 61000.0] and math.isnan(columns["income"][3])
    assert columns["plan"] == ["pro", "basic", "pro", "team"]
    assert columns["active"] == [True, False, True, False]
    assert columns["zip"] == [1234, 75001, 10115, 99999]  # all numeric: numbers, as pandas reads them
    assert columns["note"] == [None, None, "hello", "x"]


def test_csv_dialects_bom_and_gzip(tmp_path: Path) -> None:
    semicolons = tmp_path / "eu.csv"
    semicolons.write_text("\ufeffa;b\n1,5;x\n2,5;y\n", encoding="utf-8")
    assert read_table(semicolons).columns == {"a": ["1,5", "2,5"], "b": ["x", "y"]}
    tabs = tmp_path / "data.tsv.gz"
    tabs.write_bytes(gzip.compress(b"a\tb\n1\t2\n3\t4\n"))
    assert read_table(tabs).columns == {"a": [1, 3], "b": [2, 4]}
    mixed = tmp_path / "mixed.csv"
    mixed.write_text("x\n1\ntwo\n3.5\n")
    assert read_table(mixed).columns == {"x": ["1", "two", "3.5"]}  # one non-number: the column is text


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("short.csv", "a,b\n1,2\n3\n", "line 3: 1 fields where the header has 2"),
        ("dup.csv", "a,a\n1,2\n", "duplicate column names ['a']"),
        ("blank.csv", "a,\n1,2\n", "every column needs a name"),
        ("empty.csv", "", "is empty"),
        ("bad.json", "{", "not valid JSON"),
        ("rows.json", "[1, 2]", "row 1 is not an object"),
        ("nested.json", '{"a": [[1]]}', "column 'a' holds nested values"),
        ("scalar.json", '{"a": 1}', "column 'a' must be a list"),
        ("lines.jsonl", '{"a": 1}\n{"a": \n', "line 2: not valid JSON"),
        ("number.json", "3", "expected an object of columns or a list of rows"),
        ("model.bin", "x", "cannot tell the format"),
    ],
)
def test_file_errors(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ReferenceFileError, match=re.escape(message)):
        read_table(path)


def test_missing_file_and_bad_bytes(tmp_path: Path) -> None:
    with pytest.raises(ReferenceFileError, match="no such file"):
        read_table(tmp_path / "absent.csv")
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"name\ncaf\xe9\n")
    with pytest.raises(ReferenceFileError, match="not UTF-8"):
        read_table(latin)
    with pytest.raises(ReferenceFileError, match="unknown format 'xls'"):
        read_table(latin, "xls")


def test_json_shapes(tmp_path: Path) -> None:
    rows = tmp_path / "rows.json"
    rows.write_text(json.dumps([{"a": 1, "b": "x"}, {"a": 2.5}, {"b": None, "c": True}]))
    assert read_table(rows).columns == {"a": [1, 2.5, None], "b": ["x", None, None], "c": [None, None, True]}
    lines = tmp_path / "rows.ndjson"
    lines.write_text('{"a": 1}\n\n{"a": 2}\n')
    assert read_table(lines).columns == {"a": [1, 2]}
    columnar = tmp_path / "cols.json"
    columnar.write_text('{"a": [1, NaN], "b": ["x", "y"]}')
    table = read_table(columnar)
    assert table.columns["b"] == ["x", "y"] and math.isnan(table.columns["a"][1]) and table.rows == 2
    api = tmp_path / "body.json"
    api.write_text(json.dumps({"inputs": {"a": [1, 2]}, "outputs": {"score": [0.1, 0.9]}, "actuals": [0, 1]}))
    table = read_table(api)
    assert (table.columns, table.outputs, table.target) == (
        {"a": [1, 2], "score": [0.1, 0.9], "actuals": [0, 1]},
        ["score"],
        "actuals",
    )


def test_parquet(tmp_path: Path) -> None:
    import datetime
    import decimal

    path = tmp_path / "train.parquet"
    table = pa.table(
        {
            "age": pa.array([31, None, 45], pa.int64()),
            "income": pa.array([1.5, float("nan"), None]),
            "plan": pa.array(["pro", "basic", None]).dictionary_encode(),
            "active": pa.array([True, False, None]),
            "day": pa.array([datetime.date(2026, 1, 1), None, datetime.date(2026, 1, 3)]),
            "price": pa.array([decimal.Decimal("1.25"), None, decimal.Decimal("2")]),
        }
    )
    pq.write_table(table, path)
    columns = read_table(path).columns
    assert columns["age"] == [31, None, 45]
    assert columns["income"][0] == 1.5 and math.isnan(columns["income"][1]) and columns["income"][2] is None
    assert columns["plan"] == ["pro", "basic", None]
    assert columns["active"] == [True, False, None]
    assert columns["day"] == ["2026-01-01", None, "2026-01-03"]
    assert columns["price"] == [1.25, None, 2.0]
    nested = tmp_path / "nested.parquet"
    pq.write_table(pa.table({"tags": pa.array([[1, 2], [3]])}), nested)
    with pytest.raises(ReferenceFileError, match="column 'tags' is nested"):
        read_table(nested)
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 not really")
    with pytest.raises(ReferenceFileError, match="not a readable Parquet file"):
        read_table(broken)


def test_parquet_without_pyarrow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_pyarrow(name: str, *args: object, **kwargs: object) -> object:
        if name.startswith("pyarrow"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    path = tmp_path / "train.parquet"
    path.write_bytes(b"PAR1")
    with pytest.raises(ReferenceFileError, match="pip install pyarrow"):
        read_table(path)


def test_detect_format() -> None:
    assert [detect_format(n) for n in ("a.CSV", "b.csv.gz", "c.pq", "d.jsonl", "e.parquet")] == [
        "csv",
        "csv",
        "parquet",
        "json",
        "parquet",
    ]
