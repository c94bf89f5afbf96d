"""Page-Hinkley and ADWIN against the published algorithms, on synthetic series with fixed seeds.

Verified here (values in units of the series' standard deviation, as the evaluator feeds them; 1 value per step):
- Page-Hinkley with the rule defaults (delta 0.1, lambda 50, alpha 1 - 1e-4, 30 warm-up values): at most 2 of 100
  stationary series of 3,000 values alarm (the frouros/river defaults delta 0.005, lambda 50 alarm on most of
  them: they assume a raw scale, not sigma units). Delays over 100 seeds: a 1-sigma step is found after 26-98
  values (median 56); a ramp of 0.01 sigma per value (1 sigma after 100 values) after 67-141 (median 110).
- ADWIN with delta 0.002, checked every value: at most 1 of 30 stationary series of 3,000 values. Delays over
  30 seeds: a 1-sigma step after 18-75 values (median 32); the ramp after 74-130 (median 98). ADWIN2's buckets
  find a step no earlier than ADWIN0 (every cut point, the same bound) and at most 10 values later.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable

import numpy as np
import pytest

from collector.detectors import ADWIN, PageHinkley, Scaled, detector_from_dict

T0 = 300  # the change starts here


def series(seed: int, n: int = 3000, change: Callable[[int], float] | None = None) -> list[float]:
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, n)
    if change is not None:
        x += np.array([change(t) for t in range(n)])
    return [float(v) for v in x]


def first_alarm(detector: PageHinkley | ADWIN | Scaled, xs: list[float], after: int = 0) -> int | None:
    for t, x in enumerate(xs):
        if detector.update(x) and t >= after:
            return t
    return None


def rule_ph(direction: str = "up") -> PageHinkley:
    return PageHinkley(delta=0.1, lambda_=50, direction=direction)  # type: ignore[arg-type]


def step(t: int) -> float:
    return 1.0 if t >= T0 else 0.0


def ramp(t: int) -> float:
    return 0.01 * max(0, t - T0)


# -- Page-Hinkley ---------------------------------------------------------------------------------------------
def naive_page_hinkley(xs: list[float], delta: float, lambda_: float, min_instances: int) -> int | None:
    """The test as published, vectorised: m_t = sum_{i<=t} (x_i - mean_i - delta), M_t = min(0, m_1..m_t)."""
    x = np.asarray(xs)
    means = np.cumsum(x) / np.arange(1, len(x) + 1)
    m = np.cumsum(x - means - delta)
    low = np.minimum.accumulate(np.minimum(m, 0.0))
    hits = np.nonzero((m - low > lambda_) & (np.arange(1, len(x) + 1) >= min_instances))[0]
    return int(hits[0]) if len(hits) else None


@pytest.mark.parametrize("seed", range(10))
def test_page_hinkley_matches_the_published_test(seed: int) -> None:
    xs = series(seed, 1000, lambda t: 0.5 * step(t))
    expected = naive_page_hinkley(xs, 0.005, 20.0, 30)
    assert expected is not None
    assert first_alarm(PageHinkley(0.005, 20.0, alpha=1.0, direction="up"), xs) == expected


def test_page_hinkley_forgetting_factor() -> None:
    xs = series(3, 500, step)
    ph = PageHinkley(0.005, 1e9, alpha=0.99, direction="up")
    m = mean = 0.0
    for t, x in enumerate(xs, 1):
        ph.update(x)
        mean += (x - mean) / t
        m = 0.99 * m + x - mean - 0.005
        assert ph.up == pytest.approx(m, abs=1e-9)


def test_page_hinkley_false_alarms_on_stationary_series() -> None:
    alarms = [first_alarm(rule_ph("both"), series(seed)) for seed in range(100)]
    assert sum(a is not None for a in alarms) <= 2
    anchors = [first_alarm(PageHinkley(direction="both"), series(seed, 2000)) for seed in range(20)]
    assert sum(a is not None for a in anchors) >= 10  # why the rule defaults differ from frouros' on sigma units


@pytest.mark.parametrize(
    ("change", "low", "high", "median_low", "median_high"), [(step, 10, 150, 35, 80), (ramp, 50, 200, 90, 130)]
)
def test_page_hinkley_detection_delay(
    change: Callable[[int], float], low: int, high: int, median_low: int, median_high: int
) -> None:
    delays = []
    for seed in range(100):
        found = first_alarm(rule_ph(), series(1000 + seed, 1500, change), after=T0)
        assert found is not None
        delays.append(found - T0)
    assert low <= min(delays) and max(delays) <= high
    assert median_low <= statistics.median(delays) <= median_high


def test_page_hinkley_directions_and_reset() -> None:
    down = series(5, 1000, lambda t: -step(t))
    assert first_alarm(rule_ph("up"), down) is None
    ph = rule_ph("down")
    assert first_alarm(ph, down) is not None
    assert ph.n < 700 and ph.statistic < 50  # it restarted after the alarm


# -- ADWIN ----------------------------------------------------------------------------------------------------
def test_adwin_window_statistics_are_exact() -> None:
    xs = series(11, 2000, lambda t: 2 * step(t) + ramp(t) / 2)
    adwin = ADWIN()
    for t, x in enumerate(xs):
        adwin.update(x)
        window = np.asarray(xs[t + 1 - adwin.width : t + 1])
        assert adwin.mean == pytest.approx(window.mean(), abs=1e-9)
        assert adwin.variance == pytest.approx(((window - window.mean()) ** 2).sum(), rel=1e-9, abs=1e-6)
        sizes = [len(row) for row in adwin.rows]
        assert all(n <= adwin.max_buckets for n in sizes)
        assert sum(n * 2**i for i, n in enumerate(sizes)) == adwin.width
    assert adwin.width < 2000  # it dropped the data from before the changes


def adwin0(xs: list[float], delta: float = 0.002, mml: int = 5, grace: int = 10) -> int | None:
    """ADWIN0 as published (every split point of the window, the same bound as ADWIN): the first alarm."""
    window: list[float] = []
    for t, x in enumerate(xs):
        window.append(x)
        if len(window) <= grace:
            continue
        w = np.asarray(window)
        n, total = len(w), w.sum()
        var = ((w - w.mean()) ** 2).sum() / n
        dd = math.log(2 * math.log(n) / delta)
        head = np.cumsum(w)
        for n0 in range(mml + 1, n - mml):
            n1 = n - n0
            m = 1 / (n0 - mml + 1) + 1 / (n1 - mml + 1)
            if abs(head[n0 - 1] / n0 - (total - head[n0 - 1]) / n1) > math.sqrt(2 * m * var * dd) + 2 / 3 * dd * m:
                return t
    return None


@pytest.mark.parametrize("seed", range(12))
def test_adwin2_finds_a_step_about_when_adwin0_does(seed: int) -> None:
    xs = series(100 + seed, 700, step)
    exact = adwin0(xs)
    found = first_alarm(ADWIN(), xs)
    assert exact is not None and found is not None and exact >= T0
    assert exact <= found <= exact + 10


def test_adwin_false_alarms_on_stationary_series() -> None:
    alarms = [first_alarm(ADWIN(), series(seed)) for seed in range(30)]
    assert sum(a is not None for a in alarms) <= 1


@pytest.mark.parametrize(("change", "high", "median_low", "median_high"), [(step, 100, 25, 60), (ramp, 200, 80, 130)])
def test_adwin_detection_delay(change: Callable[[int], float], high: int, median_low: int, median_high: int) -> None:
    delays = []
    for seed in range(30):
        found = first_alarm(ADWIN(direction="up"), series(2000 + seed, 800, change), after=T0)
        assert found is not None
        delays.append(found - T0)
    assert max(delays) <= high and median_low <= statistics.median(delays) <= median_high


def test_adwin_direction_filters_but_still_adapts() -> None:
    xs = series(9, 800, lambda t: -step(t))
    up = ADWIN(direction="up")
    assert first_alarm(up, xs) is None and up.width < 600  # it cut the window without reporting
    assert first_alarm(ADWIN(direction="down"), xs) is not None


# -- state and scaling -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [lambda: rule_ph("both"), lambda: ADWIN(), lambda: Scaled(ADWIN(), warmup=20)])
def test_state_round_trips_through_json_mid_stream(make: Callable[[], PageHinkley | ADWIN | Scaled]) -> None:
    xs = series(21, 1200, lambda t: 3 * step(t) + ramp(t))
    straight, resumed = make(), make()
    a = [straight.update(x) for x in xs]
    b = []
    for x in xs:
        state = json.loads(json.dumps(resumed.to_dict()))  # what the store keeps between evaluations
        resumed = Scaled.from_dict(state) if isinstance(resumed, Scaled) else detector_from_dict(state)
        b.append(resumed.update(x))
    assert a == b and any(a)


def test_scaled_learns_the_scale_from_the_warm_up() -> None:
    xs = [0.02 + 0.005 * v for v in series(4, 600, lambda t: 2 * step(t))]  # a PSI-like series, 2 sigma jump
    scaled = Scaled(rule_ph(), warmup=30)
    found = first_alarm(scaled, xs)
    assert scaled.scale == pytest.approx(0.005, rel=0.3)
    assert found is not None and T0 <= found <= T0 + 60
    raw = rule_ph()  # unscaled, the same jump is 0.01: far below delta and lambda
    assert first_alarm(raw, xs) is None


def test_scaled_with_a_given_scale_and_a_constant_warm_up() -> None:
    inner = ADWIN()
    given = Scaled(inner, scale=2.0)
    given.update(4.0)
    assert inner.total == 2.0 and given.buffer == []
    constant = Scaled(ADWIN(), warmup=5)
    for _ in range(5):
        constant.update(0.0)
    assert constant.scale == 0.01  # an error rate stuck at 0 gets a unit of 0.01
    level = Scaled(ADWIN(), warmup=5)
    for _ in range(5):
        level.update(250.0)
    assert level.scale == 2.5
    with pytest.raises(ValueError):
        Scaled(ADWIN(), scale=0.0)


def test_bad_parameters_and_states() -> None:
    with pytest.raises(ValueError):
        PageHinkley(lambda_=0)
    with pytest.raises(ValueError):
        ADWIN(delta=1.5)
    with pytest.raises(ValueError, match="unknown detector state"):
        detector_from_dict({"kind": "kswin"})
