"""What every benchmark here shares: measured children in fresh processes, the table, the JSON.

Each measurement runs in its own subprocess (the benchmark script again, with ``--child``),
so its peak RSS (``ru_maxrss``) is its own and nothing one part imported or allocated
flatters or burdens the other.  The child prints its figures as one JSON line.
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
"""Where the figures go, one JSON file per benchmark configuration (no timestamps)."""


def peak_rss_mib() -> float:
    """Peak resident set size of this process (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def child(script: str, *args: str) -> dict[str, Any]:
    """Run ``script --child ARGS`` in a fresh interpreter; the figures it printed last."""
    command = [sys.executable, str(Path(script).resolve()), "--child", *args]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def median(values: list[float]) -> float:
    """The median of paired runs' figures: what the benchmarks quote on a machine whose speed drifts."""
    return float(statistics.median(values))


def row(label: str, value: Any, target: str = "") -> str:
    """One line of a result table: a label, the value formatted for reading, a target."""
    if isinstance(value, float):
        text = f"{value:,.2f}" if abs(value) < 1000 else f"{value:,.0f}"
    elif isinstance(value, int) and not isinstance(value, bool):
        text = f"{value:,}"
    else:
        text = str(value)
    return f"  {label:<36} {text:>16}  {target}".rstrip()


def write(name: str, report: dict[str, Any]) -> None:
    """Write ``report`` to ``results/NAME`` (sorted keys) and say where."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    path.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"\nwrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
