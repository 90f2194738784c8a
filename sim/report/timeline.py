"""The timeline figure: a run's series panel by panel, its faults shaded, its breakers as a band.

One figure per variant (replication 0): what failed, when, and how the system's signals moved
around it.  Panels come from the twin's :class:`~sim.report.profile.ReportProfile`, values
from the body's ``timeseries`` section (one value per interval of ``interval_s``, the first
holding ``start_s``), drawn as steps because each value covers its whole interval.  Every
fault in the body's ``faults`` list is shaded on every panel (a fault of no length, such as a
crash, is a dashed vertical line) and named in a legend above the panels.  A panel with no
data is left out; one whose values are all zero is left out too and named in a note under
the figure, so "nothing happened here" is still said without spending a panel on it.

The layout is computed in inches (:class:`~sim.report.svg.Stack`), not left to matplotlib's layout
engines, so every timeline lines up the same way whatever its panels.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from sim.report.paths import at
from sim.report.profile import Band, Line, Panel, ReportProfile
from sim.report.svg import FAULT_COLOURS, LINE_COLOURS, Stack, draw, log_axis, time_axis, time_format

__all__ = ["UNKNOWN_STATE", "band_segments", "panel_lines", "timeline_svg"]

_WIDTH_IN = 9.5
_LEFT_IN = 0.75
_RIGHT_IN = 2.2
_PANEL_IN = 1.15
_TITLE_IN = 0.3
_BAND_ROW_IN = 0.24
_BOTTOM_IN = 0.55
_UNKNOWN_STATE = "#bbbbbb"
UNKNOWN_STATE = "not listed"
"""The band's state after the last listed change of a list the result cut short (grey)."""
_MAX_STEPS = 120
"""up to this many intervals a series is drawn as steps, each value over its interval"""

Segments = list[tuple[float, float, str]]


def _floats(values: Sequence[Any], length: int) -> np.ndarray:
    """A series as floats, ``None`` as NaN, padded with NaN to ``length``."""
    out = np.full(length, np.nan)
    for i, value in enumerate(values[:length]):
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[i] = float(value)
    return out


def _matches(line: Line, timeseries: Mapping[str, Any]) -> list[tuple[str, list[Any]]]:
    """(label, raw values) per series the line names; a pattern ending in ``*`` may match several."""
    if not line.series.endswith("*"):
        values = timeseries.get(line.series)
        return [(line.label, values)] if isinstance(values, list) and values else []
    prefix = line.series[:-1]
    found = []
    for name in sorted(timeseries):
        values = timeseries[name]
        if name.startswith(prefix) and isinstance(values, list) and values:
            matched = name[len(prefix) :]
            found.append((line.label.format(matched) if "{}" in line.label else matched, values))
    return found


def panel_lines(panel: Panel, timeseries: Mapping[str, Any]) -> list[tuple[str, np.ndarray]]:
    """Each line of ``panel`` as (label, one value per interval), as :class:`Line` documents.

    Intervals without a value (a ratio over no requests, ``None`` in the body) are NaN and
    draw as gaps; on a log panel so are values at or below zero.  Of the series a pattern
    matches, those that stayed at zero are left out: eleven queues of which two ever held
    anything draw two lines.
    """
    interval = float(timeseries.get("interval_s") or 1.0)
    lines = []
    for line in panel.lines:
        for label, raw in _matches(line, timeseries):
            values = _floats(raw, len(raw))
            if line.per is not None:
                denominator = np.zeros(len(raw))
                for name in (line.per,) if isinstance(line.per, str) else line.per:
                    per = timeseries.get(name)
                    denominator += _floats(per if isinstance(per, list) else [], len(raw))
                with np.errstate(divide="ignore", invalid="ignore"):
                    values = np.where(denominator > 0, values / denominator, np.nan)
                if line.complement:
                    values = 1.0 - values
            if line.cumulative:
                values = np.where(np.isnan(values), np.nan, np.nancumsum(values))
            if line.per_second:
                values = values / interval
            values = values * line.scale
            if panel.log:
                values = np.where(values > 0, values, np.nan)
            if line.series.endswith("*") and not np.any(np.nan_to_num(values)):
                continue  # of a pattern's many series, one that stayed at zero (an actor that never queued)
            lines.append((label, values))
    return lines


def band_segments(band: Band, body: Mapping[str, Any], start_s: float, end_s: float) -> dict[str, Segments]:
    """Per group (a replica, say), the band's states as (from, to, state) between ``start_s`` and ``end_s``.

    Nothing is drawn for a body without transitions: a design without the breaker has no band.
    """
    transitions = at(body, band.path)
    if not isinstance(transitions, list) or not transitions:
        return {}
    changes: dict[str, list[tuple[float, str]]] = {}
    for change in transitions:
        if not isinstance(change, Mapping) or not isinstance(change.get(band.time_key), int | float):
            continue
        group = str(change.get(band.group_key)) if band.group_key else band.title
        changes.setdefault(group, []).append((float(change[band.time_key]), str(change.get(band.state_key))))
    cut = band.listed_at_most is not None and len(transitions) >= band.listed_at_most
    last_listed = max(t for group in changes.values() for t, _ in group) if cut and changes else None
    segments: dict[str, Segments] = {}
    for group in sorted(changes):
        points = [(0.0, band.initial), *sorted(changes[group], key=lambda change: change[0])]
        if last_listed is not None:  # the list was cut: past its last change nothing is known
            points.append((last_listed, UNKNOWN_STATE))
        ends = [t for t, _ in points[1:]] + [end_s]
        drawn = [(max(t, start_s), min(end, end_s), state) for (t, state), end in zip(points, ends, strict=True)]
        segments[group] = [(a, b, state) for a, b, state in drawn if b > a]
    return segments


def _fault_label(fault: Mapping[str, Any], write: Callable[[float], str]) -> str:
    start, end = fault.get("start"), fault.get("end")
    what = f"{fault.get('kind', 'fault')} on {fault.get('target', '?')}"
    if not isinstance(start, int | float):
        return what
    if end == start:
        return f"{what} at {write(start)}"
    until = write(end) if isinstance(end, int | float) else "the end"
    return f"{what}, {write(start)} to {until}"


def _shade_faults(axes: Axes, faults: Sequence[Mapping[str, Any]], end_s: float) -> None:
    for index, fault in enumerate(faults):
        start, end = fault.get("start"), fault.get("end")
        if not isinstance(start, int | float):
            continue
        colour = FAULT_COLOURS[index % len(FAULT_COLOURS)]
        if end == start:
            axes.axvline(start, color=colour, linewidth=1.6, linestyle=(0, (4, 2)), zorder=1)
        else:
            axes.axvspan(start, end if isinstance(end, int | float) else end_s, color=colour, alpha=0.28, lw=0)


def timeline_svg(profile: ReportProfile, body: Mapping[str, Any], variant: str) -> str | None:
    """The timeline of one run as an SVG document, or ``None`` when it has nothing to draw."""
    timeseries = body.get("timeseries")
    if not isinstance(timeseries, Mapping):
        return None
    interval = float(timeseries.get("interval_s") or 60.0)
    start = float(timeseries.get("start_s") or 0.0)
    length = max((len(v) for v in timeseries.values() if isinstance(v, list)), default=0)
    end = start + length * interval
    panels: list[tuple[Panel, list[tuple[str, np.ndarray]]]] = []
    flat: list[str] = []
    for panel in profile.panels:
        lines = [(label, values) for label, values in panel_lines(panel, timeseries) if not np.all(np.isnan(values))]
        if not lines and not any(_matches(line, timeseries) for line in panel.lines):
            continue  # nothing recorded: this twin version or scenario has no such series
        if all(not np.any(np.nan_to_num(values)) for _, values in lines):
            flat.append(panel.title)
            continue
        panels.append((panel, lines))
    bands = [(band, band_segments(band, body, start, end)) for band in profile.bands]
    bands = [(band, segments) for band, segments in bands if segments]
    if not panels and not bands:
        return None
    raw_faults = body.get("faults")
    faults = [f for f in raw_faults if isinstance(f, Mapping)] if isinstance(raw_faults, list) else []
    shown = [f for f in faults if _overlaps(f, start, end)]
    legend_rows = -(-len(shown) // 2)
    header = 0.3 + 0.2 * legend_rows
    height = (
        header
        + len(panels) * (_TITLE_IN + _PANEL_IN)
        + sum(_TITLE_IN + _BAND_ROW_IN * len(segments) for _, segments in bands)
        + _BOTTOM_IN
        + (0.2 if flat else 0.0)
    )
    write, _ = time_format(end)

    def build(figure: Figure) -> None:
        layout = Stack(figure, _WIDTH_IN, height, _LEFT_IN, _RIGHT_IN, header)
        figure.text(_LEFT_IN / _WIDTH_IN, 1 - 0.22 / height, f"variant: {variant}", fontsize=9.5, weight="bold")
        all_axes: list[Axes] = []
        for index, (panel, lines) in enumerate(panels):
            axes = layout.axes(_PANEL_IN, _TITLE_IN)
            _panel(axes, panel, lines, start, interval)
            all_axes.append(axes)
            time_axis(axes, start, end, labelled=index == len(panels) - 1 and not bands)
        for index, (band, segments) in enumerate(bands):
            axes = layout.axes(_BAND_ROW_IN * len(segments), _TITLE_IN)
            _band(axes, band, segments)
            all_axes.append(axes)
            time_axis(axes, start, end, labelled=index == len(bands) - 1)
        for axes in all_axes:
            _shade_faults(axes, faults, end)
        if shown:
            handles: list[Artist] = []
            for index, fault in enumerate(faults):
                if fault not in shown:
                    continue
                colour = FAULT_COLOURS[index % len(FAULT_COLOURS)]
                if fault.get("end") == fault.get("start"):
                    handles.append(Line2D([], [], color=colour, linewidth=1.6, linestyle=(0, (4, 2))))
                else:
                    handles.append(Patch(facecolor=colour, alpha=0.5, linewidth=0))
            labels = [_fault_label(f, write) for f in shown]
            anchor = (_LEFT_IN / _WIDTH_IN - 0.01, 1 - 0.3 / height)
            figure.legend(handles, labels, loc="upper left", bbox_to_anchor=anchor, ncols=2, title=None)
        if flat:
            figure.text(_LEFT_IN / _WIDTH_IN, 0.12 / height, "zero throughout: " + ", ".join(flat), fontsize=7.5)

    return draw(build, _WIDTH_IN, height)


def _overlaps(fault: Mapping[str, Any], start_s: float, end_s: float) -> bool:
    begin, finish = fault.get("start"), fault.get("end")
    if not isinstance(begin, int | float):
        return False
    return begin <= end_s and (not isinstance(finish, int | float) or finish >= start_s)


def _panel(axes: Axes, panel: Panel, lines: list[tuple[str, np.ndarray]], start: float, interval: float) -> None:
    axes.set_title(f"{panel.title} ({panel.unit})" if panel.unit else panel.title, loc="left")
    for index, (label, values) in enumerate(lines):
        colour = LINE_COLOURS[index % len(LINE_COLOURS)]
        if len(values) <= _MAX_STEPS:
            edges = start + np.arange(len(values) + 1) * interval
            axes.step(edges, np.append(values, values[-1]), where="post", label=label, color=colour, zorder=3)
        else:  # a step per interval is noise at this width: a line through the intervals' middles
            middles = start + (np.arange(len(values)) + 0.5) * interval
            axes.plot(middles, values, label=label, color=colour, linewidth=1.0, zorder=3)
    if panel.log:
        log_axis(axes, "y")
    else:
        axes.set_ylim(bottom=0)
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)


def _band(axes: Axes, band: Band, segments: dict[str, Segments]) -> None:
    axes.set_title(band.title, loc="left")
    colours = dict(band.colours)
    states: dict[str, None] = {}
    groups = list(segments)
    for row, group in enumerate(groups):
        for begin, finish, state in segments[group]:
            states.setdefault(state)
            colour = colours.get(state, _UNKNOWN_STATE)
            axes.broken_barh([(begin, finish - begin)], (row - 0.4, 0.8), facecolors=colour, linewidth=0, zorder=3)
    axes.set_ylim(len(groups) - 0.5, -0.5)
    axes.set_yticks(range(len(groups)), groups)
    axes.grid(False)
    axes.tick_params(axis="y", length=0)
    axes.spines[["left"]].set_visible(False)
    order = [s for s, _ in band.colours if s in states] + sorted(s for s in states if s not in colours)
    handles = [Patch(facecolor=colours.get(state, _UNKNOWN_STATE), linewidth=0) for state in order]
    axes.legend(handles, order, loc="lower right", bbox_to_anchor=(1.0, 1.0), borderaxespad=0.2, ncols=len(order))
