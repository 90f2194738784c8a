"""pytest plugin: scenario files with expectations or SLOs become test items.

``pytest scenarios/`` (or any folder or file) collects every ``*.yaml`` / ``*.yml`` file whose
top level has an ``expect:`` or ``slos:`` key, and makes a test item of

* each expectation: ``c1-outbox.yaml::outbox: commands.orphaned == 0`` (``between`` ones as
  ``between: commands.orphaned: outbox < as-designed``);
* each SLO of each variant: ``m1-burn-rates.yaml::fast-burn: slo api-availability`` (no
  variant prefix in a scenario without variants).

So ``-k``, ``-m hems_scenario``, ``--junitxml``, ``-x`` and CI reporters work on scenarios as on
any test, and a scenario suite is a CI gate with no code (with xdist, ``--dist loadfile`` keeps
a file's items, and so its one run, on one worker).  The plugin is registered as ``hems-twin``
under the ``pytest11`` entry point (``-p no:hems-twin`` turns it off).

One run per file.  All of a file's items share one run of every variant, made when the first
of them runs and cached on the file's collector, on the file's own seed (``--hems-seed N``
overrides it).  With ``--hems-replications N`` every variant runs on ``N`` seeds spawned from
that seed (:mod:`sim.replications`; ``--hems-workers K`` local processes) and an item passes
only if it held on every replication; a failure says on how many it held and where it failed.

The SLO rule.  A run of minutes or hours is a slice of an SLO's window (30 days by default),
so whether "the objective was met over the run" is the wrong question for a scenario that
injects an incident: a 10-minute outage misses 99.9 % over the hour around it yet spends a
quarter of the month's budget, which is what the objective allows.  The default rule
(``--hems-slo-rule budget``) is therefore the one an error budget states: the item fails when
the run **exhausts the SLO's error budget** -- its budget consumed reaches 1, the bad events in
the trailing window outnumbering what the whole window allows (``budget_exhausted_at_s`` is
set).  ``--hems-slo-rule objective`` is the strict reading, for steady-state scenarios: the
run's SLI must meet the objective.  An SLO with no events in the run is skipped.  A scenario
that wants a number held (a detection delay, a budget share) states it as an expectation.

A file that does not load gives one failing item, ``<file>::load``, whose report is the
loader's message (file, line, field, what was expected) and nothing else.

Nothing is imported until a file is collected: the plugin loads with every pytest run of the
environment, and a run without scenario files (the project's own ``tests/``) pays for the
option parsing and a suffix check per file only.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from _pytest._code.code import TerminalRepr

    from sim.expectations import Expectation

__all__ = [
    "SLO_RULES",
    "ExpectationItem",
    "LoadFailure",
    "ScenarioCheckFailed",
    "ScenarioFile",
    "SloItem",
    "pytest_addoption",
    "pytest_collect_file",
    "pytest_configure",
]

SLO_RULES = ("budget", "objective")
"""``--hems-slo-rule`` choices: the error budget must not run out, or the SLI must meet the objective."""
_SUFFIXES = (".yaml", ".yml")
_TOP_KEY = re.compile(rb"^(?:expect|slos)[ \t]*:", re.MULTILINE)
_MAX_BYTES = 16 * 2**20  # the scenario loader's limit: a larger file is no scenario
_MARKER = "hems_scenario"


class ScenarioCheckFailed(Exception):
    """An expectation or SLO did not hold, or the file did not load: reported as its message alone."""


def pytest_addoption(parser: pytest.Parser) -> None:
    """The ``--hems-*`` options."""
    group = parser.getgroup("hems-twin", "hems-twin scenario files as tests")
    group.addoption("--hems-seed", type=int, default=None, metavar="N", help="run scenarios on seed N, not their own")
    group.addoption(
        "--hems-replications",
        type=int,
        default=None,
        metavar="N",
        help="run every variant on N seeds spawned from the seed; an item passes if it held on every one",
    )
    group.addoption(
        "--hems-workers",
        type=int,
        default=None,
        metavar="K",
        help="with --hems-replications: local processes running at once (default: one per CPU)",
    )
    group.addoption(
        "--hems-slo-rule",
        choices=SLO_RULES,
        default="budget",
        help="an SLO item fails when the run exhausts its error budget (budget, the default) or when the "
        "run's SLI is below the objective (objective)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker every scenario item carries (``-m hems_scenario`` selects them)."""
    config.addinivalue_line("markers", f"{_MARKER}: an item collected from a hems-twin scenario file")
    for option, low in (("hems_replications", 1), ("hems_workers", 1), ("hems_seed", 0)):
        value = config.getoption(option)
        if value is not None and value < low:
            flag = "--" + option.replace("_", "-")
            raise pytest.UsageError(f"{flag} {value}: expected at least {low}")


def _looks_like_scenario(path: Path) -> bool:
    """A small regular file with a top-level ``expect:`` or ``slos:`` key: read, never parsed."""
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode) or info.st_size > _MAX_BYTES:
            return False
        with open(path, "rb") as file:
            return _TOP_KEY.search(file.read(_MAX_BYTES)) is not None
    except OSError:
        return False


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> ScenarioFile | None:
    """A :class:`ScenarioFile` for a YAML file that looks like a scenario with checks."""
    if file_path.suffix not in _SUFFIXES or not _looks_like_scenario(file_path):
        return None
    collector: ScenarioFile = ScenarioFile.from_parent(parent, path=file_path)
    return collector


def _item_lines(path: Path) -> dict[tuple[str | int, ...], int]:
    """1-based lines of ``expect.<variant>[i]`` and ``slos[i]`` in the file, for reports."""
    import yaml

    try:
        root = yaml.compose(path.read_text(encoding="utf-8-sig"), Loader=yaml.SafeLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    lines: dict[tuple[str | int, ...], int] = {}
    if not isinstance(root, yaml.MappingNode):
        return lines
    for key, value in root.value:
        if key.value == "expect" and isinstance(value, yaml.MappingNode):
            for variant, texts in value.value:
                if isinstance(texts, yaml.SequenceNode):
                    for index, item in enumerate(texts.value):
                        lines[("expect", str(variant.value), index)] = item.start_mark.line + 1
        elif key.value == "slos":
            lines[("slos",)] = key.start_mark.line + 1
            if isinstance(value, yaml.SequenceNode):
                for index, item in enumerate(value.value):
                    lines[("slos", index)] = item.start_mark.line + 1
    return lines


class _Runs:
    """A file's runs: ``runs[i][variant]`` is replication ``i``'s result body (one, on a single seed)."""

    def __init__(self, runs: list[dict[str, dict[str, Any]]], seeds: list[int], replicated: bool) -> None:
        self.runs = runs
        self.seeds = seeds
        self.replicated = replicated

    def where(self, index: int) -> str:
        """How a report names run ``index``."""
        return f"replication {index} (seed {self.seeds[index]})" if self.replicated else f"seed {self.seeds[index]}"


class ScenarioFile(pytest.File):
    """A scenario file: loads it, yields its items, and runs it once for all of them."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._scenario: Any = None
        self._twin: Any = None
        self._runs: _Runs | BaseException | None = None

    def collect(self) -> Iterator[pytest.Item]:
        """The items: one per expectation, one per variant and SLO; ``load`` if the file does not load."""
        from sim.cli import load
        from sim.errors import SimError
        from sim.twin import load_twin

        try:
            self._twin = load_twin(None)
            self._scenario = load(self._twin, self.path)
        except SimError as error:
            yield LoadFailure.from_parent(self, name="load", message=str(error))
            return
        lines = _item_lines(self.path)
        names: set[str] = set()

        def unique(name: str) -> str:
            count, candidate = 1, name
            while candidate in names:
                count += 1
                candidate = f"{name} ({count})"
            names.add(candidate)
            return candidate

        for loc, expectation in self._expectations():
            yield ExpectationItem.from_parent(
                self, name=unique(f"{loc[1]}: {expectation.text}"), expectation=expectation, line=lines.get(loc)
            )
        for variant, scenario in self.variants().items():
            for index, slo in enumerate(getattr(scenario, "slos", None) or []):
                prefix = "" if variant == _as_written() else f"{variant}: "
                line = lines.get(("slos", index), lines.get(("slos",)))
                yield SloItem.from_parent(
                    self, name=unique(f"{prefix}slo {slo.name}"), variant=variant, slo=slo.name, line=line
                )

    def _expectations(self) -> list[tuple[tuple[str | int, ...], Expectation]]:
        from sim.variants import Experiment, expectations_of

        return expectations_of(self._scenario) if isinstance(self._scenario, Experiment) else []

    def variants(self) -> dict[str, Any]:
        """Every variant as a whole scenario (the scenario itself, ``as-written``, without variants)."""
        from sim.variants import Experiment, variant_scenarios

        scenario = self._scenario
        if isinstance(scenario, Experiment) and scenario.variants:
            return dict(variant_scenarios(scenario))
        return {_as_written(): scenario}

    def runs(self) -> _Runs:
        """The file's runs, made on first use (an exception is kept and raised to every item)."""
        if self._runs is None:
            try:
                self._runs = self._run()
            except Exception as error:
                self._runs = error
        if isinstance(self._runs, BaseException):
            raise self._runs
        return self._runs

    def _run(self) -> _Runs:
        from sim.replications import replicate

        config = self.config
        seed = config.getoption("hems_seed")
        seed = int(self._scenario.seed) if seed is None else seed
        count = config.getoption("hems_replications")
        if count is None or count == 1:
            body = {name: self._twin.run(variant, seed) for name, variant in self.variants().items()}
            return _Runs([body], [seed], replicated=False)
        replicated = replicate(self._twin, self._scenario, count, seed, workers=config.getoption("hems_workers"))
        return _Runs([dict(run) for run in replicated.results], list(replicated.seeds), replicated=True)


def _as_written() -> str:
    from sim.replications import AS_WRITTEN

    return AS_WRITTEN


class _ScenarioItem(pytest.Item):
    """What the items share: the marker, the file's run, and failures reported as their message."""

    def __init__(self, *, line: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.line = line
        self.add_marker(_MARKER)

    @property
    def file(self) -> ScenarioFile:
        """The collector of the item's scenario file."""
        parent = self.parent
        assert isinstance(parent, ScenarioFile)
        return parent

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str | TerminalRepr:
        """A failed check is its message; anything else (a crash in the twin) the usual report."""
        if isinstance(excinfo.value, ScenarioCheckFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[os.PathLike[str] | str, int | None, str]:
        """Where the check is written: the file and line (0-based for pytest), and a headline
        naming both (never a suffix of the node id, which pytest would show with its dots as ``::``)."""
        where = self.path.name if self.line is None else f"{self.path.name}:{self.line}"
        return self.path, None if self.line is None else self.line - 1, f"{self.name} ({where})"


class LoadFailure(_ScenarioItem):
    """The one item of a file that does not load: fails with the loader's message."""

    def __init__(self, *, message: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.message = message

    def runtest(self) -> None:
        """Fail with the loader's message."""
        raise ScenarioCheckFailed(self.message)


class ExpectationItem(_ScenarioItem):
    """One expectation of the file, judged on the file's run (on every replication)."""

    def __init__(self, *, expectation: Expectation, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.expectation = expectation

    def runtest(self) -> None:
        """Pass if the expectation held on every run."""
        from sim.expectations import evaluate

        runs = self.file.runs()
        failed = []
        for index, run in enumerate(runs.runs):
            verdict = evaluate(self.expectation, run)
            if not verdict.held:
                failed.append(f"{runs.where(index)}: {verdict.detail}")
        if failed:
            held = len(runs.runs) - len(failed)
            head = f"[{self.expectation.left}] {self.expectation.text} did not hold"
            if runs.replicated:
                head += f" (held on {held} of {len(runs.runs)} replications)"
            raise ScenarioCheckFailed("\n".join([head, *(f"  {line}" for line in failed)]))


def _slo_verdict(section: Mapping[str, Any], rule: str) -> tuple[bool | None, str]:
    """(held, what was measured); held is None when the SLO saw no events."""
    sli, objective = section.get("sli"), section.get("objective")
    if sli is None:
        return None, "no events"
    measured = (
        f"SLI {sli:.6g} (objective {objective:g}), {section.get('bad', 0):,} bad of {section.get('events', 0):,} "
        f"events, {section.get('budget_consumed') or 0:.3g} of the error budget consumed"
    )
    if rule == "objective":
        return sli >= objective, measured
    exhausted = section.get("budget_exhausted_at_s")
    if exhausted is not None:
        return False, f"error budget exhausted at {exhausted:g} s; {measured}"
    return True, measured


class SloItem(_ScenarioItem):
    """One SLO of one variant: fails when the run breaks it (see ``--hems-slo-rule``)."""

    def __init__(self, *, variant: str, slo: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.variant = variant
        self.slo = slo

    def runtest(self) -> None:
        """Pass unless a run broke the SLO by the rule in force; skip if no run had events."""
        rule = str(self.config.getoption("hems_slo_rule"))
        runs = self.file.runs()
        failed, judged = [], 0
        for index, run in enumerate(runs.runs):
            held, measured = _slo_verdict(run[self.variant]["slos"][self.slo], rule)
            judged += held is not None
            if held is False:
                failed.append(f"{runs.where(index)}: {measured}")
        if not judged:
            pytest.skip(f"SLO {self.slo}: no events in the run to judge")
        if failed:
            broke = "exhausted its error budget" if rule == "budget" else "missed its objective"
            head = f"[{self.variant}] SLO {self.slo} {broke}"
            if runs.replicated:
                head += f" on {len(failed)} of {len(runs.runs)} replications"
            raise ScenarioCheckFailed("\n".join([head, *(f"  {line}" for line in failed)]))
