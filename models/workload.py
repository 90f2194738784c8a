"""The people using the system: mobile users sending commands, dashboard users reading.

Both populations are Poisson arrival processes -- one process each, not one per user.
Every command is a *user intent* tracked by the ledger from the tap to its final state;
the app's own timeout-and-retry behaviour (:func:`models.logic.clients.send_command`)
decides how many requests the intent becomes.  Dashboard refreshes are counted good or
bad against the availability SLO (a 2xx within the dashboard's timeout).

Per interval the mobile users record intents started, requests sent (retries included),
intents the app heard accepted and intents whose final answer was a failure: offered
load, its amplification by retries, goodput and the users' error rate over time, the
figures of a retry storm; and the p95 of the app's response time, as the dashboards do
for their good refreshes.  A retry limiter
(``workload.app_retry_budget``) lives where an SDK keeps it, one per client instance: per
user (each phone's app), or, with ``scope: shared``, one for the whole population.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from models.config import WorkloadConfig
from models.logic.clients import AppResult, AppSettings, dashboard_query, send_command

if TYPE_CHECKING:
    from sim.kernel import Kernel

__all__ = ["DashboardUsers", "MobileUsers"]

from models.names import (
    APP_RESPONSE,
    COMMAND_FAILED,
    COMMAND_INTENTS,
    COMMAND_LATENCY_P95,
    COMMAND_REQUESTS,
    COMMAND_SUCCEEDED,
    COMMANDS,
    DASHBOARD_ERRORS,
    DASHBOARD_LATENCY,
    DASHBOARD_LATENCY_P95,
    DASHBOARD_REQUESTS,
    DASHBOARDS,
    MOBILE,
)
from models.ops import HttpResponse
from models.policies import RetryLimiter, RetryPolicy
from models.settings import settings_from
from sim.distributions import draws
from sim.metrics import Histogram
from sim.timers import call_at_delay


class MobileUsers:
    """Users tapping commands in the app."""

    def __init__(
        self,
        kernel: Kernel,
        config: WorkloadConfig,
        devices: int,
        *,
        until: float = math.inf,
        zone: str,
        region: str,
    ) -> None:
        """``until``: when users stop starting new intents (see ``quiet_before_end``)."""
        self.kernel = kernel
        self.config = config
        self.devices = devices
        self.until = until
        kernel.network.add_node(MOBILE, zone=zone, region=region)
        self.rng = kernel.streams.stream(MOBILE)
        self._retry_rng = kernel.streams.stream(f"{MOBILE}/retry")  # jitter never shifts the workload's draws
        self.settings = settings_from(AppSettings, config)
        self.started: dict[str, float] = {}
        self.results: dict[str, tuple[AppResult, float]] = {}
        self._response = kernel.metrics.histogram(APP_RESPONSE)
        self._response_p95 = kernel.metrics.quantile_series(COMMAND_LATENCY_P95)
        self._intents = kernel.metrics.timeseries(COMMAND_INTENTS)
        self._requests = kernel.metrics.timeseries(COMMAND_REQUESTS)
        self._succeeded = kernel.metrics.timeseries(COMMAND_SUCCEEDED)
        self._failed = kernel.metrics.timeseries(COMMAND_FAILED)
        self._budget = config.app_retry_budget
        self._shared_limiter = self._budget.limiter() if self._budget.scope == "shared" else None
        self.limiters: dict[str, RetryLimiter] = {}  # per user, made on the user's first command
        self.refused_by_budget = 0
        self.intents = 0
        self.flood_sent = 0
        self.flood_answers: dict[str, int] = {}
        rate = config.mobile_users * config.commands_per_user_per_hour / 3600.0
        if rate > 0 and devices > 0:
            rng = self.rng
            self._gaps = draws(lambda n: rng.exponential(1.0 / rate, n))
            self._users = draws(lambda n: rng.integers(config.mobile_users, size=n))
            self._coins = draws(rng.random)
            call_at_delay(kernel.env, next(self._gaps), self._arrive)

    def _arrive(self) -> None:
        """One intent arrives now; the next one is scheduled (a callback chain, no process)."""
        env = self.kernel.env
        if env.now >= self.until:
            return  # the quiet period before the end: the intents started so far can settle
        call_at_delay(env, next(self._gaps), self._arrive)
        self.intents += 1
        intent = f"intent-{self.intents}"
        user_index = int(next(self._users))
        device = user_index % self.devices
        toggle = next(self._coins) < self.config.toggle_fraction
        action = "toggle" if toggle else ("on" if next(self._coins) < 0.5 else "off")
        self.kernel.ledger.track(COMMANDS, intent)
        self.started[intent] = env.now
        self._intents.add(env.now)
        user = f"user-{user_index}"
        limiter = self._limiter(user)
        logic = send_command(self.settings, user, device, action, intent, self._retry_rng, limiter, self._request_sent)
        done = functools.partial(self._finished, intent)
        self.kernel.driver.spawn(logic, MOBILE, on_done=done, item=(COMMANDS, intent))  # links a trace to the intent

    def _limiter(self, user: str) -> RetryLimiter | None:
        """The retry limiter of ``user``'s client: its own, the shared one, or none."""
        if self._budget.kind == "none" or self._shared_limiter is not None:
            return self._shared_limiter
        limiter = self.limiters.get(user)
        if limiter is None:
            limiter = self._budget.limiter()
            if limiter is not None:
                self.limiters[user] = limiter
        return limiter

    def _request_sent(self) -> None:
        """The app sent a request now (offered load, per interval)."""
        self._requests.add(self.kernel.env.now)

    def _finished(self, intent: str, result: Any) -> None:
        now = self.kernel.now
        self.results[intent] = (result, now)
        response = now - self.started[intent]
        self._response.add(response)
        self._response_p95.add(now, response)
        if getattr(result, "accepted", False):
            self._succeeded.add(now)
            return
        self._failed.add(now)
        if getattr(result, "gave_up", None) == "budget":
            self.refused_by_budget += 1

    # -- the flood fault (S1) ------------------------------------------------------------------
    def flood(self, device: int, rate_per_s: float, users: int) -> Callable[[], None]:
        """A buggy release sends a command to ``device`` every ``1 / rate_per_s`` seconds,
        round robin over ``users`` users, with no retries; until the returned callable is called.

        Flood commands are junk traffic, not user intents: the ledger does not track them;
        ``stats()`` counts how they were answered.
        """
        settings = replace(self.settings, app_retry=RetryPolicy.fixed())
        flooding = [True]

        def loop() -> Any:
            env = self.kernel.env
            sent = 0
            while flooding[0]:
                sent += 1
                self.flood_sent += 1
                logic = send_command(settings, f"buggy-{sent % users}", device, "toggle", f"flood-{self.flood_sent}")
                self.kernel.driver.spawn(logic, MOBILE, on_done=self._flood_answered)
                yield env.timeout(1.0 / rate_per_s)

        self.kernel.env.process(loop())

        def stop() -> None:
            flooding[0] = False

        return stop

    def _flood_answered(self, result: Any) -> None:
        status = str(getattr(result, "status", "error"))
        self.flood_answers[status] = self.flood_answers.get(status, 0) + 1

    def stats(self) -> dict[str, Any]:
        """Per-component figures for the result file."""
        return {
            "intents": self.intents,
            "retries_refused_by_budget": self.refused_by_budget,
            "retry_limiters": len(self.limiters) + (self._shared_limiter is not None),
            "flood_commands_sent": self.flood_sent,
            "flood_answers": dict(sorted(self.flood_answers.items())),
        }


class DashboardUsers:
    """Users refreshing their energy dashboard."""

    def __init__(self, kernel: Kernel, config: WorkloadConfig, meters: int, *, zone: str, region: str) -> None:
        self.kernel = kernel
        self.config = config
        self.meters = meters
        kernel.network.add_node(DASHBOARDS, zone=zone, region=region)
        self.rng = kernel.streams.stream(DASHBOARDS)
        self.good = 0
        self.total = 0
        self.degraded = 0
        self.staleness = Histogram()  # how old the data shown was (a lagging replica's answer)
        self.answers_missing_rows = 0  # answers that lacked rows already committed on the primary
        self.statuses: dict[str, int] = {}
        self._requests = kernel.metrics.timeseries(DASHBOARD_REQUESTS)
        self._errors = kernel.metrics.timeseries(DASHBOARD_ERRORS)
        self._latency = kernel.metrics.histogram(DASHBOARD_LATENCY)
        self._latency_p95 = kernel.metrics.quantile_series(DASHBOARD_LATENCY_P95)
        self.slo_hook: Callable[[float, float, bool], None] | None = None  # (now, latency, ok): SLO counting
        rate = config.dashboard_users * config.queries_per_user_per_hour / 3600.0
        if rate > 0 and meters > 0:
            rng = self.rng
            self._gaps = draws(lambda n: rng.exponential(1.0 / rate, n))
            self._users = draws(lambda n: rng.integers(config.dashboard_users, size=n))
            self._devices = draws(lambda n: rng.integers(meters, size=n))
            call_at_delay(kernel.env, next(self._gaps), self._arrive)

    def _arrive(self) -> None:
        """One refresh starts now; the next one is scheduled (a callback chain, no process)."""
        env = self.kernel.env
        call_at_delay(env, next(self._gaps), self._arrive)
        user, device, started = int(next(self._users)), int(next(self._devices)), env.now
        logic = dashboard_query(self.config.dashboard_timeout, f"viewer-{user}", device)
        self.kernel.driver.spawn(logic, DASHBOARDS, on_done=functools.partial(self._finished, started=started))

    def _finished(self, response: object, *, started: float) -> None:
        now = self.kernel.now
        self.total += 1
        status = str(response.status) if isinstance(response, HttpResponse) else "error"
        self.statuses[status] = self.statuses.get(status, 0) + 1
        self._requests.add(now)
        if isinstance(response, HttpResponse) and response.ok:
            self.good += 1
            self._latency.add(now - started)
            self._latency_p95.add(now, now - started)
            if response.body.get("degraded"):
                self.degraded += 1
            staleness = response.body.get("staleness_s")
            if staleness is not None:  # what the user saw: the data as of that long ago
                self.staleness.add(staleness)
            self.answers_missing_rows += bool(response.body.get("rows_missed"))
        else:
            self._errors.add(now)
        if self.slo_hook is not None:
            self.slo_hook(now, now - started, isinstance(response, HttpResponse) and response.ok)
