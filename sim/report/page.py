"""A report page as neutral blocks, built once and rendered as Markdown and as HTML.

Both renderings must say the same thing, so what a page says (which figures, which rows, how a
number is written) is decided here, once; :mod:`sim.report.markdown` and :mod:`sim.report.html`
only decide how it looks and escape every piece of text for their format.  Text in the model is
always plain text -- never markup -- so no scenario name, description or expectation can inject
any.

Numbers follow one rule (:func:`format_number`): a whole number (a count) is written exactly with
thousands separators; any other number to 3 significant figures (thousands separators when 1,000
or more, scientific notation below 0.001).  Intervals are written ``mean [low to high]`` -- never
with a comma between the bounds, which thousands separators would make ambiguous.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sim.durations import format_duration
from sim.report.paths import number_at
from sim.report.profile import ReportProfile, Signal
from sim.report.runs import Figure, ScenarioRuns
from sim.stats import mean_ci, paired_difference_ci
from sim.variants import Experiment, expectations_of

__all__ = [
    "Block",
    "Code",
    "FigureBlock",
    "Heading",
    "IndexEntry",
    "Inline",
    "Items",
    "Link",
    "Mark",
    "Page",
    "Paragraph",
    "Table",
    "Text",
    "findings_of",
    "format_difference",
    "format_interval",
    "format_number",
    "index_page",
    "scenario_page",
]

# -- the model -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Link:
    """A link to a file beside the page; with ``page``, to another page (the renderer adds ``.md`` or ``.html``)."""

    text: str
    target: str
    page: bool = False


@dataclass(frozen=True)
class Code:
    """A name or path shown as code (a renderer may show it as plain text when that is safer)."""

    text: str


@dataclass(frozen=True)
class Mark:
    """Text with a tone: ``good`` (held, better), ``bad`` (failed, worse), ``strong`` (significant)."""

    text: str
    tone: Literal["good", "bad", "strong"]


Inline = str | Link | Code | Mark
Text = tuple[Inline, ...]


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Paragraph:
    parts: Text


@dataclass(frozen=True)
class Items:
    """A bulleted list."""

    items: tuple[Text, ...]


@dataclass(frozen=True)
class Table:
    """``numeric[i]``: column ``i`` holds numbers (aligned right)."""

    header: tuple[str, ...]
    rows: tuple[tuple[Text, ...], ...]
    numeric: tuple[bool, ...]


@dataclass(frozen=True)
class FigureBlock:
    """A figure; ``file`` is its SVG's path relative to the page (Markdown links it, HTML inlines it)."""

    figure: Figure
    file: str


Block = Heading | Paragraph | Items | Table | FigureBlock


@dataclass(frozen=True)
class Page:
    title: str
    blocks: tuple[Block, ...]
    footer: Text


# -- numbers -----------------------------------------------------------------------------------------


def format_number(value: float | None, *, signed: bool = False) -> str:
    """The fixed rule of the module docstring; ``-`` for no value; ``signed`` writes ``+`` on positives."""
    if value is None or not math.isfinite(value):
        return "-"
    if value == 0:
        return "0"
    sign = "+" if signed and value > 0 else ""
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{sign}{int(value):,}"
    magnitude = abs(value)
    if magnitude >= 999.5:  # from here 3 significant figures are whole numbers (999.7 -> 1,000)
        digits = math.floor(math.log10(magnitude)) + 1
        return f"{sign}{round(value, 3 - digits):,.0f}"
    if magnitude < 1e-3:
        return f"{sign}{value:.2e}"
    return f"{sign}{value:.3g}"


def _bounds(entry: Mapping[str, Any], signed: bool) -> str:
    mean, low, high = entry.get("mean"), entry.get("ci_low"), entry.get("ci_high")
    if mean is None:
        return "n/a"
    shown = format_number(mean, signed=signed)
    if low is None or high is None:
        return f"{shown} (no interval)"
    if low == high == mean:
        return f"{shown} (every run)"
    return f"{shown} [{format_number(low, signed=signed)} to {format_number(high, signed=signed)}]"


def format_interval(entry: Mapping[str, Any]) -> str:
    """``mean [low to high]`` from an interval mapping (``mean``, ``ci_low``, ``ci_high``)."""
    return _bounds(entry, signed=False)


def format_difference(entry: Mapping[str, Any]) -> str:
    """A difference's interval, signed: ``+12.3 [+5.1 to +19.5]``."""
    return _bounds(entry, signed=True)


# -- reading the runs --------------------------------------------------------------------------------


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _finite_at(body: Any, path: Sequence[str | int]) -> float | None:
    value = number_at(body, path)
    return value if value is not None and math.isfinite(value) else None


@dataclass(frozen=True)
class _Row:
    """One figure of the variant table: per variant its interval and difference to the first."""

    label: str
    unit: str
    worse: Literal["higher", "lower"] | None
    estimates: dict[str, dict[str, Any]]
    differences: dict[str, dict[str, Any]]


def _metric_entries(runs: ScenarioRuns, key: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    variants = runs.replications.body["variants"]
    if not all(key in variants[name]["metrics"] for name in runs.variants):
        return None
    estimates = {name: variants[name]["metrics"][key] for name in runs.variants}
    differences = {name: variants[name].get("difference_from_first", {}).get(key, {}) for name in runs.variants[1:]}
    return estimates, differences


def _metric_keys(path: Sequence[str | int]) -> list[str]:
    """The names the replication summary may give a body path (a flow's figure drops ``flows.``)."""
    keys = [".".join(map(str, path))]
    if path and path[0] == "flows":
        keys.insert(0, ".".join(map(str, path[1:])))
    return keys


def _signal_row(runs: ScenarioRuns, signal: Signal) -> _Row | None:
    """The signal's figures: the replication summary's own when it has the path, else computed here."""
    path = signal.path
    for key in _metric_keys(path):
        found = _metric_entries(runs, key)
        if found is not None:
            if all(entry.get("mean") is None for entry in found[0].values()):
                return None  # no variant measured it (commands in a scenario without any): no row of n/a
            return _Row(signal.label, signal.unit, signal.worse, *found)
    values = {
        name: [_finite_at(replication[name], path) for replication in runs.replications.results]
        for name in runs.variants
    }
    if all(v is None for series in values.values() for v in series):
        return None
    estimates = {name: mean_ci([v for v in series if v is not None]).as_dict() for name, series in values.items()}
    first = values[runs.variants[0]]
    differences = {}
    for name in runs.variants[1:]:
        pairs = [(a, b) for a, b in zip(values[name], first, strict=True) if a is not None and b is not None]
        differences[name] = paired_difference_ci([a for a, _ in pairs], [b for _, b in pairs]).as_dict()
    return _Row(signal.label, signal.unit, signal.worse, estimates, differences)


def _expected_paths(scenario: Any) -> list[str]:
    if not isinstance(scenario, Experiment):
        return []
    return list(dict.fromkeys(expectation.path for _, expectation in expectations_of(scenario)))


def _rows(runs: ScenarioRuns, profile: ReportProfile) -> list[_Row]:
    """The headline signals the runs have, then each expectation's path not already shown."""
    rows = [row for row in (_signal_row(runs, signal) for signal in profile.headline) if row is not None]
    shown = {key for signal in profile.headline for key in _metric_keys(signal.path)}
    for path in _expected_paths(runs.scenario):
        found = None if path in shown else _metric_entries(runs, path)
        if found is not None:
            rows.append(_Row(path, "", None, *found))
    return rows


def _difference_cell(row: _Row, entry: Mapping[str, Any]) -> Inline:
    text = format_difference(entry)
    low, high = entry.get("ci_low"), entry.get("ci_high")
    if low is None or high is None or not (low > 0 or high < 0):
        return text
    if row.worse is None:
        return Mark(text, "strong")
    worse = (low > 0) == (row.worse == "higher")
    return Mark(text, "bad" if worse else "good")


def _variant_table(runs: ScenarioRuns, rows: Sequence[_Row]) -> Table:
    first = runs.variants[0]
    several = len(runs.variants) > 1
    header = ("Figure", "Variant", "Mean [95 % CI]") + ((f"Difference to {first} [95 % CI]",) if several else ())
    lines: list[tuple[Text, ...]] = []
    for row in rows:
        label: Text = (row.label + (f" ({row.unit})" if row.unit else ""),)
        for index, name in enumerate(runs.variants):
            cells: tuple[Text, ...] = (
                label if index == 0 else (),
                (Code(name),),
                (format_interval(row.estimates[name]),),
            )
            if several:
                cells += (() if name == first else (_difference_cell(row, row.differences.get(name, {})),),)
            lines.append(cells)
    return Table(header, tuple(lines), (False, False, True) + ((True,) if several else ()))


def _when(seconds: float) -> str:
    """A run time as a duration, to the second from a minute on (to the millisecond before)."""
    return format_duration(round(seconds) if seconds >= 60 else round(seconds, 3))


def _window(fault: Mapping[str, Any]) -> str:
    start, end = _number(fault.get("start")), _number(fault.get("end"))
    if start is None:
        return "-"
    if end is None:
        return f"from {_when(start)}"
    if end == start:
        return f"at {_when(start)}"
    return f"{_when(start)} to {_when(end)}"


def _faults(runs: ScenarioRuns) -> list[Block]:
    """The injected faults as the runs saw them (replication 0), with the variants each was in."""
    seen: dict[tuple[str, str, str], list[str]] = {}
    for name in runs.variants:
        faults = runs.body(name).get("faults")
        for fault in faults if isinstance(faults, list) else []:
            if isinstance(fault, Mapping):
                key = (str(fault.get("kind", "?")), str(fault.get("target", "?")), _window(fault))
                seen.setdefault(key, []).append(name)
    blocks: list[Block] = [
        Heading("Injected faults"),
        Paragraph(("As the first replication drew them (a fault at a random time moves with the seed).",)),
    ]
    if not seen:
        return [blocks[0], Paragraph(("None: this scenario injects no fault.",))]
    everywhere = len(runs.variants)
    rows = tuple(
        ((Code(kind),), (Code(target),), (window,), ("all" if len(names) == everywhere else ", ".join(names),))
        for (kind, target, window), names in seen.items()
    )
    return [*blocks, Table(("Kind", "Target", "Window", "Variants"), rows, (False, False, False, False))]


def _verdict(held: int, of: int) -> Mark:
    return Mark(f"held {held} of {of}", "good") if held == of else Mark(f"FAILED: held {held} of {of}", "bad")


def _expectations(runs: ScenarioRuns) -> list[Block]:
    judged = runs.replications.body.get("expectations", [])
    blocks: list[Block] = [Heading("Expectations")]
    if not judged:
        return [*blocks, Paragraph(("None declared.",))]
    rows = tuple(
        ((Code(str(e["variant"])),), (str(e["expect"]),), (_verdict(int(e["held_on"]), int(e["of"])),)) for e in judged
    )
    held = sum(1 for e in judged if e["held_on"] == e["of"])
    summary = f"{held} of {len(judged)} held on every replication."
    return [*blocks, Paragraph((summary,)), Table(("Variant", "Expectation", "Verdict"), rows, (False, False, False))]


def _invariants(runs: ScenarioRuns) -> list[Block]:
    """Each ledger invariant per variant: on how many replications it held."""
    counts: dict[tuple[str, str], list[int]] = {}
    for name in runs.variants:
        for replication in runs.replications.results:
            invariants = replication[name].get("invariants")
            for invariant in invariants if isinstance(invariants, list) else []:
                if isinstance(invariant, Mapping):
                    tally = counts.setdefault((name, str(invariant.get("name", "?"))), [0, 0])
                    tally[0] += 1 if invariant.get("held") else 0
                    tally[1] += 1
    blocks: list[Block] = [Heading("Invariants")]
    if not counts:
        return [*blocks, Paragraph(("The runs report no invariants.",))]
    rows = tuple(((Code(name),), (text,), (_verdict(held, of),)) for (name, text), (held, of) in counts.items())
    return [*blocks, Table(("Variant", "Invariant", "Verdict"), rows, (False, False, False))]


def _warnings(runs: ScenarioRuns) -> list[Block]:
    """Per variant, the first replication's warnings that has any, and on how many replications there were some."""
    items: list[Text] = []
    total = len(runs.replications.results)
    for name in runs.variants:
        warned = [
            (index, replication[name]["warnings"])
            for index, replication in enumerate(runs.replications.results)
            if isinstance(replication[name].get("warnings"), list) and replication[name]["warnings"]
        ]
        if not warned:
            continue
        index, texts = warned[0]
        for text in texts:
            items.append((Code(name), f": {text} (replication {index}; {len(warned)} of {total} replications warned)"))
    blocks: list[Block] = [Heading("Warnings")]
    return [*blocks, Items(tuple(items))] if items else [*blocks, Paragraph(("None.",))]


def findings_of(runs: ScenarioRuns, profile: ReportProfile) -> list[tuple[str, str]]:
    """The twin's findings a scenario speaks to: those whose failure mode it measures, and those
    whose id its description names (``C3/S3: ...``), in the profile's order."""
    measured = {mode.finding for mode in profile.failure_modes if mode.scenario == runs.name}
    named = set(re.findall(r"[A-Za-z0-9]+", runs.description))
    return [(finding, title) for finding, title in profile.findings if finding in measured or finding in named]


def scenario_page(
    runs: ScenarioRuns,
    profile: ReportProfile,
    figures: Sequence[tuple[Figure, str]],
    fingerprint: str,
    inputs: Mapping[str, Any],
) -> Page:
    """One scenario's page: ``figures`` pairs each figure with its SVG's path relative to the page."""
    info = runs.replications.body["replications"]
    facts: list[Text] = [
        ("Scenario file: ", Code(runs.source)),
        (
            f"Seeds: {format_number(info['count'])} replications spawned from root seed {info['root_seed']}"
            + ("; every variant runs on the same seeds" if len(runs.variants) > 1 else ""),
        ),
        ("Variants: ", *_joined([Code(name) for name in runs.variants])),
    ]
    findings = findings_of(runs, profile)
    if findings:
        facts.append(("Findings: ", *_joined([f"{finding} ({title})" for finding, title in findings])))
    blocks: list[Block] = [Paragraph((runs.description,)), Items(tuple(facts)), *_faults(runs)]
    if figures:
        blocks.append(Heading("Figures"))
        for figure, file in figures:
            blocks += [Heading(figure.title, 3), FigureBlock(figure, file)]
    blocks += [
        Heading("Variants"),
        Paragraph(
            (
                "Each figure's mean over the replications with its 95 % confidence interval"
                + (
                    f", and each variant's paired difference to {runs.variants[0]} (the same seeds) with its interval;"
                    " a difference whose interval excludes zero is marked."
                    if len(runs.variants) > 1
                    else "."
                ),
            )
        ),
    ]
    rows = _rows(runs, profile)
    blocks.append(_variant_table(runs, rows) if rows else Paragraph(("No headline figure or expectation to show.",)))
    blocks += [*_expectations(runs), *_invariants(runs), *_warnings(runs)]
    footer: Text = (
        f"Fingerprint {fingerprint}: scenario hash {str(inputs['scenario_hash'])[:16]}, "
        f"root seed {inputs['root_seed']}, "
        f"{inputs['replications']} replications, hems-twin {inputs['version']}, source digest "
        f"{str(inputs['source_digest'])[:16]}. Regenerate with ",
        Code("make report"),
        ".",
    )
    return Page(runs.name, tuple(blocks), footer)


def _joined(parts: Sequence[Inline]) -> Text:
    out: list[Inline] = []
    for index, part in enumerate(parts):
        out += ([", "] if index else []) + [part]
    return tuple(out)


@dataclass(frozen=True)
class IndexEntry:
    """What the index shows of one scenario (kept in the manifest, so the index can be rebuilt
    from it when only some scenarios are regenerated)."""

    name: str
    description: str
    findings: tuple[str, ...]
    variants: tuple[str, ...]
    held: int
    expectations: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "description": self.description,
            "findings": list(self.findings),
            "variants": list(self.variants),
            "expectations_held": self.held,
            "expectations": self.expectations,
        }

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> IndexEntry:
        return cls(
            name,
            str(data["description"]),
            tuple(map(str, data["findings"])),
            tuple(map(str, data["variants"])),
            int(data["expectations_held"]),
            int(data["expectations"]),
        )

    @classmethod
    def of(cls, runs: ScenarioRuns, profile: ReportProfile) -> IndexEntry:
        judged = runs.replications.body.get("expectations", [])
        return cls(
            runs.name,
            runs.description,
            tuple(finding for finding, _ in findings_of(runs, profile)),
            runs.variants,
            sum(1 for e in judged if e["held_on"] == e["of"]),
            len(judged),
        )


def _held(entry: IndexEntry) -> Mark:
    """How many of the scenario's expectations held on every replication."""
    tone: Literal["good", "bad"] = "good" if entry.held == entry.expectations else "bad"
    return Mark(f"{entry.held} of {entry.expectations} held", tone)


def index_page(entries: Sequence[IndexEntry], catalogue: str | None) -> Page:
    """The index across scenarios (sorted by name); ``catalogue`` is the FMEA file's name, if written."""
    blocks: list[Block] = [
        Paragraph(
            (
                "One page per scenario: what was injected, what it did to each variant, the figures, and whether "
                "the scenario's expectations held on every replication.",
            )
        )
    ]
    if catalogue is not None:
        blocks.append(Paragraph(("The failure-mode catalogue (FMEA): ", Link(catalogue, catalogue), ".")))
    rows = tuple(
        (
            (Link(entry.name, entry.name, page=True),),
            (entry.description,),
            (", ".join(entry.findings) or "-",),
            _joined([Code(name) for name in entry.variants]),
            (_held(entry) if entry.expectations else "-",),
        )
        for entry in sorted(entries, key=lambda e: e.name)
    )
    blocks.append(
        Table(
            ("Scenario", "Description", "Findings", "Variants", "Expectations"),
            rows,
            (False, False, False, False, False),
        )
    )
    return Page("Failure-mode reports", tuple(blocks), ("Regenerate with ", Code("make report"), "."))
