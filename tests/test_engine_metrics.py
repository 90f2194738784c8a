"""sim.metrics: streaming histogram, time series, registry."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.errors import ModelDefinitionError
from sim.metrics import Histogram, Metrics, MetricSpec, TimeSeries

QUANTILES = (0.5, 0.95, 0.99)
MANY_QUANTILES = (0.0, 0.01, 0.1, 0.25, 0.3, 0.5, 0.7, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0)


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
    assert a._negative_buckets == combined._negative_buckets == {}
    for q in (0.0, 0.1, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0):
        assert a.quantile(q) == combined.quantile(q)


def test_merge_with_empty_and_mismatched_accuracy():
    a = filled([1.0, 2.0, 3.0])
    a.merge(Histogram())
    assert a.count == 3 and a.min == 1.0 and a.max == 3.0
    with pytest.raises(ValueError, match="different accuracy"):
        a.merge(Histogram(accuracy=0.01))


def test_zeros_and_empty():
    hist = Histogram()
    assert hist.quantile(0.5) is None and hist.mean is None
    assert hist.summary()["max"] is None
    hist.extend([0.0] * 60 + [1.0] * 40)
    assert hist.quantile(0.5) == 0.0
    assert hist.quantile(0.9) == pytest.approx(1.0, rel=0.005)
    with pytest.raises(ValueError, match="q must be in"):
        hist.quantile(1.5)
    with pytest.raises(ValueError, match="accuracy must be in"):
        Histogram(accuracy=0.0)


# -- values of either sign ---------------------------------------------------------------


def exact_quantile(values, q: float) -> float:
    """The order statistic the sketch estimates: rank floor(q * (n - 1)), 0-based, ascending."""
    return sorted(values)[math.floor(q * (len(values) - 1))]


def within_accuracy(estimate: float | None, exact: float, accuracy: float) -> bool:
    # rounding in log/exp may add a few ulps to the bound (gamma - 1) / (gamma + 1) = accuracy
    return estimate is not None and abs(estimate - exact) <= (accuracy + 1e-12) * abs(exact)


def fingerprint(hist: Histogram) -> tuple:
    """Everything observable about a sketch, with floats as hex so that -0.0, NaN and ulps count."""

    def bits(x: float | None) -> str | None:
        return None if x is None else float(x).hex()

    return (
        hist.count,
        bits(hist.total),
        bits(hist.min),
        bits(hist.max),
        hist._zero,
        hist._buckets,
        hist._negative_buckets,
        tuple(bits(hist.quantile(q)) for q in MANY_QUANTILES),
    )


def test_median_of_mixed_signs_is_zero():
    values = [-5, -1, 0, 0, 1, 2, 3]
    at_once = Histogram()
    at_once.add_many(np.array(values, dtype=float))
    for hist in (filled(values), at_once):
        assert hist.quantile(0.5) == 0.0  # it was -5, the minimum, when all of -5, -1, 0 shared one bucket
        # rank floor(q * 6) for q = i / 6: every order statistic, negatives included (0 exactly for 0)
        for i, exact in enumerate(sorted(values)):
            assert within_accuracy(hist.quantile(i / 6), exact, hist.accuracy), (i, hist.quantile(i / 6))
        assert hist.count == 7 and hist.total == 0.0 and hist.mean == 0.0
        assert (hist.min, hist.max) == (-5, 3)
        assert hist._zero == 2 and sum(hist._negative_buckets.values()) == 2 and sum(hist._buckets.values()) == 3


@pytest.fixture(scope="module")
def normal_negative() -> np.ndarray:
    return np.random.default_rng(4).normal(-10.0, 1.0, 100_000)


def test_negative_normal_quantiles(normal_negative):
    one_by_one = filled(normal_negative)
    at_once = Histogram()
    at_once.add_many(normal_negative)
    for hist in (one_by_one, at_once):
        median = hist.quantile(0.5)
        # it was about -14.5: the sample minimum
        assert abs(median - np.median(normal_negative)) <= 0.005 * abs(np.median(normal_negative))
        for q in MANY_QUANTILES:
            exact = np.quantile(normal_negative, q, method="lower")
            assert within_accuracy(hist.quantile(q), exact, hist.accuracy), (q, hist.quantile(q), exact)
        assert normal_negative.min() <= hist.quantile(0.0) and hist.quantile(1.0) <= normal_negative.max()
        assert hist.mean == pytest.approx(normal_negative.mean(), rel=1e-9)
        assert hist._buckets == {} and hist._zero == 0
    assert fingerprint(one_by_one) == fingerprint(at_once)


def test_negative_quantiles_mirror_positive_ones(lognormal):
    positive, negative = Histogram(), Histogram()
    positive.add_many(lognormal)
    negative.add_many(-lognormal)
    assert negative._negative_buckets == positive._buckets
    for q in MANY_QUANTILES:
        assert negative.quantile(q) == -positive.quantile(1 - q)


def test_extreme_magnitudes():
    huge = 1.7976931348623157e308  # the largest float: its bucket's upper bound overflows
    smallest_normal = 2.2250738585072014e-308
    values = [huge, -huge, 1e300, -1e300, 1e-300, -1e-300, 3e-308, -3e-308, 5e-324, -5e-324, smallest_normal, -0.0, 0.0]
    hist = filled(values)
    at_once = Histogram()
    at_once.add_many(np.array(values))
    assert fingerprint(hist) == fingerprint(at_once)
    assert hist.total == math.fsum(values)  # huge + -huge: no infinity on the way
    # magnitudes at most smallest_normal * gamma are in the zero bucket, everything else is indexed
    assert hist._zero == 5
    n = len(values)
    for i, exact in enumerate(sorted(values)):
        estimate = hist.quantile(i / (n - 1))
        if abs(exact) > smallest_normal * (1.005 / 0.995):  # times gamma: the smallest indexable magnitude
            assert within_accuracy(estimate, exact, hist.accuracy), (exact, estimate)
        else:
            assert estimate == 0.0
    assert -huge <= hist.quantile(0.0) < -1.79e308 and 1.79e308 < hist.quantile(1.0) <= huge
    # only tiny magnitudes: zero clamped to the range, i.e. the values themselves
    tiny = filled([1e-310, 5e-324])
    assert tiny.quantile(0.0) == tiny.quantile(1.0) == 5e-324
    tiny_negative = filled([-5e-324])
    assert tiny_negative.quantile(0.5) == -5e-324


@pytest.mark.parametrize("bad", [math.inf, -math.inf])
def test_infinities_are_refused_and_not_recorded(bad):
    hist = filled([1.0, -2.0])
    before = fingerprint(hist)
    with pytest.raises(ValueError, match="infinite"):
        hist.add(bad)
    with pytest.raises(ValueError, match="infinite"):
        hist.add_many(np.array([3.0, bad, -4.0]))
    assert fingerprint(hist) == before


def test_nan_is_counted_as_before():
    # unchanged behaviour, made explicit: counted, ranked with the zeros, ignored by min and max
    values = [float("nan"), -3.0, 2.0, float("nan")]
    hist = filled(values)
    at_once = Histogram()
    at_once.add_many(np.array(values))
    assert fingerprint(hist) == fingerprint(at_once)
    assert hist.count == 4 and math.isnan(hist.total) and math.isnan(hist.mean)
    assert (hist.min, hist.max) == (-3.0, 2.0) and hist._zero == 2
    assert hist.quantile(0.5) == 0.0 and hist.quantile(1 / 3) == 0.0  # the two NaNs are ranks 1 and 2
    assert hist.quantile(0.0) == pytest.approx(-3.0, rel=0.005) and hist.quantile(1.0) == pytest.approx(2.0, rel=0.005)
    only_nan = filled([float("nan")])
    assert only_nan.quantile(0.5) == 0.0 and only_nan.summary()["max"] == -math.inf


MAGNITUDES = st.floats(min_value=1e-6, max_value=1e9, allow_nan=False, allow_infinity=False)
SIGNED = st.one_of(
    st.sampled_from([0.0, -0.0]),
    MAGNITUDES,
    MAGNITUDES.map(lambda x: -x),
    st.integers(min_value=-30, max_value=30).map(float),  # ties across buckets and signs
)


@settings(max_examples=300, deadline=None)
@given(values=st.lists(SIGNED, min_size=1, max_size=300), add_one_by_one=st.booleans())
def test_quantiles_of_mixed_signs_within_accuracy(values, add_one_by_one):
    hist = Histogram()
    if add_one_by_one:
        hist.extend(values)
    else:
        hist.add_many(np.array(values))
    for q in MANY_QUANTILES:
        exact = exact_quantile(values, q)
        estimate = hist.quantile(q)
        if exact == 0:
            assert estimate == 0
        else:
            assert within_accuracy(estimate, exact, hist.accuracy), (q, estimate, exact)
        assert hist.min <= estimate <= hist.max
    assert hist.count == len(values) and (hist.min, hist.max) == (min(values), max(values))


GAMMA_LOG = math.log((1 + 0.005) / (1 - 0.005))
# values on (or one ulp beside) a bucket boundary gamma^k: where numpy's log may round
# to the other side and add_many must recompute the key with math.log
EDGES = st.builds(
    lambda k, ulps, sign: (
        sign * float(np.nextafter(math.exp(k * GAMMA_LOG), math.inf if ulps > 0 else 0.0))
        if ulps
        else sign * math.exp(k * GAMMA_LOG)
    ),
    st.integers(min_value=-70_000, max_value=70_000),
    st.integers(min_value=-1, max_value=1),
    st.sampled_from([-1.0, 1.0]),
)
ANY_FINITE = st.floats(allow_nan=False, allow_infinity=False)  # subnormals, -0.0 and 1e308 included


@settings(max_examples=300, deadline=None)
@given(
    chunks=st.lists(st.lists(st.one_of(SIGNED, EDGES, ANY_FINITE), max_size=80), min_size=1, max_size=4),
)
def test_add_many_is_bit_identical_to_add(chunks):
    one_by_one, at_once = Histogram(), Histogram()
    for chunk in chunks:
        one_by_one.extend(chunk)
        at_once.add_many(np.array(chunk, dtype=float))
    assert fingerprint(at_once) == fingerprint(one_by_one)


@settings(max_examples=200, deadline=None)
@given(first=st.lists(SIGNED, max_size=150), second=st.lists(SIGNED, max_size=150), dense=st.booleans())
def test_merge_equals_one_sketch_of_both(first, second, dense):
    def sketch(values):
        hist = Histogram()
        if dense:
            hist.add_many(np.array(values, dtype=float))
        else:
            hist.extend(values)
        return hist

    merged = sketch(first)
    merged.merge(sketch(second))
    combined = sketch(first + second)
    assert merged.count == combined.count
    assert merged.total == pytest.approx(combined.total, rel=1e-9, abs=1e-6)
    assert (merged.min, merged.max) == (combined.min, combined.max)
    assert merged._zero == combined._zero
    assert merged._buckets == combined._buckets
    assert merged._negative_buckets == combined._negative_buckets
    for q in MANY_QUANTILES:
        assert merged.quantile(q) == combined.quantile(q)


def test_merge_with_negatives(normal_negative, lognormal):
    a, b = Histogram(), filled(lognormal[:1000])
    a.add_many(normal_negative)
    b.extend([0.0, -0.0, -1e-9])
    a.merge(b)
    values = np.concatenate([normal_negative, lognormal[:1000], [0.0, -0.0, -1e-9]])
    combined = filled(values)
    assert fingerprint(a)[4:] == fingerprint(combined)[4:]  # buckets and quantiles (totals summed apart)
    assert a.count == combined.count and (a.min, a.max) == (combined.min, combined.max)
    for q in MANY_QUANTILES:
        assert within_accuracy(a.quantile(q), np.quantile(values, q, method="lower"), a.accuracy)


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
    with pytest.raises(ValueError, match="interval must be > 0"):
        TimeSeries(0)


def test_metrics_registry():
    metrics = Metrics(interval=10.0)
    metrics.declare(
        MetricSpec("requests", "counter"), ("lat", "histogram", "s", "latency"), MetricSpec("errors", "sum", "requests")
    )
    metrics.inc("requests")
    metrics.inc("requests", 4)
    assert metrics.counters == {"requests": 5}
    assert metrics.histogram("lat") is metrics.histogram("lat")
    series = metrics.timeseries("errors")
    assert series is metrics.timeseries("errors") and series.interval == 10.0
    series.add(15.0)
    assert metrics.series["errors"].series(20.0) == [0.0, 1.0]


def test_undeclared_or_mistyped_metric_is_a_model_error():
    metrics = Metrics()
    metrics.declare(MetricSpec("stream.iterator_age_s", "histogram", "s"), MetricSpec("dashboard.errors", "sum"))
    with pytest.raises(ModelDefinitionError, match=r"did you mean 'stream\.iterator_age_s'"):
        metrics.histogram("stream.iterator_age")
    with pytest.raises(ModelDefinitionError, match="declared as a histogram"):
        metrics.timeseries("stream.iterator_age_s")
    with pytest.raises(ModelDefinitionError, match="never declared"):
        metrics.inc("requests")
    with pytest.raises(ModelDefinitionError, match="declared twice"):
        metrics.declare(MetricSpec("dashboard.errors", "max"))
    with pytest.raises(ModelDefinitionError, match="unknown kind"):
        metrics.declare(("x", "gauge", "", ""))
    assert metrics.counters == {} and list(metrics.series) == ["dashboard.errors"]


def test_a_misspelt_metric_fails_the_twin_build(monkeypatch):
    """The model declares its catalogue and fetches its metrics at build time."""
    import models.postgres
    from models.twin import build
    from tests.conftest import scenario

    monkeypatch.setattr(models.postgres, "READING_END_TO_END", "readings.end_to_ends")
    with pytest.raises(ModelDefinitionError, match=r"readings\.end_to_ends"):
        build(scenario("baseline"), seed=1)
