"""The kernel: one simulated world -- clock, random streams, network, actors, bookkeeping.

A :class:`Kernel` wraps a ``simpy.Environment`` (time in seconds) and owns everything a
run shares: named random streams derived from the seed, the network, the registry of
actors, the sans-IO driver, metrics, spans and the ledger.  It knows nothing about what
is being simulated; a model builds its components on top of it.

Garbage collection during a run: the engine's hot path makes no reference cycles (answers
that cross the network carry no traceback; a test holds it to that), so everything a
request allocates is freed by reference counting, and the cyclic collector's passes over
a heap of millions of live objects (the ledger, the tables) find nothing.  A run raises the
collector's first threshold to :data:`_RUN_GC_THRESHOLD` allocations, which makes those
passes rare, and restores the caller's thresholds when it returns.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import simpy

from sim.distributions import Distribution, Sampler, constant
from sim.errors import ModelDefinitionError
from sim.ledger import Ledger
from sim.metrics import Metrics
from sim.network import Network
from sim.rng import RandomStreams
from sim.spans import SpanRecorder, active_capture
from sim.timers import run_until

if TYPE_CHECKING:
    from sim.actor import Actor
    from sim.driver import Driver

__all__ = ["Kernel", "Progress"]

_RUN_GC_THRESHOLD = 100_000  # net allocations between young-generation collections during a run (CPython: 700)

Progress = Callable[[float, int], None]
"""Told, now and then during a run, the simulated seconds reached and the events so far."""

DEFAULT_LINKS: dict[str, Distribution] = {
    "access": constant("0.2ms"),
    "zone": constant("0.3ms"),
    "region": constant("30ms"),
}


class Kernel:
    """Shared state of one run; see the module docstring."""

    def __init__(
        self,
        seed: int,
        *,
        links: Mapping[str, Distribution] | None = None,
        metrics_interval: float = 60.0,
        keep_spans: int = 0,
        start: float = 0.0,
    ) -> None:
        """``start``: the clock's first reading. A model whose early history is computed in
        aggregate (months of backups before the hours that matter) starts the detailed world
        there, so that nothing periodic runs through the months before it."""
        from sim.driver import Driver  # the driver needs the kernel; import late to keep one direction

        if not (start >= 0.0 and start != float("inf")):
            raise ValueError(f"the clock must start at a finite time >= 0 (got {start})")
        self.start = start
        self.env = simpy.Environment(initial_time=start)
        self._event_ids_read = 0
        self.running = False  # inside run(): work started now can start at once, without an event
        self.streams = RandomStreams(seed)
        self.metrics = Metrics(metrics_interval)
        self.ledger = Ledger()
        self.spans = SpanRecorder(keep_spans)
        specs = {**DEFAULT_LINKS, **(links or {})}

        def link_latency(kind: str, link: str) -> Sampler:
            return specs[kind].sampler(self.streams.stream(f"network/link/{link}"))

        self.network = Network(self.env, self.streams.stream, link_latency=link_latency)
        self.actors: dict[str, Actor] = {}
        self.driver: Driver = Driver(self)
        capture = active_capture()  # a trace capture (sim.tracing) wraps this run: let it hook in
        if capture is not None:
            capture.attach(self)

    @property
    def now(self) -> float:
        """Current simulated time in seconds."""
        return self.env.now

    def sampler(self, spec: Distribution, owner: str) -> Sampler:
        """A sampler for ``spec`` drawing from ``owner``'s own random stream."""
        return spec.sampler(self.streams.stream(owner))

    def call_later(self, delay: float, fn: Callable[..., None], *args: Any) -> simpy.Event:
        """Run ``fn(*args)`` after ``delay`` seconds, without a process (one event)."""
        event = self.env.timeout(delay)
        event.callbacks.append(lambda _event: fn(*args))
        return event

    def register(self, actor: Actor, *, zone: str, region: str) -> None:
        """Add ``actor`` to the registry and the network."""
        if actor.name in self.actors:
            raise ModelDefinitionError(f"actor {actor.name!r} registered twice")
        self.actors[actor.name] = actor
        self.network.add_node(actor.name, zone=zone, region=region)

    def run(self, until: float, progress: Progress | None = None, steps: int = 200) -> None:
        """Advance simulated time to ``until`` seconds.

        With ``progress``, the run goes in ``steps`` equal slices and ``progress(now, events)``
        is called after each; stopping between slices changes no result.
        """
        if progress is None:
            self._run_to(until)
            return
        start = self.env.now
        for step in range(1, steps + 1):
            target = start + (until - start) * step / steps
            if target > self.env.now:
                self._run_to(target)
            progress(self.env.now, self.events_processed)

    def _run_to(self, until: float) -> None:
        if not until > self.env.now:
            raise ValueError(f"cannot run until {until}: the clock is already at {self.env.now}")
        self._event_ids_read += 1  # the run's stop takes an event id; it is no model work
        self.running = True
        thresholds = gc.get_threshold()
        gc.set_threshold(max(thresholds[0], _RUN_GC_THRESHOLD), *thresholds[1:])
        try:
            run_until(self.env, until)
        finally:
            gc.set_threshold(*thresholds)
            self.running = False

    @property
    def events_processed(self) -> int:
        """SimPy events scheduled so far (the figure that decides wall time).

        simpy exposes no counter, only its event-id sequence, and reading that takes an id.
        Ids only order events, so taking one shifts no schedule; the ids taken by earlier
        reads are subtracted, so reading this changes no figure, and so are the stop events
        of :meth:`run`, so a run interrupted to look inside counts what a straight run counts.
        """
        taken: int = next(self.env._eid)
        events = taken - self._event_ids_read
        self._event_ids_read += 1
        return events
