"""The request path's machinery: timers at a delay, deadlines without an event each, workers
as a count, flows started from inside and outside a run (issue 8's design, checked against
what it must keep: order, exact times, the queue's figures)."""

from __future__ import annotations

import gc
from typing import Any

import pytest
import simpy

from sim.actor import Actor
from sim.distributions import constant
from sim.kernel import Kernel
from sim.ops import Operation, OperationTimeout, OpError, Rejected, Sleep
from sim.timers import DueQueue, call_at_delay, run_until
from tests.test_engine_actor_driver import Fail, Get, Store, kernel_with_client, submit

ONE_WAY = 0.0004


def test_timers_keep_simpys_order_with_ordinary_events() -> None:
    env = simpy.Environment()
    seen: list[tuple[str, float]] = []
    call_at_delay(env, 2.0, lambda tag: seen.append((tag, env.now)), "b")
    call_at_delay(env, 1.0, lambda tag: seen.append((tag, env.now)), "a")
    env.timeout(1.0).callbacks.append(lambda _e: seen.append(("timeout", env.now)))  # same time, later id
    call_at_delay(env, 1.0, lambda tag: seen.append((tag, env.now)), "a2")
    env.run()
    assert seen == [("a", 1.0), ("timeout", 1.0), ("a2", 1.0), ("b", 2.0)]
    with pytest.raises(ValueError, match="negative"):
        call_at_delay(env, -1.0, print)


class Hang(Actor):
    """Answers nothing: every request holds a worker forever."""

    def handle(self, op: Operation, origin: str) -> Any:
        return self._forever()

    def _forever(self) -> Any:
        yield Sleep(1e9)


@pytest.mark.parametrize("timeout", [0.5, 2.0])
def test_every_unanswered_call_expires_exactly_at_its_deadline(timeout: float) -> None:
    kernel = kernel_with_client()
    Hang(kernel, "stuck", zone="z1", region="r1", concurrency=1000)
    records = [submit(kernel, Get("stuck", str(i), timeout=timeout), at=0.1 * (i + 1)) for i in range(20)]
    kernel.run(10)
    for i, record in enumerate(records):
        assert isinstance(record["outcome"], OperationTimeout)
        assert record["t"] == pytest.approx(0.1 * (i + 1) + timeout, abs=1e-12)


def test_answered_calls_cost_no_deadline_event_each() -> None:
    kernel = kernel_with_client()
    Store(kernel, "db", service_time=constant(0.001), concurrency=64)
    n = 2000
    records = [submit(kernel, Get("db", str(i), timeout=10.0), at=0.005 * (i + 1)) for i in range(n)]
    kernel.run(60)
    assert all(r["outcome"] == ("value", str(r_i)) for r_i, r in enumerate(records))
    # per call: its start (spawned before the run), its sleep, the arrival, the service time and
    # the reply; the deadlines of 2,000 calls answered within milliseconds of a 10 s timeout
    # cost a handful of events between them, not one each
    assert kernel.events_processed <= n * 5 + 20


def test_mixed_timeouts_expire_in_their_own_order() -> None:
    kernel = kernel_with_client()
    Hang(kernel, "stuck", zone="z1", region="r1", concurrency=10)
    long = submit(kernel, Get("stuck", "long", timeout=5.0))
    short = submit(kernel, Get("stuck", "short", timeout=1.0), at=0.5)
    kernel.run(10)
    assert short["t"] == pytest.approx(1.5) and long["t"] == pytest.approx(5.0)


def test_contended_requests_queue_in_order_and_uncontended_ones_start_at_once() -> None:
    kernel = kernel_with_client()
    db = Store(kernel, "db", service_time=constant(1.0), concurrency=2)
    records = [submit(kernel, Get("db", str(i))) for i in range(5)]
    kernel.run(10)
    times = sorted(r["t"] for r in records)
    arrival = ONE_WAY
    # two at a time, in arrival order: done after 1, 1, 2, 2, 3 seconds of service
    assert times == pytest.approx([arrival + s + ONE_WAY for s in (1, 1, 2, 2, 3)], abs=1e-9)
    stats = db.queue_stats()
    assert (stats.arrivals, stats.dequeued, stats.waited) == (5, 5, 3)
    assert stats.wait_total == pytest.approx(1 + 1 + 2)
    assert stats.busy_area == pytest.approx(5.0)  # five seconds of work, whatever the order


def test_a_flow_spawned_during_the_run_starts_at_once_and_one_spawned_before_waits_for_it() -> None:
    kernel = Kernel(seed=1)
    kernel.network.add_node("client", zone="z1", region="r1")
    started: list[float] = []

    def logic() -> Any:
        started.append(kernel.now)
        yield Sleep(0.0)

    kernel.driver.spawn(logic(), "client")
    assert started == []  # not before the run
    kernel.call_later(2.0, lambda: kernel.driver.spawn(logic(), "client"))
    kernel.run(5)
    assert started == [0.0, 2.0]


def test_an_item_added_while_the_queue_expires_does_not_start_a_second_timer() -> None:
    env = simpy.Environment()
    expired: list[tuple[str, float]] = []
    queue: DueQueue[str] = DueQueue(env, lambda item: on_expire(item), lambda item: item.startswith("done"))

    def on_expire(item: str) -> None:
        expired.append((item, env.now))
        if item == "a":
            queue.add(env.now + 1.0, "b")  # a retry falling due later, added from inside the expiry

    queue.add(1.0, "a")
    queue.add(1.5, "done-early")  # settled before it falls due: dropped without an event
    env.run()
    assert expired == [("a", 1.0), ("b", 2.0)]
    # the first timer, then one re-armed for "b": a second timer would be a third event
    assert next(env._eid) == 2


def _trace(env: simpy.Environment, seen: list[tuple[str, float]]) -> None:
    """A mix of processes, timeouts, timers and events at the stop time, urgent and not."""

    def proc(name: str, gap: float) -> Any:
        for _ in range(3):
            yield env.timeout(gap)
            seen.append((name, env.now))

    env.process(proc("p1", 1.0))
    env.process(proc("p2", 1.5))
    call_at_delay(env, 3.0, lambda: seen.append(("timer at stop", env.now)))
    call_at_delay(env, 2.0, lambda: seen.append(("timer", env.now)))
    late = env.event()
    late.callbacks.append(lambda _e: seen.append(("event", env.now)))
    call_at_delay(env, 2.5, late.succeed)


def test_run_until_processes_what_simpys_run_does_in_the_same_order() -> None:
    ours: list[tuple[str, float]] = []
    theirs: list[tuple[str, float]] = []
    env_ours, env_theirs = simpy.Environment(), simpy.Environment()
    _trace(env_ours, ours)
    _trace(env_theirs, theirs)
    for until in (3.0, 4.5, 10.0):  # 3.0 and 4.5: ordinary events due exactly at the stop wait for the next run
        run_until(env_ours, until)
        env_theirs.run(until=until)
        assert ours == theirs
        assert env_ours.now == env_theirs.now == until
    assert ("timer at stop", 3.0) in ours
    with pytest.raises(ValueError, match="greater"):
        run_until(env_ours, 10.0)


def test_run_until_raises_an_undefused_failure_and_can_run_on_afterwards() -> None:
    env = simpy.Environment()
    seen: list[float] = []
    env.timeout(1.0).callbacks.append(lambda _e: seen.append(env.now))
    broken = env.event()
    call_at_delay(env, 0.5, broken.fail, KeyError("boom"))
    with pytest.raises(KeyError, match="boom"):
        run_until(env, 5.0)
    assert env.now == 0.5
    run_until(env, 6.0)  # the first run's stop, still queued, is passed over
    assert seen == [1.0] and env.now == 6.0
    defused = env.event()
    defused.defused = True
    call_at_delay(env, 0.5, defused.fail, KeyError("ignored"))
    run_until(env, 7.0)


class Front(Store):
    """Answers through logic: asks the store to fail, and lets the error end its own logic."""

    def handle(self, op: Operation, origin: str) -> Any:
        return self._relay()

    def _relay(self) -> Any:
        try:
            yield Fail(target="store", timeout=1.0)
        except OpError as error:
            raise Rejected("relayed", str(error)) from None


def test_the_request_path_makes_no_reference_cycles() -> None:
    """Why the kernel may collect rarely during a run: requests, flows and answers (errors
    included, raised by a handler or by logic) are freed by reference counting alone."""
    kernel = kernel_with_client()
    Store(kernel, "store", concurrency=2, service_time=constant(0.01))
    Front(kernel, "front", concurrency=2, service_time=constant(0.01))
    submit(kernel, Get(target="front", timeout=0.5))
    kernel.run(until=1.0)  # first calls build caches once (networkx compiles its decorators), not garbage per request
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        records = [
            submit(kernel, op, at=1.0 + 0.001 * i)
            for i in range(40)
            for op in (Get(target="store", timeout=1.0), Fail(target="store"), Get(target="front", timeout=0.5))
        ]
        kernel.run(until=6.0)
        gc.collect()
        leaked = sorted({type(o).__qualname__ for o in gc.garbage})
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    outcomes = {type(r["outcome"]).__name__ for r in records}
    assert {"Rejected", "tuple"} <= outcomes  # errors from a handler and from logic, and answers
    assert leaked == []
