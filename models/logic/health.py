"""Health checks of the device manager (review S3), and the probe rule that judges them.

Three probes ask three different questions:

* ``GET /health`` (:func:`liveness`), **shallow**: does the process answer?  It touches no
  dependency, so it passes whenever the process runs.  The right question for a liveness
  probe (restart a process that hangs), the wrong one for readiness -- yet as designed it
  is the device manager's only probe, for both: the service "passes readiness probe (only
  checks HTTP endpoint)" while IoT Core is gone (S3).
* ``GET /health/deep`` (:func:`deep_check`), **deep**: can the process do its job?  It checks
  the dependencies the review's countermeasure lists, in order, each with a short timeout,
  and fails on the first that does not answer: PostgreSQL (``SELECT 1`` on the primary),
  Redis (``PING``), the MQTT broker (a QoS 1 publish to a test topic, waiting for its
  PUBACK) and the stream (a ``DescribeStreamSummary``; the review's small test record would
  reach the ingest consumer as a reading).  Failing on the first keeps the worst case at
  one check timeout beyond the healthy checks' round trips, under the probe's own timeout,
  so the failing dependency is named rather than lost to a probe timeout.
* the **synthetic** command (:func:`synthetic_command`): the user's path, from outside.  It
  sends a command for a canary device through the API gateway as the app does, then waits
  for the canary to apply it within a deadline.  It sees what users see, whatever part is
  broken -- a 202 "accepted" for a command that goes nowhere included -- but cannot say which
  part.

:class:`ProbeTracker` turns a probe's results into its verdict with Kubernetes' rule.

Pure logic: no simpy, no I/O; the checks yield :mod:`models.ops` and :mod:`sim.ops`
operations, and who runs them (the pod's process, an external monitor) is the driver's
business.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from models.names import API_GATEWAY, DB_PRIMARY, IOT_CORE, KINESIS, REDIS, SYNTHETIC_MONITOR
from models.ops import HttpRequest, HttpResponse, Publish
from sim.ops import Logic, Now, Operation, OpError, Ping, Sleep

__all__ = [
    "DEEP_DEPENDENCIES",
    "HEALTHY",
    "CanaryPort",
    "DeepCheckSettings",
    "ProbeResult",
    "ProbeTracker",
    "SyntheticSettings",
    "deep_check",
    "liveness",
    "synthetic_command",
]

DEEP_DEPENDENCIES: tuple[str, ...] = (DB_PRIMARY, REDIS, IOT_CORE, KINESIS)
"""What ``/health/deep`` checks, in order: the review's list (PostgreSQL, Redis, MQTT, Kinesis)."""

COMMAND_ROUTE = "POST /api/v1/devices/{id}/commands"
"""The command API, as the app calls it through the gateway."""


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One probe's answer: healthy, or what failed and how."""

    healthy: bool
    failing: str | None = None
    """The dependency (``iot-core``) or the step (``command_api``, ``device``) that failed."""
    detail: str = ""
    """Why: the error's reason (``timeout``, ``refused``), an HTTP status, a missed deadline."""


HEALTHY = ProbeResult(True)


def liveness() -> Logic[ProbeResult]:
    """``GET /health``: answered by the process itself, touching no dependency."""
    return HEALTHY
    yield  # a generator that asks for nothing: the answer is that the process answered


@dataclass(frozen=True, slots=True)
class DeepCheckSettings:
    """What ``/health/deep`` checks and how long each check may take."""

    dependencies: tuple[str, ...] = DEEP_DEPENDENCIES
    check_timeout: float = 0.5
    topic: str = "health/device-manager"
    """The broker check's test topic: nobody subscribes, so the publish reaches no device."""


def _check(settings: DeepCheckSettings, dependency: str) -> Operation:
    """The cheapest request that proves ``dependency`` works for the device manager."""
    if dependency == IOT_CORE:
        return Publish(IOT_CORE, settings.topic, {"probe": "deep"}, qos=1, timeout=settings.check_timeout)
    return Ping(dependency, timeout=settings.check_timeout)


def deep_check(settings: DeepCheckSettings) -> Logic[ProbeResult]:
    """``GET /health/deep``: each dependency in turn; unhealthy at the first that fails."""
    for dependency in settings.dependencies:
        try:
            yield _check(settings, dependency)
        except OpError as error:
            return ProbeResult(False, dependency, error.reason)
    return HEALTHY


class CanaryPort(Protocol):
    """What the synthetic monitor learns from its canary device (a device simulator it owns)."""

    def applied(self, intent: str) -> bool:
        """Whether the canary has applied the command sent for ``intent``."""


@dataclass(frozen=True, slots=True)
class SyntheticSettings:
    """The synthetic command probe: which canary, and how long the whole path may take."""

    device_id: int
    deadline: float
    """From sending the command to the canary applying it."""
    poll: float = 1.0
    """How often the monitor looks whether the canary applied it."""
    user: str = SYNTHETIC_MONITOR


def synthetic_command(settings: SyntheticSettings, canary: CanaryPort, run: int) -> Logic[ProbeResult]:
    """Command the canary through the gateway, as the app would, and wait for it to be applied.

    ``run`` numbers the probe's runs: it names the intent and alternates on/off, so a
    repeated delivery changes nothing.  Unhealthy on an error or a non-2xx answer
    (``command_api``), or when the canary has not applied the command by the deadline
    (``device``) -- the case a 202 "accepted" hides from the app.
    """
    intent = f"synthetic-{run}"
    body = {"device_id": settings.device_id, "action": "on" if run % 2 == 0 else "off", "intent": intent}
    headers = {"Authorization": f"Bearer token-{settings.user}"}
    started: float = yield Now()
    deadline = started + settings.deadline
    try:
        response: HttpResponse = yield HttpRequest(
            API_GATEWAY, COMMAND_ROUTE, settings.user, body, headers, timeout=settings.deadline
        )
    except OpError as error:
        return ProbeResult(False, "command_api", error.reason)
    if not response.ok:
        return ProbeResult(False, "command_api", f"HTTP {response.status}")
    while not canary.applied(intent):
        now: float = yield Now()
        if now >= deadline:
            return ProbeResult(False, "device", f"not applied within {settings.deadline:g}s")
        yield Sleep(min(settings.poll, deadline - now))
    return HEALTHY


class ProbeTracker:
    """A probe's verdict from its consecutive results, by the kubelet's rule.

    As ``doProbe`` in kubernetes ``pkg/kubelet/prober/worker.go``: a run of equal results
    is counted, and the verdict becomes "unhealthy" once ``failure_threshold`` failures
    follow one another, "healthy" once ``success_threshold`` successes do; a shorter run
    leaves it as it was.  Kubernetes' defaults are 3 and 1.  The verdict starts healthy
    (the twin starts from a running, ready system).

    Args:
        failure_threshold: Consecutive failures that make the verdict unhealthy (>= 1).
        success_threshold: Consecutive successes that make it healthy again (>= 1).
    """

    __slots__ = ("_last", "_run", "failure_threshold", "healthy", "success_threshold")

    def __init__(self, failure_threshold: int = 3, success_threshold: int = 1) -> None:
        if failure_threshold < 1 or success_threshold < 1:
            raise ValueError(
                f"thresholds must be at least 1 (got failure {failure_threshold}, success {success_threshold})"
            )
        self.failure_threshold = failure_threshold
        self.success_threshold = success_threshold
        self.healthy = True
        self._last: bool | None = None
        self._run = 0

    def record(self, ok: bool) -> bool:
        """Count one result; whether the verdict changed."""
        if ok == self._last:
            self._run += 1
        else:
            self._last = ok
            self._run = 1
        needed = self.success_threshold if ok else self.failure_threshold
        if self._run < needed or ok == self.healthy:
            return False
        self.healthy = ok
        return True
