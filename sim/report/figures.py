"""A scenario's report figures: what failed, when, how badly, what the countermeasure changes, how sure we are.

:func:`scenario_figures` draws, from one :class:`~sim.report.runs.ScenarioRuns` and the
twin's :class:`~sim.report.profile.ReportProfile`:

* ``timeline-<variant>``: each variant's run over time, faults shaded (:mod:`sim.report.timeline`);
* ``latency-cdf``: the latency distributions, one line per variant;
* ``error-budget``: each SLO's error budget left over the run, the burn-rate alerts' firings marked;
* ``ledger``: where every command and reading ended up, per variant, as shares of those entered
  (:mod:`sim.report.ledger`);
* ``intervals``: the headline figures' means per variant with their 95 % confidence intervals.

A figure whose data a scenario does not have (no SLOs, one variant only, a twin without
distributions) is left out.  Timelines, CDFs and budgets show replication 0, one run as it
happened; the ledger and the intervals summarise every replication.  Every figure is an SVG
document from :func:`sim.report.svg.draw`: same runs, same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure as MplFigure
from matplotlib.lines import Line2D

from sim.report.ledger import ledger_figure
from sim.report.paths import at, number_at
from sim.report.profile import ReportProfile, Signal
from sim.report.runs import Figure, ScenarioRuns
from sim.report.svg import VARIANT_COLOURS, Stack, draw, duration, log_axis, number, time_axis
from sim.report.timeline import timeline_svg

__all__ = ["metric_name", "scenario_figures"]

_WIDTH_IN = 9.5
_QUANTILES = ((0.5, "p50", "o"), (0.95, "p95", "s"), (0.99, "p99", "D"))


def scenario_figures(profile: ReportProfile, runs: ScenarioRuns) -> list[Figure]:
    """Every figure of one scenario's report, in the order the page shows them."""
    figures = []
    for variant in runs.variants:
        svg = timeline_svg(profile, runs.body(variant), variant)
        if svg is not None:
            figures.append(
                Figure(
                    f"timeline-{variant}",
                    f"Timeline: {variant}",
                    "Look at what rises inside each shaded fault window (errors, latency, queues, lags) "
                    "and how long it stays up after the window ends.",
                    svg,
                )
            )
    count = len(runs.replications.results)
    for figure in (
        _latency_cdfs(profile, runs),
        _error_budget(runs),
        ledger_figure(runs, count),
        _intervals(profile, runs, count),
    ):
        if figure is not None:
            figures.append(figure)
    return figures


# -- latency CDFs ---------------------------------------------------------------------------------


def _quantiles(body: Mapping[str, Any], path: Sequence[str]) -> np.ndarray | None:
    """The distribution's (probability, value) pairs with a positive value, or None."""
    pairs = at(body, (*path, "quantiles"))
    if not isinstance(pairs, list):
        return None
    points = [(float(p), float(v)) for p, v in pairs if isinstance(v, int | float) and v > 0]
    return np.array(points) if len(points) >= 2 else None


def _latency_cdfs(profile: ReportProfile, runs: ScenarioRuns) -> Figure | None:
    drawn = []
    for distribution in profile.distributions:
        lines = [(v, q) for v in runs.variants if (q := _quantiles(runs.body(v), distribution.path)) is not None]
        if lines:
            drawn.append((distribution, lines))
    if not drawn:
        return None
    height = 0.45 + 2.55 * len(drawn)

    def build(figure: MplFigure) -> None:
        handles = [Line2D([], [], color=_variant_colour(runs, v)) for v in runs.variants]
        handles += [Line2D([], [], marker=m, color="#444444", linestyle="none") for _, _, m in _QUANTILES]
        labels = [*runs.variants, *(name for _, name, _ in _QUANTILES)]
        figure.legend(handles, labels, loc="upper left", bbox_to_anchor=(0.75 / _WIDTH_IN, 1.0), ncols=len(labels))
        stack = Stack(figure, _WIDTH_IN, height, 0.75, 0.4, 0.1)
        for distribution, lines in drawn:
            axes = stack.axes(1.75, 0.45)
            stack.cursor += 0.35  # the x axis' labels
            axes.set_title(distribution.title, loc="left")
            for probability, _, _ in _QUANTILES:
                axes.axhline(probability, color="#aaaaaa", linewidth=0.6, linestyle=":", zorder=2)
            for variant, points in lines:
                colour = _variant_colour(runs, variant)
                axes.plot(points[:, 1], points[:, 0], color=colour, zorder=3)
                for probability, _, marker in _QUANTILES:
                    value = float(np.interp(probability, points[:, 0], points[:, 1]))
                    axes.plot([value], [probability], marker=marker, color=colour, markersize=4.5, zorder=4)
            log_axis(axes, "x")
            axes.set_ylim(0, 1.02)
            axes.set_ylabel("share at or below")
            axes.set_xlabel(f"latency ({distribution.unit}, log scale)")

    return Figure(
        "latency-cdf",
        "Latency distributions per variant",
        "A line further left is faster; compare where the variants reach p95 and p99 (the square and "
        "diamond markers, on the dotted lines), where users feel the tail.",
        draw(build, _WIDTH_IN, height),
    )


# -- error budget ---------------------------------------------------------------------------------


def _error_budget(runs: ScenarioRuns) -> Figure | None:
    slos: dict[str, None] = {}
    for variant in runs.variants:
        section = runs.body(variant).get("slos")
        if isinstance(section, Mapping):
            slos.update(dict.fromkeys(name for name in section if isinstance(section[name], Mapping)))
    if not slos:
        return None
    height = 0.2 + 2.9 * len(slos)
    end = max(float(at(runs.body(v), ("engine", "simulated_s")) or 0.0) for v in runs.variants)

    def build(figure: MplFigure) -> None:
        stack = Stack(figure, _WIDTH_IN, height, 0.75, 2.2, 0.0)
        for slo in slos:
            axes = stack.axes(2.25, 0.35)
            _budget_axes(axes, runs, slo, end)

    return Figure(
        "error-budget",
        "Error budget burn-down",
        "A steep drop is a fast burn; check that an alert (marked where it first fired) comes soon after "
        "the drop starts, and how much budget was gone by then.",
        draw(build, _WIDTH_IN, height),
    )


def _budget_axes(axes: Axes, runs: ScenarioRuns, slo: str, end: float) -> None:
    marks = []
    start = end
    objective = None
    for variant in runs.variants:
        body = runs.body(variant)
        entry = at(body, ("slos", slo))
        consumed = at(entry, ("series", "budget_consumed"))
        if not isinstance(consumed, list) or not consumed:
            continue
        objective = at(entry, ("objective",))
        interval = float(at(entry, ("series", "interval_s")) or at(body, ("timeseries", "interval_s")) or 60.0)
        first = float(at(body, ("timeseries", "start_s")) or 0.0)
        start = min(start, first)
        times = first + (np.arange(len(consumed)) + 1) * interval
        left = np.array([100 * (1 - c) if isinstance(c, int | float) else np.nan for c in consumed])
        colour = _variant_colour(runs, variant)
        axes.plot(np.concatenate(([first], times)), np.concatenate(([100.0], left)), color=colour, label=variant)
        alerts = entry.get("alerts") if isinstance(entry, Mapping) else None
        for name, alert in sorted(alerts.items()) if isinstance(alerts, Mapping) else ():
            fired = number_at(alert, ("fired_at_s",))
            if fired is not None:
                y = float(np.interp(fired, times, np.nan_to_num(left, nan=100.0)))
                marks.append((fired, y, name, variant, alert))
    # Each alert's label hangs on a stem down from its marker, labels stacked from the bottom up:
    # those written rightwards of their stem earliest first, then those written leftwards latest
    # first, so that no label crosses the stem of one in its own group.
    marks.sort(key=lambda mark: (mark[0], mark[2], mark[3]))
    split = start + 0.55 * (end - start)
    marks = [m for m in marks if m[0] <= split] + [m for m in reversed(marks) if m[0] > split]
    bottom = min(0.0, *(y for _, y, *_ in marks)) - 2
    axes.set_ylim(bottom, 104)
    for index, (fired, y, name, variant, alert) in enumerate(marks):
        colour = _variant_colour(runs, variant)
        marker = "v" if at(alert, ("severity",)) == "page" else "o"
        axes.plot([fired], [y], marker=marker, color=colour, markersize=6, zorder=4)
        label_y = bottom + (0.08 + 0.1 * (index % 8)) * (104 - bottom)
        axes.plot([fired, fired], [label_y, y], color=colour, linewidth=0.6, linestyle=":", zorder=2)
        right = fired > split
        axes.text(
            fired + (-1 if right else 1) * 0.005 * (end - start),
            label_y,
            _alert_text(name, variant if len(runs.variants) > 1 else None, alert),
            ha="right" if right else "left",
            va="center",
            fontsize=7,
            color=colour,
        )
    title = f"SLO {slo}" + (f" (objective {number(100 * float(objective))} %)" if isinstance(objective, float) else "")
    axes.set_title(title, loc="left")
    axes.set_ylabel("budget left (%)")
    time_axis(axes, start, end)
    handles = [Line2D([], [], color=_variant_colour(runs, v)) for v in runs.variants]
    handles += [Line2D([], [], marker=m, color="#444444", linestyle="none") for m in ("v", "o")]
    labels = [*runs.variants, "page fired", "ticket fired"]
    axes.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)


def _alert_text(name: str, variant: str | None, alert: Mapping[str, Any]) -> str:
    """``page-1h (fast-burn): 60 s after the fault, 2.1 % of the budget spent``."""
    delay = number_at(alert, ("detection_delay_s",))
    spent = number_at(alert, ("budget_consumed_at_fire",))
    facts = [f"{duration(delay)} after the fault"] if delay is not None else []
    facts += [f"{number(100 * spent)} % of the budget spent"] if spent is not None else []
    return f"{name}" + (f" ({variant})" if variant else "") + (": " + ", ".join(facts) if facts else " fired")


# -- variant intervals ----------------------------------------------------------------------------


def metric_name(signal: Signal, body: Mapping[str, Any]) -> str:
    """The name a replicated run's summary gives the figure at ``signal.path``.

    Flow figures are named as expectations name them, without ``flows.`` (unless the flow
    shares its name with a top-level section of ``body``); other paths keep every key.
    """
    keys = [str(key) for key in signal.path]
    if len(keys) > 1 and keys[0] == "flows" and keys[1] not in body:
        keys = keys[1:]
    return ".".join(keys)


def _intervals(profile: ReportProfile, runs: ScenarioRuns, count: int) -> Figure | None:
    if len(runs.variants) < 2:
        return None
    summary = runs.replications.body.get("variants", {})
    shown = []
    for signal in profile.headline:
        name = metric_name(signal, runs.body(runs.variants[0]))
        entries = [at(summary, (v, "metrics", name)) for v in runs.variants]
        points = [
            (number_at(e, ("mean",)), number_at(e, ("ci_low",)), number_at(e, ("ci_high",))) if e else (None,) * 3
            for e in entries
        ]
        present = [p for p in points if p[0] is not None]
        if not present:
            continue
        if len({mean for mean, _, _ in points}) == 1:
            continue  # every variant has the same mean: the table says so, a plot adds nothing
        shown.append((signal, points))
    if not shown:
        return None
    columns = 3
    rows = -(-len(shown) // columns)
    cell_w = (_WIDTH_IN - 0.4) / columns
    cell_h = 0.55 + 0.26 * len(runs.variants)
    height = 0.3 + rows * (cell_h + 0.85)

    def build(figure: MplFigure) -> None:
        handles = [Line2D([], [], marker="o", color=_variant_colour(runs, v)) for v in runs.variants]
        figure.legend(
            handles, list(runs.variants), loc="upper left", bbox_to_anchor=(0.02, 1.0), ncols=min(len(runs.variants), 5)
        )
        for index, (signal, points) in enumerate(shown):
            row, column = divmod(index, columns)
            top = 0.3 + row * (cell_h + 0.85) + 0.3
            box = (
                (0.3 + column * cell_w) / _WIDTH_IN,
                1 - (top + cell_h) / height,
                (cell_w - 0.45) / _WIDTH_IN,
                cell_h / height,
            )
            _interval_axes(figure.add_axes(box), signal, points, runs)

    return Figure(
        "intervals",
        "Headline figures per variant, with 95 % confidence intervals",
        f"Each dot is a variant's mean over {count} replications and its bar the 95 % confidence interval; "
        "where two variants' bars do not overlap, the difference is not the luck of the draw.",
        draw(build, _WIDTH_IN, height),
    )


def _interval_axes(
    axes: Axes, signal: Signal, points: list[tuple[float | None, float | None, float | None]], runs: ScenarioRuns
) -> None:
    axes.set_title(signal.label, loc="left", fontsize=8)
    unit, size = _display_unit(signal.unit, max(abs(v) for p in points for v in p if v is not None))
    for row, (variant, (mean, low, high)) in enumerate(zip(runs.variants, points, strict=True)):
        if mean is None:
            axes.text(
                0.5,
                row,
                "no value",
                transform=axes.get_yaxis_transform(),
                ha="center",
                va="center",
                fontsize=6.5,
                color="#777777",
            )
            continue
        colour = _variant_colour(runs, variant)
        if low is not None and high is not None:
            axes.plot([low / size, high / size], [row, row], color=colour, linewidth=2.0, solid_capstyle="butt")
        axes.plot([mean / size], [row], marker="o", color=colour, markersize=5, zorder=4)
        axes.annotate(
            number(mean / size),
            (mean / size, row),
            xytext=(0, 4),
            textcoords="offset points",
            ha="center",
            fontsize=6.5,
            color="#333333",
        )
    axes.set_ylim(len(runs.variants) - 0.4, -0.7)
    axes.set_yticks([])
    axes.spines[["left"]].set_visible(False)
    axes.margins(x=0.12)
    axes.set_xlabel(f"{unit}, {signal.worse} is worse" if unit else f"{signal.worse} is worse", fontsize=7)


def _display_unit(unit: str, largest: float) -> tuple[str, float]:
    """Seconds shown in the unit that reads best at the largest value (RPOs of months read in days)."""
    if unit != "s":
        return unit, 1.0
    for name, size, least in (("days", 86400.0, 2.0), ("hours", 3600.0, 2.0), ("min", 60.0, 5.0)):
        if largest >= least * size:
            return name, size
    return unit, 1.0


def _variant_colour(runs: ScenarioRuns, variant: str) -> str:
    return VARIANT_COLOURS[runs.variants.index(variant) % len(VARIANT_COLOURS)]
