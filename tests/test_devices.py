"""models.devices: the meter fleet's MQTT client as the network and the broker treat it."""

from __future__ import annotations

import numpy as np
import pytest

from sim.kernel import Kernel


def test_meter_fleet_copies_arrive_their_own_delay_after_the_original(monkeypatch):
    """MeterFleet._publish: a copy arrives at the original's arrival plus the copy's own delay,
    aligned through the compact ``copy_delays`` even when the broker rejects some publishes."""
    from models.config import FleetConfig
    from models.devices import BROKER, METERS, MeterFleet
    from sim.network import Transit

    class Broker:
        up = True
        name = BROKER

        def __init__(self) -> None:
            self.got: list[tuple[tuple, float]] = []

        def injected_errors(self, n: int) -> np.ndarray:
            return np.arange(n) % 4 == 0  # every fourth publish fails

        def injected_delays(self, n: int) -> None:
            return None

        def receive_readings(self, records, arrivals, devices=None) -> None:
            self.got += list(zip(records, np.asarray(arrivals).tolist(), strict=True))

    kernel = Kernel(seed=1)
    kernel.network.add_node(BROKER, zone="z1", region="r1")
    broker = Broker()
    fleet = MeterFleet(kernel, FleetConfig(meters=0, qos1_max_retries=0), broker, zone="z1", region="r1")
    real = kernel.network.delays_many

    def fake(src: str, dst: str, n: int) -> Transit:
        if (src, dst) != (METERS, BROKER):
            return real(src, dst, n)
        duplicated = np.arange(n) % 2 == 0  # even positions duplicated: copy j belongs to position 2 j
        return Transit(np.full(n, 0.01), np.zeros(n, dtype=bool), duplicated, 100.0 + np.arange(n // 2 + n % 2))

    monkeypatch.setattr(kernel.network, "delays_many", fake)
    n = 12
    records = [(i, float(i), 1.0, 230.0, 1.0, 2, 0) for i in range(n)]
    fleet._publish(records, np.arange(n, dtype=float), [0] * n, np.arange(n))
    originals = {r[0]: t for r, t in broker.got if r[6] == 0}
    copies = {r[0]: t for r, t in broker.got if r[6] == 1}
    assert sorted(originals) == [i for i in range(n) if i % 4]
    assert sorted(copies) == [i for i in range(n) if i % 4 == 2]  # duplicated and not rejected
    for i, arrival in copies.items():
        assert originals[i] == pytest.approx(i + 0.01)
        assert arrival == pytest.approx(originals[i] + 100.0 + i // 2)  # its own delay, not the original's
