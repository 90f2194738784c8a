"""sim.queue.Mailbox: FIFO deque that wakes parked consumers with plain events."""

from __future__ import annotations

import pytest
import simpy

from sim.queue import Mailbox


def test_fifo_order_len_bool_iter():
    box: Mailbox[int] = Mailbox(simpy.Environment())
    assert not box and len(box) == 0
    for i in range(5):
        box.put(i)
    assert box and len(box) == 5
    assert list(box) == [0, 1, 2, 3, 4]
    assert [box.pop() for _ in range(3)] == [0, 1, 2]
    assert len(box) == 2


def test_clear_returns_lost_items_and_empties():
    box: Mailbox[str] = Mailbox(simpy.Environment())
    box.put("a")
    box.put("b")
    assert box.clear() == ["a", "b"]
    assert not box
    assert box.clear() == []


def test_put_wakes_only_the_oldest_waiter():
    env = simpy.Environment()
    box: Mailbox[str] = Mailbox(env)
    first, second = box.wait(), box.wait()
    assert not first.triggered and not second.triggered
    box.put("x")
    assert first.triggered and not second.triggered
    box.put("y")
    assert second.triggered


def test_put_without_waiters_schedules_no_event():
    env = simpy.Environment()
    box: Mailbox[int] = Mailbox(env)
    before = len(env._queue)
    for i in range(100):
        box.put(i)
    assert len(env._queue) == before


def test_consumer_process_drains_in_order_with_times():
    env = simpy.Environment()
    box: Mailbox[int] = Mailbox(env)
    got: list[tuple[float, int]] = []

    def consumer():
        while True:
            if not box:
                yield box.wait()
                continue
            item = box.pop()
            got.append((env.now, item))
            yield env.timeout(1.0)

    def producer():
        yield env.timeout(2.0)
        box.put(1)
        box.put(2)
        yield env.timeout(5.0)
        box.put(3)

    env.process(consumer())
    env.process(producer())
    env.run(until=20)
    assert got == [(2.0, 1), (3.0, 2), (7.0, 3)]


# -- waits and the queue-length integral ------------------------------------------------------


def _at(env: simpy.Environment, t: float, fn, *args) -> None:
    event = env.timeout(t - env.now)
    event.callbacks.append(lambda _e: fn(*args))


def test_take_returns_each_items_wait():
    env = simpy.Environment()
    box: Mailbox[str] = Mailbox(env)
    taken: list[tuple[str, float]] = []
    _at(env, 1.0, box.put, "a")
    _at(env, 2.0, box.put, "b")
    _at(env, 2.5, lambda: taken.append(box.take()))
    _at(env, 4.0, lambda: taken.append(box.take()))
    env.run(until=5)
    assert taken == [("a", 1.5), ("b", 2.0)]


def test_the_same_object_put_twice_has_two_arrival_times():
    # the network may deliver a duplicate: the same request object, a little later
    env = simpy.Environment()
    box: Mailbox[str] = Mailbox(env)
    _at(env, 1.0, box.put, "dup")
    _at(env, 1.25, box.put, "dup")
    env.run(until=2)
    assert box.take() == ("dup", 1.0)
    assert box.take() == ("dup", 0.75)


def test_area_is_the_integral_of_the_queue_length():
    env = simpy.Environment()
    box: Mailbox[int] = Mailbox(env)
    _at(env, 1.0, box.put, 1)  # length 1 on [1, 2)
    _at(env, 2.0, box.put, 2)  # length 2 on [2, 4)
    _at(env, 4.0, box.pop)  # length 1 on [4, 7)
    _at(env, 7.0, box.put, 3)  # length 2 on [7, 8)
    _at(env, 8.0, box.clear)  # length 0 from 8 on
    env.run(until=3)
    assert box.area(3.0) == 1.0 + 2.0
    assert box.area(3.0) == 3.0  # reading is pure
    assert box.area(3.5) == 4.0  # a later reading extends the last step
    env.run(until=10)
    assert box.area(10.0) == 1.0 + 4.0 + 3.0 + 2.0
    assert box.created == 0.0
    with pytest.raises(ValueError, match="last changed at 8"):
        box.area(7.5)  # before the last change


def test_clear_forgets_the_arrival_times_too():
    env = simpy.Environment()
    box: Mailbox[str] = Mailbox(env)
    box.put("lost")
    box.clear()
    _at(env, 2.0, box.put, "new")
    env.run(until=3)
    assert box.take() == ("new", 1.0)
