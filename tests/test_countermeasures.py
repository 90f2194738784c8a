"""The review's countermeasures wired into the system: bills (C5), the review's timeouts (C3),
ingest backpressure (S1), the dead letter policy (S2), breaker state over time and the
gateway's refusals (C3) -- each measured on a small run, against a figure that could fail."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from models.config import REVIEW_TIMEOUTS, GatewayConfig, Scenario
from models.logic.billing import BillingSettings, bills_usd, estimated_energy_wh
from models.logic.gateway import PRIORITY_HEADER, GatewaySettings, route_request
from models.names import API_GATEWAY
from models.ops import HttpRequest, HttpResponse
from models.policies import KeyedRateLimiter
from models.results import summarise
from models.twin import TWIN, build
from sim.driver import run_direct
from sim.ops import Operation


def _run(**fields: Any) -> dict[str, Any]:
    spec = Scenario.model_validate({"name": "countermeasure", "seed": 7, **fields})
    return TWIN.run(spec, spec.seed)


# -- bills (C5) --------------------------------------------------------------------------------


def test_estimation_bills_each_gap_at_the_homes_mean_valid_power() -> None:
    energy = np.array([1000.0, 0.0, 500.0])
    readings = np.array([10, 0, 5])
    gaps = np.array([2, 3, 0])
    estimated = estimated_energy_wh(energy, readings, gaps, hours_per_reading=0.5)
    # home 0: mean power 1000 Wh / (10 x 0.5 h) = 200 W, two gaps of 0.5 h -> +200 Wh;
    # home 1 has no valid reading: no mean, its gaps stay unbilled; home 2 has no gap.
    assert estimated.tolist() == [1200.0, 0.0, 500.0]
    plain = bills_usd(BillingSettings(0.2, estimate_gaps=False), energy, readings, gaps, 0.5)
    assert plain.tolist() == pytest.approx([0.2, 0.0, 0.1])
    assert bills_usd(BillingSettings(0.2, estimate_gaps=True), energy, readings, gaps, 0.5)[0] == pytest.approx(0.24)


def test_without_faults_every_bill_is_what_the_meter_measured() -> None:
    body = _run(duration=600, fleet={"meters": 200, "controllables": 10}, workload={"mobile_users": 0})
    bills = body["flows"]["billing"]
    assert bills["homes"] == 200 and bills["period_s"] == 540
    assert bills["true_usd"] > 0 and bills["billed_usd"] == bills["true_usd"]
    assert bills["max_abs_error_usd"] == 0 and bills["homes_off_by_a_cent_or_more"] == 0


def test_corrupt_readings_make_negative_bills_and_validation_with_estimation_corrects_them() -> None:
    common: dict[str, Any] = {"duration": 900, "fleet": {"meters": 200, "controllables": 10, "corrupt_fraction": 0.02}}
    as_designed = _run(**common)["flows"]["billing"]
    assert as_designed["negative_bills"] > 0 and as_designed["lowest_bill_usd"] < 0
    assert as_designed["homes_off_by_a_cent_or_more"] > 0
    fixed = _run(
        **common,
        ingest={"validate": True, "dedup": True},
        analytics={"billing": {"estimate_gaps": True}},
    )["flows"]["billing"]
    assert fixed["negative_bills"] == 0 and fixed["estimated_intervals"] > 0
    assert fixed["homes_off_by_a_cent_or_more"] == 0 and fixed["max_abs_error_usd"] < 0.01


# -- the review's timeouts (C3) ------------------------------------------------------------------


def test_review_timeouts_fill_every_unset_timeout_and_leave_given_ones() -> None:
    designed = Scenario.model_validate({"name": "t", "duration": 60})
    assert designed.device_manager.mqtt_timeout is None and designed.gateway.upstream_timeout is None
    review = Scenario.model_validate(
        {"name": "t", "duration": 60, "timeouts": "review", "device_manager": {"mqtt_timeout": None, "db_timeout": 2}}
    )
    for section, values in REVIEW_TIMEOUTS.items():
        for field, seconds in values.items():
            given = {"mqtt_timeout": None, "db_timeout": 2.0} if section == "device_manager" else {}
            assert getattr(getattr(review, section), field) == given.get(field, seconds), (section, field)


# -- backpressure (S1) ---------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [None, 1500])
def test_backpressure_bounds_the_write_queue_after_an_outage(limit: int | None) -> None:
    body = _run(
        duration=600,
        fleet={"meters": 1000, "controllables": 10},
        workload={"mobile_users": 0, "dashboard_users": 0},
        ingest={"write_queue_limit": limit},
        faults=[{"kind": "crash", "target": "ingest-consumer", "at": 60, "restart_after": 60}],
    )
    peak = body["components"]["ingest-consumer"]["write_queue_peak"]
    if limit is None:
        assert peak > 1500  # a minute of backlog (6,000 readings) comes back in two batches
    else:
        assert 0 < peak <= limit
    assert body["flows"]["sensor"]["unprocessed_in_stream"] < 1000 and body["invariants_held"]


# -- dead letters (S2) ---------------------------------------------------------------------------


def test_dead_letters_are_counted_over_time_and_nothing_crash_loops() -> None:
    body = _run(
        duration=300,
        fleet={"meters": 100, "controllables": 10},
        ingest={"dead_letter": True},
        faults=[{"kind": "poison", "target": "meters", "at": 60, "count": 3}],
    )
    assert body["components"]["ingest-consumer"]["poison_crashes"] == 0
    assert body["components"]["dlq"]["depth"] == 3 == sum(body["timeseries"]["dlq.messages"])


# -- breakers over time and the gateway's refusals (C3) -------------------------------------------


def test_breaker_state_over_time_accounts_for_the_whole_run() -> None:
    body = _run(
        duration=900,
        fleet={"meters": 100, "controllables": 10},
        workload={"dashboard_users": 300, "queries_per_user_per_hour": 60},
        analytics={"breaker": {}, "query_timeout": 2},
        faults=[{"kind": "latency", "target": "db-replica-1", "at": 120, "for": 300, "add": 15}],
    )
    breakers = body["flows"]["analytics"]["breakers"]
    for figures in breakers.values():
        assert sum(figures["seconds_in"].values()) == pytest.approx(900)
    stalled = breakers["db-replica-1"]
    opened = sum(1 for t in body["flows"]["analytics"]["breaker_transitions"] if t["to"] == "open")
    assert stalled["times_opened"] >= opened > 0  # the flow lists the first 50 transitions only
    assert stalled["seconds_in"]["open"] > 0 and breakers["db-replica-2"]["times_opened"] == 0


def test_breaker_summary_is_a_pure_reading_of_an_open_breaker() -> None:
    spec = Scenario.model_validate(
        {
            "name": "t",
            "duration": 400,
            "fleet": {"meters": 100, "controllables": 10},
            "workload": {"dashboard_users": 300, "queries_per_user_per_hour": 60},
            "analytics": {"breaker": {}, "query_timeout": 2},
            "faults": [{"kind": "latency", "target": "db-replica-1", "at": 60, "for": 340, "add": 15}],
        }
    )
    world = build(spec, 7)
    world.kernel.run(until=200)
    transitions = len(world.analytics.transitions)
    first = summarise(world)["flows"]["analytics"]["breakers"]
    assert summarise(world)["flows"]["analytics"]["breakers"] == first
    assert len(world.analytics.transitions) == transitions  # a due half-open is read, not made to happen


def test_the_gateway_counts_what_its_bulkheads_refused() -> None:
    body = _run(
        duration=600,
        fleet={"meters": 50, "controllables": 100},
        workload={"mobile_users": 3000, "dashboard_users": 10},
        gateway={"bulkheads": {"device-manager": 20}},
        faults=[{"kind": "partition", "target": "device-manager", "other": ["iot-core"], "at": 60, "for": 300}],
    )
    gateway = body["components"]["api-gateway"]
    assert gateway["bulkhead_refused"]["device-manager"] > 0 and gateway["shed"] == 0


# -- priority when shedding (S1) -----------------------------------------------------------------


def _request(priority: str | None) -> HttpRequest:
    headers = {"Authorization": "Bearer token-u"}
    if priority is not None:
        headers[PRIORITY_HEADER] = priority
    return HttpRequest(API_GATEWAY, "POST /api/v1/devices/{id}/commands", "u", {"device_id": 1}, headers)


@pytest.mark.parametrize("load", [0.1, 0.3, 0.5, 0.95])
def test_low_priority_is_shed_first_and_users_only_above_the_common_line(load: float) -> None:
    settings = GatewaySettings(None, shed_above=0.9, shed_low_priority_above=0.3)

    def upstream(op: Operation) -> Any:
        return HttpResponse(202, {})

    def status(priority: str | None) -> int:
        limiter = KeyedRateLimiter.per_period(1000, 60)
        response, _ = run_direct(route_request(settings, _request(priority), limiter, load=load), upstream)
        return response.status

    assert status("low") == (503 if load > 0.3 else 202)
    assert status(None) == status("high") == (503 if load > 0.9 else 202)


def test_the_low_priority_line_may_not_be_above_the_common_one() -> None:
    with pytest.raises(ValidationError, match="shed first"):
        GatewayConfig(shed_above=0.5, shed_low_priority_above=0.8)
    assert GatewayConfig(shed_low_priority_above=0.8).shed_above is None


def test_a_schedule_sends_its_burst_and_priority_shedding_refuses_only_automation() -> None:
    common: dict[str, Any] = {
        "duration": 240,
        "fleet": {"meters": 10, "controllables": 3000},
        "device_manager": {"concurrency": 2},
        "broker": {"publish_limit_per_s": 5000},
        "workload": {
            "mobile_users": 600,
            "commands_per_user_per_hour": 30,
            "dashboard_users": 0,
            "automation": {"devices": 3000, "first_at": 60, "spread": 5, "low_priority": True},
        },
    }
    body = _run(**common, gateway={"shed_low_priority_above": 0.1})
    automation = body["components"]["automation"]
    assert automation["commands_sent"] == 3000 == sum(automation["answers"].values())
    gateway = body["components"]["api-gateway"]
    assert gateway["shed"] == gateway["shed_low_priority"] == automation["answers"]["503"] > 0
    assert body["flows"]["commands"]["success_rate"] == 1.0


# -- properties ------------------------------------------------------------------------------------


@given(
    st.lists(
        st.tuples(st.floats(0, 1e6, allow_nan=False), st.integers(0, 10_000), st.integers(0, 100)),
        min_size=1,
        max_size=20,
    ),
    st.floats(0.001, 1.0),
    st.floats(0.01, 1.0),
)
def test_estimation_adds_exactly_each_gap_at_the_mean_and_nothing_else(
    homes: list[tuple[float, int, int]], hours: float, tariff: float
) -> None:
    energy = np.array([h[0] for h in homes])
    readings = np.array([h[1] for h in homes])
    gaps = np.array([h[2] for h in homes])
    estimated = estimated_energy_wh(energy, readings, gaps, hours)
    for (wh, n, missing), got in zip(homes, estimated.tolist(), strict=True):
        expected = wh + (missing * wh / n if n else 0.0)  # mean power x hours, per gap
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-9)
    plain = bills_usd(BillingSettings(tariff, estimate_gaps=False), energy, readings, gaps, hours)
    assert plain.tolist() == pytest.approx((energy / 1000 * tariff).tolist())
    no_gaps = bills_usd(BillingSettings(tariff, estimate_gaps=True), energy, readings, np.zeros_like(gaps), hours)
    assert no_gaps.tolist() == pytest.approx(plain.tolist())


@given(st.floats(0.0, 1.0), st.floats(0.01, 1.0), st.floats(0.01, 1.0))
def test_shedding_by_priority_refuses_exactly_above_each_line(load: float, first: float, second: float) -> None:
    low_line, high_line = min(first, second), max(first, second)
    settings = GatewaySettings(None, shed_above=high_line, shed_low_priority_above=low_line)

    def status(priority: str | None) -> int:
        limiter = KeyedRateLimiter.per_period(1000, 60)
        logic = route_request(settings, _request(priority), limiter, load=load)
        return run_direct(logic, lambda op: HttpResponse(202, {}))[0].status

    assert status("low") == (503 if load > low_line else 202)
    assert status(None) == (503 if load > high_line else 202)
