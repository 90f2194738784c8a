"""``hems-twin export``: a scenario's traces or final metrics in a format other tools read.

::

    hems-twin export SCENARIO --format chrome|otlp|prometheus --out FILE
        [--variant V] [--seed N] [--window START:END | --item KIND:STATE[:REASON]] [--max-spans N]

* ``chrome`` / ``otlp``: run one variant (default: the first) on the seed (default: the
  scenario's) and export the spans of ``--window`` (simulated times, ``300`` or ``5m``) or
  of the first item of ``KIND`` that ended in ``STATE`` (for ``REASON``) -- one of the two
  is required (:mod:`sim.tracing`);
* ``prometheus``: the final figures of a run of every variant (or of ``--variant``), or of
  an existing ``result.json`` given as SCENARIO.

Bad arguments raise :class:`~sim.errors.SimError` with one line naming what is wrong and
what was expected; ``hems-twin``'s main prints it and exits 2.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim.durations import parse_duration
from sim.errors import SimError
from sim.tracing import DEFAULT_MAX_SPANS, STATES

if TYPE_CHECKING:
    from sim.tracing import Trace
    from sim.twin import Twin

__all__ = ["FORMATS", "add_export_parser", "export_command"]

FORMATS = ("chrome", "otlp", "prometheus")
MAX_SEED = 2**63 - 1


def add_export_parser(commands: Any) -> None:
    """Add the ``export`` subcommand to ``commands`` (an argparse subparsers object)."""
    export = commands.add_parser(
        "export",
        help="export a run's spans (Chrome trace events for Perfetto, OTLP JSON) or final metrics (Prometheus text)",
        description="Run a scenario and write what other tools read: the spans of a time window or of one item's "
        "life as Chrome trace-event JSON (Perfetto, chrome://tracing) or OTLP/HTTP JSON (an OpenTelemetry "
        "collector), or a run's final figures in the Prometheus text format. See docs/traces.md.",
    )
    export.add_argument("scenario", help="a scenario YAML file (prometheus also takes a result.json)")
    export.add_argument("--format", required=True, metavar="{chrome,otlp,prometheus}", help="what to write")
    export.add_argument("--out", required=True, help="the file to write")
    export.add_argument("--variant", default=None, help="the variant to run (traces: default the first declared)")
    export.add_argument("--seed", default=None, metavar="N", help="the seed (default: the scenario's)")
    export.add_argument(
        "--window", default=None, metavar="START:END", help="traces: keep the spans overlapping this simulated time"
    )
    export.add_argument(
        "--item",
        default=None,
        metavar="KIND:STATE[:REASON]",
        help="traces: the life of the first item of KIND that ended in STATE, e.g. commands:failed:orphaned_pending",
    )
    export.add_argument(
        "--max-spans",
        default=str(DEFAULT_MAX_SPANS),
        metavar="N",
        help=f"traces: refuse to keep more spans than this (default {DEFAULT_MAX_SPANS:,})",
    )


def export_command(twin: Twin, args: argparse.Namespace) -> int:
    """Carry out ``hems-twin export``; returns the exit code (0), raises SimError on bad input."""
    if args.format not in FORMATS:
        raise SimError(f"--format {args.format!r}: expected one of {', '.join(FORMATS)}")
    if not str(args.out).strip():
        raise SimError("--out must name a file (got an empty string)")
    out = Path(args.out)
    if out.is_dir():
        raise SimError(f"--out {out}: is a directory; name the file to write")
    seed = _seed(args.seed)
    if args.format == "prometheus":
        if args.window is not None or args.item is not None:
            raise SimError("--window and --item select spans; --format prometheus exports a run's final figures")
        text = _prometheus(twin, args.scenario, seed, args.variant)
    else:
        text = _trace_text(args.format, _trace(twin, args, seed))
    _write(out, text)
    print(f"wrote {out}")
    return 0


def _seed(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        seed = int(text.strip())
    except ValueError:
        raise SimError(f"--seed {text!r}: expected a whole number") from None
    if not 0 <= seed <= MAX_SEED:
        raise SimError(f"--seed must be between 0 and {MAX_SEED} (got {seed})")
    return seed


def _window(text: str) -> tuple[float, float]:
    parts = text.split(":")
    if len(parts) != 2:
        raise SimError(f"--window {text!r}: expected START:END in simulated time, e.g. 300:420 or 5m:7m")
    try:
        start, end = (_seconds(part.strip()) for part in parts)
    except ValueError as error:
        raise SimError(f"--window {text!r}: {error}") from None
    if not start < end:
        raise SimError(f"--window {text!r}: START must come before END")
    return start, end


def _seconds(text: str) -> float:
    """Plain seconds (``300``) or a duration (``5m``)."""
    try:
        seconds = float(text)
    except ValueError:
        return parse_duration(text)
    return parse_duration(seconds)


def _item(text: str) -> tuple[str, str, str | None]:
    parts = text.split(":")
    if len(parts) not in (2, 3) or not all(part.strip() for part in parts):
        raise SimError(f"--item {text!r}: expected KIND:STATE or KIND:STATE:REASON, e.g. commands:failed:app_503")
    kind, state = parts[0].strip(), parts[1].strip()
    if state not in STATES:
        raise SimError(f"--item {text!r}: unknown state {state!r} (expected one of: {', '.join(STATES)})")
    return kind, state, parts[2].strip() if len(parts) == 3 else None


def _trace(twin: Twin, args: argparse.Namespace, seed: int | None) -> Trace:
    from sim import tracing

    if (args.window is None) == (args.item is None):
        raise SimError(f"--format {args.format} needs one of --window START:END or --item KIND:STATE[:REASON]")
    try:
        max_spans = int(str(args.max_spans).strip())
    except ValueError:
        raise SimError(f"--max-spans {args.max_spans!r}: expected a whole number") from None
    if max_spans < 1:
        raise SimError(f"--max-spans must be at least 1 (got {max_spans})")
    if _is_result(args.scenario):
        raise SimError(f"{args.scenario}: a result file holds no spans; give the scenario file to trace")
    if args.window is not None:
        start, end = _window(args.window)
        return tracing.capture_window(
            twin, args.scenario, seed, variant=args.variant, start=start, end=end, max_spans=max_spans
        )
    kind, state, reason = _item(args.item)
    trace = tracing.trace_of_item(
        twin, args.scenario, seed, variant=args.variant, kind=kind, state=state, reason=reason, max_spans=max_spans
    )
    if trace is None:
        ending = f"{state} ({reason})" if reason else state
        raise SimError(f"--item {args.item}: no {kind} item ended {ending} in this run; nothing to export")
    return trace


def _trace_text(form: str, trace: Trace) -> str:
    if form == "chrome":
        from sim.exports.chrome import chrome_json

        return chrome_json(trace)
    from sim.exports.otlp import otlp_json
    from sim.results import package_version

    return otlp_json(trace, package_version())


def _is_result(path: str) -> bool:
    return path.endswith(".json")


def _prometheus(twin: Twin, scenario: str, seed: int | None, variant: str | None) -> str:
    from sim.exports.prometheus import prometheus_text

    if _is_result(scenario):
        if seed is not None or variant is not None:
            raise SimError(f"{scenario}: a result file is exported as it is; drop --seed and --variant")
        return prometheus_text(_read_result(scenario))
    from sim.results import result_header
    from sim.tracing import select_variant
    from sim.variants import variant_scenarios

    chosen, _, label, seed = select_variant(twin, scenario, seed, variant)
    from sim.api import load_checked

    loaded = load_checked(twin, scenario)
    header = result_header(loaded, seed, twin.name)
    if label is None:
        return prometheus_text({**header, **twin.run(chosen, seed)})
    runs = {label: chosen} if variant is not None else variant_scenarios(loaded)
    return prometheus_text({**header, "variants": {name: twin.run(each, seed) for name, each in runs.items()}})


def _read_result(path: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise SimError(f"{path}: cannot read it ({error.strerror or error})") from None
    except ValueError as error:
        raise SimError(f"{path}: not a result file (invalid JSON: {error})") from None
    if not isinstance(data, dict) or not ("variants" in data or "components" in data):
        raise SimError(f"{path}: not a result file of a run (expected result.json as hems-twin run writes it)")
    return data


def _write(out: Path, text: str) -> None:
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as error:
        raise SimError(f"--out {out}: cannot write it ({error.strerror or error})") from None
