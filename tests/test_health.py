"""Health checks of the device manager (S3): the probe logic, the probe rule, and time to detect.

The logic runs through :func:`sim.driver.run_direct` with fakes, as in ``test_logic.py``;
the rule is checked against a restatement of Kubernetes' on every sequence hypothesis finds;
time to detect is measured on small hand-made scenarios whose bounds follow from the probes'
settings alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.config import Scenario
from models.logic.health import (
    DEEP_DEPENDENCIES,
    HEALTHY,
    DeepCheckSettings,
    ProbeResult,
    ProbeTracker,
    SyntheticSettings,
    deep_check,
    liveness,
    synthetic_command,
)
from models.monitoring import effect_window
from models.names import API_GATEWAY, IOT_CORE, REDIS
from models.ops import HttpRequest, HttpResponse, Publish
from models.results import summarise
from models.twin import build
from sim.actor import PONG
from sim.driver import run_direct
from sim.faults import Crash
from sim.ops import Operation, OperationTimeout, Ping, Rejected, Unavailable


# -- the checks, driven directly -------------------------------------------------------------
def test_liveness_asks_for_nothing() -> None:
    result, clock = run_direct(liveness(), lambda op: pytest.fail(f"/health touched {op.name}"))
    assert result == HEALTHY and clock == 0.0


def test_deep_check_asks_each_dependency_in_the_reviews_order_with_its_timeout() -> None:
    asked: list[Operation] = []

    def backend(op: Operation) -> Any:
        asked.append(op)
        return {"puback": True, "message_id": None} if isinstance(op, Publish) else PONG

    result, _ = run_direct(deep_check(DeepCheckSettings(check_timeout=0.25)), backend)
    assert result == HEALTHY
    assert [op.target for op in asked] == list(DEEP_DEPENDENCIES)
    assert all(op.timeout == 0.25 for op in asked)
    publish = next(op for op in asked if isinstance(op, Publish))
    assert publish.qos == 1 and not publish.topic.startswith("devices/")  # a test topic no device hears
    assert all(isinstance(op, Ping) for op in asked if op.target != IOT_CORE)


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (OperationTimeout("timeout"), "timeout"),
        (Unavailable("refused"), "refused"),
        (Rejected("throttled"), "throttled"),
    ],
)
def test_deep_check_names_the_first_failing_dependency_and_stops(error: Exception, reason: str) -> None:
    asked: list[str] = []

    def backend(op: Operation) -> Any:
        asked.append(op.target)
        if op.target == IOT_CORE:
            raise error
        return PONG

    result, _ = run_direct(deep_check(DeepCheckSettings()), backend)
    assert result == ProbeResult(False, IOT_CORE, reason)
    assert asked == [*DEEP_DEPENDENCIES[: DEEP_DEPENDENCIES.index(IOT_CORE) + 1]]  # Kinesis not asked


def test_deep_check_covers_only_the_dependencies_it_is_given() -> None:
    result, _ = run_direct(deep_check(DeepCheckSettings(dependencies=(REDIS,))), lambda op: PONG)
    assert result == HEALTHY


class Canary:
    """A canary that has applied the command from its ``on_look``-th look on (never if None)."""

    def __init__(self, on_look: int | None) -> None:
        self.on_look, self.looks = on_look, 0

    def applied(self, intent: str) -> bool:
        self.looks += 1
        return self.on_look is not None and self.looks >= self.on_look


def _synthetic(answer: Callable[[HttpRequest], Any], on_look: int | None) -> tuple[ProbeResult, float]:
    """Run one synthetic probe (deadline 10 s, a look every second) against ``answer``."""
    requests: list[HttpRequest] = []

    def backend(op: Operation) -> Any:
        assert isinstance(op, HttpRequest)
        requests.append(op)
        return answer(op)

    settings = SyntheticSettings(device_id=200, deadline=10.0, poll=1.0)
    outcome = run_direct(synthetic_command(settings, Canary(on_look), 3), backend)
    (request,) = requests
    assert request.target == API_GATEWAY and request.timeout == 10.0
    assert request.body == {"device_id": 200, "action": "off", "intent": "synthetic-3"}
    assert request.headers["Authorization"].startswith("Bearer ")
    return outcome


def test_synthetic_probe_is_healthy_once_the_canary_applies_the_command() -> None:
    result, clock = _synthetic(lambda op: HttpResponse(202, {"command_id": 1}), on_look=4)
    assert result == HEALTHY and clock == 3.0  # looks at 0, 1, 2 and 3 s


def test_synthetic_probe_sees_an_accepted_command_that_goes_nowhere() -> None:
    """The 202 a user would believe is not enough: the canary must apply the command."""
    result, clock = _synthetic(lambda op: HttpResponse(202, {"command_id": 1}), on_look=None)
    assert result.healthy is False and result.failing == "device"
    assert clock == 10.0  # it gave up exactly at the deadline


def test_synthetic_probe_fails_on_an_error_answer_or_no_answer() -> None:
    result, _ = _synthetic(lambda op: HttpResponse(503, {"error": "not ready"}), on_look=1)
    assert result == ProbeResult(False, "command_api", "HTTP 503")

    def hang(op: HttpRequest) -> Any:
        raise OperationTimeout("timeout")

    result, _ = _synthetic(hang, on_look=1)
    assert result == ProbeResult(False, "command_api", "timeout")


# -- the probe rule ----------------------------------------------------------------------------
def _reference(results: list[bool], failure: int, success: int) -> list[bool]:
    """Kubernetes' rule restated: the verdict after each result (healthy to begin with)."""
    verdict, verdicts = True, []
    for i, ok in enumerate(results):
        run = 1
        while run <= i and results[i - run] == ok:
            run += 1
        if run >= (success if ok else failure):
            verdict = ok
        verdicts.append(verdict)
    return verdicts


@given(
    st.lists(st.booleans(), max_size=60),
    st.integers(min_value=1, max_value=6),
    st.integers(min_value=1, max_value=6),
)
def test_probe_tracker_follows_the_kubelets_rule(results: list[bool], failure: int, success: int) -> None:
    tracker = ProbeTracker(failure, success)
    before = True
    for ok, expected in zip(results, _reference(results, failure, success), strict=True):
        changed = tracker.record(ok)
        assert tracker.healthy == expected
        assert changed == (expected != before)
        before = expected


def test_probe_tracker_thresholds() -> None:
    tracker = ProbeTracker(failure_threshold=3, success_threshold=2)
    assert [tracker.record(ok) for ok in (False, False, True, False, False)] == [False] * 5
    assert tracker.healthy  # never three failures in a row
    assert tracker.record(False) and not tracker.healthy  # the third in a row
    assert not tracker.record(True) and not tracker.healthy  # one success is not enough
    assert tracker.record(True) and tracker.healthy
    with pytest.raises(ValueError, match="at least 1"):
        ProbeTracker(failure_threshold=0)


# -- time to detect, measured in the twin --------------------------------------------------------
def _scenario(**changes: Any) -> Scenario:
    data: dict[str, Any] = {
        "name": "health-test",
        "duration": 420.0,
        "seed": 7,
        "timeouts": "review",
        "fleet": {"meters": 20, "controllables": 50},
        "workload": {"mobile_users": 300, "commands_per_user_per_hour": 6.0, "dashboard_users": 0},
        "health": {"deep": {}, "synthetic": {}, "gate_traffic": True},
        "faults": [{"kind": "crash", "target": "iot-core", "at": 60.0, "restart_after": 120.0}],
    }
    data.update(changes)
    return Scenario.model_validate(data)


def _run(spec: Scenario, seed: int = 7) -> dict[str, Any]:
    world = build(spec, seed)
    world.kernel.run(until=spec.duration)
    return summarise(world)


@pytest.fixture(scope="module")
def crashed_broker() -> dict[str, Any]:
    return _run(_scenario())


def test_deep_probe_detects_the_broker_crash_within_its_thresholds(crashed_broker: dict[str, Any]) -> None:
    """Period 10 s, 3 failures: the first failing probe starts within a period of the crash,
    the third two periods later; a refused publish fails at once."""
    (fault,) = crashed_broker["health"]["faults"]
    assert (fault["kind"], fault["target"], fault["start"], fault["effect_end"]) == ("crash", "iot-core", 60.0, 180.0)
    deep = fault["detection"]["deep"]
    assert 60.0 + 20.0 <= deep["at"] <= 60.0 + 30.0 + 0.5
    assert deep["delay_s"] == pytest.approx(deep["at"] - 60.0)
    assert deep["failing"] == IOT_CORE
    probes = crashed_broker["health"]["probes"]
    assert probes["deep"]["mttd_s"] == pytest.approx(deep["delay_s"])
    assert probes["deep"]["faults_detected"] == 1 and probes["deep"]["false_alarms"] == 0


def test_shallow_probe_stays_green_and_the_synthetic_probe_sees_the_outage(crashed_broker: dict[str, Any]) -> None:
    health = crashed_broker["health"]
    (fault,) = health["faults"]
    assert fault["detection"]["shallow"] == {"at": None, "delay_s": None, "failing": None}
    assert health["probes"]["shallow"]["failures"] == 0 and health["probes"]["shallow"]["faults_missed"] == 1
    assert health["probes"]["shallow"]["mttd_s"] is None
    synthetic = fault["detection"]["synthetic"]
    assert 60.0 <= synthetic["at"] <= 60.0 + 60.0 + 10.0  # a run a minute, a 10 s deadline
    assert health["probes"]["synthetic"]["false_alarms"] == 0


def test_readiness_gate_refuses_while_not_ready_and_recovers(crashed_broker: dict[str, Any]) -> None:
    health = crashed_broker["health"]
    assert health["readiness_probe"] == "deep" and health["requests_refused_not_ready"] > 0
    deep = [t for t in health["transitions"] if t["probe"] == "deep"]
    assert [t["to"] for t in deep] == ["unhealthy", "healthy"]
    assert 180.0 <= deep[1]["t"] <= 180.0 + 10.0 + 1.0  # the first probe after the restart passes
    assert health["probes"]["deep"]["healthy"] is True
    assert crashed_broker["invariants_held"]


def test_without_the_gate_the_deep_probe_only_alerts() -> None:
    health = _run(_scenario(health={"deep": {}}))["health"]
    assert health["probes"]["deep"]["faults_detected"] == 1
    assert health["requests_refused_not_ready"] == 0 and health["gate_traffic"] is False


def test_the_shallow_probe_does_see_its_own_process_die() -> None:
    """Not blind to everything: a crashed device manager refuses the kubelet's /health."""
    spec = _scenario(
        health={}, faults=[{"kind": "crash", "target": "device-manager", "at": 60.0, "restart_after": 60.0}]
    )
    shallow = _run(spec)["health"]["probes"]["shallow"]
    assert shallow["faults_detected"] == 1 and 20.0 <= shallow["mttd_s"] <= 30.0
    assert shallow["unhealthy_s"] > 0


def test_a_probe_that_fails_with_no_fault_is_a_false_alarm() -> None:
    spec = _scenario(health={"deep": {"failure_threshold": 1}}, faults=[])
    world = build(spec, 7)
    world.kernel.run(until=100.0)
    world.kernel.actors[REDIS].error_rate = 1.0  # a failure no scheduled fault explains
    world.kernel.run(until=200.0)
    deep = summarise(world)["health"]["probes"]["deep"]
    assert deep["false_alarms"] == 1 and deep["faults_detected"] == 0


def test_effect_windows() -> None:
    crash = Crash.model_validate({"kind": "crash", "target": "iot-core", "at": 10.0, "restart_after": 30.0})
    assert effect_window(crash) == (10.0, 40.0)
    spec = _scenario(faults=[{"kind": "partition", "target": "iot-core", "at": 5.0, "for": 7.0}])
    assert effect_window(spec.faults[0]) == (5.0, 12.0)


def test_the_deep_checks_default_to_the_reviews_list() -> None:
    from models.config import HealthConfig

    assert tuple(HealthConfig().deep_checks) == DEEP_DEPENDENCIES


def test_health_section_at_build_time_has_every_configured_probe() -> None:
    """Expectations are checked against the result of the world as built: the paths must be there."""
    health = summarise(build(_scenario(), seed=0))["health"]
    assert sorted(health["probes"]) == ["deep", "shallow", "synthetic"]
    assert health["probes"]["deep"]["mttd_s"] is None and health["faults"] == []
    plain = summarise(build(_scenario(health={}), seed=0))["health"]
    assert sorted(plain["probes"]) == ["shallow"] and plain["readiness_probe"] == "shallow"


# -- the engine's Ping ---------------------------------------------------------------------------
def test_actors_answer_ping_themselves_without_service_time() -> None:
    spec = _scenario(health={"deep": {"period": 1.0}}, faults=[])
    world = build(spec, 7)
    world.kernel.run(until=30.0)
    spans = [s for s in world.kernel.spans.summary() if s["operation"] == "Ping"]
    assert {s["target"] for s in spans} == {"db-primary", "redis", "kinesis"}
    assert all(s["outcome"] == "ok" and s["origin"] == "device-manager" for s in spans)
    assert all(s["p99"] < 0.01 for s in spans)  # network round trips only, no query time


def test_the_findings_table_shows_na_for_a_probe_a_variant_does_not_run() -> None:
    from sim.compare import markdown_table
    from tests.conftest import scenario

    spec = scenario("s3-health-checks")
    probe = {"faults_detected": 1, "turned_unhealthy": 1, "worst_ttd_s": 25.0, "false_alarms": 0}
    base = {"flows": {"commands": {"accepted_but_failed": 100}}, "health": {"requests_refused_not_ready": 0}}
    variants = {}
    for name in spec.variants:
        probes = {"shallow": {**probe, "faults_detected": 0, "turned_unhealthy": 0}}
        probes.update({kind: probe for kind in ("deep", "synthetic") if kind in name})
        variants[name] = {**base, "health": {**base["health"], "probes": probes}}
    body = {"variants": variants, "expectations_held": True, "expectations": []}
    table = markdown_table({"s3-health-checks": (spec, body)})
    row = "| `health.probes.deep.worst_ttd_s` | n/a | deep-checks: 25, deep-alert-only: 25, synthetic-probe: n/a |"
    assert row in table
