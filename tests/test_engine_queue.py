"""sim.queue.Mailbox: FIFO deque that wakes parked consumers with plain events."""

from __future__ import annotations

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
