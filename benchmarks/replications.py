"""Replications benchmark: N replications one after another, against the same N on two worker processes.

Run from the repository root::

    .venv/bin/python benchmarks/replications.py                   # 8 replications of a ~2 s run, 3 pairs
    .venv/bin/python benchmarks/replications.py --replications 4 --pairs 1   # quick look

**The scenario** is built in code: ``--meters`` meters reporting every 10 s and as many
mobile users sending commands (a tenth as many dashboard users), ``--minutes`` simulated
minutes, no faults, no variants -- about two seconds of wall time per run on the reference
machine.  :func:`sim.replications.replicate` runs it ``--replications`` times from root seed
7, exactly as ``hems-twin run --replications N`` does.

**Serial** is ``workers=1`` (every run in the measuring process, no pool); **parallel** is
``workers=--workers`` (default 2: local processes from :mod:`sim.executors`).  The wall
time covers the whole ``replicate`` call: starting the pool, the runs, carrying results
back, and the summary with its intervals (computed once, in the parent, either way).  It is
also split at the moment the last run finished ("runs"), so the summary's own cost shows.
Each measurement runs in a fresh subprocess (``benchmarks/harness.py``), and serial and
parallel run back to back in pairs: the machine's speed drifts by tens of percent within
minutes, so the ratio is taken within each pair and the median reported.  Every child also
reports the sha256 of the body's canonical JSON: the bodies must be byte-identical.

Target: parallel / serial wall time <= 0.6 on 2 workers.  The table goes to stdout; the
figures (no timestamps) to ``benchmarks/results/replications.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from typing import Any

from harness import child, median, peak_rss_mib, row, write

SEED = 7
TARGET_RATIO = 0.6


def scenario(minutes: float, meters: int) -> Any:
    """The benchmark scenario: a meter fleet and its users, no faults, no variants."""
    from models.config import FleetConfig, Scenario, WorkloadConfig

    return Scenario(
        name="bench-replications",
        description="replications benchmark: meters and app users, no faults",
        duration=minutes * 60.0,
        fleet=FleetConfig(meters=meters, controllables=meters),
        workload=WorkloadConfig(mobile_users=meters, dashboard_users=meters // 10),
    )


def measure(replications: int, workers: int, minutes: float, meters: int) -> dict[str, Any]:
    """Replicate the scenario with ``workers``; the wall time and what the body hashes to."""
    from models.twin import TWIN
    from sim.replications import replicate
    from sim.results import canonical_json

    spec = scenario(minutes, meters)
    last = [0.0]

    def finished(_replication: int, _variant: str, _body: dict[str, Any]) -> None:
        last[0] = time.perf_counter()

    start = time.perf_counter()
    result = replicate(TWIN, spec, replications, SEED, workers=workers, progress=False, on_run=finished)
    wall = time.perf_counter() - start
    return {
        "workers": workers,
        "replications": replications,
        "wall_s": wall,
        "runs_wall_s": last[0] - start,
        "summary_wall_s": wall - (last[0] - start),
        "body_sha256": hashlib.sha256(canonical_json(result.body).encode()).hexdigest(),
        "invariants_held": result.body["invariants_held"],
        "peak_rss_mib": peak_rss_mib(),
    }


def _report(replications: int, workers: int, minutes: float, meters: int, pairs: int) -> dict[str, Any]:
    """Serial and parallel in turn, ``pairs`` times; the ratio is the median of the pairs' ratios."""
    common = ["--replications", str(replications), "--minutes", str(minutes), "--meters", str(meters)]
    serial: list[dict[str, Any]] = []
    parallel: list[dict[str, Any]] = []
    for _ in range(pairs):
        serial.append(child(__file__, "measure", *common, "--workers", "1"))
        parallel.append(child(__file__, "measure", *common, "--workers", str(workers)))
    hashes = {run["body_sha256"] for run in serial + parallel}
    ratios = [p["wall_s"] / s["wall_s"] for s, p in zip(serial, parallel, strict=True)]
    run_ratios = [p["runs_wall_s"] / s["runs_wall_s"] for s, p in zip(serial, parallel, strict=True)]
    ratio = median(ratios)
    verdict = "ok" if ratio <= TARGET_RATIO else "MISSED"
    per_run = median([s["runs_wall_s"] / replications for s in serial])
    report: dict[str, Any] = {
        "benchmark": "replications",
        "replications": replications,
        "workers": workers,
        "cpus": os.cpu_count(),
        "minutes": minutes,
        "meters": meters,
        "seed": SEED,
        "pairs": pairs,
        "serial_wall_s_each": [run["wall_s"] for run in serial],
        "parallel_wall_s_each": [run["wall_s"] for run in parallel],
        "serial_wall_s": median([run["wall_s"] for run in serial]),
        "parallel_wall_s": median([run["wall_s"] for run in parallel]),
        "serial_runs_wall_s": median([run["runs_wall_s"] for run in serial]),
        "parallel_runs_wall_s": median([run["runs_wall_s"] for run in parallel]),
        "summary_wall_s": median([run["summary_wall_s"] for run in serial + parallel]),
        "wall_s_per_run": per_run,
        "ratio_each_pair": ratios,
        "ratio_parallel_to_serial": ratio,
        "runs_ratio_parallel_to_serial": median(run_ratios),
        "bodies_identical": len(hashes) == 1,
        "invariants_held": all(run["invariants_held"] for run in serial + parallel),
        "target_ratio": TARGET_RATIO,
    }
    lines = [
        f"replications benchmark: {replications} replications of {meters:,} meters and users for {minutes:g} "
        f"simulated min, root seed {SEED}; {pairs} pair(s) of runs (medians), {os.cpu_count()} CPUs",
        "",
        row("wall seconds per run (serial)", per_run),
        row("serial (workers=1) wall seconds", report["serial_wall_s"]),
        row(f"parallel (workers={workers}) wall seconds", report["parallel_wall_s"]),
        row("  of which the runs, serial", report["serial_runs_wall_s"]),
        row("  of which the runs, parallel", report["parallel_runs_wall_s"]),
        row("  summary and intervals", report["summary_wall_s"]),
        row("parallel / serial, each pair", ", ".join(f"{r:.2f}" for r in ratios)),
        row("parallel / serial, runs only", report["runs_ratio_parallel_to_serial"]),
        row("parallel / serial wall time", ratio, f"median; target <= {TARGET_RATIO:g}: {verdict}"),
        row("bodies byte-identical", report["bodies_identical"]),
    ]
    print("\n".join(lines))
    write("replications.json", report)
    return report


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; see the module docstring."""
    parser = argparse.ArgumentParser(description="Replications benchmark: serial against parallel workers.")
    parser.add_argument("--replications", type=int, default=8, help="replications (default 8)")
    parser.add_argument("--workers", type=int, default=2, help="parallel worker processes (default 2)")
    parser.add_argument("--minutes", type=float, default=20.0, help="simulated minutes per run (default 20)")
    parser.add_argument("--meters", type=int, default=2000, help="meters, and as many app users (default 2000)")
    parser.add_argument("--pairs", type=int, default=3, help="serial and parallel in turn this many times (default 3)")
    parser.add_argument("--child", choices=("measure",), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.replications < 2 or args.workers < 1 or args.pairs < 1:
        parser.error("--replications must be at least 2, --workers and --pairs at least 1")
    if args.child == "measure":
        print(json.dumps(measure(args.replications, args.workers, args.minutes, args.meters)))
    else:
        _report(args.replications, args.workers, args.minutes, args.meters, args.pairs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
