"""What a twin tells the report generator about its results: the contract between them.

The engine's report code (:mod:`sim.report`) knows result *formats* -- a ``timeseries``
section, a ``ledger``, an ``slos`` section, ``faults`` windows -- but not which of a twin's
series are throughput, which are latency, where its breakers log their transitions or which
of its findings a scenario speaks to.  A twin says so once, in a :class:`ReportProfile`
(``Twin.report_profile``), and every report reads it from there.

Paths are tuples of keys into one variant's result body, so a profile never spells a path
as a dotted string that could be split wrongly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "Band",
    "Distribution",
    "FailureMode",
    "Line",
    "Panel",
    "ReportProfile",
    "Runbook",
    "Signal",
]


@dataclass(frozen=True)
class Line:
    """One line on a timeline panel, read from the result's ``timeseries`` section.

    ``series`` names a series; a name ending in ``*`` is a pattern and draws one line per
    matching series (labelled by what the ``*`` matched).  With ``per``, the line is the
    ratio ``series / per`` bucket by bucket (an error rate: errors per request); ``per`` may
    name several series, whose sum is the denominator (failed per answered: failed /
    (failed + succeeded)); with
    ``complement`` it is ``1 - series / per`` (a failure rate from a success count).  A
    bucket whose denominator is zero has no value.  ``scale`` multiplies every value (to
    draw seconds as milliseconds, say) and ``per_second`` divides a count by the bucket width.
    ``cumulative`` draws the running total instead (a queue nothing drains, such as a dead
    letter queue whose series counts what arrived per interval: the total is its depth).
    """

    label: str
    series: str
    per: str | tuple[str, ...] | None = None
    complement: bool = False
    scale: float = 1.0
    per_second: bool = False
    cumulative: bool = False


@dataclass(frozen=True)
class Band:
    """A state over time drawn as a coloured band under the timeline (a circuit breaker).

    ``path`` leads to a list of transitions, each a mapping with the time under
    ``time_key``, the new state under ``state_key`` and, when several things change state
    (one breaker per replica), which one under ``group_key``.  Everything starts in
    ``initial`` at time 0.  ``colours`` gives each state's colour; states not listed are grey.
    """

    title: str
    path: tuple[str, ...]
    time_key: str = "t"
    state_key: str = "to"
    group_key: str | None = None
    initial: str = "closed"
    colours: tuple[tuple[str, str], ...] = ()
    listed_at_most: int | None = None
    """the result lists only the first this many transitions: a list that long may have been cut,
    so after its last change the state is drawn as unknown rather than assumed to hold"""


@dataclass(frozen=True)
class Panel:
    """One panel of the timeline: lines sharing a y axis."""

    title: str
    unit: str
    lines: tuple[Line, ...]
    log: bool = False


@dataclass(frozen=True)
class Distribution:
    """A latency distribution whose CDF is drawn per variant.

    ``path`` leads to a mapping with ``quantiles``: a list of ``[probability, value]``
    pairs, increasing in both (the result's ``distributions`` section).
    """

    title: str
    path: tuple[str, ...]
    unit: str = "s"


@dataclass(frozen=True)
class Signal:
    """A number read from a variant's result body, with how to read it.

    ``path`` is a tuple of keys (an int indexes a list); ``worse`` says which direction is bad (``higher``: more
    orphaned commands is worse; ``lower``: a lower success rate is worse).  ``unit`` is
    shown beside the value.
    """

    label: str
    path: tuple[str | int, ...]
    unit: str = ""
    worse: Literal["higher", "lower"] = "higher"
    window_series: tuple[str, str] | None = None
    """(numerator, denominator): names of two ``timeseries`` series; when given, the signal's value in a replication
    is the numerator's sum over the denominator's in the intervals that overlap fault ``window_fault``'s window
    (``path`` then only names it), so one fault's effect is measured apart from the run's other faults"""
    window_fault: int = 0


@dataclass(frozen=True)
class Runbook:
    """The skeleton of a runbook for one failure mode, as the twin measured it (finding M4)."""

    detection: str
    first_checks: tuple[str, ...]
    mitigation: tuple[str, ...]


@dataclass(frozen=True)
class FailureMode:
    """One row of the FMEA catalogue: a failure mode, the scenario that measures it, and how.

    ``scenario`` is the scenario's name (its file is ``scenarios/<name>.yaml``);
    ``as_designed`` and ``countermeasure`` name its variants.  ``effect`` is the measured
    harm (read from both variants); ``detection`` the signal whose first firing after the
    fault's start gives the measured time to detect (MTTD), a path to a time in seconds
    within the as-designed variant's body, or ``None`` when the design has no signal at all
    (the worst detection score).  ``exposure`` is the share of the population the mode
    touches, read from the body, used to score occurrence.  ``trace_kind`` and
    ``trace_state`` pick the affected request whose trace the catalogue shows (a ledger
    kind tracked item by item, the final state that marks it as harmed and, optionally, the
    reason for that state, as the ledger's ``by_reason`` names it).

    The defaulted fields tune the scoring (:mod:`sim.report.fmea`): ``harm`` is the kind of
    harm, which sets the severity band; the effect's relative size is the effect over the
    value at ``effect_of`` (a count's population) or, without it, over ``effect_scale`` (1 for
    a share).  ``exposure_of`` likewise turns a count at ``exposure`` into the share touched.
    ``fault`` indexes the body's ``faults`` list: its start is when detection's clock starts and
    its window (``end - start``, or ``window_s`` when given) what MTTD is measured against.
    ``detection_is_delay`` says the detection path already holds a delay from the start (a
    ``detection_delay_s``) rather than a time on the run's clock.  ``detection_with`` is the
    countermeasure's own detection signal where the design has another or none (a deep
    check, a burn-rate alert); without it the countermeasure is read at ``detection``.  A
    countermeasure that only adds detection names the as-designed variant again.
    """

    finding: str
    title: str
    component: str
    trigger: str
    scenario: str
    as_designed: str
    countermeasure: str
    countermeasure_text: str
    effect: Signal
    exposure: Signal
    detection_signal: str
    detection: Signal | None
    residual_risk: str
    runbook: Runbook
    trace_kind: str | None = None
    trace_state: str | None = None
    trace_reason: str | None = None
    harm: Literal["degraded", "unavailable", "wrong", "silent", "lost"] = "unavailable"
    effect_of: tuple[str | int, ...] | None = None
    effect_scale: float = 1.0
    exposure_of: tuple[str | int, ...] | None = None
    fault: int = 0
    detection_is_delay: bool = False
    detection_with: Signal | None = None
    window_s: float | None = None
    trace_none_reason: str | None = None
    """why the catalogue shows no trace, where no tracked final state marks the harm (``trace_kind`` None)"""
    exposure_offset: float = 0.0
    """subtracted from the exposure's ratio before it is read as a share (1 turns requests per intent into retries)"""


@dataclass(frozen=True)
class ReportProfile:
    """Everything a twin tells the report generator; see the module docstring."""

    panels: tuple[Panel, ...] = ()
    bands: tuple[Band, ...] = ()
    distributions: tuple[Distribution, ...] = ()
    headline: tuple[Signal, ...] = ()
    """the figures shown first in a scenario's variant table, in this order"""
    failure_modes: tuple[FailureMode, ...] = ()
    findings: tuple[tuple[str, str], ...] = field(default=())
    """(finding id, one-line title) for every finding the twin's system has"""
    served_by_catalogue: tuple[tuple[str, str], ...] = ()
    """(finding id, how): findings the catalogue itself answers rather than a failure mode
    (a missing practice -- tracing, runbooks -- that each mode's section supplies)"""
