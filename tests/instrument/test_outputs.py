"""instrument._outputs: model outputs normalised per task (DESIGN.md, "Output normalisation").

Numbers are checked against independent numpy computations: label == (score >= threshold), argmax, max.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from instrument._guard import STATS
from instrument._inputs import UnsupportedInput
from instrument._outputs import output_columns

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
MAX_LEN = 16
BINARY = "binary_classification"
MULTICLASS = "multiclass_classification"
REGRESSION = "regression"
TASKS = [BINARY, MULTICLASS, REGRESSION, None]


@pytest.fixture
def coerced() -> Iterator[Counter[str]]:
    STATS.reset()
    yield STATS.coerced
    STATS.reset()


def outputs(
    obj: Any,
    task: str | None = None,
    *,
    names: Sequence[str] | None = None,
    classes: Sequence[Any] | None = None,
    threshold: float = 0.5,
) -> tuple[dict[str, list[Any]], int]:
    """output_columns, checked for OTLP-safe values and one value per row in every column."""
    columns, n = output_columns(obj, task=task, names=names, classes=classes, threshold=threshold, max_len=MAX_LEN)
    assert type(columns) is dict and type(n) is int and n >= 0
    for name, values in columns.items():
        assert type(name) is str
        assert type(values) is list and len(values) == n, f"column {name!r}: {len(values)} values for {n} rows"
        for value in values:
            kind = type(value)
            assert kind in (type(None), bool, int, float, str), f"{name}: {value!r} is a {kind.__qualname__}"
            if kind is int:
                assert INT64_MIN <= value <= INT64_MAX
            if kind is str:
                assert len(value) <= MAX_LEN
    return columns, n


def same(actual: list[Any], expected: list[Any]) -> bool:
    """Equal lists with exact element types; NaN equals NaN."""
    if len(actual) != len(expected):
        return False
    for a, e in zip(actual, expected, strict=True):
        if type(e) is float and math.isnan(e):
            if not (type(a) is float and math.isnan(a)):
                return False
        elif type(a) is not type(e) or a != e:
            return False
    return True


def rng_scores(n: int, seed: int = 0) -> np.ndarray[Any, Any]:
    return np.random.default_rng(seed).random(n)


# --- binary classification ---------------------------------------------------------------------------------


@pytest.mark.parametrize("threshold", [0.5, 0.3, 0.9])
def test_binary_scores_give_score_and_thresholded_label(threshold: float) -> None:
    scores = np.concatenate([rng_scores(1000), [0.0, 1.0, threshold, np.nextafter(threshold, 0.0)]])
    columns, n = outputs(scores, BINARY, threshold=threshold)
    assert n == scores.size
    assert list(columns) == ["score", "label"]
    assert same(columns["score"], scores.tolist())
    assert same(columns["label"], (scores >= threshold).astype(int).tolist())
    assert columns["label"][-2] == 1  # exactly at the threshold: positive
    assert columns["label"][-1] == 0  # just below it: negative


def test_binary_float32_scores_are_python_floats() -> None:
    scores = rng_scores(200).astype(np.float32)
    scores[:3] = [0.5, 0.25, 0.75]  # exact in float32
    columns, _ = outputs(scores, BINARY)
    assert same(columns["score"], [float(s) for s in scores])
    assert same(columns["label"], (scores.astype(np.float64) >= 0.5).astype(int).tolist())
    assert columns["label"][:3] == [1, 0, 1]


def test_binary_two_column_probabilities_use_column_one() -> None:
    positive = rng_scores(500, 1)
    probs = np.column_stack([1 - positive, positive])
    probs[0] = [0.5, 0.5]
    columns, n = outputs(probs, BINARY)
    assert n == 500
    assert same(columns["score"], probs[:, 1].tolist())
    assert same(columns["label"], (probs[:, 1] >= 0.5).astype(int).tolist())
    assert columns["label"][0] == 1


def test_binary_one_column_scores_are_scores() -> None:
    scores = rng_scores(50, 2).reshape(-1, 1)
    columns, n = outputs(scores, BINARY, threshold=0.4)
    assert n == 50
    assert same(columns["score"], scores[:, 0].tolist())
    assert same(columns["label"], (scores[:, 0] >= 0.4).astype(int).tolist())


@pytest.mark.parametrize(
    "classes",
    [["no", "yes"], ("neg", "pos"), np.array(["n", "y"]), [False, True], np.array([3, 7])],
    ids=["list", "tuple", "numpy_str", "bools", "numpy_int"],
)
def test_binary_labels_are_named_by_classes(classes: Any) -> None:
    scores = rng_scores(300, 3)
    columns, _ = outputs(scores, BINARY, classes=classes)
    names = [c.item() if isinstance(c, np.generic) else c for c in classes]
    assert same(columns["label"], [names[int(s >= 0.5)] for s in scores])
    assert same(columns["score"], scores.tolist())


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (np.array([0, 1, 1, 0]), [0, 1, 1, 0]),
        (np.array([0, 1], dtype=np.uint8), [0, 1]),
        (np.array([True, False]), [True, False]),
        (np.array(["yes", "no"]), ["yes", "no"]),
        ([1, 0, 1], [1, 0, 1]),
        (["churn", "stay"], ["churn", "stay"]),
        (np.array([[0], [1]]), [0, 1]),
        (pd.Series(["a", "b"]), ["a", "b"]),
        (torch.tensor([1, 0]), [1, 0]),
    ],
    ids=["int", "uint8", "bool", "numpy_str", "list_int", "list_str", "int_n1", "series_str", "torch_int"],
)
def test_binary_integer_bool_or_string_outputs_are_labels_only(labels: Any, expected: list[Any]) -> None:
    columns, n = outputs(labels, BINARY)
    assert columns == {"label": expected} and same(columns["label"], expected)
    assert n == len(expected)


def test_binary_nullable_integer_labels_are_labels_with_none() -> None:
    columns, n = outputs(pd.Series(pd.array([1, None, 0], dtype="Int64")), BINARY)
    assert n == 3
    assert columns == {"label": [1, None, 0]}
    assert same(columns["label"], [1, None, 0])


@pytest.mark.parametrize("threshold", [0.5, 0.2])
def test_binary_python_float_is_score_and_label(threshold: float) -> None:
    for value in (0.0, threshold, math.nextafter(threshold, 0.0), 0.99):
        columns, n = outputs(value, BINARY, threshold=threshold)
        assert n == 1
        assert same(columns["score"], [value])
        assert same(columns["label"], [int(value >= threshold)])
    columns, _ = outputs(threshold, BINARY, threshold=threshold, classes=["n", "y"])
    assert columns["label"] == ["y"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1, [1]), (True, [True]), ("yes", ["yes"]), (np.int64(1), [1]), (np.str_("no"), ["no"])],
    ids=["int", "bool", "str", "numpy_int", "numpy_str"],
)
def test_binary_scalar_labels(value: Any, expected: list[Any]) -> None:
    columns, n = outputs(value, BINARY)
    assert n == 1 and columns == {"label": expected} and same(columns["label"], expected)


@pytest.mark.parametrize(
    "value", [np.float64(0.7), np.float32(0.25), np.array(0.5), torch.tensor(0.5)], ids=["f64", "f32", "0d", "torch"]
)
def test_binary_numpy_and_torch_scalar_scores(value: Any) -> None:
    columns, n = outputs(value, BINARY)
    score = float(value)
    assert n == 1
    assert same(columns["score"], [score])
    assert same(columns["label"], [int(score >= 0.5)])


def test_binary_torch_outputs_with_grad() -> None:
    logits = torch.tensor([[0.2, -1.0], [0.0, 3.0], [1.0, 1.0]], requires_grad=True)
    probs = torch.softmax(logits, dim=1)
    columns, n = outputs(probs, BINARY)
    expected = probs.detach().numpy()[:, 1].astype(np.float64)
    assert n == 3
    assert same(columns["score"], expected.tolist())
    assert same(columns["label"], (expected >= 0.5).astype(int).tolist())
    columns, _ = outputs(torch.sigmoid(logits[:, 0]), BINARY)
    assert len(columns["score"]) == 3


def test_binary_pandas_series_scores() -> None:
    scores = pd.Series(rng_scores(20, 4), name="p")
    columns, _ = outputs(scores, BINARY, threshold=0.6)
    assert same(columns["score"], scores.tolist())
    assert same(columns["label"], (scores.to_numpy() >= 0.6).astype(int).tolist())


def test_binary_nan_score_is_kept_as_a_float() -> None:
    columns, _ = outputs(np.array([np.nan, 0.7]), BINARY)
    assert math.isnan(columns["score"][0]) and type(columns["score"][0]) is float
    assert columns["label"][1] == 1


def test_binary_no_rows() -> None:
    columns, n = outputs(np.array([], dtype=np.float64), BINARY)
    assert n == 0 and columns == {"score": [], "label": []}


@pytest.mark.parametrize(
    "obj",
    [np.zeros((4, 3)), np.array([["a", "b"], ["c", "d"]]), np.zeros((2, 2, 2)), torch.zeros(3, 5)],
    ids=["n_by_3", "strings_n_by_2", "3d", "torch_n_by_5"],
)
def test_binary_bad_shapes_are_unsupported(obj: Any) -> None:
    with pytest.raises(UnsupportedInput) as info:
        output_columns(obj, task=BINARY, names=None, classes=None, threshold=0.5, max_len=MAX_LEN)
    assert info.value.reason == "unsupported_output"


# --- multiclass classification -----------------------------------------------------------------------------


def _probabilities(n: int, k: int, seed: int) -> np.ndarray[Any, Any]:
    raw = np.random.default_rng(seed).random((n, k))
    return np.asarray(raw / raw.sum(axis=1, keepdims=True))


@pytest.mark.parametrize("k", [2, 3, 10])
def test_multiclass_probabilities_give_argmax_label_and_max_score(k: int) -> None:
    probs = _probabilities(400, k, k)
    columns, n = outputs(probs, MULTICLASS)
    assert n == 400
    assert set(columns) == {"label", "score"}
    assert same(columns["label"], [int(i) for i in np.argmax(probs, axis=1)])
    assert same(columns["score"], [float(v) for v in np.max(probs, axis=1)])


def test_multiclass_labels_are_named_by_classes() -> None:
    probs = _probabilities(300, 3, 11)
    classes = ["setosa", "versicolor", "virginica"]
    columns, _ = outputs(probs, MULTICLASS, classes=classes)
    assert same(columns["label"], [classes[i] for i in np.argmax(probs, axis=1)])
    sklearn_classes: Any = np.array([10, 20, 30])  # what an estimator's classes_ holds
    columns, _ = outputs(probs, MULTICLASS, classes=sklearn_classes)
    assert same(columns["label"], [[10, 20, 30][i] for i in np.argmax(probs, axis=1)])


def test_multiclass_ties_take_the_first_class() -> None:
    probs = np.array([[0.4, 0.4, 0.2], [0.2, 0.4, 0.4], [1 / 3, 1 / 3, 1 / 3]])
    columns, _ = outputs(probs, MULTICLASS, classes=["a", "b", "c"])
    assert columns["label"] == ["a", "b", "a"]
    assert same(columns["score"], [0.4, 0.4, 1 / 3])


@pytest.mark.parametrize(
    "make",
    [
        lambda p: p.astype(np.float32),
        lambda p: p.tolist(),
        lambda p: torch.tensor(p, requires_grad=True),
        lambda p: pd.DataFrame(p).to_numpy(),
    ],
    ids=["float32", "list_of_lists", "torch_grad", "frame_values"],
)
def test_multiclass_other_containers(make: Callable[[np.ndarray[Any, Any]], Any]) -> None:
    obj = make(_probabilities(50, 4, 5))
    columns, _ = outputs(obj, MULTICLASS)
    as_numpy = obj.detach().numpy() if isinstance(obj, torch.Tensor) else np.asarray(obj)
    assert same(columns["label"], [int(i) for i in np.argmax(as_numpy, axis=1)])
    assert same(columns["score"], [float(v) for v in np.max(as_numpy, axis=1)])


@pytest.mark.parametrize(
    ("labels", "expected"),
    [(np.array([2, 0, 1]), [2, 0, 1]), (["cat", "dog"], ["cat", "dog"]), (torch.tensor([3]), [3])],
    ids=["int", "str", "torch"],
)
def test_multiclass_1d_outputs_are_labels(labels: Any, expected: list[Any]) -> None:
    columns, n = outputs(labels, MULTICLASS, classes=["a", "b", "c", "d"])
    assert columns == {"label": expected} and same(columns["label"], expected) and n == len(expected)


def test_multiclass_non_numeric_2d_is_unsupported() -> None:
    with pytest.raises(UnsupportedInput) as info:
        output_columns(
            np.array([["a", "b"], ["c", "d"]]), task=MULTICLASS, names=None, classes=None, threshold=0.5, max_len=8
        )
    assert info.value.reason == "unsupported_output"


def test_multiclass_no_rows() -> None:
    columns, n = outputs(np.zeros((0, 3)), MULTICLASS)
    assert n == 0 and columns == {"label": [], "score": []}


# --- regression --------------------------------------------------------------------------------------------


def test_regression_1d_and_n_by_1_are_prediction() -> None:
    values = np.random.default_rng(6).normal(size=100)
    values[0] = np.nan
    for obj in (values, values.reshape(-1, 1), values.tolist(), torch.tensor(values), pd.Series(values)):
        columns, n = outputs(obj, REGRESSION)
        assert n == 100 and list(columns) == ["prediction"]
        assert same(columns["prediction"], values.tolist())


def test_regression_integer_predictions_stay_ints() -> None:
    columns, _ = outputs(np.array([3, 4]), REGRESSION)
    assert columns == {"prediction": [3, 4]} and same(columns["prediction"], [3, 4])


def test_regression_n_by_k_gives_one_column_each() -> None:
    values = np.random.default_rng(7).normal(size=(20, 3))
    columns, n = outputs(values, REGRESSION)
    assert n == 20
    assert list(columns) == ["prediction_0", "prediction_1", "prediction_2"]
    for j in range(3):
        assert same(columns[f"prediction_{j}"], values[:, j].tolist())
    columns, _ = outputs(values, REGRESSION, names=["lo", "mid", "hi"])
    assert list(columns) == ["lo", "mid", "hi"] and same(columns["hi"], values[:, 2].tolist())
    columns, _ = outputs(values, REGRESSION, names=["lo", "hi"])
    assert list(columns) == ["prediction_0", "prediction_1", "prediction_2"]


def test_regression_names_the_single_column() -> None:
    columns, _ = outputs(np.array([1.5, 2.5]), REGRESSION, names=["price"])
    assert columns == {"price": [1.5, 2.5]}


@pytest.mark.parametrize(
    ("value", "expected"), [(2.5, 2.5), (3, 3), (np.float32(0.5), 0.5)], ids=["float", "int", "numpy_float"]
)
def test_regression_scalars_are_prediction(value: Any, expected: Any) -> None:
    columns, n = outputs(value, REGRESSION)
    assert n == 1 and columns == {"prediction": [expected]} and same(columns["prediction"], [expected])
    columns, _ = outputs(value, REGRESSION, names=["price"])
    assert columns == {"price": [expected]}


# --- no task -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "column", "expected"),
    [
        (np.array([0.5, np.inf]), "prediction", [0.5, math.inf]),
        (np.array([0.5], dtype=np.float16), "prediction", [0.5]),
        ([1.5, 2.5], "prediction", [1.5, 2.5]),
        (torch.tensor([0.25]), "prediction", [0.25]),
        (np.array([1, 2]), "label", [1, 2]),
        (np.array([2**64 - 1], dtype=np.uint64), "label", [float(2**64 - 1)]),
        (np.array([True]), "label", [True]),
        (np.array(["a", "b"]), "label", ["a", "b"]),
        ([1, "a", None], "label", [1, "a", None]),
        (1.5, "prediction", [1.5]),
        (np.float64(1.5), "prediction", [1.5]),
        (7, "label", [7]),
        ("spam", "label", ["spam"]),
        (True, "label", [True]),
    ],
    ids=[
        "float", "float16", "list_float", "torch_float", "int", "uint64_overflow", "bool", "str", "mixed_list",
        "py_float", "numpy_float", "py_int", "py_str", "py_bool",
    ],
)  # fmt: skip
def test_no_task_1d_and_scalars(obj: Any, column: str, expected: list[Any]) -> None:
    columns, n = outputs(obj)
    assert columns == {column: expected} and same(columns[column], expected) and n == len(expected)
    columns, _ = outputs(obj, names=["out"])
    assert list(columns) == ["out"] and same(columns["out"], expected)


def test_no_task_2d_gives_output_columns() -> None:
    values = np.arange(12).reshape(4, 3)
    columns, n = outputs(values)
    assert n == 4 and list(columns) == ["output_0", "output_1", "output_2"]
    for j in range(3):
        assert same(columns[f"output_{j}"], values[:, j].tolist())
    columns, _ = outputs(values, names=["a", "b", "c"])
    assert list(columns) == ["a", "b", "c"] and same(columns["c"], values[:, 2].tolist())
    columns, _ = outputs(values, names=["a", "b"])
    assert list(columns) == ["output_0", "output_1", "output_2"]
    columns, _ = outputs(np.array([[1.5], [2.5]]))
    assert columns == {"prediction": [1.5, 2.5]}  # (n, 1) is 1-D


def test_no_task_strings_are_cut(coerced: Counter[str]) -> None:
    columns, _ = outputs(np.array(["x" * 40, "y"]))
    assert columns == {"label": ["x" * MAX_LEN, "y"]}
    assert coerced["truncated"] == 1


# --- dict and DataFrame outputs ----------------------------------------------------------------------------


@pytest.mark.parametrize("task", TASKS)
def test_dict_outputs_keep_their_names_whatever_the_task(task: str | None) -> None:
    obj = {
        "p": np.array([0.1, 0.9]),
        "cls": ("a", "b"),
        "n": [1, 2**64],
        "s": pd.Series([True, None]),
        "t": torch.tensor([1.5, 2.5]),
    }
    columns, n = outputs(obj, task, classes=["x", "y"])
    assert n == 2
    assert list(columns) == ["p", "cls", "n", "s", "t"]
    assert same(columns["p"], [0.1, 0.9])
    assert same(columns["cls"], ["a", "b"])
    assert same(columns["n"], [1, float(2**64)])
    assert same(columns["s"], [True, None])
    assert same(columns["t"], [1.5, 2.5])


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ({"score": 0.3, "label": "yes"}, {"score": [0.3], "label": ["yes"]}),
        ({"score": np.float64(0.3), "label": np.str_("yes")}, {"score": [0.3], "label": ["yes"]}),
        ({"score": torch.tensor(0.25), "label": torch.tensor(1)}, {"score": [0.25], "label": [1]}),
        ({"score": np.array(0.5)}, {"score": [0.5]}),
    ],
    ids=["python", "numpy_scalars", "torch_0d", "numpy_0d"],
)
def test_dict_of_scalars_is_one_row(obj: dict[str, Any], expected: dict[str, list[Any]]) -> None:
    columns, n = outputs(obj, BINARY)
    assert n == 1
    assert columns == expected
    for name, values in expected.items():
        assert same(columns[name], values)


def test_ragged_dict_outputs_are_unsupported() -> None:
    with pytest.raises(UnsupportedInput) as info:
        output_columns({"a": [1, 2], "b": [1]}, task=None, names=None, classes=None, threshold=0.5, max_len=8)
    assert info.value.reason == "ragged_outputs"


@pytest.mark.parametrize("task", TASKS)
def test_dataframe_outputs_keep_their_names(task: str | None) -> None:
    frame = pd.DataFrame({"score": [0.2, 0.8], "label": ["n", "y"], 3: [1, 2]})
    columns, n = outputs(frame, task)
    assert n == 2
    assert columns == {"score": [0.2, 0.8], "label": ["n", "y"], "3": [1, 2]}
    assert same(columns["3"], [1, 2])


def test_dataframe_outputs_turn_missing_values_into_none() -> None:
    frame = pd.DataFrame(
        {
            "n": pd.array([1, None], dtype="Int64"),
            "s": ["a", None],
            "c": pd.Categorical(["x", None]),
            "f": [0.5, np.nan],
        }
    )
    columns, n = outputs(frame, REGRESSION)
    assert n == 2
    assert same(columns["n"], [1, None])
    assert same(columns["s"], ["a", None])
    assert same(columns["c"], ["x", None])
    assert same(columns["f"], [0.5, math.nan])  # a NaN float stays a float


# --- bad shapes --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("task", TASKS)
def test_three_dimensional_outputs_are_unsupported(task: str | None) -> None:
    for obj in (np.zeros((2, 2, 2)), torch.zeros(1, 1, 1, 1), [[[0.5]]]):
        with pytest.raises(UnsupportedInput) as info:
            output_columns(obj, task=task, names=None, classes=None, threshold=0.5, max_len=8)
        assert info.value.reason == "unsupported_output"
        assert "dimensions" in str(info.value)


@pytest.mark.parametrize("task", [BINARY, MULTICLASS, REGRESSION])
def test_ragged_row_outputs_are_unsupported(task: str | None) -> None:
    for obj in ([[0.1, 0.9], [0.3]], ((1.0,), (2.0, 3.0)), [np.array([0.1, 0.9]), np.array([0.3])]):
        with pytest.raises(UnsupportedInput):
            output_columns(obj, task=task, names=None, classes=None, threshold=0.5, max_len=64)


# --- torch -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64], ids=str)
def test_torch_float_outputs_of_every_precision(dtype: torch.dtype) -> None:
    scores = torch.tensor([0.25, 0.5, 0.75], dtype=dtype)  # exact in every one of these dtypes
    columns, n = outputs(scores, BINARY)
    assert n == 3
    assert same(columns["score"], [0.25, 0.5, 0.75])
    assert same(columns["label"], [0, 1, 1])
    columns, _ = outputs(scores.reshape(-1, 1) * 4, REGRESSION)
    assert same(columns["prediction"], [1.0, 2.0, 3.0])


def test_torch_multiclass_and_regression() -> None:
    probs = torch.softmax(torch.tensor([[1.0, 2.0, 0.5], [3.0, 0.0, 0.0]]), dim=1)
    columns, _ = outputs(probs, MULTICLASS, classes=["a", "b", "c"])
    expected = probs.numpy()
    assert columns["label"] == ["b", "a"]
    assert same(columns["score"], [float(v) for v in expected.max(axis=1)])
    columns, _ = outputs(torch.tensor([[1.0, 2.0]], requires_grad=True) * 3, REGRESSION)
    assert columns == {"prediction_0": [3.0], "prediction_1": [6.0]}


def test_binary_nan_score_has_no_label() -> None:
    from instrument._outputs import output_columns

    columns, n = output_columns(
        np.array([0.9, np.nan, 0.1]), task="binary_classification", names=None, classes=None, threshold=0.5, max_len=64
    )
    assert n == 3 and columns["label"] == [1, None, 0]
    assert columns["score"][0] == 0.9 and np.isnan(columns["score"][1])
