"""The MQTT broker (AWS IoT Core-like): topics, QoS 1, device shadows, the IoT rule.

Two directions pass through it:

* **commands** -- the device manager publishes to ``devices/{id}/commands`` with QoS 1.
  The broker limits each connection to ``publish_limit_per_s`` publishes (IoT Core's hard
  100/s), acknowledges, updates the device shadow's ``desired`` state, and delivers to the
  device, resending every ``qos1_retry_after`` until the device acknowledges -- so a lost
  acknowledgement means a duplicate delivery.  A publish to a topic no device subscribes
  to (a health check's test topic) is acknowledged and goes nowhere.
* **readings** -- meters publish telemetry; the IoT rule forwards each message into the
  stream (:meth:`receive_readings`), partitioned by device id.

Device shadows keep ``desired`` and ``reported`` per device; the drift between them is how
the dashboard sees a command that never arrived.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from models.config import BrokerConfig
from models.names import DEVICES, IOT_CORE, READING_COPIES, READINGS
from models.ops import Publish
from models.policies import KeyedRateLimiter
from models.readings import DEVICE_ID, IS_COPY, Reading
from sim.actor import Actor
from sim.errors import ModelDefinitionError
from sim.ledger import FinalState
from sim.ops import Operation, Rejected
from sim.timers import DueQueue

if TYPE_CHECKING:
    from models.stream import Stream
    from sim.kernel import Kernel

__all__ = ["Broker"]


class Broker(Actor):
    """See the module docstring."""

    def __init__(self, kernel: Kernel, config: BrokerConfig, stream: Stream | None, *, zone: str, region: str) -> None:
        super().__init__(
            kernel,
            IOT_CORE,
            zone=zone,
            region=region,
            concurrency=config.concurrency,
            service_time=config.service_time,
        )
        self.config = config
        self.stream = stream
        self.connections = KeyedRateLimiter.per_period(config.publish_limit_per_s, 1.0)
        self.shadows: dict[int, dict[str, Any]] = {}
        self.unacked: dict[int, dict[str, Any]] = {}
        # Resend checks, due qos1_retry_after after each delivery, so in time order: one timer for
        # the oldest still unacknowledged, not an event per delivery (nearly all are acked long before).
        self._resends: DueQueue[tuple[int, int]] = DueQueue(kernel.env, self._check_resend, self._resend_moot)
        self.deliver_to_device: Callable[[dict[str, Any]], None] | None = None
        self.subscribers: dict[int, tuple[str, Callable[[dict[str, Any]], None]]] = {}
        self._next_message = 1
        self._rule = kernel.sampler(config.rule_latency, "iot-core/rule")
        self.throttled = 0
        # The intents of the publishes the per-connection limit refused (how often each): what
        # the result needs to say which commands the limit cost; only the refusal path writes it.
        self.throttled_intents: dict[str, int] = {}
        self.deliveries = 0
        self.given_up = 0
        self.readings_forwarded = 0
        self.rule_failures = 0

    # -- commands ----------------------------------------------------------------------------
    def handle(self, op: Operation, origin: str) -> Any:
        if not isinstance(op, Publish):
            raise Rejected("unsupported", f"iot-core does not handle {op.name}")
        if not self.connections.try_take(origin, self.kernel.now):
            self.throttled += 1
            intent = op.payload.get("intent")
            if intent is not None:  # a command (a health probe's test publish has none)
                self.throttled_intents[intent] = self.throttled_intents.get(intent, 0) + 1
            raise Rejected("throttled", f"{origin} exceeds {self.config.publish_limit_per_s}/s")
        if not op.topic.startswith("devices/"):
            return {"puback": True, "message_id": None}  # no subscriber (a health check's test topic)
        device_id = int(op.topic.split("/")[1])
        shadow = self.shadows.setdefault(device_id, {"desired": None, "reported": None})
        action = op.payload["action"]
        if action == "toggle":  # a toggle desires the opposite of what the device last reported
            action = "off" if shadow["reported"] == "on" else "on"
        shadow["desired"] = action
        message = {"id": self._next_message, "device_id": device_id, **op.payload}
        self._next_message += 1
        if op.qos == 1:
            self.unacked[message["id"]] = {"message": message, "tries": 0}
        self._send(message)
        return {"puback": True, "message_id": message["id"]}

    def subscribe(self, device_id: int, node: str, deliver: Callable[[dict[str, Any]], None]) -> None:
        """Deliver ``device_id``'s commands to ``deliver`` at network node ``node`` instead of
        the fleet's devices (a device connected from elsewhere: the synthetic monitor's canary)."""
        self.subscribers[device_id] = (node, deliver)

    def _send(self, message: dict[str, Any]) -> None:
        node, deliver = self.subscribers.get(message["device_id"], (DEVICES, self.deliver_to_device))
        if deliver is None:
            raise ModelDefinitionError("iot-core has no devices to deliver commands to (deliver_to_device unset)")
        self.deliveries += 1
        self.kernel.network.send(self.name, node, deliver, message)
        entry = self.unacked.get(message["id"])
        if entry is not None:
            entry["tries"] += 1
            self._resends.add(self.kernel.now + self.config.qos1_retry_after, (message["id"], entry["tries"]))

    def _resend_moot(self, delivery: tuple[int, int]) -> bool:
        """Acknowledged, given up or superseded by a later try: nothing to check."""
        message_id, tries = delivery
        entry = self.unacked.get(message_id)
        return entry is None or entry["tries"] != tries

    def _check_resend(self, delivery: tuple[int, int]) -> None:
        self._maybe_resend(*delivery)

    def _maybe_resend(self, message_id: int, tries: int) -> None:
        entry = self.unacked.get(message_id)
        if entry is None or entry["tries"] != tries or not self.up:
            return
        if tries > self.config.qos1_max_retries:
            del self.unacked[message_id]
            self.given_up += 1
            return
        self._send(entry["message"])

    def device_ack(self, message_id: int, device_id: int, state: Any) -> None:
        """PUBACK from a device, carrying its reported state for the shadow."""
        if not self.up:
            return
        self.unacked.pop(message_id, None)
        self.shadows.setdefault(device_id, {"desired": None, "reported": None})["reported"] = state

    def on_crash(self) -> None:
        # Sessions are persistent in IoT Core, but resend timers die with the node here.
        for entry in self.unacked.values():
            entry["tries"] = -1

    def on_restart(self) -> None:
        for entry in list(self.unacked.values()):
            entry["tries"] = 0
            self._send(entry["message"])

    def pending_intents(self) -> set[str]:
        """Intents with a QoS 1 delivery still being retried (in flight at the end)."""
        return {entry["message"]["intent"] for entry in self.unacked.values()}

    # -- readings ----------------------------------------------------------------------------
    def receive_readings(
        self,
        records: Sequence[Reading],
        arrivals: np.ndarray,
        devices: np.ndarray | None = None,
    ) -> None:
        """Readings that reached the broker at ``arrivals``; the rule puts them on the stream.

        ``devices`` holds the records' device ids (the partition keys) as an array, if the
        caller has them.  Each shard gets its records in order of the time they become
        readable (ties keep arrival order), partitioned and sorted with array operations.
        """
        stream = self.stream
        if stream is None or not records:
            return
        n = len(records)
        visible = arrivals + self._rule.many(n)
        for slow in (self.injected_delays(n), stream.injected_delays(n)):
            if slow is not None:
                visible += slow
        if not stream.up or not self.kernel.network.reachable(self.name, stream.name):
            self._rule_failed(records, "stream_unavailable")  # the rule's error action drops them
            return
        failed = stream.injected_errors(n)
        if failed is not None and failed.any():
            self._rule_failed([records[i] for i in np.flatnonzero(failed).tolist()], "stream_error")
            keep = np.flatnonzero(~failed)
            if not keep.size:
                return
            records = [records[i] for i in keep.tolist()]
            visible = visible[keep]
            devices = None if devices is None else devices[keep]
            n = len(records)
        self.readings_forwarded += n
        shards = len(stream.shards)
        order = np.argsort(visible, kind="stable")
        if shards == 1:
            stream.put_records(0, [records[i] for i in order.tolist()], visible[order].tolist())
            return
        if devices is None:
            devices = np.fromiter((r[DEVICE_ID] for r in records), dtype=np.int64, count=n)
        shard_of = devices[order] % shards
        by_shard = np.argsort(shard_of, kind="stable")
        order = order[by_shard]
        ends = np.cumsum(np.bincount(shard_of, minlength=shards)).tolist()
        times = visible[order].tolist()
        positions = order.tolist()
        start = 0
        for index, end in enumerate(ends):
            if end > start:
                stream.put_records(index, [records[i] for i in positions[start:end]], times[start:end])
            start = end

    def _rule_failed(self, records: Sequence[Reading], reason: str) -> None:
        copies = sum(r[IS_COPY] for r in records)
        ledger = self.kernel.ledger
        ledger.settle_count(READINGS, FinalState.DROPPED, reason, len(records) - copies)
        ledger.settle_count(READING_COPIES, FinalState.DROPPED, reason, copies)
        self.rule_failures += len(records)

    def stats(self) -> dict[str, Any]:
        figures: dict[str, Any] = dict(super().stats())
        drift = sum(1 for s in self.shadows.values() if s["desired"] != s["reported"])
        figures.update(
            {
                "command_deliveries": self.deliveries,
                "publishes_throttled": self.throttled,
                "qos1_given_up": self.given_up,
                "qos1_unacked_at_end": len(self.unacked),
                "shadows_desired_not_reported": drift,
                "readings_forwarded": self.readings_forwarded,
                "rule_put_failures": self.rule_failures,
            }
        )
        return figures
