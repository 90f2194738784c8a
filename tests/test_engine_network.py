"""sim.network: path delays, partitions, loss, duplication, reordering, added latency."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

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
    got = deliveries(kernel, [*pairs, ("a2", "b1")], until=1)
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


# -- duplication: one semantics for the scalar path (send) and the vector path (delays_many) --------
# A duplicated message's copy is an independent message on the same path: its own delay draw
# (links + the nodes' added latency + reordering), its own loss draws, arriving its own delay
# after the original.  So P(copy delivered | original delivered) = d (1 - l) on one faulty node.

CONFIDENCE = 0.999  # Clopper-Pearson intervals; the seeds are fixed, so this is about honesty, not flakiness


def _scalar_sends(kernel: Kernel, src: str, dst: str, n: int) -> tuple[int, list[list[float]]]:
    """Send ``n`` messages at time 0 through :meth:`Network.send`; (originals delivered, arrivals per message)."""
    arrivals: list[list[float]] = [[] for _ in range(n)]
    delivered = sum(kernel.network.send(src, dst, lambda i: arrivals[i].append(kernel.now), i) for i in range(n))
    kernel.run(1000.0)
    return delivered, arrivals


def _assert_rate(successes: int, trials: int, expected: float) -> None:
    interval = stats.binomtest(successes, trials).proportion_ci(confidence_level=CONFIDENCE)
    assert interval.low <= expected <= interval.high, (successes / trials, expected, interval)
    assert interval.high - interval.low < 0.015  # tight: the test would see a d versus d (1 - l) mix-up


def _set(net, node: str, *, loss: float = 0.0, duplication: float = 0.0) -> None:
    faults = net.faults_of(node)
    faults.loss, faults.duplication = loss, duplication


@pytest.mark.parametrize(
    ("faulty", "expected_original", "expected_copy"),
    [
        # one faulty node: l = 0.3, d = 0.2
        ({"b1": (0.3, 0.2)}, 0.7, 0.2 * 0.7),
        # both ends faulty: [1 - (1 - d_src)(1 - d_dst)] (1 - l_src)(1 - l_dst)
        ({"a1": (0.1, 0.1), "b1": (0.2, 0.15)}, 0.9 * 0.8, (1 - 0.9 * 0.85) * (0.9 * 0.8)),
    ],
    ids=["one-node", "both-ends"],
)
def test_copy_delivered_given_original_is_d_times_one_minus_l_on_both_paths(faulty, expected_original, expected_copy):
    n = 60_000
    # scalar path: every request and reply
    kernel = world(access=Exponential(mean=0.001))
    for node, (loss, dup) in faulty.items():
        _set(kernel.network, node, loss=loss, duplication=dup)
    originals, arrivals = _scalar_sends(kernel, "a1", "b1", n)
    copies = sum(len(a) for a in arrivals) - originals
    assert max(len(a) for a in arrivals) == 2  # at most one copy per message
    assert sum(bool(a) for a in arrivals) == originals  # send() is True exactly when the original arrives
    _assert_rate(originals, n, expected_original)
    _assert_rate(copies, originals, expected_copy)
    # vector path: the meter fleet's readings
    kernel = world(access=Exponential(mean=0.001))
    for node, (loss, dup) in faulty.items():
        _set(kernel.network, node, loss=loss, duplication=dup)
    transit = kernel.network.delays_many("a1", "b1", n)
    delivered = int(np.count_nonzero(~transit.lost))
    assert not np.any(transit.duplicated & transit.lost)  # a lost original has no copy
    assert transit.copy_delays.shape == (int(np.count_nonzero(transit.duplicated)),)
    _assert_rate(delivered, n, expected_original)
    _assert_rate(int(np.count_nonzero(transit.duplicated)), delivered, expected_copy)


def test_counters_balance_on_both_paths():
    """``dropped`` counts lost copies too, ``duplicated`` every copy made: delivered = sent + duplicated - dropped."""
    n = 20_000
    kernel = world()
    _set(kernel.network, "a1", loss=0.2, duplication=0.3)
    _set(kernel.network, "b1", loss=0.1, duplication=0.1)
    net = kernel.network
    _, arrivals = _scalar_sends(kernel, "a1", "b1", n)
    assert sum(len(a) for a in arrivals) == n + net.duplicated - net.dropped
    lost_copies = net.duplicated - (sum(len(a) for a in arrivals) - sum(bool(a) for a in arrivals))
    assert lost_copies > 0  # copies were lost, and counted as dropped
    before_dropped, before_duplicated = net.dropped, net.duplicated
    transit = net.delays_many("a1", "b1", n)
    delivered = int(np.count_nonzero(~transit.lost)) + int(np.count_nonzero(transit.duplicated))
    made, dropped = net.duplicated - before_duplicated, net.dropped - before_dropped
    assert delivered == n + made - dropped
    assert made > int(np.count_nonzero(transit.duplicated))  # some copies were made and then lost


def _assert_independent_draws(originals: np.ndarray, copies: np.ndarray) -> None:
    """Copies' delays are fresh draws from the originals' distribution, not the originals' values."""
    assert len(originals) == len(copies) > 10_000
    assert np.all(copies != originals)
    se = np.sqrt(originals.var() / len(originals) + copies.var() / len(copies))
    assert abs(copies.mean() - originals.mean()) < 4 * se  # same mean, within a 4-sigma interval
    assert abs(np.corrcoef(originals, copies)[0, 1]) < 4 / np.sqrt(len(copies))  # uncorrelated
    assert stats.ks_2samp(originals, copies).pvalue > 1e-3  # and the same distribution


def test_copy_delays_are_independent_draws_on_the_scalar_path():
    kernel = world(access=Exponential(mean=0.001), zone=Exponential(mean=0.002))
    _set(kernel.network, "b1", duplication=1.0)
    _, arrivals = _scalar_sends(kernel, "a1", "b1", 20_000)
    assert all(len(a) == 2 for a in arrivals)
    original = np.array([a[0] for a in arrivals])  # sent at 0: arrival is the delay
    copy = np.array([a[1] - a[0] for a in arrivals])  # the copy arrives its own delay after the original
    _assert_independent_draws(original, copy)


def test_copy_delays_are_independent_draws_on_the_vector_path():
    kernel = world(access=Exponential(mean=0.001), zone=Exponential(mean=0.002))
    _set(kernel.network, "b1", loss=0.3, duplication=0.6)
    transit = kernel.network.delays_many("a1", "b1", 60_000)
    _assert_independent_draws(transit.delays[transit.duplicated], transit.copy_delays)
    # and they match the scalar path's distribution of delays on the same link setup
    scalar = world(access=Exponential(mean=0.001), zone=Exponential(mean=0.002))
    draws = np.array([scalar.network.delay("a1", "b1") for _ in range(len(transit.copy_delays))])
    _assert_independent_draws(draws, transit.copy_delays)


def test_copies_get_the_nodes_added_latency_on_both_paths():
    kernel = world()
    net = kernel.network
    net.faults_of("b1").duplication = 1.0
    net.faults_of("b1").added.append(constant(1.5).sampler(np.random.default_rng(0)))
    got = deliveries(kernel, [("a1", "b1")])
    assert [t for _, _, t in got] == [
        pytest.approx(CROSS_ZONE + 1.5, abs=1e-12),
        pytest.approx(2 * (CROSS_ZONE + 1.5), abs=1e-12),
    ]
    transit = net.delays_many("a1", "b1", 5)
    assert transit.duplicated.all()
    np.testing.assert_allclose(transit.delays, CROSS_ZONE + 1.5, atol=1e-12)
    np.testing.assert_allclose(transit.copy_delays, CROSS_ZONE + 1.5, atol=1e-12)


def test_copies_are_held_back_by_reordering_like_any_message():
    kernel = world()
    faults = kernel.network.faults_of("b1")
    faults.duplication, faults.reorder = 1.0, 1.0
    transit = kernel.network.delays_many("a1", "b1", 2000)
    assert np.mean(transit.copy_delays > CROSS_ZONE + 1e-9) > 0.99


def test_vector_path_without_faults_and_under_partition():
    kernel = world()
    net = kernel.network
    transit = net.delays_many("a1", "b1", 4)
    np.testing.assert_allclose(transit.delays, CROSS_ZONE, atol=1e-12)
    assert not transit.lost.any() and not transit.duplicated.any() and transit.copy_delays.size == 0
    _set(net, "b1", duplication=1.0)
    handle = net.partition(["a1"], ["b1"])
    transit = net.delays_many("a1", "b1", 4)
    assert transit.lost.all() and not transit.duplicated.any() and transit.copy_delays.size == 0
    assert (net.dropped, net.duplicated) == (4, 0)  # nothing crosses a partition to be duplicated
    net.heal(handle)
    assert net.delays_many("a1", "b1", 4).duplicated.all()
    assert net.duplicated == 4


def test_vector_path_same_seed_same_transit():
    def transit():
        kernel = world(access=Exponential(mean=0.001))
        _set(kernel.network, "b1", loss=0.3, duplication=0.2)
        kernel.network.faults_of("a1").reorder = 0.1
        return [kernel.network.delays_many("a1", "b1", 1000) for _ in range(3)]

    for a, b in zip(transit(), transit(), strict=True):
        for field in ("delays", "lost", "duplicated", "copy_delays"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
