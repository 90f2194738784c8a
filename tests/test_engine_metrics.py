"""sim.metrics: streaming histogram, time series, registry."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.metrics import Histogram, Metrics, TimeSeries

QUANTILES = (0.5, 0.95, 0.99)


def filled(values) -> Histogram:
    hist = Histogram()
    hist.extend(values.tolist() if isinstance(values, np.ndarray) else values)
    return hist


@pytest.fixture(scope="module")
def lognormal() -> np.ndarray:
    return np.random.default_rng(1).lognormal(math.log(0.02), 1.0, 100_000)


@pytest.fixture(scope="module")
def exponential() -> np.ndarray:
    return np.random.default_rng(2).exponential(0.005, 100_000)


@pytest.mark.parametrize("data", ["lognormal", "exponential"])
def test_quantiles_within_one_percent_of_exact(data, request):
    values = request.getfixturevalue(data)
    hist = filled(values)
    for q in QUANTILES:
        # the sketch's rank is floor(q * (n - 1)): numpy's "lower" method is the exact analogue
        exact = np.quantile(values, q, method="lower")
        estimate = hist.quantile(q)
        assert abs(estimate - exact) / exact <= 0.01, (q, estimate, exact)
        # and its own promise, 0.5 %, holds too
        assert abs(estimate - exact) / exact <= hist.accuracy + 1e-12
    assert hist.count == len(values)
    assert hist.mean == pytest.approx(values.mean(), rel=1e-9)
    assert hist.min == values.min() and hist.max == values.max()


def test_extreme_quantiles_are_min_and_max(lognormal):
    hist = filled(lognormal)
    assert hist.quantile(0.0) == pytest.approx(lognormal.min(), rel=0.005)
    assert hist.quantile(1.0) == pytest.approx(lognormal.max(), rel=0.005)
    assert lognormal.min() <= hist.quantile(0.0) and hist.quantile(1.0) <= lognormal.max()


def test_memory_stays_bounded_for_a_million_samples():
    values = np.random.default_rng(3).lognormal(math.log(0.02), 1.5, 1_000_000)
    hist = filled(values)
    assert hist.count == 1_000_000
    # one counter per occupied log bucket: the spread of the data, not the number of samples
    assert len(hist._buckets) < 3000
    assert abs(hist.quantile(0.99) / np.quantile(values, 0.99, method="lower") - 1) <= 0.01


def test_merge_equals_combined(lognormal, exponential):
    a, b = filled(lognormal), filled(exponential)
    a.merge(b)
    combined = filled(np.concatenate([lognormal, exponential]))
    assert a.count == combined.count
    assert a.total == pytest.approx(combined.total, rel=1e-12)
    assert (a.min, a.max) == (combined.min, combined.max)
    assert a._buckets == combined._buckets
    for q in (0.0, 0.1, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0):
        assert a.quantile(q) == combined.quantile(q)


def test_merge_with_empty_and_mismatched_accuracy():
    a = filled([1.0, 2.0, 3.0])
    a.merge(Histogram())
    assert a.count == 3 and a.min == 1.0 and a.max == 3.0
    with pytest.raises(ValueError):
        a.merge(Histogram(accuracy=0.01))


def test_zeros_and_empty():
    hist = Histogram()
    assert hist.quantile(0.5) is None and hist.mean is None
    assert hist.summary()["max"] is None
    hist.extend([0.0] * 60 + [1.0] * 40)
    assert hist.quantile(0.5) == 0.0
    assert hist.quantile(0.9) == pytest.approx(1.0, rel=0.005)
    with pytest.raises(ValueError):
        hist.quantile(1.5)
    with pytest.raises(ValueError):
        Histogram(accuracy=0.0)


def test_summary_fields():
    hist = filled(list(range(1, 101)))
    summary = hist.summary()
    assert summary["count"] == 100
    assert summary["mean"] == pytest.approx(50.5)
    assert summary["p50"] == pytest.approx(50, rel=0.005)
    assert summary["p95"] == pytest.approx(95, rel=0.005)
    assert summary["p99"] == pytest.approx(99, rel=0.005)
    assert summary["max"] == 100


def test_timeseries_buckets_and_zero_fill():
    ts = TimeSeries(60.0)
    ts.add(0.0)
    ts.add(59.999)
    ts.add(60.0)
    ts.add(185.0, 2.5)
    assert ts.series(240.0) == [2.0, 1.0, 0.0, 2.5]
    assert ts.series(150.0) == [2.0, 1.0, 0.0]  # partial last bucket included
    assert ts.series(0.0) == []
    with pytest.raises(ValueError):
        TimeSeries(0)


def test_metrics_registry():
    metrics = Metrics(interval=10.0)
    metrics.inc("requests")
    metrics.inc("requests", 4)
    assert metrics.counters == {"requests": 5}
    assert metrics.histogram("lat") is metrics.histogram("lat")
    series = metrics.timeseries("errors")
    assert series is metrics.timeseries("errors") and series.interval == 10.0
    series.add(15.0)
    assert metrics.series["errors"].series(20.0) == [0.0, 1.0]
