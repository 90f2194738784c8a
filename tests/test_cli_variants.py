"""`hems-twin run` on a scenario with variants and expectations, on one seed and on many."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_cli_run import invoke

SCENARIO = """\
name: pair
duration: 4m
seed: 3
fleet: {meters: 40, controllables: 20}
workload: {mobile_users: 300, dashboard_users: 5}
faults:
  - {kind: crash, target: iot-core, at: 1m, restart_after: 1m}
variants:
  as-designed: {}
  outbox: {device_manager: {outbox: true}}
expect:
  as-designed: [commands.orphaned > 0]
  outbox: [commands.orphaned == 0]
  between:
    - commands.orphaned: outbox < as-designed
"""


@pytest.fixture
def pair(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "pair.yaml"
    path.write_text(SCENARIO)
    return path


def test_variants_run_side_by_side_and_their_expectations_hold(pair: Path) -> None:
    code, out, err = invoke(["run", str(pair), "--out", "o"])
    assert code == 0, err
    assert "as-designed" in out.splitlines()[0] and "outbox" in out.splitlines()[0]
    assert out.count("held  ") == 3 and "FAILED" not in out
    result = json.loads((pair.parent / "o" / "result.json").read_text())
    assert list(result["variants"]) == ["as-designed", "outbox"]
    assert result["variants"]["outbox"]["flows"]["commands"]["orphaned"] == 0
    assert result["expectations_held"] and result["invariants_held"] and result["format_version"] == 1


def test_a_failing_expectation_exits_1_and_names_the_measured_value(pair: Path) -> None:
    pair.write_text(SCENARIO.replace("outbox: [commands.orphaned == 0]", "outbox: [commands.orphaned > 5]"))
    code, out, _ = invoke(["run", str(pair), "--out", "o"])
    assert code == 1
    assert "FAILED [outbox] commands.orphaned > 5   (commands.orphaned = 0)" in out


def test_an_expectation_on_a_path_that_does_not_exist_is_bad_input(pair: Path) -> None:
    pair.write_text(SCENARIO.replace("as-designed: [commands.orphaned > 0]", "as-designed: [commands.orphans > 0]"))
    code, _, err = invoke(["run", str(pair), "--out", "o"])
    assert code == 2
    assert err.strip().startswith(f"{pair}:12: expect.as-designed[0]:") and "did you mean 'commands.orphaned'" in err
    assert not (pair.parent / "o").exists()


def test_many_seeds_count_where_each_expectation_held(pair: Path) -> None:
    code, out, err = invoke(["run", str(pair), "--out", "o", "--seeds", "3"])
    assert code == 0, err
    assert out.splitlines()[0] == "3 seeds: 3 .. 5"
    assert out.count("   3/3 ") == 3
    result = json.loads((pair.parent / "o" / "result.json").read_text())
    assert result["seeds"] == [3, 4, 5] and all(e["held_on"] == 3 and e["of"] == 3 for e in result["expectations"])


@pytest.mark.parametrize("seeds", ["0", "x", "5-1", "1,1", "2-x"])
def test_bad_seed_lists_are_bad_input(pair: Path, seeds: str) -> None:
    code, _, err = invoke(["run", str(pair), "--seeds", seeds])
    assert code == 2 and "--seeds" in err and err.count("\n") == 1


def test_table_prints_each_expected_figure_per_variant_in_markdown(pair: Path) -> None:
    code, out, err = invoke(["table", str(pair)])
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("| scenario | figure | as designed |")
    assert lines[2].startswith("| pair | `commands.orphaned` |") and "outbox: 0" in lines[2] and "all held" in lines[2]


def test_table_refuses_a_scenario_without_variants(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    plain = tmp_path / "plain.yaml"
    plain.write_text("name: plain\nduration: 1m\n")
    code, _, err = invoke(["table", str(plain)])
    assert code == 2 and "has no variants" in err
