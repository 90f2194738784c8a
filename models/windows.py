"""Offered load and goodput of the command flow before, during and after the run's faults.

A retry storm is judged by two questions (Bronson et al., "Metastable Failures in
Distributed Systems", HotOS '21): how much do retries amplify the load the users offer, and
does goodput come back once the trigger is gone?  Both need the run cut into windows, and
the cut comes from the run itself, never from numbers written here:

* the *trigger* spans the faults the run logged, from the first one's start to the last
  one's end (a fault still active ends the trigger now; a one-off fault lasts an instant);
* windows are whole intervals of the run's time series (``metrics_interval``): ``before``
  ends at the interval holding the trigger's start, ``during`` covers every interval the
  trigger touches, ``after`` runs from there to the last whole interval before users stop
  starting intents (``workload.quiet_before_end``) or before now, and ``last`` is the end
  of ``after``, as long as ``before`` (or all of ``after`` if that is shorter).  Faults on
  interval boundaries give exact windows; otherwise ``during`` is widened to whole intervals.

``after`` includes the time a system that does recover needs to drain the backlog the
trigger left; ``last`` asks whether it has: a like-for-like comparison with ``before`` at
the end of the run, where a metastable system is still down.

Each window reports intents started, requests sent (retries included), intents the app
heard accepted, amplification (requests / intents) and goodput (accepted intents per
second), also relative to ``before``.  A window that has not begun (no fault yet, or the
run still inside the trigger) has ``null`` figures.  Everything is read from the time series
and the fault log, so it is a pure function of what the run recorded.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from models.names import COMMAND_INTENTS, COMMAND_REQUESTS, COMMAND_SUCCEEDED

if TYPE_CHECKING:
    from models.twin import World

__all__ = ["WINDOWS", "command_load", "trigger_span", "windows"]

WINDOWS = ("before", "during", "after", "last")
"""The windows, in time order."""


def trigger_span(log: Sequence[Mapping[str, Any]], now: float) -> tuple[float, float] | None:
    """``(start, end)`` of the faults in ``log`` taken together, or None before any started."""
    if not log:
        return None
    start = min(float(entry["start"]) for entry in log)
    end = max(now if entry["end"] is None else float(entry["end"]) for entry in log)
    return start, end


def windows(
    span: tuple[float, float] | None, interval: float, until: float, since: float = 0.0
) -> dict[str, tuple[int, int] | None]:
    """Each window as ``(first, stop)`` interval indices (``stop`` excluded), or None if it has not begun.

    ``until``: the end of what may be counted (whole intervals only); ``since``: when the clock
    started (the "before" window starts there, not at time 0).
    """
    last = max(0, math.floor(until / interval))
    origin = min(last, math.floor(since / interval))
    if span is None:
        return {"before": (origin, last), "during": None, "after": None, "last": None}
    start, end = span
    first = min(last, math.floor(start / interval))
    stop = min(last, max(first + 1, math.ceil(end / interval)))
    after = (stop, last) if last > stop else None
    return {
        "before": (origin, first),
        "during": (first, stop) if stop > first else None,
        "after": after,
        "last": None if after is None else (max(stop, last - max(1, first)), last),
    }


_SERIES = (COMMAND_INTENTS, COMMAND_REQUESTS, COMMAND_SUCCEEDED)
_FIGURES = ("from_s", "to_s", "intents", "requests", "succeeded", "amplification", "goodput_per_s", "goodput_vs_before")


def _figures(
    bounds: tuple[int, int] | None, interval: float, series: Mapping[str, Sequence[float]], before: float | None
) -> dict[str, Any]:
    if bounds is None:
        return dict.fromkeys(_FIGURES)
    first, stop = bounds
    intents, requests, succeeded = (round(sum(series[name][first:stop])) for name in _SERIES)
    seconds = (stop - first) * interval
    goodput = succeeded / seconds if seconds > 0 else None
    return {
        "from_s": first * interval,
        "to_s": stop * interval,
        "intents": intents,
        "requests": requests,
        "succeeded": succeeded,
        "amplification": requests / intents if intents else None,
        "goodput_per_s": goodput,
        "goodput_vs_before": goodput / before if goodput is not None and before else None,
    }


def command_load(world: World) -> dict[str, Any]:
    """``amplification`` over the whole run and the ``windows`` of the command flow (see the module docstring)."""
    kernel = world.kernel
    interval = kernel.metrics.interval
    scenario = world.scenario
    until = min(kernel.now, scenario.duration, scenario.duration - scenario.workload.quiet_before_end)
    series = {name: kernel.metrics.series[name].series(min(kernel.now, scenario.duration)) for name in _SERIES}
    bounds = windows(trigger_span(world.faults.log, kernel.now), interval, until, kernel.start)
    before = _figures(bounds["before"], interval, series, None)
    figures = {"before": before}
    for name in WINDOWS[1:]:
        figures[name] = _figures(bounds[name], interval, series, before["goodput_per_s"])
    figures["before"]["goodput_vs_before"] = 1.0 if before["goodput_per_s"] else None
    intents = sum(series[COMMAND_INTENTS])
    return {
        "amplification": sum(series[COMMAND_REQUESTS]) / intents if intents else None,
        "windows": figures,
    }
