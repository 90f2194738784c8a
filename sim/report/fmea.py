"""The failure-mode catalogue (FMEA): each failure mode scored from what the runs measured, and ranked.

A design review ranks failure modes by their risk priority number, RPN = S x O x D, where
severity (S), occurrence (O) and detection (D) each run from 1 (best) to 10 (worst).  Here
none of the three is an opinion: each follows from the numbers a twin's scenario measured,
by the rule below, so a better countermeasure or a worse design moves the ranking by itself.

Severity, from the kind of harm and the effect's relative size.  Each kind of harm has a
band; the effect's relative size ``m`` (0 to 1, the as-designed effect over its population,
or for a signal where lower is worse, its shortfall from that reference) places the score in
the band, ``S = low + round((high - low) x m)``:

=================  ============  ===============================================================
harm               band          meaning
=================  ============  ===============================================================
``degraded``       2-4           slower, stale or partly served; the user retries
``unavailable``    4-7           requests fail and the user is told so
``wrong``          5-8           the system does what nobody asked (a command applied twice)
``silent``         6-9           the user is told it worked, and it did not
``lost``           7-10          committed data or state is gone for good
=================  ============  ===============================================================

Occurrence, from the exposure: the share ``s`` of the population the mode touched (commands,
readings, requests, time), on a log scale from 1 in 10,000 to all:
``O = clamp(1 + round(9 x (log10 s + 4) / 4), 1, 10)``, and 1 when nothing was touched.

Detection, from the mean time to detect (MTTD, from the fault's start to the first firing of
the as-designed system's detection signal, averaged over the replications that detected it)
relative to the fault's window ``w``: ``D = 1 + round(8 x min(MTTD / w, 1))``, so 1 for an
instant signal and 9 for one that fires only when the fault is over.  Replications in which
the signal never fired pull it toward 10: with a missed share ``q``,
``D = D + round((10 - D) x q)``.  A design with no signal at all scores 10.

Rounding is half up; ranking is by RPN descending, then severity, detection and occurrence
descending, then finding id and mode title, so equal scores always list in the same order.

The module knows result bodies and :class:`~sim.report.profile.FailureMode` rows, nothing of
any particular system: a twin's catalogue lives with the twin (``models/failure_modes.py``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sim.report.profile import FailureMode, ReportProfile, Signal
from sim.report.runs import ScenarioRuns
from sim.stats import Interval, mean_ci, paired_difference_ci

if TYPE_CHECKING:
    from sim.tracing import Trace
    from sim.twin import Twin

__all__ = [
    "HARM_BANDS",
    "RULE",
    "Scored",
    "affected_traces",
    "catalogue_markdown",
    "detection_score",
    "mode_key",
    "occurrence_score",
    "rank",
    "resolve",
    "score",
    "severity_score",
]

HARM_BANDS: dict[str, tuple[int, int]] = {
    "degraded": (2, 4),
    "unavailable": (4, 7),
    "wrong": (5, 8),
    "silent": (6, 9),
    "lost": (7, 10),
}
"""Each kind of harm's severity band (lowest, highest)."""

RULE = """\
**How the scores are made.** Every score runs from 1 (best) to 10 (worst) and follows from the measured numbers:

- **Severity (S)**: the kind of harm sets a band -- degraded 2-4 (slower, stale or partly served), unavailable 4-7 \
(requests fail and the user is told so), wrong 5-8 (the system does what nobody asked), silent 6-9 (the user is told \
it worked, and it did not), lost 7-10 (committed data or state gone for good) -- and the effect's relative size `m` \
(0 to 1: the as-designed effect over its population, or its shortfall where lower is worse) places it there: \
`S = low + round((high - low) x m)`.
- **Occurrence (O)**: the share `s` of the population the mode touched, on a log scale from 1 in 10,000 to all: \
`O = clamp(1 + round(9 x (log10 s + 4) / 4), 1, 10)`; 1 when nothing was touched.
- **Detection (D)**: the as-designed system's mean time to detect (MTTD, from the fault's start) over the fault's \
window `w`: `D = 1 + round(8 x min(MTTD / w, 1))`; replications where the signal never fired pull it toward 10 \
(`D + round((10 - D) x missed share)`); no signal at all scores 10.
- **RPN** = S x O x D, ranked descending; ties go to the higher severity, then detection, then occurrence, then the \
finding id and the mode's title.

- **Not measured**: a figure is averaged over the replications that measured it; one that no replication measured \
(absent or null in every body) is shown as "not measured" and scored as the worst: `m = 1` (the top of the band), \
`O = 10`; a replication without the fault's start counts as one whose signal never fired.

A measured effect shows the replication summary's own mean and 95 % interval, with the scenario page's method \
(Student t, or a BCa bootstrap for p95 and max figures); a derived figure the summary lacks (a ratio inside a fault's \
window) gets a 95 % Student-t interval over the replications. A countermeasure's change is the paired difference \
(countermeasure minus as designed, run on the same seeds) with its 95 % paired-t interval."""
"""The rule as printed at the top of the catalogue (the module docstring says the same)."""


def _round(value: float) -> int:
    """Half up, whatever the platform's float formatting: 2.5 -> 3, 3.5 -> 4."""
    return math.floor(value + 0.5)


def _clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


def severity_score(harm: str, magnitude: float) -> int:
    """Severity from the kind of harm and the effect's relative size (0 to 1, clamped)."""
    if harm not in HARM_BANDS:
        raise ValueError(f"unknown harm {harm!r}; expected one of {', '.join(HARM_BANDS)}")
    low, high = HARM_BANDS[harm]
    return low + _round((high - low) * _clamp(magnitude, 0.0, 1.0))


def occurrence_score(share: float) -> int:
    """Occurrence from the share of the population touched (log scale, 1e-4 -> 1, 1 -> 10)."""
    if not share > 0:
        return 1
    return int(_clamp(1 + _round(9 * (math.log10(min(share, 1.0)) + 4) / 4), 1, 10))


def detection_score(mttd_s: float | None, window_s: float | None, missed_share: float = 0.0) -> int:
    """Detection from the MTTD over the fault's window; 10 without any detection.

    ``mttd_s`` is None when the signal never fired (or there is none).  A window of None or
    0 counts any positive MTTD as the whole window (nothing to compare it with).
    """
    if mttd_s is None:
        return 10
    has_window = window_s is not None and window_s > 0
    ratio = _clamp(mttd_s / window_s, 0.0, 1.0) if window_s and has_window else float(mttd_s > 0)
    base = 1 + _round(8 * ratio)
    return base + _round((10 - base) * _clamp(missed_share, 0.0, 1.0))


def resolve(body: Mapping[str, Any], path: Sequence[str | int]) -> Any:
    """The value at ``path`` (keys, and ints indexing lists) in a result body; KeyError if absent."""
    node: Any = body
    for part in path:
        in_list = isinstance(part, int) and isinstance(node, list) and -len(node) <= part < len(node)
        in_mapping = isinstance(part, str) and isinstance(node, Mapping) and part in node
        if not (in_list or in_mapping):
            raise KeyError(_dotted(path))
        node = node[part]
    return node


def _dotted(path: Sequence[str | int]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else p) for i, p in enumerate(path))


def _number(body: Mapping[str, Any], path: Sequence[str | int]) -> float | None:
    """A finite number at ``path``, or None where the body has none (absent, null, not a number)."""
    try:
        value = resolve(body, path)
    except KeyError:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def mode_key(mode: FailureMode) -> str:
    """A failure mode's stable key: its finding id and a slug of its title (``C1-orphaned-commands``)."""
    slug = re.sub(r"[^a-z0-9]+", "-", mode.title.lower()).strip("-")
    return f"{mode.finding}-{slug}"


@dataclass(frozen=True)
class Scored:
    """One failure mode with what its runs measured and the scores that follow."""

    mode: FailureMode
    severity: int
    occurrence: int
    detection: int
    magnitude: float | None
    """the effect's relative size, 0 to 1 (mean over the replications that measured it); None: not measured"""
    share: float | None
    """the exposure: share of the population touched (mean over replications); None: not measured"""
    effect: Interval
    """the effect as designed"""
    effect_with: Interval
    """the effect with the countermeasure"""
    difference: Interval
    """countermeasure minus as designed, paired by seed"""
    mttd: Interval | None
    """MTTD as designed over the replications that detected; None without a signal or a detection"""
    mttd_with: Interval | None
    """the same signal's MTTD with the countermeasure, where it has one"""
    detected: int
    replications: int
    window_s: float | None

    @property
    def rpn(self) -> int:
        """The risk priority number, S x O x D."""
        return self.severity * self.occurrence * self.detection


def _fault_window(body: Mapping[str, Any], mode: FailureMode) -> tuple[float | None, float | None]:
    """The fault's start (None: not measured) and window (``window_s`` when the mode gives one)."""
    start = _number(body, ("faults", mode.fault, "start"))
    end = _number(body, ("faults", mode.fault, "end"))
    window = mode.window_s
    if window is None and start is not None and end is not None:
        window = end - start
    return start, window


def _windowed(body: Mapping[str, Any], signal: Signal) -> float | None:
    """A ``window_series`` signal: numerator over denominator summed over the intervals overlapping the fault.

    Interval ``i`` covers ``[start_s + i x interval_s, start_s + (i + 1) x interval_s)``; an interval that
    overlaps the fault's window at all counts whole.  A fault still open at the end runs to the last interval.
    None (not measured) without the series, the fault's start, or any denominator in the window.
    """
    assert signal.window_series is not None
    numerator_name, denominator_name = signal.window_series
    start = _number(body, ("faults", signal.window_fault, "start"))
    end = _number(body, ("faults", signal.window_fault, "end"))
    width = _number(body, ("timeseries", "interval_s"))
    origin = _number(body, ("timeseries", "start_s"))
    try:
        numerator, denominator = (
            resolve(body, ("timeseries", numerator_name)),
            resolve(body, ("timeseries", denominator_name)),
        )
    except KeyError:
        return None
    if start is None or width is None or width <= 0 or origin is None:
        return None
    if not isinstance(numerator, list) or not isinstance(denominator, list) or len(numerator) != len(denominator):
        return None
    top = 0.0
    bottom = 0.0
    for index, (num, den) in enumerate(zip(numerator, denominator, strict=True)):
        low = origin + index * width
        if low + width <= start or (end is not None and low >= end):
            continue
        if not isinstance(num, int | float) or not isinstance(den, int | float):
            continue
        top += float(num)
        bottom += float(den)
    return top / bottom if bottom > 0 else None


def _signal_value(body: Mapping[str, Any], signal: Signal) -> float | None:
    """A signal's value in one replication's body: its path, or its windowed series ratio."""
    if signal.window_series is not None:
        return _windowed(body, signal)
    return _number(body, signal.path)


def _per_replication(
    runs: ScenarioRuns, variant: str, read: Callable[[Mapping[str, Any]], float | None]
) -> list[float | None]:
    return [read(runs.body(variant, i)) for i in range(len(runs.replications.results))]


def _ratio(body: Mapping[str, Any], signal: Signal, of: Sequence[str | int] | None, scale: float) -> float | None:
    value = _signal_value(body, signal)
    reference = _number(body, of) if of is not None else scale
    if value is None or reference is None or reference == 0:
        return None
    return value / reference


def _magnitude(body: Mapping[str, Any], mode: FailureMode) -> float | None:
    ratio = _ratio(body, mode.effect, mode.effect_of, mode.effect_scale)
    if ratio is None:
        return None
    return _clamp(ratio if mode.effect.worse == "higher" else 1.0 - ratio, 0.0, 1.0)


def _share(body: Mapping[str, Any], mode: FailureMode) -> float | None:
    ratio = _ratio(body, mode.exposure, mode.exposure_of, 1.0)
    if ratio is None:
        return None
    ratio -= mode.exposure_offset
    return _clamp(ratio if mode.exposure.worse == "higher" else 1.0 - ratio, 0.0, 1.0)


def _time_to_detect(body: Mapping[str, Any], mode: FailureMode, signal: Signal | None) -> float | None:
    if signal is None:
        return None
    value = _number(body, signal.path)
    if value is None:
        return None
    if mode.detection_is_delay:
        return value
    start = _fault_window(body, mode)[0]
    return None if start is None else value - start  # no start: not measured, counted as missed


def _mean(values: Sequence[float | None]) -> float | None:
    """The mean over the replications that measured it; None (not measured) when none did."""
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def _summary_key(path: Sequence[str | int]) -> list[str]:
    """The names a replication summary may give a body path (flow figures without ``flows.``)."""
    if not all(isinstance(p, str) for p in path):
        return []
    dotted = ".".join(str(p) for p in path)
    return [dotted.split(".", 1)[1], dotted] if path and path[0] == "flows" and len(path) > 1 else [dotted]


def _summary_interval(runs: ScenarioRuns, variant: str, signal: Signal) -> Interval | None:
    """The replication summary's own interval for a signal (its method: t or bootstrap), where it has one."""
    if signal.window_series is not None:
        return None
    metrics = runs.replications.body.get("variants", {}).get(variant, {}).get("metrics", {})
    for key in _summary_key(signal.path):
        entry = metrics.get(key)
        if isinstance(entry, Mapping) and entry.get("mean") is not None:
            return Interval(
                entry["mean"],
                entry.get("ci_low"),
                entry.get("ci_high"),
                int(entry.get("n") or 0),
                str(entry.get("method") or "t"),
                0.95,
            )
    return None


def _interval(values: Sequence[float | None]) -> Interval:
    return mean_ci([v for v in values if v is not None])


def _difference(after: Sequence[float | None], before: Sequence[float | None]) -> Interval:
    pairs = [(a, b) for a, b in zip(after, before, strict=True) if a is not None and b is not None]
    return paired_difference_ci([a for a, _ in pairs], [b for _, b in pairs])


def score(mode: FailureMode, runs: ScenarioRuns) -> Scored:
    """Score one failure mode from its scenario's runs (every replication of both variants)."""
    for variant in (mode.as_designed, mode.countermeasure):
        if variant not in runs.variants:
            raise ValueError(f"failure mode {mode_key(mode)}: scenario {runs.name} has no variant {variant!r}")
    replications = len(runs.replications.results)
    effect = _per_replication(runs, mode.as_designed, lambda b: _signal_value(b, mode.effect))
    effect_with = _per_replication(runs, mode.countermeasure, lambda b: _signal_value(b, mode.effect))
    ttd = _per_replication(runs, mode.as_designed, lambda b: _time_to_detect(b, mode, mode.detection))
    signal_with = mode.detection_with or mode.detection
    ttd_with = _per_replication(runs, mode.countermeasure, lambda b: _time_to_detect(b, mode, signal_with))
    windows = [_fault_window(runs.body(mode.as_designed, i), mode)[1] for i in range(replications)]
    window = _mean(windows) if any(w is not None for w in windows) else None
    detected = sum(1 for t in ttd if t is not None)
    mttd = _interval(ttd) if detected else None
    magnitude = _mean(_per_replication(runs, mode.as_designed, lambda b: _magnitude(b, mode)))
    share = _mean(_per_replication(runs, mode.as_designed, lambda b: _share(b, mode)))
    missed = 1.0 - detected / replications if replications else 1.0
    return Scored(
        mode=mode,
        severity=severity_score(mode.harm, 1.0 if magnitude is None else magnitude),
        occurrence=10 if share is None else occurrence_score(share),
        detection=detection_score(mttd.estimate if mttd is not None else None, window, missed),
        magnitude=magnitude,
        share=share,
        effect=_summary_interval(runs, mode.as_designed, mode.effect) or _interval(effect),
        effect_with=_summary_interval(runs, mode.countermeasure, mode.effect) or _interval(effect_with),
        difference=_difference(effect_with, effect),
        mttd=mttd,
        mttd_with=_interval(ttd_with) if any(t is not None for t in ttd_with) else None,
        detected=detected,
        replications=replications,
        window_s=window,
    )


def rank(scored: Sequence[Scored]) -> list[Scored]:
    """Highest risk first: RPN, then severity, detection, occurrence descending, then finding and title."""
    return sorted(
        scored, key=lambda s: (-s.rpn, -s.severity, -s.detection, -s.occurrence, s.mode.finding, s.mode.title)
    )


# ---------------------------------------------------------------------------------------------------------------
# Rendering


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~])")


def _md(text: object) -> str:
    """User or model text made inert in Markdown (and in a table cell): specials backslashed, newlines as spaces."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def _code(text: str) -> str:
    return "`" + text.replace("`", "'") + "`"


def _num(value: float | None) -> str:
    """A number as a review reads it: integers whole, others to three significant figures."""
    if value is None:
        return "n/a"
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.1f}"
    return f"{value:.3g}" if magnitude >= 0.001 else f"{value:.2e}"


def _measured(value: float | None) -> str:
    """A score's input, or "not measured" (then scored as the worst: see the rule)."""
    return "not measured (scored as the worst)" if value is None else _num(value)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    magnitude = abs(seconds)
    if magnitude >= 2 * 86400:
        return f"{_num(seconds / 86400)} d"
    if magnitude >= 2 * 3600:
        return f"{_num(seconds / 3600)} h"
    if magnitude >= 120:
        return f"{_num(seconds / 60)} min"
    return f"{_num(seconds)} s"


def _with_unit(value: float | None, unit: str) -> str:
    if unit == "s":
        return _duration(value)
    return f"{_num(value)} {_md(unit)}".rstrip() if value is not None else "n/a"


def _interval_text(interval: Interval | None, unit: str = "") -> str:
    if interval is None or interval.estimate is None:
        return "not measured"
    text = _with_unit(interval.estimate, unit)
    bound = _duration if unit == "s" else _num  # a count's unit once, after the estimate
    if interval.low is not None and interval.high is not None and interval.n > 1:
        text += f" (95 % CI {bound(interval.low)} to {bound(interval.high)}, n = {interval.n})"
    elif interval.n == 1:
        text += " (one replication, no interval)"
    return text


def _signed_interval(interval: Interval, unit: str) -> str:
    if interval.estimate is None:
        return "not measured"

    def signed(value: float, with_unit: bool = True) -> str:
        shown = _with_unit(value, unit) if with_unit or unit == "s" else _num(value)
        return ("+" if value > 0 else "") + shown

    text = signed(interval.estimate)
    if interval.low is not None and interval.high is not None and interval.n > 1:
        text += f" (95 % CI {signed(interval.low, False)} to {signed(interval.high, False)})"
    return text


def _finding_titles(profile: ReportProfile) -> dict[str, str]:
    return dict(profile.findings)


def _summary_table(ranked: Sequence[Scored], titles: Mapping[str, str]) -> list[str]:
    lines = [
        "| rank | finding | failure mode | component | S | O | D | RPN |",
        "|---:|---|---|---|---:|---:|---:|---:|",
    ]
    for position, item in enumerate(ranked, start=1):
        mode = item.mode
        finding = f"{_md(mode.finding)}: {_md(titles[mode.finding])}" if mode.finding in titles else _md(mode.finding)
        lines.append(
            f"| {position} | {finding} | [{_md(mode.title)}](#{mode_key(mode).lower()}) | {_md(mode.component)} "
            f"| {item.severity} | {item.occurrence} | {item.detection} | **{item.rpn}** |"
        )
    return lines


def _trace_lines(mode: FailureMode, traces: Mapping[str, Trace | None]) -> list[str]:
    key = mode_key(mode)
    if mode.trace_kind is None and mode.trace_none_reason is not None:
        return [f"No trace: {_md(mode.trace_none_reason)}"]
    if mode.trace_kind is None:
        return [
            "No trace: the twin does not follow these requests one by one (its ledger tracks commands and readings)."
        ]
    if key not in traces:
        return ["No trace was captured in this build."]
    trace = traces[key]
    if trace is None or not trace.spans:
        return ["No request of this kind was harmed in the runs."]
    subject = trace.item.describe() if trace.item is not None else "spans"
    lines = [
        f"{_md(subject)}, variant {_code(trace.variant or '')} on seed {trace.seed}:",
        "",
        "| time | from -> to | operation | duration | outcome |",
        "|---:|---|---|---:|---|",
    ]
    for span in trace.spans:
        lines.append(
            f"| {span.start:.3f} s | {_md(span.origin)} -> {_md(span.target)} | {_md(span.operation)} "
            f"| {span.end - span.start:.3f} s | {_md(span.outcome)} |"
        )
    return lines


def affected_traces(twin: Twin, profile: ReportProfile, runs: Mapping[str, ScenarioRuns]) -> dict[str, Trace | None]:
    """The trace of one affected request per failure mode, keyed by :func:`mode_key`.

    For each mode with a ``trace_kind`` whose scenario was run: the first item of that kind
    that ended in ``trace_state`` (for ``trace_reason``) in the as-designed variant on the
    first replication's seed (:func:`sim.tracing.trace_of_item`: two more runs of that
    variant).  None where no such item was harmed or the mode names no kind.
    """
    from sim.tracing import trace_of_item  # a capture reruns the scenario: load it only when asked

    traces: dict[str, Trace | None] = {}
    for mode in profile.failure_modes:
        if mode.scenario not in runs:
            continue
        if mode.trace_kind is None or mode.trace_state is None:
            traces[mode_key(mode)] = None
            continue
        scenario_runs = runs[mode.scenario]
        traces[mode_key(mode)] = trace_of_item(
            twin,
            scenario_runs.scenario,
            scenario_runs.replications.seeds[0],
            variant=mode.as_designed,
            kind=mode.trace_kind,
            state=mode.trace_state,
            reason=mode.trace_reason,
        )
    return traces


def _detection_text(item: Scored) -> str:
    mode = item.mode
    if mode.detection is None:
        return "none as designed: nothing in the design notices this failure"
    if item.mttd is None:
        return f"never fired as designed (0 of {item.replications} replications)"
    text = _interval_text(item.mttd, "s")
    if item.detected < item.replications:
        text += f"; fired in {item.detected} of {item.replications} replications"
    return text


def _variants_text(mode: FailureMode) -> str:
    if mode.countermeasure == mode.as_designed:
        return f"variant {_code(mode.as_designed)}"
    return f"variants {_code(mode.as_designed)} and {_code(mode.countermeasure)}"


def _section(
    item: Scored, runs: ScenarioRuns, titles: Mapping[str, str], traces: Mapping[str, Trace | None]
) -> list[str]:
    mode = item.mode
    effect_unit = mode.effect.unit
    finding_title = titles.get(mode.finding, "")
    heading = f"{mode.finding}: {mode.title}"
    lines = [
        f'<a id="{mode_key(mode).lower()}"></a>',
        "",
        f"### {_md(heading)}",
        "",
    ]
    if finding_title:
        lines += [f"Finding {_md(mode.finding)}: {_md(finding_title)}.", ""]
    signal = f"{_md(mode.effect.label)} ({_code(_dotted(mode.effect.path))})"
    worse = "higher" if mode.effect.worse == "higher" else "lower"
    with_text = _interval_text(item.effect_with, effect_unit)
    lines += [
        f"- **Scores**: S {item.severity}, O {item.occurrence}, D {item.detection}, RPN **{item.rpn}** "
        f"(harm: {mode.harm}; relative size {_measured(item.magnitude)}; share touched {_measured(item.share)})",
        f"- **Component**: {_md(mode.component)}",
        f"- **Trigger**: {_md(mode.trigger)}",
        f"- **Scenario**: [{_md(runs.name)}]({runs.name}.md) ({_code(runs.source)}), {_variants_text(mode)}",
        f"- **Effect as designed**: {signal}, {worse} is worse: {_interval_text(item.effect, effect_unit)}",
        f"- **Detection signal**: {_md(mode.detection_signal)}",
        f"- **Measured MTTD as designed**: {_detection_text(item)}"
        + (f" (fault window {_duration(item.window_s)})" if item.window_s else ""),
        f"- **Countermeasure**: {_md(mode.countermeasure_text)}",
    ]
    if mode.countermeasure == mode.as_designed and mode.detection_with is not None:
        lines.append("- **Effect with it**: unchanged: the countermeasure adds detection, not protection")
    elif mode.countermeasure == mode.as_designed:
        lines.append("- **Effect with it**: not measured: the scenario has no countermeasure variant")
    else:
        lines.append(
            f"- **Effect with it** ({_code(mode.countermeasure)}): {with_text}; "
            f"change {_signed_interval(item.difference, effect_unit)}"
        )
    signal_with = mode.detection_with or mode.detection
    if signal_with is not None and (mode.detection_with is not None or item.mttd_with is not None):
        mttd_with = _interval_text(item.mttd_with, "s") if item.mttd_with is not None else "never fired"
        lines.append(f"- **MTTD with it**: {mttd_with} ({_md(signal_with.label)}, {_code(_dotted(signal_with.path))})")
    lines += [
        f"- **Residual risk**: {_md(mode.residual_risk)}",
        "",
        "**Trace of one affected request** (as designed):",
        "",
        *_trace_lines(mode, traces),
        "",
        "**Runbook skeleton**",
        "",
        f"- *Detection*: {_md(mode.runbook.detection)}",
        "- *First checks*:",
        *(f"  {n}. {_md(check)}" for n, check in enumerate(mode.runbook.first_checks, start=1)),
        "- *Mitigation*:",
        *(f"  {n}. {_md(step)}" for n, step in enumerate(mode.runbook.mitigation, start=1)),
        "",
    ]
    return lines


def catalogue_markdown(
    profile: ReportProfile,
    runs: Mapping[str, ScenarioRuns],
    traces: Mapping[str, Trace | None] | None = None,
) -> str:
    """The catalogue page (``failure-modes.md``): the rule, the ranking, then one section per mode.

    ``runs`` maps scenario names to their runs; a failure mode whose scenario is not among
    them is listed as not measured.  ``traces`` maps :func:`mode_key` to the trace of one
    affected request (None or absent: no such request was harmed).
    """
    traces = traces or {}
    titles = _finding_titles(profile)
    measured = [mode for mode in profile.failure_modes if mode.scenario in runs]
    missing = [mode for mode in profile.failure_modes if mode.scenario not in runs]
    ranked = rank([score(mode, runs[mode.scenario]) for mode in measured])
    lines = [
        "# Failure-mode catalogue (FMEA)",
        "",
        "Every failure mode the twin measures: what triggers it, what it does as designed, how soon it is seen, what "
        "the countermeasure changes and what risk remains. Scores come from the runs, not from judgement.",
        "",
        RULE,
        "",
        "## Ranking",
        "",
        *_summary_table(ranked, titles),
        "",
    ]
    if missing:
        lines += ["Not measured in this build (their scenarios were not run):", ""]
        lines += [f"- {_md(m.finding)}: {_md(m.title)} ({_code(m.scenario)})" for m in missing]
        lines.append("")
    served = dict(profile.served_by_catalogue)
    for finding, how in profile.served_by_catalogue:
        lines += [f"- **{_md(finding)}** is served by this catalogue itself: {_md(how)}"]
    if served:
        lines.append("")
    unserved = [
        f for f, _ in profile.findings if f not in served and all(m.finding != f for m in profile.failure_modes)
    ]
    if unserved:
        lines += [f"Findings with no failure mode measured here: {', '.join(_md(f) for f in unserved)}.", ""]
    lines += ["## Failure modes", ""]
    for item in ranked:
        lines += _section(item, runs[item.mode.scenario], titles, traces)
    return "\n".join(lines).rstrip("\n") + "\n"
