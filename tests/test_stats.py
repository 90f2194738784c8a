"""sim.stats: intervals checked against hand-worked examples and scipy, MSER-5 on known transients."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from sim.stats import Interval, bootstrap_ci, mean_ci, mser5, paired_difference_ci, proportion_ci, spread

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
samples = st.lists(finite, min_size=2, max_size=40)
# No deadline: the first call imports scipy.stats, which takes most of a second.
quick = settings(deadline=None)


# -- mean_ci ------------------------------------------------------------------------------------


def test_t_interval_of_a_hand_worked_sample() -> None:
    # 1, 2, 3: mean 2, sample sd 1, standard error 1/sqrt(3); t(0.975, 2 df) = 4.302653
    interval = mean_ci([1.0, 2.0, 3.0])
    half = 4.302652729749462 / math.sqrt(3)
    assert interval.estimate == 2.0 and interval.n == 3 and interval.method == "t"
    assert interval.low == pytest.approx(2.0 - half, rel=1e-12) and interval.high == pytest.approx(2.0 + half)
    assert (interval.low, interval.high) == pytest.approx(scipy_stats.t.interval(0.95, 2, loc=2.0, scale=1 / 3**0.5))


def test_t_interval_matches_scipy_on_a_larger_sample() -> None:
    # 2, 4, 4, 4, 5, 5, 7, 9: mean 5, sum of squares 32, sd sqrt(32/7), t(0.975, 7 df) = 2.364624
    values = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]
    interval = mean_ci(values)
    scale = math.sqrt(32 / 7) / math.sqrt(8)
    assert interval.estimate == 5.0
    assert interval.low == pytest.approx(5.0 - 2.364624251592784 * scale)
    assert (interval.low, interval.high) == pytest.approx(scipy_stats.t.interval(0.95, 7, loc=5.0, scale=scale))
    at_99 = mean_ci(values, confidence=0.99)
    assert (at_99.low, at_99.high) == pytest.approx(scipy_stats.t.interval(0.99, 7, loc=5.0, scale=scale))


def test_one_value_has_no_interval_and_none_has_no_estimate() -> None:
    assert mean_ci([3.5]) == Interval(3.5, None, None, 1, "t", 0.95)
    assert mean_ci([]) == Interval(None, None, None, 0, "t", 0.95)
    assert mean_ci([3.5]).width is None and not mean_ci([3.5]).contains(3.5)


def test_equal_values_give_a_zero_width_interval_at_the_value() -> None:
    interval = mean_ci([0.1, 0.1, 0.1])
    assert interval.estimate == interval.low == interval.high == 0.1 and interval.width == 0.0


@pytest.mark.parametrize("values", [[1.0, math.nan], [math.inf, 1.0], [[1.0], [2.0]]])
def test_values_must_be_finite_and_flat(values: list[float]) -> None:
    with pytest.raises(ValueError, match="mean_ci"):
        mean_ci(values)


@pytest.mark.parametrize("confidence", [0.0, 1.0, -0.5, 95.0])
def test_confidence_must_be_a_probability(confidence: float) -> None:
    with pytest.raises(ValueError, match="confidence"):
        mean_ci([1.0, 2.0], confidence)


def test_as_dict_is_the_result_file_shape() -> None:
    assert mean_ci([1.0, 1.0]).as_dict() == {"mean": 1.0, "ci_low": 1.0, "ci_high": 1.0, "n": 2, "method": "t"}


@quick
@given(samples)
def test_the_interval_contains_the_mean(values: list[float]) -> None:
    interval = mean_ci(values)
    assert interval.low is not None and interval.high is not None and interval.estimate is not None
    assert interval.low <= interval.estimate <= interval.high


@quick
@given(st.lists(st.integers(-(10**9), 10**9).map(lambda i: i / 1000), min_size=2, max_size=40))
def test_a_99_percent_interval_is_at_least_as_wide_as_a_95_percent_one(values: list[float]) -> None:
    # values on a grid of 0.001, so that distinct values have a spread a float can show
    narrow, wide = mean_ci(values, 0.95), mean_ci(values, 0.99)
    assert narrow.width is not None and wide.width is not None
    assert wide.low is not None and narrow.low is not None and wide.high is not None and narrow.high is not None
    assert wide.low <= narrow.low and wide.high >= narrow.high
    if len(set(values)) > 1:
        assert wide.width > narrow.width


# -- bootstrap_ci -------------------------------------------------------------------------------


def test_bootstrap_is_scipy_bca_with_a_seeded_generator() -> None:
    values = [1.0, 2.0, 3.0, 10.0, 4.0, 2.5]
    interval = bootstrap_ci(values, np.mean, 0.95, seed=11, resamples=999)
    direct = scipy_stats.bootstrap(
        (np.array(values),), np.mean, n_resamples=999, rng=np.random.default_rng(11), method="BCa"
    ).confidence_interval
    assert (interval.low, interval.high) == (direct.low, direct.high)
    assert interval.estimate == pytest.approx(np.mean(values)) and interval.method == "bootstrap"
    assert interval.estimate is not None and interval.contains(interval.estimate)


def test_bootstrap_is_deterministic_for_a_seed() -> None:
    values = [0.3, 0.9, 0.4, 2.2, 0.5, 0.45, 0.6]
    assert bootstrap_ci(values, seed=3) == bootstrap_ci(values, seed=3)
    assert bootstrap_ci(values, np.median, seed=3).estimate == 0.5


def test_bootstrap_of_degenerate_samples() -> None:
    assert bootstrap_ci([2.0]) == Interval(2.0, None, None, 1, "bootstrap", 0.95)
    assert bootstrap_ci([2.0, 2.0, 2.0]) == Interval(2.0, 2.0, 2.0, 3, "bootstrap", 0.95)
    two = bootstrap_ci([1.0, 2.0])  # BCa cannot be computed on two values: the percentile interval is used
    assert two.low is not None and two.high is not None and two.low <= 1.5 <= two.high


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=100, allow_nan=False), min_size=3, max_size=20), st.integers(0, 99))
def test_bootstrap_gives_the_same_interval_for_the_same_seed(values: list[float], seed: int) -> None:
    first = bootstrap_ci(values, seed=seed, resamples=199)
    assert first == bootstrap_ci(values, seed=seed, resamples=199)
    assert first.n == len(values) and (first.low is None) == (first.high is None)


# -- paired_difference_ci -----------------------------------------------------------------------


def test_paired_difference_is_a_t_interval_on_the_differences() -> None:
    # differences 1, 2, 3: the same interval as mean_ci([1, 2, 3])
    interval = paired_difference_ci([10.0, 12.0, 14.0], [9.0, 10.0, 11.0])
    reference = mean_ci([1.0, 2.0, 3.0])
    assert (interval.estimate, interval.low, interval.high) == (reference.estimate, reference.low, reference.high)
    assert interval.method == "paired-t" and interval.n == 3


def test_pairing_removes_the_variance_the_samples_share() -> None:
    shared = np.random.default_rng(5).normal(100.0, 20.0, size=10)
    treated = shared + 1.0 + np.random.default_rng(6).normal(0.0, 0.1, size=10)
    paired = paired_difference_ci(list(treated), list(shared))
    assert paired.low is not None and paired.low > 0  # the shift of 1 shows through a spread of 20
    unpaired = mean_ci(list(shared)).width
    assert paired.width is not None and unpaired is not None and paired.width < 0.05 * unpaired


def test_paired_samples_must_have_the_same_length() -> None:
    with pytest.raises(ValueError, match="different lengths"):
        paired_difference_ci([1.0, 2.0], [1.0])


@quick
@given(samples)
def test_the_paired_interval_of_identical_samples_is_zero(values: list[float]) -> None:
    interval = paired_difference_ci(values, list(values))
    assert (interval.estimate, interval.low, interval.high) == (0.0, 0.0, 0.0)


# -- mser5 --------------------------------------------------------------------------------------


def test_mser5_on_a_hand_worked_series() -> None:
    # batch means 10, 0, 0, 1 (and a partial batch of 4s): MSER(0) = 70.75/16, MSER(1) = (2/3)/9,
    # MSER(2) = 0.5/4, so d = 1 batch: keep from observation 5; mean (5*1 + 3*4) / 18
    series = [10.0] * 5 + [0.0] * 10 + [1.0] * 5 + [4.0] * 3
    warmup = mser5(series)
    assert warmup.truncation == 5 and warmup.kept == 18
    assert warmup.mean == pytest.approx(17 / 18)
    truncation, mean, _ = warmup  # it unpacks as a tuple too
    assert (truncation, mean) == (5, warmup.mean)


def test_mser5_cuts_an_obvious_initial_transient() -> None:
    noise = np.random.default_rng(1).normal(0.0, 1.0, size=300)
    transient = 40.0 * np.exp(-np.arange(300) / 8.0)  # gone (under 0.1) after about 50 observations
    series = list(10.0 + transient + noise)
    warmup = mser5(series)
    assert 20 <= warmup.truncation <= 80 and warmup.truncation % 5 == 0
    assert abs(warmup.mean - 10.0) < 0.3 < abs(float(np.mean(series)) - 10.0)


def test_mser5_leaves_a_stationary_or_short_series_alone() -> None:
    assert mser5([3.0] * 50) == (0, 3.0, 50)
    assert mser5([5.0, 1.0, 7.0]) == (0, pytest.approx(13 / 3), 3)  # under two batches: nothing to compare
    with pytest.raises(ValueError, match="empty"):
        mser5([])


@quick
@given(st.lists(finite, min_size=1, max_size=200))
def test_mser5_truncates_at_a_batch_boundary_in_the_first_half(series: list[float]) -> None:
    warmup = mser5(series)
    assert warmup.truncation % 5 == 0 and warmup.truncation <= (len(series) // 5) // 2 * 5
    assert warmup.kept == len(series) - warmup.truncation
    assert warmup.mean == pytest.approx(float(np.mean(series[warmup.truncation :])), abs=1e-6)


def test_proportion_ci_is_wilsons_score_interval() -> None:
    # Hand-worked: 20 of 20 at 95 % (z = 1.959964): centre (1 + z^2/40) / (1 + z^2/20),
    # half z * sqrt(z^2/1600) / (1 + z^2/20); the lower bound is 20 / (20 + z^2) = 0.8389.
    interval = proportion_ci([1.0] * 20)
    assert interval.method == "wilson" and interval.estimate == 1.0
    assert interval.low == pytest.approx(20 / (20 + 1.959964**2), abs=1e-6) and interval.high == 1.0
    # 5 of 10: symmetric around one half, inside [0, 1], wider than nothing
    half = proportion_ci([1.0] * 5 + [0.0] * 5)
    assert half.estimate == 0.5 and half.low == pytest.approx(1 - half.high) and 0.18 < half.low < 0.24
    assert proportion_ci([]).estimate is None
    with pytest.raises(ValueError, match="0 or 1"):
        proportion_ci([0.5, 1.0])


def test_spread_gives_min_median_p95_and_max() -> None:
    values = [float(v) for v in range(1, 21)]
    assert spread(values) == {"min": 1.0, "p50": 10.5, "p95": pytest.approx(19.05), "max": 20.0}
    assert spread([]) == {"min": None, "p50": None, "p95": None, "max": None}
