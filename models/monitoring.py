"""The health monitor: probes of the device manager, a synthetic monitor, and their time to detect (S3).

Who runs what, as in the real system:

* the **kubelet** probes the device manager's pod: ``GET /health`` (shallow) always, and
  with ``health.deep`` ``GET /health/deep`` as the readiness probe.  The kubelet runs on
  the pod's node, so a probe crosses no network; the pod answers it on its own goroutine,
  not on one of the command API's workers (a Go HTTP server serves each request
  separately), so a saturated worker pool does not fail it -- only a dead process does
  (refused), or one dying mid-probe (reset).  The deep check's own calls go out from the
  device manager, over the network, like its commands: a partition between the device
  manager and IoT Core fails them as it fails commands;
* an **external synthetic monitor** (``health.synthetic``), outside the cluster as the
  review asks, commands its own canary device through the API gateway, as the app does,
  and waits for the canary to apply the command.  Monitor and canary sit on their own
  network node (:data:`~models.names.SYNTHETIC_MONITOR`); the broker delivers the canary's
  commands there.  Its commands are real: rows, publishes and deliveries count in the
  components' figures (not in the ledger, which tracks users' intents).

Each probe is a :class:`Prober`: the first run after a random part of one period (the
kubelet's start-up jitter, from a random stream of its own), then one run per period,
never two at once; a run not answered within the probe's timeout failed; the verdict
follows :class:`~models.logic.health.ProbeTracker`.  The readiness probe is the deep one
if configured, else the shallow one; with ``health.gate_traffic`` its verdict takes the
device manager in and out of the Service (:attr:`DeviceManager.in_service
<models.services.DeviceManager>`), and the gateway's calls to a not-ready device manager
are refused at once, so the app hears 503 -- and retries, then gives up -- instead of
"accepted".

Detection: a probe detects a fault when its verdict turns unhealthy between the fault's
start and the end of its effect plus ``health.detection_grace`` (a crash's effect lasts
its ``restart_after``, a lasting fault its ``for``, other one-off faults an instant).  A
turn to unhealthy that no fault explains is a false alarm.  Detections are recorded as they
happen, per probe and fault, so memory does not grow with the run; :func:`health_summary`
only reads them.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Generator, Sequence
from typing import TYPE_CHECKING, Any

import simpy

from models.config import HealthConfig, ProbeConfig, SyntheticProbeConfig
from models.logic.health import (
    DeepCheckSettings,
    ProbeResult,
    ProbeTracker,
    SyntheticSettings,
    deep_check,
    liveness,
    synthetic_command,
)
from models.names import COMMANDS, DEVICE_MANAGER, IOT_CORE, SYNTHETIC_MONITOR
from sim.driver import Abandoned
from sim.faults import Crash, Fault
from sim.ledger import FinalState, Ledger
from sim.ops import Logic

if TYPE_CHECKING:
    from models.broker import Broker
    from models.services import DeviceManager
    from models.twin import World
    from sim.kernel import Kernel

__all__ = ["PROBES", "CanaryDevice", "HealthMonitor", "Prober", "effect_window", "health_summary"]

PROBES = ("shallow", "deep", "synthetic")
"""The probe kinds, in the order results list them."""

KEPT_TRANSITIONS = 50
"""Verdict changes kept for the result, over all probes (the counts are complete)."""

Check = Callable[[int], Generator[simpy.Event, Any, ProbeResult]]
"""Runs probe number ``n`` to its result, inside the simulation."""


def effect_window(fault: Fault) -> tuple[float, float]:
    """When ``fault`` acts: a lasting fault for its ``for``, a crash until its restart, others an instant."""
    if isinstance(fault, Crash):
        return fault.at, fault.at + fault.restart_after
    until = fault.until
    return fault.at, fault.at if until is None else until


class Prober:
    """One periodic probe and its verdict: a kubelet probe worker, or the synthetic schedule.

    Args:
        kernel: The simulation.
        kind: ``shallow``, ``deep`` or ``synthetic``.
        config: Period, timeout and thresholds.
        check: Runs one probe (see :data:`Check`).
        hard_timeout: Whether the prober itself gives up after ``config.timeout`` (the
            kubelet's HTTP client does); the synthetic check keeps its own deadline.
        on_change: Told ``(prober, result)`` when the verdict changes.
    """

    def __init__(
        self,
        kernel: Kernel,
        kind: str,
        config: ProbeConfig,
        check: Check,
        *,
        hard_timeout: bool = True,
        on_change: Callable[[Prober, ProbeResult], None] | None = None,
    ) -> None:
        self.kernel = kernel
        self.kind = kind
        self.config = config
        self.check = check
        self.hard_timeout = hard_timeout
        self.on_change = on_change
        self.tracker = ProbeTracker(config.failure_threshold, config.success_threshold)
        self.runs = 0
        self.failures = 0
        self.timeouts = 0
        self.turned_unhealthy = 0
        self.unhealthy_since: float | None = None
        self.unhealthy_total = 0.0
        self._rng = kernel.streams.stream(f"health/{kind}")
        kernel.env.process(self._loop())

    @property
    def healthy(self) -> bool:
        """The current verdict."""
        return self.tracker.healthy

    def unhealthy_s(self, now: float) -> float:
        """Seconds the verdict has been unhealthy up to ``now`` (a reading: changes nothing)."""
        ongoing = 0.0 if self.unhealthy_since is None else now - self.unhealthy_since
        return self.unhealthy_total + ongoing

    def _loop(self) -> Generator[simpy.Event, Any, None]:
        env = self.kernel.env
        period = self.config.period
        yield env.timeout(self._rng.random() * period)  # the kubelet's start-up jitter
        while True:
            started = env.now
            result = yield from self._attempt()
            self._record(result)
            wait = started + period - env.now  # a run that overran its period: the next starts at once
            if wait > 0:
                yield env.timeout(wait)

    def _attempt(self) -> Generator[simpy.Event, Any, ProbeResult]:
        env = self.kernel.env
        self.runs += 1
        answer: list[ProbeResult] = []

        def run(number: int) -> Generator[simpy.Event, Any, None]:
            answer.append((yield from self.check(number)))

        done = env.process(run(self.runs))
        if self.hard_timeout:
            yield env.any_of([done, env.timeout(self.config.timeout)])
        else:
            yield done
        if answer:
            return answer[0]
        self.timeouts += 1
        return ProbeResult(False, None, "timeout")

    def _record(self, result: ProbeResult) -> None:
        if not result.healthy:
            self.failures += 1
        if not self.tracker.record(result.healthy):
            return
        now = self.kernel.now
        if result.healthy:
            if self.unhealthy_since is not None:
                self.unhealthy_total += now - self.unhealthy_since
            self.unhealthy_since = None
        else:
            self.turned_unhealthy += 1
            self.unhealthy_since = now
        if self.on_change is not None:
            self.on_change(self, result)


class CanaryDevice:
    """The synthetic monitor's canary: a device simulator that applies its commands and acknowledges them.

    It remembers the intents of its last few commands, which is all the monitor asks it
    (:class:`~models.logic.health.CanaryPort`).
    """

    def __init__(self, kernel: Kernel, broker: Broker, device_id: int, node: str) -> None:
        self.kernel = kernel
        self.broker = broker
        self.device_id = device_id
        self.node = node
        self.on = False
        self.recent: deque[str] = deque(maxlen=16)
        self.applied_count = 0
        broker.subscribe(device_id, node, self.receive)

    def receive(self, message: dict[str, Any]) -> None:
        """A command delivered by the broker: apply it, acknowledge it."""
        action = message["action"]
        self.on = (not self.on) if action == "toggle" else action == "on"
        self.applied_count += 1
        if message["intent"] not in self.recent:
            self.recent.append(message["intent"])
        self.kernel.network.send(
            self.node, IOT_CORE, self.broker.device_ack, message["id"], self.device_id, "on" if self.on else "off"
        )

    def applied(self, intent: str) -> bool:
        """Whether the command sent for ``intent`` was applied."""
        return intent in self.recent


class HealthMonitor:
    """The device manager's probes and the synthetic monitor; see the module docstring.

    Args:
        kernel: The simulation.
        config: The scenario's ``health`` section.
        device_manager: The probed service.
        broker: Where the canary subscribes.
        faults: The scenario's faults, whose detection is measured.
        canary_id: The canary's device id (one no fleet device has).
        zone: The synthetic monitor's network zone (outside the cluster).
        region: ... and region.
    """

    def __init__(
        self,
        kernel: Kernel,
        config: HealthConfig,
        device_manager: DeviceManager,
        broker: Broker,
        faults: Sequence[Fault],
        *,
        canary_id: int,
        zone: str,
        region: str,
    ) -> None:
        self.kernel = kernel
        self.config = config
        self.device_manager = device_manager
        # in the order the fault timeline starts them (ties keep the file's order), as its log
        self.windows = [effect_window(f) for f in sorted(faults, key=lambda f: f.at)]
        self.detections: dict[str, dict[int, dict[str, Any]]] = {}
        self.false_alarms: dict[str, int] = {}
        self.transitions: list[dict[str, Any]] = []
        self.probers: dict[str, Prober] = {}
        self.canary: CanaryDevice | None = None
        self._add("shallow", config.shallow, self._in_pod(liveness))
        if config.deep is not None:
            deep = DeepCheckSettings(tuple(config.deep_checks), config.check_timeout)
            self._add("deep", config.deep, self._in_pod(lambda: deep_check(deep)))
        if config.synthetic is not None:
            kernel.network.add_node(SYNTHETIC_MONITOR, zone=zone, region=region)
            self.canary = CanaryDevice(kernel, broker, canary_id, SYNTHETIC_MONITOR)
            self._add("synthetic", config.synthetic, self._synthetic(config.synthetic, self.canary), hard_timeout=False)
        self.readiness = "deep" if config.deep is not None else "shallow"

    def _add(self, kind: str, config: ProbeConfig, check: Check, *, hard_timeout: bool = True) -> None:
        self.detections[kind] = {}
        self.false_alarms[kind] = 0
        self.probers[kind] = Prober(
            self.kernel, kind, config, check, hard_timeout=hard_timeout, on_change=self._changed
        )

    def _in_pod(self, logic: Callable[[], Logic[ProbeResult]]) -> Check:
        """A check the device manager's process answers (the kubelet's probe of the pod)."""
        pod = self.device_manager
        driver = self.kernel.driver

        def check(_number: int) -> Generator[simpy.Event, Any, ProbeResult]:
            if not pod.up:
                return ProbeResult(False, DEVICE_MANAGER, "refused")
            try:
                result: ProbeResult = yield from driver.drive(logic(), pod, pod.epoch)
            except Abandoned:
                return ProbeResult(False, DEVICE_MANAGER, "connection_reset")
            return result

        return check

    def _synthetic(self, config: SyntheticProbeConfig, canary: CanaryDevice) -> Check:
        settings = SyntheticSettings(canary.device_id, config.timeout, config.poll)
        driver = self.kernel.driver

        def check(number: int) -> Generator[simpy.Event, Any, ProbeResult]:
            result: ProbeResult = yield from driver.drive(
                synthetic_command(settings, canary, number), SYNTHETIC_MONITOR
            )
            return result

        return check

    def _changed(self, prober: Prober, result: ProbeResult) -> None:
        now = self.kernel.now
        if len(self.transitions) < KEPT_TRANSITIONS:
            self.transitions.append(
                {
                    "probe": prober.kind,
                    "t": now,
                    "to": "healthy" if result.healthy else "unhealthy",
                    "failing": result.failing,
                    "detail": result.detail,
                }
            )
        if prober.kind == self.readiness and self.config.gate_traffic:
            self.device_manager.in_service = result.healthy
        if result.healthy:
            return
        found = self.detections[prober.kind]
        grace = self.config.detection_grace
        explained = False
        for index, (start, end) in enumerate(self.windows):
            if start <= now <= end + grace:
                explained = True
                if index not in found:
                    found[index] = {"at": now, "delay_s": now - start, "failing": result.failing}
        if not explained:
            self.false_alarms[prober.kind] += 1


def _commands_in(
    world: World, verdicts: Ledger, starts: list[float], intents: list[str], window: tuple[float, float]
) -> dict[str, int]:
    """What became of the users' intents started in ``window`` (half-open, or the instant of a one-off fault)."""
    start, end = window
    first = bisect_left(starts, start)
    stop = bisect_left(starts, end) if end > start else first
    figures = {"started": stop - first, "applied": 0, "into_void": 0, "told_failed": 0, "in_flight": 0}
    results = world.mobile.results
    for intent in intents[first:stop]:
        state, _ = verdicts.state_of(COMMANDS, intent)
        if state is FinalState.APPLIED:
            figures["applied"] += 1
        elif state is FinalState.FAILED:
            accepted = getattr(results[intent][0], "accepted", False)
            figures["into_void" if accepted else "told_failed"] += 1
        else:
            figures["in_flight"] += 1
    return figures


def health_summary(world: World, verdicts: Ledger) -> dict[str, Any]:
    """The ``health`` section of the result: probes, detections per fault, what users were told.

    ``verdicts`` is the judged copy of the ledger (commands settled); nothing is changed.
    """
    monitor = world.monitor
    if monitor is None:
        return {}
    now = world.kernel.now
    log = world.faults.log
    starts = list(world.mobile.started.values())  # intents are started in time order
    intents = list(world.mobile.started)
    faults = []
    for index, entry in enumerate(log):
        window = monitor.windows[index]
        faults.append(
            {
                "kind": entry["kind"],
                "target": entry["target"],
                "start": entry["start"],
                "effect_end": window[1],
                "detection": {
                    kind: dict(monitor.detections[kind].get(index) or dict.fromkeys(("at", "delay_s", "failing")))
                    for kind in monitor.probers
                },
                "commands": _commands_in(world, verdicts, starts, intents, window),
            }
        )
    probes: dict[str, Any] = {}
    for kind, prober in monitor.probers.items():
        delays = [found["delay_s"] for index, found in monitor.detections[kind].items() if index < len(log)]
        probes[kind] = {
            "runs": prober.runs,
            "failures": prober.failures,
            "timeouts": prober.timeouts,
            "turned_unhealthy": prober.turned_unhealthy,
            "unhealthy_s": prober.unhealthy_s(now),
            "healthy": prober.healthy,
            "false_alarms": monitor.false_alarms[kind],
            "faults_detected": len(delays),
            "faults_missed": len(log) - len(delays),
            "mttd_s": sum(delays) / len(delays) if delays else None,
            "worst_ttd_s": max(delays) if delays else None,
        }
    return {
        "readiness_probe": monitor.readiness,
        "gate_traffic": monitor.config.gate_traffic,
        "requests_refused_not_ready": world.device_manager.refused_not_ready,
        "probes": probes,
        "faults": faults,
        "transitions": [dict(t) for t in monitor.transitions],
    }
