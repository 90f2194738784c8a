"""Streaming metrics whose memory does not grow with the number of samples.

* :class:`Histogram` -- log-bucketed quantile sketch (the DDSketch idea): a value ``x > 0``
  falls in bucket ``ceil(log(x) / log(gamma))`` with ``gamma = (1 + a) / (1 - a)``, so any
  quantile is returned within relative error ``a`` (0.5 % by default, inside the 1 % the
  reports promise).  Memory is one counter per occupied bucket: a few thousand at most
  for values spanning microseconds to days.
* :class:`TimeSeries` -- counters and gauges summed per fixed interval, for plots and SLO
  windows; its size grows with simulated duration divided by the interval only.
* :class:`Metrics` -- a registry so components do not pass metric objects around.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

__all__ = ["Histogram", "Metrics", "TimeSeries"]


class Histogram:
    """Quantile sketch with bounded relative error; see the module docstring.

    :meth:`add` counts into a dict of buckets; :meth:`add_many` counts a whole array into
    a dense numpy array of buckets, which is folded into the dict whenever the buckets
    are read (``_buckets``, :meth:`quantile`, :meth:`merge`).
    """

    __slots__ = ("_dense", "_gamma_log", "_offset", "_sparse", "_zero", "accuracy", "count", "max", "min", "total")

    def __init__(self, accuracy: float = 0.005) -> None:
        if not 0 < accuracy < 0.5:
            raise ValueError(f"accuracy must be in (0, 0.5) (got {accuracy})")
        self.accuracy = accuracy
        self._gamma_log = math.log((1 + accuracy) / (1 - accuracy))
        self._sparse: dict[int, int] = {}
        self._dense: np.ndarray | None = None  # counts of keys _offset, _offset + 1, ...
        self._offset = 0
        self._zero = 0
        self.count = 0
        self.total = 0.0
        self.min = math.inf
        self.max = -math.inf

    @property
    def _buckets(self) -> dict[int, int]:
        """Bucket key -> count, for every occupied bucket."""
        dense = self._dense
        if dense is not None:
            self._dense = None
            sparse = self._sparse
            occupied = np.nonzero(dense)[0]
            for key, n in zip((occupied + self._offset).tolist(), dense[occupied].tolist()):
                sparse[key] = sparse.get(key, 0) + n
        return self._sparse

    def add(self, value: float) -> None:
        """Record one value; values <= 0 are kept in an exact zero bucket."""
        self.count += 1
        self.total += value
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value
        if value > 0:
            key = math.ceil(math.log(value) / self._gamma_log)
            buckets = self._sparse
            buckets[key] = buckets.get(key, 0) + 1
        else:
            self._zero += 1

    def extend(self, values: Iterable[float]) -> None:
        """Record many values."""
        for value in values:
            self.add(value)

    def add_many(self, values: np.ndarray) -> None:
        """Record an array of values at once: the same sketch as :meth:`add` on each, in order.

        Bucket keys come from ``numpy.log``; the rare value whose key lands within rounding
        distance of a bucket boundary is recomputed with :func:`math.log`, so every key is
        the one :meth:`add` would give.  The total is a running (sequential) sum, as
        :meth:`add` accumulates it, so the result is bit-identical to adding one by one.
        """
        values = np.asarray(values, dtype=float).ravel()
        n = values.size
        if n == 0:
            return
        if np.isnan(values).any():
            self.extend(values.tolist())  # NaN compares false everywhere: keep add()'s exact handling
            return
        self.count += n
        self.total = float(np.add.accumulate(np.concatenate(([self.total], values)))[-1])
        low = float(values.min())
        high = float(values.max())
        if low < self.min:
            self.min = low
        if high > self.max:
            self.max = high
        positive = values if low > 0 else values[values > 0]
        self._zero += n - positive.size
        if not positive.size:
            return
        scaled = np.log(positive) / self._gamma_log
        keys = np.ceil(scaled)
        edge = np.nonzero(np.abs(scaled - np.rint(scaled)) < 1e-6)[0]
        if edge.size:
            gamma_log = self._gamma_log
            for i in edge.tolist():
                keys[i] = math.ceil(math.log(float(positive[i])) / gamma_log)
        keys = keys.astype(np.int64)
        first = int(keys.min())
        counts = np.bincount(keys - first)
        dense = self._ensure(first, first + counts.size)
        start = first - self._offset
        dense[start : start + counts.size] += counts

    def _ensure(self, low: int, high: int) -> np.ndarray:
        """The dense bucket array, grown to cover keys ``low .. high - 1``."""
        dense = self._dense
        if dense is None:
            dense = self._dense = np.zeros(high - low + 64, dtype=np.int64)
            self._offset = low - 32
            return dense
        offset = self._offset
        if low >= offset and high <= offset + dense.size:
            return dense
        new_low = min(low, offset) - 32
        new_high = max(high, offset + dense.size) + 32
        grown = np.zeros(new_high - new_low, dtype=np.int64)
        grown[offset - new_low : offset - new_low + dense.size] = dense
        self._dense, self._offset = grown, new_low
        return grown

    def merge(self, other: Histogram) -> None:
        """Add ``other``'s samples (same accuracy required) into this sketch."""
        if other.accuracy != self.accuracy:
            raise ValueError("cannot merge histograms of different accuracy")
        buckets = self._buckets
        for key, n in other._buckets.items():
            buckets[key] = buckets.get(key, 0) + n
        self._zero += other._zero
        self.count += other.count
        self.total += other.total
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)

    def quantile(self, q: float) -> float | None:
        """The ``q``-quantile (0 <= q <= 1), or None when empty."""
        if not 0 <= q <= 1:
            raise ValueError(f"q must be in [0, 1] (got {q})")
        if self.count == 0:
            return None
        rank = q * (self.count - 1)
        if rank < self._zero:
            return 0.0 if self.min >= 0 else self.min
        seen = self._zero
        buckets = self._buckets
        for key in sorted(buckets):
            seen += buckets[key]
            if seen > rank:
                # Midpoint (in relative terms) of the bucket (gamma^(k-1), gamma^k].
                estimate = 2 * math.exp(key * self._gamma_log) / (1 + math.exp(self._gamma_log))
                return min(max(estimate, self.min), self.max)
        return self.max

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

    def series(self, until: float) -> list[float]:
        """Bucket sums from time 0 up to ``until``, zero-filled."""
        n = max(0, math.ceil(until / self.interval))
        return [self._sums.get(i, 0.0) for i in range(n)]


class Metrics:
    """Named counters, histograms and time series, created on first use."""

    def __init__(self, interval: float = 60.0) -> None:
        self.interval = interval
        self.counters: dict[str, int | float] = {}
        self.histograms: dict[str, Histogram] = {}
        self.series: dict[str, TimeSeries] = {}

    def inc(self, name: str, n: int | float = 1) -> None:
        """Add ``n`` to counter ``name``."""
        self.counters[name] = self.counters.get(name, 0) + n

    def histogram(self, name: str) -> Histogram:
        """The histogram called ``name``."""
        hist = self.histograms.get(name)
        if hist is None:
            hist = self.histograms[name] = Histogram()
        return hist

    def timeseries(self, name: str, mode: str = "sum") -> TimeSeries:
        """The per-interval series called ``name`` (created with ``mode`` on first use)."""
        ts = self.series.get(name)
        if ts is None:
            ts = self.series[name] = TimeSeries(self.interval, mode)
        return ts
