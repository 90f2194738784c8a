"""``hems-twin`` (also ``python -m sim``): run, validate, list and describe scenarios.

Commands::

    hems-twin run SCENARIO [--seed N] [--out DIR] [--json]
    hems-twin validate FILE [FILE ...]
    hems-twin list [DIR]
    hems-twin schema

Exit codes: 0 success, 1 a run whose invariants did not hold, 2 bad input (a scenario
that cannot be loaded, a bad argument).  Bad input never shows a traceback: the message
names the file, line and field, and what was expected.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from sim.errors import ScenarioError, SimError
from sim.loader import load_scenario_file
from sim.results import canonical_json, result_header, write_result
from sim.twin import Twin, load_twin

__all__ = ["main"]

EXIT_OK, EXIT_INVARIANT, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse's default exits 2 too; keep its usage line
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hems-twin", description="Reliability simulator and digital twin of a smart-home backend.")
    parser.add_argument("--twin", default=None, help="which installed twin to use (default: the only one)")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = commands.add_parser("run", help="simulate a scenario and write result.json")
    run.add_argument("scenario", help="path to a scenario YAML file")
    run.add_argument("--seed", type=int, default=None, help="random seed (default: the scenario's)")
    run.add_argument("--out", default=None, help="output directory (default: out/<scenario name>)")
    run.add_argument("--json", action="store_true", help="print the result JSON on stdout instead of a summary")
    validate = commands.add_parser("validate", help="check scenario files without running them")
    validate.add_argument("files", nargs="+")
    listing = commands.add_parser("list", help="list scenarios with their descriptions")
    listing.add_argument("directory", nargs="?", default="scenarios")
    commands.add_parser("schema", help="print the JSON Schema of the scenario format")
    return parser


def load(twin: Twin, path: str | Path) -> Any:
    """Load and fully check one scenario file (pydantic validation plus the twin's checks)."""
    return load_scenario_file(path, twin.scenario_type, check=twin.check)


def run_scenario(twin: Twin, scenario: Any, seed: int) -> dict[str, Any]:
    """Header plus the twin's result body."""
    return {**result_header(scenario, seed, twin.name), **twin.run(scenario, seed)}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def summary_text(result: dict[str, Any]) -> str:
    """A readable summary of a result: per-flow figures, then the invariants."""
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
    lines.append("\ninvariants")
    for invariant in result.get("invariants", []):
        mark = "held  " if invariant["held"] else "BROKEN"
        lines.append(f"  {mark} {invariant['name']}: {invariant['detail']}")
    return "\n".join(lines)


def _run(twin: Twin, args: argparse.Namespace) -> int:
    scenario = load(twin, args.scenario)
    seed = scenario.seed if args.seed is None else args.seed
    if seed < 0:
        raise SimError(f"--seed must be >= 0 (got {seed})")
    if args.out is not None and not args.out.strip():
        raise SimError("--out must name a directory (got an empty string)")
    out = Path(args.out) if args.out is not None else Path("out") / scenario.name
    try:  # before the run, so a bad --out does not waste it
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SimError(f"--out {out}: cannot create the output directory ({error.strerror})") from None
    result = run_scenario(twin, scenario, seed)
    path = write_result(result, out)
    if args.json:
        sys.stdout.write(canonical_json(result))
    else:
        print(summary_text(result))
        print(f"\nwrote {path}")
    return EXIT_OK if result.get("invariants_held", True) else EXIT_INVARIANT


def _validate(twin: Twin, args: argparse.Namespace) -> int:
    failed = False
    for file in args.files:
        try:
            scenario = load(twin, file)
        except ScenarioError as error:
            failed = True
            print(error, file=sys.stderr)
        else:
            print(f"ok  {file}  ({scenario.name})")
    return EXIT_USAGE if failed else EXIT_OK


def _list(twin: Twin, args: argparse.Namespace) -> int:
    directory = Path(args.directory)
    if not directory.is_dir():
        raise SimError(f"{directory}: no such scenario directory")
    for path in sorted(directory.glob("*.yaml")):
        try:
            scenario = load(twin, path)
        except ScenarioError as error:
            print(f"{path.name:<28} INVALID: {error.problems[0]}")
        else:
            print(f"{path.name:<28} {scenario.description}")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hems-twin`` command; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        twin = load_twin(args.twin)
        if args.command == "run":
            return _run(twin, args)
        if args.command == "validate":
            return _validate(twin, args)
        if args.command == "list":
            return _list(twin, args)
        schema = twin.scenario_type.model_json_schema(by_alias=True)
        sys.stdout.write(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        return EXIT_OK
    except ScenarioError as error:
        print(error, file=sys.stderr)
        return EXIT_USAGE
    except SimError as error:
        print(f"hems-twin: {error}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as error:
        print(f"hems-twin: {error}", file=sys.stderr)
        return EXIT_USAGE


def entry() -> None:
    """Console-script wrapper: exit with :func:`main`'s code."""
    sys.exit(main())
