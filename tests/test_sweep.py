"""Sweeps: designs, parameter paths, point checks, the CLI, and the resumable results store."""

from __future__ import annotations

import io
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.twin import TWIN
from sim.cli import load, main
from sim.errors import SimError
from sim.loader import load_scenario_text
from sim.replications import replication_seeds
from sim.store import (
    ATTRS_KEY,
    CSV_FILE,
    PARQUET_FILE,
    RUNS_FILE,
    RunStore,
    figures,
    run_sweep,
)
from sim.sweep import (
    Range,
    Sweep,
    design_points,
    parse_param,
    plan_sweep,
    set_path,
    sweep_points,
    unit_sample,
)

SCENARIO = """\
name: tiny
duration: 1m
seed: 3
fleet: {meters: 10, controllables: 6}
workload: {mobile_users: 20, dashboard_users: 2}
faults:
  - {kind: crash, target: iot-core, at: 20s, restart_after: 20s}
variants:
  as-designed: {}
  outbox: {device_manager: {outbox: true}}
expect:
  outbox: [commands.orphaned == 0]
sweep:
  parameters:
    workload.mobile_users: [10, 30]
    faults.0.restart_after: [10s, 30s]
"""


def invoke(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "tiny.yaml"
    path.write_text(SCENARIO)
    return path


def sweep_of(text: str) -> Sweep:
    scenario = load_scenario_text(f"name: x\nduration: 1m\nsweep:\n{text}", TWIN.scenario_type)
    assert scenario.sweep is not None
    return scenario.sweep


# -- designs --------------------------------------------------------------------------------------


def test_a_grid_runs_every_combination_with_the_last_parameter_fastest() -> None:
    sweep = sweep_of("  parameters: {a.x: [1, 2, 3], b.y: [true, false], c: [x, y]}\n")
    points = design_points(sweep, 0)
    assert len(points) == 3 * 2 * 2
    assert points[:3] == [
        {"a.x": 1, "b.y": True, "c": "x"},
        {"a.x": 1, "b.y": True, "c": "y"},
        {"a.x": 1, "b.y": False, "c": "x"},
    ]
    assert len({json.dumps(p, sort_keys=True) for p in points}) == 12


@settings(max_examples=25, deadline=None)
@given(samples=st.integers(1, 60), dimensions=st.integers(1, 6), seed=st.integers(0, 2**63 - 1))
def test_lhs_puts_exactly_one_point_in_each_stratum_of_every_dimension(
    samples: int, dimensions: int, seed: int
) -> None:
    unit = unit_sample("lhs", samples, dimensions, seed)
    assert unit.shape == (samples, dimensions)
    for column in unit.T:
        assert sorted(np.floor(column * samples).astype(int)) == list(range(samples))


def test_an_integer_lhs_with_as_many_samples_as_values_takes_each_value_once() -> None:
    sweep = sweep_of(
        "  design: lhs\n  samples: 12\n  parameters:\n    f.n: {low: 5, high: 16, integer: true}\n    g: [a, b, c]\n"
    )
    points = design_points(sweep, 7)
    assert sorted(p["f.n"] for p in points) == list(range(5, 17))
    assert all(isinstance(p["f.n"], int) for p in points)
    assert sorted(p["g"] for p in points) == ["a"] * 4 + ["b"] * 4 + ["c"] * 4  # a list's values share the strata


@pytest.mark.parametrize("design", ["random", "lhs"])
def test_random_and_lhs_draws_stay_within_their_ranges(design: str) -> None:
    sweep = sweep_of(
        f"  design: {design}\n  samples: 200\n  parameters:\n"
        "    a: {low: -2.5, high: 4}\n    b: {low: 0.001, high: 1000, log: true}\n"
        "    c: {low: 1, high: 3, integer: true}\n    d: {low: 1, high: 1000, integer: true, log: true}\n"
    )
    points = design_points(sweep, 11)
    assert len(points) == 200
    assert all(-2.5 <= p["a"] <= 4 and 0.001 <= p["b"] <= 1000 for p in points)
    assert {p["c"] for p in points} == {1, 2, 3}
    assert all(isinstance(p["d"], int) and 1 <= p["d"] <= 1000 for p in points)
    assert sum(p["b"] < 1 for p in points) > 60  # log-uniform: half the draws below the geometric middle


def test_designs_are_deterministic_and_seeded_by_the_scenario_unless_the_sweep_says() -> None:
    text = "  design: random\n  samples: 5\n  parameters: {a: {low: 0, high: 1}}\n"
    sweep = sweep_of(text)
    assert design_points(sweep, 4) == design_points(sweep, 4)
    assert design_points(sweep, 4) != design_points(sweep, 5)
    own = sweep_of(text + "  seed: 4\n")
    assert design_points(own, 99) == design_points(sweep, 4)


def test_command_line_values_are_crossed_with_the_file_design_and_replace_its_own_path() -> None:
    sweep = sweep_of("  parameters: {a: [1, 2], b: [x, y]}\n")
    points = sweep_points(sweep, {"b": ["z"], "c": [True, False]}, 0)
    assert points == [
        {"a": 1, "b": "z", "c": True},
        {"a": 1, "b": "z", "c": False},
        {"a": 2, "b": "z", "c": True},
        {"a": 2, "b": "z", "c": False},
    ]
    assert sweep_points(None, {}, 0) == [{}]


def test_param_values_are_yaml_scalars() -> None:
    assert parse_param("workload.mobile_users=100, 200") == ("workload.mobile_users", [100, 200])
    assert parse_param("device_manager.outbox=true,false") == ("device_manager.outbox", [True, False])
    assert parse_param("analytics.query_timeout=null,5s,0.5") == ("analytics.query_timeout", [None, "5s", 0.5])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("workload.mobile_users", "expected PATH=V1,V2"),
        ("workload.mobile_users=", "expected PATH=V1,V2"),
        ("a..b=1", "expected a dotted path"),
        ("seed=1,2", "the seed is not swept"),
        ("a=1,,2", "an empty value"),
        ("a=1,1", "the value 1 is listed twice"),
        ("a=.nan", "finite"),
    ],
)
def test_bad_params_say_what_was_expected(text: str, expected: str) -> None:
    with pytest.raises(SimError, match=r"^--param ") as raised:
        parse_param(text)
    assert expected in str(raised.value)


def test_a_range_knows_its_bounds() -> None:
    assert Range(low=0, high=10, integer=True).scale(np.array([0.0, 0.999999])) == [0, 10]
    assert Range(low=1.0, high=100.0, log=True).scale(np.array([0.5])) == [10.0]


# -- paths --------------------------------------------------------------------------------------------


def test_set_path_creates_sections_indexes_lists_and_leaves_the_data_alone() -> None:
    data = {"faults": [{"kind": "crash", "at": 5}], "fleet": {"meters": 3}}
    changed = set_path(data, "faults.0.at", 9)
    assert changed["faults"] == [{"kind": "crash", "at": 9}] and data["faults"][0]["at"] == 5
    assert set_path(data, "workload.mobile_users", 4)["workload"] == {"mobile_users": 4}
    assert set_path(data, "fleet", {"controllables": 2})["fleet"] == {"meters": 3, "controllables": 2}  # merges
    with pytest.raises(ValueError, match=r"^faults has 1 item \(index 0\) in this scenario: no item 1$"):
        set_path(data, "faults.1.at", 1)
    with pytest.raises(ValueError, match="faults is a list: name one of its items by index"):
        set_path(data, "faults.first.at", 1)
    with pytest.raises(ValueError, match=r"fleet\.meters is 3, not a section"):
        set_path(data, "fleet.meters.x", 1)


def test_a_variant_that_sets_a_swept_path_holds_it_fixed(tiny: Path) -> None:
    scenario = load(TWIN, tiny)
    scenario = scenario.model_copy(update={"variants": {"a": {}, "fixed": {"workload": {"mobile_users": 7}}}})
    plan = plan_sweep(TWIN, scenario, design_points(scenario.sweep, 3), [1])
    users = {(run.point, run.variant): run.scenario["workload"]["mobile_users"] for run in plan.runs}
    assert [users[(p, "a")] for p in range(4)] == [10, 10, 30, 30]
    assert [users[(p, "fixed")] for p in range(4)] == [7, 7, 7, 7]


# -- bad input through the CLI ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("workload.mobile_users: [10, 30]", "workload.mobile_userz: [10, 30]"),
            'tiny.yaml:15: sweep.parameters["workload.mobile_userz"]: at 4 of 4 points, first point 0 '
            "(workload.mobile_userz=10): workload.mobile_userz: unknown field, did you mean 'mobile_users'?",
        ),
        (
            ("workload.mobile_users: [10, 30]", "workload.mobile_users: [10, -1]"),
            'tiny.yaml:15: sweep.parameters["workload.mobile_users"]: at 2 of 4 points, first point 2 '
            "(workload.mobile_users=-1): workload.mobile_users: input should be greater than or equal to 0 (got -1)",
        ),
        (
            ("faults.0.restart_after", "faults.3.restart_after"),
            'tiny.yaml:16: sweep.parameters["faults.3.restart_after"]: at 4 of 4 points, first point 0 '
            "(faults.3.restart_after=10s): faults.3.restart_after: faults has 1 item (index 0) in this scenario",
        ),
        (
            ("[10s, 30s]", "[10s, lots]"),
            'tiny.yaml:16: sweep.parameters["faults.0.restart_after"]: at 2 of 4 points, first point 1 '
            "(faults.0.restart_after=lots): faults[0].restart_after: expected a positive duration",
        ),
        (
            ("workload.mobile_users: [10, 30]", "workload.mobile_users: {low: 1, high: 9}"),
            "tiny.yaml:14: sweep: a grid lists the values of each parameter; workload.mobile_users has a range",
        ),
    ],
)
def test_bad_sweep_parameters_are_bad_input_located_at_their_line(
    tiny: Path, capsys: pytest.CaptureFixture[str], change: tuple[str, str], expected: str
) -> None:
    tiny.write_text(SCENARIO.replace(*change))
    code, out, err = invoke(["sweep", str(tiny), "--out", "o"], capsys)
    assert code == 2 and out == ""
    assert err.startswith(f"{tiny.parent}/{expected}"), err
    assert "Traceback" not in err and not Path("o").exists()
    assert invoke(["validate", str(tiny)], capsys)[0] == 2  # validate checks every point too


@pytest.mark.parametrize(
    ("param", "expected"),
    [
        ("fleet.meterz=1,2", "--param: fleet.meterz: at 8 of 8 points, first point 0 (fleet.meterz=1): fleet.meterz: "),
        (
            "fleet.meters=2,x",
            "--param: fleet.meters: at 4 of 8 points, first point 1 (fleet.meters=x): fleet.meters: "
            'expected an integer (got "x")',
        ),
        (
            "fleet.meters.x=1",
            "--param: fleet.meters.x: at 4 of 4 points, first point 0 (fleet.meters.x=1): "
            "fleet.meters.x: fleet.meters is 10, not a section",
        ),
        ("seed=1,2", "hems-twin: --param seed=1,2: the seed is not swept"),
    ],
)
def test_bad_params_are_bad_input_naming_the_parameter_and_point(
    tiny: Path, capsys: pytest.CaptureFixture[str], param: str, expected: str
) -> None:
    code, _, err = invoke(["sweep", str(tiny), "--param", param, "--out", "o"], capsys)
    assert code == 2 and err.startswith(expected), err
    assert "Traceback" not in err and not Path("o").exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--replications", "0"], "--replications 0: expected 1 to"),
        (["--workers", "x"], "--workers 'x': expected a whole number"),
        (["--param", "a=1", "--param", "a=2"], "--param a is given twice"),
        (["--executor", "dask"], "--executor dask needs --scheduler"),
    ],
)
def test_bad_options_are_bad_input(
    tiny: Path, capsys: pytest.CaptureFixture[str], args: list[str], expected: str
) -> None:
    code, _, err = invoke(["sweep", str(tiny), *args], capsys)
    assert code == 2 and expected in err and err.count("\n") == 1


# -- running, resuming, the tables -----------------------------------------------------------------


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """An uninterrupted sweep of the tiny scenario (2 replications): its files, byte for byte."""
    folder = tmp_path_factory.mktemp("reference")
    (folder / "tiny.yaml").write_text(SCENARIO)
    code = main(
        ["sweep", str(folder / "tiny.yaml"), "--replications", "2", "--workers", "1", "--out", str(folder / "o")]
    )
    assert code == 0
    return {name: (folder / "o" / name).read_bytes() for name in (RUNS_FILE, PARQUET_FILE, CSV_FILE)}


def test_a_sweep_writes_the_tidy_table_and_says_where(
    tiny: Path, capsys: pytest.CaptureFixture[str], reference: dict[str, bytes]
) -> None:
    code, out, _ = invoke(["sweep", str(tiny), "--replications", "2", "--workers", "1", "--out", "o"], capsys)
    assert code == 0
    assert out.startswith("sweep tiny: 4 points x 2 variants x 2 replications = 16 runs\n")
    assert "ran 16, 0 already done (recorded in o/runs.jsonl)" in out
    assert "commands.orphaned (mean of 2 replications)" in out and "wrote o/results.parquet and o/results.csv" in out
    for name in (PARQUET_FILE, CSV_FILE, RUNS_FILE):
        assert (tiny.parent / "o" / name).read_bytes() == reference[name] or name == RUNS_FILE
    frame = pd.read_parquet(tiny.parent / "o" / PARQUET_FILE)
    assert list(frame.columns) == [
        "point", "workload.mobile_users", "faults.0.restart_after", "variant", "replication", "seed", "metric", "value"
    ]  # fmt: skip
    assert frame["workload.mobile_users"].dtype == "int64" and frame["value"].dtype == "float64"
    assert frame.attrs[ATTRS_KEY]["variants"] == ["as-designed", "outbox"]
    assert frame.attrs[ATTRS_KEY]["seeds"] == replication_seeds(3, 2)
    orphaned = frame[(frame["metric"] == "commands.orphaned") & (frame["variant"] == "outbox")]
    assert len(orphaned) == 8 and (orphaned["value"] == 0).all()
    assert frame["metric"].str.startswith("flows.").sum() == 0 and "sensor.stored" in set(frame["metric"])
    csv = pd.read_csv(tiny.parent / "o" / CSV_FILE)
    pd.testing.assert_frame_equal(
        csv, frame.astype({"variant": object, "metric": object, "faults.0.restart_after": object}), check_dtype=False
    )


def test_rerunning_does_only_what_is_missing_and_gives_the_same_files(
    tiny: Path, capsys: pytest.CaptureFixture[str], reference: dict[str, bytes]
) -> None:
    args = ["sweep", str(tiny), "--replications", "2", "--workers", "1", "--out", "o"]
    runs = tiny.parent / "o" / RUNS_FILE
    runs.parent.mkdir()
    lines = reference[RUNS_FILE].splitlines(keepends=True)
    kept = lines[:3] + lines[5:9]
    runs.write_bytes(b"".join(kept) + lines[9][:40])  # as if killed mid-write of the tenth line
    code, out, _ = invoke(args, capsys)
    assert code == 0 and "ran 9, 7 already done" in out
    written = runs.read_bytes().splitlines(keepends=True)
    assert written[:7] == kept  # the finished runs kept as they were, the cut line gone
    assert sorted(written) == sorted(lines)
    for name in (PARQUET_FILE, CSV_FILE):
        assert (tiny.parent / "o" / name).read_bytes() == reference[name]
    assert "ran 0, 16 already done" in invoke(args, capsys)[1]


def test_more_replications_reuse_the_runs_already_done(
    tiny: Path, capsys: pytest.CaptureFixture[str], reference: dict[str, bytes]
) -> None:
    (tiny.parent / "o").mkdir()
    (tiny.parent / "o" / RUNS_FILE).write_bytes(reference[RUNS_FILE])
    code, out, _ = invoke(["sweep", str(tiny), "--replications", "3", "--workers", "1", "--out", "o"], capsys)
    assert code == 0 and "ran 8, 16 already done" in out


def test_a_sweep_killed_with_sigkill_loses_no_finished_run(
    tiny: Path, capsys: pytest.CaptureFixture[str], reference: dict[str, bytes]
) -> None:
    args = ["sweep", str(tiny), "--replications", "2", "--workers", "1", "--out", "o"]
    runs = tiny.parent / "o" / RUNS_FILE
    child = subprocess.Popen([sys.executable, "-m", "sim", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and child.poll() is None:
            if runs.exists() and runs.read_bytes().count(b"\n") >= 3:
                break
            time.sleep(0.005)
        assert child.poll() is None, "the sweep finished before it could be killed"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait()
    assert child.returncode == -signal.SIGKILL
    before = runs.read_bytes()
    finished = before[: before.rfind(b"\n") + 1].splitlines(keepends=True)
    assert 3 <= len(finished) < 16 and not (tiny.parent / "o" / PARQUET_FILE).exists()
    code, out, _ = invoke(args, capsys)
    assert code == 0 and f"ran {16 - len(finished)}, {len(finished)} already done" in out
    assert runs.read_bytes().splitlines(keepends=True)[: len(finished)] == finished
    for name in (PARQUET_FILE, CSV_FILE):
        assert (tiny.parent / "o" / name).read_bytes() == reference[name]


def test_unreadable_lines_are_skipped_and_their_runs_redone(tmp_path: Path) -> None:
    runs = tmp_path / RUNS_FILE
    good = {"key": "k1", "figures": {"a.b": 1}}
    runs.write_text('{"key": "k0", "fig\n' + json.dumps(good) + "\n[1, 2]\n")
    with RunStore(tmp_path) as store:
        assert set(store.records) == {"k1"} and store.unreadable_lines == 2 and not store.repaired
        store.append({"key": "k2", "figures": {"x": math.pi}})
    assert json.loads(runs.read_text().splitlines()[-1]) == {"figures": {"x": math.pi}, "key": "k2"}


def test_one_sweep_writes_to_a_folder_at_a_time(tmp_path: Path) -> None:
    with RunStore(tmp_path), pytest.raises(SimError, match="is locked by another sweep"):
        RunStore(tmp_path)
    RunStore(tmp_path).close()  # released


def test_figures_are_flow_numbers_named_as_expectations_name_them() -> None:
    result = {
        "flows": {"commands": {"orphaned": 2, "ok": True, "latency_s": {"p99": 0.1234567890123456}, "rate": None},
                  "faults": {"seen": 1}},
        "faults": [],
        "components": {"iot-core": {"served": 9}},
    }  # fmt: skip
    found = figures(result, ["components.iot-core.served", "components.nothing"])
    assert found == {
        "commands.latency_s.p99": 0.123456789012,
        "commands.orphaned": 2,
        "commands.rate": None,
        "components.iot-core.served": 9,
        "flows.faults.seen": 1,  # "faults" alone would name the top-level fault log
    }


def test_a_sweep_in_memory_gives_the_same_table_as_one_on_disk(tiny: Path, reference: dict[str, bytes]) -> None:
    scenario = load(TWIN, tiny)
    plan = plan_sweep(TWIN, scenario, design_points(scenario.sweep, 3), replication_seeds(3, 2))
    result = run_sweep(plan, None, workers=1)
    assert result.folder is None and result.complete and result.ran == 16 and result.invariants_held
    expected = pd.read_parquet(io.BytesIO(reference[PARQUET_FILE]))
    pd.testing.assert_frame_equal(result.to_frame(), expected)
    assert [run["variant"] for run in result.body["runs"][:4]] == ["as-designed"] * 2 + ["outbox"] * 2


@pytest.mark.slow
def test_the_table_does_not_depend_on_the_number_of_workers(
    tiny: Path, capsys: pytest.CaptureFixture[str], reference: dict[str, bytes]
) -> None:
    code, _, _ = invoke(["sweep", str(tiny), "--replications", "2", "--workers", "2", "--out", "o"], capsys)
    assert code == 0
    for name in (PARQUET_FILE, CSV_FILE):
        assert (tiny.parent / "o" / name).read_bytes() == reference[name]
    assert sorted((tiny.parent / "o" / RUNS_FILE).read_bytes().splitlines()) == sorted(
        reference[RUNS_FILE].splitlines()
    )


def test_a_run_too_big_for_the_machine_is_refused_before_anything_runs(
    tiny: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = invoke(["sweep", str(tiny), "--param", "fleet.meters=10,10000000", "--out", "o"], capsys)
    assert code == 2 and err.startswith(
        "hems-twin: point 1 (workload.mobile_users=10, faults.0.restart_after=10s, fleet.meters=10000000), "
        "variant as-designed: a run would need"
    )
    assert err.rstrip().endswith("--force runs it anyway") and not Path("o").exists()


def test_adding_values_to_a_grid_keeps_the_keys_of_the_runs_already_planned(tiny: Path) -> None:
    scenario = load(TWIN, tiny)
    seeds = replication_seeds(3, 1)
    small = plan_sweep(TWIN, scenario, sweep_points(scenario.sweep, {}, 3), seeds)
    grown = plan_sweep(TWIN, scenario, sweep_points(scenario.sweep, {"workload.mobile_users": [10, 30, 50]}, 3), seeds)
    assert len(grown.runs) == 12 and {r.key for r in small.runs} < {r.key for r in grown.runs}
    extra = plan_sweep(TWIN, scenario, sweep_points(scenario.sweep, {"workload.dashboard_users": [2]}, 3), seeds)
    # the file's own value, but a parameter more: the key names the parameters, so these are new runs
    assert not {r.key for r in small.runs} & {r.key for r in extra.runs}
    assert {r.scenario_hash for r in small.runs} == {r.scenario_hash for r in extra.runs}
