"""``hems-twin`` (also ``python -m sim``): run, validate, list and describe scenarios.

Commands::

    hems-twin run SCENARIO [--seed N] [--out DIR] [--json] [--force]
                  [--seeds LIST | --replications N [--workers K] [--executor local|dask] [--scheduler ADDR]]
    hems-twin check SCENARIO [SCENARIO ...] --baseline FILE [--update-baseline] [--replications N]
                    [--seed N] [--workers K] [--tolerance METRIC=VALUE ...] [--junit FILE] [--markdown FILE]
    hems-twin report SCENARIO [SCENARIO ...] [--out DIR] [--replications N] [--workers K]
    hems-twin export SCENARIO --format chrome|otlp|prometheus --out FILE [--variant V] [--seed N]
                     [--window START:END | --item KIND:STATE[:REASON]]
    hems-twin validate FILE [FILE ...]
    hems-twin list [DIR]
    hems-twin schema

Exit codes:

=====  =================================================================================
0      success
1      a run whose ledger invariants did not hold (the result is written); for ``check``, an
       SLO regression, a baseline that does not match the scenarios, or broken invariants
2      bad input: a scenario that cannot be loaded, a bad argument or output folder, or a
       run refused because its estimated cost does not fit this machine (``--force``)
3      a crash: an exception escaped the twin or this command -- a bug. One paragraph on
       stderr says what crashed and how to reproduce it; the full traceback is written to
       ``<out>/crash-traceback.txt`` (or a temporary file when there is no output folder)
130    interrupted (Ctrl-C): one line says how far the run got; no result is written
=====  =================================================================================

Bad input never shows a traceback: the message names the file, line and field, and what was
expected.

What ``run`` writes where: the result goes to ``<out>/result.json`` (``--out``, default
``out/<scenario name>``), atomically, replacing an earlier result (the output says so). The
summary goes to stdout; with ``--json`` the result JSON goes to stdout instead and the line
saying what was written goes to stderr, so stdout stays pure JSON. When a run is interrupted
or crashes, an earlier ``result.json`` in the folder is left as it was and the message says
it is from an earlier run. Before running, the twin's estimate of the run's cost is checked:
a run that would need more than 80 % of this machine's memory or more than 12 hours is
refused unless ``--force`` is given. On a terminal, a run taking more than about 2 s shows
a progress bar on stderr (simulated time, events per second, time left).

``--replications N`` runs every variant on N seeds spawned from ``--seed`` (the same seeds
for every variant) and reports each figure's mean with its 95 % confidence interval and each
variant's paired difference to the first (:mod:`sim.replications`); the runs go to local
processes (``--workers``, default one per CPU) or a Dask cluster (``--executor dask
--scheduler ADDR``), and the result is the same bytes however they ran.

``check`` is the CI gate (:mod:`sim.gate`): it replicates each scenario, compares every SLO's
SLI and budget consumed with the baseline file's, replication by replication on the same
seeds, and exits 1 on a regression that is both beyond its tolerance and significant;
``--update-baseline`` rewrites the file instead (exit 0).

``report`` writes failure-mode reports (:mod:`sim.report`): per scenario a Markdown page and
one self-contained HTML file with figures, an index, the FMEA catalogue and a manifest.
``export`` writes traces (Chrome trace-event or OTLP JSON) and Prometheus text
(:mod:`sim.exports`, :mod:`sim.tracing`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shlex
import shutil
import sys
import tempfile
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from sim import gate
from sim.compare import comparison_text, markdown_table, parse_seeds, run_compared, seeds_body, seeds_text
from sim.durations import format_duration
from sim.errors import Problem, ScenarioError, SimError
from sim.executors import EXECUTORS, TaskError, default_workers
from sim.exports.command import add_export_parser, export_command
from sim.loader import field_line, load_scenario_file
from sim.progress import RunProgress
from sim.replications import MAX_REPLICATIONS, replicate, replications_text
from sim.report.command import add_report_parser, report_command
from sim.results import RESULT_FILE, canonical_json, package_version, result_header, write_text_atomic
from sim.twin import Estimate, Twin, load_twin
from sim.variants import Experiment, check_variants, expectations_of

__all__ = [
    "CRASH_FILE",
    "EXIT_CRASH",
    "EXIT_INTERRUPTED",
    "EXIT_INVARIANT",
    "EXIT_OK",
    "EXIT_USAGE",
    "IN_FLIGHT_NOTE_SHARE",
    "MAX_MEMORY_SHARE",
    "MAX_SEED",
    "MAX_WALL_S",
    "MAX_WORKERS",
    "OUT_ROOT",
    "default_out",
    "entry",
    "load",
    "main",
    "run_scenario",
    "summary_text",
]

EXIT_OK, EXIT_INVARIANT, EXIT_USAGE, EXIT_CRASH, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

MAX_MEMORY_SHARE = 0.8
"""A run whose estimated peak memory exceeds this share of physical memory is refused."""
MAX_WALL_S = 12 * 3600.0
"""A run whose estimated wall time exceeds this is refused."""
MAX_SEED = 2**63 - 1
"""The largest seed, as in scenario files (a result's seed must stay an exact JSON integer in 64 bits)."""
MAX_WORKERS = 1024
"""A ceiling on ``--workers``: more local processes than this is a typo, not a machine."""
OUT_ROOT = Path("out")
"""Default output folders are ``out/<scenario name>``, relative to the current folder."""
CRASH_FILE = "crash-traceback.txt"
"""Where a crashed run's traceback goes, inside its output folder."""
IN_FLIGHT_NOTE_SHARE = 0.01
"""The summary explains items in flight at the end when they are at least this share."""

T = TypeVar("T")

# Where a result says its in-flight items are, by ledger kind: (path, what it means). The
# paths are the smart-home twin's; a result without them gets the general line only.
_IN_FLIGHT_PARTS: dict[str, tuple[tuple[tuple[str, ...], str], ...]] = {
    "readings": (
        (("flows", "sensor", "processed_awaiting_checkpoint"), "processed but after the stream's last checkpoint"),
        (("flows", "sensor", "unprocessed_in_stream"), "in the stream, not read yet"),
        (("components", "meters", "waiting_to_resend_at_end"), "in the meters' resend queue"),
    ),
    "commands": (
        (("components", "iot-core", "qos1_unacked_at_end"), "unacknowledged at the broker, which resends them"),
    ),
}
_IN_FLIGHT_REST = {"readings": "in transit", "commands": "awaiting a reply"}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse's default exits 2 too; keep its usage line
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="hems-twin",
        description="Reliability simulator and digital twin of a smart-home backend.",
        epilog="exit codes: 0 success, 1 invariants broke, 2 bad input or refused, 3 crash (a bug), 130 interrupted",
    )
    parser.add_argument("--twin", default=None, help="which installed twin to use (default: the only one)")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = commands.add_parser("run", help="simulate a scenario and write result.json")
    run.add_argument("scenario", help="path to a scenario YAML file")
    run.add_argument("--seed", type=int, default=None, help="random seed (default: the scenario's)")
    run.add_argument(
        "--out",
        default=None,
        help="output folder; an earlier result.json there is replaced (default: out/<scenario name>)",
    )
    run.add_argument(
        "--json",
        action="store_true",
        help="print the result JSON on stdout instead of a summary (the file is written too)",
    )
    run.add_argument(
        "--seeds",
        default=None,
        help="run on many seeds and count, per expectation, the seeds it held on: "
        "a count (20: the scenario's seed and the next 19), a range (1-20) or a list (3,5,8)",
    )
    run.add_argument(
        "--replications",
        default=None,
        metavar="N",
        help="run every variant on N seeds spawned from --seed (the same seeds for every variant) and report "
        "each figure's mean with its 95%% confidence interval, and each variant's difference to the first",
    )
    run.add_argument(
        "--workers",
        default=None,
        metavar="K",
        help="with --replications: local processes running replications at once (default: one per CPU; "
        "1 runs them one after another here); the result does not depend on it",
    )
    run.add_argument(
        "--executor",
        default=None,
        metavar="{local,dask}",
        help="with --replications: run on local processes (default) or on a Dask cluster (needs --scheduler)",
    )
    run.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDR",
        help="with --executor dask: the Dask scheduler's address, e.g. tcp://10.0.0.5:8786",
    )
    run.add_argument(
        "--force",
        action="store_true",
        help="run even if the estimate says it needs more than 80%% of this machine's memory or more than 12 h",
    )
    validate = commands.add_parser("validate", help="check scenario files without running them; print their estimates")
    validate.add_argument("files", nargs="+")
    listing = commands.add_parser("list", help="list scenarios with their descriptions")
    listing.add_argument(
        "directory",
        nargs="?",
        default=None,
        help="folder of *.yaml scenarios (default: the twin's own scenarios, else ./scenarios, else .)",
    )
    table = commands.add_parser(
        "table", help="run scenarios with variants on their own seeds; print a Markdown table of what they expect"
    )
    table.add_argument("files", nargs="+", help="scenario files with variants and expectations")
    _add_sweep_parser(commands)
    add_report_parser(commands)
    add_export_parser(commands)
    _add_check_parser(commands)
    commands.add_parser("schema", help="print the JSON Schema of the scenario format")
    return parser


def load(twin: Twin, path: str | Path) -> Any:
    """Load and fully check one scenario file: pydantic validation, the twin's checks, and
    (for scenarios with variants) each variant and each expectation."""

    def check(scenario: Any) -> list[tuple[tuple[str | int, ...], str]]:
        problems = list(twin.check(scenario))
        if isinstance(scenario, Experiment):
            problems += check_variants(twin, scenario)
        return problems

    return load_scenario_file(path, twin.scenario_type, check=check)


def run_scenario(
    twin: Twin, scenario: Any, seed: int, progress: Callable[[float, int], None] | None = None
) -> dict[str, Any]:
    """Header plus the twin's result body (``progress`` is passed on; it changes no figure)."""
    return {**result_header(scenario, seed, twin.name), **twin.run(scenario, seed, progress=progress)}


# -- the summary ------------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _at(data: Any, path: Sequence[str]) -> Any:
    for key in path:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def _in_flight_notes(result: dict[str, Any]) -> list[str]:
    """One line per ledger kind with a large share in flight at the end: where those items are."""
    notes = []
    for kind, entry in sorted((result.get("ledger") or {}).items()):
        entered = _at(entry, ("entered",))
        in_flight = _at(entry, ("states", "in_flight", "total"))
        if not isinstance(entered, int) or not isinstance(in_flight, int) or entered <= 0:
            continue
        if in_flight < max(1, IN_FLIGHT_NOTE_SHARE * entered):
            continue
        parts = []
        for path, meaning in _IN_FLIGHT_PARTS.get(kind, ()):
            count = _at(result, path)
            if isinstance(count, int) and count > 0:
                parts.append((count, meaning))
        rest = in_flight - sum(count for count, _ in parts)
        if rest > 0:
            parts.append((rest, _IN_FLIGHT_REST.get(kind, "in a queue, in transit or awaiting a reply")))
        where = ", ".join(f"{count:,} {meaning}" for count, meaning in parts) if rest >= 0 else ""
        share = f"{100 * in_flight / entered:.0f} %"
        line = f"  {kind}: {in_flight:,} of {entered:,} ({share}) in flight at the end -- not lost, not settled yet"
        notes.append(line + (f": {where}" if where else ""))
    return notes


def summary_text(result: dict[str, Any]) -> str:
    """A readable summary of a result: per-flow figures, what is in flight, then the invariants."""
    lines = [f"scenario {result['scenario']}  seed {result['seed']}  version {result['version']}"]
    for flow, figures in result.get("flows", {}).items():
        lines.append(f"\n{flow}")
        for key, value in figures.items():
            if isinstance(value, dict) and "p50" in value:
                if value.get("count"):
                    parts = "  ".join(f"{q} {_fmt(value[q])}" for q in ("p50", "p95", "p99", "max"))
                    lines.append(f"  {key:<30} n {value['count']}  {parts}")
            elif isinstance(value, (int, float, str)) or value is None:
                lines.append(f"  {key:<30} {_fmt(value)}")
            elif isinstance(value, dict) and value and all(isinstance(v, (int, float)) for v in value.values()):
                lines.append(f"  {key:<30} " + ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items()))
    if result.get("faults"):
        lines.append("\nfaults")
        for fault in result["faults"]:
            end = fault["end"]
            span = f"{_fmt(fault['start'])}s" + (f" -> {_fmt(end)}s" if end not in (None, fault["start"]) else "")
            lines.append(f"  {fault['kind']:<14} {fault['target']:<22} {span}")
    lines.extend(slo_lines(result))
    notes = _in_flight_notes(result)
    if notes:
        lines.append("\nin flight")
        lines.extend(notes)
    if result.get("warnings"):
        lines.append("\nwarnings")
        lines.extend(f"  {warning}" for warning in result["warnings"])
    lines.append("\ninvariants")
    for invariant in result.get("invariants", []):
        mark = "held  " if invariant["held"] else "BROKEN"
        lines.append(f"  {mark} {invariant['name']}: {invariant['detail']}")
    return "\n".join(lines)


def slo_lines(result: Mapping[str, Any]) -> list[str]:
    """The run's SLOs: each one's SLI against its objective and the budget consumed, then
    every alert rule with when it fired, its delay from the fault and the budget gone by then."""
    slos: Mapping[str, Any] = result.get("slos") or {}
    if not slos:
        return []
    lines = ["\nslos"]
    for name, slo in slos.items():
        lines.append(
            f"  {name:<28} objective {_fmt(slo['objective'])}  sli {_fmt(slo['sli'])}  "
            f"budget consumed {_percent(slo['budget_consumed'])}"
        )
        for rule, alert in slo["alerts"].items():
            if alert["fired_at_s"] is None:
                lines.append(f"    {rule:<12} never fired")
                continue
            delay = alert["detection_delay_s"]
            after = "" if delay is None else f", {_fmt(delay)} s after the fault"
            lines.append(
                f"    {rule:<12} fired at {_fmt(alert['fired_at_s'])} s{after}, "
                f"{_percent(alert['budget_consumed_at_fire'])} of the budget gone; "
                f"{alert['firings']} firing(s), {_fmt(alert['firing_s'])} s in all"
            )
    return lines


def _percent(fraction: float | None) -> str:
    return "-" if fraction is None else f"{100 * fraction:.3g} %"


# -- what a command is doing, for the crash and interrupt messages ------------------------------


class _Crash(Exception):
    """An exception escaped the twin (a bug): carries it to the one place crashes are reported."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def _twin_call(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call into the twin; whatever escapes it (even a SimError or OSError) is a crash."""
    try:
        return function(*args, **kwargs)
    except Exception as error:
        raise _Crash(error) from error


@dataclass
class _Session:
    """What the command is doing, as far as it got."""

    argv: list[str]
    command: str = ""
    """the command line that reproduces this run (filled in once it is known)"""
    scenario_file: str | None = None
    scenario_name: str | None = None
    seed: int | None = None
    out: Path | None = None
    earlier_result: Path | None = None
    """``result.json`` from an earlier run, found in the output folder before this one"""
    written: Path | None = None
    progress: RunProgress | None = None
    runs: tuple[int, int] | None = None
    """with --replications: (runs finished, runs in all)"""

    def reproduce(self) -> str:
        return self.command or shlex.join(["hems-twin", *self.argv])

    def earlier_note(self) -> str:
        if self.written is not None or self.earlier_result is None:
            return ""
        return f"{self.earlier_result} is from an earlier run, not this one"


def _one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _describe(error: BaseException) -> str:
    try:
        message = _one_line(str(error))
    except Exception:  # an exception whose str() fails is still reported
        message = "(its message cannot be printed)"
    return f"{type(error).__qualname__}: {message}" if message else type(error).__qualname__


def _crash_report_text(error: BaseException, session: _Session) -> str:
    lines = [
        "hems-twin crash report: please attach this file to the bug report.",
        "",
        f"command:        {session.reproduce()}",
        f"scenario file:  {session.scenario_file or '-'}",
        f"scenario name:  {session.scenario_name or '-'}",
        f"seed:           {session.seed if session.seed is not None else '-'}",
        f"hems-twin:      {package_version()}",
        f"python:         {platform.python_version()} ({platform.platform()})",
    ]
    if session.progress is not None:
        lines.append(f"simulated:      {session.progress.simulated_s:.1f} s of {session.progress.duration_s:g} s")
    lines += ["", "".join(traceback.format_exception(error)).rstrip()]
    text = "\n".join(lines) + "\n"
    return text.encode("utf-8", "backslashreplace").decode("utf-8")  # a message may hold lone surrogates


def _save_crash_report(text: str, session: _Session) -> tuple[Path | None, str]:
    """Write the crash report into the output folder, else a temporary file: (path, why not)."""
    reason = ""
    if session.out is not None:
        try:
            session.out.mkdir(parents=True, exist_ok=True)
            path = session.out / CRASH_FILE
            write_text_atomic(path, text)
            return path, ""
        except OSError as error:
            reason = error.strerror or str(error)
    try:
        fd, name = tempfile.mkstemp(prefix="hems-twin-crash-", suffix=".txt")
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
        return Path(name), ""
    except OSError as error:
        return None, reason or error.strerror or str(error)


def _report_crash(error: BaseException, session: _Session) -> int:
    """One paragraph on stderr; the traceback in a file. Returns :data:`EXIT_CRASH`."""
    if session.progress is not None:
        session.progress.close()
    text = _crash_report_text(error, session)
    path, reason = _save_crash_report(text, session)
    subject = ""
    if session.scenario_file is not None:
        running = session.progress is not None or session.runs is not None
        subject = f" while {'running' if running else 'reading'} {session.scenario_file}"
        if session.scenario_name is not None:
            subject += f" (scenario {session.scenario_name}, seed {session.seed})"
    paragraph = [f"hems-twin: crash: {_describe(error)}{subject}."]
    paragraph.append("This is a bug in hems-twin or its twin, not a problem with your input.")
    paragraph.append(f"Reproduce it with `{session.reproduce()}`.")
    if session.written is not None:
        paragraph.append(f"({session.written} was written before the crash.)")
    elif session.earlier_note():
        paragraph.append(f"No result was written; {session.earlier_note()}.")
    if path is not None:
        paragraph.append(f"The full traceback is in {path}; please report it with that file.")
        print(" ".join(paragraph), file=sys.stderr)
    else:  # nowhere to save it: the terminal is the last place left
        paragraph.append(f"The traceback could not be saved ({reason}); please report it with the text below.")
        print(" ".join(paragraph) + "\n\n" + text, file=sys.stderr)
    return EXIT_CRASH


def _report_interrupt(session: _Session) -> int:
    """One line on stderr. Returns :data:`EXIT_INTERRUPTED`."""
    if session.progress is not None:
        session.progress.close()
    if session.written is not None:
        line = f"hems-twin: interrupted; {session.written} was written before that"
    elif session.runs is not None:
        line = f"hems-twin: interrupted after {session.runs[0]} of {session.runs[1]} runs; no result written"
    elif session.progress is not None:
        reached, total = session.progress.simulated_s, session.progress.duration_s
        line = f"hems-twin: interrupted at simulated {reached:.1f} s of {total:g} s; no result written"
    else:
        line = "hems-twin: interrupted; nothing written"
    note = session.earlier_note()
    print(line + (f" ({note})" if note else ""), file=sys.stderr)
    return EXIT_INTERRUPTED


# -- run ----------------------------------------------------------------------------------------


def default_out(name: str) -> Path:
    """``out/<name>``, refused (SimError) unless it is a folder directly inside ``out/``.

    Scenario names are slugs when they load, but the folder is checked here too: a name with
    ``/``, ``..`` or a drive, or a link inside ``out/`` that points elsewhere, must never
    make a run write outside ``out/``.
    """
    candidate = OUT_ROOT / name
    separators = {"/", "\\", "\0", os.sep, os.altsep or "/"}
    ok = (
        bool(name)
        and name not in (".", "..")
        and not any(s in name for s in separators)
        and candidate.parent == OUT_ROOT
        and not Path(name).drive
    )
    if ok:
        try:
            root = OUT_ROOT.resolve()
            resolved = candidate.resolve()
            ok = resolved.parent == root
        except (OSError, RuntimeError, ValueError):  # a link loop, an unreadable folder
            ok = False
    if not ok:
        raise SimError(
            f"the scenario name {name!r} does not name a folder inside {OUT_ROOT}/, the default output "
            f"folder; give the scenario a plain name or pass --out DIR"
        )
    return candidate


def _physical_memory() -> int | None:
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # not on this platform
        return None
    return pages * page_size if pages > 0 and page_size > 0 else None


def _bytes_text(size: float) -> str:
    if size < 2**30:
        return f"{size / 2**20:.0f} MiB"
    if size < 2**40:
        return f"{size / 2**30:.1f} GiB"
    return f"{size / 2**40:,.1f} TiB"


def _wall_text(seconds: float) -> str:
    if seconds < 1:
        return "under a second"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.3g} h"
    return f"{seconds / 86400:,.1f} days"


def _estimate(twin: Twin, scenario: Any) -> Estimate | None:
    estimate = getattr(twin, "estimate", None)
    return None if estimate is None else _twin_call(estimate, scenario)


def _too_big(estimate: Estimate) -> list[str]:
    """Why a run with this estimate does not fit this machine (empty: it fits)."""
    reasons = []
    memory = _physical_memory()
    if memory is not None and estimate.memory_bytes > MAX_MEMORY_SHARE * memory:
        reasons.append(
            f"about {_bytes_text(estimate.memory_bytes)} of memory (more than {MAX_MEMORY_SHARE:.0%} "
            f"of this machine's {_bytes_text(memory)})"
        )
    if estimate.wall_s > MAX_WALL_S:
        reasons.append(f"about {_wall_text(estimate.wall_s)} (more than {_wall_text(MAX_WALL_S)})")
    return reasons


def _refuse_if_too_big(twin: Twin, scenario: Any, path: str, force: bool) -> None:
    estimate = _estimate(twin, scenario)
    if estimate is None or force:
        return
    reasons = _too_big(estimate)
    if not reasons:
        return
    duration = getattr(scenario, "duration", None)
    shorter = f", or shorten duration (now {format_duration(duration)})" if isinstance(duration, float) else ""
    message = (
        f"this run would need {' and '.join(reasons)}; {estimate.driver} drives the cost: change it{shorter}; "
        "--force runs it anyway"
    )
    raise ScenarioError([Problem(path, field_line(path, estimate.driver), estimate.driver, message)])


def _prepare_out(out: Path, given: bool) -> None:
    """Create the output folder and make sure a file can be written there, before the run."""
    label = f"--out {out}" if given else str(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".hems-twin-probe-{secrets.token_hex(6)}"
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        probe.unlink()
    except OSError as error:
        what = "create the output directory" if not out.is_dir() else "write to the output directory"
        raise SimError(f"{label}: cannot {what} ({error.strerror or error})") from None
    result = out / RESULT_FILE
    if result.exists() and not result.is_file():
        raise SimError(f"{label}: {result} exists and is not a file; move it away or choose another --out")


@dataclass(frozen=True)
class _Replicating:
    """The ``--replications`` options, checked."""

    count: int
    workers: int | None
    executor: str
    scheduler: str | None


def _count_option(flag: str, text: str, low: int, high: int, why: str) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise SimError(f"{flag} {text!r}: expected a whole number") from None
    if not low <= value <= high:
        raise SimError(f"{flag} {text}: expected {low} to {high:,}{why}")
    return value


def _replicating(args: argparse.Namespace) -> _Replicating | None:
    """The replication options, or None without ``--replications``; SimError names a bad one."""
    extras = [flag for flag, value in (("--workers", args.workers), ("--executor", args.executor)) if value]
    extras += ["--scheduler"] if args.scheduler is not None else []
    if args.replications is None:
        if extras:
            raise SimError(f"{extras[0]} applies to replicated runs only: add --replications N")
        return None
    if args.seeds is not None:
        raise SimError(
            "--replications and --seeds cannot be combined: --seeds runs on the seeds you list, "
            "--replications spawns its own from --seed; choose one"
        )
    count = _count_option(
        "--replications", args.replications, 2, MAX_REPLICATIONS, " (a confidence interval needs at least 2)"
    )
    workers = None if args.workers is None else _count_option("--workers", args.workers, 1, MAX_WORKERS, "")
    executor = "local" if args.executor is None else args.executor.strip()
    if executor not in EXECUTORS:
        raise SimError(f"--executor {args.executor!r}: expected one of {', '.join(EXECUTORS)}")
    scheduler = None if args.scheduler is None else args.scheduler.strip()
    if executor == "dask" and not scheduler:
        raise SimError(
            "--executor dask needs --scheduler ADDR, the address of a running Dask scheduler "
            "(e.g. tcp://127.0.0.1:8786)"
        )
    if executor != "dask" and scheduler is not None:
        raise SimError("--scheduler is only used with --executor dask")
    if executor == "dask" and workers is not None:
        raise SimError(
            "--workers sets local processes; with --executor dask the cluster's workers run the replications"
        )
    return _Replicating(count, workers, executor, scheduler)


def _fitting_workers(twin: Twin, scenario: Any, wanted: int, force: bool) -> int:
    """``wanted`` local workers, fewer if that many runs at once would not fit in memory.

    The single-run check refuses a run that alone does not fit; parallel runs multiply the
    memory, so the pool shrinks instead (the result does not depend on the worker count).
    """
    estimate = _estimate(twin, scenario)
    memory = _physical_memory()
    if estimate is None or memory is None or force or estimate.memory_bytes <= 0:
        return wanted
    fitting = max(1, int(MAX_MEMORY_SHARE * memory // estimate.memory_bytes))
    if fitting < wanted:
        print(
            f"hems-twin: running {fitting} replication{'s' if fitting > 1 else ''} at a time, not {wanted}: "
            f"each needs about {_bytes_text(estimate.memory_bytes)} of this machine's {_bytes_text(memory)}",
            file=sys.stderr,
        )
    return min(wanted, fitting)


def _run(twin: Twin, args: argparse.Namespace, session: _Session) -> int:
    session.scenario_file = args.scenario
    replicating = _replicating(args)
    scenario = load(twin, args.scenario)
    session.scenario_name = getattr(scenario, "name", None)
    seed = scenario.seed if args.seed is None else args.seed
    if not 0 <= seed <= MAX_SEED:
        raise SimError(f"--seed must be between 0 and {MAX_SEED} (got {seed})")
    if args.out is not None and not args.out.strip():
        raise SimError("--out must name a directory (got an empty string)")
    out = Path(args.out) if args.out is not None else default_out(scenario.name)
    session.seed, session.out = seed, out
    command = ["hems-twin", *(["--twin", args.twin] if args.twin else []), "run", args.scenario]
    if args.seeds is not None:
        command += ["--seeds", args.seeds]
    if replicating is not None:  # one process: the traceback of a failing run is this process's own
        command += ["--replications", str(replicating.count), "--workers", "1"]
    session.command = shlex.join(
        [*command, "--seed", str(seed), "--out", str(out), *(["--force"] if args.force else [])]
    )
    _refuse_if_too_big(twin, scenario, args.scenario, args.force)
    _prepare_out(out, given=args.out is not None)
    path = out / RESULT_FILE
    session.earlier_result = path if path.exists() else None
    seeds = None if args.seeds is None else parse_seeds(args.seeds)
    if seeds is not None and args.seeds.strip().isdigit():
        seeds = [seed + offset for offset in seeds]
    if seeds is not None and any(not 0 <= s <= MAX_SEED for s in seeds):
        raise SimError(f"--seeds: every seed must be between 0 and {MAX_SEED}")
    compared = isinstance(scenario, Experiment) and (bool(scenario.variants) or seeds is not None)
    if compared and not scenario.variants:
        scenario = scenario.model_copy(update={"variants": {"as-written": {}}})
    if replicating is not None:
        body = _replications_body(twin, scenario, seed, replicating, args.force, session)
    elif compared:
        body = _run_body(twin, scenario, seed, seeds, session)
    else:
        body = _run_one(twin, scenario, seed, session)
    result = {**result_header(scenario, seed, twin.name), **body}
    text = canonical_json(result)
    try:
        write_text_atomic(path, text)
    except OSError as error:
        raise SimError(f"cannot write {path} ({error.strerror or error}); the run's result is lost") from None
    session.written = path
    replaced = " (replaced the earlier result)" if session.earlier_result is not None else ""
    if args.json:
        sys.stdout.write(text)
        sys.stdout.flush()
        print(f"hems-twin: wrote {path}{replaced}; the same JSON is on stdout", file=sys.stderr)
    elif replicating is not None:
        print(replications_text(result, _expected_paths(scenario)))
        print(f"\nwrote {path}{replaced}")
    elif seeds is not None:
        print(seeds_text(result))
        print(f"\nwrote {path}{replaced}")
    elif compared:
        print(comparison_text(result, scenario))
        for name, variant in result["variants"].items():
            slos = slo_lines(variant)
            if slos:
                print(f"{slos[0]} [{name}]", *slos[1:], sep="\n")
        print(f"\nwrote {path}{replaced}")
    else:
        print(summary_text(result))
        print(f"\nwrote {path}{replaced}")
    held = result.get("invariants_held", True) and result.get("expectations_held", True)
    return EXIT_OK if held else EXIT_INVARIANT


def _run_one(twin: Twin, scenario: Any, seed: int, session: _Session) -> dict[str, Any]:
    with RunProgress(scenario.duration) as progress:
        session.progress = progress
        body: dict[str, Any] = _twin_call(twin.run, scenario, seed, progress=progress)
    return body


def _expected_paths(scenario: Any) -> list[str]:
    return [e.path for _, e in expectations_of(scenario)] if isinstance(scenario, Experiment) else []


def _replications_body(
    twin: Twin, scenario: Any, seed: int, options: _Replicating, force: bool, session: _Session
) -> dict[str, Any]:
    """Every variant on each replication's seed, summarised with confidence intervals."""
    variants = max(1, len(getattr(scenario, "variants", None) or {}))
    total = options.count * variants
    workers = options.workers
    if options.executor == "local":
        workers = _fitting_workers(twin, scenario, min(workers or default_workers(), total), force)
    session.runs = (0, total)

    def finished(_replication: int, _variant: str, _body: dict[str, Any]) -> None:
        done, of = session.runs or (0, total)
        session.runs = (done + 1, of)

    try:
        replicated = replicate(
            twin,
            scenario,
            options.count,
            seed,
            workers=workers,
            executor=options.executor,
            scheduler=options.scheduler,
            on_run=finished,
        )
    except TaskError as error:  # a run raised: a crash, reported with the run it was
        session.seed = error.seed
        raise _Crash(error) from error
    return replicated.body


def _run_body(twin: Twin, scenario: Any, seed: int, seeds: list[int] | None, session: _Session) -> dict[str, Any]:
    """Every variant on ``seed``, or on each of ``seeds`` (then the per-seed verdicts)."""
    runs = len(scenario.variants) * (1 if seeds is None else len(seeds))
    with RunProgress(scenario.duration * runs) as progress:
        session.progress = progress
        done = 0.0

        def slice_of(_variant: str) -> Callable[[float, int], None]:
            nonlocal done
            start, done = done, done + scenario.duration
            return lambda now, events: progress(start + now, events)

        if seeds is None:
            compared: dict[str, Any] = _twin_call(run_compared, twin, scenario, seed, slice_of)
            return compared
        per_seed = {s: _twin_call(run_compared, twin, scenario, s, slice_of) for s in seeds}
    return seeds_body(per_seed)


# -- validate, list, schema ------------------------------------------------------------------


def _validate(twin: Twin, args: argparse.Namespace, session: _Session) -> int:
    failed = False
    for file in args.files:
        session.scenario_file = file
        try:
            scenario = load(twin, file)
        except ScenarioError as error:
            failed = True
            print(error, file=sys.stderr)
            continue
        details = [str(scenario.name)]
        estimate = _estimate(twin, scenario)
        if estimate is not None:
            details.append(f"about {_wall_text(estimate.wall_s)}, {_bytes_text(estimate.memory_bytes)}")
            if _too_big(estimate):
                details.append(f"too big for this machine: run needs --force ({estimate.driver} drives the cost)")
        print(f"ok  {file}  ({'; '.join(details)})")
    return EXIT_USAGE if failed else EXIT_OK


def _scenario_dir(twin: Twin, given: str | None) -> Path:
    """The folder ``list`` reads: as given, else the twin's own, else ./scenarios, else ."""
    if given is not None:
        directory = Path(given)
        if not directory.is_dir():
            raise SimError(f"{directory}: no such scenario directory")
        return directory
    own = getattr(twin, "scenarios_dir", None)
    if own is not None and Path(own).is_dir():
        return Path(own)
    local = Path("scenarios")
    return local if local.is_dir() else Path(".")


def _table(twin: Twin, args: argparse.Namespace, session: _Session) -> int:
    """Each scenario's variants on its own seed, as a Markdown table; exit 1 if any expectation failed."""
    scenarios: dict[str, Any] = {}
    for file in args.files:
        scenario: Any = load(twin, file)
        if not getattr(scenario, "variants", None):
            raise SimError(f"{file}: has no variants to compare")
        scenarios[scenario.name] = scenario
    compared = {}
    for name, scenario in scenarios.items():
        session.scenario_file, session.scenario_name, session.seed = None, name, scenario.seed
        compared[name] = (scenario, _twin_call(run_compared, twin, scenario, scenario.seed))
    print(markdown_table(compared))
    return EXIT_OK if all(body["expectations_held"] for _, body in compared.values()) else EXIT_INVARIANT


# -- sweep --------------------------------------------------------------------------------------


def _add_sweep_parser(commands: Any) -> None:
    sweep = commands.add_parser(
        "sweep",
        help="run a scenario over a design of config values x variants x replications; "
        "resumable, results as a tidy table (Parquet and CSV)",
        description="Run every point of the scenario's sweep: section (and of --param grids, crossed with it) "
        "with every variant and replication. Each finished run is recorded in <out>/runs.jsonl as it ends; "
        "the same command again runs only what is missing, then writes results.parquet and results.csv.",
    )
    sweep.add_argument("scenario", help="path to a scenario YAML file")
    sweep.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="PATH=V1,V2,...",
        help="a grid over a config path (values read as YAML scalars), e.g. workload.mobile_users=100,200; "
        "repeatable; crossed with the file's sweep: section, whose own values for the same path it replaces",
    )
    sweep.add_argument(
        "--replications", default="1", metavar="N", help="seeds per point and variant, spawned from --seed (default 1)"
    )
    sweep.add_argument("--seed", type=int, default=None, help="root seed of the replications (default: the scenario's)")
    sweep.add_argument(
        "--workers",
        default=None,
        metavar="K",
        help="local processes running at once (default: one per CPU; 1 runs them here); results do not depend on it",
    )
    sweep.add_argument("--executor", default="local", metavar="{local,dask}", help="local processes or a Dask cluster")
    sweep.add_argument("--scheduler", default=None, metavar="ADDR", help="with --executor dask: the scheduler address")
    sweep.add_argument("--out", default=None, help="results folder (default: out/<scenario name>-sweep)")
    sweep.add_argument(
        "--force", action="store_true", help="run even points estimated too big for this machine (as run --force)"
    )


def _refuse_big_points(twin: Twin, plan: Any, force: bool) -> None:
    """Refuse a sweep one of whose runs is estimated not to fit this machine (as ``run`` does)."""
    from sim.sweep import point_label

    checked: set[str] = set()
    for planned in plan.runs:
        if force or planned.scenario_hash in checked:
            continue
        checked.add(planned.scenario_hash)
        estimate = _estimate(twin, twin.scenario_type.model_validate(planned.scenario))
        reasons = [] if estimate is None else _too_big(estimate)
        if estimate is not None and reasons:
            raise SimError(
                f"point {planned.point} ({point_label(planned.parameters)}), variant {planned.variant}: a run would "
                f"need {' and '.join(reasons)}; {estimate.driver} drives the cost; --force runs it anyway"
            )


def _sweep(twin: Twin, args: argparse.Namespace, session: _Session) -> int:
    """Run a scenario's sweep into a results folder, skipping the runs it already holds."""
    from sim import store, sweep  # pandas and pyarrow load only when a sweep runs
    from sim.replications import replication_seeds

    session.scenario_file = args.scenario
    scenario = load(twin, args.scenario)
    name, own_seed = str(scenario.name), int(scenario.seed)
    if not isinstance(scenario, Experiment):
        raise SimError(f"{args.scenario}: this twin's scenarios have no sweep: section or variants to run")
    session.scenario_name = name
    grid: dict[str, list[Any]] = {}
    for text in args.param:
        path, values = sweep.parse_param(text)
        if path in grid:
            raise SimError(f"--param {path} is given twice: list all its values in one (--param {path}=V1,V2,...)")
        grid[path] = values
    replications = _count_option("--replications", args.replications, 1, MAX_REPLICATIONS, "")
    workers = None if args.workers is None else _count_option("--workers", args.workers, 1, MAX_WORKERS, "")
    if args.executor not in EXECUTORS:
        raise SimError(f"--executor {args.executor!r}: expected one of {', '.join(EXECUTORS)}")
    if (args.executor == "dask") != (args.scheduler is not None):
        raise SimError("--executor dask needs --scheduler ADDR, and --scheduler is only used with --executor dask")
    seed = own_seed if args.seed is None else args.seed
    if not 0 <= seed <= MAX_SEED:
        raise SimError(f"--seed must be between 0 and {MAX_SEED} (got {seed})")
    if args.out is not None and not args.out.strip():
        raise SimError("--out must name a directory (got an empty string)")
    points = sweep.sweep_points(scenario.sweep, grid, own_seed)
    problems = sweep.point_problems(twin, scenario, points) if grid else []  # the file's own: checked by load
    if problems:
        raise ScenarioError(
            [Problem("--param" if p in grid else args.scenario, None, p or "sweep", m) for p, m in problems]
        )
    plan = sweep.plan_sweep(twin, scenario, points, replication_seeds(seed, replications))
    out = Path(args.out) if args.out is not None else default_out(f"{name}-sweep")
    session.seed, session.out = seed, out
    command = ["hems-twin", *(["--twin", args.twin] if args.twin else []), "sweep", args.scenario]
    command += [f"--param={text}" for text in args.param] + ["--replications", str(replications)]
    command += ["--seed", str(seed), "--out", str(out), *(["--force"] if args.force else [])]
    session.command = shlex.join(command)
    _refuse_big_points(twin, plan, args.force)
    _prepare_out(out, given=args.out is not None)
    session.scenario_file = None  # a crash from here on is in a run, which the message names
    try:
        result = store.run_sweep(
            plan, out, twin_name=args.twin, workers=workers, executor=args.executor, scheduler=args.scheduler
        )
    except KeyboardInterrupt:
        recorded = store.read_records(out)
        done = len({planned.key for planned in plan.runs if planned.key in recorded})
        print(
            f"hems-twin: interrupted; {done} of {len(plan.runs)} runs are recorded in {out / store.RUNS_FILE} "
            "(the same command runs the rest); no table written",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    print(store.summary_text(result))
    return EXIT_OK if result.invariants_held else EXIT_INVARIANT


# -- check (the CI gate) ---------------------------------------------------------------------------


def _add_check_parser(commands: Any) -> None:
    check = commands.add_parser(
        "check",
        help="the CI gate: replicate scenarios and compare their SLOs with a baseline file; exit 1 on a regression",
        description="Run each scenario (every variant) on replications and compare each SLO's SLI and budget "
        "consumed with the baseline file, replication by replication on the same seeds. A metric regresses when "
        "it is worse by more than its tolerance and the 95 % interval of the paired differences excludes zero "
        "on the worse side. A scenario without slos: is gated on the twin's default SLOs its traffic supports.",
        epilog="exit codes: 0 no regression (or the baseline was updated), 1 a regression, a baseline that does not "
        "match the scenarios (seeds, replications, changed scenario: update it) or broken invariants, 2 bad input",
    )
    check.add_argument("scenarios", nargs="+", metavar="SCENARIO", help="scenario YAML files to gate")
    check.add_argument("--baseline", required=True, metavar="FILE", help="the baseline JSON file")
    check.add_argument(
        "--update-baseline",
        action="store_true",
        help="write the baseline from this run (other scenarios in the file are kept) and exit 0",
    )
    check.add_argument(
        "--replications",
        default=None,
        metavar="N",
        help=f"replications per scenario (default: the baseline's, else {gate.DEFAULT_REPLICATIONS})",
    )
    check.add_argument(
        "--seed", type=int, default=None, help="root seed of every scenario's replications (default: its own seed)"
    )
    check.add_argument(
        "--workers", default=None, metavar="K", help="local processes running at once (default: one per CPU)"
    )
    check.add_argument(
        "--tolerance",
        action="append",
        default=[],
        metavar="METRIC=VALUE",
        help="how much worse a metric may get: METRIC is sli, budget_consumed, slos.<slo>.sli or "
        "slos.<slo>.budget_consumed, optionally after '<scenario>:'; VALUE is absolute (0.001) or relative to the "
        "baseline mean (5%%); repeatable; stored in the baseline with --update-baseline",
    )
    check.add_argument("--junit", default=None, metavar="FILE", help="write JUnit XML here")
    check.add_argument("--markdown", default=None, metavar="FILE", help="write a Markdown summary here")
    check.add_argument(
        "--force", action="store_true", help="run even scenarios estimated too big for this machine (as run --force)"
    )


def _prepare_file(flag: str, given: str | None) -> Path | None:
    """The output file of ``flag``, its folder created and checked writable before anything runs."""
    if given is None:
        return None
    if not given.strip():
        raise SimError(f"{flag} must name a file (got an empty string)")
    path = Path(given)
    if path.is_dir():
        raise SimError(f"{flag} {path}: is a directory, expected a file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        probe = path.parent / f".hems-twin-probe-{secrets.token_hex(6)}"
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        probe.unlink()
    except OSError as error:
        raise SimError(f"{flag} {path}: cannot write there ({error.strerror or error})") from None
    return path


def _check(twin: Twin, args: argparse.Namespace, session: _Session) -> int:
    """Gate scenarios against a baseline file (:mod:`sim.gate`); exit 1 on a regression."""
    replications = (
        None
        if args.replications is None
        else _count_option(
            "--replications", args.replications, 2, MAX_REPLICATIONS, " (a confidence interval needs at least 2)"
        )
    )
    workers = None if args.workers is None else _count_option("--workers", args.workers, 1, MAX_WORKERS, "")
    if args.seed is not None and not 0 <= args.seed <= MAX_SEED:
        raise SimError(f"--seed must be between 0 and {MAX_SEED} (got {args.seed})")
    tolerances = gate.parse_tolerances(args.tolerance)
    if not args.baseline.strip():
        raise SimError("--baseline must name a file (got an empty string)")
    baseline_path = Path(args.baseline)
    if baseline_path.is_dir():
        raise SimError(f"--baseline {baseline_path}: is a directory, expected a JSON file")
    baseline = None
    if not args.update_baseline or baseline_path.exists():
        baseline = gate.read_baseline(baseline_path)
    plans: list[gate.GatePlan] = []
    for file in args.scenarios:
        session.scenario_file = file
        scenario = load(twin, file)
        name = str(scenario.name)
        if any(plan.name == name for plan in plans):
            raise SimError(f"{file}: another file given is also scenario {name!r}; scenario names must differ")
        stored = baseline.scenarios.get(name) if baseline is not None else None
        count = replications or (stored.replications if stored is not None else gate.DEFAULT_REPLICATIONS)
        plan = gate.plan_scenario(twin, scenario, file, root_seed=args.seed, replications=count)
        for variant in plan.variants.values():
            _refuse_if_too_big(twin, variant, file, args.force)
        plans.append(plan)
    gate.check_tolerance_names(tolerances, plans)
    junit = _prepare_file("--junit", args.junit)
    markdown = _prepare_file("--markdown", args.markdown)
    session.scenario_file = None  # a crash from here on is in a run, which the message names
    total = sum(plan.replications * len(plan.variants) for plan in plans)
    biggest = max(
        (variant for plan in plans for variant in plan.variants.values()),
        key=lambda variant: getattr(_estimate(twin, variant), "memory_bytes", 0.0),
    )
    workers = _fitting_workers(twin, biggest, min(workers or default_workers(), total), args.force)
    command = ["hems-twin", *(["--twin", args.twin] if args.twin else []), "check", *args.scenarios]
    command += ["--baseline", args.baseline, *(["--update-baseline"] if args.update_baseline else [])]
    session.command = shlex.join([*command, "--workers", "1"])  # one process: the failing run's own traceback
    session.runs = (0, total)

    def finished() -> None:
        done, of = session.runs or (0, total)
        session.runs = (done + 1, of)

    try:
        measured = gate.run_plans(twin, plans, workers=workers, on_run=finished)
    except TaskError as error:  # a run raised: a crash, reported with the run it was
        session.scenario_name, session.seed = error.scenario_name, error.seed
        raise _Crash(error) from error
    report = gate.compare(plans, measured, baseline, tolerances, updated=args.update_baseline)
    for path, text in ((junit, gate.junit_xml(report)), (markdown, gate.markdown_summary(report))):
        if path is not None:
            try:
                write_text_atomic(path, text)
            except OSError as error:
                raise SimError(f"cannot write {path} ({error.strerror or error})") from None
    print(gate.summary_text(report))
    if args.update_baseline:
        gate.write_baseline(baseline_path, gate.updated_baseline(measured, baseline, tolerances))
        print(f"wrote {baseline_path} ({len(measured)} scenario{'s' if len(measured) != 1 else ''} updated)")
        return EXIT_OK
    written = [str(path) for path in (junit, markdown) if path is not None]
    if written:
        print(f"wrote {' and '.join(written)}")
    return EXIT_INVARIANT if report.failed else EXIT_OK


def _list(twin: Twin, args: argparse.Namespace, session: _Session) -> int:
    directory = _scenario_dir(twin, args.directory)
    paths = sorted(directory.glob("*.yaml"))
    if not paths:
        print(f"hems-twin: no scenarios (*.yaml) in {directory}", file=sys.stderr)
        return EXIT_OK
    width = max(len(path.name) for path in paths)
    columns = shutil.get_terminal_size().columns if _is_terminal(sys.stdout) else None
    for path in paths:
        session.scenario_file = str(path)
        try:
            scenario = load(twin, path)
        except ScenarioError as error:
            text = f"INVALID: {error.problems[0]}"
        else:
            text = str(scenario.description)
        line = f"{path.name:<{width}}  {_one_line(text, limit=10_000)}"
        if columns is not None and len(line) > columns:
            line = line[: max(width + 5, columns - 3)] + "..."
        print(line)
    return EXIT_OK


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _schema(twin: Twin) -> int:
    schema = twin.scenario_type.model_json_schema(by_alias=True)
    # Strict JSON: an infinity in the schema is a bug to fix, never "Infinity" in the output.
    sys.stdout.write(json.dumps(schema, indent=2, sort_keys=True, allow_nan=False) + "\n")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hems-twin`` command; returns the exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(arguments)
    session = _Session(argv=arguments)
    try:
        twin = load_twin(args.twin)
        if args.command == "run":
            return _run(twin, args, session)
        if args.command == "validate":
            return _validate(twin, args, session)
        if args.command == "list":
            return _list(twin, args, session)
        if args.command == "table":
            return _table(twin, args, session)
        if args.command == "sweep":
            return _sweep(twin, args, session)
        if args.command == "check":
            return _check(twin, args, session)
        if args.command == "report":
            return report_command(twin, args)
        if args.command == "export":
            return export_command(twin, args)
        return _schema(twin)
    except KeyboardInterrupt:
        return _report_interrupt(session)
    except _Crash as crash:
        return _report_crash(crash.error, session)
    except ScenarioError as error:
        print(error, file=sys.stderr)
        return EXIT_USAGE
    except SimError as error:
        print(f"hems-twin: {error}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as error:
        print(f"hems-twin: {error}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as error:  # a bug in this command itself: reported like one in the twin
        return _report_crash(error, session)


def entry() -> None:
    """Console-script wrapper: exit with :func:`main`'s code."""
    sys.exit(main())
