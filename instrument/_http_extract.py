"""JSON request and response bodies as model inputs and outputs: the middleware's default mapping.

Requests (the first key found wins; other keys such as "parameters" or "signature_name" are ignored):
- `{"instances": rows}`: TF-Serving's row format, KServe v1, MLflow.
- `{"inputs": {name: column or value}}` or `{"inputs": rows}`: TF-Serving's columnar format, MLflow.
- `{"inputs": [{"name", "shape", "datatype", "data"}, ...]}`: the Open Inference Protocol (KServe v2,
  Triton, MLServer). One tensor of shape (n, k) gives rows of k positional features (`f0..`, or `features=`);
  several tensors give a column per 1-D tensor and `{name}_{j}` per column of a 2-D tensor.
- `{"dataframe_split": {"columns": [...], "data": [[...], ...]}}`, `{"dataframe_records": rows}`: MLflow.
- A list of rows (dicts, lists or scalars), or any other dict: one row of named features (a dict whose values
  are equal-length lists is read as columns, as everywhere in the SDK).

Responses: `{"predictions": ...}` (a list of dict rows becomes named columns), `{"outputs": ...}` (Open
Inference Protocol tensors too), a bare list or scalar, or any other dict of named outputs. Outputs are then
normalised by the model's task like any other predict result (a list of floats is a score, and so on).

Anything else: `extract=(request_json, response_json) -> (inputs, outputs)`, or None to record nothing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

__all__ = [
    "NOT_JSON",
    "NOT_JSON_BODY",
    "Extractor",
    "default_extract",
    "parse_json",
    "request_inputs",
    "response_outputs",
    "response_rows",
]

Extractor = Callable[[Any, Any], "tuple[Any, Any] | None"]

NOT_JSON: Any = object()  # what parse_json returns for a body that is not JSON
NOT_JSON_BODY = "http_body_not_json"  # the reason counted in predwatch.sdk.dropped
_loads = json.loads
_raw_decode = json.JSONDecoder().raw_decode


def parse_json(body: bytes) -> Any:
    """The parsed body, or NOT_JSON (an empty body is not JSON)."""
    if not body:
        return NOT_JSON
    try:
        # UTF-8 without a BOM, as JSON over HTTP is (RFC 8259): half the cost of json.loads(bytes), which
        # detects the encoding and matches whitespace with regular expressions around the document.
        text = body.decode("utf-8")
        if text[0].isspace() or text[-1].isspace():
            text = text.strip()
        doc, end = _raw_decode(text)
        if end == len(text):
            return doc
    except (ValueError, TypeError, AttributeError, IndexError, RecursionError):
        pass
    try:  # everything else json.loads accepts: a BOM, UTF-16 and UTF-32
        return _loads(body)
    except (ValueError, TypeError, RecursionError):  # ValueError: JSONDecodeError and UnicodeDecodeError both
        return NOT_JSON


def _is_tensor(item: Any) -> bool:
    return type(item) is dict and "name" in item and "data" in item


def _tensor_rows(tensor: dict[str, Any]) -> list[Any]:
    """One Open Inference Protocol tensor as a list with one entry per row (a value, or a list for 2-D+)."""
    data = tensor["data"]
    shape = tensor.get("shape")
    if not isinstance(data, list):
        return [data]
    if data and isinstance(data[0], list):  # already nested by row
        return data
    if isinstance(shape, list) and len(shape) >= 2 and all(type(d) is int and d >= 0 for d in shape):
        width = math.prod(shape[1:])
        if width > 1 and width * shape[0] == len(data):
            return [data[i : i + width] for i in range(0, len(data), width)]
    return data


def _tensors(items: list[dict[str, Any]]) -> Any:
    if len(items) == 1:
        return _tensor_rows(items[0])  # one tensor: rows (positional features), or a plain column
    columns: dict[str, list[Any]] = {}
    for item in items:
        rows = _tensor_rows(item)
        name = str(item["name"])
        if rows and isinstance(rows[0], list):
            for j, column in enumerate(zip(*rows, strict=False)):
                columns[f"{name}_{j}"] = list(column)
        else:
            columns[name] = rows
    return columns


def _split(frame: Any) -> Any:
    """MLflow's `dataframe_split` (pandas' "split" orient) as a dict of columns."""
    if type(frame) is not dict:
        return frame
    columns, data = frame.get("columns"), frame.get("data")
    if not isinstance(data, list):
        return frame
    if not isinstance(columns, list):
        return data  # rows without names: positional features
    if any(not isinstance(row, list) or len(row) != len(columns) for row in data):
        return data
    return {str(name): [row[j] for row in data] for j, name in enumerate(columns)}


def request_inputs(doc: Any) -> Any:
    """A request body as a model input (see the module docstring)."""
    if type(doc) is dict:
        if "instances" in doc:
            return doc["instances"]
        if "inputs" in doc:
            value = doc["inputs"]
            if type(value) is list and value and all(_is_tensor(v) for v in value):
                return _tensors(value)
            return value
        if "dataframe_split" in doc:
            return _split(doc["dataframe_split"])
        if "dataframe_records" in doc:
            return doc["dataframe_records"]
    return doc


def _rows_to_columns(rows: list[Any]) -> Any:
    if not rows or type(rows[0]) is not dict or any(type(r) is not dict for r in rows):
        return rows
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    return {name: [row.get(name) for row in rows] for name in names}


def response_outputs(doc: Any) -> Any:
    """A response body as a model output (see the module docstring)."""
    if type(doc) is dict:
        if "predictions" in doc:
            value = doc["predictions"]
            return _rows_to_columns(value) if type(value) is list else value
        if "outputs" in doc:
            value = doc["outputs"]
            if type(value) is list and value and all(_is_tensor(v) for v in value):
                return _tensors(value)
            return _rows_to_columns(value) if type(value) is list else value
    elif type(doc) is list:
        return _rows_to_columns(doc)
    return doc


def response_rows(outputs: Any) -> int:
    """How many predictions `response_outputs` holds, by the rules outputs are read with: a list has a row per
    element, a dict of equal-length lists a row per position, anything else is one row."""
    if type(outputs) is list:
        return len(outputs)
    if type(outputs) is dict:
        values = list(outputs.values())
        if values and all(type(v) is list for v in values) and len({len(v) for v in values}) == 1:
            return len(values[0])
    return 1


def default_extract(request: Any, response: Any) -> tuple[Any, Any]:
    return request_inputs(request), response_outputs(response)
