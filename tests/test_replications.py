"""Replications: spawned seeds, common random numbers, intervals, and the same bytes however they run.

The scenario is the variant pair of the CLI tests cut to two simulated minutes (a broker
crash at 30 s orphans commands unless the outbox is on), so each run takes a fraction of a
second and a test of a few replications stays fast.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models.twin import TWIN
from sim import executors, replications
from sim.cli import load
from sim.executors import RunTask, TaskError, execute
from sim.replications import Replications, metric_paths, replicate, replication_seeds, scenario_data
from sim.results import canonical_json
from sim.stats import mean_ci, paired_difference_ci
from sim.variants import variant_scenarios
from tests.test_cli_run import invoke

PAIR = """\
name: pair
duration: 2m
seed: 3
fleet: {meters: 30, controllables: 20}
workload: {mobile_users: 1000, dashboard_users: 5}
faults:
  - {kind: crash, target: iot-core, at: 30s, restart_after: 40s}
variants:
  as-designed: {}
  outbox: {device_manager: {outbox: true}}
expect:
  as-designed: [commands.orphaned > 0]
  outbox: [commands.orphaned == 0]
  between:
    - commands.orphaned: outbox < as-designed
"""
N = 3
ROOT_SEED = 11
REAL_RUN = TWIN.run


@pytest.fixture(scope="module")
def pair_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pair") / "pair.yaml"
    path.write_text(PAIR)
    return path


@pytest.fixture(scope="module")
def pair(pair_file: Path) -> Any:
    return load(TWIN, pair_file)


@pytest.fixture(scope="module")
def serial(pair: Any) -> Replications:
    """The pair replicated one run after another in this process (computed once)."""
    return replicate(TWIN, pair, N, ROOT_SEED, workers=1)


@pytest.fixture
def workspace(pair_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "pair.yaml"
    path.write_text(pair_file.read_text())
    return path


# -- seeds and common random numbers ---------------------------------------------------------


def test_seeds_are_spawned_from_the_root_seed() -> None:
    children = np.random.SeedSequence(ROOT_SEED).spawn(4)
    expected = [int(c.generate_state(1, dtype=np.uint64)[0]) >> 1 for c in children]
    assert replication_seeds(ROOT_SEED, 4) == expected
    assert len(set(expected)) == 4 and all(0 <= s < 2**63 for s in expected)
    assert replication_seeds(ROOT_SEED, 2) == expected[:2]  # more replications keep the earlier ones
    assert replication_seeds(ROOT_SEED + 1, 2) != expected[:2]


def test_every_variant_of_a_replication_runs_on_its_seed(pair: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[RunTask] = []

    def recording(twin_name: str | None, tasks: list[RunTask], **options: Any) -> list[dict[str, Any]]:
        seen.extend(tasks)
        return execute(twin_name, tasks, **options)

    monkeypatch.setattr(replications, "execute", recording)
    result = replicate(TWIN, pair, N, ROOT_SEED, workers=1)
    seeds = replication_seeds(ROOT_SEED, N)
    assert [task.seed for task in seen] == [seed for seed in seeds for _ in range(2)]
    outbox = [task.scenario["device_manager"]["outbox"] for task in seen]
    assert outbox == [False, True] * N
    assert result.body["replications"]["seeds"] == seeds and result.seeds == tuple(seeds)
    # common random numbers: what the outbox does not touch is drawn identically, run for run
    metrics = result.body["variants"]
    for figure in ("sensor.readings_emitted", "commands.intents", "analytics.requests"):
        assert metrics["outbox"]["metrics"][figure]["values"] == metrics["as-designed"]["metrics"][figure]["values"]
        difference = metrics["outbox"]["difference_from_first"][figure]
        assert (difference["mean"], difference["ci_low"], difference["ci_high"]) == (0, 0, 0)


def test_a_task_carries_the_whole_variant_scenario(pair: Any) -> None:
    for variant in variant_scenarios(pair).values():
        data = scenario_data(variant)
        assert "variants" not in data and "expect" not in data
        assert TWIN.scenario_type.model_validate(data) == variant
        json.dumps(data)  # plain data


# -- the body --------------------------------------------------------------------------------


def test_each_figure_has_its_values_mean_and_interval(serial: Replications) -> None:
    body = serial.body
    assert body["first_variant"] == "as-designed" and list(body["variants"]) == ["as-designed", "outbox"]
    orphaned = body["variants"]["as-designed"]["metrics"]["commands.orphaned"]
    assert len(orphaned["values"]) == N and orphaned["method"] == "t" and orphaned["n"] == N
    reference = mean_ci(orphaned["values"])
    assert (orphaned["mean"], orphaned["ci_low"], orphaned["ci_high"]) == (
        reference.estimate,
        reference.low,
        reference.high,
    )
    p99 = body["variants"]["as-designed"]["metrics"]["commands.latency_s.p99"]
    assert p99["method"] == "bootstrap" and body["variants"]["as-designed"]["metrics"]["sensor.stored"]["method"] == "t"
    assert set(body["replications"]["methods"]) == {"t", "bootstrap", "paired-t", "wilson"}
    assert body["replications"]["count"] == N and body["replications"]["root_seed"] == ROOT_SEED


def test_the_paired_difference_and_its_interval(serial: Replications) -> None:
    variants = serial.body["variants"]
    first = variants["as-designed"]["metrics"]["commands.orphaned"]["values"]
    outbox = variants["outbox"]["metrics"]["commands.orphaned"]["values"]
    assert all(value > 0 for value in first) and outbox == [0] * N
    difference = variants["outbox"]["difference_from_first"]["commands.orphaned"]
    reference = paired_difference_ci(outbox, first)
    assert difference == {**reference.as_dict()}
    assert difference["method"] == "paired-t" and difference["ci_high"] < 0  # the outbox removes orphans
    assert "difference_from_first" not in variants["as-designed"]


def test_steady_state_is_truncated_by_mser5_and_says_so(serial: Replications) -> None:
    body = serial.body
    assert body["steady_state"]["method"].startswith("MSER-5") and body["steady_state"]["interval_s"] == 60.0
    series = body["variants"]["as-designed"]["steady_state"]["readings.stored"]
    assert len(series["truncation_points"]) == N and series["truncation"]["n"] == N
    assert len(series["truncated_mean"]["values"]) == N and series["truncation_s"]["method"] == "t"


def test_expectations_are_counted_over_replications(serial: Replications) -> None:
    body = serial.body
    assert [(e["variant"], e["held_on"], e["of"]) for e in body["expectations"]] == [
        ("as-designed", N, N),
        ("outbox", N, N),
        ("outbox", N, N),
    ]
    assert body["expectations_held"] and body["invariants_held"]


def test_frames_for_notebooks(serial: Replications) -> None:
    tidy = serial.to_frame()
    assert list(tidy.columns) == ["replication", "seed", "variant", "metric", "value"]
    metrics = len(serial.body["variants"]["as-designed"]["metrics"])
    assert len(tidy) == N * 2 * metrics
    row = tidy[(tidy.variant == "outbox") & (tidy.metric == "commands.orphaned") & (tidy.replication == 1)]
    assert row.value.tolist() == [0.0] and row.seed.tolist() == [serial.seeds[1]]
    summary = serial.summary_frame()
    assert {"variant", "metric", "mean", "ci_low", "ci_high", "n", "method"} <= set(summary.columns)
    assert len(summary) == 2 * metrics
    line = summary[(summary.variant == "outbox") & (summary.metric == "commands.orphaned")].iloc[0]
    assert line["diff_ci_high"] < 0


# -- byte-identical however it runs ----------------------------------------------------------


def test_the_same_bytes_with_one_worker_and_with_two(pair: Any, serial: Replications) -> None:
    parallel = replicate(TWIN, pair, N, ROOT_SEED, workers=2)
    assert canonical_json(parallel.body) == canonical_json(serial.body)


def test_the_same_bytes_from_forkserver_workers(pair: Any, serial: Replications) -> None:
    """A process with threads does not fork its workers; they still give the same runs."""
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, daemon=True)
    thread.start()
    try:
        parallel = replicate(TWIN, pair, N, ROOT_SEED, workers=2)
    finally:
        stop.set()
        thread.join()
    assert canonical_json(parallel.body) == canonical_json(serial.body)


def test_the_same_bytes_on_a_dask_cluster(pair: Any, serial: Replications) -> None:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as cluster:
        on_dask = replicate(TWIN, pair, N, ROOT_SEED, executor="dask", scheduler=cluster.scheduler_address)
    assert canonical_json(on_dask.body) == canonical_json(serial.body)


# -- the executor ----------------------------------------------------------------------------


def _tasks(pair: Any, count: int) -> list[RunTask]:
    data = scenario_data(variant_scenarios(pair)["as-designed"])
    return [RunTask(data, seed) for seed in range(count)]


def test_results_come_back_in_task_order_and_each_is_reported_once(pair: Any) -> None:
    reported: list[int] = []
    tasks = _tasks(pair, 4)
    results = execute(TWIN.name, tasks, workers=2, on_result=lambda index, _body: reported.append(index))
    assert sorted(reported) == [0, 1, 2, 3]
    alone = [REAL_RUN(TWIN.scenario_type.model_validate(t.scenario), t.seed) for t in tasks]
    assert canonical_json(results) == canonical_json(alone)


def test_a_progress_bar_goes_to_stderr_only_when_asked(pair: Any, capsys: pytest.CaptureFixture[str]) -> None:
    execute(TWIN.name, _tasks(pair, 2), workers=1, progress=True)
    shown = capsys.readouterr()
    assert "hems-twin runs" in shown.err and shown.out == ""
    execute(TWIN.name, _tasks(pair, 2), workers=1)
    assert capsys.readouterr().err == ""  # not a terminal


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failing_run_names_its_seed_and_scenario(pair: Any, workers: int) -> None:
    tasks = _tasks(pair, 3)
    broken = RunTask({**tasks[1].scenario, "duration": "soon"}, 77)
    with pytest.raises(TaskError, match=r"run 1 \(scenario pair, seed 77\) failed: ValidationError") as caught:
        execute(TWIN.name, [tasks[0], broken, tasks[2]], workers=workers)
    assert caught.value.seed == 77 and caught.value.scenario_name == "pair"
    assert "duration" in str(caught.value.__cause__)


def test_a_failure_does_not_wait_for_the_runs_still_going(pair: Any) -> None:
    long, broken = _tasks(pair, 2)
    long = RunTask({**long.scenario, "duration": 24 * 3600.0}, 1)  # minutes of work
    broken = RunTask({**broken.scenario, "duration": "soon"}, 2)
    started = time.monotonic()
    with pytest.raises(TaskError, match=r"run 1 \(scenario pair, seed 2\)"):
        execute(TWIN.name, [long, broken], workers=2)
    assert time.monotonic() - started < 20


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"executor": "spark"}, "unknown executor"),
        ({"executor": "dask"}, "needs the scheduler"),
        ({"scheduler": "tcp://x:1"}, "only used by the dask executor"),
        ({"workers": 0}, "at least 1"),
    ],
)
def test_bad_executor_options(pair: Any, options: dict[str, Any], message: str) -> None:
    with pytest.raises(executors.SimError, match=message):
        execute(TWIN.name, _tasks(pair, 1), **options)


def test_too_few_replications_are_refused(pair: Any) -> None:
    with pytest.raises(executors.SimError, match="at least two"):
        replicate(TWIN, pair, 1, ROOT_SEED)


# -- the command line ------------------------------------------------------------------------


def test_replications_through_the_command_line(workspace: Path, serial: Replications) -> None:
    code, out, err = invoke(["run", str(workspace), "--seed", str(ROOT_SEED), "--out", "o", "--replications", str(N)])
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"{N} replications, seeds spawned from root seed {ROOT_SEED}; 2 variants, each on the same seeds"
    orphaned = next(i for i, line in enumerate(lines) if line.startswith("commands.orphaned "))
    assert "as-designed" in lines[orphaned] and lines[orphaned + 1].split()[0] == "outbox"
    assert lines[orphaned + 1].rstrip().endswith("*")  # the difference excludes zero
    assert f"held   {N:>4}/{N} [outbox] commands.orphaned == 0" in out and "MSER-5" in out
    result = json.loads((workspace.parent / "o" / "result.json").read_text())
    assert result["format_version"] == 1 and result["seed"] == ROOT_SEED and result["scenario"] == "pair"
    assert canonical_json({k: v for k, v in result.items() if k in serial.body}) == canonical_json(serial.body)


def test_json_replications_print_exactly_the_file(workspace: Path) -> None:
    code, out, _ = invoke(["run", str(workspace), "--out", "o", "--replications", "2", "--workers", "2", "--json"])
    assert code == 0 and out == (workspace.parent / "o" / "result.json").read_text()


def test_an_expectation_failing_on_a_replication_exits_1(workspace: Path) -> None:
    workspace.write_text(PAIR.replace("outbox: [commands.orphaned == 0]", "outbox: [commands.orphaned > 0]"))
    code, out, _ = invoke(["run", str(workspace), "--out", "o", "--replications", "2", "--workers", "1"])
    assert code == 1 and "FAILED    0/2 [outbox] commands.orphaned > 0   failed on replications 0, 1" in out


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--replications", "1"], "--replications 1: expected 2 to 10,000"),
        (["--replications", "many"], "--replications 'many': expected a whole number"),
        (["--replications", "3", "--seeds", "3"], "--replications and --seeds cannot be combined"),
        (["--replications", "3", "--workers", "0"], "--workers 0: expected 1 to 1,024"),
        (["--workers", "2"], "--workers applies to replicated runs only"),
        (["--replications", "3", "--executor", "dask"], "--executor dask needs --scheduler ADDR"),
        (["--replications", "3", "--executor", "ray"], "--executor 'ray': expected one of local, dask"),
        (["--replications", "3", "--scheduler", "tcp://h:1"], "--scheduler is only used with --executor dask"),
    ],
)
def test_bad_replication_arguments_are_one_line_and_exit_2(workspace: Path, arguments: list[str], message: str) -> None:
    code, out, err = invoke(["run", str(workspace), "--out", "o", *arguments])
    assert code == 2 and out == ""
    assert err == f"hems-twin: {message}" + err.removeprefix(f"hems-twin: {message}") and err.count("\n") == 1
    assert not (workspace.parent / "o").exists()


def test_a_run_that_crashes_is_reported_with_its_seed(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def run(scenario: Any, seed: int, progress: Any = None) -> dict[str, Any]:
        raise ZeroDivisionError("the twin divided by zero")

    monkeypatch.setattr(TWIN, "run", run)
    code, _, err = invoke(["run", str(workspace), "--out", "o", "--replications", "2", "--workers", "1"])
    assert code == 3
    assert "crash: TaskError: run 0 (scenario pair, seed" in err and "ZeroDivisionError" in err
    assert "--replications 2 --workers 1" in err and (workspace.parent / "o" / "crash-traceback.txt").exists()


def test_metric_paths_cover_flows_and_each_sections_headline_numbers() -> None:
    results = [
        {
            "flows": {"commands": {"orphaned": 3, "latency_s": {"p99": 0.2}}, "sensor": {"stored": 10}},
            "durability": {"rpo_s": 55.0, "rto_s": None, "everything_lost": 0, "disasters": [{"rpo_s": 55.0}]},
            "engine": {"events": 100, "simulated_s": 60.0},
            "health": {"readiness_probe": "shallow", "gate_traffic": False, "probes": {"deep": {"runs": 3}}},
            "invariants_held": True,
        }
    ]
    assert metric_paths(results, ["commands.applied"]) == [
        "commands.applied",
        "commands.orphaned",
        "commands.latency_s.p99",
        "sensor.stored",
        "durability.rpo_s",
        "durability.rto_s",
        "durability.everything_lost",
        "engine.events",
        "engine.simulated_s",
    ]
