"""Service level objectives on a simulated timeline: SLIs, error budgets, burn-rate alerts.

Model-agnostic: an SLO here is an objective on a ratio of good to total events, and the
model supplies the events as counts per step of a uniform timeline (``resolution``
seconds a step; :class:`StepCounts` collects them).  Everything else is arithmetic on
those counts, done the way the Google SRE Workbook's chapter "Alerting on SLOs" does it
(https://sre.google/workbook/alerting-on-slos/; the research notes' section 4):

* **SLI** -- good / total events, per step and over the run.
* **Burn rate** over a trailing window -- the window's error ratio divided by the error
  ratio the objective allows, ``(bad / total) / (1 - objective)``: 1 spends the budget
  exactly over the SLO window, 14.4 spends a 30-day budget in 50 hours.
* **Error budget** -- the bad events the SLO window allows: ``(1 - objective)`` times the
  events the window would hold at the run's mean event rate (events so far / time so
  far x window).  A run is usually far shorter than its window (hours of a 30-day SLO),
  so the budget is sized for the whole window, as a real one would be, and an incident in
  the run spends a fraction of it; this is the accounting behind the workbook's
  "budget consumed when the alert fires" (2 % for 14.4x over 1 h = 14.4 x 1 h / 30 d).
  *Budget consumed* at a time is the bad events in the trailing SLO window up to then
  (all of the run while it is shorter than the window) over that budget.
* **Alerts** -- multiwindow, multi-burn-rate rules: a rule fires while the burn rate over
  its long window *and* over its short window (1/12 of the long one unless given) both
  exceed its threshold; it resolves when either drops back.  The default set is the
  workbook's table for a 99.9 % SLO over 30 days (:data:`WORKBOOK_RULES`): page at 14.4x
  over 1 h and 5 min, page at 6x over 6 h and 30 min, ticket at 1x over 3 d and 6 h.
  "Exceed" is strict, as the workbook's ``>``: a burn rate exactly at the threshold does
  not fire (compared with a relative tolerance of 1e-9, so float rounding cannot make it).

Timing.  Step ``k`` covers ``[k r, (k + 1) r)``; rules are evaluated at the end of every
step, as a rule evaluator running every ``r`` seconds would, so an alert fires at the end
of the first step at which both windows exceed the threshold.  A window spans
``ceil(window / r)`` steps.  A window longer than the data so far uses the data there is,
as a freshly started Prometheus does (``rate()`` over a range holding fewer samples): a
3-day window six hours into a run is a 6-hour window.  This makes long windows faster to
fire early in a run than they would be on a system with days of clean history, and a
result says so only through its times -- read detection delays of windows longer than the
time before the fault with that in mind.  A window with no events has no burn rate (not
zero): it neither fires nor resolves an alert by itself being empty -- it simply does not
satisfy the condition, as ``0 / 0`` in PromQL is NaN and NaN comparisons are false.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import Field, GetCoreSchemaHandler, GetJsonSchemaHandler, field_validator, model_validator
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from sim.durations import Duration, format_duration
from sim.spec import Spec

__all__ = [
    "MIN_RESOLUTION",
    "REL_TOL",
    "SLO_NAME_PATTERN",
    "WORKBOOK_RULES",
    "AlertOutcome",
    "AlertRule",
    "Shorthand",
    "SloReport",
    "SloSpec",
    "StepCounts",
    "burn_rates",
    "error_budget",
    "evaluate",
    "exceeds",
    "per_step",
    "trailing_sums",
    "window_steps",
]

SLO_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
"""An SLO or alert name: a slug without dots, so that it is one segment of a result path
(``slos.api-availability.alerts.page-1h.fired_at_s``)."""
_NAME = re.compile(SLO_NAME_PATTERN)
MIN_RESOLUTION = 0.1
"""The finest step an SLO timeline may use (the narrowest time-series bucket too)."""
REL_TOL = 1e-9
"""Relative tolerance of "exceeds": a burn rate within it of the threshold does not fire."""
_DAY = 86400.0


def _slug(value: str, what: str) -> str:
    if not _NAME.fullmatch(value):
        raise ValueError(
            f"expected a {what} of 1-64 lower-case letters, digits, '_' or '-', starting with a letter or digit "
            "(no '.': it is one segment of a result path)"
        )
    return value


class Shorthand:
    """Lets a list field also take one word standing for a preset list (``alerts: workbook``).

    With ``in_items`` the word may also be an item of the list, standing for the preset's
    items there (``slos: [review, {...}]``).  The JSON Schema offers the word beside the list,
    so an editor accepts what the loader accepts.
    """

    def __init__(self, word: str, preset: Callable[[], list[Any]], description: str, *, in_items: bool = False) -> None:
        self.word = word
        self.preset = preset
        self.description = description
        self.in_items = in_items

    def expand(self, value: Any) -> Any:
        """``value`` with the word replaced by the preset's items (anything else as it is)."""
        if isinstance(value, str):
            if value != self.word:
                raise ValueError(f"expected a list, or {self.word!r} for {self.description}")
            return self.preset()
        if self.in_items and isinstance(value, list):
            expanded: list[Any] = []
            for item in value:
                if isinstance(item, str) and item == self.word:
                    expanded.extend(self.preset())
                else:
                    expanded.append(item)
            return expanded
        return value

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_before_validator_function(self.expand, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        inner = handler(schema)
        if getattr(handler, "mode", "validation") == "serialization":
            return inner
        word = {"const": self.word, "description": self.description}
        if self.in_items and "items" in inner:
            inner = {**inner, "items": {"anyOf": [inner["items"], word]}}
        return {"anyOf": [inner, word]}

    def __repr__(self) -> str:
        return f"Shorthand({self.word!r})"


class AlertRule(Spec):
    """One multiwindow burn-rate rule: fire while both windows burn faster than ``burn_rate``."""

    severity: Literal["page", "ticket"] = Field(description="page: wake someone now; ticket: look at it this week")
    burn_rate: float = Field(gt=0, le=1_000_000, description="threshold: times the rate that spends the budget")
    long_window: Duration = Field(description="the window that says the burn is significant")
    short_window: Duration | None = Field(
        default=None,
        description="the window that says it is still going on (fast reset); 1/12 of long_window unless given",
    )
    name: str | None = Field(
        default=None,
        json_schema_extra={"pattern": SLO_NAME_PATTERN},
        description="names the rule in results; <severity>-<long window> (e.g. page-1h) unless given",
    )

    @field_validator("name")
    @classmethod
    def _name_is_a_slug(cls, value: str | None) -> str | None:
        return None if value is None else _slug(value, "rule name")

    @model_validator(mode="after")
    def _short_is_shorter(self) -> AlertRule:
        if self.short_window is not None and self.short_window >= self.long_window:
            raise ValueError(
                f"short_window ({format_duration(self.short_window)}) must be shorter than long_window "
                f"({format_duration(self.long_window)})"
            )
        return self

    @property
    def short_s(self) -> float:
        """The short window in seconds (1/12 of the long one unless given, as in the workbook)."""
        return self.long_window / 12 if self.short_window is None else self.short_window

    @property
    def label(self) -> str:
        """The rule's name in results."""
        if self.name is not None:
            return self.name
        return f"{self.severity}-{format_duration(self.long_window)}".replace(".", "_")


WORKBOOK_RULES: tuple[AlertRule, ...] = (
    AlertRule(severity="page", burn_rate=14.4, long_window=3600.0, short_window=300.0),
    AlertRule(severity="page", burn_rate=6.0, long_window=6 * 3600.0, short_window=1800.0),
    AlertRule(severity="ticket", burn_rate=1.0, long_window=3 * _DAY, short_window=6 * 3600.0),
)
"""The SRE Workbook's recommended rules for a 99.9 % SLO over 30 days: 2 % of the budget
spent in 1 h, 5 % in 6 h (pages), 10 % in 3 d (ticket)."""


_WORKBOOK = Shorthand(
    "workbook",
    lambda: [rule.model_dump(exclude_unset=True) for rule in WORKBOOK_RULES],
    "the SRE Workbook's rules: page 14.4x over 1h and 5m, page 6x over 6h and 30m, ticket 1x over 3d and 6h",
)


class SloSpec(Spec):
    """An objective on a ratio of good to total events, over a rolling window, with its alerts.

    A model derives from it to add the indicator (which events, what is good).
    """

    name: str = Field(
        json_schema_extra={"pattern": SLO_NAME_PATTERN}, description="names the SLO in results (a slug, no dots)"
    )
    description: str = Field(default="", max_length=2000)
    objective: float = Field(description="the share of good events promised, a fraction: 0.999 for 99.9 %")
    window: Duration = Field(default=30 * _DAY, description="the rolling window the objective is promised over")
    resolution: Duration = Field(
        default=10.0,
        description="step of the SLO timeline: events are counted per step and alerts evaluated at the end of "
        "each (a rule evaluation interval); windows span whole steps",
    )
    alerts: Annotated[list[AlertRule], _WORKBOOK] = Field(
        default_factory=lambda: list(WORKBOOK_RULES),
        max_length=20,
        description="burn-rate alert rules: 'workbook' (the default: page 14.4x over 1h and 5m, page 6x over 6h "
        "and 30m, ticket 1x over 3d and 6h), a list of rules, or [] for none",
    )

    @field_validator("name")
    @classmethod
    def _name_is_a_slug(cls, value: str) -> str:
        return _slug(value, "name")

    @field_validator("objective")
    @classmethod
    def _a_fraction(cls, value: float) -> float:
        if not 0 < value < 1:
            hint = f"; {value:g} % is {value / 100:g}" if 1 < value < 100 else ""
            raise ValueError(f"expected a fraction between 0 and 1, e.g. 0.999 for 99.9 % (got {value:g}{hint})")
        return value

    @field_validator("resolution")
    @classmethod
    def _fine_but_not_too_fine(cls, value: float) -> float:
        if value < MIN_RESOLUTION:
            raise ValueError(f"expected a resolution of at least {MIN_RESOLUTION} s (got {value:g} s)")
        return value

    @model_validator(mode="after")
    def _windows_fit(self) -> SloSpec:
        labels = [rule.label for rule in self.alerts]
        twice = sorted({label for label in labels if labels.count(label) > 1})
        if twice:
            raise ValueError(f"two alert rules are named {twice[0]!r}: give one a name")
        for rule in self.alerts:
            if rule.long_window > self.window:
                raise ValueError(
                    f"alert {rule.label}: long_window {format_duration(rule.long_window)} is longer than the SLO "
                    f"window {format_duration(self.window)}"
                )
            if rule.short_s < self.resolution:
                raise ValueError(
                    f"alert {rule.label}: short window {format_duration(rule.short_s)} is shorter than one step of "
                    f"the resolution ({format_duration(self.resolution)}): make the resolution finer"
                )
        return self


# -- counting ----------------------------------------------------------------------------------


class StepCounts:
    """Good and total events per step of a uniform timeline, added one at a time or as arrays.

    Memory is one entry per step that saw an event: it grows with the run's length over the
    resolution, never with the number of events.
    """

    __slots__ = ("_good", "_total", "resolution")

    def __init__(self, resolution: float) -> None:
        if not resolution > 0:
            raise ValueError(f"resolution must be > 0 (got {resolution})")
        self.resolution = resolution
        self._good: dict[int, int] = {}
        self._total: dict[int, int] = {}

    def add(self, t: float, good: bool) -> None:
        """One event at time ``t``."""
        step = int(t // self.resolution)
        total = self._total
        total[step] = total.get(step, 0) + 1
        if good:
            counts = self._good
            counts[step] = counts.get(step, 0) + 1

    def add_many(self, times: npt.ArrayLike, good: npt.ArrayLike) -> None:
        """Events at ``times``, each good where ``good`` is true."""
        t = np.asarray(times, dtype=float).ravel()
        if t.size == 0:
            return
        ok = np.broadcast_to(np.asarray(good, dtype=bool).ravel(), t.shape)
        steps = np.floor_divide(t, self.resolution).astype(np.int64)
        for store, chosen in ((self._total, steps), (self._good, steps[ok])):
            keys, counts = np.unique(chosen, return_counts=True)
            for key, n in zip(keys.tolist(), counts.tolist(), strict=True):
                store[key] = store.get(key, 0) + n

    def arrays(self, steps: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """``(good, total)`` for steps ``0 .. steps - 1`` (new arrays: reading changes nothing)."""
        good = np.zeros(max(0, steps))
        total = np.zeros(max(0, steps))
        for store, out in ((self._good, good), (self._total, total)):
            for step, n in store.items():
                if 0 <= step < steps:
                    out[step] += n
        return good, total


def per_step(
    times: npt.ArrayLike, steps: int, resolution: float, weights: npt.ArrayLike | None = None
) -> npt.NDArray[np.float64]:
    """Events (or ``weights``) at ``times`` summed per step, for steps ``0 .. steps - 1``;
    events at or after the last step's end are left out."""
    t = np.asarray(times, dtype=float).ravel()
    if steps <= 0:
        return np.zeros(0)
    index = np.floor_divide(t, resolution).astype(np.int64)
    inside = (index >= 0) & (index < steps)
    w = None if weights is None else np.asarray(weights, dtype=float).ravel()[inside]
    return np.bincount(index[inside], weights=w, minlength=steps).astype(float)


# -- arithmetic on the timeline --------------------------------------------------------------


def window_steps(window_s: float, resolution_s: float) -> int:
    """Whole steps a window spans, rounded up (5 min at 10 s: 30 steps; 25 s at 10 s: 3)."""
    return max(1, math.ceil(window_s / resolution_s - REL_TOL))


def trailing_sums(values: npt.ArrayLike, steps: int) -> npt.NDArray[np.float64]:
    """Each step's sum over the ``steps`` steps ending with it (fewer at the start: what there is)."""
    v = np.asarray(values, dtype=float)
    cumulative = np.concatenate(([0.0], np.cumsum(v)))
    end = np.arange(1, v.size + 1)
    return cumulative[end] - cumulative[np.maximum(0, end - steps)]


def burn_rates(good: npt.ArrayLike, total: npt.ArrayLike, objective: float, steps: int) -> npt.NDArray[np.float64]:
    """The burn rate over the trailing ``steps`` steps, at the end of each step (NaN with no events)."""
    g = trailing_sums(good, steps)
    n = trailing_sums(total, steps)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, (n - g) / n / (1.0 - objective), np.nan)


def exceeds(burn: npt.NDArray[np.float64], threshold: float) -> npt.NDArray[np.bool_]:
    """Where ``burn`` is strictly above ``threshold`` (beyond float rounding); NaN never is."""
    with np.errstate(invalid="ignore"):
        return np.asarray(burn > threshold * (1.0 + REL_TOL))


def error_budget(total_events: float, elapsed_s: float, objective: float, window_s: float) -> float | None:
    """Bad events the SLO window allows at the observed mean event rate (None before any event)."""
    if total_events <= 0 or elapsed_s <= 0:
        return None
    return (1.0 - objective) * total_events / elapsed_s * window_s


# -- evaluation ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertOutcome:
    """How one rule behaved over the run: each time it fired and resolved."""

    rule: AlertRule
    episodes: tuple[tuple[float, float | None], ...]
    """``(fired_at, resolved_at)`` in simulated seconds; ``resolved_at`` None while still firing."""
    budget_at_fire: float | None

    @property
    def fired_at(self) -> float | None:
        """When it first fired, or None."""
        return self.episodes[0][0] if self.episodes else None

    @property
    def resolved_at(self) -> float | None:
        """When its first firing resolved, or None (never fired, or still firing)."""
        return self.episodes[0][1] if self.episodes else None

    def firing_s(self, now: float) -> float:
        """Seconds spent firing up to ``now``."""
        return sum((now if end is None else end) - start for start, end in self.episodes)

    def detection_delay(self, fault_start: float | None) -> float | None:
        """From ``fault_start`` to the first firing at or after it; None without either.

        A firing that began before the fault does not count as detecting it: it fired for
        something else (or for nothing: a false alarm).
        """
        if fault_start is None:
            return None
        return next((start - fault_start for start, _ in self.episodes if start >= fault_start), None)


def _episodes(firing: npt.NDArray[np.bool_], resolution: float) -> tuple[tuple[float, float | None], ...]:
    """Runs of True in ``firing`` as (start, end) times; a step's verdict is known at its end."""
    if firing.size == 0:
        return ()
    edges = np.diff(firing.astype(np.int8), prepend=np.int8(0), append=np.int8(0))
    starts = np.flatnonzero(edges == 1).tolist()
    stops = np.flatnonzero(edges == -1).tolist()
    last = firing.size
    return tuple(
        ((start + 1) * resolution, None if stop == last else (stop + 1) * resolution)
        for start, stop in zip(starts, stops, strict=True)
    )


@dataclass(frozen=True)
class SloReport:
    """An SLO's figures over a run: see :func:`evaluate` and :meth:`as_dict`."""

    spec: SloSpec
    good: npt.NDArray[np.float64]
    total: npt.NDArray[np.float64]
    consumed: npt.NDArray[np.float64]
    budget: float | None
    alerts: tuple[AlertOutcome, ...]
    fault_start: float | None

    @property
    def now(self) -> float:
        """The end of the evaluated timeline."""
        return self.good.size * self.spec.resolution

    def as_dict(self, series_every: int = 1) -> dict[str, Any]:
        """Plain data for result files; ``series`` has one point per ``series_every`` steps.

        Per point: the SLI of the events in it, the budget consumed at its end, and the burn
        rate over each distinct alert window at its end (None where there were no events).
        """
        spec = self.spec
        events = float(self.total.sum())
        good = float(self.good.sum())
        sli = good / events if events else None
        return {
            "objective": spec.objective,
            "window_s": spec.window,
            "resolution_s": spec.resolution,
            "events": int(events),
            "good": int(good),
            "bad": int(events - good),
            "sli": sli,
            "mean_burn_rate": None if sli is None else (1.0 - sli) / (1.0 - spec.objective),
            "error_budget_events": self.budget,
            "budget_consumed": _last(self.consumed),
            "budget_exhausted_at_s": _first_at(self.consumed >= 1.0, spec.resolution),
            "alerts": {outcome.rule.label: self._alert(outcome) for outcome in self.alerts},
            "series": self._series(max(1, series_every)),
        }

    def _alert(self, outcome: AlertOutcome) -> dict[str, Any]:
        rule = outcome.rule
        return {
            "severity": rule.severity,
            "burn_rate": rule.burn_rate,
            "long_window_s": rule.long_window,
            "short_window_s": rule.short_s,
            "fired_at_s": outcome.fired_at,
            "resolved_at_s": outcome.resolved_at,
            "detection_delay_s": outcome.detection_delay(self.fault_start),
            "budget_consumed_at_fire": outcome.budget_at_fire,
            "firings": len(outcome.episodes),
            "firing_s": outcome.firing_s(self.now),
        }

    def _series(self, every: int) -> dict[str, Any]:
        spec = self.spec
        n = self.good.size
        ends = np.minimum(np.arange(every, n + every, every), n) - 1  # the last step of each point
        firsts = np.concatenate(([0], ends[:-1] + 1)) if ends.size else ends
        cumulative_good = np.concatenate(([0.0], np.cumsum(self.good)))
        cumulative_total = np.concatenate(([0.0], np.cumsum(self.total)))
        good = cumulative_good[ends + 1] - cumulative_good[firsts]
        total = cumulative_total[ends + 1] - cumulative_total[firsts]
        with np.errstate(invalid="ignore", divide="ignore"):
            sli = np.where(total > 0, good / total, np.nan)
        windows = sorted({w for rule in self.alerts for w in (rule.rule.long_window, rule.rule.short_s)})
        return {
            "interval_s": every * spec.resolution,
            "sli": _plain(sli),
            "budget_consumed": _plain(self.consumed[ends]) if ends.size else [],
            "burn_rate": {
                format_duration(w): _plain(
                    burn_rates(self.good, self.total, spec.objective, window_steps(w, spec.resolution))[ends]
                )
                for w in windows
            },
        }


def _plain(values: npt.NDArray[np.float64]) -> list[float | None]:
    """Floats for JSON, six significant digits (a series is for plots), None for NaN."""
    return [None if v != v else float(f"{v:.6g}") for v in values.tolist()]


def _last(values: npt.NDArray[np.float64]) -> float | None:
    if values.size == 0 or values[-1] != values[-1]:
        return None
    return float(values[-1])


def _first_at(condition: npt.NDArray[np.bool_], resolution: float) -> float | None:
    hits = np.flatnonzero(condition)
    return float((hits[0] + 1) * resolution) if hits.size else None


def evaluate(
    spec: SloSpec,
    good: Sequence[float] | npt.ArrayLike,
    total: Sequence[float] | npt.ArrayLike,
    *,
    fault_start: float | None = None,
) -> SloReport:
    """Judge ``spec`` on per-step counts (step ``k`` covers ``[k r, (k + 1) r)``, ``r`` the
    spec's resolution, from time 0): budget consumed over time and each alert rule's firings.

    ``fault_start``: when the fault the alerts should detect began (detection delays are
    measured from it).  See the module docstring for every definition.
    """
    g = np.asarray(good, dtype=float)
    n = np.asarray(total, dtype=float)
    if g.shape != n.shape or g.ndim != 1:
        raise ValueError(f"good and total must be 1-D arrays of one length (got {g.shape} and {n.shape})")
    if np.any(g > n) or np.any(g < 0):
        raise ValueError("expected 0 <= good <= total in every step")
    resolution = spec.resolution
    budget = error_budget(float(n.sum()), n.size * resolution, spec.objective, spec.window)
    bad_in_window = trailing_sums(n - g, window_steps(spec.window, resolution))
    consumed = bad_in_window / budget if budget else np.full(n.size, np.nan)
    outcomes = []
    for rule in spec.alerts:
        long_burn = burn_rates(g, n, spec.objective, window_steps(rule.long_window, resolution))
        short_burn = burn_rates(g, n, spec.objective, window_steps(rule.short_s, resolution))
        firing = exceeds(long_burn, rule.burn_rate) & exceeds(short_burn, rule.burn_rate)
        episodes = _episodes(firing, resolution)
        at_fire = None
        if episodes:
            step = round(episodes[0][0] / resolution) - 1
            at_fire = None if consumed[step] != consumed[step] else float(consumed[step])
        outcomes.append(AlertOutcome(rule, episodes, at_fire))
    return SloReport(spec, g, n, consumed, budget, tuple(outcomes), fault_start)
