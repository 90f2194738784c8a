"""Sweeps: one scenario over a design of points in its config; each point x variant x replication is one run.

A scenario file says what to vary in a ``sweep:`` section::

    sweep:
      design: lhs                  # grid (the default), random or lhs
      samples: 20                  # random and lhs: how many points to draw
      parameters:
        workload.mobile_users: {low: 100, high: 2000, integer: true}
        faults.0.for: {low: 30, high: 600, log: true}
        device_manager.outbox: [false, true]

A *parameter* is a dotted path into the scenario as the file writes it: mapping keys, and
list items by index (``faults.0.for`` is the first fault's ``for``; the item must exist in
the file). A section the file leaves at its defaults can be named all the same
(``workload.mobile_users`` in a file without ``workload:``). ``seed``, ``variants``,
``expect`` and ``sweep`` describe the experiment, not the system, and cannot be swept.

Designs (:func:`design_points`):

* ``grid``: each parameter lists its values; every combination runs, in product order (the
  last parameter varies fastest).
* ``random``: ``samples`` independent draws.
* ``lhs``: a Latin hypercube (``scipy.stats.qmc.LatinHypercube``): each parameter's unit
  interval is cut into ``samples`` equal strata and every stratum holds exactly one point,
  so a handful of points covers every dimension evenly.

In random and lhs designs a range ``{low, high}`` draws uniformly (``log: true``:
log-uniformly; ``integer: true``: whole numbers from low to high inclusive, each as likely),
and a list of values draws one of them, each as likely. Draws come from the named stream
``sweep`` (:class:`sim.rng.RandomStreams`) of ``sweep.seed``, by default the scenario's own
seed, so a file always gives the same points.

On the command line, ``--param path=v1,v2,...`` (values read as YAML scalars) adds a grid
dimension (:func:`parse_param`); it is crossed with the file's design (every file point at
every ``--param`` value), and a path both in the file and in ``--param`` takes the
command line's values (the file's design is drawn without it).

A point applies like a variant's overlay (:func:`sim.variants.overlay`): the value replaces
what is at the path, a mapping merging into a mapping. Each variant then overlays the
point, so a variant that sets a swept path holds it fixed at every point. Every point, and
every variant at every point, is validated as a whole scenario through the twin's scenario
type and check (:func:`point_problems`) before anything runs; at load time when the file
has a ``sweep:`` section (``hems-twin validate`` checks every point too).

Every point runs on the same seeds, replication ``i`` on seed ``i`` spawned from the root
seed (:func:`sim.replications.replication_seeds`): common random numbers across points and
variants, so the difference between two points is the parameters', not the draws'.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
import yaml
from pydantic import AfterValidator, Discriminator, Field, Tag, ValidationError, model_validator

from sim.errors import ScenarioError, SimError
from sim.loader import load_scenario_text
from sim.results import package_version, scenario_hash
from sim.rng import RandomStreams
from sim.spec import Spec

if TYPE_CHECKING:
    from sim.twin import Twin
    from sim.variants import Experiment

__all__ = [
    "DESIGNS",
    "DESIGN_STREAM",
    "MAX_PARAMETERS",
    "MAX_POINTS",
    "TABLE_COLUMNS",
    "PlannedRun",
    "Range",
    "Sweep",
    "SweepPlan",
    "check_grid",
    "check_sweep",
    "design_points",
    "parse_param",
    "parse_path",
    "plan_sweep",
    "point_label",
    "point_problems",
    "run_key",
    "set_path",
    "sweep_points",
    "unit_sample",
]

DESIGNS = ("grid", "random", "lhs")
MAX_POINTS = 10_000
"""The most points one sweep may have (a grid's product, or ``samples``)."""
MAX_PARAMETERS = 32
"""The most parameters one sweep may vary."""
DESIGN_STREAM = "sweep"
"""The named random stream (of the design's seed) that random and lhs designs draw from."""

_SEGMENT = r"[A-Za-z0-9_][A-Za-z0-9_-]*"
_PATH = re.compile(rf"{_SEGMENT}(?:\.{_SEGMENT})*")
_NOT_SWEPT = {
    "seed": "the seed is not swept: replications give each point several seeds (--replications, --seed)",
    "variants": "variants describe the experiment, not the system, and cannot be swept",
    "expect": "expectations describe the experiment, not the system, and cannot be swept",
    "sweep": "the sweep cannot sweep itself",
}
TABLE_COLUMNS = frozenset({"point", "variant", "replication", "seed", "metric", "value"})
"""The results table's own columns; a parameter (a column too) may not take one of these names."""
_FIELD_PARTS = re.compile(r"[^.\[\]'\"]+")
_SLOW_CHECKS = 100  # points analysed for located messages; past that, failures are only counted
_MISSING = object()

# Problems found at points, grouped by (parameter or None, place): (first point, its message, points with it).
_Groups = dict[tuple[str | None, str], tuple[int, str, int]]


# -- the sweep: section ---------------------------------------------------------------------------


def parse_path(text: str) -> tuple[str, ...]:
    """The segments of a parameter path (``faults.0.for`` -> ``("faults", "0", "for")``).

    Raises ValueError saying what a path looks like, or why its first segment cannot be swept.
    """
    if not isinstance(text, str) or not _PATH.fullmatch(text):
        raise ValueError("expected a dotted path into the scenario such as workload.mobile_users or faults.0.for")
    parts = tuple(text.split("."))
    if parts[0] in _NOT_SWEPT:
        raise ValueError(_NOT_SWEPT[parts[0]])
    return parts


def _checked_path(text: str) -> str:
    parse_path(text)
    return text


def _finite(value: Any, where: str = "") -> None:
    """ValueError if ``value`` holds a float that is not finite (JSON and keys need finite numbers)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"values must be finite numbers{where} (got {value})")
    if isinstance(value, Mapping):
        for item in value.values():
            _finite(item, where)
    elif isinstance(value, list | tuple):
        for item in value:
            _finite(item, where)


def _canonical(value: Any) -> str:
    """One text per value, for keys and duplicate checks (``1`` and ``1.0`` and ``true`` differ)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False, default=str)


def _distinct(values: list[Any]) -> list[Any]:
    _finite(values)
    seen: set[str] = set()
    for value in values:
        text = _canonical(value)
        if text in seen:
            raise ValueError(f"the value {text} is listed twice")
        seen.add(text)
    return values


class Range(Spec):
    """An interval a random or lhs design draws a parameter from."""

    low: int | float = Field(description="smallest value")
    high: int | float = Field(description="largest value (integer ranges include it)")
    integer: bool = Field(default=False, description="draw whole numbers from low to high inclusive, each as likely")
    log: bool = Field(default=False, description="draw log-uniformly (low must be above 0): for scales such as rates")

    @model_validator(mode="after")
    def _consistent(self) -> Range:
        if not self.low < self.high:
            raise ValueError(
                f"low must be below high (got low {self.low}, high {self.high}); one value is a list: [{self.low}]"
            )
        if self.log and self.low <= 0:
            raise ValueError(f"a log range needs low above 0 (got {self.low})")
        if self.integer and not (isinstance(self.low, int) and isinstance(self.high, int)):
            raise ValueError(f"an integer range needs whole-number bounds (got low {self.low}, high {self.high})")
        return self

    def scale(self, unit: np.ndarray) -> list[Any]:
        """Draws in [0, 1) mapped onto the range, monotonically (so strata stay strata)."""
        if self.integer:
            low, stop = float(self.low), float(self.high) + 1.0  # whole numbers: floor over [low, high + 1)
            spread = (
                np.exp(np.log(low) + unit * (np.log(stop) - np.log(low))) if self.log else low + unit * (stop - low)
            )
            return [min(max(math.floor(v), int(self.low)), int(self.high)) for v in spread]
        low, high = float(self.low), float(self.high)
        values = np.exp(np.log(low) + unit * (np.log(high) - np.log(low))) if self.log else low + unit * (high - low)
        # Twelve significant digits (as results are rounded): the same text on every platform.
        return [min(max(float(f"{v:.12g}"), low), high) for v in values]


def _parameter_kind(value: Any) -> str | None:
    if isinstance(value, list):
        return "values"
    if isinstance(value, Mapping | Range):
        return "range"
    return None


Values = Annotated[list[Any], Field(min_length=1, max_length=MAX_POINTS), AfterValidator(_distinct)]
Parameter = Annotated[
    Annotated[Values, Tag("values")] | Annotated[Range, Tag("range")],
    Discriminator(
        _parameter_kind,
        custom_error_type="sweep_parameter",
        custom_error_message="expected a list of values or a range {low, high} (random and lhs designs)",
    ),
]


class Sweep(Spec):
    """What a sweep varies and how it picks the points; see the module docstring."""

    design: Literal["grid", "random", "lhs"] = Field(
        default="grid",
        description="grid: every combination of the listed values; random: independent draws; "
        "lhs: a Latin hypercube (each parameter's range cut into samples strata, one point in each)",
    )
    parameters: dict[Annotated[str, AfterValidator(_checked_path)], Parameter] = Field(
        min_length=1,
        max_length=MAX_PARAMETERS,
        description="dotted path into the scenario (workload.mobile_users, faults.0.for) -> a list of values, "
        "or for random and lhs designs a range {low, high, integer?, log?}",
    )
    samples: int | None = Field(
        default=None, ge=1, le=MAX_POINTS, description="random and lhs: how many points to draw"
    )
    seed: int | None = Field(
        default=None, ge=0, le=2**63 - 1, description="seed of the design's draws (default: the scenario's seed)"
    )

    @model_validator(mode="after")
    def _fits_design(self) -> Sweep:
        if self.design == "grid":
            ranges = [path for path, value in self.parameters.items() if isinstance(value, Range)]
            if ranges:
                raise ValueError(
                    f"a grid lists the values of each parameter; {ranges[0]} has a range "
                    "(list its values, or use design: random or lhs)"
                )
            if self.samples is not None:
                raise ValueError("samples is for random and lhs designs; a grid runs every combination of its values")
            size = math.prod(len(values) for values in self.parameters.values() if isinstance(values, list))
            if size > MAX_POINTS:
                raise ValueError(f"the grid has {size:,} points; at most {MAX_POINTS:,} (list fewer values)")
        elif self.samples is None:
            raise ValueError(f"a {self.design} design needs samples: how many points to draw")
        return self


# -- designs --------------------------------------------------------------------------------------


def unit_sample(design: str, samples: int, dimensions: int, seed: int) -> np.ndarray:
    """``samples`` x ``dimensions`` draws in [0, 1) for a random or lhs design, from the
    stream :data:`DESIGN_STREAM` of ``seed``."""
    rng = RandomStreams(seed).stream(DESIGN_STREAM)
    if design == "random":
        return rng.random((samples, dimensions))
    if design == "lhs":
        from scipy.stats import qmc  # scipy.stats takes most of a second to import; only lhs needs it

        return qmc.LatinHypercube(dimensions, rng=rng).random(samples)
    raise ValueError(f"no unit sample for design {design!r} (random or lhs)")


def _pick(values: list[Any], unit: np.ndarray) -> list[Any]:
    """A list's values drawn by ``unit`` in [0, 1): equal shares, so lhs strata spread evenly over them."""
    count = len(values)
    return [values[min(int(u * count), count - 1)] for u in unit]


def design_points(sweep: Sweep, scenario_seed: int) -> list[dict[str, Any]]:
    """The points of ``sweep``: one ``{path: value}`` per point, in the design's order.

    ``scenario_seed`` seeds random and lhs draws when the sweep gives no seed of its own.
    """
    names = list(sweep.parameters)
    if sweep.design == "grid":
        lists = [sweep.parameters[name] for name in names]
        return [dict(zip(names, combination, strict=True)) for combination in itertools.product(*lists)]
    assert sweep.samples is not None  # the model requires it
    seed = scenario_seed if sweep.seed is None else sweep.seed
    unit = unit_sample(sweep.design, sweep.samples, len(names), seed)
    columns = []
    for index, name in enumerate(names):
        parameter = sweep.parameters[name]
        column = unit[:, index]
        columns.append(parameter.scale(column) if isinstance(parameter, Range) else _pick(parameter, column))
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


def parse_param(text: str) -> tuple[str, list[Any]]:
    """``--param path=v1,v2,...`` as ``(path, values)``; each value is read as a YAML scalar.

    Raises SimError saying what is wrong and what was expected.
    """
    path, equals, rest = text.partition("=")
    path = path.strip()
    if not equals or not path or not rest.strip():
        raise SimError(f"--param {text}: expected PATH=V1,V2,... (e.g. --param workload.mobile_users=100,200)")
    try:
        parse_path(path)
    except ValueError as error:
        raise SimError(f"--param {text}: {error}") from None
    values: list[Any] = []
    for piece in rest.split(","):
        piece = piece.strip()
        if not piece:
            raise SimError(f"--param {text}: an empty value between commas")
        try:
            value = yaml.safe_load(piece)
        except yaml.YAMLError:
            raise SimError(f"--param {text}: cannot read {piece!r} as a YAML value") from None
        if not isinstance(value, str | int | float | bool | list | dict) and value is not None:
            value = piece  # a date or timestamp: kept as written, as scenario files keep them
        values.append(value)
    return path, check_grid({path: values}, f"--param {text}")[path]


def check_grid(parameters: Mapping[str, Any], what: str = "parameters") -> dict[str, list[Any]]:
    """``{path: values}`` checked as a grid: valid paths, each with a non-empty list of distinct
    finite values. Raises SimError naming ``what`` (where the grid came from) and the path."""
    grid: dict[str, list[Any]] = {}
    for path, values in parameters.items():
        try:
            parse_path(path)
            if isinstance(values, str | bytes | Mapping) or not isinstance(values, Sequence):
                raise ValueError(f"expected a list of values (got {_text(values)})")
            if not values:
                raise ValueError("expected at least one value")
            grid[path] = _distinct(list(values))
        except ValueError as error:
            raise SimError(f"{what}: {path}: {error}") from None
    return grid


def sweep_points(sweep: Sweep | None, grid: Mapping[str, Sequence[Any]], scenario_seed: int) -> list[dict[str, Any]]:
    """The file's design crossed with the command line's grid (``{path: values}``).

    A path in both takes the grid's values: the file's design is drawn without it. With
    neither, there is one point that changes nothing. Raises SimError past :data:`MAX_POINTS`.
    """
    from_file: list[dict[str, Any]] = [{}]
    if sweep is not None:
        kept = {path: value for path, value in sweep.parameters.items() if path not in grid}
        if kept:
            from_file = design_points(sweep.model_copy(update={"parameters": kept}), scenario_seed)
    size = len(from_file) * math.prod(len(values) for values in grid.values())
    if size > MAX_POINTS:
        raise SimError(f"the sweep has {size:,} points; at most {MAX_POINTS:,}")
    names = list(grid)
    combinations = [dict(zip(names, c, strict=True)) for c in itertools.product(*(list(grid[n]) for n in names))]
    return [{**point, **extra} for point in from_file for extra in combinations]


# -- paths into a scenario ------------------------------------------------------------------------


def set_path(data: Mapping[Any, Any], path: str, value: Any) -> dict[Any, Any]:
    """A copy of ``data`` with ``value`` at ``path`` (``data`` itself is not changed).

    Mappings on the way are created where the data has none (a section left at its
    defaults); list items must exist. At the end a mapping merges into a mapping, as
    overlays do; anything else replaces. Raises ValueError where the path cannot go.
    """
    result = _set(data, parse_path(path), 0, value)
    assert isinstance(result, dict)
    return result


def _set(node: Any, parts: tuple[str, ...], depth: int, value: Any) -> Any:
    from sim.variants import overlay  # sim.variants imports this module (the sweep: section)

    if depth == len(parts):
        return overlay(node, value) if isinstance(node, Mapping) and isinstance(value, Mapping) else value
    part, where = parts[depth], ".".join(parts[:depth])
    if isinstance(node, list | tuple):
        if not part.isdigit():
            raise ValueError(f"{where} is a list: name one of its items by index ({where}.0 is the first)")
        index = int(part)
        if index >= len(node):
            count = len(node)
            have = "no items" if count == 0 else "1 item (index 0)" if count == 1 else f"{count} items (0-{count - 1})"
            raise ValueError(f"{where} has {have} in this scenario: no item {index}")
        items = list(node)
        items[index] = _set(node[index], parts, depth + 1, value)
        return items
    if node is _MISSING or node is None:
        node = {}
    if not isinstance(node, Mapping):
        raise ValueError(f"{where} is {_text(node)}, not a section: nothing called {part!r} inside it")
    key: Any = int(part) if part.isdigit() and int(part) in node else part
    merged = dict(node)
    merged[key] = _set(node.get(key, _MISSING), parts, depth + 1, value)
    return merged


def _text(value: Any) -> str:
    """A value as a scenario file would write it (for messages and labels)."""
    if isinstance(value, str):
        return value
    return _canonical(value)


def point_label(point: Mapping[str, Any]) -> str:
    """``workload.mobile_users=100, fleet.meters=20`` (``nothing varied`` for the empty point)."""
    return ", ".join(f"{path}={_text(value)}" for path, value in point.items()) or "nothing varied"


# -- checking points ------------------------------------------------------------------------------


def _base(scenario: Experiment) -> dict[str, Any]:
    data: dict[str, Any] = scenario.model_dump(
        by_alias=True, exclude={"variants", "expect", "sweep"}, exclude_unset=True
    )
    return data


def _yaml_ready(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _yaml_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_yaml_ready(item) for item in value]
    return value


def _located(twin: Twin, data: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(field, message) for each problem of ``data`` as a whole scenario, worded as the loader words them."""
    text = yaml.safe_dump(_yaml_ready(data), sort_keys=False, allow_unicode=True)
    try:
        load_scenario_text(text, twin.scenario_type, filename="<point>", check=twin.check)
    except ScenarioError as error:
        return [(problem.field, problem.message) for problem in error.problems]
    return []


def _fails(twin: Twin, data: Mapping[str, Any]) -> bool:
    """Whether ``data`` is not a valid scenario (the fast test; :func:`_located` says why)."""
    try:
        built = twin.scenario_type.model_validate(data)
    except ValidationError:
        return True
    return bool(twin.check(built))


def _culprit(field: str, point: Mapping[str, Any]) -> str | None:
    """The parameter a problem at ``field`` is about: the one whose path leads to it (or below it)."""
    parts = _FIELD_PARTS.findall(field)
    if not parts:
        return None
    for path in point:
        segments = path.split(".")
        shorter = min(len(parts), len(segments))
        if parts[:shorter] == segments[:shorter]:
            return path
    return None


def point_problems(
    twin: Twin, scenario: Experiment, points: Sequence[Mapping[str, Any]]
) -> list[tuple[str | None, str]]:
    """What is wrong with ``points`` of ``scenario``, as ``(parameter or None, message)``.

    Each point is applied to the scenario and validated as a whole scenario, then each
    variant on top of it. Problems the scenario has without the point (reported when it was
    loaded) are left out. A problem found at several points is reported once, with how many
    points have it and the first of them.
    """
    from sim.variants import overlay  # sim.variants imports this module (the sweep: section)

    base = _base(scenario)
    variants: dict[str | None, Mapping[str, Any]] = {None: {}}
    variants.update(scenario.variants)
    known = {(name, *found) for name, changes in variants.items() for found in _failing(twin, overlay(base, changes))}
    groups: _Groups = {}
    analysed, unexplained = 0, 0
    for index, point in enumerate(points):
        data: dict[str, Any] = dict(base)
        broken = False
        for path, value in point.items():
            try:
                data = set_path(data, path, value)
            except ValueError as error:
                _group(groups, (path, f"path:{path}"), index, f"{path}: {error}")
                broken = True
        if broken:
            continue
        for name, changes in variants.items():  # the point alone first: if it fails, so do its variants
            full = overlay(data, changes)
            if not _fails(twin, full):
                continue
            if analysed >= _SLOW_CHECKS:
                unexplained += 1
                break
            analysed += 1
            prefix = "" if name is None else f"in variant {name!r}: "
            for field, message in _located(twin, full):
                if (name, field, message) in known:
                    continue
                parameter = _culprit(field, point)
                place = f"{name}:{field}:{message if parameter is None else ''}"
                _group(groups, (parameter, place), index, f"{prefix}{field + ': ' if field else ''}{message}")
            break
    total = len(points)
    problems = []
    for (parameter, _), (first, message, count) in groups.items():
        where = f"point {first} of {total}" if count == 1 else f"{count} of {total} points, first point {first}"
        shown = points[first] if parameter is None else {parameter: points[first][parameter]}
        problems.append((parameter, f"at {where} ({point_label(shown)}): {message}"))
    if unexplained:
        problems.append((None, f"and {unexplained} more point(s) are not valid scenarios (fix the above first)"))
    return problems


def _failing(twin: Twin, data: Mapping[str, Any]) -> list[tuple[str, str]]:
    return _located(twin, data) if _fails(twin, data) else []


def _group(groups: _Groups, key: tuple[str | None, str], index: int, message: str) -> None:
    first = groups.get(key)
    groups[key] = (index, message, 1) if first is None else (first[0], first[1], first[2] + 1)


def check_sweep(twin: Twin, scenario: Experiment) -> list[tuple[tuple[str | int, ...], str]]:
    """Load-time problems of the scenario's ``sweep:`` section, located at the parameter at fault."""
    if scenario.sweep is None:
        return []
    points = design_points(scenario.sweep, int(getattr(scenario, "seed", 0)))
    located: list[tuple[tuple[str | int, ...], str]] = []
    for parameter, message in point_problems(twin, scenario, points):
        located.append((("sweep", "parameters", parameter) if parameter else ("sweep",), message))
    return located


# -- the plan: every run, keyed ----------------------------------------------------------------------


def run_key(
    *,
    twin: str,
    scenario_hash: str,
    parameters: Mapping[str, Any],
    variant: str,
    replication: int,
    seed: int,
    version: str,
) -> str:
    """What identifies a finished run in a results store: canonical JSON of its coordinates.

    The scenario hash is that of the run's own scenario (point and variant applied), so a
    changed file, point or variant is a different run; the version makes a new release run
    everything again.
    """
    coordinates = {
        "parameters": dict(parameters),
        "replication": replication,
        "scenario_hash": scenario_hash,
        "seed": seed,
        "twin": twin,
        "variant": variant,
        "version": version,
    }
    return _canonical(coordinates)


@dataclass(frozen=True)
class PlannedRun:
    """One run of a sweep: where it sits in the table, what it runs, and its key."""

    point: int
    parameters: Mapping[str, Any]
    variant: str
    replication: int
    seed: int
    scenario: Mapping[str, Any]
    """the whole scenario as plain data: point and variant applied, no variants, expect or sweep"""
    scenario_hash: str
    key: str


@dataclass(frozen=True)
class SweepPlan:
    """Every run of a sweep, in table order: point, then variant (as declared), then replication."""

    scenario: str
    twin: str
    version: str
    parameters: tuple[str, ...]
    points: tuple[Mapping[str, Any], ...]
    variants: tuple[str, ...]
    seeds: tuple[int, ...]
    expectation_paths: tuple[str, ...]
    """result paths the scenario's expectations read: recorded with each run's figures"""
    runs: tuple[PlannedRun, ...]


def plan_sweep(
    twin: Twin, scenario: Experiment, points: Sequence[Mapping[str, Any]], seeds: Sequence[int]
) -> SweepPlan:
    """Every run of ``points`` x the scenario's variants x ``seeds``, each one's scenario and key.

    The points must be valid (:func:`point_problems` says what is wrong where): an invalid
    one raises here as a bug would, with pydantic's own message. A scenario without variants
    runs as one variant, ``as-written``.
    """
    # sim.variants imports this module (the sweep: section), and sim.replications imports sim.variants.
    from sim.replications import AS_WRITTEN, scenario_data
    from sim.variants import expectations_of, overlay

    clash = sorted(TABLE_COLUMNS.intersection(path for point in points for path in point))
    if clash:
        raise SimError(f"the parameter {clash[0]!r} would share its name with a column of the results table")
    base = _base(scenario)
    variants: dict[str, Mapping[str, Any]] = dict(scenario.variants) or {AS_WRITTEN: {}}
    version = package_version()
    parameters = tuple(dict.fromkeys(path for point in points for path in point))
    runs = []
    for index, point in enumerate(points):
        data: dict[str, Any] = dict(base)
        for path, value in point.items():
            data = set_path(data, path, value)
        for name, changes in variants.items():
            built = twin.scenario_type.model_validate(overlay(data, changes))
            whole, digest = scenario_data(built), scenario_hash(built)
            for replication, seed in enumerate(seeds):
                key = run_key(
                    twin=twin.name,
                    scenario_hash=digest,
                    parameters=point,
                    variant=name,
                    replication=replication,
                    seed=seed,
                    version=version,
                )
                runs.append(PlannedRun(index, dict(point), name, replication, seed, whole, digest, key))
    paths = tuple(dict.fromkeys(expectation.path for _, expectation in expectations_of(scenario)))
    return SweepPlan(
        scenario=str(getattr(scenario, "name", "?")),
        twin=twin.name,
        version=version,
        parameters=parameters,
        points=tuple(dict(point) for point in points),
        variants=tuple(variants),
        seeds=tuple(seeds),
        expectation_paths=paths,
        runs=tuple(runs),
    )
