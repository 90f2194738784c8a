"""sim.actor + sim.driver: requests over the network, timeouts, concurrency, crashes,
injected errors, nested logic inside handlers, spans, and the direct driver."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from sim.actor import Actor
from sim.distributions import Exponential, constant
from sim.driver import run_direct
from sim.errors import ModelDefinitionError
from sim.kernel import Kernel
from sim.ops import Now, Operation, OperationTimeout, OpError, Rejected, Sleep, Unavailable

ONE_WAY = 0.0004  # same zone, default links: access + access
RTT = 2 * ONE_WAY
SERVICE = 0.010


@dataclass(frozen=True, slots=True)
class Get(Operation):
    target: str
    key: str = ""
    timeout: float | None = None


@dataclass(frozen=True, slots=True)
class Fail(Operation):
    target: str
    reason: str = "constraint"
    timeout: float | None = None


class Store(Actor):
    """Answers Get with ("value", key); Fail raises Rejected."""

    def __init__(self, kernel: Kernel, name: str, **kwargs: Any) -> None:
        kwargs.setdefault("zone", "z1")
        kwargs.setdefault("region", "r1")
        super().__init__(kernel, name, **kwargs)
        self.cache: dict[str, int] = {}
        self.restarts = 0

    def handle(self, op: Operation, origin: str) -> Any:
        if isinstance(op, Fail):
            raise Rejected(op.reason, "refused by handler")
        if isinstance(op, Get):
            self.cache[op.key] = self.cache.get(op.key, 0) + 1
            return ("value", op.key)
        return super().handle(op, origin)

    def on_crash(self) -> None:
        self.cache.clear()

    def on_restart(self) -> None:
        self.restarts += 1


class Front(Actor):
    """A service whose handler runs logic that calls ``backend`` (holds the worker)."""

    def __init__(self, kernel: Kernel, name: str, backend: str, **kwargs: Any) -> None:
        super().__init__(kernel, name, zone="z1", region="r1", **kwargs)
        self.backend = backend
        self.closed = 0

    def handle(self, op: Operation, origin: str) -> Any:
        return self._logic(op)

    def _logic(self, op: Get):
        try:
            try:
                value = yield Get(self.backend, op.key, timeout=op.timeout)
            except OpError as error:
                return ("fallback", error.reason)
            started = yield Now()
            yield Sleep(0.001)  # some local work after the call
            return ("via-front", value, started)
        except GeneratorExit:
            self.closed += 1
            raise


def kernel_with_client(**kwargs: Any) -> Kernel:
    kernel = Kernel(seed=1, **kwargs)
    kernel.network.add_node("client", zone="z1", region="r1")
    return kernel


def submit(kernel: Kernel, op: Operation, *, at: float = 0.0, origin: str = "client") -> dict[str, Any]:
    """Run ``yield op`` from ``origin`` starting at ``at``; the record gets outcome and time."""
    record: dict[str, Any] = {}

    def logic():
        if at:
            yield Sleep(at)
        return (yield op)

    def done(outcome: Any) -> None:
        record["outcome"] = outcome
        record["t"] = kernel.now

    kernel.driver.spawn(logic(), origin, done)
    return record


# -- basic request/reply ---------------------------------------------------------------------


def test_reply_after_exactly_rtt_plus_service_time():
    kernel = kernel_with_client()
    Store(kernel, "db", service_time=constant(SERVICE))
    record = submit(kernel, Get("db", "k"))
    kernel.run(1)
    assert record["outcome"] == ("value", "k")
    assert record["t"] == pytest.approx(RTT + SERVICE, abs=1e-12)


def test_cross_region_reply_time():
    kernel = kernel_with_client()
    Store(kernel, "dr", zone="w1", region="us-west-2", service_time=constant(SERVICE))
    record = submit(kernel, Get("dr", "k"), at=1.0)
    kernel.run(5)
    one_way = 0.0002 + 0.0003 + 0.030 + 0.0003 + 0.0002
    assert record["t"] == pytest.approx(1.0 + 2 * one_way + SERVICE, abs=1e-12)


def test_handler_error_reaches_caller_as_rejected():
    kernel = kernel_with_client()
    db = Store(kernel, "db", service_time=constant(SERVICE))
    record = submit(kernel, Fail("db", "unique_violation"))
    kernel.run(1)
    assert isinstance(record["outcome"], Rejected)
    assert record["outcome"].reason == "unique_violation"
    assert record["outcome"].detail == "refused by handler"
    assert str(record["outcome"]) == "unique_violation: refused by handler"
    assert record["t"] == pytest.approx(RTT + SERVICE, abs=1e-12)
    assert db.served == 1


@pytest.mark.parametrize("cls", [OpError, OperationTimeout, Unavailable, Rejected])
def test_op_errors_survive_re_creation_from_args_and_pickling(cls):
    # simpy throws type(e)(*e.args) into the waiting process; process pools pickle results
    import pickle

    error = cls("throttled", "429 from gateway")
    for copy in (type(error)(*error.args), pickle.loads(pickle.dumps(error))):
        assert type(copy) is cls
        assert (copy.reason, copy.detail, str(copy)) == ("throttled", "429 from gateway", str(error))
    assert str(cls("timeout")) == "timeout"


def test_unsupported_operation_is_rejected():
    kernel = kernel_with_client()
    Actor(kernel, "bare", zone="z1", region="r1")
    record = submit(kernel, Get("bare"))
    kernel.run(1)
    assert isinstance(record["outcome"], Rejected) and record["outcome"].reason == "unsupported"


def test_unknown_target_is_a_programming_error():
    kernel = kernel_with_client()
    kernel.driver.spawn((lambda: (yield Get("ghost")))(), "client")
    with pytest.raises(ModelDefinitionError, match="ghost"):
        kernel.run(1)


def test_duplicate_actor_name_rejected():
    kernel = kernel_with_client()
    Store(kernel, "db")
    with pytest.raises(ModelDefinitionError):
        Store(kernel, "db")
    with pytest.raises(ValueError, match="concurrency must be >= 1"):
        Store(kernel, "db2", concurrency=0)


# -- timeouts and concurrency ----------------------------------------------------------------


def test_timeout_fires_when_service_is_slower():
    kernel = kernel_with_client()
    db = Store(kernel, "db", service_time=constant(1.0))
    record = submit(kernel, Get("db", "k", timeout=0.5))
    kernel.run(5)
    assert isinstance(record["outcome"], OperationTimeout)
    assert record["outcome"].reason == "timeout"
    assert record["t"] == pytest.approx(0.5, abs=1e-12)
    # the server still did the work; its late reply is ignored
    assert db.served == 1


def test_no_timeout_when_service_is_faster():
    kernel = kernel_with_client()
    Store(kernel, "db", service_time=constant(SERVICE))
    record = submit(kernel, Get("db", "k", timeout=0.5))
    kernel.run(5)
    assert record["outcome"] == ("value", "k")
    assert record["t"] == pytest.approx(RTT + SERVICE, abs=1e-12)


def test_concurrency_one_queues_requests():
    kernel = kernel_with_client()
    Store(kernel, "db", concurrency=1, service_time=constant(SERVICE))
    first, second = submit(kernel, Get("db", "a")), submit(kernel, Get("db", "b"))
    kernel.run(1)
    assert first["t"] == pytest.approx(RTT + SERVICE, abs=1e-12)
    assert second["t"] == pytest.approx(RTT + 2 * SERVICE, abs=1e-12)
    assert second["outcome"] == ("value", "b")


def test_concurrency_two_serves_in_parallel():
    kernel = kernel_with_client()
    db = Store(kernel, "db", concurrency=2, service_time=constant(SERVICE))
    records = [submit(kernel, Get("db", str(i))) for i in range(3)]
    kernel.run(1)
    assert [r["t"] for r in records] == pytest.approx([RTT + SERVICE, RTT + SERVICE, RTT + 2 * SERVICE], abs=1e-12)
    assert db.stats()["served"] == 3 and db.stats()["busy_at_end"] == 0


def test_queue_length_while_backed_up():
    kernel = kernel_with_client()
    db = Store(kernel, "db", concurrency=1, service_time=constant(1.0))
    for i in range(5):
        submit(kernel, Get("db", str(i)))
    kernel.run(0.5)
    assert db.busy == 1 and db.queue_length == 4


# -- crash and restart ----------------------------------------------------------------------


def test_crash_loses_queued_and_in_flight_work_then_restart_serves_again():
    kernel = kernel_with_client()
    db = Store(kernel, "db", concurrency=1, service_time=constant(1.0))
    lost = [submit(kernel, Get("db", str(i), timeout=5.0)) for i in range(3)]
    hanging = submit(kernel, Get("db", "no-deadline"))  # timeout None: waits forever
    kernel.call_later(0.5, db.crash, 2.0)  # down from 0.5 to 2.5
    refused = submit(kernel, Get("db", "while-down", timeout=5.0), at=1.0)
    later = submit(kernel, Get("db", "after", timeout=5.0), at=3.0)
    kernel.run(0.6)
    assert not db.up and db.crashes == 1
    assert db.lost_in_crash == 4  # one being served + three queued
    assert db.cache == {}  # on_crash dropped volatile state
    kernel.run(20)
    # A dying process's sockets close: everyone it owed an answer hears so at once,
    # including the caller with no deadline, who would otherwise hang forever.
    for record in [*lost, hanging]:
        assert isinstance(record["outcome"], Unavailable)
        assert record["outcome"].reason == "connection_reset"
        assert record["t"] == pytest.approx(0.5 + RTT / 2, abs=1e-12)
    assert isinstance(refused["outcome"], Unavailable)
    assert refused["outcome"].reason == "refused"
    assert refused["t"] == pytest.approx(1.0 + RTT, abs=1e-12)
    assert db.up and db.restarts == 1
    assert later["outcome"] == ("value", "after")
    assert later["t"] == pytest.approx(3.0 + RTT + 1.0, abs=1e-12)
    assert db.refused == 1
    assert db.served == 1  # only the post-restart request


def test_crash_while_down_is_a_no_op():
    kernel = kernel_with_client()
    db = Store(kernel, "db")
    db.crash(1.0)
    db.crash(1.0)
    assert db.crashes == 1


# -- injected errors -------------------------------------------------------------------------


def test_error_rate_one_gives_rejected():
    kernel = kernel_with_client()
    db = Store(kernel, "db", service_time=constant(SERVICE))
    db.error_rate = 1.0
    records = [submit(kernel, Get("db", str(i))) for i in range(5)]
    kernel.run(1)
    for record in records:
        assert isinstance(record["outcome"], Rejected)
        assert record["outcome"].reason == "injected_error"
    assert db.cache == {}  # the handler never ran
    assert db.served == 0


def test_partial_error_rate():
    kernel = kernel_with_client()
    db = Store(kernel, "db", concurrency=64)
    db.error_rate = 0.25
    records = [submit(kernel, Get("db", str(i))) for i in range(4000)]
    kernel.run(1)
    failed = sum(isinstance(r["outcome"], Rejected) for r in records)
    assert failed / len(records) == pytest.approx(0.25, abs=0.03)


def test_added_latency_is_extra_service_time():
    kernel = kernel_with_client()
    db = Store(kernel, "db", service_time=constant(SERVICE))
    db.added_latency.append(kernel.sampler(constant(0.2), "test/added"))
    record = submit(kernel, Get("db", "k"))
    kernel.run(1)
    assert record["t"] == pytest.approx(RTT + SERVICE + 0.2, abs=1e-12)


# -- nested logic in a handler --------------------------------------------------------------


def test_handler_logic_calls_another_actor_and_holds_the_worker():
    kernel = kernel_with_client(keep_spans=10)
    back = Store(kernel, "back", service_time=constant(0.1))
    Front(kernel, "front", "back", concurrency=1)
    first, second = submit(kernel, Get("front", "a")), submit(kernel, Get("front", "b"))
    kernel.run(2)
    # front receives at ONE_WAY; calls back (RTT + 0.1); sleeps 1 ms; replies (ONE_WAY)
    one_request = RTT + 0.1 + 0.001
    assert first["outcome"] == ("via-front", ("value", "a"), pytest.approx(ONE_WAY + RTT + 0.1, abs=1e-12))
    assert first["t"] == pytest.approx(ONE_WAY + one_request + ONE_WAY, abs=1e-12)
    # the second waited for the only worker, which was blocked on the backend call
    assert second["t"] == pytest.approx(ONE_WAY + 2 * one_request + ONE_WAY, abs=1e-12)
    assert back.served == 2
    ops = [(s.origin, s.target, s.outcome) for s in kernel.spans.kept]
    assert ops.count(("front", "back", "ok")) == 2
    assert ops.count(("client", "front", "ok")) == 2


def test_handler_logic_catches_backend_error_and_falls_back():
    kernel = kernel_with_client()
    back = Store(kernel, "back", service_time=constant(SERVICE))
    back.error_rate = 1.0
    Front(kernel, "front", "back")
    record = submit(kernel, Get("front", "a"))
    kernel.run(1)
    assert record["outcome"] == ("fallback", "injected_error")
    assert record["t"] == pytest.approx(2 * RTT + SERVICE, abs=1e-12)


def test_crash_while_handler_logic_waits_abandons_it():
    kernel = kernel_with_client()
    Store(kernel, "back", service_time=constant(1.0))
    front = Front(kernel, "front", "back", concurrency=1)
    record = submit(kernel, Get("front", "a", timeout=3.0))
    kernel.call_later(0.5, front.crash, 0.1)  # back up at 0.6, while the backend call is pending
    after = submit(kernel, Get("front", "b", timeout=5.0), at=2.0)
    kernel.run(10)
    assert isinstance(record["outcome"], Unavailable)  # the crash reset the caller's connection
    assert record["outcome"].reason == "connection_reset"
    assert front.closed == 1  # the logic was closed when its call returned
    assert front.served == 1
    assert after["outcome"][0] == "via-front"


# -- spans -----------------------------------------------------------------------------------


def test_spans_record_outcomes():
    kernel = kernel_with_client(keep_spans=100)
    Store(kernel, "db", service_time=constant(SERVICE))
    slow = Store(kernel, "slow", service_time=constant(1.0))
    submit(kernel, Get("db", "ok"))
    submit(kernel, Fail("db", "constraint"))
    submit(kernel, Get("slow", "t", timeout=0.1))
    kernel.run(3)
    kept = {(s.target, s.outcome): s for s in kernel.spans.kept}
    assert set(kept) == {("db", "ok"), ("db", "constraint"), ("slow", "timeout")}
    assert kept[("db", "ok")].operation == "Get"
    assert kept[("db", "ok")].end - kept[("db", "ok")].start == pytest.approx(RTT + SERVICE, abs=1e-12)
    assert kept[("slow", "timeout")].end == pytest.approx(0.1, abs=1e-12)
    assert slow.served == 1
    rows = kernel.spans.summary()
    assert [(r["target"], r["outcome"], r["count"]) for r in rows] == [
        ("db", "constraint", 1),
        ("db", "ok", 1),
        ("slow", "timeout", 1),
    ]


def test_spans_keep_is_bounded_but_aggregates_count_everything():
    kernel = kernel_with_client(keep_spans=3)
    Store(kernel, "db", concurrency=10)
    for i in range(10):
        submit(kernel, Get("db", str(i)))
    kernel.run(1)
    assert len(kernel.spans.kept) == 3
    assert kernel.spans.summary()[0]["count"] == 10


# -- determinism -----------------------------------------------------------------------------


def test_same_seed_same_timeline():
    def run() -> list[float]:
        kernel = kernel_with_client()
        Store(kernel, "db", concurrency=2, service_time=Exponential(mean=0.01))
        records = [submit(kernel, Get("db", str(i)), at=i * 0.003) for i in range(50)]
        kernel.run(5)
        return [r["t"] for r in records]

    first = run()
    assert first == run()
    assert len(set(first)) == 50


# -- the direct driver -----------------------------------------------------------------------


def test_run_direct_sleep_now_and_caught_error():
    calls: list[Operation] = []

    def handle(op: Operation) -> Any:
        calls.append(op)
        if isinstance(op, Fail):
            raise Rejected("down", "db unavailable")
        return {"key": op.key}

    def logic():
        t0 = yield Now()
        yield Sleep(2.0)
        row = yield Get("db", "x")
        try:
            yield Fail("db")
            fallback = None
        except Rejected as error:
            fallback = error.reason
        yield Sleep(0.5)
        t1 = yield Now()
        return (t0, t1, row, fallback)

    result, clock = run_direct(logic(), handle, start=10.0)
    assert result == (10.0, 12.5, {"key": "x"}, "down")
    assert clock == 12.5
    assert [type(op).__name__ for op in calls] == ["Get", "Fail"]  # Sleep/Now never reach handle


def test_run_direct_uncaught_error_propagates():
    def handle(op: Operation) -> Any:
        raise Unavailable("refused")

    def logic():
        yield Get("db")
        return "unreachable"

    with pytest.raises(Unavailable):
        run_direct(logic(), handle)


# -- queueing figures -----------------------------------------------------------------------


def test_queue_figures_of_a_hand_built_sequence():
    # one worker, 1 s per request; sent at 0, 0.5, 0.6 and 3.5, each arriving ONE_WAY later
    kernel = kernel_with_client()
    db = Store(kernel, "db", concurrency=1, service_time=constant(1.0))
    for i, at in enumerate([0.0, 0.5, 0.6, 3.5]):
        submit(kernel, Get("db", str(i)), at=at)
    # served 0-1, 1-2, 2-3, 3.5-4.5 (+ ONE_WAY): waits 0, 0.5, 1.4, 0;
    # queued: 1 on [0.5, 0.6), 2 on [0.6, 1), 1 on [1, 2) -> 0.1 + 0.8 + 1.0 = 1.9 request-seconds
    kernel.run(1.5)
    mid = db.queue_stats()
    assert (mid.arrivals, mid.dequeued, mid.waited) == (3, 2, 1)
    assert mid.queue_area == pytest.approx(0.1 + 0.8 + (1.5 - 1.0 - ONE_WAY), abs=1e-12)  # up to now: 1 still queued
    assert mid.busy_area == pytest.approx(1.5 - ONE_WAY, abs=1e-12)
    kernel.run(5.0)
    end = db.queue_stats()
    assert end.elapsed == 5.0
    assert (end.arrivals, end.dequeued, end.waited) == (4, 4, 2)
    assert end.wait_total == pytest.approx(0.5 + 1.4, abs=1e-12)
    assert end.queue_area == pytest.approx(1.9, abs=1e-12)
    assert end.busy_area == pytest.approx(4.0, abs=1e-12)
    assert end.mean_queue_length == pytest.approx(1.9 / 5.0, abs=1e-12)
    assert end.mean_busy == pytest.approx(0.8, abs=1e-12)
    assert end.utilisation == pytest.approx(0.8, abs=1e-12)
    assert end.mean_wait == pytest.approx(1.9 / 4, abs=1e-12)
    assert end.wait_probability == 0.5
    assert end.arrival_rate == 4 / 5.0
    # the queue is empty at the end, so Little's law holds exactly: L_q = lambda * W_q
    assert end.mean_queue_length == pytest.approx(end.arrival_rate * end.mean_wait, abs=1e-12)
    # a window is a difference of readings
    window = end.since(mid)
    assert (window.start, window.end, window.arrivals, window.dequeued) == (1.5, 5.0, 1, 2)
    assert window.queue_area == pytest.approx(2.0 + ONE_WAY - 1.5, abs=1e-12)
    with pytest.raises(ValueError, match="earlier reading of the same actor"):
        mid.since(end)


def test_queue_figures_with_two_workers():
    kernel = kernel_with_client()
    db = Store(kernel, "db", concurrency=2, service_time=constant(1.0))
    for i, at in enumerate([0.0, 0.0, 0.0, 0.25]):
        submit(kernel, Get("db", str(i)), at=at)
    # two served 0-1 at once; the third waits 1 s, the fourth 0.75 s; both served 1-2
    kernel.run(4.0)
    stats = db.stats()
    assert stats["arrivals"] == 4 and stats["waited"] == 2 and stats["immediate"] == 2
    assert stats["wait_probability"] == 0.5
    assert stats["queue_wait_s"]["count"] == 4
    assert stats["queue_wait_s"]["mean"] == pytest.approx(1.75 / 4, abs=1e-12)
    assert stats["queue_wait_s"]["max"] == pytest.approx(1.0, abs=1e-12)
    assert stats["observed_s"] == 4.0
    assert stats["mean_queue_length"] == pytest.approx(1.75 / 4.0, abs=1e-12)
    assert stats["mean_busy"] == pytest.approx(4.0 / 4.0, abs=1e-12)
    assert stats["utilisation"] == pytest.approx(0.5, abs=1e-12)


def test_stats_read_twice_are_equal_and_change_nothing():
    kernel = kernel_with_client()
    db = Store(kernel, "db", concurrency=1, service_time=constant(1.0))
    for i in range(4):
        submit(kernel, Get("db", str(i)))
    kernel.run(2.5)  # one in service, one queued... mid-step for both integrals
    first, again = db.stats(), db.stats()
    assert first == again
    assert db.queue_stats() == db.queue_stats()
    assert first["queued_at_end"] == 1 and first["busy_at_end"] == 1
    assert first["mean_queue_length"] > 0 and first["utilisation"] > 0
    # reading at a later time does not move the integrals either
    later = db.queue_stats(10.0)
    assert db.queue_stats(2.5) == db.queue_stats()
    assert later.queue_area == pytest.approx(db.queue_stats().queue_area + 1 * 7.5, abs=1e-12)
    kernel.run(3.5)  # #2 ends and #3 starts at 3 + ONE_WAY
    with pytest.raises(ValueError, match="before its last change"):
        db.queue_stats(2.9)  # before the last change


def test_queue_figures_before_any_time_passes():
    kernel = kernel_with_client()
    db = Store(kernel, "db")
    figures = db.stats()
    assert figures["arrivals"] == 0 and figures["queue_wait_s"]["count"] == 0
    assert figures["mean_queue_length"] is None and figures["utilisation"] is None
    assert figures["wait_probability"] is None


def test_crash_mid_queue_drops_waits_and_resets_busy():
    kernel = kernel_with_client()
    db = Store(kernel, "db", concurrency=1, service_time=constant(1.0))
    for i in range(4):
        submit(kernel, Get("db", str(i), timeout=10.0))  # all arrive at ONE_WAY
    kernel.call_later(1.5, db.crash, 1.0)  # down 1.5 - 2.5
    refused = submit(kernel, Get("db", "down", timeout=10.0), at=2.0)
    after = submit(kernel, Get("db", "after", timeout=10.0), at=3.0)
    kernel.run(1.6)
    # #0 served 0-1; #1 taken at 1 after waiting 1 s, killed in service; #2, #3 dropped from the queue
    crashed = db.queue_stats()
    assert (crashed.arrivals, crashed.dequeued, crashed.waited) == (4, 2, 1)
    assert crashed.wait_total == pytest.approx(1.0, abs=1e-12)
    assert crashed.queue_area == pytest.approx(3 * 1.0 + 2 * (1.5 - 1.0 - ONE_WAY), abs=1e-12)
    assert crashed.busy_area == pytest.approx(1.5 - ONE_WAY, abs=1e-12)
    assert db.busy == 0 and db.queue_length == 0 and db.lost_in_crash == 3
    kernel.run(5.0)
    assert isinstance(refused["outcome"], Unavailable) and db.refused == 1
    assert after["outcome"] == ("value", "after")
    end = db.queue_stats()
    # the refused request never entered the mailbox; the dropped ones never gave a wait sample
    assert (end.arrivals, end.dequeued, end.waited) == (5, 3, 1)
    assert db.queue_wait.count == 3
    assert end.queue_area == pytest.approx(crashed.queue_area, abs=1e-12)
    assert end.busy_area == pytest.approx(crashed.busy_area + 1.0, abs=1e-12)
    assert end.utilisation == pytest.approx((2.5 - ONE_WAY) / 5.0, abs=1e-12)
