"""Actors: simulated servers with a mailbox, a concurrency limit and a lifecycle.

An actor receives requests over the network, queues them in its :class:`~sim.queue.Mailbox`,
and serves at most ``concurrency`` at a time (threads, a connection pool).  Each request
holds a worker for a service time drawn from the actor's distribution plus whatever the
handler itself waits for -- a handler may return system logic (a generator), which the
driver runs *inside the worker*, so a slow dependency really does exhaust the pool.

A worker is a count, not a process: a request that finds a worker free starts at once
(its service time is one scheduled callback, none when it is zero, and its logic runs as
a driver flow), and only a request that finds every worker busy waits in the mailbox,
taken the moment a worker finishes.  So an uncontended request costs no event of its own
beyond its service time, and an idle pool costs nothing at all.

Lifecycle: :meth:`Actor.crash` loses volatile state, the queued requests and the work in
flight -- their callers get a connection reset, as when a process dies -- and the actor
refuses connections until it restarts ``restart_after`` seconds later.
Durable state (what a database keeps on disk) is the subclass's business and survives.

Faults attached here: added latency (extra service time), error rate (requests answered
with :class:`~sim.ops.Rejected`), crash/restart.

A :class:`~sim.ops.Ping` (a health check's ``SELECT 1`` or ``PING``) is answered by the
actor itself with :data:`PONG`: it waits for a worker and meets the faults above like any
request, but costs no service time and never reaches :meth:`Actor.handle`.

Queueing figures, so results can be checked against queueing theory (Little's law, Erlang C):
every request a worker takes from the mailbox leaves its queue wait (arrival in
:meth:`Actor.deliver` to the worker's pop) in :attr:`Actor.queue_wait`, a streaming
:class:`~sim.metrics.Histogram`; and the time-averaged queue length and number of busy
workers are exact time integrals of their step functions, updated in O(1) at every change
(put, pop, a worker starting or finishing, a crash clearing both).  :meth:`Actor.queue_stats`
reads them as a :class:`QueueStats` without changing anything; two readings give the
figures of the window between them (:meth:`QueueStats.since`).  A crash drops the queue --
those requests never get a wait sample -- and the busy count; the integrals just follow.
Time the actor spends down counts as time with nothing queued and nothing busy.

Over time, each actor declares the metric ``queue.<name>`` (a :class:`~sim.metrics.PeakSeries`):
the deepest its mailbox got in each interval, for timelines.  It is told the new depth only
where the depth already changes -- a put, the end of a pump, a crash -- so a request that
finds a worker free, the common case, pays nothing for it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Generator
from dataclasses import dataclass
from types import GeneratorType
from typing import TYPE_CHECKING, Any

import numpy as np
import simpy

from sim.distributions import Distribution, Sampler, constant
from sim.driver import Abandoned, Request
from sim.metrics import Histogram
from sim.ops import Logic, Operation, OpError, Ping, Rejected, Unavailable
from sim.queue import Mailbox
from sim.timers import call_at_delay

if TYPE_CHECKING:
    from sim.kernel import Kernel

__all__ = ["PONG", "Actor", "QueueStats", "Request"]

PONG = "PONG"
"""What an actor answers to a :class:`~sim.ops.Ping`."""


@dataclass(frozen=True, slots=True)
class QueueStats:
    """An actor's queueing figures accumulated from ``start`` to ``end`` (see the module docstring).

    The raw fields are totals, so the figures of a window are a difference of two
    readings (:meth:`since`); the properties derive the usual averages from them.
    """

    start: float
    end: float
    concurrency: int
    arrivals: int  # requests accepted into the mailbox
    dequeued: int  # requests a worker took from the mailbox (each gave one wait sample)
    waited: int  # ... of which waited longer than zero
    wait_total: float  # sum of those waits, seconds
    queue_area: float  # integral of the queue length, request-seconds
    busy_area: float  # integral of the busy workers, worker-seconds

    @property
    def elapsed(self) -> float:
        """Seconds covered."""
        return self.end - self.start

    @property
    def arrival_rate(self) -> float | None:
        """Accepted requests per second (lambda), or None over no time."""
        return self.arrivals / self.elapsed if self.elapsed > 0 else None

    @property
    def mean_wait(self) -> float | None:
        """Mean queue wait of the dequeued requests (W_q), or None when none was."""
        return self.wait_total / self.dequeued if self.dequeued else None

    @property
    def wait_probability(self) -> float | None:
        """Share of the dequeued requests that had to wait (Erlang C's P(wait)), or None."""
        return self.waited / self.dequeued if self.dequeued else None

    @property
    def mean_queue_length(self) -> float | None:
        """Time-averaged number of requests waiting (L_q), or None over no time."""
        return self.queue_area / self.elapsed if self.elapsed > 0 else None

    @property
    def mean_busy(self) -> float | None:
        """Time-averaged number of busy workers, or None over no time."""
        return self.busy_area / self.elapsed if self.elapsed > 0 else None

    @property
    def utilisation(self) -> float | None:
        """Mean busy workers over the concurrency limit, or None over no time."""
        busy = self.mean_busy
        return None if busy is None else busy / self.concurrency

    def since(self, earlier: QueueStats) -> QueueStats:
        """The figures of the window from ``earlier`` (a previous reading of the same actor) to this one."""
        if earlier.start != self.start or earlier.end > self.end or earlier.concurrency != self.concurrency:
            raise ValueError("since() needs an earlier reading of the same actor")
        return QueueStats(
            start=earlier.end,
            end=self.end,
            concurrency=self.concurrency,
            arrivals=self.arrivals - earlier.arrivals,
            dequeued=self.dequeued - earlier.dequeued,
            waited=self.waited - earlier.waited,
            wait_total=self.wait_total - earlier.wait_total,
            queue_area=self.queue_area - earlier.queue_area,
            busy_area=self.busy_area - earlier.busy_area,
        )


class Actor:
    """A simulated server; subclasses implement :meth:`handle`."""

    def __init__(
        self,
        kernel: Kernel,
        name: str,
        *,
        zone: str,
        region: str,
        concurrency: int = 1,
        service_time: Distribution | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"{name}: concurrency must be >= 1 (got {concurrency})")
        self.kernel = kernel
        self.name = name
        self.zone = zone
        self.region = region
        self.concurrency = concurrency
        self.rng = kernel.streams.stream(name)
        # injected-error draws get their own stream, so a fault window leaves service times unchanged
        self._fault_rng = kernel.streams.stream(f"{name}/faults")
        self._service = (service_time or constant(0.0)).sampler(self.rng)
        self.mailbox: Mailbox[Request] = Mailbox(kernel.env)
        self._queued = self.mailbox.queued
        # the deepest queue per interval, told only where the queue changes (a put, the pump, a crash)
        depth = f"queue.{name}"
        kernel.metrics.declare((depth, "peak", "requests", f"largest number of requests waiting in {name}'s mailbox"))
        self._depth = kernel.metrics.peak_series(depth)
        self.up = True
        self.epoch = 0
        self.busy = 0
        self.crashes = 0
        self.served = 0
        self.refused = 0
        self.lost_in_crash = 0
        self.arrivals = 0  # requests accepted into the mailbox
        self.waited = 0  # requests taken from the mailbox after a wait > 0
        self._waits = Histogram()  # the queue waits longer than zero, seconds
        self._zero_waits = 0  # ... and how many waited no time at all
        self._busy_area = 0.0  # integral of self.busy from mailbox.created to _busy_changed
        self._busy_changed: float = kernel.env.now
        self.added_latency: list[Sampler] = []
        self.error_rate = 0.0
        self._background: list[Callable[[int], Generator[simpy.Event, Any, None]]] = []
        self._processes: list[simpy.Process] = []
        kernel.register(self, zone=zone, region=region)
        self._serving: dict[int, Request] = {}  # requests a worker holds, in arrival order
        self._tickets = 0
        self._pumping = False  # taking queued requests: a finishing request must not recurse into it

    def background(self, factory: Callable[[int], Generator[simpy.Event, Any, None]]) -> None:
        """Run ``factory(epoch)`` as a long-lived process now and after every restart.

        The process should stop once ``self.epoch`` differs from the epoch it was given
        (:meth:`Driver.drive` raises :class:`Abandoned` for logic it runs); a relay or a
        stream-consumer loop is such a process.
        """
        self._background.append(factory)
        self._start(factory)

    def _start(self, factory: Callable[[int], Generator[simpy.Event, Any, None]]) -> None:
        self._processes = [p for p in self._processes if p.is_alive]
        self._processes.append(self.kernel.env.process(_guarded(factory(self.epoch))))

    # -- what subclasses provide -----------------------------------------------------------
    def handle(self, op: Operation, origin: str) -> Any:
        """Serve ``op``: return a result, raise an :class:`OpError`, or return logic to drive."""
        raise Rejected("unsupported", f"{self.name} does not handle {op.name}")

    def service_time(self, op: Operation) -> float:
        """Seconds of work ``op`` costs this actor before the handler runs."""
        return self._service()

    def on_crash(self) -> None:
        """Drop volatile state (override); the base class already drops queued work."""

    def on_restart(self) -> None:
        """Rebuild volatile state after a restart (override)."""

    # -- receiving -------------------------------------------------------------------------
    def deliver(self, request: Request) -> None:
        """A request arrived from the network."""
        if not self.up:
            self.refused += 1
            self.kernel.driver.reply(self.name, request, Unavailable("refused", f"{self.name} is down"))
            return
        self.arrivals += 1
        if self.busy < self.concurrency and not self._queued:
            self._begin(request, 0.0)  # a free worker takes it at once
        else:
            self.mailbox.put(request)
            self._depth.set(self.kernel.env._now, len(self._queued))

    def _pump(self) -> None:
        """Give queued requests to free workers, oldest first."""
        if self._pumping:
            return  # an outer call is already taking from the queue
        self._pumping = True
        try:
            mailbox, queued = self.mailbox, self._queued
            while queued and self.busy < self.concurrency:
                request, wait = mailbox.take()
                self._begin(request, wait)
        finally:
            self._pumping = False
            self._depth.set(self.kernel.env._now, len(queued))  # once: a fall never raises the peak

    def _begin(self, request: Request, wait: float) -> None:
        """A worker takes ``request`` after ``wait`` seconds in the queue: the service time, then the handler."""
        if wait > 0:
            self._waits.add(wait)
            self.waited += 1
        else:
            self._zero_waits += 1  # most requests: counted, and folded into queue_wait when it is read
        now = self.kernel.env._now
        self._busy_area += self.busy * (now - self._busy_changed)
        self._busy_changed = now
        self.busy += 1
        ticket = self._tickets = self._tickets + 1
        self._serving[ticket] = request
        op = request.op
        delay = 0.0 if isinstance(op, Ping) else self.service_time(op)  # a ping costs no service time
        for added in self.added_latency:
            delay += added()
        if delay > 0:
            call_at_delay(self.kernel.env, delay, self._serve, request, ticket, self.epoch)
        else:
            self._serve(request, ticket, self.epoch)

    def _serve(self, request: Request, ticket: int, epoch: int) -> None:
        """The service time is over: answer, or run the handler's logic inside the worker."""
        if self.epoch != epoch:
            return  # crashed while serving: the work and its reply are lost
        if self.error_rate and self._fault_rng.random() < self.error_rate:
            self.kernel.driver.reply(self.name, request, Rejected("injected_error", f"{self.name} failed"))
            self._finish(ticket)
            return
        op = request.op
        try:
            outcome = PONG if isinstance(op, Ping) else self.handle(op, request.origin)
        except OpError as error:
            outcome = error.with_traceback(None)  # an answer is data: no frames kept alive (and no cycle through them)
        if type(outcome) is GeneratorType:
            done = functools.partial(self._done, request, ticket, epoch)
            logic: Logic[Any] = outcome
            self.kernel.driver.start(logic, self, epoch, done, request)  # the handler continues the trace
        else:
            self._done(request, ticket, epoch, outcome)

    def _done(self, request: Request, ticket: int, epoch: int, outcome: Any) -> None:
        """The handler finished with ``outcome`` (a result or an :class:`OpError`): reply, free the worker."""
        if self.epoch != epoch:
            return
        self.served += 1
        self.kernel.network.send(self.name, request.origin, request.reply, outcome)
        self._finish(ticket)

    def _finish(self, ticket: int) -> None:
        now = self.kernel.env._now
        self._busy_area += self.busy * (now - self._busy_changed)
        self._busy_changed = now
        self.busy -= 1
        del self._serving[ticket]
        if self._queued:
            self._pump()

    # -- faults on work handled in bulk -------------------------------------------------
    def injected_errors(self, n: int) -> np.ndarray | None:
        """Which of ``n`` items handled in bulk (not as requests) the error-rate fault fails.

        Managed services take some traffic as arrays rather than one request each (the
        IoT rule's PutRecords of a fleet's readings); this lets their faults apply there too.
        None when no error-rate fault is active.
        """
        if not self.error_rate:
            return None
        return self._fault_rng.random(n) < self.error_rate

    def injected_delays(self, n: int) -> np.ndarray | None:
        """Added-latency fault delays for ``n`` items handled in bulk, or None when none is active."""
        if not self.added_latency:
            return None
        total = np.zeros(n)
        for added in self.added_latency:
            total += added.many(n)
        return total

    # -- lifecycle -------------------------------------------------------------------------
    def crash(self, restart_after: float) -> None:
        """Fail now, losing queued and in-flight work; come back after ``restart_after`` s."""
        if not self.up:
            return
        self.up = False
        self.epoch += 1
        self.crashes += 1
        # A dying process's sockets close: every caller it owed an answer gets a connection
        # reset (a host or network failure, by contrast, is a partition: callers wait).
        lost = [*self.mailbox.clear(), *self._serving.values()]
        self._depth.set(self.kernel.env._now, 0)
        self.lost_in_crash += len(lost)
        for request in lost:
            self.kernel.driver.reply(self.name, request, Unavailable("connection_reset", f"{self.name} crashed"))
        self._serving.clear()
        now = self.kernel.env._now
        self._busy_area += self.busy * (now - self._busy_changed)
        self._busy_changed = now
        self.busy = 0
        # Work in flight belongs to the dead incarnation: its callbacks find the epoch moved
        # on and stop.  The restart starts with every worker free.
        self.on_crash()
        self.kernel.call_later(restart_after, self._restart)

    def _restart(self) -> None:
        self.up = True
        self.on_restart()
        for factory in self._background:
            self._start(factory)

    @property
    def queue_wait(self) -> Histogram:
        """Seconds from :meth:`deliver` to a worker's pop, one value per request a worker took.

        A new sketch on each reading when some requests waited no time: the zeros are
        counted apart on the hot path and added here, which gives the same sketch as adding
        each one as it came (zeros change neither the sum nor, but for a zero's sign, the
        extremes).
        """
        if not self._zero_waits:
            return self._waits
        view = Histogram(self._waits.accuracy)
        view.merge(self._waits)
        view.add_many(np.zeros(self._zero_waits))
        return view

    @property
    def queue_length(self) -> int:
        """Requests waiting for a worker."""
        return len(self.mailbox)

    def queue_stats(self, now: float | None = None) -> QueueStats:
        """Queueing figures from the actor's creation to ``now`` (default: the current time).

        Reading changes nothing: the integrals are extended to ``now`` locally.  ``now``
        may not precede the actor's last change (a past reading is a :class:`QueueStats`
        you kept).
        """
        if now is None:
            now = self.kernel.env._now
        if now < self._busy_changed:
            raise ValueError(f"{self.name}: cannot read queue stats at {now}, before its last change")
        return QueueStats(
            start=self.mailbox.created,
            end=now,
            concurrency=self.concurrency,
            arrivals=self.arrivals,
            dequeued=self._waits.count + self._zero_waits,
            waited=self.waited,
            wait_total=self._waits.total,
            queue_area=self.mailbox.area(now),
            busy_area=self._busy_area + self.busy * (now - self._busy_changed),
        )

    def stats(self) -> dict[str, Any]:
        """Per-component figures for the result file (queueing figures up to the current time)."""
        queue = self.queue_stats()
        return {
            "served": self.served,
            "refused": self.refused,
            "crashes": self.crashes,
            "lost_in_crash": self.lost_in_crash,
            "queued_at_end": self.queue_length,
            "busy_at_end": self.busy,
            "arrivals": self.arrivals,
            "waited": self.waited,
            "immediate": queue.dequeued - self.waited,
            "wait_probability": queue.wait_probability,
            "queue_wait_s": self.queue_wait.summary(),
            "observed_s": queue.elapsed,
            "mean_queue_length": queue.mean_queue_length,
            "mean_busy": queue.mean_busy,
            "utilisation": queue.utilisation,
        }


def _guarded(process: Generator[simpy.Event, Any, None]) -> Generator[simpy.Event, Any, None]:
    """Let a background process end quietly when its actor crashes under it."""
    try:
        yield from process
    except Abandoned:
        return
