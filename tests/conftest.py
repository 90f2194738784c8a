"""Shared helpers: load the real scenario files and run them once per test session."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest

from models.config import Scenario
from models.twin import TWIN
from sim.cli import load, run_scenario

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"


def scenario(name: str) -> Scenario:
    """A scenario file from scenarios/, fully validated."""
    return load(TWIN, SCENARIOS / f"{name}.yaml")


@functools.cache
def _run(name: str, without_faults: bool, seed: int) -> dict[str, Any]:
    spec = scenario(name)
    if without_faults:
        spec = spec.model_copy(update={"faults": []})
    return run_scenario(TWIN, spec, seed)


def run(name: str, *, without_faults: bool = False, seed: int = 7) -> dict[str, Any]:
    """The result of a scenario file (cached: treat it as read-only)."""
    return _run(name, without_faults, seed)


@pytest.fixture(scope="session")
def root() -> Path:
    """The repository root."""
    return ROOT
