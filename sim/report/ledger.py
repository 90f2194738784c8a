"""The ledger figure: where every command and reading ended up, per variant.

Each ledger kind (``ledger.<kind>``: items entered, and per final state a total and counts
by reason) becomes one stacked horizontal bar per variant: the shares of the items entered
that were applied or stored, failed or dropped (split by reason), dead-lettered or still in
flight, each the mean over the replications.  Good states are green, failures red, drops
purple, so the harm a countermeasure removes is the red or purple that shrinks.  Slices too
narrow to carry their percentage are listed beside the bar, and the legend names them all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure as MplFigure
from matplotlib.patches import Patch

from sim.report.paths import at, number_at
from sim.report.runs import Figure, ScenarioRuns
from sim.report.svg import Stack, draw

__all__ = ["Segment", "ledger_figure", "ledger_shares"]

_WIDTH_IN = 9.5
_STATE_ORDER = ("applied", "stored", "failed", "dropped", "dead_lettered")
_STATE_COLOURS = {"applied": "Greens", "stored": "Greens", "failed": "Reds", "dropped": "Purples"}
_DEAD_LETTERED = "#8c6d31"
_IN_FLIGHT = "#c8c8c8"
_DARK_STATES = ("failed", "dropped", "dead_lettered")
"""slices dark enough to carry white text (the good states' own slice too)"""
_LABEL_MIN_SHARE = 0.06
"""a ledger slice at least this wide carries its percentage inside the bar"""

Segment = tuple[str, str | None]
"""a ledger slice: (final state, reason or None for the state's items without one)"""


def ledger_shares(runs: ScenarioRuns, kind: str) -> tuple[list[Segment], dict[str, dict[Segment, float]]]:
    """A ledger kind's slices and, per variant, each slice's share of the items entered.

    The share is the mean over the replications in which items entered; a variant in which
    none did has no entry.  Slices come in the order good, failed, dropped, dead-lettered,
    other states, in flight; reasons by name, the items without a reason first.
    """
    found: dict[Segment, None] = {}
    shares: dict[str, dict[Segment, float]] = {}
    for variant in runs.variants:
        sums: dict[Segment, float] = {}
        counted = 0
        for results in runs.replications.results:
            account = at(results.get(variant), ("ledger", kind))
            entered = number_at(account, ("entered",))
            states = at(account, ("states",))
            if not entered or not isinstance(states, Mapping):
                continue
            counted += 1
            for state, info in states.items():
                total = number_at(info, ("total",)) or 0.0
                reasons = at(info, ("by_reason",))
                by_reason = {str(r): float(c) for r, c in reasons.items()} if isinstance(reasons, Mapping) else {}
                for reason, count in [(None, total - sum(by_reason.values())), *by_reason.items()]:
                    found.setdefault((state, reason))
                    sums[(state, reason)] = sums.get((state, reason), 0.0) + count / entered
        if counted:
            shares[variant] = {segment: value / counted for segment, value in sums.items()}
    used = [s for s in found if any(share.get(s, 0.0) > 0 for share in shares.values())]
    return sorted(used, key=_segment_order), shares


def _segment_order(segment: Segment) -> tuple[int, str, str]:
    state, reason = segment
    rank = _STATE_ORDER.index(state) if state in _STATE_ORDER else len(_STATE_ORDER) + (state == "in_flight")
    return rank, state, reason or ""


def _segment_colours(segments: Sequence[Segment]) -> dict[Segment, str]:
    colours: dict[Segment, str] = {}
    for state in dict.fromkeys(s for s, _ in segments):
        mine = [s for s in segments if s[0] == state]
        for index, segment in enumerate(mine):
            if state in _STATE_COLOURS:
                shade = 0.75 - 0.45 * index / max(len(mine) - 1, 1) if len(mine) > 1 else 0.65
                red, green, blue, _ = colormaps[_STATE_COLOURS[state]](shade)
                colours[segment] = f"#{round(red * 255):02x}{round(green * 255):02x}{round(blue * 255):02x}"
            else:
                colours[segment] = _DEAD_LETTERED if state == "dead_lettered" else _IN_FLIGHT
    return colours


def _segment_label(segment: Segment) -> str:
    state, reason = segment
    return f"{state}: {reason}" if reason else state


def ledger_figure(runs: ScenarioRuns, count: int) -> Figure | None:
    """The ledger's breakdown per kind, one bar per variant; ``None`` when no kind had items."""
    kinds: dict[str, None] = {}
    for results in runs.replications.results:
        for body in results.values():
            ledger = body.get("ledger")
            kinds.update(dict.fromkeys(ledger if isinstance(ledger, Mapping) else ()))
    drawn = [(kind, *ledger_shares(runs, kind)) for kind in kinds]
    drawn = [(kind, segments, shares) for kind, segments, shares in drawn if segments and shares]
    if not drawn:
        return None
    rows = len(runs.variants)
    legend_rows = [-(-len(segments) // 3) for _, segments, _ in drawn]
    height = 0.1 + sum(0.35 + 0.32 * rows + 0.35 + 0.19 * r for r in legend_rows)

    def build(figure: MplFigure) -> None:
        stack = Stack(figure, _WIDTH_IN, height, 1.5, 3.1, 0.0)
        for (kind, segments, shares), legend in zip(drawn, legend_rows, strict=True):
            axes = stack.axes(0.32 * rows, 0.35)
            _ledger_axes(axes, kind, segments, shares, runs.variants)
            stack.cursor += 0.35 + 0.19 * legend

    return Figure(
        "ledger",
        "Where every item ended up (the ledger)",
        f"Each bar splits the items that entered by their final state (mean over {count} replications); "
        "compare the red and purple slices, the failed and dropped ones, between the variants.",
        draw(build, _WIDTH_IN, height),
    )


def _ledger_axes(
    axes: Axes, kind: str, segments: list[Segment], shares: dict[str, dict[Segment, float]], variants: Sequence[str]
) -> None:
    colours = _segment_colours(segments)
    axes.set_title(f"{kind.replace('_', ' ')} (share of those entered)", loc="left")
    for row, variant in enumerate(variants):
        share = shares.get(variant)
        if share is None:
            axes.text(0.0, row, " no items entered", va="center", fontsize=7.5, color="#666666")
            continue
        left = 0.0
        small = []
        for segment in segments:
            width = share.get(segment, 0.0)
            if width <= 0:
                continue
            axes.barh(row, width, left=left, height=0.7, color=colours[segment], linewidth=0)
            if width >= _LABEL_MIN_SHARE:
                dark = segment[0] in _DARK_STATES or (segment[1] is None and segment[0] in ("applied", "stored"))
                axes.text(
                    left + width / 2,
                    row,
                    f"{100 * width:.0f} %",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if dark else "black",
                )
            else:
                small.append((width, segment))
            left += width
        small.sort(key=lambda item: (-item[0], _segment_order(item[1])))
        if small:
            listed = ", ".join(f"{s[1] or s[0]} {_percent(w)}" for w, s in small[:3])
            more = f" +{len(small) - 3} more" if len(small) > 3 else ""
            axes.text(1.015, row, listed + more, va="center", fontsize=6.8, color="#333333", clip_on=False)
    axes.set_xlim(0, 1)
    axes.set_ylim(len(variants) - 0.5, -0.5)
    axes.set_yticks(range(len(variants)), list(variants))
    axes.set_xticks([0, 0.25, 0.5, 0.75, 1.0], ["0", "25 %", "50 %", "75 %", "100 %"])
    axes.tick_params(axis="y", length=0)
    axes.grid(False)
    handles = [Patch(facecolor=colours[s], linewidth=0) for s in segments]
    below = -0.3 / (0.32 * len(variants))  # 0.3 inches under the axes, whatever their height
    axes.legend(
        handles,
        [_segment_label(s) for s in segments],
        loc="upper left",
        bbox_to_anchor=(0.0, below),
        ncols=3,
        borderaxespad=0,
    )


def _percent(share: float) -> str:
    percent = 100 * share
    return f"{percent:.2g} %" if percent < 10 else f"{percent:.0f} %"
