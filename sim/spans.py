"""Spans: one (origin, target, operation, start, end, outcome) record per operation.

Every operation the driver carries out becomes a span.  Spans are aggregated as they
arrive -- a count and a latency sketch per (origin, target, operation, outcome) -- so a
long run costs bounded memory; optionally the first ``keep`` spans are retained verbatim
for timelines and trace export.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sim.metrics import Histogram

__all__ = ["Span", "SpanRecorder"]


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

    def record(self, origin: str, target: str, operation: str, start: float, end: float, outcome: str) -> None:
        """Add one span."""
        key = (origin, target, operation, outcome)
        hist = self._groups.get(key)
        if hist is None:
            hist = self._groups[key] = Histogram()
        hist.add(end - start)
        if len(self.kept) < self.keep:
            self.kept.append(Span(origin, target, operation, start, end, outcome))

    def summary(self) -> list[dict[str, Any]]:
        """Per-group counts and latency percentiles, sorted for stable output."""
        rows = []
        for (origin, target, operation, outcome), hist in sorted(self._groups.items()):
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
