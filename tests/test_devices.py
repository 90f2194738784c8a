"""models.devices: the meter fleet's MQTT client as the network and the broker treat it."""

from __future__ import annotations

import numpy as np
import pytest

from sim.kernel import Kernel


def test_meter_fleet_copies_arrive_their_own_delay_after_the_original(monkeypatch):
    """MeterFleet._publish: a copy leaves when the original arrives and takes its own delay;
    the broker's faults hit each copy on its own draw, as an independent publish."""
    from models.config import FleetConfig
    from models.devices import MeterFleet
    from models.names import IOT_CORE as BROKER
    from models.names import METERS
    from models.readings import DEVICE_ID, IS_COPY, reading
    from sim.network import Transit

    class Broker:
        up = True
        name = BROKER

        def __init__(self) -> None:
            self.got: list[tuple[tuple, float]] = []

        def injected_errors(self, n: int) -> np.ndarray:
            return np.arange(n) % 4 == 0  # every fourth publish of a batch fails (originals, then copies)

        def injected_delays(self, n: int) -> None:
            return None

        def receive_readings(self, records, arrivals, devices=None) -> None:
            self.got += list(zip(records, np.asarray(arrivals).tolist(), strict=True))

    kernel = Kernel(seed=1)
    kernel.network.add_node(BROKER, zone="z1", region="r1")
    broker = Broker()
    fleet = MeterFleet(kernel, FleetConfig(meters=0, qos1_max_retries=0), broker, zone="z1", region="r1")
    real = kernel.network.delays_many

    def fake(src: str, dst: str, n: int, **options: bool) -> Transit:
        if (src, dst) != (METERS, BROKER):
            return real(src, dst, n, **options)
        duplicated = np.arange(n) % 2 == 0  # even positions duplicated: copy j belongs to position 2 j
        return Transit(np.full(n, 0.01), np.zeros(n, dtype=bool), duplicated, 100.0 + np.arange(n // 2 + n % 2))

    monkeypatch.setattr(kernel.network, "delays_many", fake)
    n = 12
    records = [reading(i, float(i), 1.0, 230.0, 1.0, 2) for i in range(n)]
    fleet._publish(records, np.arange(n, dtype=float), [0] * n, np.arange(n))
    originals = {r[DEVICE_ID]: t for r, t in broker.got if not r[IS_COPY]}
    copies = {r[DEVICE_ID]: t for r, t in broker.got if r[IS_COPY]}
    assert sorted(originals) == [i for i in range(n) if i % 4]
    # Copies j = 0..5 belong to originals 0, 2, ..., 10; the broker rejects copies 0 and 4 (originals 0 and 8).
    assert sorted(copies) == [2, 4, 6, 10]  # 4's copy arrives although the original was rejected
    for i, arrival in copies.items():
        assert arrival == pytest.approx(i + 0.01 + 100.0 + i // 2)  # its own delay, not the original's


def test_reading_fields_are_named_in_order() -> None:
    from models import readings

    positions = [getattr(readings, name.upper()) for name in readings.FIELDS]
    assert positions == list(range(len(readings.FIELDS)))
    item = readings.reading(7, 1.5, 500.0, 230.0, 2.2, 2)
    assert readings.as_dict(readings.as_copy(item)) == {
        "device_id": 7, "time": 1.5, "power_watts": 500.0, "voltage": 230.0, "current": 2.2,
        "schema_version": 2, "is_copy": 1,
    }  # fmt: skip
    assert readings.with_schema(item, 99)[readings.SCHEMA_VERSION] == 99


def test_no_module_reads_a_reading_by_a_bare_position() -> None:
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "models"
    pattern = re.compile(r"\b(r|record|reading|row)\[[0-6]\]|itemgetter\([0-6]\)")
    # The policies are generic (no readings pass through them); everything else may meet readings.
    files = [p for p in root.rglob("*.py") if "policies" not in p.parts]
    offenders = [str(p) for p in files if pattern.search(p.read_text())]
    assert offenders == []
