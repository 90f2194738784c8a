"""Spans: one (origin, target, operation, start, end, outcome) record per operation, in a trace.

Every operation the driver carries out becomes a span.  Spans are aggregated as they
arrive -- a count and a latency sketch per (origin, target, operation, outcome) -- so a
long run costs bounded memory; optionally the first ``keep`` spans are retained verbatim
for timelines and trace export, or a *sink* (a trace capture, :mod:`sim.tracing`) is shown
every span and keeps the ones it wants.

Trace context: each span carries a trace id, its own span id and its parent's span id
(0: none), plain counters the driver hands out in the order it makes calls, so the same
seed gives the same ids (:mod:`sim.driver` says which flow belongs to which trace).  They
are integers here; exports render them as the hex of OTLP's widths (:func:`trace_hex`,
:func:`span_hex`).  The aggregate ignores them, so a result file does not depend on them.

Recording is in bulk: a span's duration is appended to its group's buffer, and a full
buffer goes into the sketch in one vectorised :meth:`~sim.metrics.Histogram.add_many`
(bit-identical to adding one by one).  :meth:`SpanRecorder.summary` reads the sketch and
the buffer together without emptying the buffer, so reading changes nothing.

A capture reaches the kernel a twin builds without the twin's knowing: :func:`capturing`
makes a :class:`Capture` active for the code it wraps (a context variable), and every
:class:`~sim.kernel.Kernel` built meanwhile hands itself to it.  An ordinary run has none
and pays one look-up per kernel.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from sim.metrics import Histogram

if TYPE_CHECKING:
    from sim.kernel import Kernel

__all__ = ["Capture", "Span", "SpanRecorder", "SpanSink", "active_capture", "capturing", "span_hex", "trace_hex"]

BUFFER = 4096
"""Span durations buffered per group before they go into its sketch at once."""

SpanSink = Callable[[str, str, str, float, float, str, int, int, int], None]
"""Shown every span as ``(origin, target, operation, start, end, outcome, trace, span, parent)``."""


def trace_hex(trace: int) -> str:
    """A trace id as OTLP writes it: 16 bytes, 32 lowercase hex digits."""
    return f"{trace:032x}"


def span_hex(span: int) -> str:
    """A span id as OTLP writes it: 8 bytes, 16 lowercase hex digits ("" for no span: a root's parent)."""
    return f"{span:016x}" if span else ""


@dataclass(frozen=True, slots=True)
class Span:
    """One operation as the caller experienced it, and where it sits in its trace."""

    origin: str
    target: str
    operation: str
    start: float
    end: float
    outcome: str
    trace_id: int = 0
    span_id: int = 0
    parent_id: int = 0  # 0: a root span (the flow that made it had no incoming request)


class SpanRecorder:
    """Aggregates spans; keeps the first ``keep`` of them verbatim, or shows each to ``sink``."""

    def __init__(self, keep: int = 0, sink: SpanSink | None = None) -> None:
        self.keep = keep
        self.kept: list[Span] = []
        self._groups: dict[tuple[str, str, str, str], Histogram] = {}
        self._pending: dict[tuple[str, str, str, str], list[float]] = {}
        self._sink: SpanSink | None = None
        self.sink = sink

    @property
    def sink(self) -> SpanSink | None:
        """What is shown each span verbatim: the given sink, else keeping the first ``keep``, else nothing."""
        return self._sink

    @sink.setter
    def sink(self, sink: SpanSink | None) -> None:
        self._sink = sink if sink is not None else (self._keep_first if len(self.kept) < self.keep else None)

    def _keep_first(
        self, origin: str, target: str, operation: str, start: float, end: float, outcome: str, *ids: int
    ) -> None:
        self.kept.append(Span(origin, target, operation, start, end, outcome, *ids))
        if len(self.kept) >= self.keep:
            self._sink = None  # full: the hot path stops calling

    def record(
        self,
        origin: str,
        target: str,
        operation: str,
        start: float,
        end: float,
        outcome: str,
        trace: int = 0,
        span: int = 0,
        parent: int = 0,
    ) -> None:
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
        sink = self._sink
        if sink is not None:
            sink(origin, target, operation, start, end, outcome, trace, span, parent)

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


class Capture(Protocol):
    """What a trace capture offers the kernels built while it is active (see the module docstring)."""

    def attach(self, kernel: Kernel) -> None:
        """Take hold of ``kernel``: set its span sink, its driver's item hook, whatever it needs."""


_ACTIVE: ContextVar[Capture | None] = ContextVar("sim.spans.capture", default=None)


def active_capture() -> Capture | None:
    """The capture kernels built now hand themselves to, or None (an ordinary run)."""
    return _ACTIVE.get()


@contextmanager
def capturing(capture: Capture) -> Iterator[Capture]:
    """Make ``capture`` active for the block: kernels built inside it attach to it."""
    token = _ACTIVE.set(capture)
    try:
        yield capture
    finally:
        _ACTIVE.reset(token)
