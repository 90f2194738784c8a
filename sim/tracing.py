"""Trace capture: run one variant on one seed and keep the spans of a time window or of one item's life.

An ordinary run keeps no span verbatim (it aggregates them, :mod:`sim.spans`).  A capture
runs the scenario again with a span sink that keeps only what was asked for:

* :func:`capture_window` -- every span overlapping ``[start, end]`` simulated seconds;
* :func:`capture_item` -- the trace(s) of one ledger-tracked item, by its key (a command's
  intent): the flows the model started for it (``Driver.spawn(..., item=...)``) and every
  server flow that handled their requests;
* :func:`trace_of_item` -- the same for "the first item of ``kind`` that ended in
  ``state`` (for ``reason``)": a first run finds the item (its final state is known only
  when the run is summarised), a second run on the same seed keeps its trace.  Runs are
  deterministic, so the trace ids the first run linked to the item are the second run's
  too; the capture checks that they are.

How the link from item to trace is made, and what it does not cover: the model names the
item when it starts the item's flow (the only place that knows both), and the driver hands
that flow's trace id to the capture.  Work done for the item later by a long-lived loop (an
outbox relay publishing the command, a consumer) belongs to that loop's own traces and is
not linked.

The capture reaches the kernel the twin builds through :func:`sim.spans.capturing`; it
changes no event, draw or figure of the run, so the result body is the ordinary one.  A
ceiling (``max_spans``) bounds what is kept: a capture that would keep more raises a
:class:`TracingError` saying how many spans there were and what to narrow.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sim.errors import SimError
from sim.ledger import FinalState, Ledger
from sim.spans import Span, capturing

if TYPE_CHECKING:
    from sim.kernel import Kernel
    from sim.twin import Twin

__all__ = [
    "DEFAULT_MAX_SPANS",
    "Trace",
    "TracedItem",
    "TracingError",
    "capture_item",
    "capture_window",
    "find_item",
    "select_variant",
    "trace_of_item",
]

DEFAULT_MAX_SPANS = 100_000
"""Spans a capture keeps at most unless told otherwise (about 20 MB of Chrome trace JSON)."""

STATES = tuple(state.value for state in FinalState)
"""The final states an item can be asked for (``in_flight``: not settled when the run ended)."""


class TracingError(SimError):
    """A capture cannot be made as asked: unknown variant, kind or state, too many spans, a diverging rerun."""


@dataclass(frozen=True, slots=True)
class TracedItem:
    """A ledger-tracked item, how it ended, and the traces of the flows started for it."""

    kind: str
    key: Hashable
    state: str  # a FinalState value
    reason: str
    trace_ids: tuple[int, ...]  # in the order the flows started

    def describe(self) -> str:
        """``commands intent-17 (failed: orphaned_pending)``."""
        ending = f"{self.state}: {self.reason}" if self.reason else self.state
        return f"{self.kind} {self.key} ({ending})"


@dataclass(frozen=True, slots=True)
class Trace:
    """The spans a capture kept, ordered by start (ties by span id), and what was captured.

    ``window`` is set for a window capture, ``item`` for an item's trace.  Spans carry
    integer ids; :func:`sim.spans.trace_hex` and :func:`sim.spans.span_hex` render them.
    """

    scenario: str
    variant: str | None
    seed: int
    spans: tuple[Span, ...]
    window: tuple[float, float] | None = None
    item: TracedItem | None = None

    @property
    def trace_ids(self) -> tuple[int, ...]:
        """The traces the spans belong to, in order of first appearance."""
        return tuple(dict.fromkeys(span.trace_id for span in self.spans))

    @property
    def components(self) -> tuple[str, ...]:
        """Every origin and target, in order of first appearance (callers before callees)."""
        seen: dict[str, None] = {}
        for span in self.spans:
            seen.setdefault(span.origin)
            seen.setdefault(span.target)
        return tuple(seen)

    @property
    def start(self) -> float | None:
        """The first span's start (None: no span)."""
        return self.spans[0].start if self.spans else None

    @property
    def end(self) -> float | None:
        """The last span's end (None: no span)."""
        return max(span.end for span in self.spans) if self.spans else None

    def describe(self) -> str:
        """One line: what was captured and how much, e.g. for a report's caption."""
        subject = self.item.describe() if self.item is not None else "spans"
        if self.window is not None:
            subject += f" in {self.window[0]:g}s..{self.window[1]:g}s"
        where = f"{self.scenario}" + (f" [{self.variant}]" if self.variant else "") + f" seed {self.seed}"
        if not self.spans:
            return f"{subject}, {where}: no span"
        start, end = self.start, self.end
        assert start is not None and end is not None
        return (
            f"{subject}, {where}: {len(self.spans)} spans in {len(self.trace_ids)} trace(s) across "
            f"{len(self.components)} components, {start:.3f}s to {end:.3f}s"
        )


# -- the public API ----------------------------------------------------------------------------


def capture_window(
    twin: Twin,
    scenario: Any,
    seed: int | None = None,
    *,
    variant: str | None = None,
    start: float,
    end: float,
    max_spans: int = DEFAULT_MAX_SPANS,
) -> Trace:
    """Run ``variant`` of ``scenario`` on ``seed`` and keep every span overlapping ``[start, end]``.

    ``scenario``: a path, a loaded scenario or a mapping (as :func:`sim.api.run` takes);
    ``seed`` defaults to the scenario's; ``variant`` to its first declared variant.  A
    span overlaps when it ends at or after ``start`` and starts at or before ``end`` (a span
    still open when the run ends was never recorded).  Raises :class:`TracingError` when the
    window holds more than ``max_spans`` spans.
    """
    if not start <= end:
        raise TracingError(f"the window must start before it ends (got {start:g}s..{end:g}s)")
    chosen, name, label, seed = select_variant(twin, scenario, seed, variant)
    capture = _Capture(max_spans, window=(start, end))
    _run(twin, chosen, seed, capture)
    capture.check_ceiling(f"the window {start:g}s..{end:g}s", "narrow the window")
    return Trace(name, label, seed, capture.spans(), window=(start, end))


def find_item(
    twin: Twin,
    scenario: Any,
    seed: int | None = None,
    *,
    variant: str | None = None,
    kind: str,
    state: str,
    reason: str | None = None,
) -> TracedItem | None:
    """Run once and return the first item of ``kind`` (in the order items were tracked) that
    ended in ``state`` (a :class:`~sim.ledger.FinalState` value; for ``reason`` if given),
    or None when no item did.  Raises :class:`TracingError` for an unknown state or a kind
    the run tracks no item of.
    """
    _check_state(state)
    chosen, _, _, seed = select_variant(twin, scenario, seed, variant)
    capture = _Capture(0, find_kind=kind)
    _run(twin, chosen, seed, capture)
    return capture.first(kind, state, reason)


def capture_item(
    twin: Twin,
    scenario: Any,
    seed: int | None = None,
    *,
    variant: str | None = None,
    kind: str,
    key: Hashable,
    max_spans: int = DEFAULT_MAX_SPANS,
) -> Trace:
    """Run and keep the trace(s) of the item ``key`` of ``kind`` (e.g. ``"commands"``,
    ``"intent-17"``): every span of the traces its flows started.  Raises
    :class:`TracingError` when the run tracks no such item or its trace exceeds ``max_spans``.
    """
    chosen, name, label, seed = select_variant(twin, scenario, seed, variant)
    capture = _Capture(max_spans, find_kind=kind, item=(kind, key))
    _run(twin, chosen, seed, capture)
    found = capture.item(kind, key)
    if found is None:
        raise TracingError(f"no {kind} item {key!r} was tracked in {name} (seed {seed})")
    capture.check_ceiling(f"the trace of {found.describe()}", "raise max_spans")
    return Trace(name, label, seed, capture.spans(), item=found)


def trace_of_item(
    twin: Twin,
    scenario: Any,
    seed: int | None = None,
    *,
    variant: str | None = None,
    kind: str,
    state: str,
    reason: str | None = None,
    max_spans: int = DEFAULT_MAX_SPANS,
) -> Trace | None:
    """The trace of one affected request: the first item of ``kind`` that ended in ``state``
    (for ``reason`` if given), its spans ordered by start; None when no item ended so.

    Two runs of ``variant`` on ``seed``: the first finds the item, the second keeps its
    trace (see the module docstring).  E.g. ``trace_of_item(twin, "scenarios/c1-outbox.yaml",
    7, variant="as-designed", kind="commands", state="failed", reason="orphaned_pending")``.
    Raises :class:`TracingError` for an unknown variant, state or kind.
    """
    found = find_item(twin, scenario, seed, variant=variant, kind=kind, state=state, reason=reason)
    if found is None:
        return None
    trace = capture_item(twin, scenario, seed, variant=variant, kind=kind, key=found.key, max_spans=max_spans)
    if trace.item is None or trace.item.trace_ids != found.trace_ids:
        raise TracingError(f"the rerun of {found.describe()} took other traces: the run is not deterministic")
    return trace


# -- running -----------------------------------------------------------------------------------


def select_variant(
    twin: Twin, scenario: Any, seed: int | None, variant: str | None
) -> tuple[Any, str, str | None, int]:
    """Load ``scenario`` and pick what to run: the variant's scenario, the scenario's name,
    the variant's name (None: the scenario has no variants) and the seed (default: the
    scenario's).  ``variant`` None picks the first declared variant."""
    from sim.api import load_checked  # the API module loads the CLI's helpers: only when capturing
    from sim.variants import Experiment, variant_scenarios

    loaded = load_checked(twin, scenario)
    name = str(getattr(loaded, "name", "scenario"))
    if seed is None:
        seed = int(getattr(loaded, "seed", 0))
    if isinstance(loaded, Experiment) and loaded.variants:
        variants = variant_scenarios(loaded)
        label = next(iter(variants)) if variant is None else variant
        if label not in variants:
            raise TracingError(f"{name} has no variant {label!r} (variants: {', '.join(variants)})")
        return variants[label], name, label, seed
    if variant is not None:
        raise TracingError(f"{name} has no variants, so no variant {variant!r}: leave the variant out")
    return loaded, name, None, seed


def _run(twin: Twin, scenario: Any, seed: int, capture: _Capture) -> None:
    with capturing(capture):
        twin.run(scenario, seed)
    if capture.kernel is None:
        raise TracingError(f"twin {twin.name} built no kernel, so there was nothing to capture")


def _check_state(state: str) -> None:
    if state not in STATES:
        raise TracingError(f"unknown final state {state!r} (expected one of: {', '.join(STATES)})")


@dataclass
class _Notes:
    """What a capture learns about tracked items: the order they entered, how they ended, their traces."""

    kind: str | None
    order: list[Hashable] = field(default_factory=list)
    kinds: dict[str, None] = field(default_factory=dict)
    settled: dict[Hashable, tuple[str, str]] = field(default_factory=dict)
    traces: dict[Hashable, list[int]] = field(default_factory=dict)


class _WatchedLedger(Ledger):
    """The run's ledger, telling the capture which items of its kind entered and how they ended.

    A result's verdicts are settled into a copy of the run's ledger, so copies are watched too.
    """

    def __init__(self, notes: _Notes) -> None:
        super().__init__()
        self._notes = notes

    def track(self, kind: str, item: Any) -> None:
        """Register the item (see :meth:`Ledger.track`) and note it when it is of the watched kind."""
        super().track(kind, item)
        notes = self._notes
        notes.kinds.setdefault(kind)
        if kind == notes.kind:
            notes.order.append(item)

    def settle(self, kind: str, item: Any, state: FinalState, reason: str = "") -> None:
        """Settle the item (see :meth:`Ledger.settle`) and note its first final state."""
        notes = self._notes
        if kind == notes.kind and item not in notes.settled:
            notes.settled[item] = (state.value, reason)
        super().settle(kind, item, state, reason)

    def copy(self) -> Ledger:
        """An independent copy that is watched as well."""
        plain = super().copy()
        watched = _WatchedLedger(self._notes)
        vars(watched).update(vars(plain))
        watched._notes = self._notes
        return watched


class _Capture:
    """Hooks into one kernel: a span sink for a window or a set of traces, and the item notes."""

    def __init__(
        self,
        max_spans: int,
        *,
        window: tuple[float, float] | None = None,
        find_kind: str | None = None,
        item: tuple[str, Hashable] | None = None,
    ) -> None:
        if max_spans < 0:
            raise TracingError(f"max_spans must be 0 or more (got {max_spans})")
        self.max_spans = max_spans
        self.window = window
        self.notes = _Notes(find_kind)
        self.wanted_item = item
        self.wanted_traces: set[int] = set()
        self.kernel: Kernel | None = None
        self.kept: list[Span] = []
        self.seen = 0  # spans that matched, kept or not

    def attach(self, kernel: Kernel) -> None:
        """Hook into ``kernel``, the one kernel of the captured run."""
        if self.kernel is not None:
            raise TracingError("a capture runs one scenario: a second kernel was built inside it")
        self.kernel = kernel
        if self.notes.kind is not None:
            kernel.ledger = _WatchedLedger(self.notes)
            kernel.driver.on_item = self._on_item
        if self.window is not None:
            kernel.spans.sink = self._window_sink
        elif self.wanted_item is not None:
            kernel.spans.sink = self._trace_sink

    def _on_item(self, kind: str, key: Hashable, trace: int) -> None:
        if kind != self.notes.kind:
            return
        self.notes.traces.setdefault(key, []).append(trace)
        if self.wanted_item is not None and key == self.wanted_item[1]:
            self.wanted_traces.add(trace)

    def _keep(self, span: Span) -> None:
        self.seen += 1
        if len(self.kept) < self.max_spans:
            self.kept.append(span)

    def _window_sink(
        self, origin: str, target: str, operation: str, start: float, end: float, outcome: str, *ids: int
    ) -> None:
        window = self.window
        assert window is not None
        if end >= window[0] and start <= window[1]:
            self._keep(Span(origin, target, operation, start, end, outcome, *ids))

    def _trace_sink(
        self, origin: str, target: str, operation: str, start: float, end: float, outcome: str, *ids: int
    ) -> None:
        if ids[0] in self.wanted_traces:
            self._keep(Span(origin, target, operation, start, end, outcome, *ids))

    def check_ceiling(self, what: str, advice: str) -> None:
        """Raise when more spans matched than the ceiling let through."""
        if self.seen > self.max_spans:
            raise TracingError(
                f"{what} holds {self.seen:,} spans, more than the ceiling of {self.max_spans:,}; "
                f"{advice} or raise the ceiling (max_spans, --max-spans)"
            )

    def spans(self) -> tuple[Span, ...]:
        """The kept spans ordered by start, then span id."""
        return tuple(sorted(self.kept, key=lambda span: (span.start, span.span_id)))

    def _known_kind(self, kind: str) -> None:
        if kind not in self.notes.kinds:
            known = ", ".join(sorted(self.notes.kinds)) or "none"
            raise TracingError(f"the run tracks no item of kind {kind!r} (tracked kinds: {known})")

    def item(self, kind: str, key: Hashable) -> TracedItem | None:
        """The item ``key`` as this run saw it, or None when it was not tracked."""
        self._known_kind(kind)
        if key not in self.notes.traces and key not in self.notes.settled and key not in self.notes.order:
            return None
        state, reason = self.notes.settled.get(key, (FinalState.IN_FLIGHT.value, ""))
        return TracedItem(kind, key, state, reason, tuple(self.notes.traces.get(key, ())))

    def first(self, kind: str, state: str, reason: str | None) -> TracedItem | None:
        """The first tracked item of ``kind`` that ended in ``state`` (for ``reason``)."""
        self._known_kind(kind)
        settled = self.notes.settled
        in_flight = (FinalState.IN_FLIGHT.value, "")
        for key in self.notes.order:
            ended, why = settled.get(key, in_flight)
            if ended == state and (reason is None or why == reason):
                return TracedItem(kind, key, ended, why, tuple(self.notes.traces.get(key, ())))
        return None
