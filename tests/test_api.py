"""The Python API: ``run`` and ``sweep`` give the command line's results, with tidy tables."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from models.twin import TWIN
from sim.api import load_checked, run, sweep
from sim.cli import load, main
from sim.errors import ScenarioError, SimError
from sim.replications import replication_seeds
from sim.results import canonical_json
from sim.store import PARQUET_FILE, SweepResult
from tests.test_sweep import SCENARIO


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "tiny.yaml"
    path.write_text(SCENARIO)
    return path


def test_run_gives_what_the_command_line_writes(tiny: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = run(tiny, seed=5)
    assert main(["run", str(tiny), "--seed", "5", "--out", "o", "--json"]) == 0
    capsys.readouterr()
    assert canonical_json(result.body) == (tiny.parent / "o" / "result.json").read_text()
    assert repr(result) == "<RunResult tiny: seed 5, variants as-designed, outbox>"


def test_run_to_frame_is_tidy(tiny: Path) -> None:
    frame = run(tiny, seed=5).to_frame()
    assert list(frame.columns) == ["replication", "seed", "variant", "metric", "value"]
    assert set(frame["variant"]) == {"as-designed", "outbox"} and set(frame["seed"]) == {5}
    assert frame["value"].dtype == "float64"
    outbox = frame[frame["variant"] == "outbox"].set_index("metric")["value"]
    assert outbox["commands.orphaned"] == 0 and "sensor.stored" in outbox.index


def test_a_scenario_without_variants_is_one_variant_as_written(tiny: Path) -> None:
    data = yaml.safe_load(SCENARIO)
    for key in ("variants", "expect", "sweep"):
        del data[key]
    result = run(data, seed=5)
    assert "variants" not in result.body and result.body["seed"] == 5
    assert set(result.to_frame()["variant"]) == {"as-written"}


def test_replicated_runs_come_from_the_replications_module(tiny: Path) -> None:
    result = run(tiny, replications=2, workers=1)
    assert result.replications is not None and list(result.replications.seeds) == replication_seeds(3, 2)
    frame = result.to_frame()
    assert list(frame.columns) == ["replication", "seed", "variant", "metric", "value"]
    assert set(frame["replication"]) == {0, 1}
    assert result.body["replications"]["count"] == 2 and result.body["scenario"] == "tiny"
    summary = result.summary_frame().set_index(["variant", "metric"])
    orphaned = summary.loc[("outbox", "commands.orphaned")]
    assert orphaned["n"] == 2 and orphaned["ci_low"] <= orphaned["mean"] <= orphaned["ci_high"]


def test_one_seed_summarises_as_its_values_without_intervals(tiny: Path) -> None:
    result = run(tiny, seed=5)
    summary = result.summary_frame()
    values = result.to_frame()
    assert summary["mean"].equals(values["value"])  # NaN (a figure the run had none of) included
    assert summary["ci_low"].isna().all() and set(summary["n"]) == {1}


def test_sweep_in_memory_and_on_disk_give_the_same_table(tiny: Path) -> None:
    in_memory = sweep(tiny, {"fleet.meters": [10, 12]}, workers=1)
    on_disk = sweep(tiny, {"fleet.meters": [10, 12]}, workers=1, out="o")
    assert isinstance(in_memory, SweepResult) and in_memory.folder is None
    frame = in_memory.to_frame()
    assert list(frame.columns) == [
        "point", "workload.mobile_users", "faults.0.restart_after", "fleet.meters",
        "variant", "replication", "seed", "metric", "value",
    ]  # fmt: skip
    pd.testing.assert_frame_equal(frame, on_disk.to_frame())
    pd.testing.assert_frame_equal(frame, pd.read_parquet(tiny.parent / "o" / PARQUET_FILE))
    again = sweep(tiny, {"fleet.meters": [10, 12]}, workers=1, out="o")
    assert (again.ran, again.reused) == (0, 16)
    body = again.body
    assert body["parameters"] == ["workload.mobile_users", "faults.0.restart_after", "fleet.meters"]
    assert len(body["points"]) == 8 and len(body["runs"]) == 16 and body["variants"] == ["as-designed", "outbox"]
    assert json.loads(json.dumps(body)) == body
    assert repr(again).startswith("<SweepResult tiny: 8 points x 2 variants x 1 replications, 16 of 16 runs recorded")


def test_objects_and_mappings_are_checked_as_files_are(tiny: Path) -> None:
    scenario = load(TWIN, tiny)
    assert load_checked(TWIN, scenario) is scenario
    data = yaml.safe_load(SCENARIO)
    data["fleet"]["meterz"] = 4
    with pytest.raises(ScenarioError, match=r"<scenario>:\d+: fleet\.meterz: unknown field"):
        run(data)
    bad = scenario.model_copy(update={"expect": {"outbox": ["commands.orphans == 0"]}})
    with pytest.raises(ScenarioError, match=r"did you mean 'commands\.orphaned'"):
        run(bad)
    with pytest.raises(SimError, match="expected a scenario file's path"):
        run(42)  # type: ignore[arg-type]


def test_bad_sweep_parameters_name_the_parameter(tiny: Path) -> None:
    with pytest.raises(ScenarioError, match=r"^parameters: fleet\.meterz: at 8 of 8 points"):
        sweep(tiny, {"fleet.meterz": [1, 2]})
    with pytest.raises(SimError, match=r"^parameters: fleet\.meters: expected a list of values \(got 3\)$"):
        sweep(tiny, {"fleet.meters": 3})  # type: ignore[dict-item]
    with pytest.raises(SimError, match="replications must be between 1"):
        sweep(tiny, replications=0)
