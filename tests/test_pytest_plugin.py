"""The pytest plugin: scenario files with expectations or SLOs are collected and judged as tests.

Each test runs pytest in-process on a temporary folder (pytester), with the plugin loaded as
installed, through its ``pytest11`` entry point.
"""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from models.twin import TWIN
from tests.conftest import ROOT

pytest_plugins = ["pytester"]

PAIR = """\
name: pair
duration: 2m
seed: 3
fleet: {meters: 30, controllables: 20}
workload: {mobile_users: 1000, dashboard_users: 5}
faults:
  - {kind: crash, target: iot-core, at: 30s, restart_after: 40s}
slos:
  - {name: commands-ok, sli: {kind: command_success}, objective: 0.99}
variants:
  as-designed: {}
  outbox: {device_manager: {outbox: true}}
expect:
  as-designed: [commands.orphaned > 0]
  outbox: [commands.orphaned == 0]
  between:
    - commands.orphaned: outbox < as-designed
"""
ITEMS = [
    "pair.yaml::as-designed: commands.orphaned > 0",
    "pair.yaml::outbox: commands.orphaned == 0",
    "pair.yaml::between: commands.orphaned: outbox < as-designed",
    "pair.yaml::as-designed: slo commands-ok",
    "pair.yaml::outbox: slo commands-ok",
]
REAL_RUN = TWIN.run


def _ids(result: pytest.RunResult) -> list[str]:
    return [line.strip() for line in result.outlines if "::" in line and not line.startswith(("FAILED", "PASSED"))]


def test_a_scenario_file_gives_an_item_per_expectation_and_per_variant_slo(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", pair=PAIR)
    pytester.makefile(".yaml", config="name: not-a-scenario\nsteps: [1, 2]\n")  # no expect: or slos:
    pytester.makefile(".yml", plain="name: p\nduration: 1m\n")
    result = pytester.runpytest("--collect-only", "-q")
    assert _ids(result) == ITEMS
    result.assert_outcomes()


def test_items_pass_fail_and_share_one_run_per_file(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    runs: list[int] = []

    def counted(scenario: Any, seed: int, progress: Any = None) -> dict[str, Any]:
        runs.append(seed)
        return REAL_RUN(scenario, seed, progress)

    monkeypatch.setattr(TWIN, "run", counted)
    pytester.makefile(".yaml", pair=PAIR.replace("outbox: [commands.orphaned == 0]", "outbox: [commands.orphaned > 0]"))
    result = pytester.runpytest("-p", "no:cacheprovider", "-rf")
    result.assert_outcomes(passed=4, failed=1)
    assert runs == [3, 3]  # two variants, one run each, on the file's seed, for all five items
    text = result.stdout.str()
    assert "[outbox] commands.orphaned > 0 did not hold\n  seed 3: commands.orphaned = 0" in text
    assert "[as-designed] SLO commands-ok exhausted its error budget" not in text
    assert "Traceback" not in text and "runtest" not in text  # the message, no traceback noise
    assert "FAILED pair.yaml::outbox: commands.orphaned > 0" in text


def test_the_slo_rule_budget_by_default_objective_on_request(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", pair=PAIR)
    # a 40 s broker outage misses 99 % over the two minutes, yet spends little of a 30-day budget
    pytester.runpytest("-k", "slo").assert_outcomes(passed=2)
    result = pytester.runpytest("-k", "slo", "--hems-slo-rule", "objective")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "[[]outbox[]] SLO commands-ok missed its objective",
            "  seed 3: SLI 0.7* (objective 0.99), 16 bad of 69 events*",
        ]
    )
    # a window as long as the run: the budget is 25 % of its commands; only the outbox stays within it
    tight = PAIR.replace("objective: 0.99}", "objective: 0.75, window: 2m, alerts: []}")
    pytester.makefile(".yaml", pair=tight)
    result = pytester.runpytest("-k", "slo")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "[[]as-designed[]] SLO commands-ok exhausted its error budget",
            "  seed 3: error budget exhausted at 80 s; SLI 0.710145 (objective 0.75)*",
        ]
    )


def test_seed_and_replications_options(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", pair=PAIR.replace("outbox: [commands.orphaned == 0]", "outbox: [commands.orphaned > 0]"))
    result = pytester.runpytest("-k", "outbox and orphaned and not between", "--hems-seed", "11")
    result.stdout.fnmatch_lines(["  seed 11: commands.orphaned = 0"])
    result = pytester.runpytest(
        "-k", "outbox and orphaned and not between", "--hems-replications", "2", "--hems-workers", "1"
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "[[]outbox[]] commands.orphaned > 0 did not hold (held on 0 of 2 replications)",
            "  replication 0 (seed *): commands.orphaned = 0",
            "  replication 1 (seed *): commands.orphaned = 0",
        ]
    )
    result = pytester.runpytest("--hems-replications", "0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--hems-replications 0: expected at least 1*"])


def test_a_file_that_does_not_load_is_one_failing_item_with_the_loader_message(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", broken=PAIR.replace("meters: 30", "meterz: 30"))
    result = pytester.runpytest("-rf")
    result.assert_outcomes(failed=1)
    text = result.stdout.str()
    assert "broken.yaml::load" in text
    assert "broken.yaml:4: fleet.meterz: unknown field, did you mean 'meters'?" in text
    assert "Traceback" not in text and "Error" not in text.split("short test summary")[0]


def test_junit_xml_and_marker_work_on_scenario_items(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", pair=PAIR)
    result = pytester.runpytest("-m", "hems_scenario", "--junitxml=report.xml", "--strict-markers")
    result.assert_outcomes(passed=5)
    cases = [case.get("name") for case in ET.parse(pytester.path / "report.xml").getroot().iter("testcase")]
    assert cases == [item.split("::")[1] for item in ITEMS]


def test_the_project_s_own_run_is_unchanged() -> None:
    """testpaths is tests/, which holds no YAML the plugin would collect, and importing the plugin
    (as every pytest run of the environment does) loads none of the twin."""
    assert not [p for p in (ROOT / "tests").rglob("*") if p.suffix in (".yaml", ".yml")]
    code = (
        "import sys, sim.pytest_plugin; "
        "print(sorted(m for m in ('pydantic', 'simpy', 'numpy', 'yaml', 'models', 'sim.cli') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_plugin_is_registered_by_entry_point() -> None:
    from importlib.metadata import entry_points

    found = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert found.get("hems-twin") == "sim.pytest_plugin"
    assert '[project.entry-points.pytest11]\nhems-twin = "sim.pytest_plugin"' in (ROOT / "pyproject.toml").read_text()


def test_line_numbers_point_at_the_checks(pytester: pytest.Pytester) -> None:
    path = pytester.makefile(
        ".yaml", pair=PAIR.replace("outbox: [commands.orphaned == 0]", "outbox: [commands.orphaned > 0]")
    )
    result = pytester.runpytest("-k", "outbox and not between and not slo", "-v")
    result.stdout.fnmatch_lines(
        ["pair.yaml::outbox: commands.orphaned > 0 FAILED*", "*_ outbox: commands.orphaned > 0 (pair.yaml:15) _*"]
    )
    assert path.read_text().splitlines()[14] == "  outbox: [commands.orphaned > 0]"


def test_an_item_selected_by_its_node_id(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", pair=PAIR)
    result = pytester.runpytest("pair.yaml::outbox: commands.orphaned == 0")
    result.assert_outcomes(passed=1)
