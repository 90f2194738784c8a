"""sim.distributions: specs, shorthand, validation and samplers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError

from sim.distributions import (
    BLOCK,
    Constant,
    Distribution,
    Empirical,
    Exponential,
    LogNormal,
    Normal,
    Uniform,
    constant,
)

ADAPTER = TypeAdapter(Distribution)
N = 200_000


def rng(seed: int = 1) -> np.random.Generator:
    return np.random.default_rng(seed)


def parse(spec):
    return ADAPTER.validate_python(spec)


@pytest.mark.parametrize(
    "spec",
    [
        {"kind": "constant", "value": "5ms"},
        {"kind": "exponential", "mean": "2ms"},
        {"kind": "lognormal", "median": "20ms", "sigma": 0.5},
        {"kind": "lognormal", "median": 1.0, "sigma": 1.0},
        {"kind": "normal", "mean": "10ms", "sd": "3ms"},
        {"kind": "normal", "mean": "1ms", "sd": "5ms"},  # heavily truncated at 0
        {"kind": "uniform", "low": "1ms", "high": "3ms"},
        {"kind": "empirical", "values": [0.001, 0.002, 0.010]},
        {"kind": "empirical", "values": [1, 2, 5], "weights": [1, 1, 8]},
    ],
    ids=lambda s: s["kind"] + "-" + "-".join(str(v) for k, v in s.items() if k != "kind"),
)
def test_sample_mean_matches_mean(spec):
    dist = parse(spec)
    samples = dist.sampler(rng()).many(N)
    assert samples.shape == (N,)
    sd = samples.std()
    tolerance = 5 * sd / math.sqrt(N) + 1e-12
    assert abs(samples.mean() - dist.mean()) <= tolerance, (samples.mean(), dist.mean())
    # the scalar path (block-buffered __call__) agrees too
    sampler = dist.sampler(rng(2))
    assert sampler.mean == pytest.approx(dist.mean(), rel=1e-12)
    scalars = np.array([sampler() for _ in range(3 * BLOCK + 7)])
    assert abs(scalars.mean() - dist.mean()) <= 5 * sd / math.sqrt(len(scalars)) + 1e-12


def test_means_of_known_parameterisations():
    assert parse({"kind": "exponential", "mean": "2ms"}).mean() == pytest.approx(0.002)
    assert parse({"kind": "lognormal", "median": 1.0, "sigma": 1.0}).mean() == pytest.approx(math.exp(0.5))
    assert parse({"kind": "uniform", "low": 1, "high": 3}).mean() == pytest.approx(2.0)
    # a normal truncated far from its mean keeps the mean
    assert parse({"kind": "normal", "mean": 10, "sd": 0.1}).mean() == pytest.approx(10.0)
    # a normal truncated at 0 close to its mean has a larger mean than before truncation
    assert parse({"kind": "normal", "mean": 0.001, "sd": 0.005}).mean() > 0.001


def test_lognormal_median_is_median():
    samples = parse({"kind": "lognormal", "median": "20ms", "sigma": 0.8}).sampler(rng()).many(N)
    assert np.median(samples) == pytest.approx(0.020, rel=0.01)


def test_truncated_normal_never_below_low_nor_above_high():
    samples = parse({"kind": "normal", "mean": "1ms", "sd": "5ms"}).sampler(rng()).many(N)
    assert samples.min() >= 0.0
    bounded = Normal(mean=2.5, sd=10.0, low=2.0, high=3.0).sampler(rng()).many(N)
    assert bounded.min() >= 2.0 and bounded.max() <= 3.0


def test_normal_bounds_accept_durations_like_every_other_field():
    dist = parse({"kind": "normal", "mean": "10ms", "sd": "5ms", "low": "5ms", "high": "20ms"})
    samples = dist.sampler(rng()).many(10_000)
    assert samples.min() >= 0.005 and samples.max() <= 0.020


def test_uniform_stays_in_range():
    samples = parse({"kind": "uniform", "low": "1ms", "high": "3ms"}).sampler(rng()).many(N)
    assert samples.min() >= 0.001 and samples.max() < 0.003


def test_empirical_only_returns_given_values_and_respects_zero_weight():
    dist = parse({"kind": "empirical", "values": ["1ms", "2ms", "7ms"], "weights": [0, 1, 3]})
    samples = dist.sampler(rng()).many(50_000)
    assert set(np.unique(samples).tolist()) == {0.002, 0.007}
    assert dist.mean() == pytest.approx((0.002 * 1 + 0.007 * 3) / 4)
    unweighted = parse({"kind": "empirical", "values": [3, 1, 2]}).sampler(rng()).many(10_000)
    assert set(np.unique(unweighted).tolist()) == {1.0, 2.0, 3.0}


def test_constant_is_constant():
    sampler = parse("250ms").sampler(rng())
    assert {sampler() for _ in range(10)} == {0.25}
    assert np.all(sampler.many(100) == 0.25)


@pytest.mark.parametrize(("value", "seconds"), [(0.2, 0.2), (5, 5.0), ("5ms", 0.005), ("1m30s", 90.0), (0, 0.0)])
def test_bare_value_shorthand_is_a_constant(value, seconds):
    dist = parse(value)
    assert isinstance(dist, Constant)
    assert dist.value == pytest.approx(seconds)
    assert dist.mean() == pytest.approx(seconds)


def test_kinds_parse_to_their_classes():
    assert isinstance(parse({"kind": "exponential", "mean": 1}), Exponential)
    assert isinstance(parse({"kind": "lognormal", "median": 1, "sigma": 0}), LogNormal)
    assert isinstance(parse({"kind": "normal", "mean": 1, "sd": 1}), Normal)
    assert isinstance(parse({"kind": "uniform", "low": 0, "high": 1}), Uniform)
    assert isinstance(parse({"kind": "empirical", "values": [1]}), Empirical)
    assert constant("5ms") == Constant(value=0.005)


@pytest.mark.parametrize(
    "spec",
    [
        {"kind": "gamma", "shape": 2},  # unknown kind
        {"value": 1},  # no kind
        {"kind": "uniform", "low": 2, "high": 2},  # high <= low
        {"kind": "uniform", "low": 3, "high": 2},
        {"kind": "normal", "mean": 1, "sd": 1, "low": 2, "high": 1},
        {"kind": "exponential", "mean": 0},  # mean must be > 0
        {"kind": "exponential", "mean": "0s"},
        {"kind": "lognormal", "median": 0, "sigma": 1},  # median must be > 0
        {"kind": "lognormal", "median": 1, "sigma": 6},  # sigma <= 5
        {"kind": "lognormal", "median": 1, "sigma": -1},
        {"kind": "normal", "mean": 1, "sd": 0},  # sd must be > 0
        {"kind": "constant", "value": -1},  # negative duration
        {"kind": "constant", "value": "90"},  # a string without unit is ambiguous
        {"kind": "constant", "value": 1, "extra": 2},  # extra fields forbidden
        {"kind": "empirical", "values": []},
        {"kind": "empirical", "values": [1, 2], "weights": [1]},
        {"kind": "empirical", "values": [1, 2], "weights": [0, 0]},
        {"kind": "empirical", "values": [1, 2], "weights": [-1, 2]},
        -0.5,
        True,
    ],
)
def test_invalid_specs_raise_validation_error(spec):
    with pytest.raises(ValidationError):
        parse(spec)


def test_same_rng_seed_same_sequence():
    spec = parse({"kind": "lognormal", "median": "20ms", "sigma": 0.5})
    a, b = spec.sampler(rng(9)), spec.sampler(rng(9))
    assert [a() for _ in range(BLOCK + 10)] == [b() for _ in range(BLOCK + 10)]
