"""Durability benchmark: six months of backups, WAL archiving and checks (finding C4), timed.

Run from the repository root::

    .venv/bin/python benchmarks/durability.py              # the backup plane alone, both C4 variants
    .venv/bin/python benchmarks/durability.py --scenario   # the whole C4 scenario through sim.api.run
    .venv/bin/python benchmarks/durability.py --days 30    # a shorter horizon

**The plane** (default) reads ``scenarios/c4-backups.yaml``, applies each variant's overlay to
its ``durability`` section, and builds what the twin builds for it: a
:class:`~models.recovery.commits.CommitLog` from the flows (WAL bytes per row from the
scenario's ``postgres`` section), a kernel whose clock starts at ``detail_from``, and a
:class:`~models.recovery.backups.BackupPlane` with the scenario's planned faults. It then
restores at the disaster (``--days`` days) and summarises: six months of WAL segments (about
260,000 at a minute's ``archive_timeout``), their archiving, 180 base backups and every check.
No detailed twin runs, so this is the cost the long horizon adds to any scenario.

**The scenario** (``--scenario``) runs the whole file -- both variants, the detailed hours
before and after the disaster included -- with :func:`sim.api.run`, exactly as
``hems-twin run scenarios/c4-backups.yaml`` does. It needs the ``durability:`` section wired
into the twin.

Each measurement runs in a fresh subprocess (``benchmarks/harness.py``). Target: under 60 s
for the whole scenario. The table goes to stdout, the figures (no timestamps) to
``benchmarks/results/durability-<mode>-<days>d.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from harness import child, peak_rss_mib, row, write

SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "c4-backups.yaml"
"""Stand-ins until the postgres section carries ``wal_bytes_per_row`` (the twin's own then)."""
TARGET_WALL_S = 60.0


def _variants() -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    import yaml

    spec: dict[str, Any] = yaml.safe_load(SCENARIO.read_text(encoding="utf-8"))
    return spec, spec.get("variants") or {"as-designed": {}}


def run_plane(variant: str, days: float) -> dict[str, Any]:
    """Build and run the backup plane of one variant for ``days``; the measured figures."""
    from models.config import PostgresConfig
    from models.recovery.backups import BackupPlane
    from models.recovery.commits import CommitLog
    from models.recovery.config import DurabilityConfig
    from models.recovery.faults import ArchiveFailure, BackupFailure, SegmentCorruption
    from sim.kernel import Kernel
    from sim.variants import overlay

    spec, variants = _variants()
    merged = overlay(spec, variants[variant])
    section = {**merged["durability"], "detail_from": days * 86400.0}
    kinds: dict[str, Any] = {
        "archive_failure": ArchiveFailure,
        "segment_corruption": SegmentCorruption,
        "backup_failure": BackupFailure,
    }
    start = time.perf_counter()
    config = DurabilityConfig.model_validate(section)
    faults = [kinds[f["kind"]].model_validate(f) for f in merged["faults"] if f["kind"] in kinds]
    wal_bytes_per_row = PostgresConfig.model_validate(merged.get("postgres", {})).wal_bytes_per_row
    commits = CommitLog(config.flows, wal_bytes_per_row, detail_from=config.detail_from)
    kernel = Kernel(int(merged.get("seed", 7)), start=config.detail_from)
    plane = BackupPlane(kernel, config, commits, faults, horizon=config.detail_from)
    result = plane.restore(config.detail_from)
    summary = plane.summary(config.detail_from)
    wall = time.perf_counter() - start
    return {
        "variant": variant,
        "simulated_days": days,
        "segments": summary["archive"]["segments"],
        "backups": summary["backups"]["taken"],
        "alerts": summary["alerts_raised"],
        "restore_tests": len(summary["restore_tests"]),
        "rpo_s": None if result.backup is None else result.rpo_s,
        "usable_backup": result.backup is not None,
        "wall_s": wall,
        "peak_rss_mib": peak_rss_mib(),
    }


def run_scenario() -> dict[str, Any]:
    """The whole C4 scenario, every variant, through sim.api.run."""
    from sim.api import run

    start = time.perf_counter()
    result = run(str(SCENARIO), progress=False)
    wall = time.perf_counter() - start
    body = result.body if hasattr(result, "body") else {}
    return {
        "wall_s": wall,
        "expectations_held": body.get("expectations_held"),
        "peak_rss_mib": peak_rss_mib(),
    }


def _verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def _plane(days: float) -> dict[str, Any]:
    _, variants = _variants()
    report: dict[str, Any] = {"benchmark": "durability-plane", "days": days, "variants": {}}
    lines = [f"durability benchmark: the backup plane alone, {days:g} simulated days, {SCENARIO.name}"]
    for variant in variants:
        figures = child(__file__, "plane", "--variant", variant, "--days", str(days))
        report["variants"][variant] = figures
        rpo = figures["rpo_s"]
        lines += [
            "",
            variant,
            row("WAL segments", figures["segments"]),
            row("base backups", figures["backups"]),
            row("alerts / restore tests", f"{figures['alerts']} / {figures['restore_tests']}"),
            row("RPO at the disaster (s)", "no usable backup" if rpo is None else float(rpo)),
            row(
                "wall seconds",
                figures["wall_s"],
                f"target < {TARGET_WALL_S:g}: {_verdict(figures['wall_s'] < TARGET_WALL_S)}",
            ),
            row("peak RSS MiB", figures["peak_rss_mib"]),
        ]
    print("\n".join(lines))
    write(f"durability-plane-{days:g}d.json", report)
    return report


def _scenario() -> dict[str, Any]:
    figures = child(__file__, "scenario")
    print(f"durability benchmark: {SCENARIO.name}, every variant, through sim.api.run")
    print(
        row(
            "wall seconds",
            figures["wall_s"],
            f"target < {TARGET_WALL_S:g}: {_verdict(figures['wall_s'] < TARGET_WALL_S)}",
        )
    )
    print(row("expectations held", figures["expectations_held"]))
    print(row("peak RSS MiB", figures["peak_rss_mib"]))
    report = {"benchmark": "durability-scenario", "scenario": SCENARIO.name, **figures}
    write("durability-scenario.json", report)
    return report


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; see the module docstring."""
    parser = argparse.ArgumentParser(description="Durability benchmark: six months of backups and archiving.")
    parser.add_argument("--days", type=float, default=180.0, help="simulated days up to the disaster (default 180)")
    parser.add_argument("--scenario", action="store_true", help="run the whole C4 scenario through sim.api.run")
    parser.add_argument("--child", choices=("plane", "scenario"), help=argparse.SUPPRESS)
    parser.add_argument("--variant", default="as-designed", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child == "plane":
        print(json.dumps(run_plane(args.variant, args.days)))
    elif args.child == "scenario":
        print(json.dumps(run_scenario()))
    elif args.scenario:
        _scenario()
    else:
        _plane(args.days)
    return 0


if __name__ == "__main__":
    sys.exit(main())
