"""The scenario format: the smart-home system's components, workload and faults.

Defaults reproduce the system *as the review describes it, flaws included*: no timeouts,
no circuit breaker, no outbox, no idempotency keys, no validation, deduplication or dead
letter queue.  Each countermeasure is a switch (or a parameter set) on the component that
would carry it, with the review's numbers as its defaults, so a scenario variant "with the
countermeasure" differs from "as designed" by one or two lines.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from models.faults import FAULT_KINDS
from models.policies import AwsRetryQuota, BreakerSettings, GrpcRetryThrottle, RetryBudget, RetryLimiter, RetryPolicy
from models.recovery.config import DurabilityConfig
from models.slo import SloList
from sim.distributions import Distribution, Uniform, constant
from sim.durations import Duration, Offset
from sim.faults import Fault, fault_union
from sim.spec import Spec, probabilities
from sim.variants import Experiment

if TYPE_CHECKING:
    AnyFault = Fault
else:
    AnyFault = fault_union(*FAULT_KINDS)  # the engine's generic kinds plus the model's own

__all__ = [
    "REVIEW_TIMEOUTS",
    "AnalyticsConfig",
    "AutomationConfig",
    "BillingConfig",
    "BreakerConfig",
    "BrokerConfig",
    "DeviceManagerConfig",
    "FleetConfig",
    "GatewayConfig",
    "HealthConfig",
    "IngestConfig",
    "NetworkConfig",
    "PostgresConfig",
    "ProbeConfig",
    "RedisConfig",
    "RetryBudgetConfig",
    "RetryConfig",
    "Scenario",
    "StreamConfig",
    "SyntheticProbeConfig",
    "WorkloadConfig",
]


MAX_POPULATION = 10_000_000
"""Meters, devices or users of one kind: far beyond one machine's reach (the cost check
refuses what would not fit), but a bound, so no value overflows an array or a loop."""
MAX_WORKERS = 100_000
"""Worker threads or connections of one component."""
MAX_ATTEMPTS = 100
"""Retries, resends and attempts of any one thing."""
MAX_RATE = 1_000_000.0
"""Requests per user or device per unit of time."""
MAX_FAULTS = 10_000
"""Faults in one scenario."""
MAX_DURATION = 3650 * 86400.0
"""Ten years of simulated time: long horizons, but a bound."""
MIN_TICK = 0.001
"""The fleet scheduler's finest granularity (1 ms)."""
MIN_METRICS_INTERVAL = 0.1
"""The narrowest time-series bucket (100 ms)."""
NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
"""A scenario name is a slug: it names the default output folder, so no '/', no '..'."""
_NAME = re.compile(NAME_PATTERN)


def _pair(value: Any) -> Any:
    """A YAML list of two numbers is the tuple a range field holds."""
    return tuple(value) if isinstance(value, list) else value


def _ordered(value: tuple[float, float]) -> tuple[float, float]:
    if value[0] > value[1]:
        raise ValueError(f"expected [low, high] with low <= high (got [{value[0]}, {value[1]}])")
    return value


Range = Annotated[tuple[float, float], BeforeValidator(_pair), AfterValidator(_ordered)]
"""``[low, high]`` in YAML; finite numbers with low <= high."""


class _Config(Spec):
    model_config = ConfigDict(validate_default=True)


def _lognormal(median: str, sigma: float) -> Any:
    return {"kind": "lognormal", "median": median, "sigma": sigma}


class NetworkConfig(_Config):
    """Link latencies (one-way) by link kind."""

    access: Distribution = Field(default=constant("0.2ms"), description="node to its zone hub")
    zone: Distribution = Field(default=constant("0.3ms"), description="zone hub to region hub")
    region: Distribution = Field(
        default_factory=lambda: _lognormal("15ms", 0.3),
        description="between region hubs (homes and phones reach AWS over two such hops)",
    )


class FleetConfig(_Config):
    """Smart meters and controllable devices (AC units, plugs)."""

    meters: int = Field(default=1000, ge=0, le=MAX_POPULATION, description="smart meters reporting readings")
    report_every: Duration = Field(default=10.0, description="reading interval of each meter")
    tick: Duration = Field(
        default=0.25,
        description="granularity of the fleet scheduler: readings due within a tick are emitted together",
    )
    schema_versions: dict[Annotated[int, Field(ge=0, le=1000)], Annotated[float, Field(ge=0)]] = Field(
        default_factory=lambda: {2: 1.0},
        min_length=1,
        max_length=100,
        description="share of meters per firmware schema_version (the consumer supports 2 and 1)",
    )
    corrupt_fraction: float = Field(
        default=0.0, ge=0, le=1, description="share of readings a firmware bug corrupts (power_watts = -999999)"
    )
    qos1_retry_after: Duration = Field(
        default=5.0, description="meter MQTT client: resend an unacknowledged publish after"
    )
    qos1_max_retries: int = Field(
        default=3, ge=0, le=MAX_ATTEMPTS, description="meter MQTT client: resends before a reading is given up"
    )
    controllables: int = Field(default=200, ge=0, le=MAX_POPULATION, description="devices that accept commands")
    dedupe_command_ids: bool = Field(
        default=False, description="devices ignore a command_id they already applied (device-level idempotency)"
    )

    @field_validator("tick")
    @classmethod
    def _tick_coarse_enough(cls, value: float) -> float:
        if value < MIN_TICK:
            raise ValueError(f"expected a tick of at least {MIN_TICK} s (got {value:g} s)")
        return value

    @field_validator("schema_versions")
    @classmethod
    def _shares(cls, value: dict[int, float]) -> dict[int, float]:
        probabilities(list(value.values()), "shares")  # raises if they cannot be probabilities
        return value

    @model_validator(mode="after")
    def _tick_fits(self) -> FleetConfig:
        if self.tick > self.report_every:
            raise ValueError(
                f"tick ({self.tick}s) must not exceed report_every ({self.report_every}s): "
                "a meter reports at most once per tick"
            )
        return self


class BrokerConfig(_Config):
    """The MQTT broker (AWS IoT Core-like) and its rule into the stream."""

    service_time: Distribution = Field(default=constant("1ms"))
    concurrency: int = Field(default=256, ge=1, le=MAX_WORKERS)
    publish_limit_per_s: float = Field(
        default=100.0, gt=0, description="publishes per second per connection (hard IoT Core limit)"
    )
    rule_latency: Distribution = Field(
        default_factory=lambda: _lognormal("20ms", 0.3), description="IoT rule action delay into the stream"
    )
    qos1_retry_after: Duration = Field(default=5.0, description="resend to a subscriber that has not acknowledged")
    qos1_max_retries: int = Field(default=5, ge=0, le=MAX_ATTEMPTS)


class StreamConfig(_Config):
    """The Kinesis-like stream."""

    shards: int = Field(default=2, ge=1, le=1024)
    write_limit_per_shard: int = Field(default=1000, ge=1, le=1_000_000, description="records per second per shard")
    max_records_per_get: int = Field(default=10_000, ge=1, le=10_000)
    service_time: Distribution = Field(default_factory=lambda: _lognormal("8ms", 0.3))


class PostgresConfig(_Config):
    """PostgreSQL + TimescaleDB: a primary and read replicas."""

    replicas: int = Field(default=2, ge=0, le=15, description="read replicas (PostgreSQL streaming replicas)")
    max_connections: int = Field(default=100, ge=1, le=MAX_WORKERS)
    write_time: Distribution = Field(default_factory=lambda: _lognormal("2ms", 0.3))
    row_time: Offset = Field(default=0.00001, description="extra time per row of a bulk insert")
    read_time: Distribution = Field(default_factory=lambda: _lognormal("3ms", 0.4))
    analytics_query_time: Distribution = Field(default_factory=lambda: _lognormal("40ms", 0.6))
    replication_lag: Distribution = Field(default_factory=lambda: _lognormal("50ms", 0.5))
    unique_readings_index: bool = Field(
        default=False, description="unique index on readings (device_id, time) with ON CONFLICT DO NOTHING (C5)"
    )
    duplicate_window: Duration = Field(
        default=600.0, description="how far back the twin remembers reading keys to detect duplicate rows"
    )
    WAL_BYTES_PER_ROW: ClassVar[dict[str, float]] = {
        # WAL per row = one heap-insert record (24 B header + block reference + tuple header + data)
        # + one btree-insert record per index (~70 B each) + the commit record shared by the batch.
        "readings": 300.0,  # ~100 B of data + ~50 B record overhead + TimescaleDB's 2 default indexes (~140 B)
        "anomalies": 350.0,  # a readings row plus the reason text, 2 indexes
        "device_commands": 500.0,  # ~200 B (uuids, status, timestamps) + 3 indexes (pkey, idempotency key, pending)
        "users": 600.0,  # ~300 B (email, bcrypt hash, profile) + 2 indexes (pkey, unique email)
    }
    """Defaults of ``wal_bytes_per_row``: the twin's tables, and ``users`` for aggregate flows."""

    wal_bytes_per_row: dict[
        Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]{0,62}$")], Annotated[float, Field(gt=0, le=1e9)]
    ] = Field(
        default_factory=lambda: dict(PostgresConfig.WAL_BYTES_PER_ROW),
        max_length=100,
        description="WAL written per row committed, by table (heap record + one entry per index + record "
        "headers); a table the file leaves out keeps its default",
    )
    replay_rate: float = Field(
        default=50e6,
        gt=0,
        le=1e11,
        description="bytes of WAL a replica's startup process replays per second (single-threaded): while "
        "the primary writes less, a replica's lag is the shipping delay (replication_lag); above it, a backlog",
    )
    max_replica_lag: Duration | None = Field(
        default=None,
        description="bounded staleness, as pgpool-II's delay_threshold_by_time: the analytics engine sends "
        "no query to a replica whose replay lag, checked every lag_check_every, exceeds this; to the primary "
        "when every replica does; none as designed",
    )
    lag_check_every: Duration = Field(
        default=10.0, description="how often the replay lag is checked for max_replica_lag (pgpool-II sr_check_period)"
    )

    @field_validator("wal_bytes_per_row")
    @classmethod
    def _every_table_has_a_figure(cls, value: dict[str, float]) -> dict[str, float]:
        return {**cls.WAL_BYTES_PER_ROW, **value}


class RedisConfig(_Config):
    """Redis Cluster: masters, each with a replica that takes over when it fails."""

    masters: int = Field(
        default=3, ge=1, le=1000, description="Redis Cluster masters (Redis supports up to 1000 nodes)"
    )
    service_time: Distribution = Field(default=constant("0.2ms"))
    concurrency: int = Field(default=64, ge=1, le=MAX_WORKERS)
    failover_time: Duration = Field(default=17.0, description="node timeout + election before a replica serves")
    require_full_coverage: bool = Field(
        default=True, description="cluster-require-full-coverage: refuse every query while a slot has no master"
    )
    failover: Literal["constant", "cluster"] = Field(
        default="constant",
        description="constant: a replica serves failover_time after its master crashes; cluster: the cluster-spec "
        "timing (node_timeout, FAIL by a majority, 500 ms + random 500 ms + rank x 1 s, election), and no failover "
        "at all without a majority of masters alive",
    )
    node_timeout: Duration = Field(default=15.0, description="cluster-node-timeout (failover: cluster)")
    failure_detection: Distribution = Field(
        default_factory=lambda: Uniform(low=0.0, high=2.0),
        description="after node_timeout, until a majority of masters flags the master FAIL (failover: cluster)",
    )
    election_time: Distribution = Field(
        default=constant("10ms"), description="the replica's election, once its delay has passed (failover: cluster)"
    )
    replica_lag: Distribution = Field(
        default=constant("1ms"),
        description="asynchronous replication lag of each master's replica, drawn at a crash: the master's writes "
        "within it are lost when the replica is promoted",
    )
    persistence: Literal["rdb", "aof"] = Field(
        default="rdb", description="what every node reloads after a crash of the whole cluster (the review: rdb)"
    )
    rdb_every: Duration = Field(default=21600.0, description="RDB snapshot period (the review: every 6 h)")
    rdb_phase: Offset | None = Field(
        default=None,
        description="when in the period snapshots start (a snapshot at rdb_phase + k x rdb_every); null: the "
        "server started at an unknown time, a uniform random phase in [0, rdb_every) from the run's own stream",
    )
    rdb_duration: Duration = Field(
        default=30.0, description="a BGSAVE's duration: a snapshot counts once written, as of its start"
    )
    aof_fsync_stall: Distribution = Field(
        default=constant(0.0),
        description="appendfsync everysec: how late the last fsync is at a crash (a slow disk); Redis caps the "
        "loss at 2 s",
    )
    session_refresh: Duration = Field(
        default=900.0,
        description="a user's session key is written at login and rewritten at each token refresh, this often",
    )
    rebuild_from_postgres: bool = Field(
        default=False,
        description="countermeasure: after a crash, a warm-up job rewrites the lost device-state keys from "
        "PostgreSQL's latest rows at rebuild_rate, instead of waiting for each device's next report",
    )
    rebuild_rate: float = Field(default=500.0, gt=0, le=MAX_RATE, description="keys per second the warm-up writes")

    @model_validator(mode="after")
    def _rdb_schedule(self) -> RedisConfig:
        if not self.rdb_duration < self.rdb_every:
            raise ValueError(f"rdb_duration ({self.rdb_duration}s) must be shorter than rdb_every ({self.rdb_every}s)")
        if self.rdb_phase is not None and not self.rdb_phase < self.rdb_every:
            raise ValueError(f"rdb_phase ({self.rdb_phase}s) must be below rdb_every ({self.rdb_every}s)")
        return self


class BreakerConfig(_Config):
    """Circuit breaker settings (review C3 defaults)."""

    consecutive_failures: int = Field(default=5, ge=1, le=MAX_ATTEMPTS)
    failure_rate: float = Field(default=0.5, gt=0, le=1)
    window: Duration = Field(default=10.0)
    min_calls: int = Field(default=10, ge=1, le=1_000_000)
    open_for: Duration = Field(default=30.0)
    half_open_successes: int = Field(default=3, ge=1, le=MAX_ATTEMPTS)
    slow_call_duration: Duration | None = Field(
        default=None, description="a call slower than this counts as slow (resilience4j); null: no slow-call rule"
    )
    slow_call_rate: float = Field(
        default=1.0, gt=0, le=1, description="open when this share of the window's calls is slow (with min_calls)"
    )

    def policy(self) -> BreakerSettings:
        """The pure breaker settings these describe (as :meth:`RetryConfig.policy` does for retries)."""
        return BreakerSettings(
            consecutive_failures=self.consecutive_failures,
            failure_rate=self.failure_rate,
            window_s=self.window,
            min_calls=self.min_calls,
            open_for_s=self.open_for,
            half_open_max_calls=self.half_open_successes,
            half_open_successes=self.half_open_successes,
            slow_call_duration_s=math.inf if self.slow_call_duration is None else self.slow_call_duration,
            slow_call_rate=self.slow_call_rate,
        )


class GatewayConfig(_Config):
    """The API gateway: JWT validation, per-user rate limit, routing."""

    concurrency: int = Field(default=512, ge=1, le=MAX_WORKERS)
    jwt_check_time: Distribution = Field(default=constant("1ms"))
    user_limit_per_min: float = Field(default=1000.0, gt=0, le=MAX_RATE)
    upstream_timeout: Duration | None = Field(
        default=None, description="timeout on calls to services; none as designed (C3: 10s)"
    )
    bulkheads: dict[str, Annotated[int, Field(ge=1, le=MAX_WORKERS)]] | None = Field(
        default=None,
        description="C3 bulkheads: at most this many requests in flight per upstream service, e.g. "
        "{device-manager: 200, analytics-engine: 200}; a request whose service's compartment is full gets 503 "
        "at once, with no upstream call; a service not named has no compartment; none as designed",
    )
    bulkhead_max_wait: Offset = Field(
        default=0.0,
        description="how long a request may wait for a place in its full compartment before its 503 "
        "(it holds its gateway worker while waiting); 0: nobody waits",
    )
    bulkhead_poll: Duration = Field(
        default=0.01,
        description="the twin's step while a request waits for a compartment: it looks every step whether it "
        "was admitted, so a freed place may stay unused up to this long",
    )
    shed_above: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="load shedding: while more than this share of concurrency is busy (the new request "
        "included), new requests get 503 with Retry-After at once; none as designed",
    )
    shed_low_priority_above: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="priority when shedding (S1): while more than this share of concurrency is busy, requests "
        "marked X-Priority: low (scheduled automation) get 503 with Retry-After at once, so user commands keep "
        "the capacity; at most shed_above when both are set; none as designed",
    )
    overload_retry_after: Duration = Field(
        default=1.0, description="Retry-After of a 503 for shed load or a full bulkhead (whole seconds, rounded up)"
    )

    @model_validator(mode="after")
    def _low_priority_sheds_first(self) -> GatewayConfig:
        low, everyone = self.shed_low_priority_above, self.shed_above
        if low is not None and everyone is not None and low > everyone:
            raise ValueError(
                f"shed_low_priority_above ({low}) must not exceed shed_above ({everyone}): low-priority traffic "
                "is shed first"
            )
        return self

    @field_validator("bulkheads")
    @classmethod
    def _upstream_services(cls, value: dict[str, int] | None) -> dict[str, int] | None:
        from models.logic.gateway import ROUTES  # the services the gateway calls

        known = sorted(set(ROUTES.values()))
        unknown = sorted(set(value or ()) - set(known))
        if unknown:
            raise ValueError(f"unknown upstream service(s) {', '.join(unknown)} (known: {', '.join(known)})")
        return value


class DeviceManagerConfig(_Config):
    """Command API, MQTT dispatch and Redis state sync."""

    concurrency: int = Field(default=64, ge=1, le=MAX_WORKERS)
    service_time: Distribution = Field(default=constant("1ms"))
    db_timeout: Duration | None = Field(default=None, description="none as designed (C3: 5s)")
    mqtt_timeout: Duration | None = Field(default=None, description="none as designed (C3: 5s)")
    redis_timeout: Duration | None = Field(default=None, description="none as designed (C3: 1s)")
    outbox: bool = Field(default=False, description="transactional outbox with a polling relay (C1)")
    relay_interval: Duration = Field(default=1.0)
    relay_batch: int = Field(default=100, ge=1, le=100_000)
    relay_retry: RetryConfig = Field(
        default_factory=lambda: RetryConfig(max_attempts=None, cap=30.0, jitter="full", max_elapsed=3600.0),
        description="the outbox relay's retries of a failed publish, per command; a command whose retries "
        "run out is marked failed",
    )
    idempotency_keys: bool = Field(
        default=False,
        description="honour Idempotency-Key (C2): an idempotency store in the device manager's memory replays "
        "a retry's first response, answers 422 to the key reused with another request and 409 while the first "
        "is in progress; a unique constraint on device_commands is the durable second line (the store is lost "
        "when the device manager crashes, the constraint is not)",
    )
    idempotency_ttl: Duration = Field(
        default=86_400.0, description="how long a completed request's response is replayed to its key (Stripe: 24h)"
    )
    idempotency_in_progress_ttl: Duration = Field(
        default=20.0,
        description="the lease of a key whose request is still executing: after it, a retry runs as new (and "
        "the unique constraint catches a row already written), so a crashed worker does not block its key for "
        "idempotency_ttl; a request's worst case with the review's timeouts is 16s (db 5s + mqtt 5s + db 5s + "
        "redis 1s), so 20s; without timeouts no lease covers a hung request",
    )
    device_limit_per_min: float | None = Field(
        default=None, gt=0, le=MAX_RATE, description="commands per device per minute (S1: 10)"
    )


class IngestConfig(_Config):
    """The stream consumer writing readings to TimescaleDB and Redis."""

    poll_interval: Duration = Field(default=1.0, description="KCL idle time between GetRecords calls")
    restart_after: Duration = Field(default=10.0, description="time for a crashed consumer to come back")
    checkpoint_every: Offset = Field(
        default=60.0, description="minimum time between checkpoints (KCL sample: 60 s; 0: after every batch)"
    )
    validate_readings: bool = Field(default=False, alias="validate", description="schema and range checks (C5)")
    dedup: bool = Field(default=False, description="drop (device_id, time) seen within dedup_window (C5)")
    dedup_window: Duration = Field(default=600.0)
    write_queue_limit: int | None = Field(
        default=None,
        ge=1,
        le=10_000_000,
        description="backpressure (S1): at most this many records read and not yet written; the consumer writes "
        "each shard's batch before reading the next, so each shard's reads are capped at its share (limit / "
        "shards, at least 1); none as designed (review: 10,000)",
    )
    supported_schema_versions: list[Annotated[int, Field(ge=0, le=1000)]] = Field(
        default_factory=lambda: [2],
        min_length=1,
        max_length=100,
        description="schema versions the consumer decodes (S2: keep N-1 as well)",
    )
    dead_letter: bool = Field(
        default=False,
        description="a dead letter queue (S2): a record that cannot be decoded fails the same way on every "
        "attempt, so it is dead-lettered on its first failure and the consumer moves on",
    )
    max_attempts: int = Field(
        default=3,
        ge=1,
        le=MAX_ATTEMPTS,
        description="attempts a retryable record failure gets before it is dead-lettered (review: 3)",
    )
    db_timeout: Duration | None = Field(default=None, description="none as designed (C3: 5s)")
    redis_timeout: Duration | None = Field(default=None, description="none as designed (C3: 1s)")
    stream_timeout: Duration = Field(
        default=50.0,
        description="bound on each Kinesis call (GetRecords, checkpoint): as designed the AWS SDK's default "
        "socket timeout, 50s (C3: 30s)",
    )
    power_range: Range = Field(default=(0.0, 10_000.0), description="accepted power_watts, [low, high]")
    voltage_range: Range = Field(default=(100.0, 250.0), description="accepted voltage, [low, high]")
    current_range: Range = Field(default=(0.0, 100.0), description="accepted current, [low, high]")


class RetryConfig(_Config):
    """How a client retries a failed call: an exact schedule, or capped exponential backoff.

    With ``delays`` the schedule is exact (the review's analytics engine waits 1 s, 2 s, 4 s)
    and the other fields but ``max_elapsed`` are unused; otherwise retry ``n`` waits up to
    ``min(cap, base * multiplier**(n-1))``, with ``jitter`` as in the AWS Architecture Blog
    (none, full, equal, decorrelated), for at most ``max_attempts`` attempts in all.
    """

    delays: list[Offset] | None = Field(default=None, max_length=MAX_ATTEMPTS, description="an exact schedule")
    max_attempts: int | None = Field(
        default=4, ge=1, le=MAX_ATTEMPTS, description="attempts including the first; null: no limit"
    )
    base: Duration = Field(default=1.0, description="the first retry's backoff ceiling")
    multiplier: float = Field(default=2.0, ge=1, le=10, description="growth of the ceiling per retry")
    cap: Duration = Field(default=20.0, description="no backoff is longer")
    jitter: Literal["none", "full", "equal", "decorrelated"] = Field(default="none")
    max_elapsed: Duration | None = Field(default=None, description="no retry ends later than this after the first try")

    @model_validator(mode="after")
    def _cap(self) -> RetryConfig:
        if self.cap < self.base:
            raise ValueError(f"cap ({self.cap}s) must be at least base ({self.base}s)")
        return self

    def policy(self) -> RetryPolicy:
        """The pure policy these settings describe."""
        if self.delays is not None:
            fixed = RetryPolicy.fixed(*self.delays)
            return RetryPolicy(max_attempts=fixed.max_attempts, delays_s=fixed.delays_s, max_elapsed_s=self.max_elapsed)
        return RetryPolicy(
            max_attempts=self.max_attempts,
            base_s=self.base,
            multiplier=self.multiplier,
            cap_s=self.cap,
            jitter=self.jitter,
            max_elapsed_s=self.max_elapsed,
        )


class RetryBudgetConfig(_Config):
    """How many retries a client may afford: a retry limiter, one per client instance.

    A retry schedule caps retries per call; a limiter caps them per *client*, as a share of
    its traffic, so that retries cannot multiply the load when everything fails (the retry
    storm). ``kind`` picks the model, each with its source's defaults (research/semantics.md
    2.2-2.4): ``finagle`` (Finagle/Linkerd retry budget), ``aws`` (the AWS SDKs' standard-mode
    retry quota), ``grpc`` (gRPC retry throttling, gRFC A6); ``none`` as designed. Another
    kind's parameter may only hold its default (so a dumped config loads again); any other
    value is refused as a mistake. :meth:`limiter` builds the pure limiter.
    """

    kind: Literal["none", "finagle", "aws", "grpc"] = Field(default="none", description="none as designed")
    scope: Literal["client", "shared"] = Field(
        default="client",
        description="client: one limiter per client instance (per mobile user: the app's SDK client on the "
        "phone), where SDKs keep it; shared: one limiter for all of the population's requests, standing for a "
        "single client that fans in every user's requests (phones share no state, so not the app itself)",
    )
    percent_can_retry: float = Field(default=0.2, ge=0, le=1000, description="finagle: retries per request")
    min_retries_per_s: float = Field(default=10.0, ge=0, le=MAX_RATE, description="finagle: reserve rate")
    ttl: Duration = Field(default=10.0, description="finagle: how long deposits and withdrawals count (1-60 s)")
    capacity: int = Field(default=500, ge=0, le=1_000_000, description="aws: tokens, starting full")
    retry_cost: int = Field(default=5, ge=0, le=1_000_000, description="aws: tokens a retry costs")
    timeout_retry_cost: int = Field(default=10, ge=0, le=1_000_000, description="aws: ... after a timeout")
    throttle_retry_cost: int = Field(default=5, ge=0, le=1_000_000, description="aws: ... after a 429")
    no_retry_increment: int = Field(
        default=1, ge=0, le=1_000_000, description="aws: tokens a first-try success refunds"
    )
    max_tokens: float = Field(default=10.0, ge=0.001, le=1000, description="grpc: maxTokens (the gRFC's example)")
    token_ratio: float = Field(default=0.1, ge=0.001, le=1000, description="grpc: tokens a success adds")

    _PARAMETERS: ClassVar[dict[str, tuple[str, ...]]] = {
        "finagle": ("percent_can_retry", "min_retries_per_s", "ttl"),
        "aws": ("capacity", "retry_cost", "timeout_retry_cost", "throttle_retry_cost", "no_retry_increment"),
        "grpc": ("max_tokens", "token_ratio"),
    }

    @model_validator(mode="after")
    def _parameters_of_the_kind(self) -> RetryBudgetConfig:
        fields = type(self).model_fields
        for kind, names in self._PARAMETERS.items():
            changed = [name for name in names if getattr(self, name) != fields[name].default]
            stray = sorted(changed) if kind != self.kind else []
            if stray:
                raise ValueError(
                    f"{', '.join(stray)}: parameter(s) of kind {kind!r}, but this budget's kind is {self.kind!r}"
                )
        if self.kind == "finagle" and not 1.0 <= self.ttl <= 60.0:
            raise ValueError(f"ttl must be within 1 s and 60 s, as Finagle requires (got {self.ttl:g} s)")
        return self

    def limiter(self) -> RetryLimiter | None:
        """A fresh pure limiter these settings describe (one per client instance); None for ``none``."""
        if self.kind == "finagle":
            return RetryBudget(self.percent_can_retry, self.min_retries_per_s, self.ttl)
        if self.kind == "aws":
            return AwsRetryQuota(
                capacity=self.capacity,
                retry_cost=self.retry_cost,
                timeout_retry_cost=self.timeout_retry_cost,
                throttle_retry_cost=self.throttle_retry_cost,
                no_retry_increment=self.no_retry_increment,
            )
        if self.kind == "grpc":
            return GrpcRetryThrottle(self.max_tokens, self.token_ratio)
        return None


def _schedule(*delays: float) -> Any:
    return {"delays": list(delays)}


class BillingConfig(_Config):
    """The analytics engine's bill for the period: kWh from the readings table x a tariff (C5)."""

    tariff_per_kwh: float = Field(
        default=0.17,
        gt=0,
        le=100,
        description="US dollars per kWh (US average residential price, 2024: about 16.5 cents, EIA "
        "Electric Power Monthly table 5.3)",
    )
    late_data_grace: Offset = Field(
        default=60.0,
        description="the bill covers readings taken up to this long before the run ends: the billing job "
        "waits that long for late data, and what arrives later is not billed",
    )
    estimate_gaps: bool = Field(
        default=False,
        description="VEE estimation (C5): bill each interval whose reading went to the anomalies table at the "
        "home's mean valid power, once however many copies arrived; off as designed",
    )


class AnalyticsConfig(_Config):
    """Dashboard queries against the read replicas."""

    concurrency: int = Field(default=50, ge=1, le=MAX_WORKERS, description="worker threads")
    retry: RetryConfig = Field(
        default_factory=lambda: _schedule(1.0, 2.0, 4.0),
        description="retries of a failed query: as designed the review's 3 retries after 1 s, 2 s, 4 s",
    )
    query_timeout: Duration | None = Field(default=None, description="none as designed (C3: 10s)")
    breaker: BreakerConfig | None = Field(default=None, description="one breaker per replica (C3)")
    fallback_to_cache: bool = Field(
        default=False,
        description="graceful degradation (C3): when every replica attempt fails, serve the device's real-time "
        "state from Redis, without history",
    )
    cache_timeout: Duration | None = Field(default=1.0, description="timeout of the Redis read of the fallback")
    billing: BillingConfig = Field(default_factory=BillingConfig)


class AutomationConfig(_Config):
    """Scheduled automation: every ``every``, one ``on`` command to each of ``devices`` devices,
    spread evenly over ``spread`` (a schedule firing for many homes at once, S1)."""

    devices: int = Field(default=1000, ge=1, le=MAX_POPULATION, description="devices each run of the schedule commands")
    first_at: Offset = Field(default=0.0, description="when the schedule first runs")
    every: Duration = Field(default=3600.0, description="time between runs of the schedule")
    spread: Offset = Field(default=10.0, description="a run's commands go out evenly over this long")
    timeout: Duration = Field(default=10.0, description="the scheduler's timeout per command; no retry")
    low_priority: bool = Field(
        default=False,
        description="mark scheduled commands X-Priority: low, so a gateway that sheds by priority refuses them "
        "first (S1's priority queues); off as designed: automation and users look alike",
    )


class WorkloadConfig(_Config):
    """Mobile users sending commands and dashboard users running analytics."""

    mobile_users: int = Field(default=500, ge=0, le=MAX_POPULATION)
    commands_per_user_per_hour: float = Field(default=2.0, ge=0, le=MAX_RATE)
    toggle_fraction: float = Field(
        default=0.5, ge=0, le=1, description="share of commands that toggle (not idempotent)"
    )
    app_timeout: Duration = Field(default=10.0)
    app_retry: RetryConfig = Field(
        default_factory=lambda: _schedule(2.0, 4.0),
        description="the app's retries after a timeout, connection error, 429 or 5xx: 2 retries, 2 s then 4 s",
    )
    send_idempotency_keys: bool = Field(default=False, description="the app sends one Idempotency-Key per intent (C2)")
    app_retry_budget: RetryBudgetConfig = Field(
        default_factory=RetryBudgetConfig,
        description="a retry limiter on the app's retries (finagle, aws or grpc); none as designed",
    )
    quiet_before_end: Offset = Field(
        default=0.0,
        description="no new command intents this long before the run ends, so every intent can settle "
        "(otherwise the last ones are in flight at the end)",
    )
    dashboard_users: int = Field(default=100, ge=0, le=MAX_POPULATION)
    queries_per_user_per_hour: float = Field(default=12.0, ge=0, le=MAX_RATE)
    dashboard_timeout: Duration = Field(default=10.0)
    automation: AutomationConfig | None = Field(
        default=None, description="scheduled automation commands in bursts (S1); none as designed"
    )


REVIEW_TIMEOUTS: dict[str, dict[str, float]] = {
    "gateway": {"upstream_timeout": 10.0},  # inter-service HTTP
    "device_manager": {"db_timeout": 5.0, "mqtt_timeout": 5.0, "redis_timeout": 1.0},
    "analytics": {"query_timeout": 10.0},  # a read replica
    "ingest": {"db_timeout": 5.0, "redis_timeout": 1.0, "stream_timeout": 30.0},
}
"""The review's timeout per dependency (C3): MQTT publish 5 s, primary 5 s, replica 10 s,
Redis 1 s, Kinesis 30 s, service-to-service HTTP 10 s; by config section and field."""


class Scenario(_Config, Experiment):
    """A complete scenario: the system, its workload and the faults to inject."""

    name: str = Field(
        json_schema_extra={"pattern": NAME_PATTERN},
        description="short identifier, also the default output folder: lower-case letters, digits, '.', '_', '-'",
    )
    description: str = Field(default="", max_length=2000, description="one line: what the scenario shows")
    duration: Duration = Field(description="simulated time to run")
    seed: int = Field(default=0, ge=0, le=2**63 - 1, description="default seed; the CLI's --seed overrides it")
    metrics_interval: Duration = Field(default=60.0, description="width of time-series buckets")
    keep_spans: int = Field(default=0, ge=0, le=1_000_000, description="keep this many raw spans for timelines")
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    fleet: FleetConfig = Field(default_factory=FleetConfig)
    broker: BrokerConfig = Field(default_factory=BrokerConfig)
    stream: StreamConfig = Field(default_factory=StreamConfig)
    postgres: PostgresConfig = Field(default_factory=PostgresConfig)
    redis: RedisConfig = Field(default_factory=RedisConfig)
    gateway: GatewayConfig = Field(default_factory=GatewayConfig)
    device_manager: DeviceManagerConfig = Field(default_factory=DeviceManagerConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    analytics: AnalyticsConfig = Field(default_factory=AnalyticsConfig)
    workload: WorkloadConfig = Field(default_factory=WorkloadConfig)
    health: HealthConfig = Field(default_factory=lambda: HealthConfig(), description="device manager probes (S3)")
    faults: list[AnyFault] = Field(default_factory=list, max_length=MAX_FAULTS)
    slos: SloList = Field(
        default_factory=list,
        description="service level objectives (finding M1): each an indicator (sli: availability, latency, "
        "command_success or freshness), an objective and a window, with burn-rate alerts (the SRE Workbook's by "
        "default); 'review' stands for the review's five (99.9 % API availability, p95 < 200 ms, p99 < 1 s, "
        "99 % of commands within 5 s, 99 % of readings within 60 s); none unless set",
    )
    durability: DurabilityConfig | None = Field(
        default=None,
        description="backups, WAL archiving, restore, the checks of finding C4 and disaster recovery "
        "(RPO and RTO measured at disk_loss and region_outage faults); none unless set",
    )
    timeouts: Literal["as-designed", "review"] = Field(
        default="as-designed",
        description="review: every per-dependency timeout the file does not set takes the review's value "
        "(C3: MQTT publish 5s, primary 5s, replica 10s, Redis 1s, Kinesis 30s, service-to-service 10s); "
        "as-designed: none but the SDK's own",
    )

    @model_validator(mode="before")
    @classmethod
    def _review_timeouts(cls, data: Any) -> Any:
        """Fill in the review's timeouts (``timeouts: review``) where the file sets none.

        A value the file gives, ``null`` included, wins; a section given as a config object
        rather than a mapping is left as it is.
        """
        if not isinstance(data, dict) or data.get("timeouts") != "review":
            return data
        filled = dict(data)
        for section, values in REVIEW_TIMEOUTS.items():
            given = filled.get(section, {})
            if isinstance(given, dict):
                filled[section] = {**values, **given}
        return filled

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _NAME.fullmatch(value) or ".." in value:
            raise ValueError(
                "expected a slug of 1-64 lower-case letters, digits, '.', '_' or '-', starting with a letter "
                "or digit, without '..': the name is the default output folder"
            )
        return value

    @field_validator("duration")
    @classmethod
    def _bounded(cls, value: float) -> float:
        if value > MAX_DURATION:
            raise ValueError(f"expected at most {MAX_DURATION:.0f} s (ten years) of simulated time (got {value:g} s)")
        return value

    @field_validator("metrics_interval")
    @classmethod
    def _fine_enough(cls, value: float) -> float:
        if value < MIN_METRICS_INTERVAL:
            raise ValueError(f"expected at least {MIN_METRICS_INTERVAL} s per time-series bucket (got {value:g} s)")
        return value


MIN_PROBE_PERIOD = 0.1
"""The shortest probe period (Kubernetes' is 1 s): a probe is a few events per run."""


class ProbeConfig(_Config):
    """A periodic probe of the device manager, with the fields and defaults of a Kubernetes probe.

    Kubernetes' ``Probe`` defaults: periodSeconds 10, timeoutSeconds 1, failureThreshold 3,
    successThreshold 1 (kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/#Probe).
    As the kubelet does (``pkg/kubelet/prober/worker.go``), the first probe starts after a
    random part of one period, then one every period, never two at once.
    """

    period: Duration = Field(default=10.0, description="periodSeconds: from one probe's start to the next")
    timeout: Duration = Field(default=1.0, description="timeoutSeconds: a probe with no answer by then failed")
    failure_threshold: int = Field(
        default=3, ge=1, le=MAX_ATTEMPTS, description="failureThreshold: consecutive failures that make it unhealthy"
    )
    success_threshold: int = Field(
        default=1, ge=1, le=MAX_ATTEMPTS, description="successThreshold: consecutive successes that make it healthy"
    )

    @field_validator("period")
    @classmethod
    def _not_too_often(cls, value: float) -> float:
        if value < MIN_PROBE_PERIOD:
            raise ValueError(f"expected a period of at least {MIN_PROBE_PERIOD} s (got {value:g} s)")
        return value


class SyntheticProbeConfig(ProbeConfig):
    """An external monitor commands a canary device through the API, as the app does (S3).

    Defaults: a run a minute, the most often CloudWatch Synthetics runs a canary
    (``rate(1 minute)``, docs.aws.amazon.com/AmazonSynthetics/latest/APIReference/
    API_CanaryScheduleInput.html); a run fails when the canary has not applied its command
    within ``timeout`` (the review's 10 s for HTTP calls); one failed run alerts (a Datadog
    synthetic test retries ``retry.count`` times, 0 by default).  The canary is a device
    simulator the monitor owns, numbered after the fleet (``fleet.controllables``).
    """

    period: Duration = Field(default=60.0, description="from one run's start to the next")
    timeout: Duration = Field(
        default=10.0, description="deadline: the canary must have applied the command this long after it was sent"
    )
    failure_threshold: int = Field(
        default=1, ge=1, le=MAX_ATTEMPTS, description="consecutive failed runs that raise the alert"
    )
    poll: Duration = Field(default=1.0, description="how often the monitor looks whether the canary applied it")

    @field_validator("poll")
    @classmethod
    def _poll_coarse_enough(cls, value: float) -> float:
        if value < MIN_PROBE_PERIOD / 10:
            raise ValueError(f"expected a poll of at least {MIN_PROBE_PERIOD / 10:g} s (got {value:g} s)")
        return value


class HealthConfig(_Config):
    """Health checks of the device manager, and what their verdicts decide (S3).

    As designed the device manager has one probe, the shallow ``GET /health``, serving as
    liveness and readiness alike: it passes whenever the process runs, so the service looks
    healthy while it cannot reach IoT Core.  The countermeasures: ``deep`` makes
    ``GET /health/deep`` (the review's dependency checks) the readiness probe, ``synthetic``
    adds an external end-to-end command probe, and ``gate_traffic`` lets readiness take the
    device manager out of the Service.  Every probe's time to detect each fault is measured.
    """

    shallow: ProbeConfig = Field(
        default_factory=ProbeConfig,
        description="GET /health: the process answers, no dependency touched; the liveness probe, and as designed "
        "the readiness probe too",
    )
    deep: ProbeConfig | None = Field(
        default=None,
        description="GET /health/deep, the readiness probe (S3): the dependencies in deep_checks, each within "
        "check_timeout; give a readiness probe's settings, e.g. {} for Kubernetes' defaults; none as designed",
    )
    deep_checks: list[str] = Field(
        default_factory=lambda: ["db-primary", "redis", "iot-core", "kinesis"],
        min_length=1,
        max_length=4,
        description="what /health/deep checks, in order (the review: PostgreSQL, Redis, the MQTT broker, Kinesis)",
    )
    check_timeout: Duration = Field(
        default=0.5,
        description="each deep check's timeout: under the probe's timeout, so that the failing dependency is named",
    )
    synthetic: SyntheticProbeConfig | None = Field(
        default=None, description="the synthetic end-to-end command probe (S3), e.g. {}; none as designed"
    )
    gate_traffic: bool = Field(
        default=False,
        description="Kubernetes' readiness gate: while the readiness probe says not ready, the device manager "
        "is out of the Service's endpoints and the gateway's calls are refused at once (503); off unless set, "
        "so that scenarios about other findings keep their figures (with the shallow probe it acts only around "
        "a crash)",
    )
    detection_grace: Offset = Field(
        default=60.0,
        description="a probe that turns unhealthy up to this long after a fault's effect ended still detected "
        "it (effects outlive faults); an unhealthy turn no fault explains is a false alarm",
    )

    @field_validator("deep_checks")
    @classmethod
    def _known_dependencies(cls, value: list[str]) -> list[str]:
        from models.logic.health import DEEP_DEPENDENCIES

        unknown = [name for name in value if name not in DEEP_DEPENDENCIES]
        if unknown:
            raise ValueError(f"unknown dependency {unknown[0]!r} (known: {', '.join(DEEP_DEPENDENCIES)})")
        if len(set(value)) != len(value):
            raise ValueError("a dependency is listed twice")
        return value
