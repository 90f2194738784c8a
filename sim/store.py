"""A sweep's results in a folder: each finished run recorded as it ends, and the tidy table.

What the folder holds:

* ``runs.jsonl`` -- one JSON line per finished run, appended and flushed to disk
  (``os.fsync``) the moment the run ends: its key (:func:`sim.sweep.run_key`: twin, the
  run's scenario hash, the point's parameters, variant, replication, seed, version), where
  it sits, whether its invariants held, and its figures (:func:`figures`). A sweep over the
  folder reads it first and runs only the runs whose keys are missing, so a sweep killed
  at any moment (even ``kill -9``) loses no finished run, and the same command finishes
  it. A last line cut short by the kill is removed and its run done again; any other line
  that cannot be read is skipped and counted. Records of other sweeps stay in the file and
  are reused wherever a key matches.
* ``results.parquet`` and ``results.csv`` -- the tidy table (:func:`tidy_frame`), written
  atomically at the end of every sweep over the folder (not while it runs).

The table has one row per run x metric: ``point``, one column per parameter (its value at
the point), ``variant``, ``replication``, ``seed``, ``metric`` (a figure's path, as
expectations name it) and ``value``. Rows are in plan order -- point, variant as declared,
replication -- then metric by name, and every value comes from ``runs.jsonl`` as read
back, so the files are byte-identical for the same inputs however the sweep was executed,
interrupted or resumed.

Only one sweep writes to a folder at a time: ``runs.jsonl`` is locked while it is open.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from sim.errors import SimError
from sim.executors import RunTask, execute
from sim.expectations import value_at
from sim.results import write_text_atomic
from sim.sweep import PlannedRun, SweepPlan

__all__ = [
    "ATTRS_KEY",
    "COMPONENT_FIGURES",
    "CSV_FILE",
    "PARQUET_FILE",
    "RUNS_FILE",
    "RunStore",
    "SweepResult",
    "about",
    "figures",
    "read_records",
    "record_of",
    "run_sweep",
    "summary_text",
    "tidy_frame",
    "write_tables",
]

RUNS_FILE = "runs.jsonl"
PARQUET_FILE = "results.parquet"
CSV_FILE = "results.csv"
DIGITS = 12
"""Figures keep twelve significant digits, as result files do."""
ATTRS_KEY = "hems_twin"
"""The key of a results table's description in ``DataFrame.attrs`` (kept in the Parquet file)."""
_SHOWN_POINTS = 40  # the summary's per-point table stops here; the files have every point
COMPONENT_FIGURES = (
    "utilisation",
    "mean_busy",
    "mean_queue_length",
    "wait_probability",
    "queue_wait_s.mean",
    "queue_wait_s.p95",
    "queued_at_end",
)
"""The queueing figures of each component (an actor's :meth:`sim.actor.Actor.stats`) a run's
figures keep, as ``components.<name>.<figure>``: what capacity analysis reads to say which
component saturates first as load rises. A component without a figure (a fleet of meters has
no workers) has no row for it."""


# -- figures ----------------------------------------------------------------------------------------


def _number(value: Any) -> int | float | None:
    """A figure as stored: ints as they are, floats to :data:`DIGITS` digits, non-finite as None."""
    if isinstance(value, float):
        return float(f"{value:.{DIGITS}g}") if math.isfinite(value) else None
    return value if isinstance(value, int) else None


def _is_figure(value: Any) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


_ABSENT = object()


def _inside(node: Any, dotted: str) -> Any:
    """The value at ``dotted`` keys inside ``node``, or :data:`_ABSENT` where there is none."""
    for key in dotted.split("."):
        if not isinstance(node, Mapping) or key not in node:
            return _ABSENT
        node = node[key]
    return node


def figures(result: Mapping[str, Any], paths: Iterable[str] = ()) -> dict[str, int | float | None]:
    """A run's figures by metric name, sorted: every number (or None standing for one) under
    ``flows``, named as expectations name it (``commands.orphaned``; ``flows.`` kept where
    the flow shares its name with a top-level key), each component's queueing figures
    (:data:`COMPONENT_FIGURES`: ``components.api-gateway.utilisation``), plus each of
    ``paths`` the result has."""
    found: dict[str, Any] = {}

    def walk(node: Any, name: str) -> None:
        if isinstance(node, Mapping):
            for key, child in node.items():
                walk(child, f"{name}.{key}")
        elif _is_figure(node):
            found[name] = node

    flows = result.get("flows")
    if isinstance(flows, Mapping):
        for flow, node in flows.items():
            walk(node, f"flows.{flow}" if flow in result else str(flow))
    components = result.get("components")
    if isinstance(components, Mapping):
        for component, stats in components.items():
            for figure in COMPONENT_FIGURES:
                value = _inside(stats, figure)
                if value is not _ABSENT and _is_figure(value):
                    found[f"components.{component}.{figure}"] = value
    for path in paths:
        try:
            value = value_at(result, path)
        except KeyError:  # a figure this point's system does not have (a replica it has not got)
            continue
        if _is_figure(value):
            found[path] = value
    return {name: _number(found[name]) for name in sorted(found)}


def record_of(run: PlannedRun, plan: SweepPlan, body: Mapping[str, Any]) -> dict[str, Any]:
    """The line ``runs.jsonl`` keeps for a finished run: its key and coordinates, and its figures."""
    return {
        "key": run.key,
        "scenario": plan.scenario,
        "scenario_hash": run.scenario_hash,
        "twin": plan.twin,
        "version": plan.version,
        "parameters": dict(run.parameters),
        "variant": run.variant,
        "replication": run.replication,
        "seed": run.seed,
        "invariants_held": bool(body.get("invariants_held", True)),
        "figures": figures(body, plan.expectation_paths),
    }


# -- runs.jsonl -------------------------------------------------------------------------------------


def _parse(data: bytes) -> tuple[dict[str, dict[str, Any]], int]:
    """Records by key from complete lines of ``runs.jsonl``, and how many lines were unreadable."""
    records: dict[str, dict[str, Any]] = {}
    unreadable = 0
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            unreadable += 1
            continue
        if not isinstance(record, dict) or not isinstance(record.get("key"), str):
            unreadable += 1
            continue
        records.setdefault(record["key"], record)  # the same run recorded twice: the same figures
    return records, unreadable


def read_records(folder: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """The records in ``folder``'s ``runs.jsonl`` by key (none if it has none), without
    locking or repairing it: for counting what an interrupted sweep finished."""
    try:
        data = (Path(folder) / RUNS_FILE).read_bytes()
    except FileNotFoundError:
        return {}
    complete = data.rfind(b"\n") + 1
    return _parse(data[:complete])[0]


def _lock(fd: int, path: Path) -> None:
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock; one sweep per folder is then up to the user
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise SimError(
            f"{path} is locked by another sweep writing to {path.parent}; wait for it or choose another --out"
        ) from None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class RunStore:
    """The finished runs of a folder's ``runs.jsonl`` (or only in memory, for ``folder=None``).

    Opening reads every record, removes a last line cut short, and locks the file; each
    :meth:`append` writes one line and flushes it to disk before returning. Use it as a
    context manager (or call :meth:`close`) so the lock is released.
    """

    def __init__(self, folder: str | os.PathLike[str] | None = None) -> None:
        self.folder = None if folder is None else Path(folder)
        self.records: dict[str, dict[str, Any]] = {}
        self.unreadable_lines = 0
        """lines of ``runs.jsonl`` that were not records (skipped, left in the file)"""
        self.repaired = False
        """whether a last line cut short was removed when the file was opened"""
        self._fd: int | None = None
        if self.folder is not None:
            self._open(self.folder)

    @property
    def path(self) -> Path | None:
        """``runs.jsonl`` (None for a store in memory)."""
        return None if self.folder is None else self.folder / RUNS_FILE

    def _open(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / RUNS_FILE
        created = not path.exists()
        flags = os.O_RDWR | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
        fd = os.open(path, flags, 0o666)
        try:
            _lock(fd, path)
            chunks = []
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
            data = b"".join(chunks)
            complete = data.rfind(b"\n") + 1
            if complete < len(data):  # killed mid-line: that run was not recorded
                os.ftruncate(fd, complete)
                os.fsync(fd)
                self.repaired = True
            self.records, self.unreadable_lines = _parse(data[:complete])
            if created:
                _sync_folder(folder)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def __contains__(self, key: object) -> bool:
        return key in self.records

    def append(self, record: Mapping[str, Any]) -> None:
        """Record a finished run: one line, on disk when this returns."""
        key = record["key"]
        if self.folder is not None:
            if self._fd is None:
                raise SimError(f"{self.path} is closed")
            line = json.dumps(record, sort_keys=True, separators=(",", ":"), allow_nan=False) + "\n"
            _write_all(self._fd, line.encode("utf-8"))
            os.fsync(self._fd)
        self.records.setdefault(key, json.loads(json.dumps(record)))  # as a rerun would read it back

    def close(self) -> None:
        """Release the file (and its lock)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _sync_folder(folder: Path) -> None:
    """Flush a folder's entries (a new file's name) to disk, where the platform allows it."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# -- the tidy table ---------------------------------------------------------------------------------


def _column(values: list[Any]) -> pd.Series:
    """A parameter's values as one typed column: bool, int, float or text; anything mixed as JSON text."""
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present) and len(present) == len(values):
        return pd.Series(values, dtype="bool")
    whole = all(isinstance(v, int) and not isinstance(v, bool) for v in present)
    if present and whole and len(present) == len(values):
        return pd.Series(values, dtype="int64")
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return pd.Series([math.nan if v is None else float(v) for v in values], dtype="float64")
    if all(isinstance(v, str) for v in present):
        return pd.Series(values, dtype="str")
    return pd.Series([None if v is None else json.dumps(v, sort_keys=True) for v in values], dtype="str")


def tidy_frame(plan: SweepPlan, records: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """One row per finished run of ``plan`` x metric (runs without a record are left out).

    Columns: ``point``, each parameter, ``variant``, ``replication``, ``seed``, ``metric``,
    ``value`` (float; NaN where the run has None). Rows in plan order, metrics by name.
    """
    points: list[int] = []
    variants: list[str] = []
    replications: list[int] = []
    seeds: list[int] = []
    metrics: list[str] = []
    values: list[float] = []
    for run in plan.runs:
        record = records.get(run.key)
        if record is None:
            continue
        found = record.get("figures") or {}
        for metric in sorted(found):
            value = found[metric]
            points.append(run.point)
            variants.append(run.variant)
            replications.append(run.replication)
            seeds.append(run.seed)
            metrics.append(metric)
            values.append(math.nan if value is None else float(value))
    columns: dict[str, pd.Series] = {"point": pd.Series(points, dtype="int64")}
    for parameter in plan.parameters:
        columns[parameter] = _column([plan.points[p].get(parameter) for p in points])
    columns["variant"] = pd.Series(variants, dtype="str")
    columns["replication"] = pd.Series(replications, dtype="int64")
    columns["seed"] = pd.Series(seeds, dtype="int64")
    columns["metric"] = pd.Series(metrics, dtype="str")
    columns["value"] = pd.Series(values, dtype="float64")
    return pd.DataFrame(columns)


def _replace_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Have ``write`` make a temporary file beside ``path``, flush it, rename it over ``path``."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        write(temporary)
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_tables(frame: pd.DataFrame, folder: str | os.PathLike[str], plan: SweepPlan) -> tuple[Path, Path]:
    """Write ``results.parquet`` and ``results.csv`` into ``folder``, each atomically.

    The Parquet file carries what the table is (scenario, twin, version, parameters, points,
    variants, seeds) as ``attrs["hems_twin"]`` (pandas keeps ``DataFrame.attrs`` in the
    file's metadata and gives them back on reading), so a table read on its own says what it is.
    """
    out = Path(folder)
    parquet, csv = out / PARQUET_FILE, out / CSV_FILE
    described = frame.copy(deep=False)
    described.attrs = {ATTRS_KEY: about(plan)}
    _replace_atomically(parquet, lambda path: described.to_parquet(path, engine="pyarrow", index=False))
    write_text_atomic(csv, frame.to_csv(index=False, lineterminator="\n"))
    return parquet, csv


def about(plan: SweepPlan) -> dict[str, Any]:
    """What a sweep's table is: scenario, twin, version, parameters, point count, variants, seeds."""
    return {
        "scenario": plan.scenario,
        "twin": plan.twin,
        "version": plan.version,
        "parameters": list(plan.parameters),
        "points": len(plan.points),
        "variants": list(plan.variants),
        "seeds": list(plan.seeds),
    }


# -- running what is missing ----------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class SweepResult:
    """What a sweep has: its plan, and the record of every finished run of it (by key).

    ``ran`` runs were done by this call and ``reused`` found already recorded; ``folder`` is
    where the files are (None for a sweep kept in memory).
    """

    plan: SweepPlan
    records: Mapping[str, Mapping[str, Any]]
    ran: int
    reused: int
    folder: Path | None = None

    def to_frame(self) -> pd.DataFrame:
        """The tidy table (:func:`tidy_frame`): one row per run x metric."""
        return tidy_frame(self.plan, self.records)

    @property
    def body(self) -> dict[str, Any]:
        """The sweep as plain, JSON-ready data: what it varied and each run's record, in plan order."""
        plan = self.plan
        return {
            "scenario": plan.scenario,
            "twin": plan.twin,
            "version": plan.version,
            "parameters": list(plan.parameters),
            "points": [dict(point) for point in plan.points],
            "variants": list(plan.variants),
            "seeds": list(plan.seeds),
            "runs": [dict(self.records[run.key]) for run in plan.runs if run.key in self.records],
        }

    @property
    def complete(self) -> bool:
        """Whether every run of the plan has a record."""
        return all(run.key in self.records for run in self.plan.runs)

    @property
    def invariants_held(self) -> bool:
        """Whether every recorded run's invariants held."""
        return all(record.get("invariants_held", True) for record in self.records.values())

    def __repr__(self) -> str:
        plan = self.plan
        size = f"{len(plan.points)} points x {len(plan.variants)} variants x {len(plan.seeds)} replications"
        recorded = sum(1 for run in plan.runs if run.key in self.records)
        where = f" in {self.folder}" if self.folder is not None else ""
        return f"<SweepResult {plan.scenario}: {size}, {recorded} of {len(plan.runs)} runs recorded{where}>"


def run_sweep(
    plan: SweepPlan,
    folder: str | os.PathLike[str] | None = None,
    *,
    twin_name: str | None = None,
    workers: int | None = None,
    executor: str = "local",
    scheduler: str | None = None,
    progress: bool | None = None,
) -> SweepResult:
    """Run the runs of ``plan`` that ``folder`` has no record of, recording each as it ends,
    then write the tables there. ``folder=None`` keeps everything in memory (nothing resumes).

    Runs go through :func:`sim.executors.execute` (``workers``, ``executor``, ``scheduler``,
    ``progress`` as there); runs with the same key (two equal points) run once. Interrupted
    (KeyboardInterrupt) or failed (:class:`~sim.executors.TaskError`), what finished stays
    recorded and the tables are not written.
    """
    with RunStore(folder) as store:
        missing: dict[str, PlannedRun] = {}
        for run in plan.runs:
            if run.key not in store:
                missing.setdefault(run.key, run)
        todo = list(missing.values())
        reused = len({run.key for run in plan.runs}) - len(todo)

        def recorded(index: int, body: dict[str, Any]) -> None:
            store.append(record_of(todo[index], plan, body))

        if todo:
            tasks = [RunTask(run.scenario, run.seed) for run in todo]
            execute(
                twin_name,
                tasks,
                workers=workers,
                executor=executor,
                scheduler=scheduler,
                progress=progress,
                on_result=recorded,
            )
        records = {run.key: store.records[run.key] for run in plan.runs if run.key in store.records}
    result = SweepResult(plan, records, len(todo), reused, None if folder is None else Path(folder))
    if folder is not None:
        write_tables(result.to_frame(), folder, plan)
    return result


# -- the summary --------------------------------------------------------------------------------------


def _figure(value: float) -> str:
    if math.isnan(value):
        return "-"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return _figure(value)
    return value if isinstance(value, str) else json.dumps(value)


def _figure_rows(result: SweepResult, frame: pd.DataFrame) -> Iterator[str]:
    """Per expectation path: its mean over replications at each point, one column per variant."""
    plan = result.plan
    shown = plan.points[:_SHOWN_POINTS]
    replicated = f" (mean of {len(plan.seeds)} replications)" if len(plan.seeds) > 1 else ""
    names = ["point", *plan.parameters]
    cells = [[str(index), *(_cell(point.get(name)) for name in plan.parameters)] for index, point in enumerate(shown)]
    widths = [max(len(name), *(len(row[column]) for row in cells)) for column, name in enumerate(names)]
    for path in plan.expectation_paths:
        rows = frame[frame["metric"] == path]
        if rows.empty:
            continue
        means = rows.groupby(["point", "variant"], sort=False)["value"].mean()
        figures = {
            (index, variant): _figure(float(means.get((index, variant), math.nan)))
            for index in range(len(shown))
            for variant in plan.variants
        }
        right = [max(len(v), *(len(figures[(i, v)]) for i in range(len(shown)))) for v in plan.variants]
        yield f"\n{path}{replicated}"
        header = [name.ljust(width) for name, width in zip(names, widths, strict=True)]
        header += [variant.rjust(width) for variant, width in zip(plan.variants, right, strict=True)]
        yield "  " + "  ".join(header).rstrip()
        for index, row in enumerate(cells):
            line = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
            line += [figures[(index, v)].rjust(width) for v, width in zip(plan.variants, right, strict=True)]
            yield "  " + "  ".join(line).rstrip()
        if len(plan.points) > _SHOWN_POINTS:
            yield f"  ... {len(plan.points) - _SHOWN_POINTS} more points in the files"


def summary_text(result: SweepResult) -> str:
    """What a sweep did and where its files are, and the figures its expectations read, per point."""
    plan = result.plan
    counts = [
        f"{len(plan.points)} point{'s' if len(plan.points) != 1 else ''}",
        f"{len(plan.variants)} variant{'s' if len(plan.variants) != 1 else ''}",
        f"{len(plan.seeds)} replication{'s' if len(plan.seeds) != 1 else ''}",
    ]
    lines = [f"sweep {plan.scenario}: {' x '.join(counts)} = {len(plan.runs)} runs"]
    if plan.parameters:
        lines.append(f"  varied: {', '.join(plan.parameters)}")
    where = f" (recorded in {result.folder / RUNS_FILE})" if result.folder is not None else ""
    lines.append(f"  ran {result.ran}, {result.reused} already done{where}")
    frame = result.to_frame()
    lines.extend(_figure_rows(result, frame))
    broken = sum(1 for record in result.records.values() if not record.get("invariants_held", True))
    if broken:
        lines.append(f"\ninvariants BROKEN in {broken} run{'s' if broken != 1 else ''} (invariants_held in runs.jsonl)")
    if result.folder is not None:
        files = f"{result.folder / PARQUET_FILE} and {result.folder / CSV_FILE}"
        lines.append(f"\nwrote {files} ({len(frame):,} rows: run x metric)")
    return "\n".join(lines)
