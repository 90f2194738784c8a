"""sim.faults: typed faults on a timeline, applied to actors, network nodes and custom targets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from sim.actor import Actor
from sim.distributions import constant
from sim.faults import ACTOR_FAULTS, NODE_FAULTS, Crash, Fault, FaultTimeline, Latency, Poison
from sim.kernel import Kernel
from sim.ops import Operation, OperationTimeout, Rejected, Sleep, Unavailable

FAULT = TypeAdapter(Fault)
ONE_WAY = 0.0004  # same zone
RTT = 2 * ONE_WAY
CROSS_ZONE_RTT = 2 * 0.001
SERVICE = 0.010


@dataclass(frozen=True, slots=True)
class Ping(Operation):
    target: str
    timeout: float | None = 1.0


class Echo(Actor):
    def handle(self, op: Operation, origin: str) -> Any:
        return "pong"


def setup() -> tuple[Kernel, Echo]:
    kernel = Kernel(seed=1)
    kernel.network.add_node("client", zone="z1", region="r1")
    kernel.network.add_node("far", zone="z2", region="r1")
    db = Echo(kernel, "db", zone="z1", region="r1", service_time=constant(SERVICE))
    return kernel, db


def ping(kernel: Kernel, at: float, target: str = "db", origin: str = "client", timeout: float = 1.0):
    record: dict[str, Any] = {}

    def logic():
        yield Sleep(at)
        return (yield Ping(target, timeout))

    def done(outcome: Any) -> None:
        record.update(outcome=outcome, t=kernel.now)

    kernel.driver.spawn(logic(), origin, done)
    return record


def faults(*specs: dict[str, Any]) -> list[Any]:
    return [FAULT.validate_python(spec) for spec in specs]


def test_fault_specs_parse_durations_and_aliases():
    latency, crash, poison = faults(
        {"kind": "latency", "target": "db", "at": "10m", "for": "5m", "add": "10s"},
        {"kind": "crash", "target": "db", "at": "20m"},
        {"kind": "poison", "target": "producer", "at": 0, "count": 3},
    )
    assert isinstance(latency, Latency) and latency.at == 600.0 and latency.for_ == 300.0
    assert latency.until == 900.0 and latency.add.mean() == 10.0
    assert isinstance(crash, Crash) and crash.restart_after == 30.0 and crash.until is None
    assert isinstance(poison, Poison) and poison.count == 3 and poison.schema_version == 99
    assert "crash" in ACTOR_FAULTS and "crash" not in NODE_FAULTS and "partition" in NODE_FAULTS


@pytest.mark.parametrize(
    "spec",
    [
        {"kind": "meteor", "target": "db", "at": 0},
        {"kind": "latency", "target": "db", "at": 0, "add": "1s"},  # missing for
        {"kind": "latency", "target": "db", "at": 0, "for": 0, "add": "1s"},  # zero duration
        {"kind": "error_rate", "target": "db", "at": 0, "for": "1m", "rate": 1.5},
        {"kind": "error_rate", "target": "db", "at": 0, "for": "1m", "rate": 0},
        {"kind": "crash", "target": "db", "at": -1},
        {"kind": "crash", "target": "db", "at": 0, "restart_after": 0},
        {"kind": "crash", "target": "db", "at": 0, "bogus": 1},
        {"kind": "poison", "target": "p", "at": 0, "count": 0},
    ],
)
def test_invalid_fault_specs_rejected(spec):
    with pytest.raises(ValidationError):
        FAULT.validate_python(spec)


def test_latency_on_actor_for_a_window():
    kernel, db = setup()
    timeline = FaultTimeline(
        kernel, faults({"kind": "latency", "target": "db", "at": "10s", "for": "5s", "add": "300ms"}), {}
    )
    before, during, after = ping(kernel, 5.0), ping(kernel, 12.0), ping(kernel, 20.0)
    kernel.run(11)
    assert len(db.added_latency) == 1
    kernel.run(30)
    assert db.added_latency == []
    assert before["t"] == pytest.approx(5.0 + RTT + SERVICE, abs=1e-9)
    assert during["t"] == pytest.approx(12.0 + RTT + SERVICE + 0.3, abs=1e-9)
    assert after["t"] == pytest.approx(20.0 + RTT + SERVICE, abs=1e-9)
    assert timeline.log == [{"kind": "latency", "target": "db", "start": 10.0, "end": 15.0}]


def test_latency_on_network_node_for_a_window():
    kernel, _ = setup()
    FaultTimeline(kernel, faults({"kind": "latency", "target": "far", "at": 1, "for": 1, "add": "1s"}), {})
    net = kernel.network
    kernel.run(1.5)
    assert net.delay("client", "far") == pytest.approx(0.001 + 1.0, abs=1e-12)
    kernel.run(3)
    assert net.delay("client", "far") == pytest.approx(0.001, abs=1e-12)


def test_crash_at_and_restart_after():
    kernel, db = setup()
    timeline = FaultTimeline(kernel, faults({"kind": "crash", "target": "db", "at": "10s", "restart_after": "5s"}), {})
    refused, served = ping(kernel, 12.0), ping(kernel, 16.0)
    kernel.run(9.99)
    assert db.up and db.crashes == 0
    kernel.run(10.01)
    assert not db.up and db.crashes == 1
    kernel.run(14.99)
    assert not db.up
    kernel.run(15.01)
    assert db.up
    kernel.run(20)
    assert isinstance(refused["outcome"], Unavailable)
    assert served["outcome"] == "pong"
    assert timeline.log == [{"kind": "crash", "target": "db", "start": 10.0, "end": 10.0}]


def test_partition_window():
    kernel, _ = setup()
    FaultTimeline(kernel, faults({"kind": "partition", "target": "z2", "at": 10, "for": 5}), {})
    before = ping(kernel, 5.0, origin="far")
    during = ping(kernel, 12.0, origin="far", timeout=1.0)
    after = ping(kernel, 16.0, origin="far")
    local = ping(kernel, 12.0, origin="client")  # same side as db: unaffected
    kernel.run(30)
    assert before["outcome"] == "pong"
    assert isinstance(during["outcome"], OperationTimeout)
    assert during["t"] == pytest.approx(13.0, abs=1e-9)
    assert after["outcome"] == "pong"
    assert after["t"] == pytest.approx(16.0 + CROSS_ZONE_RTT + SERVICE, abs=1e-9)
    assert local["outcome"] == "pong"
    assert kernel.network.reachable("far", "db")


def test_partition_with_explicit_other_side():
    kernel, _ = setup()
    FaultTimeline(kernel, faults({"kind": "partition", "target": "far", "at": 1, "for": 5, "other": ["client"]}), {})
    kernel.run(2)
    assert not kernel.network.reachable("far", "client")
    assert kernel.network.reachable("far", "db")


def test_error_rate_window_and_overlap():
    kernel, db = setup()
    FaultTimeline(
        kernel,
        faults(
            {"kind": "error_rate", "target": "db", "at": 10, "for": 10, "rate": 0.5},
            {"kind": "error_rate", "target": "db", "at": 15, "for": 10, "rate": 0.5},
        ),
        {},
    )
    rejected_at_17 = ping(kernel, 17.0)
    kernel.run(12)
    assert db.error_rate == pytest.approx(0.5)
    kernel.run(17.5)
    assert db.error_rate == pytest.approx(1.0)
    kernel.run(22)
    assert db.error_rate == pytest.approx(0.5)
    kernel.run(30)
    assert db.error_rate == 0.0
    assert isinstance(rejected_at_17["outcome"], Rejected)
    assert rejected_at_17["outcome"].reason == "injected_error"


@pytest.mark.parametrize(
    ("kind", "attribute"), [("message_loss", "loss"), ("duplication", "duplication"), ("reordering", "reorder")]
)
def test_message_fault_windows(kind, attribute):
    kernel, _ = setup()
    FaultTimeline(kernel, faults({"kind": kind, "target": "far", "at": 1, "for": 2, "probability": 1.0}), {})
    kernel.run(2)
    assert getattr(kernel.network.faults_of("far"), attribute) == 1.0
    kernel.run(4)
    assert getattr(kernel.network.faults_of("far"), attribute) == 0.0
    assert not kernel.network.faults_of("far").active


def test_message_loss_window_makes_callers_time_out():
    kernel, _ = setup()
    FaultTimeline(kernel, faults({"kind": "message_loss", "target": "db", "at": 1, "for": 2, "probability": 1}), {})
    during, after = ping(kernel, 1.5, timeout=0.5), ping(kernel, 3.5)
    kernel.run(5)
    assert isinstance(during["outcome"], OperationTimeout)
    assert after["outcome"] == "pong"


class Producer:
    """A model component that interprets poison (and a timed fault kind of its own)."""

    fault_kinds = frozenset({"poison", "latency"})

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.injected: list[tuple[float, Any]] = []
        self.ended: list[float] = []

    def inject(self, fault: Any):
        self.injected.append((self.kernel.now, fault))
        if fault.kind == "latency":
            return lambda: self.ended.append(self.kernel.now)
        return None


def test_custom_target_receives_poison():
    kernel, _ = setup()
    producer = Producer(kernel)
    timeline = FaultTimeline(
        kernel,
        faults({"kind": "poison", "target": "meter-fleet", "at": "2m", "count": 3, "schema_version": 7}),
        {"meter-fleet": producer},
    )
    kernel.run(119)
    assert producer.injected == []
    kernel.run(121)
    assert len(producer.injected) == 1
    when, fault = producer.injected[0]
    assert when == 120.0 and fault.kind == "poison" and fault.count == 3 and fault.schema_version == 7
    assert timeline.log == [{"kind": "poison", "target": "meter-fleet", "start": 120.0, "end": 120.0}]


def test_custom_target_ender_called_at_window_end():
    kernel, _ = setup()
    producer = Producer(kernel)
    FaultTimeline(
        kernel,
        faults({"kind": "latency", "target": "meter-fleet", "at": 1, "for": 4, "add": 1}),
        {"meter-fleet": producer},
    )
    kernel.run(10)
    assert [t for t, _ in producer.injected] == [1.0]
    assert producer.ended == [5.0]


def test_custom_target_only_takes_its_own_kinds():
    kernel, db = setup()
    producer = Producer(kernel)
    producer.fault_kinds = frozenset({"poison"})
    FaultTimeline(kernel, faults({"kind": "crash", "target": "db", "at": 1, "restart_after": 1}), {"db": producer})
    kernel.run(1.5)
    assert producer.injected == []
    assert not db.up


def test_faults_start_at_their_own_time_regardless_of_list_order():
    kernel, db = setup()
    timeline = FaultTimeline(
        kernel,
        faults(
            {"kind": "crash", "target": "db", "at": 5, "restart_after": 1},
            {"kind": "crash", "target": "db", "at": 0, "restart_after": 1},
        ),
        {},
    )
    kernel.run(10)
    assert [entry["start"] for entry in timeline.log] == [0.0, 5.0]
    assert db.crashes == 2


def test_overlapping_windows_return_exactly_to_zero():
    # 0.1 + 0.2 - 0.1 - 0.2 is 2.8e-17 in floats: a residue would keep the fault "active"
    kernel, db = setup()
    FaultTimeline(
        kernel,
        faults(
            {"kind": "error_rate", "target": "db", "at": 1, "for": 2, "rate": 0.1},
            {"kind": "error_rate", "target": "db", "at": 2, "for": 2, "rate": 0.2},
            {"kind": "message_loss", "target": "far", "at": 1, "for": 2, "probability": 0.1},
            {"kind": "message_loss", "target": "far", "at": 2, "for": 2, "probability": 0.2},
        ),
        {},
    )
    kernel.run(10)
    assert db.error_rate == 0.0
    assert kernel.network.faults_of("far").loss == 0.0
    assert not kernel.network.faults_of("far").active


def test_error_rate_window_does_not_shift_later_service_times():
    """Common random numbers: a variant with an error-rate window must see the same service
    times as the baseline once the window is over (more than one sampler block later)."""
    from sim.distributions import Exponential

    def completion_times(with_fault: bool) -> list[float]:
        kernel = Kernel(seed=1)
        kernel.network.add_node("client", zone="z1", region="r1")
        Echo(kernel, "db", zone="z1", region="r1", concurrency=300, service_time=Exponential(mean=0.01))
        specs = [{"kind": "error_rate", "target": "db", "at": 0, "for": 1, "rate": 0.5}] if with_fault else []
        FaultTimeline(kernel, faults(*specs), {})
        records = [ping(kernel, 0.0001 * i if i < 5000 else 2.0) for i in range(6000)]
        kernel.run(10)
        return [r["t"] for r in records[5000:]]  # requests after the window

    assert completion_times(True) == completion_times(False)
