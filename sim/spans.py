"""Spans: one (origin, target, operation, start, end, outcome) record per operation.

Every operation the driver carries out becomes a span.  Spans are aggregated as they
arrive -- a count and a latency sketch per (origin, target, operation, outcome) -- so a
long run costs bounded memory; optionally the first ``keep`` spans are retained verbatim
for timelines and trace export.

Recording is in bulk: a span's duration is appended to its group's buffer, and a full
buffer goes into the sketch in one vectorised :meth:`~sim.metrics.Histogram.add_many`
(bit-identical to adding one by one).  :meth:`SpanRecorder.summary` reads the sketch and
the buffer together without emptying the buffer, so reading changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.metrics import Histogram

__all__ = ["Span", "SpanRecorder"]

BUFFER = 4096
"""Span durations buffered per group before they go into its sketch at once."""


@dataclass(frozen=True, slots=True)
class Span:
    """One operation as the caller experienced it."""

    origin: str
    target: str
    operation: str
    start: float
    end: float
    outcome: str


class SpanRecorder:
    """Aggregates spans; keeps the first ``keep`` of them verbatim."""

    def __init__(self, keep: int = 0) -> None:
        self.keep = keep
        self.kept: list[Span] = []
        self._groups: dict[tuple[str, str, str, str], Histogram] = {}
        self._pending: dict[tuple[str, str, str, str], list[float]] = {}

    def record(self, origin: str, target: str, operation: str, start: float, end: float, outcome: str) -> None:
        """Add one span."""
        key = (origin, target, operation, outcome)
        pending = self._pending.get(key)
        if pending is None:
            self._groups[key] = Histogram()
            pending = self._pending[key] = []
        pending.append(end - start)
        if len(pending) >= BUFFER:
            self._groups[key].add_many(np.asarray(pending))
            pending.clear()
        if len(self.kept) < self.keep:
            self.kept.append(Span(origin, target, operation, start, end, outcome))

    def summary(self) -> list[dict[str, Any]]:
        """Per-group counts and latency percentiles, sorted for stable output."""
        rows = []
        for key, hist in sorted(self._groups.items()):
            origin, target, operation, outcome = key
            pending = self._pending[key]
            if pending:  # a view of the sketch with the buffer added, leaving both as they are
                view = Histogram()
                view.merge(hist)
                view.add_many(np.asarray(pending))
                hist = view
            stats = hist.summary()
            rows.append(
                {
                    "origin": origin,
                    "target": target,
                    "operation": operation,
                    "outcome": outcome,
                    "count": stats["count"],
                    "p50": stats["p50"],
                    "p99": stats["p99"],
                }
            )
        return rows
