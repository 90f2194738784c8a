"""Configurable distributions for every latency and service time.

A scenario writes a distribution either as a bare duration (``5ms``, ``0.2``: a constant)
or as a mapping with a ``kind``::

    latency: {kind: lognormal, median: 20ms, sigma: 0.5}
    service_time: {kind: exponential, mean: 2ms}

Each spec builds a :class:`Sampler` bound to one named random stream.  Samplers draw in
blocks of :data:`BLOCK` values because one numpy call per sample costs about a
microsecond, which on the reading path would dominate the simulation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BeforeValidator, Field, model_validator

from sim.durations import DURATION_PATTERN, Duration, Offset, parse_duration
from sim.spec import Spec, probabilities

__all__ = [
    "BLOCK",
    "Constant",
    "Distribution",
    "Empirical",
    "Exponential",
    "LogNormal",
    "Normal",
    "Sampler",
    "Uniform",
    "constant",
    "draws",
    "lognormal",
]

BLOCK = 4096


class Sampler:
    """Draws from a distribution in blocks; ``sampler()`` returns the next value.

    ``fixed`` is the value of a constant distribution (None otherwise): a caller summing
    many samplers may add it once instead of calling (a constant draws no random numbers,
    so skipping its calls shifts no stream).
    """

    __slots__ = ("_buffer", "_draw", "_index", "fixed", "mean")

    def __init__(self, draw: Any, mean: float, *, fixed: float | None = None) -> None:
        self._draw = draw
        self._buffer: list[float] = []
        self._index = 0
        self.mean = mean
        self.fixed = fixed

    def __call__(self) -> float:
        index = self._index
        if index >= len(self._buffer):
            self._buffer = self._draw(BLOCK).tolist()
            index = 0
        self._index = index + 1
        return self._buffer[index]

    def many(self, n: int) -> np.ndarray:
        """``n`` values at once, as an array (for vectorised fleet paths)."""
        return np.asarray(self._draw(n), dtype=float)


def draws(draw: Callable[[int], np.ndarray], block: int = BLOCK) -> Iterator[Any]:
    """The values of ``draw(block)``, then of the next block, ... one at a time.

    Drawing a block of numbers costs about what drawing one does, so a population that
    needs one random number per arrival takes them from here rather than one call each.
    The values come in the order the blocks were drawn, so the stream stays deterministic.
    """
    while True:
        yield from draw(block).tolist()


class _Spec(Spec):
    def sampler(self, rng: np.random.Generator) -> Sampler:
        """A sampler drawing from ``rng``."""
        raise NotImplementedError

    def mean(self) -> float:
        """The distribution's mean, used for capacity estimates and reports."""
        raise NotImplementedError


class Constant(_Spec):
    """Always the same value."""

    kind: Literal["constant"] = "constant"
    value: Offset = Field(description="the value, in seconds or as a duration like 5ms")

    def sampler(self, rng: np.random.Generator) -> Sampler:
        value = float(self.value)
        return Sampler(lambda n: np.full(n, value), value, fixed=value)

    def mean(self) -> float:
        return float(self.value)


class Exponential(_Spec):
    """Memoryless waits: Poisson arrivals, M/M/c service."""

    kind: Literal["exponential"] = "exponential"
    mean_: Duration = Field(alias="mean", description="mean value")

    def sampler(self, rng: np.random.Generator) -> Sampler:
        scale = float(self.mean_)
        return Sampler(lambda n: rng.exponential(scale, n), scale)

    def mean(self) -> float:
        return float(self.mean_)


class LogNormal(_Spec):
    """Heavy-ish right tail, the usual shape of network and query latencies."""

    kind: Literal["lognormal"] = "lognormal"
    median: Duration = Field(description="median value (exp of mu)")
    sigma: float = Field(ge=0, le=5, description="standard deviation of the log")

    def sampler(self, rng: np.random.Generator) -> Sampler:
        mu = math.log(float(self.median))
        return Sampler(lambda n: rng.lognormal(mu, self.sigma, n), self.mean())

    def mean(self) -> float:
        return float(self.median) * math.exp(self.sigma**2 / 2)


class Normal(_Spec):
    """A normal distribution truncated to ``[low, high]`` (latencies cannot be negative)."""

    kind: Literal["normal"] = "normal"
    mean_: Offset = Field(alias="mean", description="mean before truncation")
    sd: Duration = Field(description="standard deviation before truncation")
    low: Offset = Field(default=0.0, description="lower truncation bound")
    high: Offset | None = Field(default=None, description="upper truncation bound (default: none)")

    @model_validator(mode="after")
    def _bounds(self) -> Normal:
        if self.high is not None and not self.high > self.low:
            raise ValueError(f"high must be greater than low (got low={self.low}, high={self.high})")
        return self

    def _frozen(self) -> Any:
        from scipy import stats  # imported on use: it costs a second at every CLI start

        a = (self.low - self.mean_) / self.sd
        b = math.inf if self.high is None else (self.high - self.mean_) / self.sd
        return stats.truncnorm(a, b, loc=self.mean_, scale=self.sd)

    def sampler(self, rng: np.random.Generator) -> Sampler:
        frozen = self._frozen()
        return Sampler(lambda n: frozen.rvs(size=n, random_state=rng), float(frozen.mean()))

    def mean(self) -> float:
        return float(self._frozen().mean())


class Uniform(_Spec):
    """Equally likely anywhere in ``[low, high)``."""

    kind: Literal["uniform"] = "uniform"
    low: Offset
    high: Offset

    @model_validator(mode="after")
    def _bounds(self) -> Uniform:
        if not self.high > self.low:
            raise ValueError(f"high must be greater than low (got low={self.low}, high={self.high})")
        return self

    def sampler(self, rng: np.random.Generator) -> Sampler:
        return Sampler(lambda n: rng.uniform(self.low, self.high, n), self.mean())

    def mean(self) -> float:
        return (self.low + self.high) / 2


class Empirical(_Spec):
    """Resamples measured values (for example latencies exported from production)."""

    kind: Literal["empirical"] = "empirical"
    values: list[Offset] = Field(min_length=1, max_length=100_000, description="observed values, in seconds")
    weights: list[float] | None = Field(default=None, description="relative weights, one per value")

    @model_validator(mode="after")
    def _weights(self) -> Empirical:
        if self.weights is not None:
            if len(self.weights) != len(self.values):
                raise ValueError(f"weights must have one entry per value ({len(self.values)}), got {len(self.weights)}")
            probabilities(self.weights)
        return self

    def _probabilities(self) -> np.ndarray | None:
        if self.weights is None:
            return None
        return np.asarray(probabilities(self.weights), dtype=float)

    def sampler(self, rng: np.random.Generator) -> Sampler:
        values = np.asarray(self.values, dtype=float)
        p = self._probabilities()
        return Sampler(lambda n: rng.choice(values, size=n, p=p), self.mean())

    def mean(self) -> float:
        values = np.asarray(self.values, dtype=float)
        p = self._probabilities()
        return float(values.mean() if p is None else (values * p).sum())


def _shorthand(value: Any) -> Any:
    """A bare number or duration string means a constant distribution."""
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        return {"kind": "constant", "value": value}
    return value


class _ShorthandInSchema:
    """Makes the JSON Schema admit the shorthand too: a number or duration string."""

    def __get_pydantic_json_schema__(self, schema: Any, handler: Any) -> dict[str, Any]:
        spec = handler(schema)
        shorthand = [{"type": "number", "minimum": 0}, {"type": "string", "pattern": DURATION_PATTERN}]
        return {"anyOf": [*shorthand, spec]}


Distribution = Annotated[
    Constant | Exponential | LogNormal | Normal | Uniform | Empirical,
    Field(discriminator="kind"),
    BeforeValidator(_shorthand),
    _ShorthandInSchema(),
]
"""Any distribution spec; in YAML a bare duration is a constant."""


def constant(value: float | str) -> Constant:
    """A constant spec from seconds or a duration string (for defaults in code)."""
    return Constant(value=parse_duration(value))


def lognormal(median: float | str, sigma: float) -> LogNormal:
    """A lognormal spec from its median (seconds or a duration string) and sigma (for defaults in code)."""
    return LogNormal.model_validate({"median": median, "sigma": sigma})
