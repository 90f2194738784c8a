"""sim.network: path delays, partitions, loss, duplication, reordering, added latency."""

from __future__ import annotations

import numpy as np
import pytest

from sim.distributions import Exponential, constant
from sim.errors import ModelDefinitionError
from sim.kernel import Kernel

ACCESS, ZONE, REGION = 0.0002, 0.0003, 0.030  # Kernel's default constant links


def world(**links) -> Kernel:
    """a1, a2 in zone z1; b1 in zone z2 (same region r1); c1 in zone z3 of region r2."""
    kernel = Kernel(seed=1, links=links or None)
    net = kernel.network
    net.add_node("a1", zone="z1", region="r1")
    net.add_node("a2", zone="z1", region="r1")
    net.add_node("b1", zone="z2", region="r1")
    net.add_node("c1", zone="z3", region="r2")
    return kernel


def deliveries(kernel: Kernel, pairs, *, until: float = 10.0) -> list[tuple[str, str, float]]:
    """Send one message per (src, dst) at time 0 and return (src, dst, arrival) per delivery."""
    got: list[tuple[str, str, float]] = []
    for src, dst in pairs:
        kernel.network.send(src, dst, lambda s, d: got.append((s, d, kernel.now)), src, dst)
    kernel.run(until)
    return got


SAME_ZONE = 2 * ACCESS
CROSS_ZONE = 2 * ACCESS + 2 * ZONE
CROSS_REGION = 2 * ACCESS + 2 * ZONE + REGION


@pytest.mark.parametrize(
    ("src", "dst", "expected"),
    [
        ("a1", "a2", SAME_ZONE),
        ("a2", "a1", SAME_ZONE),
        ("a1", "b1", CROSS_ZONE),
        ("b1", "a1", CROSS_ZONE),
        ("a1", "c1", CROSS_REGION),
        ("c1", "b1", CROSS_REGION),
        ("a1", "a1", 0.0),
    ],
)
def test_constant_links_sum_along_path(src, dst, expected):
    kernel = world()
    assert kernel.network.delay(src, dst) == pytest.approx(expected, abs=1e-12)
    assert deliveries(kernel, [(src, dst)]) == [(src, dst, pytest.approx(expected, abs=1e-12))]


def test_custom_link_latencies():
    kernel = world(region=constant("50ms"), access=constant("1ms"))
    assert kernel.network.delay("a1", "c1") == pytest.approx(2 * 0.001 + 2 * ZONE + 0.050, abs=1e-12)


def test_third_region_meshes_directly():
    kernel = world()
    kernel.network.add_node("d1", zone="z4", region="r3")
    # r1 -> r3 is one region link, not two via r2
    assert kernel.network.delay("a1", "d1") == pytest.approx(CROSS_REGION, abs=1e-12)
    assert kernel.network.delay("c1", "d1") == pytest.approx(CROSS_REGION, abs=1e-12)


def test_random_links_mean_is_sum_of_link_means():
    kernel = world(access=Exponential(mean=0.001), zone=Exponential(mean=0.002), region=Exponential(mean=0.010))
    draws = np.array([kernel.network.delay("a1", "c1") for _ in range(20_000)])
    expected = 2 * 0.001 + 2 * 0.002 + 0.010
    assert draws.mean() == pytest.approx(expected, rel=0.03)
    assert draws.std() > 0


def test_partition_drops_both_ways_then_heal_restores():
    kernel = world()
    net = kernel.network
    handle = net.partition(["z1"], None)  # zone z1 vs everyone else
    assert not net.reachable("a1", "b1") and not net.reachable("b1", "a1")
    assert not net.reachable("a2", "c1") and not net.reachable("c1", "a2")
    assert net.reachable("a1", "a2")  # same side
    assert net.reachable("b1", "c1")  # both on the other side
    assert net.send("a1", "b1", lambda: None) is False
    got = deliveries(kernel, [("a1", "b1"), ("b1", "a1"), ("c1", "a2"), ("a1", "a2"), ("b1", "c1")], until=1)
    assert sorted((s, d) for s, d, _ in got) == [("a1", "a2"), ("b1", "c1")]
    assert net.dropped == 4
    net.heal(handle)
    got = deliveries(kernel, [("a1", "b1"), ("b1", "a1"), ("c1", "a2")], until=2)
    assert len(got) == 3
    assert net.dropped == 4


def test_partition_between_explicit_sides_leaves_others_connected():
    kernel = world()
    net = kernel.network
    net.partition(["a1"], ["r2"])
    assert not net.reachable("a1", "c1") and not net.reachable("c1", "a1")
    assert net.reachable("a1", "b1") and net.reachable("a2", "c1")


def test_overlapping_partitions_heal_independently():
    kernel = world()
    net = kernel.network
    h1 = net.partition(["a1"], None)
    h2 = net.partition(["a1"], ["b1"])
    net.heal(h1)
    assert not net.reachable("a1", "b1")
    assert net.reachable("a1", "c1")
    net.heal(h2)
    assert net.reachable("a1", "b1")


def test_loss_probability_one_drops_everything_to_and_from_node():
    kernel = world()
    net = kernel.network
    net.faults_of("a1").loss = 1.0
    pairs = [("a1", "b1"), ("b1", "a1"), ("a2", "a1"), ("a1", "c1")] * 50
    got = deliveries(kernel, pairs + [("a2", "b1")], until=1)
    assert [(s, d) for s, d, _ in got] == [("a2", "b1")]
    assert net.dropped == 200


def test_partial_loss_rate():
    kernel = world()
    kernel.network.faults_of("b1").loss = 0.3
    lost = sum(kernel.network.delay("a1", "b1") is None for _ in range(20_000))
    assert lost / 20_000 == pytest.approx(0.3, abs=0.02)


def test_duplication_one_delivers_twice_the_copy_later():
    kernel = world()
    net = kernel.network
    net.faults_of("b1").duplication = 1.0
    got = deliveries(kernel, [("a1", "b1")])
    assert len(got) == 2
    assert got[0][2] == pytest.approx(CROSS_ZONE, abs=1e-12)
    assert got[1][2] == pytest.approx(2 * CROSS_ZONE, abs=1e-12)
    assert net.duplicated == 1
    # unaffected pair: exactly once
    assert len(deliveries(kernel, [("a1", "a2")], until=20)) == 1


def test_added_latency_on_node():
    kernel = world()
    net = kernel.network
    net.faults_of("b1").added.append(constant(1.5).sampler(np.random.default_rng(0)))
    assert net.delay("a1", "b1") == pytest.approx(CROSS_ZONE + 1.5, abs=1e-12)
    assert net.delay("b1", "c1") == pytest.approx(CROSS_REGION + 1.5, abs=1e-12)
    assert net.delay("a1", "a2") == pytest.approx(SAME_ZONE, abs=1e-12)
    net.faults_of("b1").added.clear()
    assert not net.faults_of("b1").active
    assert net.delay("a1", "b1") == pytest.approx(CROSS_ZONE, abs=1e-12)


def test_reordering_holds_messages_back():
    kernel = world()
    kernel.network.faults_of("b1").reorder = 1.0
    delays = np.array([kernel.network.delay("a1", "b1") for _ in range(2000)])
    assert delays.min() >= CROSS_ZONE - 1e-12
    assert np.mean(delays > CROSS_ZONE + 1e-9) > 0.99
    # held-back messages can be overtaken by later ones: arrival order differs from send order
    assert np.any(np.diff(delays) < 0)


def test_topology_errors():
    kernel = world()
    with pytest.raises(ModelDefinitionError):
        kernel.network.add_node("a1", zone="z1", region="r1")
    with pytest.raises(ModelDefinitionError):
        kernel.network.partition(["nowhere"], None)


def test_nodes_groups_members():
    net = world().network
    assert net.nodes() == ["a1", "a2", "b1", "c1"]
    assert {"a1", "z1", "z2", "r1", "r2"} <= net.groups()
    assert net.members("r1") == frozenset({"a1", "a2", "b1"})
    assert net.members("z1") == frozenset({"a1", "a2"})
    assert net.members("c1") == frozenset({"c1"})


def test_same_seed_same_delays():
    def draws():
        kernel = world(access=Exponential(mean=0.001))
        return [kernel.network.delay("a1", "b1") for _ in range(100)]

    assert draws() == draws()
