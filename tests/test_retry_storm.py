"""The app's retries consult a retry limiter; the command flow is windowed around the faults.

Why these tests: a retry storm is a property of many clients' retries added up, and a
budget stops it only if the app really asks the limiter before every retry, pays for it,
and reports its successes back (an AWS quota refills from successes alone).  The logic is
driven directly (``run_direct``), as a real service's unit tests would; the config section
is checked for the sources' defaults and for parameters of another kind; the windows that
judge recovery are pure functions of the fault log and the time series.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from models.config import RetryBudgetConfig, Scenario
from models.logic.clients import AppSettings, send_command
from models.ops import HttpResponse
from models.policies import AwsRetryQuota, GrpcRetryThrottle, RetryBudget, RetryKind, RetryPolicy
from models.results import summarise
from models.twin import build
from models.windows import trigger_span, windows
from sim.driver import run_direct
from sim.ops import Operation, OperationTimeout, OpError, Unavailable

FIXED = AppSettings(app_timeout=10.0, app_retry=RetryPolicy.fixed(2.0, 4.0), send_idempotency_keys=False)


def answers(*outcomes: Any) -> Any:
    """A handler that gives ``outcomes`` in turn: an HTTP status, or an OpError to raise."""
    queue = list(outcomes)

    def handle(op: Operation) -> Any:
        outcome = queue.pop(0)
        if isinstance(outcome, OpError):
            raise outcome
        return HttpResponse(outcome, {}, {})

    return handle


class Recording:
    """A limiter that allows everything and notes each call, to check the order of the protocol."""

    def __init__(self, allow: bool = True) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.allow = allow

    def on_request(self, now: float) -> None:
        self.calls.append(("request", None))

    def on_failure(self, now: float, kind: RetryKind = "transient") -> None:
        self.calls.append(("failure", kind))

    def can_retry(self, now: float, kind: RetryKind = "transient") -> bool:
        return self.allow

    def on_retry(self, now: float, kind: RetryKind = "transient") -> None:
        self.calls.append(("retry", kind))

    def try_retry(self, now: float, kind: RetryKind = "transient") -> bool:
        self.calls.append(("try", kind))
        return self.allow

    def on_success(self, now: float, last_retry: RetryKind | None = None) -> None:
        self.calls.append(("success", last_retry))


def send(handle: Any, limiter: Any = None, app: AppSettings = FIXED) -> Any:
    return run_direct(send_command(app, "u", 1, "on", "i-1", limiter=limiter), handle)[0]


# -- the app logic consults the limiter ----------------------------------------------------------


def test_the_limiter_hears_every_step_of_a_call_in_order() -> None:
    limiter = Recording()
    result = send(answers(OperationTimeout("timeout"), 429, 202), limiter)
    assert result.accepted and result.attempts == 3 and result.gave_up is None
    assert limiter.calls == [
        ("request", None),
        ("failure", "timeout"),
        ("try", "timeout"),
        ("failure", "throttle"),
        ("try", "throttle"),
        ("success", "throttle"),  # the kind of the call's last retry: what an AWS quota refunds
    ]


def test_a_retry_refused_by_an_empty_budget_ends_the_intent() -> None:
    quota = AwsRetryQuota(capacity=10)  # one timeout retry's worth
    result = send(answers(OperationTimeout("timeout"), OperationTimeout("timeout"), 202), quota)
    assert not result.accepted
    assert result.attempts == 2 and result.status == "timeout" and result.gave_up == "budget"
    assert quota.available == 0
    refused = Recording(allow=False)
    result = send(answers(503), refused)
    assert result.attempts == 1 and result.status == 503 and result.gave_up == "budget"


def test_a_success_refunds_the_aws_quota() -> None:
    quota = AwsRetryQuota()
    send(answers(OperationTimeout("timeout"), 202), quota)
    assert quota.available == 500  # paid 10 for the timeout retry, refunded 10 on success
    send(answers(Unavailable("connection_reset"), Unavailable("connection_reset"), 503), quota)
    assert quota.available == 490  # two transient retries, 5 each, and no success to refund them
    send(answers(202), quota)
    assert quota.available == 491  # a first-try success refunds 1


def test_each_call_deposits_into_a_finagle_budget() -> None:
    budget = RetryBudget(percent_can_retry=0.2, min_retries_per_s=0.0, ttl_s=10.0)
    for _ in range(3):
        send(answers(202), budget)
    # the fourth call's own deposit makes 4 x 0.2 = 0.8 retries: not one whole retry
    assert send(answers(503, 202), budget).gave_up == "budget"
    retried = send(answers(503, 202), budget)  # the fifth deposit makes 1.0: one retry, paid
    assert retried.accepted and retried.attempts == 2
    assert budget.balance(0.0) == pytest.approx(0.0)


def test_grpc_throttling_counts_the_apps_failures() -> None:
    throttle = GrpcRetryThrottle(max_tokens=4, token_ratio=0.5)
    result = send(answers(503, 503, 503), throttle)
    # 4 -> 3 (retry allowed: 3 > 2), 3 -> 2 (2 is not above 2: refused)
    assert result.attempts == 2 and result.gave_up == "budget" and throttle.tokens == 2


def test_a_failure_retrying_cannot_fix_does_not_reach_the_limiter() -> None:
    limiter = Recording()
    result = send(answers(400), limiter)
    assert not result.accepted and result.gave_up == "not_retryable"
    assert limiter.calls == [("request", None)]


def test_without_a_limiter_the_schedule_alone_decides() -> None:
    result = send(answers(503, 503, 503))
    assert result.attempts == 3 and result.gave_up == "attempts"


def _outcome(tag: str | int) -> Any:
    if tag == "timeout":
        return OperationTimeout("timeout")
    if tag == "reset":
        return Unavailable("connection_reset")
    return tag


FAILURES = st.lists(st.sampled_from([409, 429, 503, "timeout", "reset"]).map(_outcome), min_size=3, max_size=3)
OUTCOMES = st.lists(
    st.sampled_from([202, 400, 409, 429, 503, "timeout", "reset"]).map(_outcome), min_size=3, max_size=3
)


@settings(max_examples=200, deadline=None)
@given(calls=st.lists(FAILURES, min_size=1, max_size=40), capacity=st.integers(0, 100))
def test_without_successes_a_shared_quota_allows_at_most_capacity_over_five_retries(
    calls: list[list[Any]], capacity: int
) -> None:
    """However many clients' calls share it, a quota that no success refills pays for at most
    ``capacity / 5`` retries (5 tokens the cheapest): the storm's amplification is bounded."""
    quota = AwsRetryQuota(capacity=capacity)
    retries = 0
    for outcomes in calls:
        result = send(answers(*outcomes), quota)
        assert not result.accepted
        retries += result.attempts - 1
    assert retries * 5 <= capacity
    assert quota.available >= 0


@settings(max_examples=200, deadline=None)
@given(calls=st.lists(OUTCOMES, min_size=1, max_size=30), capacity=st.integers(0, 60))
def test_any_answers_keep_the_quota_in_bounds_and_the_attempts_within_the_schedule(
    calls: list[list[Any]], capacity: int
) -> None:
    quota = AwsRetryQuota(capacity=capacity)
    for outcomes in calls:
        result = send(answers(*outcomes), quota)
        assert 1 <= result.attempts <= 3
        assert result.accepted == (outcomes[result.attempts - 1] == 202)
        assert (result.gave_up is None) == result.accepted
        assert 0 <= quota.available <= capacity


# -- the config section ------------------------------------------------------------------------


def test_none_as_designed_and_each_kind_with_its_sources_defaults() -> None:
    assert RetryBudgetConfig().limiter() is None
    aws = RetryBudgetConfig(kind="aws").limiter()
    assert isinstance(aws, AwsRetryQuota) and aws.capacity == 500
    assert (aws.cost("transient"), aws.cost("timeout"), aws.cost("throttle")) == (5, 10, 5)
    finagle = RetryBudgetConfig(kind="finagle").limiter()
    assert isinstance(finagle, RetryBudget) and finagle.balance(0.0) == 100.0  # 10/s x 10 s reserve
    grpc = RetryBudgetConfig(kind="grpc").limiter()
    assert isinstance(grpc, GrpcRetryThrottle) and (grpc.max_tokens, grpc.token_ratio) == (10.0, 0.1)
    assert RetryBudgetConfig(kind="aws").limiter() is not aws  # one per client instance


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "aws", "max_tokens": 5}, "max_tokens: parameter(s) of kind 'grpc'"),
        ({"capacity": 100}, "capacity: parameter(s) of kind 'aws', but this budget's kind is 'none'"),
        ({"kind": "finagle", "ttl": "2m"}, "ttl must be within 1 s and 60 s"),
        ({"kind": "gcra"}, "kind"),
        ({"kind": "aws", "scope": "global"}, "scope"),
        ({"kind": "aws", "capacity": -1}, "capacity"),
        ({"kind": "grpc", "token_ratio": 0}, "token_ratio"),
    ],
)
def test_bad_budgets_are_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        RetryBudgetConfig(**fields)


def test_the_budget_is_a_workload_field_off_as_designed() -> None:
    spec = Scenario(name="x", duration=60.0)
    assert spec.workload.app_retry_budget.kind == "none"
    spec = Scenario(name="x", duration=60.0, workload={"app_retry_budget": {"kind": "grpc", "token_ratio": 0.2}})
    assert spec.workload.app_retry_budget.limiter() is not None


# -- where the limiters live --------------------------------------------------------------------


def small(budget: dict[str, Any], **workload: Any) -> Scenario:
    return Scenario(
        name="small",
        duration=120.0,
        metrics_interval=10.0,
        fleet={"meters": 0, "controllables": 20},
        workload={"mobile_users": 30, "commands_per_user_per_hour": 120, "dashboard_users": 0,
                  "app_retry_budget": budget, **workload},
        faults=[{"kind": "latency", "target": "db-primary", "at": 40.0, "for": 20.0, "add": 0.5}],
    )  # fmt: skip


def test_one_limiter_per_phone_or_one_shared() -> None:
    world = build(small({"kind": "aws"}), seed=1)
    world.kernel.run(until=120.0)
    users = {f"user-{i}" for i in range(30)}
    assert set(world.mobile.limiters) <= users and len(world.mobile.limiters) > 1
    shared = build(small({"kind": "aws", "scope": "shared"}), seed=1)
    shared.kernel.run(until=120.0)
    assert shared.mobile.limiters == {} and summarise(shared)["components"]["mobile"]["retry_limiters"] == 1
    plain = build(small({}), seed=1)
    assert summarise(plain)["components"]["mobile"]["retry_limiters"] == 0


# -- the windows ---------------------------------------------------------------------------------


def test_the_trigger_spans_the_logged_faults() -> None:
    assert trigger_span([], 50.0) is None
    log = [{"start": 30.0, "end": 40.0}, {"start": 35.0, "end": None}, {"start": 20.0, "end": 20.0}]
    assert trigger_span(log, 50.0) == (20.0, 50.0)  # an active fault ends the trigger now


def test_windows_are_whole_intervals_around_the_trigger() -> None:
    assert windows(None, 10.0, 95.0) == {"before": (0, 9), "during": None, "after": None, "last": None}
    exact = windows((300.0, 360.0), 10.0, 900.0)
    assert exact == {"before": (0, 30), "during": (30, 36), "after": (36, 90), "last": (60, 90)}
    widened = windows((305.0, 355.0), 10.0, 900.0)
    assert widened["during"] == (30, 36)  # every interval the trigger touches
    short = windows((300.0, 360.0), 10.0, 400.0)
    assert short["after"] == (36, 40) and short["last"] == (36, 40)  # after shorter than before: all of it
    inside = windows((300.0, 360.0), 10.0, 330.0)
    assert inside["during"] == (30, 33) and inside["after"] is None and inside["last"] is None


def test_a_result_taken_before_the_trigger_has_only_a_before_window() -> None:
    world = build(small({}), seed=2)
    world.kernel.run(until=30.0)
    figures = summarise(world)["flows"]["commands"]
    assert figures["windows"]["before"]["intents"] > 0 and figures["windows"]["during"]["goodput_per_s"] is None
    world.kernel.run(until=120.0)
    figures = summarise(world)["flows"]["commands"]
    windows_ = figures["windows"]
    assert (windows_["during"]["from_s"], windows_["during"]["to_s"], windows_["after"]["to_s"]) == (40.0, 60.0, 120.0)
    total = sum(windows_[w]["requests"] for w in ("before", "during", "after"))
    assert figures["amplification"] == pytest.approx(
        total / sum(windows_[w]["intents"] for w in ("before", "during", "after"))
    )
