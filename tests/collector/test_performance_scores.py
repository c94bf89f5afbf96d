"""Score histograms: the stated AUC and KS error bounds hold, against exact scikit-learn values on raw scores.

The bounds are derived in `collector.performance_scores`; here they are checked on data built to stress them:
coarse bins (10 and 100) so that many pairs share a bin, discrete scores with exact ties, and overlapping
classes. Float tolerance 1e-12 on top of each bound.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn import metrics as skm

from collector.performance_scores import ScoreStats, binary_score_metrics, score_bins

EXACT = 1e-12


def stats_for(y: np.ndarray, s: np.ndarray, bins: int) -> tuple[ScoreStats, ScoreStats]:
    pos, neg = ScoreStats(bins), ScoreStats(bins)
    pos.add(s[y == 1])
    neg.add(s[y == 0])
    return pos, neg


def data(kind: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n = 3000
    y = (rng.random(n) < 0.3).astype(int)
    if kind == "overlap":
        s = 1 / (1 + np.exp(-(rng.normal(0, 1, n) + 0.8 * y)))
    elif kind == "ties":
        s = rng.integers(0, 21, n) / 20 * 0.5 + 0.25 * y
    else:  # concentrated near 0 and 1, like a confident model
        s = np.where(y == 1, 1 - rng.beta(0.3, 8, n), rng.beta(0.3, 8, n))
    return y, np.clip(s, 0.0, 1.0)


@pytest.mark.parametrize("bins", [10, 100, 10_000])
@pytest.mark.parametrize("kind", ["overlap", "ties", "extremes"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_and_ks_within_their_bounds(bins: int, kind: str, seed: int) -> None:
    y, s = data(kind, np.random.default_rng(seed))
    pos, neg = stats_for(y, s, bins)
    m = binary_score_metrics(pos, [neg], bins, max_points=200)
    auc = skm.roc_auc_score(y, s)
    assert abs(m["auc_roc"] - auc) <= m["auc_roc_error_bound"] + EXACT
    assert abs(m["gini"] - (2 * auc - 1)) <= m["gini_error_bound"] + EXACT
    fpr, tpr, _ = skm.roc_curve(y, s, drop_intermediate=False)
    ks = float(np.max(tpr - fpr))
    assert ks - m["ks_error_bound"] - EXACT <= m["ks"] <= ks + EXACT
    if bins == 10_000 and kind == "overlap":  # continuous scores: the bounds are small
        assert m["auc_roc_error_bound"] < 1e-3 and m["ks_error_bound"] < 0.01


def test_bounds_are_zero_when_no_bin_holds_both_classes() -> None:
    y = np.array([0, 0, 1, 1])
    s = np.array([0.1, 0.2, 0.2001, 0.9])
    pos, neg = stats_for(y, s, 10_000)
    m = binary_score_metrics(pos, [neg], 10_000, max_points=200)
    assert m["auc_roc"] == 1.0 and m["auc_roc_error_bound"] == 0.0
    assert m["ks"] == 1.0 and m["ks_error_bound"] == 0.0


def test_log_loss_and_brier_clip_like_sklearn() -> None:
    y = np.array([1, 0, 1, 0, 1, 0])
    s = np.array([1.0, 0.0, 0.0, 1.0, 1e-300, 0.5])  # two certain mistakes: clipped to eps
    pos, neg = stats_for(y, s, 100)
    m = binary_score_metrics(pos, [neg], 100, max_points=200)
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, s), rel=1e-12)
    assert m["brier"] == pytest.approx(skm.brier_score_loss(y, s), rel=1e-12)


def test_small_and_large_updates_agree() -> None:
    rng = np.random.default_rng(7)
    s = rng.random(5000)
    one, some, few = ScoreStats(1000), ScoreStats(1000), ScoreStats(1000)
    one.add(s)  # bincount
    for chunk in np.array_split(s, 100):  # 50 values each: np.add.at
        some.add(chunk)
    for chunk in np.array_split(s, 500):  # 10 values each: Python arithmetic
        few.add(chunk.tolist() if len(chunk) % 2 else chunk)
    for other in (some, few):
        np.testing.assert_array_equal(one.hist, other.hist)
        assert one.n == other.n == s.size
        for sum_ in ("neglog_p", "neglog_q", "sq_p", "sq_q"):
            assert getattr(one, sum_) == pytest.approx(getattr(other, sum_), rel=1e-12)
    np.testing.assert_array_equal(one.hist, np.bincount(score_bins(s, 1000), minlength=1000))
    edges = ScoreStats(10)
    edges.add([0.0, 1.0, 1e-300, 0.1])
    assert edges.hist.tolist() == [2, 1, 0, 0, 0, 0, 0, 0, 0, 1]
    assert score_bins(np.array([0.0, 0.5, 1.0]), 10).tolist() == [0, 5, 9]


def test_multiple_negative_classes_pool() -> None:
    pos, neg_a, neg_b = ScoreStats(100), ScoreStats(100), ScoreStats(100)
    pos.add(np.array([0.8, 0.9]))
    neg_a.add(np.array([0.1]))
    neg_b.add(np.array([0.85]))
    m: dict[str, Any] = binary_score_metrics(pos, [neg_a, neg_b], 100, max_points=200)
    assert m["scored_count"] == 4
    assert m["auc_roc"] == pytest.approx(skm.roc_auc_score([1, 1, 0, 0], [0.8, 0.9, 0.1, 0.85]))
    assert binary_score_metrics(None, [neg_a], 100, 200)["auc_roc"] is None
    assert binary_score_metrics(None, [neg_a], 100, 200)["log_loss"] == pytest.approx(-np.log(0.9))
