"""The smart-home system's SLOs: what the twin can measure, the review's objectives, the counting.

A scenario's ``slos:`` lists service level objectives (:class:`Slo`), each an indicator
(``sli``), an ``objective`` and a ``window`` with burn-rate alerts (:mod:`sim.slo` does
the budget and alert arithmetic).  ``slos: review`` -- or ``review`` as an item of the
list -- stands for the review's objectives (:data:`REVIEW_SLOS`, finding M1 and its
section 7).  The indicators, each a ratio of good to total events:

``availability`` (``flow``: ``api``, ``commands`` or ``dashboard``)
    Requests answered 2xx, of all requests.  Dashboard refreshes are one request each (no
    retry), judged when the answer arrives; a refresh with no answer within the
    dashboard's timeout is bad.  The app's command requests, retries included, are
    counted from each intent's outcome: an intent the app heard accepted after ``n``
    attempts was ``n - 1`` failed requests and one good one, an intent that failed was
    ``n`` failed ones -- all judged when the app gave its final answer, so a failed
    attempt is counted up to the intent's span late (6 s with the review's app when failures
    are fast, 36 s when every attempt times out).  ``api`` is both flows together.

``latency`` (``flow``, ``threshold``)
    2xx answers within ``threshold``, of all 2xx answers (errors are the availability
    SLO's): the review's "95 % of API requests < 200 ms" is ``objective: 0.95,
    threshold: 200ms``.  A dashboard refresh is measured from its request to its answer;
    a command intent from the tap to the accepted answer (its retries included), the
    latency the user feels.

``command_success`` (``within``, 5 s by default)
    Command intents the device applied within ``within`` of the tap, of all intents (the
    review's "99 % of device commands succeed within 5 s").  An intent is judged at its
    deadline, the tap plus ``within``: good if applied by then, bad otherwise.

``freshness`` (``within``, 60 s by default)
    Readings the ingest consumer wrote within ``within`` of being measured, of all readings
    the meters measured -- lost, stuck or late ones are bad.  Judged at the deadline too
    (counted in the step ``ceil(within / resolution)`` steps after the step it was measured
    in), so a stalled consumer shows as bad events a minute later, not never.  A reading
    counts once (an MQTT copy or a replay after a crash does not count again); one the
    consumer quarantined or dead-lettered counts as written, since freshness is about the
    pipeline's lag, not the reading's content.

Counting is in bulk where the run already keeps the data (the app's intents and their
outcomes, the devices' applied commands, the meters' reporting schedule) and through two
hooks where it does not: the dashboard users report each finished refresh
(:meth:`SliRecorder.dashboard_finished`) and the ingest consumer each batch it wrote for
the first time (:meth:`SliRecorder.readings_ingested`), only while an SLO needs them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

import numpy as np
import numpy.typing as npt
from pydantic import AfterValidator, Field

from models.readings import IS_COPY, TIME, Reading
from sim.durations import Duration, format_duration
from sim.slo import Shorthand, SloSpec, StepCounts, evaluate, per_step
from sim.spec import Spec

if TYPE_CHECKING:
    from models.config import Scenario
    from models.twin import World

__all__ = [
    "MAX_SLOS",
    "MAX_SLO_STEPS",
    "REVIEW_SLOS",
    "AvailabilitySli",
    "CommandSuccessSli",
    "FreshnessSli",
    "LatencySli",
    "SliRecorder",
    "Slo",
    "SloList",
    "slo_problems",
    "slo_section",
]

MAX_SLOS = 50
"""SLOs in one scenario."""
MAX_SLO_STEPS = 10_000_000
"""Steps of one SLO's timeline over the run (duration / resolution): a bound on its arrays."""

Flow = Literal["api", "commands", "dashboard"]


class AvailabilitySli(Spec):
    """Requests answered 2xx, of all requests of the flow."""

    kind: Literal["availability"]
    flow: Flow = Field(default="api", description="api (both), commands (the app's requests) or dashboard")

    def describe(self) -> str:
        """One line for results."""
        return f"{self.flow} requests answered 2xx"


class LatencySli(Spec):
    """2xx answers within ``threshold``, of all 2xx answers of the flow."""

    kind: Literal["latency"]
    flow: Flow = Field(default="api", description="api (both), commands (tap to accepted answer) or dashboard")
    threshold: Duration = Field(description="an answer this fast or faster is good, e.g. 200ms")

    def describe(self) -> str:
        """One line for results."""
        return f"2xx answers of {self.flow} requests within {format_duration(self.threshold)}"


class CommandSuccessSli(Spec):
    """Command intents applied on the device within ``within`` of the tap, of all intents."""

    kind: Literal["command_success"]
    within: Duration = Field(default=5.0, description="deadline from the tap to the device applying the command")

    def describe(self) -> str:
        """One line for results."""
        return f"command intents applied within {format_duration(self.within)} of the tap"


class FreshnessSli(Spec):
    """Readings written by the ingest consumer within ``within`` of being measured, of all measured."""

    kind: Literal["freshness"]
    within: Duration = Field(default=60.0, description="deadline from a reading's measurement to its ingestion")

    def describe(self) -> str:
        """One line for results."""
        return f"readings ingested within {format_duration(self.within)} of being measured"


Sli = Annotated[Union[AvailabilitySli, LatencySli, CommandSuccessSli, FreshnessSli], Field(discriminator="kind")]  # noqa: UP007 - a tagged union pydantic reads


class Slo(SloSpec):
    """One service level objective of the smart-home system; see the module docstring."""

    sli: Sli = Field(description="the indicator: availability, latency, command_success or freshness")


REVIEW_SLOS: tuple[dict[str, Any], ...] = (
    {
        "name": "api-availability",
        "description": "the review's availability target: 99.9 % (43.8 min of downtime a month)",
        "sli": {"kind": "availability", "flow": "api"},
        "objective": 0.999,
    },
    {
        "name": "api-latency-p95",
        "description": "the review's p95 < 200 ms: 95 % of API requests faster than 200 ms",
        "sli": {"kind": "latency", "flow": "api", "threshold": 0.2},
        "objective": 0.95,
    },
    {
        "name": "api-latency-p99",
        "description": "p99 < 1 s: 99 % of API requests faster than 1 s",
        "sli": {"kind": "latency", "flow": "api", "threshold": 1.0},
        "objective": 0.99,
    },
    {
        "name": "command-success",
        "description": "the review's command success SLO (M1): 99 % of device commands succeed within 5 s",
        "sli": {"kind": "command_success", "within": 5.0},
        "objective": 0.99,
    },
    {
        "name": "data-freshness",
        "description": "readings stored within 60 s of being measured; the review gives the 60 s, 99 % is the twin's",
        "sli": {"kind": "freshness", "within": 60.0},
        "objective": 0.99,
    },
)
"""The review's objectives (finding M1 and its section 7), each with the workbook's alerts
over a 30-day window: what ``slos: review`` stands for."""


def _unique_names(slos: list[Slo]) -> list[Slo]:
    names = [slo.name for slo in slos]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ValueError(
            f"two SLOs are named {twice[0]!r} ('review' brings {', '.join(r['name'] for r in REVIEW_SLOS)})"
        )
    return slos


_REVIEW = Shorthand(
    "review",
    lambda: [dict(slo) for slo in REVIEW_SLOS],
    "the review's SLOs: api-availability 99.9 %, api-latency-p95 (200ms) 95 %, api-latency-p99 (1s) 99 %, "
    "command-success (5s) 99 %, data-freshness (60s) 99 %",
    in_items=True,
)

SloList = Annotated[list[Slo], _REVIEW, AfterValidator(_unique_names), Field(max_length=MAX_SLOS)]
"""The scenario's ``slos:`` field: a list of SLOs, ``review``, or a list with ``review`` in it."""


def slo_problems(scenario: Scenario) -> list[tuple[tuple[str | int, ...], str]]:
    """SLOs this scenario cannot measure: no events of their kind, or a timeline too fine for the run."""
    workload = scenario.workload
    commands = bool(workload.mobile_users and workload.commands_per_user_per_hour and scenario.fleet.controllables)
    dashboards = bool(workload.dashboard_users and workload.queries_per_user_per_hour and scenario.fleet.meters)
    traffic = {"commands": commands, "dashboard": dashboards, "api": commands or dashboards}
    problems: list[tuple[tuple[str | int, ...], str]] = []
    for index, slo in enumerate(scenario.slos):
        sli = slo.sli
        steps = scenario.duration / slo.resolution
        if steps > MAX_SLO_STEPS:
            problems.append(
                (
                    ("slos", index, "resolution"),
                    f"{steps:.3g} steps over the run; at most {MAX_SLO_STEPS:,}: make the resolution coarser",
                )
            )
        missing = None
        if isinstance(sli, AvailabilitySli | LatencySli) and not traffic[sli.flow]:
            what = {"api": "API", "commands": "command", "dashboard": "dashboard"}[sli.flow]
            missing = f"no {what} requests in this scenario (workload and fleet send none)"
        elif isinstance(sli, CommandSuccessSli) and not commands:
            missing = "no command intents in this scenario (workload.mobile_users, fleet.controllables)"
        elif isinstance(sli, FreshnessSli) and not scenario.fleet.meters:
            missing = "no readings in this scenario (fleet.meters is 0)"
        if missing:
            problems.append((("slos", index, "sli"), f"{slo.name}: {missing}"))
    return problems


# -- counting ----------------------------------------------------------------------------------

_time = itemgetter(TIME)
_copy = itemgetter(IS_COPY)


class SliRecorder:
    """Per-step counts the run does not otherwise keep: finished dashboard refreshes and
    freshly ingested readings, for the SLOs that need them (see the module docstring)."""

    def __init__(self, slos: Sequence[Slo]) -> None:
        self.dashboard: dict[str, StepCounts] = {}
        self._dashboard: list[tuple[float | None, StepCounts]] = []
        self.fresh: dict[str, StepCounts] = {}
        self._fresh: list[tuple[float, StepCounts]] = []
        for slo in slos:
            sli = slo.sli
            if isinstance(sli, AvailabilitySli | LatencySli) and sli.flow != "commands":
                counts = self.dashboard[slo.name] = StepCounts(slo.resolution)
                self._dashboard.append((sli.threshold if isinstance(sli, LatencySli) else None, counts))
            elif isinstance(sli, FreshnessSli):
                counts = self.fresh[slo.name] = StepCounts(slo.resolution)
                self._fresh.append((sli.within, counts))

    @property
    def needs_dashboards(self) -> bool:
        """Whether any SLO counts dashboard refreshes."""
        return bool(self._dashboard)

    @property
    def needs_readings(self) -> bool:
        """Whether any SLO counts ingested readings."""
        return bool(self._fresh)

    def dashboard_finished(self, now: float, latency: float, ok: bool) -> None:
        """A dashboard refresh got its answer (``ok``: a 2xx) ``latency`` seconds after it was sent."""
        for threshold, counts in self._dashboard:
            if threshold is None:
                counts.add(now, ok)
            elif ok:
                counts.add(now, latency <= threshold)

    def readings_ingested(self, records: Sequence[Reading], start: int, now: float) -> None:
        """The consumer wrote ``records[start:]`` now, for the first time: count the originals
        that made their deadline, by the step they were measured in."""
        n = len(records) - start
        if n <= 0:
            return
        rows = records[start:] if start else records
        measured = np.fromiter(map(_time, rows), dtype=float, count=n)
        original = np.fromiter(map(_copy, rows), dtype=np.int8, count=n) == 0
        for within, counts in self._fresh:
            counts.add_many(measured[original & (now - measured <= within)], True)


def _steps(now: float, resolution: float) -> int:
    """Whole steps elapsed by ``now`` (a step's events are final at its end)."""
    return max(0, math.floor(now / resolution + 1e-9))


class _Intents:
    """The app's finished intents as arrays, read once per summary."""

    def __init__(self, world: World) -> None:
        started = world.mobile.started
        results = world.mobile.results
        n = len(results)
        self.finished = np.fromiter((at for _, at in results.values()), dtype=float, count=n)
        self.attempts = np.fromiter((getattr(r, "attempts", 1) for r, _ in results.values()), dtype=float, count=n)
        self.accepted = np.fromiter(
            (bool(getattr(r, "accepted", False)) for r, _ in results.values()), dtype=bool, count=n
        )
        began = np.fromiter((started[intent] for intent in results), dtype=float, count=n)
        self.response = self.finished - began


def _measured(world: World, steps: int, resolution: float) -> npt.NDArray[np.float64]:
    """Readings the meters measured per step: each meter reports at its phase plus whole
    periods, so the count before a time ``t = q P + r`` is ``n q`` plus the meters whose phase
    is below ``r`` (the schedule the fleet keeps, read without changing it)."""
    meters = world.meters
    period = world.scenario.fleet.report_every
    if steps <= 0 or meters.config.meters == 0:
        return np.zeros(max(0, steps))
    phases = np.sort(np.fmod(meters.next_emit, period))
    ends = np.arange(1, steps + 1) * resolution
    whole = np.floor(ends / period)
    before = phases.size * whole + np.searchsorted(phases, ends - whole * period, side="left")
    return np.diff(before, prepend=0.0)


def _counts(
    world: World, slo: Slo, steps: int, intents: _Intents | None
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """``(good, total)`` per step for ``slo`` over the first ``steps`` steps."""
    sli = slo.sli
    resolution = slo.resolution
    good, total = np.zeros(steps), np.zeros(steps)
    if isinstance(sli, AvailabilitySli | LatencySli):
        if sli.flow != "commands" and world.slo is not None:
            dashboard_good, dashboard_total = world.slo.dashboard[slo.name].arrays(steps)
            good += dashboard_good
            total += dashboard_total
        if sli.flow != "dashboard" and intents is not None:
            if isinstance(sli, AvailabilitySli):
                total += per_step(intents.finished, steps, resolution, intents.attempts)
                good += per_step(intents.finished[intents.accepted], steps, resolution)
            else:
                accepted = intents.accepted
                fast = accepted & (intents.response <= sli.threshold)
                total += per_step(intents.finished[accepted], steps, resolution)
                good += per_step(intents.finished[fast], steps, resolution)
    elif isinstance(sli, CommandSuccessSli):
        started = world.mobile.started
        applied = world.devices.applied
        within = sli.within
        deadlines = np.fromiter((t + within for t in started.values()), dtype=float, count=len(started))
        made_it = np.fromiter(
            ((times := applied.get(intent)) is not None and times[0] - t <= within for intent, t in started.items()),
            dtype=bool,
            count=len(started),
        )
        total += per_step(deadlines, steps, resolution)
        good += per_step(deadlines[made_it], steps, resolution)
    elif world.slo is not None:  # freshness: judged ``shift`` steps after the step of measurement
        shift = math.ceil(sli.within / resolution - 1e-9)
        measured_steps = max(0, steps - shift)
        measured = _measured(world, measured_steps, resolution)
        _, fresh = world.slo.fresh[slo.name].arrays(measured_steps)
        total[shift:] = measured
        good[shift:] = np.minimum(fresh, measured)  # a poison record is no measurement: never above
    return good, total


def slo_section(world: World) -> dict[str, Any]:
    """The ``slos`` section of a result: each SLO's figures (:meth:`sim.slo.SloReport.as_dict`)
    with its indicator, judged on the whole steps elapsed so far; detection delays are from
    the first fault's start.  A pure reading of what the run recorded."""
    scenario = world.scenario
    now = min(world.kernel.now, scenario.duration)
    fault_start = min((float(entry["start"]) for entry in world.faults.log), default=None)
    needs_intents = any(
        isinstance(slo.sli, AvailabilitySli | LatencySli) and slo.sli.flow != "dashboard" for slo in scenario.slos
    )
    intents = _Intents(world) if needs_intents else None
    section: dict[str, Any] = {}
    for slo in scenario.slos:
        steps = _steps(now, slo.resolution)
        good, total = _counts(world, slo, steps, intents)
        report = evaluate(slo, good, total, fault_start=fault_start)
        every = max(1, round(scenario.metrics_interval / slo.resolution))
        section[slo.name] = {"indicator": slo.sli.describe(), **report.as_dict(series_every=every)}
    return section
