"""The command line: run, validate, list, schema, and clean errors for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from sim.cli import main

SMALL = """\
name: small
description: A tiny scenario for CLI tests.
duration: 2m
fleet: {meters: 50, controllables: 20}
workload: {mobile_users: 50, dashboard_users: 20}
"""


@pytest.fixture
def small(tmp_path: Path) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(SMALL)
    return path


def test_run_writes_result_and_prints_summary(small: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["run", str(small), "--seed", "3", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "scenario small  seed 3" in printed
    assert "invariants" in printed and "BROKEN" not in printed
    result = json.loads((out / "result.json").read_text())
    assert result["scenario"] == "small" and result["seed"] == 3
    assert len(result["scenario_hash"]) == 64
    assert set(result["flows"]) == {"sensor", "commands", "analytics", "billing"}


def test_json_flag_prints_exactly_the_file(small: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["run", str(small), "--seed", "3", "--out", str(out), "--json"]) == 0
    assert capsys.readouterr().out == (out / "result.json").read_text()


def _errors(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(args) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return captured.err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (SMALL + "colour: blue\n", r"small.yaml:6: colour: unknown field"),
        (SMALL.replace("meters: 50", "meters: lots"), r"small.yaml:4: fleet.meters: "),
        (SMALL.replace("duration: 2m", "duration: -5s"), r"small.yaml:3: duration: expected a positive duration"),
        (SMALL.replace("duration: 2m", "duration: 0s"), r"small.yaml:3: duration: expected a positive duration"),
        (
            SMALL + "faults:\n  - {kind: crash, target: mainframe, at: 1m}\n",
            r"small.yaml:7: faults[0].target: unknown target 'mainframe'",
        ),
        (SMALL + "faults:\n  - {kind: meteor, target: redis, at: 1m}\n", r"small.yaml:7: faults[0].kind: "),
        (
            SMALL + "faults:\n  - {kind: poison, target: redis, at: 1m}\n",
            r"faults[0].kind: fault kind 'poison' cannot target 'redis'",
        ),
        (SMALL + "fleet: [\n", r"small.yaml:"),
    ],
)
def test_bad_scenarios_get_located_messages(
    text: str, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "small.yaml"
    path.write_text(text)
    assert expected in _errors(["validate", str(path)], capsys)
    assert expected in _errors(["run", str(path), "--out", str(tmp_path / "o")], capsys)
    assert not (tmp_path / "o").exists()  # nothing written for bad input


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "no such scenario file" in _errors(["run", str(tmp_path / "absent.yaml")], capsys)


def test_validate_accepts_every_shipped_scenario(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = sorted(str(p) for p in (root / "scenarios").glob("*.yaml"))
    assert len(files) >= 9
    assert main(["validate", *files]) == 0
    assert capsys.readouterr().out.count("ok  ") == len(files)


def test_list_shows_descriptions(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", str(root / "scenarios")]) == 0
    lines = capsys.readouterr().out.splitlines()
    baseline = next(line for line in lines if line.startswith("baseline.yaml"))
    assert "Steady state" in baseline
    assert not any("INVALID" in line for line in lines)


def test_schema_is_committed_and_validates_scenarios(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    committed = json.loads((root / "scenarios" / "scenario.schema.json").read_text())
    assert schema == committed, "run 'make schema' to refresh scenarios/scenario.schema.json"
    for path in (root / "scenarios").glob("*.yaml"):
        jsonschema.validate(yaml.safe_load(path.read_text()), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"name": "x", "duration": "1h", "colour": 1}, schema)


def test_python_dash_m_sim_is_the_same_command(small: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sim", "validate", str(small)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "ok  " in done.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "sim", "run", "--seed", "x", str(small)], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            "faults:\n  - {kind: poison, target: meters, at: 1m, schema_version: 2}\n",
            "faults[0].schema_version: schema_version 2 is one the consumer supports",
        ),
        (
            "faults:\n  - {kind: partition, target: redis, other: [redis], at: 1m, for: 1m}\n",
            "faults[0].other[0]: 'redis' is the target itself",
        ),
        ("faults:\n  - {kind: crash, target: redis, at: 5m}\n", "faults[0].at: starts at 300.0s, after the run ends"),
    ],
)
def test_semantic_checks(extra: str, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "small.yaml"
    path.write_text(SMALL + extra)
    assert expected in _errors(["validate", str(path)], capsys)


def test_tick_longer_than_report_interval_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "small.yaml"
    path.write_text(SMALL.replace("meters: 50", "meters: 50, report_every: 100ms"))
    assert "fleet: tick (0.25s) must not exceed report_every (0.1s)" in _errors(["validate", str(path)], capsys)


def test_bad_out_fails_before_running(small: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    err = _errors(["run", str(small), "--out", str(blocker)], capsys)
    assert f"--out {blocker}: cannot create the output directory" in err
    assert "--out must name a directory" in _errors(["run", str(small), "--out", ""], capsys)


def test_the_summary_reports_slos_and_warnings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An SLO section (each rule fired or not), and a warning when IoT Core's publish limit refused commands."""
    path = tmp_path / "busy.yaml"
    path.write_text(
        SMALL.replace("name: small", "name: busy").replace(
            "dashboard_users: 20}", "dashboard_users: 20, commands_per_user_per_hour: 600}"
        )
        + "broker: {publish_limit_per_s: 1}\n"
        + "slos:\n  - {name: availability, sli: {kind: availability, flow: api}, objective: 0.999}\n"
    )
    assert main(["run", str(path), "--seed", "3", "--out", str(tmp_path / "out")]) in (0, 1)
    printed = capsys.readouterr().out
    assert "\nslos\n  availability" in printed and "page-1h" in printed and "ticket-3d" in printed
    assert "\nwarnings\n  IoT Core's per-connection publish limit (1/s) refused" in printed
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["warnings"] and result["flows"]["commands"]["publish_limit"]["publishes_refused"] > 0


def test_the_summary_has_no_warnings_section_when_nothing_was_refused(
    small: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", str(small), "--seed", "3", "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert "\nwarnings" not in printed and "\nslos" not in printed
