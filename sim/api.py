"""Running scenarios from Python (notebooks, scripts): results as objects with a tidy table.

::

    from sim.api import report, run, sweep

    result = run("scenarios/c1-outbox.yaml", seed=7)         # every variant on one seed
    result.body                                               # what result.json would hold
    result.to_frame()                                         # replication, seed, variant, metric, value

    replicated = run("scenarios/c1-outbox.yaml", replications=20)   # 20 spawned seeds, intervals
    replicated.replications.summary_frame()                  # mean and 95 % CI per variant and figure

    swept = sweep(
        "scenarios/c1-outbox.yaml",
        parameters={"workload.mobile_users": [200, 400, 800]},    # a grid, as --param gives
        replications=3,
        out="out/c1-outbox-sweep",                                # resumable; None keeps it in memory
    )
    swept.to_frame()                                          # + point and one column per parameter

    report("scenarios/c1-outbox.yaml", out="out/reports")     # pages, figures, index, catalogue

A scenario is given as a file path, a scenario object of the twin's type, or a mapping of
the same data as a file; each is checked exactly as ``hems-twin`` checks a file (variants,
expectations and sweep points included), and bad input raises
:class:`~sim.errors.ScenarioError` listing every problem. ``twin`` names an installed twin
(default: the only one). Results are the same as the command line's for the same scenario,
seeds and version, whatever ``workers`` is.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from pydantic import BaseModel

from sim.cli import load, run_scenario
from sim.compare import run_compared
from sim.errors import Problem, ScenarioError, SimError
from sim.loader import load_scenario_text
from sim.replications import AS_WRITTEN, MAX_REPLICATIONS, Replications, replicate, replication_seeds
from sim.results import result_header
from sim.store import SweepResult, figures, run_sweep
from sim.sweep import check_grid, plan_sweep, point_problems, sweep_points
from sim.twin import Twin, load_twin
from sim.variants import Experiment, check_variants, expectations_of

__all__ = ["RunResult", "SweepResult", "load_checked", "report", "run", "sweep"]

ScenarioInput = str | os.PathLike[str] | BaseModel | Mapping[str, Any]
"""What :func:`run` and :func:`sweep` accept as a scenario: a file, a scenario object, or its data."""
_FRAME_COLUMNS = ["replication", "seed", "variant", "metric", "value"]


@dataclass(frozen=True, repr=False)
class RunResult:
    """A run of a scenario (every variant), on one seed or replicated on many.

    ``body`` is what ``result.json`` would hold (header included). ``replications`` is the
    :class:`~sim.replications.Replications` of a replicated run (None for one seed), with
    each replication's full results and ``summary_frame()``.
    """

    body: dict[str, Any]
    replications: Replications | None = None
    expected: tuple[str, ...] = field(default=())
    """the result paths the scenario's expectations read (each a row of the table)"""

    def to_frame(self) -> pd.DataFrame:
        """Tidy: one row per replication x variant x metric (``replication``, ``seed``,
        ``variant``, ``metric``, ``value``); metrics as :func:`sim.store.figures` names them."""
        if self.replications is not None:
            return self.replications.to_frame()
        variants = self.body.get("variants")
        results = variants if isinstance(variants, Mapping) else {AS_WRITTEN: self.body}
        rows = [
            (0, self.body["seed"], name, metric, value)
            for name, result in results.items()
            for metric, value in figures(result, self.expected).items()
        ]
        frame = pd.DataFrame(rows, columns=_FRAME_COLUMNS)
        frame["value"] = frame["value"].astype("float64")
        return frame.sort_values(["replication", "variant", "metric"], kind="stable", ignore_index=True)

    def summary_frame(self) -> pd.DataFrame:
        """Per variant x metric: the mean and its 95 % interval (and the paired difference to
        the first variant) over the replications; one seed gives its values with no interval."""
        if self.replications is not None:
            return self.replications.summary_frame()
        frame = self.to_frame()
        return pd.DataFrame(
            {
                "variant": frame["variant"],
                "metric": frame["metric"],
                "mean": frame["value"],
                "ci_low": float("nan"),
                "ci_high": float("nan"),
                "n": 1,
                "method": "one seed",
            }
        )

    def __repr__(self) -> str:
        count = f"{len(self.replications.seeds)} replications" if self.replications else f"seed {self.body['seed']}"
        variants = self.body.get("variants")
        shown = f", variants {', '.join(variants)}" if isinstance(variants, Mapping) else ""
        return f"<RunResult {self.body.get('scenario', '?')}: {count}{shown}>"


def _twin(twin: str | Twin | None) -> Twin:
    return twin if twin is not None and not isinstance(twin, str) else load_twin(twin)


def _twin_name(twin: str | Twin | None) -> str | None:
    """The name workers load the twin by (None: the only one installed)."""
    return twin if twin is None or isinstance(twin, str) else twin.name


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def load_checked(twin: Twin, scenario: ScenarioInput) -> Any:
    """``scenario`` loaded and checked as ``hems-twin`` checks a file.

    A path is loaded (:func:`sim.cli.load`); a scenario object or a mapping is checked the
    same way: pydantic validation, the twin's checks, variants, expectations and sweep
    points. Raises ScenarioError listing every problem.
    """
    if isinstance(scenario, str | os.PathLike):
        return load(twin, os.fspath(scenario))

    def check(loaded: Any) -> list[tuple[tuple[str | int, ...], str]]:
        problems = list(twin.check(loaded))
        if isinstance(loaded, Experiment):
            problems += check_variants(twin, loaded)
        return problems

    if isinstance(scenario, twin.scenario_type):
        found = check(scenario)
        if found:
            where = "<scenario>"
            raise ScenarioError([Problem(where, None, ".".join(map(str, loc)), text) for loc, text in found])
        return scenario
    if isinstance(scenario, BaseModel):
        raise SimError(
            f"expected a {twin.scenario_type.__name__} of twin {twin.name} (got a {type(scenario).__name__})"
        )
    if not isinstance(scenario, Mapping):
        raise SimError(f"expected a scenario file's path, a scenario or a mapping (got {type(scenario).__name__})")
    text = yaml.safe_dump(_plain(scenario), sort_keys=False, allow_unicode=True)
    return load_scenario_text(text, twin.scenario_type, filename="<scenario>", check=check)


def run(
    scenario: ScenarioInput,
    *,
    seed: int | None = None,
    replications: int = 1,
    workers: int | None = None,
    twin: str | Twin | None = None,
    progress: bool | None = None,
) -> RunResult:
    """Run every variant of ``scenario`` on ``seed`` (default: the scenario's), or with
    ``replications`` >= 2 on that many seeds spawned from it (:func:`sim.replications.replicate`,
    on ``workers`` processes). Returns a :class:`RunResult`."""
    model = _twin(twin)
    loaded = load_checked(model, scenario)
    root = int(loaded.seed) if seed is None else seed
    expected = (
        tuple(dict.fromkeys(e.path for _, e in expectations_of(loaded))) if isinstance(loaded, Experiment) else ()
    )
    if replications != 1:
        replicated = replicate(model, loaded, replications, root, workers=workers, progress=progress)
        return RunResult({**result_header(loaded, root, model.name), **replicated.body}, replicated, expected)
    if isinstance(loaded, Experiment) and loaded.variants:
        return RunResult(
            {**result_header(loaded, root, model.name), **run_compared(model, loaded, root)}, None, expected
        )
    return RunResult(run_scenario(model, loaded, root), None, expected)


def sweep(
    scenario: ScenarioInput,
    parameters: Mapping[str, Sequence[Any]] | None = None,
    *,
    replications: int = 1,
    seed: int | None = None,
    workers: int | None = None,
    out: str | os.PathLike[str] | None = None,
    twin: str | Twin | None = None,
    executor: str = "local",
    scheduler: str | None = None,
    progress: bool | None = None,
) -> SweepResult:
    """Run ``scenario``'s sweep: its ``sweep:`` section crossed with the grid ``parameters``
    (``{path: [values]}``, as ``--param`` gives; a path in both takes these values) x its
    variants x ``replications`` seeds spawned from ``seed`` (default: the scenario's).

    With ``out``, every finished run is recorded in ``out/runs.jsonl`` as it ends and the
    tables are written there; calling again runs only what is missing. Without it, the
    sweep is kept in memory. Returns a :class:`~sim.store.SweepResult` (``.to_frame()``,
    ``.body``).
    """
    model = _twin(twin)
    loaded = load_checked(model, scenario)
    if not isinstance(loaded, Experiment):
        raise SimError(f"twin {model.name}'s scenarios have no sweep: section to run")
    grid = check_grid(parameters or {})
    points = sweep_points(loaded.sweep, grid, int(getattr(loaded, "seed", 0)))
    problems = point_problems(model, loaded, points) if grid else []
    if problems:
        raise ScenarioError([Problem("parameters", None, path or "sweep", text) for path, text in problems])
    if not 1 <= replications <= MAX_REPLICATIONS:
        raise SimError(f"replications must be between 1 and {MAX_REPLICATIONS:,} (got {replications})")
    root = int(getattr(loaded, "seed", 0)) if seed is None else seed
    plan = plan_sweep(model, loaded, points, replication_seeds(root, replications))
    return run_sweep(
        plan,
        out,
        twin_name=_twin_name(twin),
        workers=workers,
        executor=executor,
        scheduler=scheduler,
        progress=progress,
    )


def report(
    scenarios: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str] = "reports",
    replications: int = 5,
    workers: int | None = None,
    twin: str | Twin | None = None,
) -> list[Path]:
    """Write the failure-mode reports of scenario files into ``out``, as ``hems-twin report``
    does (:func:`sim.report.build.build_reports`): per scenario a Markdown page and one
    self-contained HTML file with its figures, the index, the FMEA catalogue and the manifest.
    Each scenario runs every variant on ``replications`` seeds spawned from its own seed.
    Returns the files written."""
    from sim.report.build import build_reports  # matplotlib loads only when a report is drawn

    paths = [scenarios] if isinstance(scenarios, str | os.PathLike) else list(scenarios)
    return build_reports(_twin(twin), paths, out, replications=replications, workers=workers)
