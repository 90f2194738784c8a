"""Streaming metrics whose memory does not grow with the number of samples.

* :class:`Histogram` -- log-bucketed quantile sketch (DDSketch: Masson, Rim and Lee, VLDB
  2019): a value ``x > 0`` falls in bucket ``ceil(log(x) / log(gamma))`` with
  ``gamma = (1 + a) / (1 - a)``, a value ``x < 0`` in the bucket of ``-x`` in a mirrored
  store for negatives, and only zeros and magnitudes too small to index (below about
  ``2.2e-308``) in a zero bucket; so any quantile is returned within relative error ``a``
  (0.5 % by default, inside the 1 % the reports promise) whatever its sign.  Memory is
  one counter per occupied bucket: a few thousand at most for values spanning
  microseconds to days.  (NaN and infinities: see the class docstring.)
* :class:`TimeSeries` -- counters and gauges summed per fixed interval, for plots and SLO
  windows; its size grows with simulated duration divided by the interval only.
* :class:`QuantileSeries` -- a quantile (the p95) of the values recorded in each interval,
  one :class:`Histogram` per interval that saw a value: latency over time.
* :class:`PeakSeries` -- the largest value a level (a step function such as a queue's
  length) took in each interval, the level carrying over intervals in which it did not
  change; updated only where the level changes.
* :class:`Metrics` -- a registry of declared metrics, so components do not pass metric
  objects around and a misspelt name is an error, not an empty metric.
"""

from __future__ import annotations

import difflib
import math
import sys
from collections.abc import Iterable
from typing import Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from sim.errors import ModelDefinitionError

__all__ = [
    "CDF_PROBABILITIES",
    "SERIES_KINDS",
    "Histogram",
    "MetricSpec",
    "Metrics",
    "PeakSeries",
    "QuantileSeries",
    "TimeSeries",
]

CDF_PROBABILITIES: tuple[float, ...] = (0.001, *(round(k / 100, 2) for k in range(1, 100)), 0.995, 0.999)
"""The probabilities a distribution is tabulated at for a CDF (:meth:`Histogram.quantiles`):
every percent, and the tails finer, 0.1 % and 99.5 %, 99.9 %."""


class _DenseCounts:
    """Counts of a contiguous range of bucket keys (``offset``, ``offset + 1``, ...), filled an array at a time."""

    __slots__ = ("counts", "offset")

    def __init__(self) -> None:
        self.counts: npt.NDArray[np.int64] | None = None
        self.offset = 0

    def add_keys(self, keys: npt.NDArray[np.int64]) -> None:
        """Count each key once."""
        first = int(keys.min())
        counts = np.bincount(keys - first)
        dense = self._ensure(first, first + counts.size)
        start = first - self.offset
        dense[start : start + counts.size] += counts

    def _ensure(self, low: int, high: int) -> npt.NDArray[np.int64]:
        """The count array, grown to cover keys ``low .. high - 1``."""
        dense = self.counts
        if dense is None:
            dense = self.counts = np.zeros(high - low + 64, dtype=np.int64)
            self.offset = low - 32
            return dense
        offset = self.offset
        if low >= offset and high <= offset + dense.size:
            return dense
        new_low = min(low, offset) - 32
        new_high = max(high, offset + dense.size) + 32
        grown = np.zeros(new_high - new_low, dtype=np.int64)
        grown[offset - new_low : offset - new_low + dense.size] = dense
        self.counts, self.offset = grown, new_low
        return grown

    def drain_into(self, buckets: dict[int, int]) -> None:
        """Add the counts into ``buckets`` (key -> count) and empty this array."""
        dense = self.counts
        if dense is None:
            return
        self.counts = None
        occupied = np.nonzero(dense)[0]
        for key, n in zip((occupied + self.offset).tolist(), dense[occupied].tolist(), strict=True):
            buckets[key] = buckets.get(key, 0) + n


class Histogram:
    """Quantile sketch with bounded relative error; see the module docstring.

    Positive values are counted by bucket key in one store, negative values by the key of
    their magnitude in a mirrored store, and values of magnitude at most the smallest
    indexable value (``sys.float_info.min * gamma``, so that every bucket's bounds are
    normal floats), zeros included, in a zero bucket.  :meth:`add` counts into dicts of
    buckets; :meth:`add_many` counts a whole array into dense numpy arrays of buckets,
    which are folded into the dicts whenever the buckets are read (``_buckets``,
    ``_negative_buckets``, :meth:`quantile`, :meth:`merge`).

    Non-finite values: a NaN is counted (``count`` grows, ``total`` and ``mean`` become
    NaN), is ranked with the zero bucket and leaves ``min`` and ``max`` alone -- the
    behaviour this class has always had.  An infinity has no bucket: :meth:`add` and
    :meth:`add_many` raise ValueError for it and record nothing of that call (for
    :meth:`add_many` given a NaN too, the values before the infinity are recorded, as by
    :meth:`add` on each).
    """

    __slots__ = (
        "_dense_negative",
        "_dense_positive",
        "_gamma_log",
        "_min_indexable",
        "_negative",
        "_positive",
        "_zero",
        "accuracy",
        "count",
        "max",
        "min",
        "total",
    )

    def __init__(self, accuracy: float = 0.005) -> None:
        if not 0 < accuracy < 0.5:
            raise ValueError(f"accuracy must be in (0, 0.5) (got {accuracy})")
        self.accuracy = accuracy
        gamma = (1 + accuracy) / (1 - accuracy)
        self._gamma_log = math.log(gamma)
        self._min_indexable = sys.float_info.min * gamma
        self._positive: dict[int, int] = {}  # key of x -> count, for x > _min_indexable
        self._negative: dict[int, int] = {}  # key of -x -> count, for x < -_min_indexable
        self._dense_positive = _DenseCounts()
        self._dense_negative = _DenseCounts()
        self._zero = 0
        self.count = 0
        self.total = 0.0
        self.min = math.inf
        self.max = -math.inf

    def _fold(self) -> None:
        """Move the dense counts of :meth:`add_many` into the bucket dicts."""
        self._dense_positive.drain_into(self._positive)
        self._dense_negative.drain_into(self._negative)

    @property
    def _buckets(self) -> dict[int, int]:
        """Bucket key -> count, for every occupied bucket of positive values."""
        self._fold()
        return self._positive

    @property
    def _negative_buckets(self) -> dict[int, int]:
        """Bucket key (of the magnitude) -> count, for every occupied bucket of negative values."""
        self._fold()
        return self._negative

    def add(self, value: float) -> None:
        """Record one value (ValueError for an infinity; see the class docstring for NaN)."""
        tiny = self._min_indexable
        try:
            if value > tiny:
                key = math.ceil(math.log(value) / self._gamma_log)
                buckets = self._positive
                buckets[key] = buckets.get(key, 0) + 1
            elif value < -tiny:
                key = math.ceil(math.log(-value) / self._gamma_log)
                buckets = self._negative
                buckets[key] = buckets.get(key, 0) + 1
            else:  # zero, a magnitude too small to index, or NaN
                self._zero += 1
        except OverflowError:  # math.ceil of an infinite log: nothing recorded yet
            raise ValueError(f"cannot record an infinite value ({value})") from None
        self.count += 1
        self.total += value
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value

    def extend(self, values: Iterable[float]) -> None:
        """Record many values."""
        for value in values:
            self.add(value)

    def add_many(self, values: np.ndarray) -> None:
        """Record an array of values at once: the same sketch as :meth:`add` on each, in order.

        Bucket keys come from ``numpy.log``; the rare value whose key lands within rounding
        distance of a bucket boundary is recomputed with :func:`math.log`, so every key is
        the one :meth:`add` would give.  The total is a running (sequential) sum, as
        :meth:`add` accumulates it, and ``min``/``max`` take the first occurrence of the
        extreme (which matters only for the sign of a zero), so the result is bit-identical
        to adding one by one.
        """
        values = np.asarray(values, dtype=float).ravel()
        n = values.size
        if n == 0:
            return
        low = float(values[values.argmin()])  # NaN if there is one: argmin finds the first NaN
        if low != low:
            self.extend(values.tolist())  # NaN compares false everywhere: keep add()'s exact handling
            return
        high = float(values[values.argmax()])
        if high == math.inf or low == -math.inf:
            raise ValueError(f"cannot record an infinite value ({high if high == math.inf else low})")
        self.count += n
        running = np.concatenate(([self.total], values))
        if abs(self.total) + n * max(high, -low) < 1e308:  # no partial sum can overflow: the usual case
            self.total = float(np.add.accumulate(running)[-1])
        else:  # overflow to an infinity (or inf - inf = NaN) happens silently in add(): here too
            with np.errstate(over="ignore", invalid="ignore"):
                self.total = float(np.add.accumulate(running)[-1])
        if low < self.min:
            self.min = low
        if high > self.max:
            self.max = high
        tiny = self._min_indexable
        if low > tiny:  # all positive: no masking, no copy
            self._dense_positive.add_keys(self._keys(values))
            return
        indexed = 0
        if high > tiny:
            positive = values[values > tiny]
            indexed += positive.size
            self._dense_positive.add_keys(self._keys(positive))
        if low < -tiny:
            magnitudes = np.negative(values[values < -tiny])
            indexed += magnitudes.size
            self._dense_negative.add_keys(self._keys(magnitudes))
        self._zero += n - indexed

    def _keys(self, magnitudes: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
        """Bucket keys of positive, finite, indexable values, exactly as :meth:`add` computes them."""
        gamma_log = self._gamma_log
        scaled = np.log(magnitudes) / gamma_log
        keys = np.ceil(scaled)
        edge = np.nonzero(np.abs(scaled - np.rint(scaled)) < 1e-6)[0]
        if edge.size:
            for i in edge.tolist():
                keys[i] = math.ceil(math.log(float(magnitudes[i])) / gamma_log)
        return keys.astype(np.int64)

    def merge(self, other: Histogram) -> None:
        """Add ``other``'s samples (same accuracy required) into this sketch."""
        if other.accuracy != self.accuracy:
            raise ValueError("cannot merge histograms of different accuracy")
        self._fold()
        other._fold()
        for buckets, others in ((self._positive, other._positive), (self._negative, other._negative)):
            for key, n in list(others.items()):
                buckets[key] = buckets.get(key, 0) + n
        self._zero += other._zero
        self.count += other.count
        self.total += other.total
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)

    def _midpoint(self, key: int) -> float:
        """Midpoint (in relative terms) of the bucket (gamma^(key-1), gamma^key]: within accuracy of all of it."""
        scaled = key * self._gamma_log
        if scaled < 709.0:  # gamma^key well below the largest float
            return 2 * math.exp(scaled) / (1 + math.exp(self._gamma_log))
        try:  # the topmost buckets: the same midpoint in log space, as gamma^key may overflow
            return math.exp(scaled + math.log(2 / (1 + math.exp(self._gamma_log))))
        except OverflowError:
            return math.inf  # beyond any float: the caller clamps it to max

    def quantile(self, q: float) -> float | None:
        """The ``q``-quantile (0 <= q <= 1), or None when empty.

        The value of rank ``floor(q * (count - 1))`` (0-based, ascending), within relative
        error ``accuracy`` when its magnitude is above the smallest indexable value (of
        either sign); values in the zero bucket are reported as 0 (clamped to the range).
        """
        if not 0 <= q <= 1:
            raise ValueError(f"q must be in [0, 1] (got {q})")
        if self.count == 0:
            return None
        rank = q * (self.count - 1)
        self._fold()
        seen = 0
        negative = self._negative
        if negative:
            for key in sorted(negative, reverse=True):  # the most negative values first
                seen += negative[key]
                if seen > rank:
                    return min(max(-self._midpoint(key), self.min), self.max)
        seen += self._zero
        if seen > rank:
            # zeros and tiny magnitudes (and NaNs); with NaNs alone there is no range to clamp to
            return min(max(0.0, self.min), self.max) if self.min <= self.max else 0.0
        positive = self._positive
        for key in sorted(positive):
            seen += positive[key]
            if seen > rank:
                return min(max(self._midpoint(key), self.min), self.max)
        return self.max

    def quantiles(self, probabilities: Iterable[float] = CDF_PROBABILITIES) -> list[list[float]]:
        """``[p, quantile(p)]`` for each probability, in the order given; empty when nothing was recorded.

        The points of a CDF: given increasing probabilities (the default), the values never
        decrease, as :meth:`quantile` is monotone.  Lists, not tuples, so a result file
        holds exactly what JSON gives back.
        """
        if self.count == 0:
            return []
        points: list[list[float]] = []
        for p in probabilities:
            value = self.quantile(p)
            assert value is not None  # count > 0
            points.append([p, value])
        return points

    @property
    def mean(self) -> float | None:
        """Exact mean of the recorded values, or None when empty."""
        return self.total / self.count if self.count else None

    def summary(self) -> dict[str, float | int | None]:
        """Count, mean, p50/p95/p99 and max, as plain numbers for result files."""
        return {
            "count": self.count,
            "mean": self.mean,
            "p50": self.quantile(0.50),
            "p95": self.quantile(0.95),
            "p99": self.quantile(0.99),
            "max": self.max if self.count else None,
        }


class TimeSeries:
    """Values aggregated into fixed-width time buckets (``interval`` seconds each).

    ``mode="sum"`` adds values (counts per interval); ``mode="max"`` keeps the largest
    (a gauge such as the stream's iterator age).
    """

    __slots__ = ("_sums", "interval", "mode")

    def __init__(self, interval: float, mode: str = "sum") -> None:
        if interval <= 0:
            raise ValueError(f"interval must be > 0 (got {interval})")
        if mode not in ("sum", "max"):
            raise ValueError(f"mode must be 'sum' or 'max' (got {mode!r})")
        self.interval = interval
        self.mode = mode
        self._sums: dict[int, float] = {}

    def add(self, t: float, value: float = 1.0) -> None:
        """Fold ``value`` into the bucket holding time ``t``."""
        key = int(t // self.interval)
        if self.mode == "sum":
            self._sums[key] = self._sums.get(key, 0.0) + value
        else:
            self._sums[key] = max(self._sums.get(key, value), value)

    def series(self, until: float, since: float = 0.0) -> list[float]:
        """Bucket sums from the bucket holding ``since`` (time 0 by default) up to ``until``,
        zero-filled (a clock that started late reports from its start, not months of zeros)."""
        first = max(0, math.floor(since / self.interval))
        n = max(0, math.ceil(until / self.interval))
        return [self._sums.get(i, 0.0) for i in range(first, n)]


class QuantileSeries:
    """The ``q``-quantile of the values recorded in each fixed-width interval (p95 by default).

    Each interval that saw a value keeps its own :class:`Histogram`, so the quantile is
    within the sketch's relative error of the exact one, and memory is one sketch per
    occupied interval.  An interval with no value has no quantile: :meth:`series` gives
    ``None`` there (``null`` in JSON), not 0, which would read as an instant answer.
    """

    __slots__ = ("_sketches", "interval", "q")

    def __init__(self, interval: float, q: float = 0.95) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be > 0 (got {interval})")
        if not 0 <= q <= 1:
            raise ValueError(f"q must be in [0, 1] (got {q})")
        self.interval = interval
        self.q = q
        self._sketches: dict[int, Histogram] = {}

    def add(self, t: float, value: float) -> None:
        """Record ``value`` in the interval holding time ``t``."""
        key = int(t // self.interval)
        sketch = self._sketches.get(key)
        if sketch is None:
            sketch = self._sketches[key] = Histogram()
        sketch.add(value)

    def sketch(self, t: float) -> Histogram | None:
        """The sketch of the interval holding time ``t``, or None when it saw no value."""
        return self._sketches.get(int(t // self.interval))

    def series(self, until: float, since: float = 0.0) -> list[float | None]:
        """The quantile of each interval from the one holding ``since`` up to ``until``; None where empty."""
        first = max(0, math.floor(since / self.interval))
        n = max(0, math.ceil(until / self.interval))
        sketches = self._sketches
        return [sketches[i].quantile(self.q) if i in sketches else None for i in range(first, n)]


class PeakSeries:
    """The largest value a level took in each fixed-width interval (a queue's depth).

    A level is a step function: it holds between changes, so an interval in which it did
    not change peaks at the level carried in.  :meth:`set` is told every change; it costs a
    comparison unless the change is the first of a new interval, which closes the interval
    before (and records the run of unchanged intervals between, if the level was not 0).
    Nothing runs between changes, so an idle level costs nothing.  The level is 0 until
    the first :meth:`set`.
    """

    __slots__ = ("_closed", "_end", "_key", "_level", "_peak", "_runs", "interval")

    def __init__(self, interval: float) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be > 0 (got {interval})")
        self.interval = interval
        self._key = -1  # the interval of the last change (-1: none yet)
        self._end = -math.inf  # when that interval ends: a change at or after it rolls over
        self._peak: float = 0  # the largest level in interval _key so far
        self._level: float = 0  # the level since the last change
        self._closed: dict[int, float] = {}  # interval -> peak, for closed intervals with a peak above 0
        self._runs: list[tuple[int, int, float]] = []  # (first, stop, level): unchanged intervals, level > 0

    def set(self, t: float, level: float) -> None:
        """The level changed to ``level`` at time ``t`` (not before the last change)."""
        if t >= self._end:
            self._roll(t)
        self._level = level
        if level > self._peak:
            self._peak = level

    def _roll(self, t: float) -> None:
        """The first change in a new interval: close the last one, carry the level in."""
        key = int(t // self.interval)
        if key <= self._key:  # t sits at the boundary by rounding: still the same interval
            self._end = math.nextafter(t, math.inf)
            return
        level = self._level
        if self._peak > 0:
            self._closed[self._key] = self._peak
        if level > 0 and key > self._key + 1:
            self._runs.append((self._key + 1, key, level))
        self._key = key
        self._end = (key + 1) * self.interval
        # The old level reaches into this interval only if the change comes after its start; a
        # change exactly on the boundary starts the interval at the new level (``set`` follows).
        self._peak = level if t > key * self.interval else -math.inf

    def series(self, until: float, since: float = 0.0) -> list[float]:
        """The peak of each interval from the one holding ``since`` up to ``until`` (a pure reading)."""
        first = max(0, math.floor(since / self.interval))
        n = max(0, math.ceil(until / self.interval))
        values: list[float] = [0] * max(0, n - first)
        for low, stop, level in self._runs:
            for i in range(max(low, first), min(stop, n)):
                values[i - first] = level
        for i, peak in self._closed.items():
            if first <= i < n:
                values[i - first] = peak
        if self._key >= 0:
            if first <= self._key < n:
                values[self._key - first] = self._peak
            for i in range(max(self._key + 1, first), n):
                values[i - first] = self._level
        return values


class MetricSpec(NamedTuple):
    """A metric a model declares: its name, kind, unit and meaning (for result readers)."""

    name: str
    kind: Literal["counter", "histogram", "sum", "max", "p95", "peak"]
    unit: str = ""
    description: str = ""


SERIES_KINDS = ("sum", "max", "p95", "peak")
"""The kinds that are per-interval series: ``sum`` and ``max`` (:class:`TimeSeries`), ``p95``
(:class:`QuantileSeries`, ``None`` for an interval with no value) and ``peak``
(:class:`PeakSeries`, the largest level of a step function)."""


class Metrics:
    """The run's counters, histograms and time series, each declared before use.

    A model declares its metrics (:meth:`declare`) when it is built; asking for a name that
    was not declared, or for a declared name as another kind, raises
    :class:`~sim.errors.ModelDefinitionError`.  Components fetch their metric objects when
    they are constructed, so a misspelt name fails the build instead of filling a metric
    nobody reads.  Reading (``counters``, ``histograms``, ``series``, ``quantiles``,
    ``peaks``, :meth:`every_series`) creates nothing.

    ``series`` holds the sums and maxes (plain numbers in every interval); the p95 series
    (``quantiles``, which have empty intervals) and the peaks (``peaks``) are kept apart,
    so a reader of ``series`` still gets numbers only; :meth:`every_series` reads them all.
    """

    def __init__(self, interval: float = 60.0) -> None:
        self.interval = interval
        self.catalogue: dict[str, MetricSpec] = {}
        self.counters: dict[str, int | float] = {}
        self.histograms: dict[str, Histogram] = {}
        self.series: dict[str, TimeSeries] = {}
        self.quantiles: dict[str, QuantileSeries] = {}
        self.peaks: dict[str, PeakSeries] = {}

    def declare(self, *specs: MetricSpec | tuple[str, str, str, str]) -> None:
        """Declare metrics (a :class:`MetricSpec` or a ``(name, kind, unit, description)`` tuple)."""
        for raw in specs:
            spec = MetricSpec(*raw)
            known = self.catalogue.get(spec.name)
            if known is not None and known != spec:
                raise ModelDefinitionError(f"metric {spec.name!r} declared twice, differently ({known} and {spec})")
            if spec.kind == "counter":
                self.counters.setdefault(spec.name, 0)
            elif spec.kind == "histogram":
                self.histograms.setdefault(spec.name, Histogram())
            elif spec.kind in ("sum", "max"):
                self.series.setdefault(spec.name, TimeSeries(self.interval, spec.kind))
            elif spec.kind == "p95":
                self.quantiles.setdefault(spec.name, QuantileSeries(self.interval, 0.95))
            elif spec.kind == "peak":
                self.peaks.setdefault(spec.name, PeakSeries(self.interval))
            else:
                raise ModelDefinitionError(
                    f"metric {spec.name!r}: unknown kind {spec.kind!r} (counter, histogram, sum, max, p95, peak)"
                )
            self.catalogue[spec.name] = spec

    def _check(self, name: str, kinds: tuple[str, ...]) -> None:
        spec = self.catalogue.get(name)
        if spec is None:
            close = difflib.get_close_matches(name, list(self.catalogue), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ModelDefinitionError(f"metric {name!r} was never declared{hint}")
        if spec.kind not in kinds:
            raise ModelDefinitionError(f"metric {name!r} is declared as a {spec.kind}, not a {' or '.join(kinds)}")

    def inc(self, name: str, n: int | float = 1) -> None:
        """Add ``n`` to the declared counter ``name``."""
        if name not in self.counters:
            self._check(name, ("counter",))
        self.counters[name] += n

    def histogram(self, name: str) -> Histogram:
        """The declared histogram called ``name``."""
        hist = self.histograms.get(name)
        if hist is None:
            self._check(name, ("histogram",))
        return self.histograms[name]

    def timeseries(self, name: str) -> TimeSeries:
        """The declared per-interval series called ``name`` (a sum or a max per interval)."""
        ts = self.series.get(name)
        if ts is None:
            self._check(name, ("sum", "max"))
        return self.series[name]

    def quantile_series(self, name: str) -> QuantileSeries:
        """The declared per-interval p95 series called ``name``."""
        series = self.quantiles.get(name)
        if series is None:
            self._check(name, ("p95",))
        return self.quantiles[name]

    def peak_series(self, name: str) -> PeakSeries:
        """The declared per-interval peak of a level called ``name``."""
        series = self.peaks.get(name)
        if series is None:
            self._check(name, ("peak",))
        return self.peaks[name]

    def every_series(self, until: float, since: float = 0.0) -> dict[str, list[float | None]]:
        """Every per-interval series (sums, maxes, p95s, peaks) from ``since`` to ``until``, by name."""
        every: dict[str, list[float | None]] = {}
        for name, ts in self.series.items():
            every[name] = list(ts.series(until, since))
        for name, quantile in self.quantiles.items():
            every[name] = quantile.series(until, since)
        for name, peak in self.peaks.items():
            every[name] = list(peak.series(until, since))
        return dict(sorted(every.items()))
