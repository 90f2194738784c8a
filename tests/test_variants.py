"""Variants (overlays run on one seed) and expectations (checked data on result paths)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.twin import TWIN
from sim.errors import ScenarioError
from sim.expectations import BETWEEN, evaluate, numeric_paths, parse, value_at
from sim.loader import load_scenario_text
from sim.variants import check_variants, overlay, run_variants, variant_scenarios

BASE = """\
name: v
duration: 4m
seed: 3
fleet: {meters: 50, controllables: 20}
workload: {mobile_users: 300, dashboard_users: 5}
faults:
  - {kind: crash, target: iot-core, at: 1m, restart_after: 1m}
"""


def load(text: str):  # type: ignore[no-untyped-def]
    return load_scenario_text(
        text, TWIN.scenario_type, filename="v.yaml", check=lambda s: [*TWIN.check(s), *check_variants(TWIN, s)]
    )


def test_overlay_merges_mappings_and_replaces_the_rest() -> None:
    base = {"fleet": {"meters": 5, "tick": 1}, "faults": [1, 2], "name": "x"}
    merged = overlay(base, {"fleet": {"meters": 7}, "faults": []})
    assert merged == {"fleet": {"meters": 7, "tick": 1}, "faults": [], "name": "x"}
    assert base["fleet"] == {"meters": 5, "tick": 1}  # the base is left alone


def test_variants_are_full_scenarios_sharing_the_base() -> None:
    scenario = load(BASE + "variants:\n  as-designed: {}\n  outbox: {device_manager: {outbox: true}}\n")
    variants = variant_scenarios(scenario)
    assert list(variants) == ["as-designed", "outbox"]
    assert not variants["as-designed"].device_manager.outbox and variants["outbox"].device_manager.outbox
    assert variants["outbox"].fleet == scenario.fleet and variants["outbox"].faults == scenario.faults


def test_a_bad_overlay_is_reported_at_its_own_line() -> None:
    with pytest.raises(ScenarioError) as caught:
        load(BASE + "variants:\n  as-designed: {}\n  broken:\n    fleet: {meters: -1}\n")
    problem = caught.value.problems[0]
    assert problem.line == 11 and "variants.broken.fleet.meters" in str(problem) and "broken" in problem.message


def test_a_variant_failing_the_twins_check_is_reported() -> None:
    with pytest.raises(ScenarioError, match="unknown target 'mainframe'"):
        load(BASE + "variants:\n  a: {}\n  b: {faults: [{kind: crash, target: mainframe, at: 1m}]}\n")


@pytest.mark.parametrize(
    ("expect", "message"),
    [
        ("  a: [commands.orphand > 0]\n", "did you mean 'commands.orphaned'"),
        ("  a: [commands.orphaned >> 0]\n", "expected '<path> <op> <number>'"),
        ("  c: [commands.orphaned > 0]\n", "no variant called 'c'"),
        ("  between: [{commands.applied: a > c}]\n", "no variant called 'c'"),
        ("  between: [commands.applied > 3]\n", "expected '<path>: <variant> <op> <variant>"),
    ],
)
def test_a_bad_expectation_is_a_load_time_error(expect: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=message) as caught:
        load(BASE + "variants:\n  a: {}\n  b: {device_manager: {outbox: true}}\nexpect:\n" + expect)
    assert all(p.line is not None and p.line >= 12 for p in caught.value.problems)


def test_variants_run_on_one_seed_with_common_random_numbers() -> None:
    scenario = load(
        BASE
        + "variants:\n  a: {}\n  same: {}\n  outbox: {device_manager: {outbox: true}}\n"
        + "expect:\n  a: [commands.orphaned > 0]\n  outbox: [commands.orphaned == 0]\n"
        + "  between:\n    - commands.intents: same == a\n    - commands.orphaned: outbox < a\n"
    )
    results, verdicts = run_variants(TWIN, scenario, seed=3)
    assert results["a"] == results["same"]  # identical overlays: identical runs
    assert results["a"]["flows"]["commands"]["intents"] == results["outbox"]["flows"]["commands"]["intents"]
    assert [v.held for v in verdicts] == [True, True, True, True], [v.as_dict() for v in verdicts]


def test_a_failing_expectation_says_what_was_measured() -> None:
    expectation = parse("commands.orphaned == 0", "a")
    verdict = evaluate(expectation, {"a": {"flows": {"commands": {"orphaned": 12}}}})
    assert not verdict.held and verdict.measured == 12 and "orphaned = 12" in verdict.detail


def test_paths_read_the_top_level_or_flows() -> None:
    result = {"flows": {"commands": {"orphaned": 1}}, "engine": {"events": 5}, "x": {"y": None}}
    assert value_at(result, "commands.orphaned") == 1 == value_at(result, "flows.commands.orphaned")
    assert value_at(result, "engine.events") == 5
    assert numeric_paths(result) == {"flows.commands.orphaned", "commands.orphaned", "engine.events", "x.y"}
    with pytest.raises(KeyError):
        value_at(result, "commands.nothing")


numbers = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12)


@given(
    numbers, numbers, st.sampled_from(["<", "<=", ">", ">=", "==", "!="]), st.sampled_from(["", "+", "-", "*"]), numbers
)
def test_relative_expectations_compute_what_they_say(
    left: float, right: float, op: str, shift: str, amount: float
) -> None:
    text = f"m.v: x {op} y" + (f" {shift} {amount!r}" if shift else "")
    verdict = evaluate(parse(text, BETWEEN), {"x": {"m": {"v": left}}, "y": {"m": {"v": right}}})
    target = {"": right, "+": right + amount, "-": right - amount, "*": right * amount}[shift]
    close = math.isclose(left, target, rel_tol=1e-9, abs_tol=1e-12)
    expected = {"<": left < target, "<=": left <= target, ">": left > target, ">=": left >= target}.get(op)
    if op == "==":
        expected = close
    elif op == "!=":
        expected = not close
    assert verdict.held == expected and verdict.against == target


def test_a_missing_value_never_passes() -> None:
    verdict = evaluate(
        parse("commands.success_rate >= 0.9", "a"), {"a": {"flows": {"commands": {"success_rate": None}}}}
    )
    assert not verdict.held and "no value" in verdict.detail
