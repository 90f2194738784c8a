"""The backend services as actors: API gateway, device manager, analytics engine, DLQ.

Each actor is a thin adapter: it owns the configuration and the policy objects (rate
limiters, breakers), and for every request returns the sans-IO logic of
:mod:`models.logic`, which the driver runs inside one of the actor's workers.  A worker is
held for as long as the logic waits on its dependencies -- that is what makes thread-pool
exhaustion, and so cascading failure, something the twin can show.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from models.config import AnalyticsConfig, DeviceManagerConfig, GatewayConfig
from models.logic.analytics import AnalyticsSettings, energy_report
from models.logic.commands import CommandSettings, outbox_relay, submit_command
from models.logic.gateway import (
    BULKHEAD_FULL,
    ROUTES,
    SHED,
    Compartment,
    GatewaySettings,
    is_low_priority,
    route_request,
)
from models.names import ANALYTICS, ANALYTICS_STALENESS, API_GATEWAY, DB_PRIMARY, DEVICE_MANAGER, DLQ, DLQ_MESSAGES
from models.ops import HttpRequest, HttpResponse, SendMessage
from models.policies import BreakerState, CircuitBreaker, IdempotencyStore, KeyedRateLimiter
from models.postgres import Postgres
from models.replication import LagRouter
from models.settings import settings_from
from sim.actor import Actor
from sim.metrics import Histogram
from sim.ops import Logic, Operation, Rejected, Unavailable

if TYPE_CHECKING:
    from sim.actor import Request
    from sim.kernel import Kernel

__all__ = ["AnalyticsEngine", "ApiGateway", "DeadLetterQueue", "DeviceManager", "HttpService"]


class HttpService(Actor):
    """An actor that serves HTTP requests with logic returned by :meth:`serve`."""

    def handle(self, op: Operation, origin: str) -> Any:
        if not isinstance(op, HttpRequest):
            raise Rejected("unsupported", f"{self.name} does not handle {op.name}")
        return self.serve(op)

    def serve(self, request: HttpRequest) -> Any:
        """The logic answering ``request`` (override)."""
        raise NotImplementedError


class ApiGateway(HttpService):
    """Load shedding, JWT check, per-user token bucket, per-service bulkheads, routing."""

    def __init__(self, kernel: Kernel, config: GatewayConfig, *, zone: str, region: str) -> None:
        super().__init__(
            kernel,
            API_GATEWAY,
            zone=zone,
            region=region,
            concurrency=config.concurrency,
            service_time=config.jwt_check_time,
        )
        self.config = config
        self.settings = settings_from(GatewaySettings, config)
        self.limiter = KeyedRateLimiter.per_period(config.user_limit_per_min, 60.0)
        self.compartments: dict[str, Compartment] = {}
        self.shed = 0
        self.shed_low_priority = 0
        self.bulkhead_refused = dict.fromkeys(sorted(config.bulkheads or {}), 0)  # a count per service
        self._reset_compartments()

    def _reset_compartments(self) -> None:
        """One bulkhead per configured upstream service (none as designed); in-process state,
        so a crash empties them (requests of the dead process never leave)."""
        limits = self.config.bulkheads or {}
        wait = self.config.bulkhead_max_wait
        self.compartments = {service: Compartment(limit, max_wait_s=wait) for service, limit in sorted(limits.items())}

    def on_crash(self) -> None:
        self._reset_compartments()

    def serve(self, request: HttpRequest) -> Any:
        logic = route_request(
            self.settings, request, self.limiter, self.compartments, load=self.busy / self.concurrency
        )
        config = self.config
        guarded = config.shed_above is not None or config.shed_low_priority_above is not None or self.compartments
        return self._counted(logic, request) if guarded else logic

    def _counted(self, logic: Logic[HttpResponse], request: HttpRequest) -> Logic[HttpResponse]:
        """Count the requests load shedding and each service's bulkhead refused."""
        response = yield from logic
        refused_by = response.body.get("refused_by") if response.status == 503 else None
        if refused_by == SHED:
            self.shed += 1
            self.shed_low_priority += is_low_priority(request)
        elif refused_by == BULKHEAD_FULL:
            service = ROUTES[request.route]
            self.bulkhead_refused[service] += 1
        return response

    def stats(self) -> dict[str, Any]:
        figures: dict[str, Any] = dict(super().stats())
        figures["shed"] = self.shed
        figures["shed_low_priority"] = self.shed_low_priority
        figures["bulkhead_refused"] = dict(self.bulkhead_refused)
        return figures


class DeviceManager(HttpService):
    """The command API and, with the outbox, its relay.

    With ``idempotency_keys`` it owns the :class:`~models.policies.IdempotencyStore` the
    command logic consults (clock-injected: the logic passes the simulated time).  The store
    is this process's memory, as a single in-process map would be: a crash loses every
    reservation and every stored response, and the unique constraint on
    ``device_commands.idempotency_key`` -- in the database, durable -- is what still answers
    a retry as a replay.  ``idempotency_answers`` counts the answers the keys produced.
    """

    def __init__(self, kernel: Kernel, config: DeviceManagerConfig, *, zone: str, region: str) -> None:
        super().__init__(
            kernel,
            DEVICE_MANAGER,
            zone=zone,
            region=region,
            concurrency=config.concurrency,
            service_time=config.service_time,
        )
        self.settings = settings_from(CommandSettings, config)
        self.device_limiter = (
            KeyedRateLimiter.per_period(config.device_limit_per_min, 60.0) if config.device_limit_per_min else None
        )
        self.config = config
        self.idempotency = self._new_store()
        self.idempotency_answers = {"replayed": 0, "in_progress_409": 0, "mismatch_422": 0}
        self.in_service = True  # in the Service's endpoints; the readiness gate (health.gate_traffic) decides
        self.refused_not_ready = 0
        if config.outbox:
            retry_rng = kernel.streams.stream(f"{self.name}/relay-retry")
            self.background(lambda epoch: kernel.driver.drive(outbox_relay(self.settings, retry_rng), self, epoch))

    def _new_store(self) -> IdempotencyStore | None:
        config = self.config
        if not config.idempotency_keys:
            return None
        return IdempotencyStore(config.idempotency_ttl, config.idempotency_in_progress_ttl)

    def on_crash(self) -> None:
        self.idempotency = self._new_store()  # process memory; the database's unique constraint survives

    def deliver(self, request: Request) -> None:
        """Out of the Service while not ready: kube-proxy has no endpoint, the call is refused at once."""
        if not self.in_service and self.up:
            self.refused_not_ready += 1
            self.kernel.driver.reply(self.name, request, Unavailable("not_ready", f"{self.name}: no ready endpoint"))
            return
        super().deliver(request)

    def stats(self) -> dict[str, Any]:
        figures: dict[str, Any] = dict(super().stats())
        figures.update({f"idempotency_{answer}": n for answer, n in self.idempotency_answers.items()})
        return figures

    def serve(self, request: HttpRequest) -> Any:
        logic = submit_command(
            self.settings, request.user, request.body, request.headers, self.device_limiter, self.idempotency
        )
        return logic if self.idempotency is None else self._counted(logic)

    def _counted(self, logic: Logic[HttpResponse]) -> Logic[HttpResponse]:
        response = yield from logic
        answers = self.idempotency_answers
        if response.headers.get("Idempotent-Replayed") == "true":
            answers["replayed"] += 1
        elif response.status == 409:
            answers["in_progress_409"] += 1
        elif response.status == 422:
            answers["mismatch_422"] += 1
        return response


class AnalyticsEngine(HttpService):
    """Energy reports from the replicas, with the review's retries and optional breakers.

    It measures what its answers were worth: which server answered, how stale the data was
    (``staleness_s``: now minus the time the answering server's data is as of) and how many
    of the device's rows the answer lacked.  With ``postgres.max_replica_lag`` set on the
    replicas it routes around lagging ones (:class:`~models.replication.LagRouter`).
    """

    def __init__(
        self, kernel: Kernel, config: AnalyticsConfig, replicas: tuple[str, ...], *, zone: str, region: str
    ) -> None:
        super().__init__(kernel, ANALYTICS, zone=zone, region=region, concurrency=config.concurrency)
        self.config = config
        self.settings = settings_from(AnalyticsSettings, config, replicas=replicas)
        self.breakers: dict[str, CircuitBreaker] = {}
        self.transitions: list[dict[str, Any]] = []
        self._reset_breakers()
        self._next = 0
        self._retry_rng = kernel.streams.stream(f"{self.name}/retry")
        self.router = _lag_router(kernel, replicas)
        self.answers_from: dict[str, int] = {}
        self.answers_missing_rows = 0
        self.rows_missed = 0
        self._staleness = Histogram()
        self._staleness_series = kernel.metrics.timeseries(ANALYTICS_STALENESS)

    def _reset_breakers(self) -> None:
        spec = self.config.breaker
        if spec is None:
            self.breakers = {}
            return
        settings = spec.policy()
        self.breakers = {
            replica: CircuitBreaker(settings, on_transition=self._observer(replica))
            for replica in self.settings.replicas
        }

    def _observer(self, replica: str) -> Any:
        def observe(now: float, old: Any, new: Any) -> None:
            self.transitions.append({"t": now, "replica": replica, "from": old.value, "to": new.value})

        return observe

    def on_crash(self) -> None:
        # Breaker state lives in process memory: the restarted engine's breakers start closed.
        now = self.kernel.now
        for replica, breaker in self.breakers.items():
            last = breaker.history[-1][1] if breaker.history else BreakerState.CLOSED
            if last is not BreakerState.CLOSED:
                self.transitions.append({"t": now, "replica": replica, "from": last.value, "to": "closed"})
        self._reset_breakers()

    def serve(self, request: HttpRequest) -> Any:
        if not self.settings.replicas:
            raise Rejected("no_replica", "no read replica configured")
        first = self._next
        self._next += 1
        lagging = self.router.lagging if self.router is not None else ()
        report = energy_report(
            self.settings,
            request.body["device_id"],
            first,
            self.breakers,
            self._retry_rng,
            lagging=lagging,
            primary=DB_PRIMARY,
        )
        return self._measured(report)

    def _measured(self, logic: Logic[HttpResponse]) -> Logic[HttpResponse]:
        """Count where each good answer came from, how stale it was and the rows it lacked."""
        response = yield from logic
        if response.status == 200:
            body = response.body
            source = str(body.get("source"))
            self.answers_from[source] = self.answers_from.get(source, 0) + 1
            staleness = body.get("staleness_s")
            if staleness is not None:
                self._staleness.add(staleness)
                self._staleness_series.add(self.kernel.now, staleness)
            missed = body.get("rows_missed", 0)
            if missed:
                self.answers_missing_rows += 1
                self.rows_missed += missed
        return response

    def stats(self) -> dict[str, Any]:
        figures: dict[str, Any] = dict(super().stats())
        figures["breaker_transitions"] = len(self.transitions)
        figures["breaker_rejections"] = sum(b.rejected for b in self.breakers.values())
        figures["answers_from"] = dict(sorted(self.answers_from.items()))
        figures["answers_from_primary"] = self.answers_from.get(DB_PRIMARY, 0)
        figures["answers_missing_rows"] = self.answers_missing_rows
        figures["rows_missed"] = self.rows_missed
        figures["staleness_s"] = self._staleness.summary()
        if self.router is not None:
            figures["lag_router"] = self.router.stats()
        return figures


def _lag_router(kernel: Kernel, replicas: tuple[str, ...]) -> LagRouter | None:
    """The bounded-staleness router over ``replicas`` when their config asks for one
    (``postgres.max_replica_lag``), else None: as designed reports ignore replay lag."""
    servers = [kernel.actors.get(name) for name in replicas]
    followers = [server for server in servers if isinstance(server, Postgres) and server.replay is not None]
    if not followers or len(followers) != len(replicas):
        return None  # no replica (the primary answers), or replicas that are not PostgreSQL streaming replicas
    config = followers[0].config
    if config.max_replica_lag is None:
        return None
    staleness = {server.name: server.staleness for server in followers}
    return LagRouter(kernel, staleness, config.max_replica_lag, config.lag_check_every)


class DeadLetterQueue(Actor):
    """An SQS-like queue that keeps what the ingest consumer quarantines."""

    def __init__(self, kernel: Kernel, *, zone: str, region: str) -> None:
        super().__init__(kernel, DLQ, zone=zone, region=region, concurrency=16)
        self.depth = 0
        self.first: list[dict[str, Any]] = []
        self._messages = kernel.metrics.timeseries(DLQ_MESSAGES)

    def handle(self, op: Operation, origin: str) -> Any:
        if not isinstance(op, SendMessage):
            raise Rejected("unsupported", f"dlq does not handle {op.name}")
        self.depth += 1
        self._messages.add(self.kernel.now)
        if len(self.first) < 10:
            self.first.append({"error": op.body.get("error"), "t": self.kernel.now})
        return {"message_id": self.depth}

    def stats(self) -> dict[str, Any]:
        figures: dict[str, Any] = dict(super().stats())
        figures["depth"] = self.depth
        return figures
