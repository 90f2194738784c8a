"""Result files: canonical JSON, scenario hashes, the header every result carries.

Determinism is a feature: the same scenario, seed and version must give byte-identical
``result.json``.  So the header holds no wall-clock time, keys are sorted, floats are
rounded to a fixed number of significant digits (summation order inside numpy can differ
in the last bit between builds; twelve digits is far beyond what any figure means), and
NaN/inf become null.
"""

from __future__ import annotations

import hashlib
import json
import math
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from pydantic import BaseModel

__all__ = ["canonical_json", "package_version", "result_header", "scenario_hash", "write_result"]

DIGITS = 12


def package_version() -> str:
    """The installed hems-twin version (part of every result's identity)."""
    try:
        return version("hems-twin")
    except PackageNotFoundError:
        return "0+unknown"


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return float(f"{value:.{DIGITS}g}")
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _clean(value.item())
    return value


def canonical_json(data: Any) -> str:
    """Sorted, rounded, NaN-free JSON text with a trailing newline."""
    return json.dumps(_clean(data), sort_keys=True, indent=2, allow_nan=False) + "\n"


def scenario_hash(scenario: BaseModel) -> str:
    """sha256 of the scenario's canonical JSON form (defaults included, seed excluded)."""
    data = scenario.model_dump(mode="json", by_alias=True, exclude={"seed"})
    text = json.dumps(_clean(data), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def result_header(scenario: BaseModel, seed: int, twin: str) -> dict[str, Any]:
    """What identifies a result: scenario name and hash, seed, twin and version."""
    return {
        "scenario": getattr(scenario, "name", "?"),
        "scenario_hash": scenario_hash(scenario),
        "seed": seed,
        "twin": twin,
        "version": package_version(),
    }


def write_result(result: dict[str, Any], out_dir: str | Path) -> Path:
    """Write ``result.json`` into ``out_dir`` (created if needed); returns its path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "result.json"
    path.write_text(canonical_json(result), encoding="utf-8")
    return path
