"""ClassificationState / classification_metrics against scikit-learn on the same rows.

Data: scikit-learn's own data sets (breast cancer with a LogisticRegression for binary, wine and iris for
multiclass), scored on every row and split into uneven, shuffled windows. Each test runs the life cycle
update per window -> to_bytes/from_bytes -> merge -> metrics and compares with scikit-learn on all rows.

Tolerances, stated where used:
- counts, confusion matrix: exact (==); accuracy, precision, recall, F1: the same integer ratios, 1e-12 relative.
- log loss and Brier: running float64 sums in another order than scikit-learn's, 1e-9 relative.
- AUC and Gini: within the bound the state reports (`auc_roc_error_bound`, half the share of positive-negative
  pairs that share one of the 10,000 bins; twice that for Gini) plus 1e-12 for float rounding. On this data
  the bound is ~7e-6 (one shared pair) and the test also pins it below 1e-4.
- KS: in [exact - ks_error_bound, exact] (+ 1e-12), ks_error_bound below 0.01 here.
- Curves and AUC on scores rounded down to the bin edges: equal to scikit-learn's to 1e-12 (no binning error).
"""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.datasets import load_breast_cancer, load_iris, load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from collector.performance_classification import (
    OTHER_LABEL,
    ClassificationState,
    PerformanceConfig,
    classification_metrics,
)
from collector.performance_codec import KIND_CLASSIFICATION, pack
from collector.performance_scores import ScoreStats

REL = 1e-9
EXACT = 1e-12


def windows(n: int, parts: int, seed: int) -> list[np.ndarray]:
    """Row indices in shuffled order, cut into `parts` windows of uneven sizes."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    cuts = np.sort(rng.choice(np.arange(1, n), size=parts - 1, replace=False))
    return np.split(order, cuts)


def roundtrip(state: ClassificationState) -> ClassificationState:
    return ClassificationState.from_bytes(state.to_bytes())


def merged_from_windows(
    parts: list[np.ndarray], task: Any, actuals: np.ndarray, labels: np.ndarray, scores: np.ndarray | None
) -> ClassificationState:
    total = ClassificationState.zero(task)
    for rows in parts:
        window = ClassificationState.zero(task)
        window.update(actuals[rows].tolist(), labels[rows].tolist(), None if scores is None else scores[rows].tolist())
        total.merge(roundtrip(window))
    return roundtrip(total)


def binned(scores: np.ndarray, bins: int = 10_000) -> np.ndarray:
    edges: np.ndarray = np.minimum(np.floor(scores * bins), bins - 1) / bins
    return edges


@pytest.fixture(scope="module")
def cancer() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, y = load_breast_cancer(return_X_y=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x[::3], y[::3])
    return y, model.predict(x), model.predict_proba(x)[:, 1]


def test_binary_metrics_equal_sklearn_after_windows_merge_and_bytes(cancer: Any) -> None:
    y, labels, scores = cancer
    parts = windows(y.size, 9, seed=1)
    state = merged_from_windows(parts, "binary_classification", y, labels, scores)
    whole = ClassificationState.zero()
    whole.update(y, labels, scores)
    assert state.pairs == whole.pairs
    assert state.scores.keys() == whole.scores.keys()
    for key, stats in whole.scores.items():
        np.testing.assert_array_equal(state.scores[key].hist, stats.hist)

    m = classification_metrics(state)
    assert m["count"] == m["scored_count"] == y.size
    assert m["positive_label"] == 1
    assert m["confusion_matrix"] == {"labels": [0, 1], "matrix": skm.confusion_matrix(y, labels).tolist()}
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, labels), rel=EXACT)
    precision, recall, f1, _ = skm.precision_recall_fscore_support(y, labels, average="binary")
    assert (m["precision"], m["recall"], m["f1"]) == pytest.approx((precision, recall, f1), rel=EXACT)
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, scores), rel=REL)
    assert m["brier"] == pytest.approx(skm.brier_score_loss(y, scores), rel=REL)

    auc = skm.roc_auc_score(y, scores)
    assert 0 < m["auc_roc_error_bound"] < 1e-4
    assert abs(m["auc_roc"] - auc) <= m["auc_roc_error_bound"] + EXACT
    assert abs(m["gini"] - (2 * auc - 1)) <= m["gini_error_bound"] + EXACT
    assert m["gini_error_bound"] == 2 * m["auc_roc_error_bound"]
    fpr, tpr, _ = skm.roc_curve(y, scores, drop_intermediate=False)
    ks = float(np.max(tpr - fpr))
    assert m["ks_error_bound"] < 0.01
    assert ks - m["ks_error_bound"] - EXACT <= m["ks"] <= ks + EXACT

    again = classification_metrics(whole)
    for key in ("accuracy", "precision", "recall", "f1", "auc_roc", "ks", "log_loss", "brier"):
        assert again[key] == pytest.approx(m[key], rel=REL)
    assert again["roc_curve"] == m["roc_curve"] and again["pr_curve"] == m["pr_curve"]


def test_curves_equal_sklearn_on_scores_at_bin_edges(cancer: Any) -> None:
    y, labels, scores = cancer
    state = ClassificationState.zero()
    state.update(y, labels, scores)
    m = classification_metrics(state, max_curve_points=10**6)
    edges = binned(scores)
    assert m["auc_roc"] == pytest.approx(skm.roc_auc_score(y, edges), rel=EXACT)
    fpr, tpr, thresholds = skm.roc_curve(y, edges, drop_intermediate=False)
    np.testing.assert_allclose(m["roc_curve"]["fpr"], fpr, rtol=EXACT)
    np.testing.assert_allclose(m["roc_curve"]["tpr"], tpr, rtol=EXACT)
    assert m["roc_curve"]["thresholds"][0] is None and math.isinf(thresholds[0])
    np.testing.assert_allclose(m["roc_curve"]["thresholds"][1:], thresholds[1:], rtol=EXACT)
    assert m["ks"] == pytest.approx(float(np.max(tpr - fpr)), rel=EXACT)
    # scikit-learn: increasing thresholds, then a final (precision 1, recall 0) point without one
    precision, recall, pr_thresholds = skm.precision_recall_curve(y, edges)
    np.testing.assert_allclose(m["pr_curve"]["precision"], precision[-2::-1], rtol=EXACT)
    np.testing.assert_allclose(m["pr_curve"]["recall"], recall[-2::-1], rtol=EXACT)
    np.testing.assert_allclose(m["pr_curve"]["thresholds"], pr_thresholds[::-1], rtol=EXACT)


def test_curves_are_downsampled_keeping_both_ends(cancer: Any) -> None:
    y, labels, scores = cancer
    state = ClassificationState.zero()
    state.update(y, labels, scores)
    full = classification_metrics(state, max_curve_points=10**6)
    assert len(full["roc_curve"]["fpr"]) > 200
    short = classification_metrics(state)
    for curve, keys in (("roc_curve", ("fpr", "tpr", "thresholds")), ("pr_curve", ("precision", "recall"))):
        for key in keys:
            assert 2 <= len(short[curve][key]) <= 200
            assert short[curve][key][0] == full[curve][key][0]
            assert short[curve][key][-1] == full[curve][key][-1]
    assert short["roc_curve"]["fpr"] == sorted(short["roc_curve"]["fpr"])
    assert short["auc_roc"] == full["auc_roc"]  # computed from the bins, not from the drawn points


@pytest.mark.parametrize("loader", [load_iris, load_wine])
def test_multiclass_metrics_equal_sklearn_with_string_labels(loader: Any) -> None:
    data = loader()
    x, target = data.data, data.target
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, C=0.05)).fit(x[::4], target[::4])
    names = np.asarray([f"class {name}" for name in data.target_names], dtype=object)
    y, labels = names[target], names[model.predict(x)]
    scores = model.predict_proba(x).max(axis=1)
    state = merged_from_windows(windows(y.size, 5, seed=2), "multiclass_classification", y, labels, scores)

    m = classification_metrics(state)
    assert m["count"] == y.size
    assert m["confusion_matrix"]["labels"] == sorted(set(y) | set(labels))
    assert m["confusion_matrix"]["matrix"] == skm.confusion_matrix(y, labels).tolist()
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, labels), rel=EXACT)
    for average in ("macro", "micro", "weighted"):
        p, r, f, _ = skm.precision_recall_fscore_support(y, labels, average=average, zero_division=0)
        assert m["precision"][average] == pytest.approx(p, rel=EXACT)
        assert m["recall"][average] == pytest.approx(r, rel=EXACT)
        assert m["f1"][average] == pytest.approx(f, rel=EXACT)
    # the max probability alone gives no ROC, log loss or Brier: reported as None, not guessed
    for key in ("auc_roc", "gini", "ks", "log_loss", "brier", "roc_curve", "pr_curve", "positive_label"):
        assert m[key] is None
    assert m["scored_count"] == 0 and not state.scores


def test_multiclass_label_never_predicted_and_never_actual() -> None:
    y = ["a", "a", "b", "b", "c", "c", "a"]
    labels = ["a", "b", "b", "b", "a", "d", "a"]  # "c" is never predicted, "d" never an actual
    state = ClassificationState.zero("multiclass_classification")
    state.update(y, labels)
    m = classification_metrics(state)
    assert m["confusion_matrix"]["labels"] == ["a", "b", "c", "d"]
    assert m["confusion_matrix"]["matrix"] == skm.confusion_matrix(y, labels).tolist()
    for average in ("macro", "micro", "weighted"):
        p, r, f, _ = skm.precision_recall_fscore_support(y, labels, average=average, zero_division=0)
        assert (m["precision"][average], m["recall"][average], m["f1"][average]) == pytest.approx((p, r, f))


def test_binary_string_labels_take_the_greater_as_positive(cancer: Any) -> None:
    y, labels, scores = cancer
    names = np.asarray(["benign", "malignant"], dtype=object)  # sorted: "malignant" is positive
    state = ClassificationState.zero()
    state.update(names[y], names[labels], scores)
    m = classification_metrics(state)
    assert m["positive_label"] == "malignant"
    precision, recall, f1, _ = skm.precision_recall_fscore_support(
        names[y], names[labels], average="binary", pos_label="malignant"
    )
    assert (m["precision"], m["recall"], m["f1"]) == pytest.approx((precision, recall, f1), rel=EXACT)
    assert m["log_loss"] == pytest.approx(skm.log_loss(names[y], scores), rel=REL)
    assert abs(m["auc_roc"] - skm.roc_auc_score(names[y], scores)) <= m["auc_roc_error_bound"] + EXACT
    flipped = classification_metrics(state, positive_label="benign")  # scores stay P(malignant): AUC flips
    assert flipped["recall"] == pytest.approx(skm.recall_score(names[y], names[labels], pos_label="benign"))
    assert flipped["auc_roc"] == pytest.approx(1 - m["auc_roc"], rel=1e-9)
    one = ClassificationState.zero()
    one.update(["benign"] * 3, ["benign"] * 3, [0.1, 0.2, 0.3])
    assert classification_metrics(one)["positive_label"] is None  # one string label: no way to tell
    assert classification_metrics(one, positive_label="malignant")["log_loss"] == pytest.approx(
        skm.log_loss(["benign"] * 3, [0.1, 0.2, 0.3], labels=["benign", "malignant"])
    )


def test_one_class_window_has_no_auc_but_has_log_loss() -> None:
    y = [0, 0, 0, 0]
    scores = [0.1, 0.7, 0.2, 0.4]
    labels = [int(s >= 0.5) for s in scores]
    state = ClassificationState.zero()
    state.update(y, labels, scores)
    m = classification_metrics(state)
    for key in ("auc_roc", "gini", "ks", "roc_curve", "pr_curve", "auc_roc_error_bound", "recall"):
        assert m[key] is None
    assert m["precision"] == 0.0  # one positive prediction, wrong
    assert m["f1"] == 0.0
    assert m["accuracy"] == 0.75
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, scores, labels=[0, 1]), rel=REL)
    assert m["brier"] == pytest.approx(skm.brier_score_loss(y, scores, pos_label=1), rel=REL)
    nothing_positive = ClassificationState.zero()
    nothing_positive.update([0, 1], [0, 0], [0.2, 0.3])
    m = classification_metrics(nothing_positive)
    p, r, f, _ = skm.precision_recall_fscore_support([0, 1], [0, 0], average="binary", zero_division=np.nan)
    assert m["precision"] is None and math.isnan(p)  # 0/0: None where scikit-learn gives nan
    assert m["recall"] == r == 0.0 and m["f1"] == f == 0.0


def test_all_correct() -> None:
    y = [1, 0, 1, 1, 0]
    scores = [0.9, 0.1, 0.8, 0.95, 0.3]
    state = ClassificationState.zero()
    state.update(y, y, scores)
    m = classification_metrics(state)
    assert m["accuracy"] == m["precision"] == m["recall"] == m["f1"] == 1.0
    assert m["auc_roc"] == m["gini"] == m["ks"] == 1.0
    assert m["auc_roc_error_bound"] == 0.0 and m["ks_error_bound"] == 0.0  # no bin holds both classes
    assert m["confusion_matrix"] == {"labels": [0, 1], "matrix": [[2, 0], [0, 3]]}


def test_nan_and_missing_scores_are_skipped_and_counted(cancer: Any) -> None:
    y, labels, scores = cancer
    bad = scores.copy()
    bad[::10] = np.nan
    bad[1::10] = 1.5  # not a probability
    mixed: list[Any] = bad.tolist()
    mixed[2::10] = [None] * len(mixed[2::10])
    mixed[3] = "0.5"
    state = ClassificationState.zero()
    state.update(y.tolist(), labels.tolist(), mixed)
    m = classification_metrics(state)
    none = np.zeros(y.size, dtype=bool)
    none[2::10] = True
    invalid = np.isnan(bad) | (bad > 1)
    invalid[3] = True
    ok = ~none & ~invalid
    assert m["count"] == y.size  # the rows still count for the label metrics
    assert m["skipped"]["unscored"] == int(none.sum())
    assert m["skipped"]["invalid_score"] == int(invalid.sum())
    assert m["scored_count"] == int(ok.sum())
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, labels), rel=EXACT)
    assert m["log_loss"] == pytest.approx(skm.log_loss(y[ok], scores[ok]), rel=REL)
    assert abs(m["auc_roc"] - skm.roc_auc_score(y[ok], scores[ok])) <= m["auc_roc_error_bound"] + EXACT
    no_scores = ClassificationState.zero()
    no_scores.update(y, labels)
    m = classification_metrics(no_scores)
    assert m["skipped"]["unscored"] == y.size and m["scored_count"] == 0
    assert m["auc_roc"] is None and m["log_loss"] is None and m["f1"] is not None


def test_labels_normalise_across_types() -> None:
    state = ClassificationState.zero()
    state.update([True, False, 1.0, 0, np.int64(1), None, float("nan")], [1, 0, True, 0.0, 1, 1, 0], [0.9] * 7)
    m = classification_metrics(state)
    assert m["confusion_matrix"] == {"labels": [0, 1], "matrix": [[2, 0], [0, 3]]}
    assert m["skipped"]["missing_actual"] == 2
    state.update(["1", 1], [None, "1"])  # strings are never parsed: "1" is its own class
    m = classification_metrics(state)
    assert m["skipped"]["missing_label"] == 1
    assert m["confusion_matrix"]["labels"] == [0, 1, "1"]
    assert m["confusion_matrix"]["matrix"][1] == [0, 3, 1]
    assert m["positive_label"] is None  # numbers and strings mixed: name it
    assert classification_metrics(state, positive_label=True)["positive_label"] == 1


def test_update_validates_before_changing_anything() -> None:
    state = ClassificationState.zero()
    state.update([1], [1], [0.5])
    before = state.to_bytes()
    with pytest.raises(ValueError, match="lengths"):
        state.update([1, 0], [1])
    with pytest.raises(ValueError, match="lengths"):
        state.update([1, 0], [1, 0], [0.5])
    with pytest.raises(ValueError, match="not predictions"):
        state.update([1], predictions=[1.0])
    with pytest.raises(ValueError, match="one-dimensional"):
        state.update(np.zeros((2, 2)), [1, 1])
    assert state.to_bytes() == before


def test_class_cap_pools_the_rest_and_keeps_accuracy_exact() -> None:
    config = PerformanceConfig(max_classes=3)
    rng = np.random.default_rng(3)
    y = rng.integers(0, 6, 500)
    labels = np.where(rng.random(500) < 0.6, y, rng.integers(0, 6, 500))
    state = ClassificationState.zero("multiclass_classification", config)
    for rows in windows(500, 4, seed=4):
        part = ClassificationState.zero("multiclass_classification", config)
        part.update(y[rows], labels[rows])
        state.merge(roundtrip(part))
    m = classification_metrics(state)
    assert len(state.labels) == 3
    assert m["confusion_matrix"]["labels"][-1] == OTHER_LABEL
    assert m["count"] == 500
    assert np.sum(m["confusion_matrix"]["matrix"]) == 500
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, labels), rel=EXACT)
    assert m["precision"]["micro"] == pytest.approx(m["accuracy"], rel=EXACT)


def test_score_classes_are_capped() -> None:
    state = ClassificationState.zero(config=PerformanceConfig(max_score_classes=2))
    state.update([0, 1, 2, 3, 1], [0, 1, 1, 1, 1], [0.1, 0.9, 0.5, 0.6, 0.8])
    assert set(state.scores) == {0, 1, None}
    m = classification_metrics(roundtrip(state))
    assert m["scored_count"] == 5
    assert m["auc_roc"] == pytest.approx(skm.roc_auc_score([0, 1, 0, 0, 1], [0.1, 0.9, 0.5, 0.6, 0.8]))


def test_empty_state() -> None:
    for task in ("binary_classification", "multiclass_classification"):
        m = classification_metrics(roundtrip(ClassificationState.zero(task)))
        assert m["count"] == 0 and m["scored_count"] == 0
        assert m["accuracy"] is None and m["precision"] is None and m["confusion_matrix"] is None
        assert m["auc_roc"] is None and m["log_loss"] is None and m["roc_curve"] is None


def test_merge_refuses_other_tasks_and_configs() -> None:
    binary = ClassificationState.zero()
    with pytest.raises(ValueError, match="cannot merge"):
        binary.merge(ClassificationState.zero("multiclass_classification"))
    with pytest.raises(ValueError, match="cannot merge"):
        binary.merge(ClassificationState.zero(config=PerformanceConfig(score_bins=1000)))
    with pytest.raises(ValueError, match="task must be"):
        ClassificationState.zero("regression")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="score_bins"):
        PerformanceConfig(score_bins=5)


def test_from_bytes_refuses_garbage(cancer: Any) -> None:
    y, labels, scores = cancer
    state = ClassificationState.zero()
    state.update(y, labels, scores)
    blob = state.to_bytes()
    assert roundtrip(state).to_bytes() == blob
    rng = np.random.default_rng(5)
    bad: list[bytes] = [b"", b"\x01", rng.bytes(64), blob[:-1], blob + b"\x00", b"\x02" + blob[1:]]
    bad += [blob[:i] for i in range(0, len(blob), 37)]
    for i in rng.choice(len(blob), 50, replace=False):
        flipped = bytearray(blob)
        flipped[i] ^= 0xFF
        bad.append(bytes(flipped))
    for data in bad:
        with pytest.raises(ValueError, match="invalid ClassificationState bytes"):
            ClassificationState.from_bytes(data)


def test_from_bytes_refuses_well_formed_blobs_that_break_invariants() -> None:
    def broken(change: Any, task: Any = "binary_classification") -> bytes:
        state = ClassificationState.zero(task)
        state.update([0, 1, 1], [0, 1, 0], None if task != "binary_classification" else [0.2, 0.7, 0.4])
        change(state)
        return state.to_bytes()  # to_bytes checks nothing: the reader must

    def bools(state: ClassificationState) -> None:
        state.labels, state.pairs, state.scores = {True: None}, {(True, True): 3}, {}

    def scores(state: ClassificationState) -> None:
        state.scores[0] = ScoreStats(state.config.score_bins)
        state.scores[0].add(np.array([0.5]))

    cases = {
        "a label in no pair": broken(lambda s: s.labels.__setitem__(7, None)),
        "other_correct": broken(lambda s: setattr(s, "other_correct", 1)),
        "empty pair": broken(lambda s: s.pairs.__setitem__((1, 1), 0)),
        "more scores than rows": broken(lambda s: s.scores[0].hist.__setitem__(0, 5)),
        "non-negative": broken(lambda s: setattr(s.scores[1], "neglog_p", -1.0)),
        "canonical": broken(bools),
        "multiclass": broken(scores, "multiclass_classification"),
    }
    for message, blob in cases.items():
        with pytest.raises(ValueError, match=message):
            ClassificationState.from_bytes(blob)


def test_positive_only_window_has_a_pr_curve_but_no_roc() -> None:
    state = ClassificationState.zero()
    state.update([1, 1, 1], [1, 0, 1], [0.9, 0.4, 0.7])
    m = classification_metrics(state)
    assert m["roc_curve"] is None and m["auc_roc"] is None and m["ks"] is None
    assert m["pr_curve"]["precision"] == [1.0, 1.0, 1.0] and m["pr_curve"]["recall"][-1] == 1.0
    assert m["recall"] == pytest.approx(2 / 3) and m["precision"] == 1.0


def test_merge_of_live_states_equals_one_state() -> None:
    rng = np.random.default_rng(8)
    y = rng.integers(0, 2, 1000)
    s = rng.random(1000)
    labels = (s >= 0.5).astype(int)
    a, b, whole = ClassificationState.zero(), ClassificationState.zero(), ClassificationState.zero()
    a.update(y[:400], labels[:400], s[:400])
    b.update(y[400:], labels[400:], s[400:])
    whole.update(y, labels, s)
    a.merge(b)  # neither went through bytes: dense histograms on both sides
    assert a.pairs == whole.pairs
    for key in whole.scores:
        np.testing.assert_array_equal(a.scores[key].hist, whole.scores[key].hist)
    assert classification_metrics(a)["auc_roc"] == pytest.approx(classification_metrics(whole)["auc_roc"], rel=1e-12)


def test_score_inputs_of_every_shape() -> None:
    state = ClassificationState.zero()
    state.update([1, 0, 1, 0], [1, 0, 1, 0], [0.9, None, 10**400, 0.2])  # numbers and None; an int past float range
    state.update([1, 0], [1, 0], np.array([0.8, "x"], dtype=object))
    state.update([1, 0], [1, 0], np.array([1, 0], dtype=np.int8))
    state.update([1, 0], [1, 0], [None, 0.3])
    assert (state.unscored, state.invalid_score, classification_metrics(state)["scored_count"]) == (2, 2, 6)
    with pytest.raises(ValueError, match="one-dimensional"):
        state.update([1], [1], np.zeros((1, 1)))
    assert "count=10" in repr(state)


@pytest.mark.parametrize(
    "kwargs", [{"max_classes": 1}, {"score_bins": 2_000_000}, {"max_score_classes": 65}, {"max_classes": 10**6}]
)
def test_config_is_validated(kwargs: Any) -> None:
    with pytest.raises(ValueError, match="must be in"):
        PerformanceConfig(**kwargs)


def test_from_bytes_refuses_hand_made_bodies() -> None:
    head = struct.pack("<BIIH5Q", 0, 1000, 10_000, 8, 0, 0, 0, 0, 0)

    def body(labels: bytes) -> bytes:
        return pack(KIND_CLASSIFICATION, head + struct.pack("<I", len(labels)) + labels + bytes(8))

    for labels, message in ((b"{}", "a list"), (b"[" * 100_000, "RecursionError"), (b"[1, 1]", "duplicate")):
        with pytest.raises(ValueError, match=message):
            ClassificationState.from_bytes(body(labels))
    too_many = ClassificationState.zero(config=PerformanceConfig(max_score_classes=2))
    too_many.update([0, 1, 2], [0, 1, 2], [0.1, 0.2, 0.3])
    too_many.scores[2] = too_many.scores.pop(None)  # a third class with its own histogram
    with pytest.raises(ValueError, match="max_score_classes"):
        ClassificationState.from_bytes(too_many.to_bytes())


def test_row_by_row_updates_equal_one_batch(cancer: Any) -> None:
    y, labels, scores = cancer
    mixed: list[Any] = scores.tolist()
    mixed[::7] = [None] * len(mixed[::7])
    mixed[1::9] = [float("nan")] * len(mixed[1::9])
    actuals: list[Any] = y.tolist()
    actuals[2::11] = [None] * len(actuals[2::11])
    batch, rows = ClassificationState.zero(), ClassificationState.zero()
    batch.update(actuals, labels.tolist(), mixed)  # vectorised
    for i in range(0, y.size, 3):  # three rows a call: the small-batch path
        rows.update(actuals[i : i + 3], labels[i : i + 3].tolist(), mixed[i : i + 3])
    assert rows.pairs == batch.pairs
    assert (rows.missing_actual, rows.unscored, rows.invalid_score) == (
        batch.missing_actual,
        batch.unscored,
        batch.invalid_score,
    )
    for key, stats in batch.scores.items():
        np.testing.assert_array_equal(rows.scores[key].hist, stats.hist)
        assert rows.scores[key].neglog_p == pytest.approx(stats.neglog_p, rel=1e-12)
