"""sim.faults: typed faults on a timeline, applied to actors, network nodes and custom targets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import pytest
from pydantic import Field, TypeAdapter, ValidationError

from sim.actor import Actor
from sim.distributions import constant
from sim.errors import ModelDefinitionError
from sim.faults import (
    ACTOR_FAULTS,
    GENERIC_FAULTS,
    NODE_FAULTS,
    Crash,
    Fault,
    FaultContext,
    FaultTimeline,
    LastingFault,
    Latency,
    Undo,
    fault_union,
)
from sim.kernel import Kernel
from sim.ops import Operation, OperationTimeout, Rejected, Sleep, Unavailable


class Burst(Fault):
    """A kind only a model knows (defined here, outside the engine): a producer emits extra items."""

    kind: Literal["burst"]
    count: int = Field(default=1, ge=1)

    def start(self, ctx: FaultContext) -> None:
        producer = ctx.component(self.target, self.kind)
        assert isinstance(producer, Producer)
        producer.injected.append((ctx.kernel.now, self))


class Brownout(LastingFault):
    """A lasting model-only kind: started and undone through the component."""

    kind: Literal["brownout"]

    def start(self, ctx: FaultContext) -> Undo:
        producer = ctx.component(self.target, self.kind)
        assert isinstance(producer, Producer)
        producer.injected.append((ctx.kernel.now, self))
        return lambda: producer.ended.append(ctx.kernel.now)


FAULT = TypeAdapter(fault_union(*GENERIC_FAULTS, Burst, Brownout))
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
    latency, crash, burst = faults(
        {"kind": "latency", "target": "db", "at": "10m", "for": "5m", "add": "10s"},
        {"kind": "crash", "target": "db", "at": "20m"},
        {"kind": "burst", "target": "producer", "at": 0, "count": 3},
    )
    assert isinstance(latency, Latency) and latency.at == 600.0 and latency.for_ == 300.0
    assert latency.until == 900.0 and latency.add.mean() == 10.0
    assert isinstance(crash, Crash) and crash.restart_after == 30.0 and crash.until is None
    assert isinstance(burst, Burst) and burst.count == 3 and burst.until is None
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
        {"kind": "burst", "target": "p", "at": 0, "count": 0},
        {"kind": "brownout", "target": "p", "at": 0},  # missing for
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
    """A model component that takes the model-only kinds."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.injected: list[tuple[float, Any]] = []
        self.ended: list[float] = []


def test_model_kind_is_started_through_its_component():
    kernel, _ = setup()
    producer = Producer(kernel)
    timeline = FaultTimeline(
        kernel, faults({"kind": "burst", "target": "meter-fleet", "at": "2m", "count": 3}), {"meter-fleet": producer}
    )
    kernel.run(119)
    assert producer.injected == []
    kernel.run(121)
    assert len(producer.injected) == 1
    when, fault = producer.injected[0]
    assert when == 120.0 and fault.kind == "burst" and fault.count == 3
    assert timeline.log == [{"kind": "burst", "target": "meter-fleet", "start": 120.0, "end": 120.0}]


def test_model_kind_undone_at_window_end():
    kernel, _ = setup()
    producer = Producer(kernel)
    FaultTimeline(
        kernel, faults({"kind": "brownout", "target": "meter-fleet", "at": 1, "for": 4}), {"meter-fleet": producer}
    )
    kernel.run(10)
    assert [t for t, _ in producer.injected] == [1.0]
    assert producer.ended == [5.0]


class Master:
    """A crashable component that is not an actor."""

    def __init__(self) -> None:
        self.crashed: list[float] = []

    def crash(self, restart_after: float) -> None:
        self.crashed.append(restart_after)


def test_generic_crash_reaches_a_crashable_component():
    kernel, db = setup()
    master = Master()
    FaultTimeline(
        kernel, faults({"kind": "crash", "target": "cache-1", "at": 1, "restart_after": 7}), {"cache-1": master}
    )
    kernel.run(2)
    assert master.crashed == [7.0]
    assert db.up


@pytest.mark.parametrize(
    "spec",
    [
        {"kind": "crash", "target": "mainframe", "at": 1},
        {"kind": "error_rate", "target": "mainframe", "at": 1, "for": 1, "rate": 0.5},
        {"kind": "message_loss", "target": "mainframe", "at": 1, "for": 1, "probability": 0.5},
        {"kind": "latency", "target": "mainframe", "at": 1, "for": 1, "add": "1s"},
        {"kind": "partition", "target": "mainframe", "at": 1, "for": 1},
        {"kind": "burst", "target": "mainframe", "at": 1},
    ],
)
def test_unknown_target_at_run_time_is_a_clear_error(spec):
    kernel, _ = setup()
    FaultTimeline(kernel, faults(spec), {})
    with pytest.raises(ModelDefinitionError, match="mainframe"):
        kernel.run(2)


def test_fault_union_rejects_a_kind_defined_twice_or_untagged():
    class Again(Fault):
        kind: Literal["burst"]

    class Untagged(Fault):
        pass

    with pytest.raises(ModelDefinitionError, match="defined twice"):
        fault_union(Burst, Again)
    with pytest.raises(ModelDefinitionError, match="Literal"):
        fault_union(Untagged)


def test_engine_source_has_no_model_kind():
    import pathlib

    import sim

    text = (pathlib.Path(sim.__file__).parent / "faults.py").read_text()
    assert "poison" not in text.lower()


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


def test_a_kernel_started_late_runs_faults_at_their_absolute_times():
    kernel = Kernel(0, start=1000.0)
    producer = Producer(kernel)
    assert kernel.now == 1000.0
    FaultTimeline(kernel, faults({"kind": "burst", "target": "meters", "at": 1010}), {"meters": producer})
    kernel.run(until=1020.0)
    assert [when for when, _ in producer.injected] == [1010.0]
    with pytest.raises(ModelDefinitionError, match="before the clock starts"):
        FaultTimeline(kernel, faults({"kind": "burst", "target": "meters", "at": 5}), {"meters": producer})
    with pytest.raises(ValueError, match="finite time"):
        Kernel(0, start=-1.0)


def test_within_draws_each_start_uniformly_and_only_for_faults_that_ask():
    import numpy as np

    from sim.faults import draw_start_times

    fixed, spread = faults(
        {"kind": "burst", "target": "meters", "at": 10},
        {"kind": "burst", "target": "meters", "at": 100, "within": 50},
    )
    assert spread.latest_start == 150 and fixed.latest_start == 10
    starts = [draw_start_times([fixed, spread], np.random.default_rng(seed))[1].at for seed in range(200)]
    assert all(100 <= s < 150 for s in starts) and 20 < np.mean(starts) - 100 < 30
    again = draw_start_times([fixed, spread], np.random.default_rng(3))
    assert again[0] is fixed and again[1].within is None
    assert again[1].at == draw_start_times([fixed, spread], np.random.default_rng(3))[1].at  # the seed decides
