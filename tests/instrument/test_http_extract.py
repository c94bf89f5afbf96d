"""The middleware's default mapping from JSON bodies to inputs and outputs, through to the columns recorded."""

from __future__ import annotations

import json
from typing import Any

import pytest

from instrument._http_extract import (
    NOT_JSON,
    default_extract,
    parse_json,
    request_inputs,
    response_outputs,
    response_rows,
)
from instrument._inputs import input_columns
from instrument._outputs import output_columns


def columns(doc: Any, features: list[str] | None = None) -> tuple[dict[str, list[Any]], int]:
    return input_columns(request_inputs(doc), features, 1024)


def outputs(doc: Any, task: str | None = None) -> tuple[dict[str, list[Any]], int]:
    return output_columns(response_outputs(doc), task=task, names=None, classes=None, threshold=0.5, max_len=1024)


def test_parse_json() -> None:
    assert parse_json(b'{"a": [1, 2.5, null]}') == {"a": [1, 2.5, None]}
    assert parse_json('{"a": "é"}'.encode("utf-16")) == {"a": "é"}  # json.loads detects the encoding
    assert parse_json(b"") is NOT_JSON
    assert parse_json(b"a=1&b=2") is NOT_JSON
    assert parse_json(b"\xff\xfe\x00garbage") is NOT_JSON
    assert parse_json(b"[" * 100_000 + b"]" * 100_000) is NOT_JSON  # too deep: RecursionError, not a crash


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        # TF-Serving row format / KServe v1 / MLflow, with other keys beside it
        (
            {"signature_name": "s", "instances": [{"age": 31, "plan": "pro"}, {"age": 40, "plan": None}]},
            ({"age": [31, 40], "plan": ["pro", None]}, 2),
        ),
        ({"instances": [[1.0, 2.0], [3.0, 4.0]], "parameters": {"t": 1}}, ({"f0": [1.0, 3.0], "f1": [2.0, 4.0]}, 2)),
        ({"instances": [0.5, 0.7]}, ({"f0": [0.5, 0.7]}, 2)),
        # TF-Serving columnar format
        ({"inputs": {"age": [31, 40], "plan": ["a", "b"]}}, ({"age": [31, 40], "plan": ["a", "b"]}, 2)),
        ({"inputs": {"age": 31, "plan": "a"}}, ({"age": [31], "plan": ["a"]}, 1)),
        ({"inputs": [[1, 2], [3, 4]]}, ({"f0": [1, 3], "f1": [2, 4]}, 2)),
        # MLflow
        (
            {"dataframe_split": {"columns": ["a", "b"], "data": [[1, "x"], [2, "y"]]}},
            ({"a": [1, 2], "b": ["x", "y"]}, 2),
        ),
        ({"dataframe_split": {"index": [0], "columns": ["a"], "data": [[7]]}}, ({"a": [7]}, 1)),
        ({"dataframe_split": {"data": [[1, 2]]}}, ({"f0": [1], "f1": [2]}, 1)),
        ({"dataframe_records": [{"a": 1}, {"a": 2, "b": True}]}, ({"a": [1, 2], "b": [None, True]}, 2)),
        # bare rows and a single row
        ([{"a": 1.5}, {"a": 2.5}], ({"a": [1.5, 2.5]}, 2)),
        ([[1, 2, 3]], ({"f0": [1], "f1": [2], "f2": [3]}, 1)),
        ({"age": 31, "plan": "pro"}, ({"age": [31], "plan": ["pro"]}, 1)),
    ],
)
def test_request_shapes(doc: Any, expected: tuple[dict[str, list[Any]], int]) -> None:
    assert columns(doc) == expected


def test_open_inference_protocol_requests() -> None:
    one = {"inputs": [{"name": "x", "shape": [2, 3], "datatype": "FP32", "data": [1, 2, 3, 4, 5, 6]}]}
    assert columns(one) == ({"f0": [1, 4], "f1": [2, 5], "f2": [3, 6]}, 2)
    assert columns(one, features=["a", "b", "c"]) == ({"a": [1, 4], "b": [2, 5], "c": [3, 6]}, 2)
    nested = {"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [[1, 2], [3, 4]]}]}
    assert columns(nested) == ({"f0": [1, 3], "f1": [2, 4]}, 2)
    several = {
        "id": "req-1",
        "inputs": [
            {"name": "age", "shape": [2], "datatype": "INT64", "data": [31, 40]},
            {"name": "plan", "shape": [2, 1], "datatype": "BYTES", "data": ["a", "b"]},
            {"name": "emb", "shape": [2, 2], "datatype": "FP32", "data": [0.1, 0.2, 0.3, 0.4]},
        ],
    }
    assert columns(several) == (
        {"age": [31, 40], "plan": ["a", "b"], "emb_0": [0.1, 0.3], "emb_1": [0.2, 0.4]},
        2,
    )


@pytest.mark.parametrize(
    ("doc", "task", "expected"),
    [
        ({"predictions": [0.2, 0.9]}, "binary_classification", ({"score": [0.2, 0.9], "label": [0, 1]}, 2)),
        (
            {"predictions": [[0.8, 0.2], [0.1, 0.9]]},
            "binary_classification",
            ({"score": [0.2, 0.9], "label": [0, 1]}, 2),
        ),
        ({"predictions": [3.5]}, "regression", ({"prediction": [3.5]}, 1)),
        (
            {"predictions": [{"label": "a", "p": 0.7}, {"label": "b", "p": 0.6}]},
            None,
            ({"label": ["a", "b"], "p": [0.7, 0.6]}, 2),
        ),
        ({"outputs": [1.5, 2.5]}, "regression", ({"prediction": [1.5, 2.5]}, 2)),
        ({"outputs": {"score": [0.3], "label": [0]}}, "binary_classification", ({"score": [0.3], "label": [0]}, 1)),
        ([0.1, 0.7], "binary_classification", ({"score": [0.1, 0.7], "label": [0, 1]}, 2)),
        ([{"y": 1.0}], None, ({"y": [1.0]}, 1)),
        (0.7, "binary_classification", ({"score": [0.7], "label": [1]}, 1)),
        ("spam", None, ({"label": ["spam"]}, 1)),
        ({"score": 0.3, "label": 0}, None, ({"score": [0.3], "label": [0]}, 1)),
    ],
)
def test_response_shapes(doc: Any, task: str | None, expected: tuple[dict[str, list[Any]], int]) -> None:
    assert outputs(doc, task) == expected


def test_open_inference_protocol_responses() -> None:
    single = {
        "model_name": "m",
        "outputs": [{"name": "p", "shape": [2, 2], "datatype": "FP32", "data": [0.8, 0.2, 0.1, 0.9]}],
    }
    assert outputs(single, "binary_classification") == ({"score": [0.2, 0.9], "label": [0, 1]}, 2)
    several = {
        "outputs": [
            {"name": "label", "shape": [2], "datatype": "INT64", "data": [0, 1]},
            {"name": "score", "shape": [2], "datatype": "FP32", "data": [0.2, 0.9]},
        ]
    }
    assert outputs(several) == ({"label": [0, 1], "score": [0.2, 0.9]}, 2)


def test_default_extract_pairs_both_sides() -> None:
    request = json.loads('{"instances": [{"x": 1}, {"x": 2}]}')
    assert default_extract(request, {"predictions": [0.1, 0.2]}) == ([{"x": 1}, {"x": 2}], [0.1, 0.2])


def test_odd_documents_are_passed_on_for_the_sdk_to_judge() -> None:
    assert request_inputs({"dataframe_split": "nonsense"}) == "nonsense"
    assert request_inputs({"dataframe_split": {"columns": ["a"], "data": [[1, 2]]}}) == [[1, 2]]  # ragged: rows
    assert request_inputs({"inputs": [{"name": "x"}]}) == [{"name": "x"}]  # not tensors: rows of dicts
    assert response_outputs({"predictions": 3}) == 3
    assert response_outputs([]) == []


@pytest.mark.parametrize(
    "response",
    [
        {"predictions": [0.1, 0.9, 0.4]},
        {"predictions": [[0.1, 0.9], [0.8, 0.2]]},
        {"predictions": [{"score": 0.1, "label": "a"}, {"score": 0.7, "label": "b"}]},
        {"outputs": {"score": [0.1, 0.2], "label": [0, 1]}},
        {"outputs": [{"name": "p", "shape": [2, 2], "datatype": "FP32", "data": [0.1, 0.9, 0.8, 0.2]}]},
        {"score": 0.7},
        [0.3, 0.4, 0.5, 0.6],
        0.5,
    ],
)
def test_the_row_count_of_a_response_is_that_of_its_outputs(response: Any) -> None:
    # The middleware makes ids from it before the outputs are converted: it must agree with the conversion.
    outputs = response_outputs(response)
    _, rows = output_columns(outputs, task=None, names=None, classes=None, threshold=0.5, max_len=256)
    assert response_rows(outputs) == rows
