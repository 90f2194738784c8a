"""Recovery runbooks as timed steps, so that an RTO decomposes into its parts (issue 10).

A runbook is an ordered list of steps -- detect, respond, decide, find out how, recover the
data, repoint clients and DNS, wait out DNS caches, warm caches, verify -- each with a
:class:`~sim.distributions.Distribution` of how long it takes. One step recovers the data;
its time is not the runbook's to say but the recovery path's (promoting a replica takes what
is left of its replay backlog plus ``promote_time``; restoring from the backups takes the
copy, fetch and replay times of a :class:`~models.logic.durability.RestoreResult`), so
:meth:`BoundRunbook.draw` takes the data steps as input (or a function of the data step's
start) and puts them in that step's place. The RTO is the sum of the steps (the actors a
disaster takes out are down exactly that long), and every step's start is known the moment
the disaster happens, because every duration is drawn then (the model needs no process to
follow the runbook).

The start of the data step is the **point of no return**: a team that has not reached it
when a lost region comes back does not fail over (:mod:`models.recovery.failover`).

Not every step belongs to every disaster (``applies_to``): only a lost region leaves the
caches cold; a replica rebuilt in the background needs neither a decision nor a DNS change.

Two presets, their numbers justified step by step in :data:`MANUAL` and :data:`REHEARSED`:

* ``manual`` -- as designed: the runbook has never been run (C4: nobody has tested a
  restore), nothing is automated, the on-call responds within 15 minutes to a P1 (review
  M4) and then has to find the people, the decision, the procedure and the credentials;
* ``rehearsed`` -- partly automated and drilled quarterly (review: quarterly DR drills):
  health-check detection, pre-agreed decision criteria, a scripted promotion and DNS change
  with a low TTL, a cache warm-up job.

The module is pure (no simpy): samplers come from a factory, in the model the kernel's
:meth:`~sim.kernel.Kernel.sampler`, one named random stream per step, so a run is
deterministic per seed and adding a step shifts no other step's draws.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from models.recovery.config import DATA_STEP, DisasterKind, RunbookStepConfig
from sim.distributions import Distribution, Sampler, constant, lognormal

__all__ = [
    "ALL_DISASTERS",
    "DATA_STEP",
    "MANUAL",
    "PRESETS",
    "REHEARSED",
    "BoundRunbook",
    "DataSteps",
    "Runbook",
    "SamplerFactory",
    "Step",
    "TimedStep",
    "Timeline",
]

SamplerFactory = Callable[[Distribution, str], Sampler]
"""Builds a sampler of a distribution on the named random stream (``Kernel.sampler``)."""

DataSteps = Sequence[tuple[str, float]] | Callable[[float], Sequence[tuple[str, float]]]
"""The data's recovery in parts (name, seconds), or a function of the data step's start giving them."""

ALL_DISASTERS: frozenset[DisasterKind] = frozenset({"primary_loss", "replica_loss", "region_outage"})
_LEADERSHIP: frozenset[DisasterKind] = frozenset({"primary_loss", "region_outage"})
"""Disasters that take the service down: someone must respond, decide and repoint clients."""
_REGION: frozenset[DisasterKind] = frozenset({"region_outage"})


@dataclass(frozen=True, slots=True)
class Step:
    """One step: a name and its duration, or (``time`` None) the place of the data's recovery."""

    name: str
    time: Distribution | None
    applies_to: frozenset[DisasterKind] = ALL_DISASTERS

    @property
    def recovers_data(self) -> bool:
        """Whether this is the data step, timed by the recovery path."""
        return self.time is None


MANUAL: tuple[Step, ...] = (
    # CloudWatch alarms on 1-minute metrics with 3 of 3 datapoints breaching fire 3 min after
    # the start at best; with the design's shallow health checks (S3) a dead dependency shows
    # first as error rates, latency alarms and users' complaints. Median 5 min, p95 ~ 11 min.
    Step("detect", lognormal("5m", 0.5)),
    # Review M4: the on-call acknowledges a P1 within 15 min; then the people who can act (a
    # DBA, an incident lead) are called in and the cause confirmed -- not our bug, the region
    # (AWS's status page lags the impact: about an hour on 2021-12-07 in us-east-1). Median
    # 20 min, p95 ~ 45 min.
    Step("respond and escalate", lognormal("20m", 0.5), _LEADERSHIP),
    # No pre-agreed criteria: failing a region over (or restoring the database) is a business
    # decision taken by people who have never seen it done, hoping the provider recovers first
    # (public post-mortems of us-east-1 2017-02-28 and 2021-12-07 tell of teams waiting for
    # hours). Median 45 min, wide: p95 ~ 2.4 h.
    Step("decide to fail over", lognormal("45m", 0.7), _LEADERSHIP),
    # Nobody has done it (C4: no restore was ever tested): find the procedure, the DR
    # account's credentials, the backup bucket and the right base backup, write the recovery
    # settings, provision or scale up the passive side. Median 40 min, p95 ~ 1.8 h.
    Step("find out how to recover", lognormal("40m", 0.6), _LEADERSHIP),
    Step(DATA_STEP, None),
    # By hand: edit the Route 53 records and the services' connection strings and secrets,
    # redeploy; IoT Core endpoints are regional, so devices follow only if they connect through
    # a custom domain whose CNAME is changed too. Median 30 min, p95 ~ 80 min.
    Step("repoint clients and DNS", lognormal("30m", 0.6), _LEADERSHIP),
    # Resolvers keep the old answer until its TTL runs out: Route 53's console proposes 300 s
    # for a new record, and nobody lowered it. The last client moves a whole TTL after the change.
    Step("DNS caches expire", constant("5m"), _LEADERSHIP),
    # The DR region's Redis starts empty: device state and sessions are rebuilt lazily from
    # PostgreSQL and from devices' next reports, with the database loaded meanwhile, until
    # the working set is back. Only after a region's loss. Median 20 min.
    Step("warm caches", lognormal("20m", 0.5), _REGION),
    # A manual smoke test before the all-clear (log in, command a device, read a dashboard).
    Step("verify and reopen", lognormal("15m", 0.5), _LEADERSHIP),
)
"""The runbook as designed; sum of the medians without the data: 3 h for a region."""

REHEARSED: tuple[Step, ...] = (
    # Route 53 health checks every 30 s, unhealthy after 3 failures (~90 s), and the deep
    # health check of S3, alarm and page at once. Median 2 min, narrow.
    Step("detect", lognormal("2m", 0.3)),
    # The page is acknowledged; a drilled on-call starts the runbook without escalating first.
    # Median 5 min, p95 ~ 11 min: inside M4's 15 min.
    Step("respond", lognormal("5m", 0.5), _LEADERSHIP),
    # Criteria agreed beforehand ("impaired 10 min and AWS Health confirms: fail over"): the
    # wait is part of the rule, so the spread is small.
    Step("decide to fail over", lognormal("10m", 0.3), _LEADERSHIP),
    Step(DATA_STEP, None),
    # A script flips the Route 53 failover records, updates secrets and scales up the warm
    # standby (node groups take minutes). Median 5 min.
    Step("repoint clients and DNS", lognormal("5m", 0.4), _LEADERSHIP),
    # TTL of 60 s, as AWS recommends for failover records behind health checks.
    Step("DNS caches expire", constant("60s"), _LEADERSHIP),
    # A warm-up job loads device state and open sessions from PostgreSQL. Median 5 min.
    Step("warm caches", lognormal("5m", 0.4), _REGION),
    # A scripted smoke test.
    Step("verify and reopen", lognormal("3m", 0.3), _LEADERSHIP),
)
"""Partly automated and drilled quarterly; sum of the medians without the data: 31 min."""

PRESETS: dict[str, tuple[Step, ...]] = {"manual": MANUAL, "rehearsed": REHEARSED}


@dataclass(frozen=True, slots=True)
class TimedStep:
    """A step as it went at one disaster: its start (seconds after the disaster) and duration."""

    name: str
    start_s: float
    seconds: float
    recovers_data: bool

    @property
    def end_s(self) -> float:
        """Seconds after the disaster when the step ended."""
        return self.start_s + self.seconds


@dataclass(frozen=True, slots=True)
class Timeline:
    """The steps of one recovery, back to back from the disaster; the RTO is their sum."""

    steps: tuple[TimedStep, ...]

    @property
    def rto_s(self) -> float:
        """The time to recover: every step, one after the other."""
        return math.fsum(step.seconds for step in self.steps)

    @property
    def commit_s(self) -> float:
        """When the data's recovery starts, seconds after the disaster: the point of no return."""
        for step in self.steps:
            if step.recovers_data:
                return step.start_s
        return self.rto_s

    def step_seconds(self) -> dict[str, float]:
        """Seconds per step by name, the data's recovery summed under :data:`DATA_STEP`."""
        found: dict[str, float] = {}
        for step in self.steps:
            name = DATA_STEP if step.recovers_data else step.name
            found[name] = found.get(name, 0.0) + step.seconds
        return found

    def until(self, end_s: float) -> Timeline:
        """The steps as far as they got by ``end_s`` (a recovery called off then)."""
        cut = [
            TimedStep(s.name, s.start_s, min(s.seconds, end_s - s.start_s), s.recovers_data)
            for s in self.steps
            if s.start_s < end_s
        ]
        return Timeline(tuple(cut))


@dataclass(frozen=True, slots=True)
class Runbook:
    """A named, ordered list of steps with exactly one data step."""

    name: str
    steps: tuple[Step, ...]

    def __post_init__(self) -> None:
        if sum(step.recovers_data for step in self.steps) != 1:
            raise ValueError(f"runbook {self.name!r} needs exactly one data step")
        if any(step.name == DATA_STEP and not step.recovers_data for step in self.steps):
            raise ValueError(f"runbook {self.name!r}: the step name {DATA_STEP!r} is reserved for the data step")
        names = [step.name for step in self.steps]
        if len(set(names)) != len(names):
            raise ValueError(f"runbook {self.name!r}: step names must be unique")

    @classmethod
    def from_config(cls, spec: str | Sequence[RunbookStepConfig]) -> Runbook:
        """A preset by name, or the scenario's own list of steps."""
        if isinstance(spec, str):
            if spec not in PRESETS:
                raise ValueError(f"unknown runbook {spec!r} (presets: {', '.join(PRESETS)})")
            return cls(spec, PRESETS[spec])
        return cls("custom", tuple(Step(s.name, s.time, frozenset(s.applies_to)) for s in spec))

    def for_disaster(self, kind: DisasterKind) -> tuple[Step, ...]:
        """The steps that are part of recovering from ``kind``, in order."""
        return tuple(step for step in self.steps if kind in step.applies_to)

    def step_names(self, kind: DisasterKind) -> tuple[str, ...]:
        """The names a timeline of ``kind`` reports (the data step as :data:`DATA_STEP`)."""
        return tuple(DATA_STEP if s.recovers_data else s.name for s in self.for_disaster(kind))

    def bind(self, samplers: SamplerFactory, owner: str = "recovery/runbook") -> BoundRunbook:
        """This runbook with one sampler per timed step, on the stream ``owner/<step name>``."""
        bound = {step.name: samplers(step.time, f"{owner}/{step.name}") for step in self.steps if step.time is not None}
        return BoundRunbook(self, bound)


class BoundRunbook:
    """A runbook whose steps draw their durations from named random streams."""

    def __init__(self, runbook: Runbook, samplers: dict[str, Sampler]) -> None:
        self.runbook = runbook
        self._samplers = samplers

    def draw(self, kind: DisasterKind, data_steps: DataSteps) -> Timeline:
        """Every step of recovering from ``kind``, timed now, with ``data_steps`` (name,
        seconds) in the data step's place. Only the steps of ``kind`` draw, each from its own
        stream, in the runbook's order.

        ``data_steps`` may be a function of the data step's start (seconds after the disaster):
        what the data's recovery takes can depend on when the team gets there (a standby keeps
        replaying meanwhile; a region back by then needs no recovery at all)."""
        timed: list[TimedStep] = []
        t = 0.0
        for step in self.runbook.for_disaster(kind):
            if step.recovers_data:
                given = data_steps(t) if callable(data_steps) else data_steps
                parts = [(name, seconds) for name, seconds in given] or [(DATA_STEP, 0.0)]
            else:
                parts = [(step.name, self._samplers[step.name]())]
            for name, seconds in parts:
                if not (seconds >= 0.0):
                    raise ValueError(f"step {name!r} would take {seconds} s")
                timed.append(TimedStep(name, t, seconds, step.recovers_data))
                t += seconds
        return Timeline(tuple(timed))
