"""Every scenario that states expectations keeps them: on its own seed here, on 21 seeds under -m slow."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.twin import TWIN
from sim.cli import load
from sim.compare import run_compared, seeds_body

SCENARIOS = sorted(
    p for p in (Path(__file__).resolve().parent.parent / "scenarios").glob("*.yaml") if "expect:" in p.read_text()
)


def test_there_are_finding_scenarios() -> None:
    assert {p.stem for p in SCENARIOS} >= {"c1-outbox"}


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_expectations_hold_on_the_scenarios_seed(path: Path) -> None:
    scenario = load(TWIN, path)
    body = run_compared(TWIN, scenario, scenario.seed)
    failed = [v for v in body["expectations"] if not v["held"]]
    assert not failed, failed
    assert body["invariants_held"]


@pytest.mark.slow
@pytest.mark.timeout(3600)  # 21 seeds of every variant: the retry storm alone takes minutes
@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_expectations_hold_on_21_seeds(path: Path) -> None:
    scenario = load(TWIN, path)
    seeds = [scenario.seed + offset for offset in range(21)]
    body = seeds_body({seed: run_compared(TWIN, scenario, seed) for seed in seeds})
    failed = [e for e in body["expectations"] if e["failed_seeds"]]
    assert not failed, failed
    assert body["invariants_held"], body["invariants_broken_on"]
