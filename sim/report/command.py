"""``hems-twin report SCENARIO... [--out reports] [--replications N] [--workers K]``.

Runs each scenario (every variant on N seeds spawned from its own seed) and writes its report
pages, the index, the FMEA catalogue and the manifest into ``--out`` (:mod:`sim.report.build`).
Bad input -- a scenario that does not load, a count that is not a number, an output path that
is a file -- raises :class:`~sim.errors.SimError` or :class:`~sim.errors.ScenarioError` before
anything runs, which ``hems-twin`` prints as one message and exit code 2.

This module imports nothing heavy at load: :mod:`sim.cli` imports it to build its parser.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim.errors import SimError
from sim.replications import MAX_REPLICATIONS

if TYPE_CHECKING:
    from sim.twin import Twin

__all__ = ["DEFAULT_OUT", "MAX_REPORT_WORKERS", "add_report_parser", "report_command"]

DEFAULT_OUT = "reports"
MAX_REPORT_WORKERS = 1024
"""As ``--workers`` elsewhere: more local processes than this is a typo, not a machine."""


def add_report_parser(commands: Any) -> None:
    """Add the ``report`` command to ``hems-twin``'s subparsers."""
    report = commands.add_parser(
        "report",
        help="run scenarios and write their failure-mode reports (Markdown and self-contained HTML, figures, "
        "an index, the FMEA catalogue)",
        description="Run each scenario (every variant) on replications and write, into --out, a Markdown page "
        "and one self-contained HTML file per scenario with its figures, an index across them, the failure-mode "
        "catalogue failure-modes.md and manifest.json (each report's fingerprint, for the staleness check). "
        "The same inputs give the same bytes.",
        epilog="exit codes: 0 the reports were written, 2 bad input",
    )
    report.add_argument("scenarios", nargs="+", metavar="SCENARIO", help="scenario YAML files")
    report.add_argument(
        "--out",
        default=DEFAULT_OUT,
        help=f"report folder (default: {DEFAULT_OUT}); files an earlier build listed in its manifest and this one "
        "no longer makes are removed, nothing else",
    )
    report.add_argument(
        "--replications",
        default="5",
        metavar="N",
        help="seeds per scenario, spawned from its own seed, every variant on the same seeds (default 5)",
    )
    report.add_argument(
        "--workers",
        default=None,
        metavar="K",
        help="local processes running at once (default: one per CPU; 1 runs them here); reports do not depend on it",
    )


def _count(flag: str, text: str, low: int, high: int, why: str = "") -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise SimError(f"{flag} {text!r}: expected a whole number") from None
    if not low <= value <= high:
        raise SimError(f"{flag} {text}: expected {low} to {high:,}{why}")
    return value


def _out(text: str) -> Path:
    if not text.strip():
        raise SimError("--out must name a directory (got an empty string)")
    out = Path(text)
    if out.exists() and not out.is_dir():
        raise SimError(f"--out {out}: exists and is not a directory; choose another --out")
    return out


def report_command(twin: Twin, args: argparse.Namespace) -> int:
    """Run ``hems-twin report``; returns the exit code (bad input raises, for the CLI to report)."""
    from sim.report.build import build_reports

    replications = _count(
        "--replications", args.replications, 2, MAX_REPLICATIONS, " (a confidence interval needs at least 2)"
    )
    workers = None if args.workers is None else _count("--workers", args.workers, 1, MAX_REPORT_WORKERS)
    out = _out(args.out)
    written = build_reports(twin, args.scenarios, out, replications=replications, workers=workers)
    pages = sum(1 for path in written if path.suffix == ".html" and path.stem != "index")
    print(
        f"wrote {pages} report{'s' if pages != 1 else ''} ({len(written)} files) to {out}; open {out / 'index.html'}",
        file=sys.stdout,
    )
    return 0
