"""Capacity analysis of a load sweep: the knee, the order components saturate in, a rate ceiling.

A load test answers three questions (the review's finding M3 asks them of the smart-home
backend): up to what load does a latency target hold, which component runs out first, and
what hard limit caps the load whatever the latency says.  This module answers them from a
sweep's tidy table (:func:`sim.store.tidy_frame`), so any sweep over a load parameter can be
read the same way; the names -- which parameter is the load, which figures are latencies,
where a limit's refusals are counted -- come from the caller in a :class:`Study`, never from
here.

* **the knee** (:func:`knee`): the lowest load where a figure (a p95 latency) passes a
  threshold, interpolated between the sweep points around the crossing.  Latency near
  saturation grows roughly geometrically with load, so by default the interpolation is
  linear in load and in the *logarithm* of the figure; a straight line through a 50 ms and
  a 50 s point would put the knee almost on the lower point.  The knee is found on the
  mean curve over the replications and on each replication's own curve (every point runs
  on the same seeds, so a replication is a whole curve); the replications' knees give the
  Student-t interval.  That interval is the spread over seeds only: the knee lies between
  the two points around the crossing, and where they are far apart that bracket is the larger
  uncertainty (add points there).  A sweep that never passes the threshold has no knee
  (``none``); one that starts above it has its knee at or below its first point (``below``).
* **saturation order** (:func:`saturation_order`): each component's utilisation (busy
  workers over workers, ``components.<name>.utilisation``) against load; the load where it
  first passes a share (80 % by default), interpolated linearly (utilisation is linear in
  load below saturation), and components ordered by it.  The first is the one that
  saturates first; a component that never passes is ordered by its peak.
* **a rate ceiling** (:func:`rate_ceiling`): a hard limit (a quota per second) shows as a
  share of the work it refuses.  Where it first refuses is a crossing of that share; the
  load the limit lets through is ``load x (1 - refused share)``, estimated at the lowest
  load where the limit binds (further out, retries and other saturation feed back into the
  refusals), with its interval over that point's replications.

:func:`analyse` does all three for a :class:`Study`; :func:`report_text` says what it found
in a few lines.  Everything here is a pure function of the table: no run, no clock, no
random draw.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from sim.stats import Interval, mean_ci
from sim.store import PARQUET_FILE, SweepResult

__all__ = [
    "REFUSED_TOLERANCE",
    "RUN_COLUMNS",
    "Capacity",
    "Ceiling",
    "Crossing",
    "Knee",
    "Saturation",
    "Study",
    "analyse",
    "crossing",
    "curve",
    "knee",
    "rate_ceiling",
    "report_text",
    "runs_table",
    "saturation_order",
]

RUN_COLUMNS = ("point", "variant", "replication", "seed")
"""The columns of :func:`runs_table` that say which run a row is (besides the parameters)."""

REFUSED_TOLERANCE = 0.01
"""The refused share above which a rate limit counts as binding (a few refusals come from bursts)."""

Status = Literal["within", "below", "none"]


# -- where a curve passes a threshold ---------------------------------------------------------------


@dataclass(frozen=True)
class Crossing:
    """Where a figure first passes a threshold as load rises.

    ``status``: ``within`` (``load`` interpolated between ``bracket``, the last point at or
    under the threshold and the first above it), ``below`` (already above at the first
    point: ``load`` is that point, the crossing is there or lower) or ``none`` (never above
    within the sweep: ``load`` is None, ``bracket`` holds the last point).
    """

    load: float | None
    status: Status
    bracket: tuple[float | None, float | None]


def crossing(loads: Sequence[float], values: Sequence[float], threshold: float, *, log: bool = False) -> Crossing:
    """Where ``values`` (one per load) first pass above ``threshold`` as load rises.

    Points are taken in order of load; a NaN value (a figure the run did not have) is left
    out.  With ``log`` the interpolation is linear in the logarithm of the value (where both
    values around the crossing are above zero), else linear in the value.  Only the first
    crossing counts: a curve that dips back under the threshold further out keeps it.
    """
    if len(loads) != len(values):
        raise ValueError(f"crossing: {len(loads)} loads but {len(values)} values")
    points = sorted((float(x), float(y)) for x, y in zip(loads, values, strict=True) if not math.isnan(float(y)))
    if not points:
        return Crossing(None, "none", (None, None))
    previous: tuple[float, float] | None = None
    for load, value in points:
        if value > threshold:
            if previous is None:
                return Crossing(load, "below", (None, load))
            low_load, low_value = previous
            if log and low_value > 0 and threshold > 0:
                share = (math.log(threshold) - math.log(low_value)) / (math.log(value) - math.log(low_value))
            else:
                share = (threshold - low_value) / (value - low_value)
            return Crossing(low_load + share * (load - low_load), "within", (low_load, load))
        previous = (load, value)
    return Crossing(None, "none", (points[-1][0], None))


# -- the table: one row per run ---------------------------------------------------------------------


def _tidy(source: pd.DataFrame | SweepResult | str | os.PathLike[str]) -> pd.DataFrame:
    if isinstance(source, pd.DataFrame):
        return source
    if isinstance(source, SweepResult):
        return source.to_frame()
    path = Path(source)
    if path.is_dir():
        path = path / PARQUET_FILE
    if path.suffix == ".csv":
        return pd.read_csv(path)
    return pd.read_parquet(path)


def _mapping(text: object) -> dict[str, object] | None:
    if not isinstance(text, str) or not text.startswith("{"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _expand(table: pd.DataFrame, parameters: Iterable[str]) -> pd.DataFrame:
    """A parameter whose values are mappings (``workload: {mobile_users: 1000, ...}``, stored
    as JSON text) gets one more column per key (``workload.mobile_users``), numeric where
    every value is a number, so a load set together with another figure is an axis too."""
    for parameter in parameters:
        mappings = [_mapping(value) for value in table[parameter]]
        if not mappings or any(m is None for m in mappings):
            continue
        keys = dict.fromkeys(key for m in mappings if m is not None for key in m)
        for key in keys:
            column = f"{parameter}.{key}"
            if column in table.columns:
                continue
            values = [None if m is None else m.get(key) for m in mappings]
            numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
            table[column] = pd.Series(values, index=table.index, dtype="float64" if numeric else "object")
    return table


def runs_table(source: pd.DataFrame | SweepResult | str | os.PathLike[str]) -> pd.DataFrame:
    """A sweep's results as one row per run and one column per metric.

    ``source`` is a tidy table, a :class:`~sim.store.SweepResult`, a sweep's folder or its
    ``results.parquet`` / ``results.csv``.  The columns are ``point``, the parameters (a
    mapping-valued parameter also as one column per key), ``variant``, ``replication``,
    ``seed``, then every metric by name; rows in order of point, variant, replication.
    """
    tidy = _tidy(source)
    missing = [c for c in (*RUN_COLUMNS, "metric", "value") if c not in tidy.columns]
    if missing:
        raise ValueError(f"not a sweep's tidy table: no column {', '.join(missing)}")
    columns = list(tidy.columns)
    parameters = columns[columns.index("point") + 1 : columns.index("variant")]
    keys = ["point", *parameters, "variant", "replication", "seed"]
    clash = sorted(set(tidy["metric"]).intersection(keys))
    if clash:
        raise ValueError(f"the metric {clash[0]!r} has the name of a column of the runs table")
    runs = tidy.set_index([*keys, "metric"])["value"].unstack("metric").reset_index()
    runs.columns.name = None
    runs = runs.sort_values(["point", "variant", "replication"], kind="stable", ignore_index=True)
    return _expand(runs, parameters)


def _variant(runs: pd.DataFrame, variant: str | None) -> pd.DataFrame:
    names = list(dict.fromkeys(runs["variant"]))
    if variant is None:
        if len(names) != 1:
            raise ValueError(f"the sweep has {len(names)} variants ({', '.join(names)}): name the one to analyse")
        variant = names[0]
    elif variant not in names:
        raise ValueError(f"no variant {variant!r} in the sweep (it has {', '.join(names)})")
    return runs[runs["variant"] == variant]


def _column(runs: pd.DataFrame, name: str, what: str) -> pd.Series:
    if name not in runs.columns:
        raise ValueError(f"no {what} {name!r} in the sweep's table")
    return runs[name]


def curve(
    runs: pd.DataFrame, metric: str, load: str, *, variant: str | None = None, confidence: float = 0.95
) -> pd.DataFrame:
    """Per load (ascending): ``metric``'s mean over the replications, its Student-t interval
    (``ci_low``, ``ci_high``; NaN with fewer than two values) and ``n``."""
    rows = _variant(runs, variant)
    values = _column(rows, metric, "metric")
    loads = _column(rows, load, "load column")
    out = []
    for point_load, group in values.groupby(loads, sort=True):
        present = [float(v) for v in group if not math.isnan(float(v))]
        interval = mean_ci(present, confidence)
        out.append(
            {
                "load": float(point_load),
                "mean": math.nan if interval.estimate is None else interval.estimate,
                "ci_low": math.nan if interval.low is None else interval.low,
                "ci_high": math.nan if interval.high is None else interval.high,
                "n": interval.n,
            }
        )
    return pd.DataFrame(out, columns=["load", "mean", "ci_low", "ci_high", "n"])


# -- the knee ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Knee:
    """Where ``metric`` passes ``threshold``: on the mean curve, and per replication.

    ``interval`` is the Student-t interval of the replications' knees, given only when every
    replication has its knee within the sweep (otherwise their statuses say why not).
    """

    metric: str
    threshold: float
    mean_curve: Crossing
    replications: tuple[Crossing, ...]
    interval: Interval | None


def knee(
    runs: pd.DataFrame,
    metric: str,
    threshold: float,
    load: str,
    *,
    variant: str | None = None,
    log: bool = True,
    confidence: float = 0.95,
) -> Knee:
    """The lowest ``load`` where ``metric`` passes ``threshold`` (see the module docstring)."""
    rows = _variant(runs, variant)
    means = curve(rows, metric, load, confidence=confidence)
    overall = crossing(list(means["load"]), list(means["mean"]), threshold, log=log)
    per_replication = []
    for _, group in rows.groupby("replication", sort=True):
        per_replication.append(crossing(list(group[load]), list(group[metric]), threshold, log=log))
    found = [c.load for c in per_replication if c.status == "within" and c.load is not None]
    interval = mean_ci(found, confidence) if per_replication and len(found) == len(per_replication) else None
    return Knee(metric, threshold, overall, tuple(per_replication), interval)


# -- saturation -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Saturation:
    """A component's utilisation against load: where it passes ``above``, and its peak."""

    component: str
    above: float
    crossing: Crossing
    peak: float
    peak_load: float


def saturation_order(
    runs: pd.DataFrame, load: str, *, above: float = 0.8, variant: str | None = None
) -> list[Saturation]:
    """Every component with a utilisation figure, first to saturate first.

    Ordered by the load where its mean utilisation first passes ``above`` (a component
    already past it at the first point comes first), then the components that never pass
    it, busiest first; ties by name.
    """
    rows = _variant(runs, variant)
    found = []
    for column in rows.columns:
        if not (isinstance(column, str) and column.startswith("components.") and column.endswith(".utilisation")):
            continue
        means = curve(rows, column, load)
        present = means.dropna(subset=["mean"])
        if present.empty:
            continue
        peak_at = int(np.argmax(present["mean"].to_numpy()))
        found.append(
            Saturation(
                component=column[len("components.") : -len(".utilisation")],
                above=above,
                crossing=crossing(list(means["load"]), list(means["mean"]), above),
                peak=float(present["mean"].iloc[peak_at]),
                peak_load=float(present["load"].iloc[peak_at]),
            )
        )

    def order(item: Saturation) -> tuple[int, float, float, str]:
        at = item.crossing.load
        return (1, 0.0, -item.peak, item.component) if at is None else (0, at, -item.peak, item.component)

    return sorted(found, key=order)


# -- a rate ceiling ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ceiling:
    """A hard rate limit seen in a sweep (see the module docstring).

    ``limit`` is the limit's own figure (per second) if the table has it; ``first_refused``
    where the refused share first passes the tolerance; ``load`` the load the limit lets
    through, estimated at ``estimated_at`` (None where the limit never binds); ``shares``
    the refused share per load (mean and interval over the replications).
    """

    limit: float | None
    first_refused: Crossing
    load: Interval | None
    estimated_at: float | None
    shares: pd.DataFrame = field(repr=False)


def rate_ceiling(
    runs: pd.DataFrame,
    load: str,
    refused: str,
    total: str,
    *,
    limit: str | None = None,
    tolerance: float = REFUSED_TOLERANCE,
    variant: str | None = None,
    confidence: float = 0.95,
) -> Ceiling:
    """The ceiling a limit puts on ``load``: ``refused`` of ``total`` items per run are the
    work the limit turned away (see the module docstring); ``limit`` names the limit's own
    figure, if the table has one."""
    rows = _variant(runs, variant).copy()
    totals = _column(rows, total, "metric")
    rows["refused share"] = (_column(rows, refused, "metric") / totals.where(totals > 0)).astype("float64")
    shares = curve(rows, "refused share", load, confidence=confidence)
    first = crossing(list(shares["load"]), list(shares["mean"]), tolerance)
    binding = shares[shares["mean"] > tolerance]
    estimate: Interval | None = None
    at: float | None = None
    if not binding.empty:
        at = float(binding["load"].iloc[0])
        point = rows[rows[load] == at]
        through = [at * (1.0 - s) for s in point["refused share"] if not math.isnan(s)]
        estimate = mean_ci(through, confidence)
    limit_value: float | None = None
    if limit is not None:
        limits = _column(rows, limit, "metric").dropna()
        limit_value = float(limits.iloc[0]) if not limits.empty else None
    return Ceiling(limit_value, first, estimate, at, shares)


# -- a study: all three, and what they say -----------------------------------------------------------


@dataclass(frozen=True)
class Study:
    """What a capacity analysis reads from a sweep's table: names and thresholds only.

    ``load`` is the column that is the load (a parameter, or one key of a mapping-valued
    parameter: ``workload.mobile_users``); ``latency`` the figures judged against
    ``threshold`` (seconds, say the p95 latencies against 0.2); ``utilisation_above`` the
    share at which a component counts as saturated.  ``refused`` and ``total`` (and
    optionally ``limit``, the limit's own figure) describe a rate limit, if the study has one.
    """

    load: str
    latency: tuple[str, ...]
    threshold: float
    utilisation_above: float = 0.8
    refused: str | None = None
    total: str | None = None
    limit: str | None = None
    log_interpolation: bool = True


@dataclass(frozen=True)
class Capacity:
    """What :func:`analyse` found: the study, the variant, the loads, and the three answers."""

    study: Study
    variant: str
    loads: tuple[float, ...]
    replications: int
    knees: tuple[Knee, ...]
    saturation: tuple[Saturation, ...]
    ceiling: Ceiling | None


def analyse(
    source: pd.DataFrame | SweepResult | str | os.PathLike[str],
    study: Study,
    *,
    variant: str | None = None,
    confidence: float = 0.95,
) -> Capacity:
    """The knees, saturation order and ceiling of ``study`` in a sweep (a table, a result or a folder).

    ``source`` may also be a table :func:`runs_table` made already.  ``variant`` is needed
    when the sweep ran several.
    """
    runs = source if isinstance(source, pd.DataFrame) and "metric" not in source.columns else runs_table(source)
    rows = _variant(runs, variant)
    chosen = str(rows["variant"].iloc[0]) if not rows.empty else (variant or "")
    loads = tuple(sorted({float(v) for v in _column(rows, study.load, "load column")}))
    knees = tuple(
        knee(rows, metric, study.threshold, study.load, log=study.log_interpolation, confidence=confidence)
        for metric in study.latency
    )
    saturation = tuple(saturation_order(rows, study.load, above=study.utilisation_above))
    ceiling = None
    if study.refused is not None and study.total is not None:
        ceiling = rate_ceiling(rows, study.load, study.refused, study.total, limit=study.limit, confidence=confidence)
    return Capacity(study, chosen, loads, int(rows["replication"].nunique()), knees, saturation, ceiling)


def _load(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _crossing_text(found: Crossing) -> str:
    low, high = found.bracket
    if found.status == "within":
        return f"{_load(found.load)} (between {_load(low)} and {_load(high)})"
    if found.status == "below":
        return f"at or below the first point, {_load(high)}"
    return f"none up to {_load(low)}"


def _interval_text(interval: Interval | None, replications: tuple[Crossing, ...]) -> str:
    if interval is not None and interval.low is not None and interval.high is not None:
        level = f"{100 * interval.confidence:g} %"
        return f"  [{_load(interval.low)}, {_load(interval.high)}] {level} CI over {interval.n} replications"
    if len(replications) < 2:
        return ""
    within = sum(1 for c in replications if c.status == "within")
    return f"  (within the sweep in {within} of {len(replications)} replications: no interval)"


def report_text(capacity: Capacity, *, top: int = 5) -> str:
    """A few lines on the knees, the first components to saturate (``top`` of them) and the ceiling."""
    study = capacity.study
    loads = capacity.loads
    span = f"{_load(loads[0])} to {_load(loads[-1])}" if loads else "no points"
    lines = [
        f"capacity of variant {capacity.variant}: {study.load} from {span}, "
        f"{len(loads)} points x {capacity.replications} replication{'s' if capacity.replications != 1 else ''}"
    ]
    if capacity.knees:
        how = "log-linear" if study.log_interpolation else "linear"
        lines.append(f"\nknee: the lowest load where each figure passes {study.threshold:g} ({how} between points)")
        width = max(len(k.metric) for k in capacity.knees)
        for found in capacity.knees:
            lines.append(
                f"  {found.metric:<{width}}  {_crossing_text(found.mean_curve)}"
                + _interval_text(found.interval, found.replications)
            )
    if capacity.saturation:
        lines.append(f"\nsaturation: utilisation (busy workers / workers) past {100 * study.utilisation_above:g} %")
        width = max(len(s.component) for s in capacity.saturation[:top])
        for rank, item in enumerate(capacity.saturation[:top], start=1):
            peak = f"peak {100 * item.peak:.1f} % at {_load(item.peak_load)}"
            passes = "never" if item.crossing.status == "none" else _crossing_text(item.crossing)
            lines.append(f"  {rank}. {item.component:<{width}}  past it: {passes}; {peak}")
        rest = len(capacity.saturation) - top
        if rest > 0:
            lines.append(f"  ... {rest} more, none busier")
    ceiling = capacity.ceiling
    if ceiling is not None:
        limit = f" ({study.limit} = {ceiling.limit:g}/s)" if ceiling.limit is not None else ""
        lines.append(f"\nceiling: {study.refused} of {study.total}{limit}")
        lines.append(
            f"  first refused (share past {100 * REFUSED_TOLERANCE:g} %): {_crossing_text(ceiling.first_refused)}"
        )
        if ceiling.load is not None and ceiling.load.estimate is not None:
            interval = ""
            if ceiling.load.low is not None and ceiling.load.high is not None:
                interval = f" [{_load(ceiling.load.low)}, {_load(ceiling.load.high)}]"
            lines.append(
                f"  the limit lets through about {_load(ceiling.load.estimate)}{interval} "
                f"(load x (1 - refused share) at {_load(ceiling.estimated_at)})"
            )
        pairs = zip(ceiling.shares["load"].tolist(), ceiling.shares["mean"].tolist(), strict=True)
        shares = ", ".join(f"{_load(at)}: {100 * share:.0f} %" for at, share in pairs)
        lines.append(f"  refused share by load: {shares}")
    return "\n".join(lines)
