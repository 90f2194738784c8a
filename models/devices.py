"""Devices: a fleet of smart meters and the controllable devices that obey commands.

**Meters** report ``power_watts``, ``voltage`` and ``current`` every ``report_every``
seconds from a random phase, tagged with their firmware's ``schema_version``.  The whole
fleet is one scheduler that wakes every ``tick`` and emits, as arrays, every reading due
in that tick -- one event per tick instead of one process and one event per reading.
Each reading keeps its exact timestamp, network delay and arrival time as data.  Each
meter's MQTT client publishes with QoS 1: a publish that is lost, or meets a broker that
is down or cut off, is resent after ``qos1_retry_after`` up to ``qos1_max_retries`` times,
then given up; a lost acknowledgement makes the meter resend a reading that did arrive,
which is how duplicates are born.

**Controllable devices** (AC units, plugs) apply the commands the broker delivers:
``on``/``off`` set the state, ``toggle`` flips it -- so a duplicated toggle undoes itself,
the flapping of review finding C2.  With ``dedupe_command_ids`` a device ignores a
command id it has already applied (device-level idempotency, part of the outbox fix).
"""

from __future__ import annotations

import math
from collections import deque
from operator import attrgetter
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from models.config import FleetConfig
from models.names import DEVICES, IOT_CORE, METERS, POISON_INJECTED, READING_COPIES, READINGS
from models.readings import DEVICE_ID, IS_COPY, Reading, as_copy, with_schema
from sim.ledger import FinalState
from sim.spec import probabilities

if TYPE_CHECKING:
    from models.broker import Broker
    from sim.kernel import Kernel

__all__ = ["ControllableDevices", "MeterFleet", "Resend"]


class Resend(NamedTuple):
    """A reading waiting in a meter's MQTT client to be published again."""

    at: float
    reading: Reading
    attempt: int


class MeterFleet:
    """The smart meters; see the module docstring."""

    def __init__(
        self,
        kernel: Kernel,
        config: FleetConfig,
        broker: Broker,
        *,
        zone: str,
        region: str,
        bill_until: float = math.inf,
    ) -> None:
        """``bill_until``: readings taken before it are in the billing period; the fleet keeps
        what they truly measured (``true_energy_wh``), the reference every bill is checked against."""
        self.kernel = kernel
        self.config = config
        self.broker = broker
        self.bill_until = bill_until
        kernel.network.add_node(METERS, zone=zone, region=region)
        rng = kernel.streams.stream(METERS)
        self.rng = rng
        self._poison_rng = kernel.streams.stream(f"{METERS}/poison")  # poison never shifts the readings' draws
        n = config.meters
        period = config.report_every
        self.next_emit = kernel.now + rng.uniform(0.0, period, n)  # phases from the clock's start
        self.base_power = rng.uniform(150.0, 3000.0, n)
        versions = sorted(config.schema_versions)
        shares = probabilities([config.schema_versions[v] for v in versions], "fleet.schema_versions")
        self.schema = np.asarray(versions)[rng.choice(len(versions), size=n, p=shares)]
        self.retries: list[Resend] = []
        self.true_energy_wh = np.zeros(n)  # twin bookkeeping: what each meter measured in the billing period
        self.emitted = 0
        self.copies = 0
        self.given_up = 0
        self.process = kernel.env.process(self._run()) if n else None

    # -- emission ------------------------------------------------------------------------------
    def _run(self) -> Any:
        env = self.kernel.env
        tick = self.config.tick
        period = self.config.report_every
        while True:
            now = env.now
            horizon = now + tick
            due = np.nonzero(self.next_emit < horizon)[0]
            if len(due):
                times = self.next_emit[due]
                self.next_emit[due] = times + period
                self._emit(due, times)
            if self.retries:
                self._resend(horizon)
            yield env.timeout(tick)

    def _readings(
        self, devices: np.ndarray, times: np.ndarray, rng: np.random.Generator | None = None, *, measured: bool = False
    ) -> list[Reading]:
        """Readings of ``devices`` taken at ``times``; ``measured``: genuine measurements (not a
        fault's junk), whose true power counts toward the billing reference."""
        rng = self.rng if rng is None else rng
        n = len(devices)
        power = self.base_power[devices] * rng.uniform(0.8, 1.2, n)
        if measured:
            billed = times < self.bill_until
            # each meter is due at most once per tick (tick <= report_every), so no index repeats
            self.true_energy_wh[devices[billed]] += power[billed] * (self.config.report_every / 3600.0)
        voltage = rng.normal(230.0, 3.0, n)
        if self.config.corrupt_fraction:
            power = np.where(rng.random(n) < self.config.corrupt_fraction, -999_999.0, power)
        current = np.abs(power) / voltage
        # Plain tuples in the field order of models.readings (zip builds them fastest).
        return list(
            zip(
                devices.tolist(),
                times.tolist(),
                power.tolist(),
                voltage.tolist(),
                current.tolist(),
                self.schema[devices].tolist(),
                [0] * n,
                strict=True,
            )
        )

    def _emit(self, devices: np.ndarray, times: np.ndarray) -> None:
        order = np.argsort(times, kind="stable")
        devices, times = devices[order], times[order]
        records = self._readings(devices, times, measured=True)
        self.kernel.ledger.enter(READINGS, len(records))
        self.emitted += len(records)
        self._publish(records, times, [0] * len(records), devices)

    def _publish(
        self,
        records: list[Reading],
        times: np.ndarray,
        attempts: list[int],
        devices: np.ndarray | None = None,
    ) -> None:
        """Send readings to the broker at ``times``; schedule resends for the ones not acknowledged.

        ``devices`` holds the records' device ids as an array when the caller has it.
        Without loss the whole batch goes to the broker as it is, with no per-record work.
        A network copy of a reading arrives its own transit delay after the original.
        """
        n = len(records)
        network = self.kernel.network
        delays, lost, duplicated, copy_delays = network.delays_many(METERS, IOT_CORE, n)  # a Transit
        sent_copies_at = times[duplicated] + delays[duplicated]  # a copy leaves after the original arrives
        broker = self.broker
        if not broker.up:
            lost = np.ones(n, dtype=bool)
            duplicated = np.zeros(n, dtype=bool)  # nothing reaches a dead broker, copies included
        else:
            # The broker's faults hit originals and copies alike, each publish on its own draw.
            rejected = broker.injected_errors(n)  # publishes the broker fails: resent like lost ones
            if rejected is not None:
                lost = lost | rejected
            slow = broker.injected_delays(n)
            if slow is not None:
                delays = delays + slow
            made = int(copy_delays.size)
            copy_rejected = broker.injected_errors(made) if made else None
            copy_slow = broker.injected_delays(made) if made else None
            if copy_slow is not None:
                copy_delays = copy_delays + copy_slow
            if copy_rejected is not None and copy_rejected.any():
                duplicated = duplicated.copy()
                duplicated[np.flatnonzero(duplicated)[copy_rejected]] = False
                sent_copies_at = sent_copies_at[~copy_rejected]
                copy_delays = copy_delays[~copy_rejected]
        arrivals = times + delays
        # The acknowledgement travels back and may be lost too: the meter then resends a reading that
        # arrived.  A duplicated acknowledgement changes nothing, so none is drawn.
        ack_lost = network.delays_many(IOT_CORE, METERS, n, copies=False).lost
        ack_lost &= ~lost
        if devices is None:
            devices = np.fromiter((r[DEVICE_ID] for r in records), dtype=np.int64, count=n)
        any_lost = bool(lost.any())
        if not any_lost:
            self.broker.receive_readings(records, arrivals, devices)
        else:
            delivered = np.nonzero(~lost)[0]
            if delivered.size:
                accepted = [records[i] for i in delivered.tolist()]
                self.broker.receive_readings(accepted, arrivals[delivered], devices[delivered])
        extra = np.nonzero(duplicated)[0]
        if extra.size:
            copies = [as_copy(records[i]) for i in extra.tolist()]
            self._enter_copies(len(copies))
            self.broker.receive_readings(copies, sent_copies_at + copy_delays, devices[extra])
        if not any_lost and not ack_lost.any():
            return
        retry_at = self.config.qos1_retry_after
        limit = self.config.qos1_max_retries
        for i in np.nonzero(lost | ack_lost)[0].tolist():
            record = records[i]
            if ack_lost[i]:
                record = as_copy(record)  # the original arrived; what is resent is a copy
                self._enter_copies(1)
            attempt = attempts[i] + 1
            if attempt > limit:
                self.given_up += 1
                kind = READING_COPIES if record[IS_COPY] else READINGS
                self.kernel.ledger.settle_count(kind, FinalState.DROPPED, "publish_gave_up")
                continue
            self.retries.append(Resend(float(times[i]) + retry_at, record, attempt))

    def _enter_copies(self, n: int) -> None:
        self.copies += n
        self.kernel.ledger.enter(READING_COPIES, n)

    def _resend(self, horizon: float) -> None:
        due = [item for item in self.retries if item.at < horizon]
        if not due:
            return
        self.retries = [item for item in self.retries if item.at >= horizon]
        due.sort(key=_resend_time)
        self._publish([r.reading for r in due], np.asarray([r.at for r in due]), [r.attempt for r in due])

    # -- faults ------------------------------------------------------------------------------
    def emit_poison(self, count: int, schema_version: int) -> None:
        """The ``poison`` fault: ``count`` meters send a reading with an unsupported schema version."""
        now = self.kernel.now
        meters = self.config.meters
        devices = self._poison_rng.choice(meters, size=count, replace=count > meters)
        readings = self._readings(devices, np.full(count, now), self._poison_rng)
        records = [with_schema(r, schema_version) for r in readings]
        self.kernel.ledger.enter(READINGS, len(records))
        self.emitted += len(records)
        self.kernel.metrics.inc(POISON_INJECTED, len(records))
        self._publish(records, np.full(len(records), now), [0] * len(records))

    def inventory(self) -> dict[str, int]:
        """Readings waiting in the meters' resend queues."""
        counts = {READINGS: 0, READING_COPIES: 0}
        for entry in self.retries:
            record = entry.reading
            counts[READING_COPIES if record[IS_COPY] else READINGS] += 1
        return counts

    def stats(self) -> dict[str, int]:
        """Per-component figures for the result file."""
        return {
            "readings_emitted": self.emitted,
            "copies_sent": self.copies,
            "publishes_given_up": self.given_up,
            "waiting_to_resend_at_end": len(self.retries),
        }


class ControllableDevices:
    """AC units and plugs receiving commands; see the module docstring."""

    def __init__(self, kernel: Kernel, config: FleetConfig, broker: Broker, *, zone: str, region: str) -> None:
        self.kernel = kernel
        self.config = config
        self.broker = broker
        kernel.network.add_node(DEVICES, zone=zone, region=region)
        broker.deliver_to_device = self.receive
        self.state = [False] * config.controllables
        self.applied: dict[str, list[float]] = {}
        self.recent: list[deque[int]] = [deque(maxlen=32) for _ in range(config.controllables)]
        self.ignored_duplicates = 0
        self.flips = 0

    def receive(self, message: dict[str, Any]) -> None:
        """A command delivered by the broker: apply it and acknowledge."""
        device = message["device_id"]
        seen = self.recent[device]
        if self.config.dedupe_command_ids and message["command_id"] in seen:
            self.ignored_duplicates += 1
        else:
            seen.append(message["command_id"])
            action = message["action"]
            before = self.state[device]
            self.state[device] = (not before) if action == "toggle" else action == "on"
            self.flips += self.state[device] != before
            self.applied.setdefault(message["intent"], []).append(self.kernel.now)
        self.kernel.network.send(
            DEVICES, IOT_CORE, self.broker.device_ack, message["id"], device, "on" if self.state[device] else "off"
        )

    def stats(self) -> dict[str, int]:
        """Per-component figures for the result file."""
        return {
            "commands_applied": sum(len(v) for v in self.applied.values()),
            "duplicate_command_ids_ignored": self.ignored_duplicates,
            "state_changes": self.flips,
        }


_resend_time = attrgetter("at")
