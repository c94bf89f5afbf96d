"""The distance functions against scipy/numpy on the same raw samples: these are exact (no sketch involved)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from collector.distances import (
    PSI_FLOOR,
    StepCDF,
    chi2_homogeneity,
    js_distance,
    ks_p_value,
    ks_statistic,
    psi,
    wasserstein,
)

SAMPLES = {
    "normal vs shifted": (lambda rng: (rng.normal(0, 1, 700), rng.normal(0.5, 1, 400))),
    "normal vs same": (lambda rng: (rng.normal(0, 1, 700), rng.normal(0, 1, 400))),
    "lognormal vs wider": (lambda rng: (rng.lognormal(0, 1, 500), rng.lognormal(0, 1.3, 900))),
    "integers with ties": (lambda rng: (rng.integers(0, 5, 300).astype(float), rng.integers(1, 7, 250).astype(float))),
}


@pytest.fixture(params=sorted(SAMPLES))
def samples(request: pytest.FixtureRequest) -> tuple[np.ndarray, np.ndarray]:
    return SAMPLES[request.param](np.random.default_rng(7))


def test_ks_statistic_and_p_value_equal_scipy_ks_2samp_asymp(samples: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = samples
    expected = stats.ks_2samp(a, b, method="asymp")
    statistic = ks_statistic(StepCDF.from_sample(a), StepCDF.from_sample(b))
    assert statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert ks_p_value(statistic, a.size, b.size) == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)


def test_wasserstein_equals_scipy(samples: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = samples
    w1 = wasserstein(StepCDF.from_sample(a), StepCDF.from_sample(b))
    assert w1 == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-12)


def test_weighted_step_cdf_equals_repeated_sample() -> None:
    items, weights = np.array([3.0, 1.0, 2.0, 1.0]), np.array([2.0, 1.0, 4.0, 3.0])
    cdf = StepCDF.from_weighted(items, weights)
    repeated = StepCDF.from_sample(np.repeat(items, weights.astype(int)))
    points = np.array([-1.0, 1.0, 1.5, 2.0, 3.0, 9.0])
    assert cdf.n == 10
    np.testing.assert_allclose(cdf(points), repeated(points))
    np.testing.assert_allclose(cdf(points), [0.0, 0.4, 0.4, 0.8, 1.0, 1.0])
    with pytest.raises(ValueError, match="at least one"):
        StepCDF.from_sample([])


def test_psi_formula_and_floor() -> None:
    e = np.array([0.5, 0.3, 0.2, 0.0])
    a = np.array([0.2, 0.3, 0.4, 0.1])
    expected_floor = np.maximum(e, 1e-4)
    by_hand = float(np.sum((a - expected_floor) * np.log(a / expected_floor)))
    assert psi(e, a) == pytest.approx(by_hand, rel=1e-12)
    assert PSI_FLOOR == 1e-4
    # A bin empty on both sides contributes nothing; PSI is symmetric.
    assert psi([0.5, 0.5, 0.0], [0.5, 0.5, 0.0]) == 0.0
    assert psi(e, a) == pytest.approx(psi(a, e), rel=1e-12)
    with pytest.raises(ValueError, match="equal length"):
        psi([0.5, 0.5], [1.0])


def test_js_distance_equals_scipy_base_2() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        p, q = rng.dirichlet(np.ones(8)), rng.dirichlet(np.ones(8))
        p[rng.integers(8)] = 0.0  # an empty bin on one side
        assert js_distance(p, q) == pytest.approx(float(jensenshannon(p, q, base=2)), rel=1e-12)
    assert js_distance([1.0, 0.0], [0.0, 1.0]) == pytest.approx(1.0)
    assert js_distance([0.2, 0.8], [0.2, 0.8]) == 0.0


def test_ks_p_value_needs_two_samples() -> None:
    assert ks_p_value(0.0, 10, 10) == 1.0
    assert ks_p_value(1.0, 1, 1) == pytest.approx(0.0)  # effective n rounds to 0 and is held at 1
    with pytest.raises(ValueError):
        ks_p_value(0.1, 0, 10)


def test_chi2_homogeneity_equals_chi2_contingency_without_correction() -> None:
    ref, cur = [50, 30, 20, 0], [40, 25, 25, 10]
    statistic, p_value = chi2_homogeneity(ref, cur)  # type: ignore[misc]
    expected = stats.chi2_contingency(np.array([ref, cur]), correction=False)
    assert statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert p_value == pytest.approx(expected.pvalue, rel=1e-12)
    # A category empty in both rows is dropped rather than making scipy raise; dof follows.
    dropped = chi2_homogeneity([50, 0, 30], [40, 0, 25])
    assert dropped == pytest.approx(tuple(stats.chi2_contingency(np.array([[50, 30], [40, 25]]), correction=False)[:2]))
    assert chi2_homogeneity([5], [7]) == (0.0, 1.0)
    assert chi2_homogeneity([5, 1], [0, 0]) is None
    assert chi2_homogeneity([], []) is None


def test_wasserstein_and_ks_are_zero_for_identical_distributions() -> None:
    a = StepCDF.from_sample([1.0, 2.0, 2.0, 5.0])
    b = StepCDF.from_weighted([5.0, 2.0, 1.0], [1.0, 2.0, 1.0])
    assert ks_statistic(a, b) == 0.0
    assert wasserstein(a, b) == 0.0
    assert math.isclose(wasserstein(a, StepCDF.from_sample([11.0, 12.0, 12.0, 15.0])), 10.0)


@pytest.mark.parametrize("n", [1001, 5000, 100_000])
@pytest.mark.parametrize("p", [0.5, 0.05, 1e-3, 1e-6, 1e-12])
def test_ks_p_value_for_large_samples_is_the_stephens_limit(n: int, p: float) -> None:
    """Above KS_EXACT_MAX_N the p-value is Kolmogorov's limit with Stephens' correction (O(1), where scipy's kstwo.sf
    costs O(n)): within the relative errors the module docstring states."""
    import math

    from collector.distances import KS_EXACT_MAX_N

    assert n > KS_EXACT_MAX_N
    statistic = float(stats.kstwo.isf(p, n))
    got = ks_p_value(statistic, 2 * n, 2 * n)  # effective n = n
    assert got == stats.kstwobign.sf(statistic * (math.sqrt(n) + 0.12 + 0.11 / math.sqrt(n)))
    assert got == pytest.approx(float(stats.kstwo.sf(statistic, n)), rel=0.007 if p >= 0.01 else 0.06)
    assert ks_p_value(statistic, KS_EXACT_MAX_N * 2, KS_EXACT_MAX_N * 2) == pytest.approx(
        stats.kstwo.sf(statistic, KS_EXACT_MAX_N), rel=1e-12
    )  # at the threshold: scipy's own


def test_ks_and_wasserstein_together_equal_each_alone(samples: tuple[np.ndarray, np.ndarray]) -> None:
    from collector.distances import ks_and_wasserstein

    a, b = StepCDF.from_sample(samples[0]), StepCDF.from_sample(samples[1])
    assert ks_and_wasserstein(a, b) == (ks_statistic(a, b), wasserstein(a, b))
