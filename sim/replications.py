"""Replications: a scenario run on many seeds, every figure with a confidence interval.

One run says what happened on one seed; a reader deciding whether a countermeasure works
needs to know how much of a difference is the countermeasure and how much the draw.
:func:`replicate` runs the scenario (every variant) ``N`` times and reports, per variant and
figure, the mean over the replications and its 95 % confidence interval, and for every
variant after the first the paired difference to the first with its interval.

Seeds.  Replication ``i`` runs on a seed spawned from the root seed with numpy's
``SeedSequence(root).spawn(N)``: the children are statistically independent streams however
close the root seeds of two experiments are, and the list depends on the root seed and ``N``
alone (:func:`replication_seeds`).  Within a replication every variant runs on the same seed
-- common random numbers: the same workload and fault draws wherever the variant changes
nothing -- so the difference between two variants is a paired comparison, measured on the
same draws, and its interval is usually far narrower than either variant's own.

Intervals (:mod:`sim.stats`).  Counts, means and rates get a Student-t interval; tail
figures (``p50``, ``p95``, ``p99``, ``max`` of a distribution), whose spread over seeds is
skewed, get a seeded BCa bootstrap interval of the same mean; indicators (a figure named
``..._within_claim``: 1 when a claim held on that run) get a Wilson interval of the share of
runs on which it held; differences get a t-interval on the per-replication differences.  Each
figure says which method it used, and how its values spread over the replications (min,
median, p95, max).

Steady state.  The result's per-interval series (``timeseries``) start from an empty
system; each replication's series is truncated where MSER-5 puts the end of the warm-up,
and the truncation point and the mean after it are reported with intervals over the
replications.  The body states the method.

Expectations are judged on every replication, and the body says on how many each held.

Nothing here depends on how the runs were executed: the runs are gathered in replication
and variant order (:func:`sim.executors.execute`), and every figure is computed from them
in that order, so the body is byte-identical whatever the executor and number of workers.
"""

from __future__ import annotations

import math
import statistics
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.errors import SimError
from sim.executors import RunTask, execute
from sim.expectations import evaluate, value_at
from sim.stats import (
    BOOTSTRAP_RESAMPLES,
    MSER_BATCH,
    Interval,
    bootstrap_ci,
    mean_ci,
    mser5,
    paired_difference_ci,
    proportion_ci,
    spread,
)
from sim.variants import Experiment, expectations_of, variant_scenarios

if TYPE_CHECKING:
    import pandas as pd

    from sim.twin import Twin

__all__ = [
    "AS_WRITTEN",
    "CONFIDENCE",
    "INDICATOR_SUFFIX",
    "MAX_REPLICATIONS",
    "PERCENTILE_KEYS",
    "Replications",
    "metric_paths",
    "replicate",
    "replication_seeds",
    "replications_text",
    "scenario_data",
]

CONFIDENCE = 0.95
"""The confidence level of every interval."""
MAX_REPLICATIONS = 10_000
"""A ceiling on replications, like the one on ``--seeds``."""
AS_WRITTEN = "as-written"
"""The variant name of a scenario that declares no variants."""
PERCENTILE_KEYS = frozenset({"p50", "p95", "p99", "max"})
"""Figures whose last key is one of these are order statistics: bootstrap intervals."""
INDICATOR_SUFFIX = "_within_claim"
"""Figures whose last key ends so are indicators (1 when a claim held on that run, else 0): their
mean over replications is the probability that the claim holds, with a Wilson interval."""

SEEDING = (
    "numpy.random.SeedSequence(root_seed).spawn(count): replication i runs on its child's first "
    "64-bit word shifted right by one bit; every variant of a replication runs on that seed "
    "(common random numbers)"
)
METHODS = {
    "t": "Student t interval of the mean over replications",
    "bootstrap": (
        f"BCa bootstrap interval of the mean over replications (scipy.stats.bootstrap, {BOOTSTRAP_RESAMPLES} "
        "resamples, seeded); used for percentiles and maxima, whose spread over seeds is skewed"
    ),
    "paired-t": "Student t interval of the per-replication differences to the first variant (same seeds)",
    "wilson": (
        f"Wilson score interval of a proportion; used for indicators (figures ending in {INDICATOR_SUFFIX!r}, "
        "1 when a claim held): the probability that the claim holds"
    ),
}
STEADY_STATE_METHOD = (
    f"MSER-5: each replication's series averaged in batches of {MSER_BATCH}; truncated at the batch d "
    "(searched over the first half) that minimises the squared standard error of the kept batch means; "
    "truncated_mean is the mean of the observations from there on"
)


def replication_seeds(root_seed: int, count: int) -> list[int]:
    """The seed of each of ``count`` replications, spawned from ``root_seed``.

    Each child of ``SeedSequence(root_seed)`` gives its first 64-bit word, shifted right by
    one bit so it is a non-negative 63-bit integer (what a scenario's seed may be).
    """
    if root_seed < 0:
        raise SimError(f"the root seed must not be negative (got {root_seed})")
    children = np.random.SeedSequence(root_seed).spawn(count)
    return [int(child.generate_state(1, dtype=np.uint64)[0]) >> 1 for child in children]


def scenario_data(scenario: Any) -> dict[str, Any]:
    """A scenario as the plain data a :class:`~sim.executors.RunTask` carries.

    Every field, defaults included (so nothing depends on which fields were set, or how),
    without ``variants`` and ``expect``; the twin's scenario type validates it back into an
    equal scenario.
    """
    exclude = {"variants", "expect"} if isinstance(scenario, Experiment) else None
    data: dict[str, Any] = scenario.model_dump(by_alias=True, exclude=exclude)
    return data


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _flow_leaves(flows: Mapping[str, Any], prefix: str) -> Iterator[str]:
    for key, value in flows.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            yield from _flow_leaves(value, path)
        elif value is None or _is_number(value):
            yield path


def metric_paths(results: Sequence[Mapping[str, Any]], expected: Sequence[str] = ()) -> list[str]:
    """The figures a replication summary covers, as paths :func:`~sim.expectations.value_at` reads.

    ``expected`` (the paths the expectations read) first, then every number (or None that
    stands for one) under each result's ``flows``, then each other top-level section's own
    headline numbers (those directly in it, such as ``durability.rpo_s`` or ``engine.events``;
    nested detail is left to the expectations), in the order first met.  A flow figure is
    named without the ``flows.`` prefix, as expectations name it.
    """
    found = dict.fromkeys(expected)
    for result in results:
        flows = result.get("flows")
        if isinstance(flows, Mapping):
            for path in _flow_leaves(flows, ""):
                found.setdefault(path if path.split(".", 1)[0] not in result else f"flows.{path}")
        for section, content in result.items():
            if section == "flows" or not isinstance(content, Mapping):
                continue
            for key, value in content.items():
                if value is None or _is_number(value):
                    found.setdefault(f"{section}.{key}")
    return list(found)


def _value(result: Mapping[str, Any], path: str) -> float | None:
    try:
        value = value_at(result, path)
    except KeyError:
        return None
    if not _is_number(value) or not math.isfinite(value):
        return None
    number: float = value  # an int stays an int: counts read as counts in the file
    return number


def _bootstrap_seed(root_seed: int, *names: str) -> int:
    """A seed for one figure's bootstrap: fixed by the root seed and the figure's name."""
    words = [root_seed, *(zlib.crc32(name.encode()) for name in names)]
    return int(np.random.SeedSequence(words).generate_state(1, dtype=np.uint64)[0] >> 1)


def _present(values: Sequence[float | None]) -> list[float]:
    return [v for v in values if v is not None]


def _interval(path: str, values: Sequence[float | None], seed: int, confidence: float) -> Interval:
    present = _present(values)
    if path.endswith(INDICATOR_SUFFIX) and all(v in (0, 1) for v in present):
        return proportion_ci(present, confidence)
    if path.rsplit(".", 1)[-1] in PERCENTILE_KEYS:
        return bootstrap_ci(_present(values), np.mean, confidence, seed)
    return mean_ci(_present(values), confidence)


def _pairs(a: Sequence[float | None], b: Sequence[float | None]) -> tuple[list[float], list[float]]:
    kept = [(x, y) for x, y in zip(a, b, strict=True) if x is not None and y is not None]
    return [x for x, _ in kept], [y for _, y in kept]


def _series(result: Mapping[str, Any], name: str) -> list[float] | None:
    """The series ``name`` of a result's ``timeseries``, or None if it has none of finite numbers."""
    series = result.get("timeseries")
    values = series.get(name) if isinstance(series, Mapping) else None
    if not isinstance(values, list) or not values:
        return None
    if not all(_is_number(v) and math.isfinite(v) for v in values):
        return None
    return [float(v) for v in values]


PER_INTERVAL_QUANTILE = "_p95_s"
"""Series named so hold each interval's p95 (``null`` where no sample fell): a mean of such
values is no steady-state p95, so MSER-5 is not run on them."""


def _steady_state(
    per_replication: Sequence[Mapping[str, Any]], confidence: float
) -> tuple[float | None, dict[str, Any]]:
    """MSER-5 per series and replication, summarised over the replications."""
    interval_s: float | None = None
    names: dict[str, None] = {}
    for result in per_replication:
        series = result.get("timeseries")
        if not isinstance(series, Mapping):
            continue
        if interval_s is None and _is_number(series.get("interval_s")):
            interval_s = float(series["interval_s"])
        for name, values in series.items():
            if isinstance(values, list) and not name.endswith(PER_INTERVAL_QUANTILE):
                names.setdefault(name)
    summary: dict[str, Any] = {}
    for name in names:
        truncations: list[int | None] = []
        means: list[float | None] = []
        whole: list[float | None] = []
        for result in per_replication:
            values = _series(result, name)
            if values is None:
                truncations.append(None)
                means.append(None)
                whole.append(None)
                continue
            warmup = mser5(values)
            truncations.append(warmup.truncation)
            means.append(warmup.mean)
            whole.append(float(np.mean(values)))
        entry: dict[str, Any] = {
            "truncation_points": truncations,
            "truncation": mean_ci(_present(truncations), confidence).as_dict(),
            "truncated_mean": {"values": means, **mean_ci(_present(means), confidence).as_dict()},
            "untruncated_mean": mean_ci(_present(whole), confidence).as_dict(),
        }
        if interval_s is not None:
            entry["truncation_s"] = mean_ci([t * interval_s for t in _present(truncations)], confidence).as_dict()
        summary[name] = entry
    return interval_s, summary


@dataclass(frozen=True)
class Replications:
    """What :func:`replicate` found.

    ``body`` is the JSON-ready summary (what ``result.json`` holds after its header);
    ``results[i][variant]`` is replication ``i``'s full result body of that variant.
    """

    body: dict[str, Any]
    seeds: tuple[int, ...]
    variants: tuple[str, ...]
    results: tuple[dict[str, dict[str, Any]], ...]

    def to_frame(self) -> pd.DataFrame:
        """Tidy: one row per replication x variant x metric (replication, seed, variant, metric, value).

        A figure a run does not have (or has as None) is NaN.
        """
        import pandas as pd

        rows = []
        for variant in self.variants:
            for metric, entry in self.body["variants"][variant]["metrics"].items():
                for replication, value in enumerate(entry["values"]):
                    rows.append((replication, self.seeds[replication], variant, metric, value))
        frame = pd.DataFrame(rows, columns=["replication", "seed", "variant", "metric", "value"])
        frame["value"] = frame["value"].astype("float64")
        return frame.sort_values(["replication", "variant", "metric"], kind="stable", ignore_index=True)

    def summary_frame(self) -> pd.DataFrame:
        """One row per variant x metric: mean, ci_low, ci_high, n, method, and the difference to the
        first variant (diff_mean, diff_ci_low, diff_ci_high; NaN for the first variant)."""
        import pandas as pd

        rows = []
        for variant in self.variants:
            entry = self.body["variants"][variant]
            differences = entry.get("difference_from_first", {})
            for metric, figure in entry["metrics"].items():
                difference = differences.get(metric, {})
                rows.append(
                    {
                        "variant": variant,
                        "metric": metric,
                        "mean": figure["mean"],
                        "ci_low": figure["ci_low"],
                        "ci_high": figure["ci_high"],
                        "n": figure["n"],
                        "method": figure["method"],
                        "diff_mean": difference.get("mean"),
                        "diff_ci_low": difference.get("ci_low"),
                        "diff_ci_high": difference.get("ci_high"),
                    }
                )
        frame = pd.DataFrame(rows)
        for column in ("mean", "ci_low", "ci_high", "diff_mean", "diff_ci_low", "diff_ci_high"):
            frame[column] = frame[column].astype("float64")
        return frame


def _variants_of(scenario: Any) -> dict[str, Any]:
    if isinstance(scenario, Experiment) and scenario.variants:
        return dict(variant_scenarios(scenario))
    return {AS_WRITTEN: scenario}


def replicate(
    twin: Twin,
    scenario: Any,
    replications: int,
    seed: int,
    *,
    workers: int | None = None,
    executor: str = "local",
    scheduler: str | None = None,
    progress: bool | None = None,
    on_run: Callable[[int, str, dict[str, Any]], None] | None = None,
    confidence: float = CONFIDENCE,
) -> Replications:
    """Run every variant of ``scenario`` on ``replications`` seeds spawned from ``seed``.

    The runs go through :func:`sim.executors.execute` (``workers``, ``executor``,
    ``scheduler`` and ``progress`` as there); workers load the twin by ``twin.name``, so
    ``twin`` must be an installed twin.  ``on_run(replication, variant, body)`` is called as
    each run finishes.  A scenario without variants runs as one variant, ``as-written``.
    """
    if not 2 <= replications <= MAX_REPLICATIONS:
        raise SimError(
            f"replications must be between 2 and {MAX_REPLICATIONS} (got {replications}): "
            "a confidence interval needs at least two"
        )
    seeds = replication_seeds(seed, replications)
    variants = _variants_of(scenario)
    names = list(variants)
    data = {name: scenario_data(variant) for name, variant in variants.items()}
    tasks = [RunTask(data[name], replication_seed) for replication_seed in seeds for name in names]

    def finished(index: int, body: dict[str, Any]) -> None:
        if on_run is not None:
            on_run(index // len(names), names[index % len(names)], body)

    bodies = execute(
        twin.name,
        tasks,
        workers=workers,
        executor=executor,
        scheduler=scheduler,
        progress=progress,
        on_result=finished,
    )
    results = tuple(
        {name: bodies[replication * len(names) + column] for column, name in enumerate(names)}
        for replication in range(replications)
    )
    body = _body(scenario, seed, seeds, names, results, confidence)
    return Replications(body, tuple(seeds), tuple(names), results)


def _body(
    scenario: Any,
    root_seed: int,
    seeds: Sequence[int],
    names: Sequence[str],
    results: Sequence[Mapping[str, Mapping[str, Any]]],
    confidence: float,
) -> dict[str, Any]:
    expectations = [e for _, e in expectations_of(scenario)] if isinstance(scenario, Experiment) else []
    paths = metric_paths([run[name] for run in results for name in names], [e.path for e in expectations])
    values = {name: {path: [_value(run[name], path) for run in results] for path in paths} for name in names}
    first = names[0]
    variants: dict[str, Any] = {}
    interval_s: float | None = None
    for name in names:
        metrics = {}
        for path in paths:
            interval = _interval(path, values[name][path], _bootstrap_seed(root_seed, name, path), confidence)
            metrics[path] = {
                "values": values[name][path],
                **interval.as_dict(),
                "spread": spread(_present(values[name][path])),
            }
        entry: dict[str, Any] = {"metrics": metrics}
        if name != first:
            entry["difference_from_first"] = {
                path: paired_difference_ci(*_pairs(values[name][path], values[first][path]), confidence).as_dict()
                for path in paths
            }
        step, entry["steady_state"] = _steady_state([run[name] for run in results], confidence)
        interval_s = interval_s if interval_s is not None else step
        entry["invariants_broken_on"] = [
            index for index, run in enumerate(results) if not run[name].get("invariants_held", True)
        ]
        variants[name] = entry
    judged = []
    for expectation in expectations:
        failed = [index for index, run in enumerate(results) if not evaluate(expectation, run).held]
        judged.append(
            {
                "variant": expectation.left,
                "expect": expectation.text,
                "held_on": len(results) - len(failed),
                "of": len(results),
                "failed_replications": failed,
            }
        )
    return {
        "replications": {
            "count": len(seeds),
            "root_seed": root_seed,
            "seeds": list(seeds),
            "seeding": SEEDING,
            "confidence": confidence,
            "methods": METHODS,
        },
        "first_variant": first,
        "variants": variants,
        "steady_state": {"method": STEADY_STATE_METHOD, "batch": MSER_BATCH, "interval_s": interval_s},
        "expectations": judged,
        "expectations_held": all(not e["failed_replications"] for e in judged),
        "invariants_held": all(not v["invariants_broken_on"] for v in variants.values()),
    }


# -- the summary ----------------------------------------------------------------------------------


def _figure(value: float | None) -> str:
    if value is None:
        return "-"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    if 1e3 <= abs(value) < 1e15:  # counts averaged over runs: whole units are precise enough
        return f"{value:.0f}"
    return f"{value:.4g}"


def _with_interval(entry: Mapping[str, Any]) -> str:
    if entry.get("mean") is None:
        return "n/a"
    if entry.get("ci_low") is None:
        return f"{_figure(entry['mean'])} (n={entry['n']}, no interval)"
    return f"{_figure(entry['mean'])} [{_figure(entry['ci_low'])}, {_figure(entry['ci_high'])}]"


def _constant(entries: Sequence[Mapping[str, Any]]) -> str | None:
    """The figure, if it is the same number in every replication of every variant."""
    means = {entry.get("mean") for entry in entries}
    if len(means) != 1 or None in means:
        return None
    if any(entry.get("ci_low") != entry.get("mean") or entry.get("ci_high") != entry.get("mean") for entry in entries):
        return None
    return _figure(next(iter(means)))


def _shown_paths(body: Mapping[str, Any], expected: Sequence[str]) -> list[str]:
    """Expectation paths, then each flow's own figures (no nested summaries), as ``run`` shows them."""
    first: Mapping[str, Any] = body["variants"][body["first_variant"]]["metrics"]
    rows = [p for p in expected if p in first]
    rows += [p for p in first if p.count(".") == 1 and not p.startswith("flows.")]
    return list(dict.fromkeys(rows))


def replications_text(body: Mapping[str, Any], expected: Sequence[str] = ()) -> str:
    """The readable summary: per figure and variant, mean [95 % CI] and the difference to the first.

    Shows the figures ``expected`` (the expectations' paths) and each flow's own figures; every
    figure is in ``body``.  A difference whose interval excludes zero is marked ``*``.
    """
    info = body["replications"]
    names = list(body["variants"])
    first = body["first_variant"]
    level = f"{100 * info['confidence']:g} %"
    lines = [
        f"{info['count']} replications, seeds spawned from root seed {info['root_seed']}"
        + (f"; {len(names)} variants, each on the same seeds" if len(names) > 1 else "")
    ]
    rows = _shown_paths(body, expected)
    width = max([len(r) for r in rows] + [6]) + 2
    name_width = max(len(n) for n in names) + 2
    cells = {(name, row): _with_interval(body["variants"][name]["metrics"][row]) for name in names for row in rows}
    value_width = max([len(c) for c in cells.values()] + [10]) + 2
    header = "figure".ljust(width) + "variant".ljust(name_width) + f"mean [{level} CI]".ljust(value_width)
    lines.append("")
    lines.append((header + (f"difference vs {first} [{level} CI]" if len(names) > 1 else "")).rstrip())
    for row in rows:
        constant = _constant([body["variants"][name]["metrics"][row] for name in names])
        if constant is not None:  # one line for a figure no seed or variant moved
            lines.append((row.ljust(width) + "all".ljust(name_width) + f"{constant} in every run").rstrip())
            continue
        for index, name in enumerate(names):
            line = (row if index == 0 else "").ljust(width) + name.ljust(name_width) + cells[(name, row)]
            if name != first:
                difference = body["variants"][name]["difference_from_first"][row]
                shown = _with_interval(difference)
                low, high = difference.get("ci_low"), difference.get("ci_high")
                significant = low is not None and high is not None and (low > 0 or high < 0)
                line = line.ljust(width + name_width + value_width) + shown + (" *" if significant else "")
            lines.append(line.rstrip())
    steady = body["steady_state"]
    series_rows = [
        (name, series, entry) for name in names for series, entry in body["variants"][name]["steady_state"].items()
    ]
    if series_rows:
        lines.append(
            f"\nsteady state (MSER-5 warm-up truncation of {steady['interval_s']:g} s intervals; "
            "warm-up: mean over replications (range))"
        )
        step = steady["interval_s"] or 1.0
        for name, series, entry in series_rows:
            points = [step * p for p in entry["truncation_points"] if p is not None]
            if not points:
                continue
            cut = f"{_figure(statistics.fmean(points))} s"
            if min(points) != max(points):
                cut += f" ({_figure(min(points))}-{_figure(max(points))})"
            lines.append(
                f"  {name:<{name_width}}{series:<32} warm-up {cut:<18} mean after "
                f"{_with_interval(entry['truncated_mean'])}"
            )
    if body["expectations"]:
        lines.append("\nexpectations")
        n = info["count"]
        for entry in body["expectations"]:
            failed = entry["failed_replications"]
            mark = "held  " if not failed else "FAILED"
            tail = f"   failed on replications {', '.join(map(str, failed[:20]))}" if failed else ""
            tail += " ..." if len(failed) > 20 else ""
            lines.append(f"  {mark} {entry['held_on']:>4}/{n} [{entry['variant']}] {entry['expect']}{tail}")
    broken = [
        f"{name} (replications {', '.join(map(str, body['variants'][name]['invariants_broken_on']))})"
        for name in names
        if body["variants"][name]["invariants_broken_on"]
    ]
    if broken:
        lines.append(f"\ninvariants BROKEN in: {'; '.join(broken)}")
    return "\n".join(lines)
