"""The request path's machinery: timers at a delay, deadlines without an event each, workers
as a count, flows started from inside and outside a run (issue 8's design, checked against
what it must keep: order, exact times, the queue's figures)."""

from __future__ import annotations

from typing import Any

import pytest
import simpy

from sim.actor import Actor
from sim.distributions import constant
from sim.kernel import Kernel
from sim.ops import Operation, OperationTimeout, Sleep
from sim.timers import DueQueue, call_at_delay
from tests.test_engine_actor_driver import Get, Store, kernel_with_client, submit

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
