"""Deterministic SVG from matplotlib, and the style every report figure shares.

A committed report is checked for staleness byte by byte, so a figure must come out the
same on every machine and every run.  :func:`draw` builds a bare
:class:`matplotlib.figure.Figure` (never ``pyplot``, which keeps global figures and picks a
backend) inside :func:`matplotlib.style.context`, which starts from matplotlib's defaults
whatever the user's ``matplotlibrc`` says, and renders it with the SVG canvas:

* text is written as paths (``svg.fonttype: path``) in DejaVu Sans, the font matplotlib
  ships, so no system font is looked up and the glyphs are the same everywhere;
* element ids come from a fixed ``svg.hashsalt`` instead of a random one;
* the metadata that would carry a date or matplotlib's version is left out.

The module also holds what several figures share: the palettes and the run-time axis
(:func:`time_axis`), which writes minutes, hours or days as the run's length asks.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import matplotlib.style
from matplotlib.axes import Axes
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure
from matplotlib.ticker import FixedFormatter, FixedLocator, NullFormatter, NullLocator

__all__ = [
    "FAULT_COLOURS",
    "LINE_COLOURS",
    "STYLE",
    "VARIANT_COLOURS",
    "Stack",
    "clock",
    "draw",
    "duration",
    "log_axis",
    "number",
    "time_axis",
    "time_format",
]

STYLE: dict[str, Any] = {
    "svg.fonttype": "path",
    "svg.hashsalt": "hems-twin-report",
    "font.family": "DejaVu Sans",
    "font.size": 8.5,
    "axes.titlesize": 9,
    "axes.labelsize": 8.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e4e4e4",
    "grid.linewidth": 0.6,
    "legend.fontsize": 7.5,
    "legend.frameon": False,
    "xtick.labelsize": 7.5,
    "ytick.labelsize": 7.5,
    "lines.linewidth": 1.3,
    "path.simplify": True,
    "path.simplify_threshold": 0.5,
    "figure.dpi": 100,
}
"""The rc settings of every figure, on top of matplotlib's defaults."""

VARIANT_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#999933")
"""One colour per variant, in the scenario's order (Okabe and Ito's colour-blind-safe set)."""
LINE_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#17becf", "#7f7f7f", "#bcbd22")
"""Lines within one timeline panel."""
FAULT_COLOURS = ("#f4a259", "#c77dff", "#5fa8d3", "#e9c46a", "#ef6f6c", "#8ab17d")
"""Fault windows, shaded light over every panel."""

_STEPS_S = (10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800)
_DAY_S = 86400


@dataclass
class Stack:
    """Axes stacked top-down, placed in inches on a figure of known size.

    The figures compute their own layout rather than leave it to matplotlib's layout engines:
    the size of each part is known from the data (one row per variant, one panel per signal),
    and every figure of a kind then lines up the same way.
    """

    figure: Figure
    width: float
    height: float
    left: float
    right: float
    cursor: float = 0.0
    """inches used from the top so far"""

    def axes(self, height: float, gap: float = 0.0, left: float | None = None, width: float | None = None) -> Axes:
        """New axes ``height`` inches tall, ``gap`` inches under the previous ones."""
        self.cursor += gap + height
        x = self.left if left is None else left
        w = self.width - self.left - self.right if width is None else width
        box = (x / self.width, 1 - self.cursor / self.height, w / self.width, height / self.height)
        return self.figure.add_axes(box)

    def y(self, inches_from_top: float) -> float:
        """A figure-fraction height ``inches_from_top`` inches below the top."""
        return 1 - inches_from_top / self.height


def draw(build: Callable[[Figure], None], width: float, height: float) -> str:
    """The SVG document of the figure ``build`` draws on a fresh ``width`` x ``height`` inch figure."""
    with matplotlib.style.context(["default", STYLE]):
        figure = Figure(figsize=(width, height))
        build(figure)
        buffer = io.StringIO()
        canvas = FigureCanvasSVG(figure)
        canvas.print_svg(buffer, metadata={"Date": None, "Creator": None})  # type: ignore[no-untyped-call]
    return buffer.getvalue()


def clock(seconds: float, days: bool, with_seconds: bool = False) -> str:
    """Run time as a reader reads it: ``7:30`` (h:mm), ``179d 23:30`` past a day, ``25:00`` (m:ss)."""
    whole = round(seconds)
    day, rest = divmod(whole, _DAY_S)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours * 60 + minutes}:{secs:02d}" if with_seconds else f"{hours}:{minutes:02d}"
    return f"{day}d {text}" if days else text


def time_format(end_s: float) -> tuple[Callable[[float], str], str]:
    """How run times up to ``end_s`` are written, and the axis label that says so.

    Runs of up to two hours read in minutes and seconds (``25:00``), longer ones in h:mm
    (``6:30``), runs past a day with the day (a long horizon's detailed window starts on day
    179, say: ``179d 23:30``).  Fault legends and axes use the same, so they can be compared.
    """
    if end_s > _DAY_S:
        return (lambda t: clock(t, days=True)), "run time (day, h:mm)"
    if end_s <= 2 * 3600:
        return (lambda t: clock(t, days=False, with_seconds=True)), "run time (m:ss)"
    return (lambda t: clock(t, days=False)), "run time (h:mm)"


def time_axis(axes: Axes, start_s: float, end_s: float, labelled: bool = True) -> None:
    """Ticks in run time between ``start_s`` and ``end_s``, about six of them at round steps
    (:func:`time_format`).  ``labelled`` False keeps the ticks (and grid) but writes no labels:
    the panels above the bottom one share its axis.
    """
    span = max(end_s - start_s, 1.0)
    step = next((s for s in _STEPS_S if span / s <= 7), _STEPS_S[-1])
    first = math.ceil(start_s / step) * step
    ticks = [first + i * step for i in range(int((end_s - first) // step) + 1)]
    axes.set_xlim(start_s, end_s)
    axes.xaxis.set_minor_locator(NullLocator())
    if not labelled:
        axes.xaxis.set_major_locator(FixedLocator(ticks))
        axes.xaxis.set_major_formatter(NullFormatter())
        return
    write, label = time_format(end_s)
    axes.set_xticks(ticks, [write(t) for t in ticks])
    axes.set_xlabel(label)


def duration(seconds: float) -> str:
    """A span of time in the unit that reads best: ``140 s``, ``7.5 min``, ``2.5 h``, ``3.2 d``."""
    for unit, size, least in (("d", 86400.0, 2.0), ("h", 3600.0, 2.0), ("min", 60.0, 5.0)):
        if abs(seconds) >= least * size:
            return number(seconds / size, unit)
    return number(seconds, "s")


def log_axis(axes: Axes, which: str) -> None:
    """A log scale on ``which`` axis (``"x"`` or ``"y"``) labelled in plain numbers at 1-2-5 steps.

    matplotlib's own log labels are powers of ten in mathtext (ten to the minus one), which a reader
    converts in their head; ``0.1``, ``0.2``, ``0.5``, ``1`` need no converting.  Call it after
    the data is drawn: the ticks are chosen within the data's limits.
    """
    axis = axes.xaxis if which == "x" else axes.yaxis
    (axes.set_xscale if which == "x" else axes.set_yscale)("log")
    low, high = axes.get_xlim() if which == "x" else axes.get_ylim()
    low, high = max(low, 1e-9), max(high, 1e-9)
    decades = range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
    for steps in ((1, 2, 5), (1,)):
        ticks = [m * 10.0**d for d in decades for m in steps if low <= m * 10.0**d <= high]
        if len(ticks) <= 8:
            break
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(FixedFormatter([f"{t:g}" for t in ticks]))
    axis.set_minor_formatter(NullFormatter())


def number(value: float, unit: str = "") -> str:
    """A value to three significant figures, with its unit: ``0.973``, ``1.2e+04 s``, ``25 %``."""
    if value == 0 or not math.isfinite(value):
        text = f"{value:g}"
    elif abs(value) >= 1e5 or abs(value) < 1e-3:
        text = f"{value:.2e}"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}" if unit else text
