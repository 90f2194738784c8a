"""The CI gate: a change's SLO figures against a stored baseline, failing only on real regressions.

``hems-twin check SCENARIOS --baseline FILE`` runs each scenario (every variant) on
replications, reads its SLO figures, and compares them with the same figures stored in the
baseline file by an earlier run.  A CI job runs it on every change; ``--update-baseline``
rewrites the file when a change is meant to move the figures (the diff of the file is then
part of the review).

What is compared.  For every variant and every SLO of a scenario, two figures of the
result's ``slos.<name>`` section: the ``sli`` (good / total events over the run; higher is
better) and the ``budget_consumed`` (the share of the SLO window's error budget the run spent;
lower is better).  A scenario without ``slos:`` is gated on the twin's default SLOs -- the
preset its scenario type offers for ``slos:`` (the smart-home twin's ``review``) -- keeping
only those its traffic supports: the twin's own load-time check refuses an SLO whose flow
carries no events, and exactly the SLOs it refuses are left out.  Alerts (``fired_at_s``) are
not gated: an alert firing earlier means the system burns faster *or* detection got better,
and one that never fires has no time to pair, so it has no direction a gate could hold.

Seeds.  Replication ``i`` of a scenario runs on the ``i``-th seed spawned from the root seed
(:func:`sim.replications.replication_seeds`: the scenario's own seed unless ``--seed``), and
the baseline stores those seeds.  The candidate and the baseline therefore ran on the same
draws, and each figure is compared replication by replication: a paired test, whose interval
holds only what the change moved, not the spread between seeds.  Unchanged code gives the
same numbers to the last digit, so an identical run always passes.

The rule (:data:`RULE`).  Per metric, with ``d_i`` = candidate minus baseline on replication
``i`` (a replication where either side has no value is left out) and "worse" meaning lower for
an SLI, higher for budget consumed, the metric **regresses** when both hold:

1. the mean of the ``d_i`` is worse than zero by *more than* the metric's tolerance, and
2. the 95 % Student-t confidence interval of the ``d_i`` lies entirely on the worse side of
   zero (it excludes zero in the worse direction).

The same with "better" is an *improvement* (reported, not a failure: update the baseline to
keep it).  Fewer than two paired values cannot be judged: the metric is *skipped* (an SLO
with no events in the run has no SLI).  Both conditions are needed: the tolerance says what
size of change matters, the interval says the change is the code's and not one unlucky seed.

Tolerances, in the metric's own unit, absolute (``0.001``) or relative to the baseline mean
(``5%``).  Defaults: an SLI may fall by a tenth of the error ratio its objective allows
(0.0001 for 99.9 %, 0.005 for 95 %); budget consumed may grow by 0.01 (1 % of the window's
budget).  ``--tolerance METRIC=VALUE`` sets one, where ``METRIC`` is a metric kind (``sli``,
``budget_consumed``), one SLO's (``slos.api-availability.sli``), or either for one scenario
only (``baseline:sli``, ``baseline:slos.api-availability.sli``).  The most specific key
wins; for keys equally specific, the command line's over the baseline file's.  Tolerances
given with ``--update-baseline`` are stored in the file, so CI needs no flags.

Not comparable.  A scenario whose baseline entry was made differently is never compared
silently: missing from the baseline, another root seed, number of replications or seed list,
another twin, other variants, or a variant whose scenario changed (its hash: every field of
the variant as run, its SLOs included, but its seed and description).  That is a **failure**
(exit 1), with the reason: a change that alters a gated scenario must update the baseline in
the same commit (``--update-baseline``), where the reviewer sees the new figures.  A
different hems-twin version is only noted: code changes are what the gate is for.

The baseline file: JSON with sorted keys, two-space indents and floats rounded to twelve
significant digits (:func:`sim.results.canonical_json`), so the same runs give the same bytes
and a diff shows only figures that moved.  Per scenario: the root seed, the replications, the
seeds, the version and twin, and per variant the scenario hash, the SLOs with their
objectives, each candidate run's invariants, and per metric the per-replication values, mean
and 95 % interval.  Scenarios not checked in a run are kept as they were when it updates.

Outputs (:func:`junit_xml`, :func:`markdown_summary`): JUnit XML as Jenkins, GitLab and GitHub
reporters read it (a ``testsuite`` per scenario, a ``testcase`` per SLO and variant, plus one
for the invariants; ``failure`` with the numbers on a regression, ``error`` where the baseline
is not comparable, ``skipped`` where there is nothing to compare; no times, so the file is
byte-stable), and a Markdown table for a CI job's page.  Both escape every text they take.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from sim.errors import SimError
from sim.executors import RunTask, execute
from sim.expectations import value_at
from sim.replications import AS_WRITTEN, CONFIDENCE, replication_seeds, scenario_data
from sim.results import DIGITS, canonical_json, package_version, write_text_atomic
from sim.slo import Shorthand, SloSpec
from sim.stats import Interval, mean_ci, paired_difference_ci
from sim.variants import Experiment, variant_scenarios

if TYPE_CHECKING:
    from sim.twin import Twin

__all__ = [
    "BASELINE_FORMAT",
    "BASELINE_FORMAT_VERSION",
    "DEFAULT_BUDGET_TOLERANCE",
    "DEFAULT_REPLICATIONS",
    "METRIC_KINDS",
    "RULE",
    "SLI_TOLERANCE_SHARE",
    "Baseline",
    "GatePlan",
    "GateReport",
    "Judgement",
    "Measured",
    "ScenarioReport",
    "check_tolerance_names",
    "compare",
    "judge",
    "junit_xml",
    "markdown_summary",
    "parse_tolerances",
    "plan_scenario",
    "read_baseline",
    "run_plans",
    "summary_text",
    "updated_baseline",
    "write_baseline",
]

DEFAULT_REPLICATIONS = 5
"""Replications per scenario when neither ``--replications`` nor the baseline says."""
BASELINE_FORMAT = "hems-twin-slo-baseline"
BASELINE_FORMAT_VERSION = 1
"""The baseline file's layout; raised when a reader of the old layout could misread the new."""
DEFAULT_BUDGET_TOLERANCE = 0.01
"""Budget consumed may grow by this much (1 % of the SLO window's error budget) unflagged."""
SLI_TOLERANCE_SHARE = 0.1
"""An SLI may fall by this share of the error ratio its objective allows, ``1 - objective``."""
METRIC_KINDS: dict[str, bool] = {"sli": True, "budget_consumed": False}
"""The figures gated per SLO, each with whether higher is better."""
RULE = (
    "A metric regresses when the mean of its paired per-replication differences (candidate - baseline, "
    "same seeds) is worse than zero by more than its tolerance AND the 95 % Student-t confidence "
    "interval of those differences lies entirely on the worse side of zero. Worse is lower for an SLI, "
    "higher for budget consumed. Default tolerances: an SLI may fall by a tenth of the error ratio its "
    "objective allows (1 - objective); budget consumed may grow by 0.01 of the window's budget."
)

Verdict = Literal["pass", "regression", "improvement", "skipped", "not comparable"]
_TOLERANCE_KEY = re.compile(
    r"^(?:(?P<scenario>[A-Za-z0-9][A-Za-z0-9._-]*):)?"
    r"(?:slos\.(?P<slo>[a-z0-9][a-z0-9_-]{0,63})\.)?(?P<kind>sli|budget_consumed)$"
)
_TOLERANCE_VALUE = re.compile(r"^(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?%?$")
_XML_ILLEGAL = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _rounded(value: Any) -> float | None:
    """A figure as the baseline file stores it (twelve significant digits), None if it is none."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(f"{value:.{DIGITS}g}")


# -- the baseline file ---------------------------------------------------------------------------


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Metric(_Entry):
    values: list[float | None]
    mean: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    method: str


class _Variant(_Entry):
    scenario_hash: str
    slos: dict[str, float]
    """each SLO's name and objective, in the scenario's order"""
    metrics: dict[str, _Metric]
    invariants_broken_on: list[int]


class Measured(_Entry):
    """One scenario's gated figures: a candidate just run, or a baseline entry read back."""

    twin: str
    version: str
    root_seed: int
    replications: int
    seeds: list[int]
    slos_inferred: bool
    """whether the SLOs are the twin's defaults (the scenario declares none)"""
    variants: dict[str, _Variant]


class _File(_Entry):
    format: str
    format_version: int
    confidence: float
    rule: str
    tolerances: dict[str, str]
    scenarios: dict[str, Measured]


@dataclass(frozen=True)
class Baseline:
    """A baseline file as read: its scenarios' figures and its stored tolerances."""

    path: Path
    scenarios: Mapping[str, Measured]
    tolerances: Mapping[str, str]


def read_baseline(path: Path) -> Baseline:
    """The baseline at ``path``; SimError (one line naming the file and field) if it is unusable."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SimError(f"{path}: no such baseline file; create it with --update-baseline") from None
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise SimError(f"{path}: cannot read the baseline ({reason})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise SimError(f"{path}:{error.lineno}: not JSON ({error.msg}); expected a baseline file") from None
    if not isinstance(data, dict) or data.get("format") != BASELINE_FORMAT:
        raise SimError(f'{path}: not a hems-twin SLO baseline (expected "format": "{BASELINE_FORMAT}")')
    if data.get("format_version") != BASELINE_FORMAT_VERSION:
        raise SimError(
            f"{path}: format_version {data.get('format_version')!r}: this hems-twin reads version "
            f"{BASELINE_FORMAT_VERSION}; rewrite the file with --update-baseline"
        )
    try:
        parsed = _File.model_validate(data)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise SimError(f"{path}: {where}: {first['msg']}") from None
    tolerances = dict(parsed.tolerances)
    parse_tolerances([f"{key}={value}" for key, value in tolerances.items()], source=str(path))
    return Baseline(path, dict(parsed.scenarios), tolerances)


def updated_baseline(measured: Mapping[str, Measured], earlier: Baseline | None, tolerances: Mapping[str, str]) -> str:
    """The text of the new baseline: ``measured`` over the earlier file's entries (others kept),
    the earlier tolerances updated with ``tolerances``."""
    scenarios = dict(earlier.scenarios) if earlier is not None else {}
    scenarios.update(measured)
    stored = {**(earlier.tolerances if earlier is not None else {}), **tolerances}
    document = {
        "format": BASELINE_FORMAT,
        "format_version": BASELINE_FORMAT_VERSION,
        "confidence": CONFIDENCE,
        "rule": RULE,
        "tolerances": stored,
        "scenarios": {name: entry.model_dump() for name, entry in scenarios.items()},
    }
    return canonical_json(document)


def write_baseline(path: Path, text: str) -> None:
    """Write the baseline atomically (its folder created): never a half-written file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, text)
    except OSError as error:
        raise SimError(f"{path}: cannot write the baseline ({error.strerror or error})") from None


# -- tolerances ----------------------------------------------------------------------------------


def parse_tolerances(texts: Iterable[str], source: str = "--tolerance") -> dict[str, str]:
    """``METRIC=VALUE`` texts as a mapping (see the module docstring); SimError names a bad one."""
    found: dict[str, str] = {}
    for text in texts:
        key, sep, value = text.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or _TOLERANCE_KEY.fullmatch(key) is None:
            raise SimError(
                f"{source} {text!r}: expected METRIC=VALUE with METRIC one of sli, budget_consumed, "
                "slos.<slo>.sli, slos.<slo>.budget_consumed, optionally after '<scenario>:'"
            )
        if _TOLERANCE_VALUE.fullmatch(value) is None or not math.isfinite(float(value.rstrip("%"))):
            raise SimError(f"{source} {text!r}: expected a non-negative number (0.001) or a percentage (5%)")
        found[key] = value
    return found


def check_tolerance_names(tolerances: Mapping[str, str], plans: Sequence[GatePlan]) -> None:
    """SimError for a tolerance naming a scenario or SLO none of ``plans`` has: a typo would
    otherwise leave the metric on its default silently."""
    scenarios = {plan.name: plan for plan in plans}
    for key in tolerances:
        match = _TOLERANCE_KEY.fullmatch(key)
        assert match is not None
        chosen = [scenarios[match["scenario"]]] if match["scenario"] in scenarios else list(plans)
        if match["scenario"] is not None and match["scenario"] not in scenarios:
            raise SimError(f"--tolerance {key}: no scenario {match['scenario']!r} is checked ({', '.join(scenarios)})")
        slos = sorted({slo.name for plan in chosen for v in plan.variants.values() for slo in _slos_of(v)})
        if match["slo"] is not None and match["slo"] not in slos:
            raise SimError(
                f"--tolerance {key}: no SLO {match['slo']!r} in the scenarios checked (SLOs: {', '.join(slos)})"
            )


def _tolerance(
    stored: Mapping[str, str], given: Mapping[str, str], scenario: str, slo: str, kind: str
) -> tuple[str | None, str]:
    """The tolerance text that applies (None: the default) and the key it came from."""
    candidates = (f"{scenario}:slos.{slo}.{kind}", f"slos.{slo}.{kind}", f"{scenario}:{kind}", kind)
    for key in candidates:  # most specific first; the command line over the file
        for source in (given, stored):
            if key in source:
                return source[key], key
    return None, "default"


def _absolute(text: str | None, kind: str, objective: float, baseline_mean: float | None) -> float:
    if text is None:
        return SLI_TOLERANCE_SHARE * (1.0 - objective) if kind == "sli" else DEFAULT_BUDGET_TOLERANCE
    if text.endswith("%"):
        return float(text[:-1]) / 100.0 * abs(baseline_mean or 0.0)
    return float(text)


# -- planning and running --------------------------------------------------------------------------


@dataclass(frozen=True)
class GatePlan:
    """One scenario to gate: its variants as run (SLOs in), root seed and replications."""

    name: str
    file: str
    root_seed: int
    replications: int
    variants: Mapping[str, Any]
    slos_inferred: bool

    @property
    def seeds(self) -> list[int]:
        """The replications' seeds, spawned from the root seed."""
        return replication_seeds(self.root_seed, self.replications)


def _default_slos(scenario_type: type[BaseModel]) -> list[Any] | None:
    """The preset the scenario type offers for ``slos:`` (a :class:`~sim.slo.Shorthand`), if any."""
    field = scenario_type.model_fields.get("slos")
    if field is None:
        return None
    return next((meta.preset() for meta in field.metadata if isinstance(meta, Shorthand)), None)


def _with_default_slos(twin: Twin, scenario: Any, preset: list[Any]) -> Any:
    """``scenario`` with the preset SLOs its traffic supports: those the twin's check does not refuse."""
    data = scenario_data(scenario)
    kind = type(scenario)
    trial = kind.model_validate({**data, "slos": preset})
    refused = {where[1] for where, _ in twin.check(trial) if len(where) > 1 and where[0] == "slos"}
    kept = [slo for index, slo in enumerate(preset) if index not in refused]
    return kind.model_validate({**data, "slos": kept})


def _slos_of(scenario: Any) -> list[SloSpec]:
    return [slo for slo in getattr(scenario, "slos", None) or [] if isinstance(slo, SloSpec)]


def plan_scenario(twin: Twin, scenario: Any, file: str, *, root_seed: int | None, replications: int) -> GatePlan:
    """What gating ``scenario`` runs: every variant, with its SLOs (the twin's defaults its traffic
    supports when it declares none).  SimError if it has no SLO to gate."""
    name = str(scenario.name)
    variants = dict(variant_scenarios(scenario)) if isinstance(scenario, Experiment) and scenario.variants else {}
    variants = variants or {AS_WRITTEN: scenario}
    inferred = not any(_slos_of(variant) for variant in variants.values())
    if inferred:
        preset = _default_slos(type(scenario))
        if preset is None:
            raise SimError(f"{file}: declares no slos: and this twin offers no default SLOs to gate")
        variants = {label: _with_default_slos(twin, variant, preset) for label, variant in variants.items()}
    empty = [label for label, variant in variants.items() if not _slos_of(variant)]
    if empty:
        what = "the scenario has" if empty == [AS_WRITTEN] else f"variant {empty[0]} has"
        why = "its traffic supports" if inferred else "declared"
        raise SimError(f"{file}: {what} no SLO {why}: nothing to gate")
    seed = int(scenario.seed) if root_seed is None else root_seed
    return GatePlan(name, file, seed, replications, variants, inferred)


def _hash(scenario: Any) -> str:
    """sha256 of the variant as run, but its seed and description (which change no figure)."""
    data = scenario.model_dump(mode="json", by_alias=True, exclude={"seed", "description", "variants", "expect"})
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _metric(values: list[float | None]) -> _Metric:
    interval = mean_ci([v for v in values if v is not None], CONFIDENCE)
    return _Metric(
        values=values,
        mean=_rounded(interval.estimate),
        ci_low=_rounded(interval.low),
        ci_high=_rounded(interval.high),
        n=interval.n,
        method=interval.method,
    )


def run_plans(
    twin: Twin,
    plans: Sequence[GatePlan],
    *,
    workers: int | None = None,
    progress: bool | None = None,
    on_run: Callable[[], None] | None = None,
) -> dict[str, Measured]:
    """Run every plan's variants on its seeds, all in one batch (``workers`` local processes, one
    per CPU by default); each scenario's gated figures.  Raises
    :class:`~sim.executors.TaskError` if a run raises."""
    tasks: list[RunTask] = []
    for plan in plans:
        data = {label: scenario_data(variant) for label, variant in plan.variants.items()}
        tasks += [RunTask(data[label], seed) for seed in plan.seeds for label in plan.variants]
    bodies = execute(
        twin.name,
        tasks,
        workers=workers,
        progress=progress,
        on_result=None if on_run is None else (lambda _index, _body: on_run()),
    )
    measured: dict[str, Measured] = {}
    start = 0
    for plan in plans:
        labels = list(plan.variants)
        runs = [bodies[start + i * len(labels) : start + (i + 1) * len(labels)] for i in range(plan.replications)]
        start += plan.replications * len(labels)
        variants = {}
        for column, label in enumerate(labels):
            scenario = plan.variants[label]
            slos = {slo.name: slo.objective for slo in _slos_of(scenario)}
            metrics = {}
            for slo in slos:
                for kind in METRIC_KINDS:
                    path = f"slos.{slo}.{kind}"
                    metrics[path] = _metric([_rounded(_read(run[column], path)) for run in runs])
            broken = [i for i, run in enumerate(runs) if not run[column].get("invariants_held", True)]
            variants[label] = _Variant(
                scenario_hash=_hash(scenario), slos=slos, metrics=metrics, invariants_broken_on=broken
            )
        measured[plan.name] = Measured(
            twin=twin.name,
            version=package_version(),
            root_seed=plan.root_seed,
            replications=plan.replications,
            seeds=plan.seeds,
            slos_inferred=plan.slos_inferred,
            variants=variants,
        )
    return measured


def _read(body: Mapping[str, Any], path: str) -> Any:
    try:
        return value_at(body, path)
    except KeyError:
        return None


# -- judging --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Judgement:
    """One metric of one SLO and variant: both sides, the paired difference and the verdict."""

    variant: str
    slo: str
    kind: str
    objective: float
    baseline: Interval | None
    candidate: Interval
    difference: Interval | None
    """candidate minus baseline, paired by replication"""
    tolerance: float | None
    tolerance_key: str
    verdict: Verdict
    reason: str

    @property
    def path(self) -> str:
        """The metric's result path."""
        return f"slos.{self.slo}.{self.kind}"

    @property
    def higher_is_better(self) -> bool:
        """The metric's direction."""
        return METRIC_KINDS[self.kind]


def judge(
    baseline: Sequence[float | None], candidate: Sequence[float | None], higher_is_better: bool, tolerance: float
) -> tuple[Verdict, Interval | None, str]:
    """The verdict on one metric (:data:`RULE`), the paired difference's interval, and why.

    ``baseline[i]`` and ``candidate[i]`` come from the same seed; pairs with a None are left out.
    """
    pairs = [(c, b) for c, b in zip(candidate, baseline, strict=True) if c is not None and b is not None]
    if len(pairs) < 2:
        return "skipped", None, f"{len(pairs)} replication(s) with a value on both sides: nothing to pair"
    difference = paired_difference_ci([c for c, _ in pairs], [b for _, b in pairs], CONFIDENCE)
    assert difference.estimate is not None and difference.low is not None and difference.high is not None
    sign = -1.0 if higher_is_better else 1.0  # turns a difference into "how much worse"
    worse = sign * difference.estimate
    worse_low, worse_high = sorted((sign * difference.low, sign * difference.high))
    level = f"{100 * CONFIDENCE:g} %"
    by, limit = f"{worse:.4g}", f"{tolerance:.4g}"
    if worse > tolerance and worse_low > 0:
        return "regression", difference, f"worse by {by} > tolerance {limit}, and the {level} CI excludes 0"
    if -worse > tolerance and worse_high < 0:
        return "improvement", difference, f"better by {-worse:.4g} > tolerance {limit}, and the {level} CI excludes 0"
    if worse > tolerance:
        return "pass", difference, f"worse by {by} > tolerance {limit}, but the {level} CI includes 0: not significant"
    if worse_low > 0:
        return "pass", difference, f"significantly worse, by {by}, but within tolerance {limit}"
    return "pass", difference, "within tolerance"


@dataclass(frozen=True)
class ScenarioReport:
    """One scenario's judgements, or why its baseline could not be used."""

    name: str
    file: str
    candidate: Measured
    judgements: tuple[Judgement, ...]
    problem: str | None
    """why the baseline entry is not comparable (None: it is)"""
    notes: tuple[str, ...]
    new: bool = False
    """the baseline has no entry for the scenario"""

    @property
    def invariants_broken(self) -> dict[str, list[int]]:
        """Variants whose candidate runs broke an invariant, with those replications."""
        return {v: e.invariants_broken_on for v, e in self.candidate.variants.items() if e.invariants_broken_on}


@dataclass(frozen=True)
class GateReport:
    """Every scenario's report, and whether the gate fails."""

    baseline: str
    scenarios: tuple[ScenarioReport, ...]
    updated: bool

    @property
    def regressions(self) -> list[tuple[ScenarioReport, Judgement]]:
        """Each regressed metric with its scenario."""
        return [(s, j) for s in self.scenarios for j in s.judgements if j.verdict == "regression"]

    @property
    def failed(self) -> bool:
        """A regression, a baseline that is not comparable, or broken invariants."""
        return any(s.problem or s.invariants_broken for s in self.scenarios) or bool(self.regressions)


def _mismatch(stored: Measured | None, candidate: Measured, baseline: str) -> str | None:
    if stored is None:
        return f"not in the baseline {baseline}: add it with --update-baseline"
    fix = "; if the change is intended, update the baseline with --update-baseline"
    if stored.twin != candidate.twin:
        return f"the baseline was made by twin {stored.twin}, this check ran {candidate.twin}{fix}"
    if (stored.root_seed, stored.replications) != (candidate.root_seed, candidate.replications):
        return (
            f"the baseline holds {stored.replications} replications from root seed {stored.root_seed}, this check "
            f"ran {candidate.replications} from root seed {candidate.root_seed}: check with --replications "
            f"{stored.replications} and --seed {stored.root_seed}{fix}"
        )
    if stored.seeds != candidate.seeds:
        return f"the baseline's replication seeds differ from this check's (seeding changed){fix}"
    if sorted(stored.variants) != sorted(candidate.variants):  # the file keeps them sorted, not declared
        before, now = ", ".join(sorted(stored.variants)), ", ".join(sorted(candidate.variants))
        return f"the variants changed (baseline: {before}; now: {now}){fix}"
    changed = [v for v, e in candidate.variants.items() if e.scenario_hash != stored.variants[v].scenario_hash]
    if changed:
        which = "the scenario" if changed == [AS_WRITTEN] else f"variant(s) {', '.join(changed)}"
        return f"{which} changed since the baseline was made (scenario hash differs){fix}"
    return None


def compare(
    plans: Sequence[GatePlan],
    measured: Mapping[str, Measured],
    baseline: Baseline | None,
    tolerances: Mapping[str, str],
    *,
    updated: bool = False,
) -> GateReport:
    """Judge every plan's candidate against its baseline entry (see the module docstring)."""
    label = str(baseline.path) if baseline is not None else "(none)"
    stored_tolerances = baseline.tolerances if baseline is not None else {}
    reports = []
    for plan in sorted(plans, key=lambda p: p.name):
        candidate = measured[plan.name]
        stored = baseline.scenarios.get(plan.name) if baseline is not None else None
        problem = _mismatch(stored, candidate, label)
        notes = []
        if stored is not None and stored.version != candidate.version:
            notes.append(f"baseline made by hems-twin {stored.version}, candidate is {candidate.version}")
        judgements = []
        for variant, entry in candidate.variants.items():
            for slo, objective in entry.slos.items():
                for kind, higher in METRIC_KINDS.items():
                    path = f"slos.{slo}.{kind}"
                    values = entry.metrics[path].values
                    cand = mean_ci([v for v in values if v is not None], CONFIDENCE)
                    text, key = _tolerance(stored_tolerances, tolerances, plan.name, slo, kind)
                    if problem is not None or stored is None:
                        judgements.append(
                            Judgement(variant, slo, kind, objective, None, cand, None, None, key, "not comparable", "")
                        )
                        continue
                    base_values = stored.variants[variant].metrics[path].values
                    base = mean_ci([v for v in base_values if v is not None], CONFIDENCE)
                    tolerance = _absolute(text, kind, objective, base.estimate)
                    verdict, difference, reason = judge(base_values, values, higher, tolerance)
                    judgements.append(
                        Judgement(
                            variant, slo, kind, objective, base, cand, difference, tolerance, key, verdict, reason
                        )
                    )
        reports.append(
            ScenarioReport(plan.name, plan.file, candidate, tuple(judgements), problem, tuple(notes), stored is None)
        )
    return GateReport(label, tuple(reports), updated)


# -- reports --------------------------------------------------------------------------------------


def _fig(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    text = f"{value:+.4g}" if signed else f"{value:.6g}"
    return text.replace("+0", "0") if signed and value == 0 else text


def _with_ci(interval: Interval | None, signed: bool = False) -> str:
    if interval is None or interval.estimate is None:
        return "n/a"
    if interval.low is None or interval.high is None:
        return f"{_fig(interval.estimate, signed)} (no interval)"
    return f"{_fig(interval.estimate, signed)} [{_fig(interval.low, signed)}, {_fig(interval.high, signed)}]"


def _label(variant: str) -> str:
    return "" if variant == AS_WRITTEN else f"[{variant}]"


def _metric_line(j: Judgement) -> str:
    arrow = "higher is better" if j.higher_is_better else "lower is better"
    tolerance = "n/a" if j.tolerance is None else f"{_fig(j.tolerance)} ({j.tolerance_key})"
    return (
        f"{j.path} ({arrow}): baseline {_with_ci(j.baseline)}, candidate {_with_ci(j.candidate)}, "
        f"difference {_with_ci(j.difference, signed=True)}, tolerance {tolerance}: {j.verdict}"
        + (f" ({j.reason})" if j.reason else "")
    )


def summary_text(report: GateReport) -> str:
    """What the command prints: a line per scenario, each regression and problem, the outcome."""
    lines = []
    for scenario in report.scenarios:
        counts: dict[str, int] = {}
        for j in scenario.judgements:
            counts[j.verdict] = counts.get(j.verdict, 0) + 1
        tally = ", ".join(f"{n} {verdict}" for verdict, n in sorted(counts.items()))
        c = scenario.candidate
        lines.append(f"{scenario.name}: {c.replications} replications from root seed {c.root_seed}; {tally}")
        if report.updated and scenario.new:
            lines.append("  added to the baseline")
        elif report.updated:
            was = f"; it was not comparable: {scenario.problem}" if scenario.problem else ""
            lines.append(f"  baseline entry rewritten{was}")
        elif scenario.problem:
            lines.append(f"  NOT COMPARABLE: {scenario.problem}")
        lines += [f"  note: {note}" for note in scenario.notes]
        for j in scenario.judgements:
            if j.verdict in ("regression", "improvement"):
                mark = "REGRESSION" if j.verdict == "regression" else "improved"
                lines.append(f"  {mark}{' ' + _label(j.variant) if _label(j.variant) else ''} {_metric_line(j)}")
        for variant, replications in scenario.invariants_broken.items():
            lines.append(f"  INVARIANTS BROKEN in {variant}: replications {replications}")
    regressions = len(report.regressions)
    if report.updated:
        lines.append(f"\nbaseline updated: {report.baseline}")
    elif report.failed:
        stale = sum(1 for s in report.scenarios if s.problem)
        broken = sum(1 for s in report.scenarios if s.invariants_broken)
        parts = [f"{regressions} regression(s)"] * bool(regressions)
        parts += [f"{stale} scenario(s) not comparable with the baseline"] * bool(stale)
        parts += [f"{broken} scenario(s) with broken invariants"] * bool(broken)
        lines.append(f"\ngate FAILED: {'; '.join(parts)}")
    else:
        lines.append(f"\ngate passed: no regression against {report.baseline}")
    return "\n".join(lines)


def _xml_text(text: str) -> str:
    """Text XML 1.0 can hold: characters it forbids (control codes, lone surrogates) shown as ``\\xNN``."""
    return _XML_ILLEGAL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _testcases(scenario: ScenarioReport) -> list[tuple[str, list[Judgement]]]:
    grouped: dict[tuple[str, str], list[Judgement]] = {}
    for j in scenario.judgements:
        grouped.setdefault((j.variant, j.slo), []).append(j)
    return [(f"{slo}{_label(variant)}", js) for (variant, slo), js in grouped.items()]


def junit_xml(report: GateReport) -> str:
    """JUnit XML: a testsuite per scenario, a testcase per SLO and variant, plus ``invariants``."""
    root = ET.Element("testsuites", name="hems-twin check")
    totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    for scenario in report.scenarios:
        suite = ET.SubElement(root, "testsuite", name=_xml_text(scenario.name))
        properties = ET.SubElement(suite, "properties")
        c = scenario.candidate
        for name, value in (
            ("file", scenario.file),
            ("baseline", report.baseline),
            ("root_seed", str(c.root_seed)),
            ("replications", str(c.replications)),
            ("slos", "twin defaults its traffic supports" if c.slos_inferred else "declared"),
            ("version", c.version),
        ):
            ET.SubElement(properties, "property", name=name, value=_xml_text(value))
        counts = dict.fromkeys(totals, 0)
        for name, judgements in _testcases(scenario):
            case = ET.SubElement(suite, "testcase", classname=_xml_text(scenario.name), name=_xml_text(name))
            counts["tests"] += 1
            details = "\n".join(_metric_line(j) for j in judgements)
            regressed = [j for j in judgements if j.verdict == "regression"]
            if scenario.problem is not None:
                counts["errors"] += 1
                message = f"baseline not comparable: {scenario.problem}"
                ET.SubElement(case, "error", message=_xml_text(message), type="baseline").text = _xml_text(details)
            elif regressed:
                counts["failures"] += 1
                message = "; ".join(f"{j.path} regressed: {j.reason}" for j in regressed)
                ET.SubElement(case, "failure", message=_xml_text(message), type="regression").text = _xml_text(details)
            elif all(j.verdict == "skipped" for j in judgements):
                counts["skipped"] += 1
                ET.SubElement(case, "skipped", message=_xml_text(judgements[0].reason))
            else:
                ET.SubElement(case, "system-out").text = _xml_text(details)
        case = ET.SubElement(suite, "testcase", classname=_xml_text(scenario.name), name="invariants")
        counts["tests"] += 1
        if scenario.invariants_broken:
            counts["failures"] += 1
            text = "; ".join(f"{v}: replications {r}" for v, r in scenario.invariants_broken.items())
            ET.SubElement(case, "failure", message=_xml_text(f"invariants broken in {text}"), type="invariants")
        for key, count in counts.items():
            suite.set(key, str(count))
            totals[key] += count
    for key, count in totals.items():
        root.set(key, str(count))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _cell(text: str) -> str:
    """Text safe in a Markdown table cell: no pipes, line breaks or HTML."""
    text = " ".join(text.split())
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")


def markdown_summary(report: GateReport) -> str:
    """A Markdown page for a CI job: the outcome, the rule, a row per metric, the problems."""
    regressions = len(report.regressions)
    if report.updated:
        title = "SLO gate: baseline updated"
    elif report.failed:
        title = f"SLO gate: FAILED ({regressions} regression{'s' if regressions != 1 else ''})"
    else:
        title = "SLO gate: passed"
    lines = [f"# {title}", "", f"Baseline: `{_cell(report.baseline)}`.", "", f"**Rule.** {RULE}", ""]
    lines += ["| scenario | replications | root seed | metrics | regressions | improvements | baseline |"]
    lines += ["|---|---|---|---|---|---|---|"]
    for s in report.scenarios:
        verdicts = [j.verdict for j in s.judgements]
        state = "not comparable" if s.problem else "invariants broken" if s.invariants_broken else "compared"
        cells = [s.name, str(s.candidate.replications), str(s.candidate.root_seed), str(len(verdicts))]
        cells += [str(verdicts.count("regression")), str(verdicts.count("improvement")), state]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    lines.append("")
    lines.append(
        "| scenario | SLO | variant | metric | baseline mean [95 % CI] | candidate mean [95 % CI] "
        "| difference [95 % CI] | tolerance | verdict |"
    )
    lines.append("|---|---|---|---|---|---|---|---|---|")
    shown = {"regression": "**REGRESSION**", "not comparable": "**not comparable**", "improvement": "improved"}
    for scenario in report.scenarios:
        for j in scenario.judgements:
            metric = f"{j.kind} ({'higher' if j.higher_is_better else 'lower'} is better)"
            tolerance = "n/a" if j.tolerance is None else _fig(j.tolerance)
            cells = [
                scenario.name,
                j.slo,
                "-" if j.variant == AS_WRITTEN else j.variant,
                metric,
                _with_ci(j.baseline),
                _with_ci(j.candidate),
                _with_ci(j.difference, signed=True),
                tolerance,
                shown.get(j.verdict, j.verdict),
            ]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    problems = [s for s in report.scenarios if s.problem or s.invariants_broken or s.notes]
    if problems:
        lines += ["", "## Notes", ""]
        for s in problems:
            if s.problem:
                lines.append(f"- **{_cell(s.name)}: not comparable.** {_cell(s.problem)}")
            for variant, replications in s.invariants_broken.items():
                lines.append(
                    f"- **{_cell(s.name)} {_cell(variant)}: invariants broken** on replications {replications}"
                )
            lines += [f"- {_cell(s.name)}: {_cell(note)}" for note in s.notes]
    inferred = [s.name for s in report.scenarios if s.candidate.slos_inferred]
    if inferred:
        lines += [
            "",
            f"Scenarios gated on the twin's default SLOs their traffic supports (they declare none): "
            f"{_cell(', '.join(inferred))}.",
        ]
    return "\n".join(lines) + "\n"
