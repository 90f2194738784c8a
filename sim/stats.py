"""Confidence intervals and warm-up truncation for replicated runs: pure numbers, no simulation.

A single run of a stochastic twin is one draw; what a reader needs is how far the figure
could move on another seed.  These functions turn per-replication values into intervals:

* :func:`mean_ci`: Student-t interval of a mean.  Counts, means and rates averaged over
  independent replications are close to normal even for a handful of runs, which is what
  the t-interval assumes.
* :func:`bootstrap_ci`: a bootstrap interval (``scipy.stats.bootstrap``, BCa) for figures
  whose per-replication distribution is skewed -- tail percentiles and maxima -- where the
  t-interval's symmetry would mislead.  Seeded, so the same values give the same interval.
* :func:`paired_difference_ci`: t-interval of the per-replication differences of two
  variants run on the same seeds (common random numbers).  Pairing removes the variance the
  variants share, so a real difference shows with far fewer runs than two independent
  samples would need.
* :func:`mser5`: MSER-5 warm-up truncation of a time series, for figures meant as steady
  state, so the empty-system start does not bias them.

Every function takes plain sequences of floats and returns frozen values; nothing here reads
a clock or global random state.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "BOOTSTRAP_RESAMPLES",
    "MSER_BATCH",
    "Interval",
    "Warmup",
    "bootstrap_ci",
    "mean_ci",
    "mser5",
    "paired_difference_ci",
    "proportion_ci",
    "spread",
]

BOOTSTRAP_RESAMPLES = 9999
"""Bootstrap resamples (scipy's default): enough that the interval's own Monte Carlo noise is
small next to its width."""
MSER_BATCH = 5
"""MSER-5 averages the series in batches of five before looking for the truncation point."""


@dataclass(frozen=True)
class Interval:
    """An estimate with its confidence interval.

    ``low`` and ``high`` are None when there is no interval to give (fewer than two values);
    ``estimate`` is None when there are no values at all.  ``method`` says how it was made:
    ``t`` (Student t on the values), ``bootstrap`` (BCa bootstrap of the mean),
    ``paired-t`` (Student t on paired differences), ``wilson`` (Wilson score interval of a
    proportion).
    """

    estimate: float | None
    low: float | None
    high: float | None
    n: int
    method: str
    confidence: float

    @property
    def width(self) -> float | None:
        """``high - low``, or None without an interval."""
        return None if self.low is None or self.high is None else self.high - self.low

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies in the closed interval (False without one)."""
        return self.low is not None and self.high is not None and self.low <= value <= self.high

    def as_dict(self) -> dict[str, Any]:
        """Plain data for result files: ``mean``, ``ci_low``, ``ci_high``, ``n``, ``method``."""
        return {"mean": self.estimate, "ci_low": self.low, "ci_high": self.high, "n": self.n, "method": self.method}


class Warmup(NamedTuple):
    """Where MSER-5 truncates a series, and the mean of what is kept.

    ``truncation`` is an index into the original series: observations ``[truncation:]`` are
    kept.  ``kept`` is how many that is.
    """

    truncation: int
    mean: float
    kept: int


def _checked(values: Sequence[float], what: str) -> np.ndarray[Any, np.dtype[np.float64]]:
    data = np.asarray(values, dtype=np.float64)
    if data.ndim != 1:
        raise ValueError(f"{what}: expected a flat sequence of numbers")
    if not np.all(np.isfinite(data)):
        raise ValueError(f"{what}: every value must be finite")
    return data


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1, exclusive (got {confidence})")


def _degenerate(data: np.ndarray[Any, np.dtype[np.float64]], method: str, confidence: float) -> Interval | None:
    """The interval for data that leaves nothing to estimate: none, one value, or all equal.

    Equal values are handled here rather than by the formula so that the interval is exactly
    the value, not the value give or take a rounding error of the mean.
    """
    n = len(data)
    if n == 0:
        return Interval(None, None, None, 0, method, confidence)
    first = float(data[0])
    if n == 1:
        return Interval(first, None, None, 1, method, confidence)
    if bool(np.all(data == data[0])):
        return Interval(first, first, first, n, method, confidence)
    return None


def _t_interval(data: np.ndarray[Any, np.dtype[np.float64]], method: str, confidence: float) -> Interval:
    degenerate = _degenerate(data, method, confidence)
    if degenerate is not None:
        return degenerate
    n = len(data)
    mean = float(np.mean(data))
    standard_error = float(np.std(data, ddof=1)) / math.sqrt(n)
    from scipy import stats as scipy_stats  # here, not at the top: importing it takes most of a second

    half = float(scipy_stats.t.ppf(0.5 + confidence / 2.0, n - 1)) * standard_error
    return Interval(mean, mean - half, mean + half, n, method, confidence)


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """The mean of ``values`` and its Student-t confidence interval.

    One value gives the mean with no interval (None bounds); equal values give a zero-width
    interval at that value.
    """
    _check_confidence(confidence)
    return _t_interval(_checked(values, "mean_ci"), "t", confidence)


def proportion_ci(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """The share of ``values`` that are 1 (each must be 0 or 1), with its Wilson score interval.

    Why not the t interval: a claim that held on 20 of 20 seeds has a t interval of zero width,
    as if certain; Wilson's interval (E. B. Wilson, 1927) stays inside [0, 1], keeps its
    coverage near 0 and 1, and for 20 of 20 at 95 % says "at least 0.84".
    """
    _check_confidence(confidence)
    data = _checked(values, "proportion_ci")
    if not bool(np.all((data == 0.0) | (data == 1.0))):
        raise ValueError("proportion_ci: every value must be 0 or 1")
    n = len(data)
    if n == 0:
        return Interval(None, None, None, 0, "wilson", confidence)
    from scipy import stats as scipy_stats  # here, not at the top: importing it takes most of a second

    share = float(np.mean(data))
    z = float(scipy_stats.norm.ppf(0.5 + confidence / 2.0))
    denominator = 1.0 + z * z / n
    centre = (share + z * z / (2 * n)) / denominator
    half = z * math.sqrt(share * (1.0 - share) / n + z * z / (4 * n * n)) / denominator
    return Interval(share, max(0.0, centre - half), min(1.0, centre + half), n, "wilson", confidence)


def spread(values: Sequence[float]) -> dict[str, float | None]:
    """How ``values`` are spread over replications: ``min``, ``p50``, ``p95`` and ``max``.

    Percentiles are numpy's default (linear between order statistics); None without values.
    """
    data = _checked(values, "spread")
    if not len(data):
        return dict.fromkeys(("min", "p50", "p95", "max"))
    return {
        "min": float(np.min(data)),
        "p50": float(np.percentile(data, 50)),
        "p95": float(np.percentile(data, 95)),
        "max": float(np.max(data)),
    }


def bootstrap_ci(
    values: Sequence[float],
    statistic: Callable[..., Any] = np.mean,
    confidence: float = 0.95,
    seed: int = 0,
    resamples: int = BOOTSTRAP_RESAMPLES,
) -> Interval:
    """``statistic`` of ``values`` with a BCa bootstrap confidence interval.

    ``statistic`` must accept an ``axis`` keyword (as ``np.mean`` and ``np.median`` do), so
    scipy evaluates all resamples at once.  The resampling draws from a numpy Generator
    seeded with ``seed``: the same values and seed give the same interval.  Where BCa cannot
    be computed (a sample too small or too lumpy for its acceleration estimate) the plain
    percentile interval is used instead; both are bootstrap intervals.
    """
    _check_confidence(confidence)
    data = _checked(values, "bootstrap_ci")
    degenerate = _degenerate(data, "bootstrap", confidence)
    if degenerate is not None:
        return degenerate
    estimate = float(statistic(data, axis=0))
    from scipy import stats as scipy_stats  # here, not at the top: importing it takes most of a second

    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # BCa warns on lumpy samples; the NaN check below decides
            result = scipy_stats.bootstrap(
                (data,),
                statistic,
                n_resamples=resamples,
                vectorized=True,
                confidence_level=confidence,
                method=method,
                rng=np.random.default_rng(seed),
            )
        low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
        if math.isfinite(low) and math.isfinite(high):
            return Interval(estimate, low, high, len(data), "bootstrap", confidence)
    return Interval(estimate, None, None, len(data), "bootstrap", confidence)


def paired_difference_ci(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> Interval:
    """Mean of ``a[i] - b[i]`` with the Student-t interval of those differences.

    ``a`` and ``b`` are the same figure from two variants, replication by replication, run
    on the same seeds: the differences are what the variant changed on the same draws.
    Identical samples give exactly ``[0, 0]``.
    """
    _check_confidence(confidence)
    left, right = _checked(a, "paired_difference_ci"), _checked(b, "paired_difference_ci")
    if len(left) != len(right):
        raise ValueError(f"paired_difference_ci: samples of different lengths ({len(left)} and {len(right)})")
    return _t_interval(left - right, "paired-t", confidence)


def mser5(series: Sequence[float]) -> Warmup:
    """MSER-5 warm-up truncation: where a run's initial transient ends, and the mean after it.

    The series is averaged in consecutive batches of five (a trailing partial batch is left
    out of the search).  For each candidate truncation ``d`` batches, from none up to half of
    the batches, MSER is the variance of the kept batch means divided by the number kept:
    the squared standard error of their mean.  Cutting off a transient lowers it (the kept
    values sit closer together); cutting off steady state raises it (fewer values).  The
    smallest ``d`` with the least MSER wins.  A series too short for two batches is not
    truncated.

    Returns the truncation as an index into ``series`` (``5 * d``) and the mean of every
    observation from there on (the partial batch included).
    """
    data = _checked(series, "mser5")
    if len(data) == 0:
        raise ValueError("mser5: the series is empty")
    batches = len(data) // MSER_BATCH
    best = 0
    if batches >= 2:
        means = data[: batches * MSER_BATCH].reshape(batches, MSER_BATCH).mean(axis=1)
        scores = []
        for d in range(batches // 2 + 1):
            kept = means[d:]
            scores.append(float(np.sum((kept - kept.mean()) ** 2)) / len(kept) ** 2)
        best = int(np.argmin(scores))
    truncation = best * MSER_BATCH
    kept_values = data[truncation:]
    return Warmup(truncation, float(np.mean(kept_values)), len(kept_values))
