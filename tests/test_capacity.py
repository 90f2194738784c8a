"""Capacity (finding M3): the knee, the saturation order, the publish-limit ceiling, and what a
result says when IoT Core's per-connection limit refuses publishes."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from models.results import summarise
from models.twin import TWIN, build
from sim.api import sweep
from sim.capacity import (
    Crossing,
    Study,
    analyse,
    crossing,
    knee,
    rate_ceiling,
    report_text,
    runs_table,
    saturation_order,
)
from sim.cli import load
from sim.results import canonical_json
from sim.store import COMPONENT_FIGURES, figures
from tests.conftest import SCENARIOS

M3 = SCENARIOS / "m3-capacity.yaml"
STUDY = Study(
    load="workload.mobile_users",
    latency=("commands.latency_s.p95", "analytics.latency_s.p95"),
    threshold=0.2,
    refused="commands.publish_limit.intents_refused",
    total="commands.intents",
    limit="commands.publish_limit.limit_per_s",
)


# -- crossings on synthetic curves ------------------------------------------------------------------


def test_a_crossing_is_interpolated_between_the_points_around_it() -> None:
    found = crossing([1000, 2000, 3000], [0.1, 0.15, 0.35], 0.2)
    assert found.status == "within" and found.bracket == (2000, 3000)
    assert found.load == pytest.approx(2250)


def test_log_interpolation_follows_a_geometric_rise() -> None:
    """Latency growing tenfold per step: the threshold one decade up sits one step along."""
    found = crossing([0, 10, 20], [0.002, 0.02, 2.0], 0.2, log=True)
    assert found.status == "within" and found.load == pytest.approx(15.0)
    assert crossing([0, 10, 20], [0.002, 0.02, 2.0], 0.2).load == pytest.approx(10 + 10 * 0.18 / 1.98)


def test_no_knee_when_the_curve_stays_under_the_threshold() -> None:
    assert crossing([5, 1, 3], [0.05, 0.05, 0.2], 0.2) == Crossing(None, "none", (5.0, None))


def test_a_curve_above_the_threshold_at_the_first_point_has_its_knee_there_or_lower() -> None:
    assert crossing([2, 1], [0.5, 0.3], 0.2) == Crossing(1.0, "below", (None, 1.0))


def test_missing_values_are_left_out_and_only_the_first_crossing_counts() -> None:
    found = crossing([1, 2, 3, 4, 5], [0.1, math.nan, 0.3, 0.1, 0.9], 0.2)
    assert found.bracket == (1.0, 3.0) and found.load == pytest.approx(2.0)
    assert crossing([1, 2], [math.nan, math.nan], 0.2).status == "none"
    with pytest.raises(ValueError, match="3 loads but 2 values"):
        crossing([1, 2, 3], [0.1, 0.2], 0.2)


# -- the analysis on a synthetic sweep table --------------------------------------------------------


def synthetic_table(curves: dict[str, list[list[float]]], loads: list[int]) -> pd.DataFrame:
    """A tidy sweep table: ``curves[metric][replication][point]``, the load as a mapping-valued
    parameter (``workload: {mobile_users, dashboard_users}``) as the M3 scenario sweeps it."""
    rows = []
    for metric, replications in curves.items():
        for replication, values in enumerate(replications):
            for point, (users, value) in enumerate(zip(loads, values, strict=True)):
                workload = json.dumps({"dashboard_users": users, "mobile_users": users}, sort_keys=True)
                rows.append((point, workload, "as-designed", replication, 100 + replication, metric, value))
    frame = pd.DataFrame(rows, columns=["point", "workload", "variant", "replication", "seed", "metric", "value"])
    return frame.sort_values(["point", "variant", "replication", "metric"], ignore_index=True)


LOADS = [1000, 2000, 5000, 10000]
TABLE = synthetic_table(
    {
        "commands.latency_s.p95": [[0.05, 0.05, 0.1, 2.0], [0.05, 0.06, 0.15, 20.0], [0.05, 0.05, 0.12, 0.5]],
        "analytics.latency_s.p95": [[0.05, 0.06, 0.07, 0.08]] * 2 + [[0.05, 0.06, 0.07, 0.3]],
        "components.analytics-engine.utilisation": [[0.1, 0.2, 0.5, 1.0]] * 3,
        "components.api-gateway.utilisation": [[0.05, 0.1, 0.9, 1.0]] * 3,
        "components.redis.utilisation": [[0.0, 0.01, 0.02, 0.04]] * 3,
        "components.iot-core.utilisation": [[0.0, 0.02, 0.05, 0.06]] * 3,
        "commands.intents": [[100, 200, 500, 1000]] * 3,
        "commands.publish_limit.intents_refused": [[0, 0, 100, 550], [0, 0, 80, 560], [0, 0, 120, 540]],
        "commands.publish_limit.limit_per_s": [[100.0] * 4] * 3,
    },
    LOADS,
)


def test_the_runs_table_has_a_row_per_run_and_the_load_as_a_number() -> None:
    runs = runs_table(TABLE)
    assert len(runs) == 12
    assert list(runs.columns[:6]) == ["point", "workload", "variant", "replication", "seed", "analytics.latency_s.p95"]
    assert runs["workload.mobile_users"].dtype == "float64"
    assert runs["workload.mobile_users"].tolist() == [float(u) for u in LOADS for _ in range(3)]


def test_a_knee_has_an_interval_only_when_every_replication_has_one() -> None:
    runs = runs_table(TABLE)
    commands = knee(runs, "commands.latency_s.p95", 0.2, "workload.mobile_users")
    assert commands.mean_curve.status == "within" and commands.mean_curve.bracket == (5000, 10000)
    assert [c.status for c in commands.replications] == ["within"] * 3
    assert commands.interval is not None and commands.interval.n == 3
    assert commands.interval.low is not None and commands.interval.low < commands.interval.estimate  # type: ignore[operator]
    dashboards = knee(runs, "analytics.latency_s.p95", 0.2, "workload.mobile_users")
    assert [c.status for c in dashboards.replications] == ["none", "none", "within"]
    assert dashboards.interval is None and dashboards.mean_curve.status == "none"


def test_components_are_ordered_by_the_load_where_they_pass_the_share() -> None:
    order = saturation_order(runs_table(TABLE), "workload.mobile_users", above=0.8)
    assert [s.component for s in order] == ["api-gateway", "analytics-engine", "iot-core", "redis"]
    gateway, analytics = order[0], order[1]
    assert gateway.crossing.load == pytest.approx(2000 + 3000 * 0.7 / 0.8)
    assert analytics.crossing.load == pytest.approx(5000 + 5000 * 0.3 / 0.5)
    assert order[2].crossing.status == "none" and order[2].peak == pytest.approx(0.06)


def test_the_ceiling_is_where_the_limit_first_refuses_and_what_it_lets_through() -> None:
    ceiling = rate_ceiling(
        runs_table(TABLE),
        "workload.mobile_users",
        "commands.publish_limit.intents_refused",
        "commands.intents",
        limit="commands.publish_limit.limit_per_s",
    )
    assert ceiling.limit == 100.0
    assert ceiling.first_refused.status == "within" and ceiling.first_refused.bracket == (2000, 5000)
    assert ceiling.estimated_at == 5000 and ceiling.load is not None
    assert ceiling.load.estimate == pytest.approx(5000 * 0.8)
    assert ceiling.shares["mean"].tolist() == pytest.approx([0, 0, 0.2, 0.55])


def test_the_report_says_the_knees_the_saturation_and_the_ceiling() -> None:
    text = report_text(analyse(TABLE, STUDY), top=2)
    lines = text.splitlines()
    assert (
        lines[0]
        == "capacity of variant as-designed: workload.mobile_users from 1,000 to 10,000, 4 points x 3 replications"
    )
    assert any(line.startswith("  commands.latency_s.p95") and "CI over 3 replications" in line for line in lines)
    assert any("analytics.latency_s.p95" in line and "no interval" in line for line in lines)
    assert "  1. api-gateway" in text and "  ... 2 more, none busier" in text
    assert "the limit lets through about 4,000" in text and "10,000: 55 %" in text


def test_several_variants_need_one_named() -> None:
    two = pd.concat([TABLE, TABLE.assign(variant="outbox")], ignore_index=True)
    with pytest.raises(ValueError, match="2 variants"):
        analyse(two, STUDY)
    assert analyse(two, STUDY, variant="outbox").variant == "outbox"


# -- what a result says about the publish limit -----------------------------------------------------

LIMITED = """\
name: limited
duration: 1m
seed: 3
fleet: {meters: 10, controllables: 200}
broker: {publish_limit_per_s: 10}
workload: {mobile_users: 200, commands_per_user_per_hour: 600, dashboard_users: 0, quiet_before_end: 20s}
"""


def limited(tmp_path: Path, **changes: Any) -> dict[str, Any]:
    data = yaml.safe_load(LIMITED)
    for section, values in changes.items():
        data[section] = {**data.get(section, {}), **values}
    path = tmp_path / "limited.yaml"
    path.write_text(yaml.safe_dump(data))
    spec = load(TWIN, path)
    world = build(spec, seed=3)
    world.kernel.run(until=spec.duration)
    first = summarise(world)
    assert canonical_json(summarise(world)) == canonical_json(first)  # a reading, twice the same
    return first


def test_a_refused_publish_orphans_its_command_and_the_result_says_so(tmp_path: Path) -> None:
    result = limited(tmp_path)
    limit = result["flows"]["commands"]["publish_limit"]
    assert limit["publishes_refused"] == result["components"]["iot-core"]["publishes_throttled"] > 0
    # as designed the device manager answers 202 and leaves the row pending: orphaned, the app told "accepted"
    assert limit["intents_refused"] == limit["failed"] == limit["orphaned"] == limit["accepted_but_failed"] > 0
    assert limit["applied"] == limit["in_flight"] == 0 and limit["limit_per_s"] == 10
    assert limit["orphaned"] <= result["flows"]["commands"]["orphaned"]
    (warning,) = result["warnings"]
    assert warning.startswith(
        f"IoT Core's per-connection publish limit (10/s) refused {limit['publishes_refused']:,} publishes"
    )
    assert f"{limit['orphaned']:,} orphaned pending" in warning
    assert result["invariants_held"]


def test_no_warning_when_the_limit_refuses_nothing(tmp_path: Path) -> None:
    result = limited(tmp_path, broker={"publish_limit_per_s": 1000})
    assert result["warnings"] == []
    limit = result["flows"]["commands"]["publish_limit"]
    assert limit["publishes_refused"] == limit["intents_refused"] == limit["failed"] == 0


def test_with_the_outbox_refused_publishes_are_applied_by_a_later_attempt(tmp_path: Path) -> None:
    result = limited(tmp_path, device_manager={"outbox": True})
    limit = result["flows"]["commands"]["publish_limit"]
    assert limit["publishes_refused"] > 0 and limit["applied"] > 0 and limit["orphaned"] == 0
    assert limit["intents_refused"] == limit["applied"] + limit["failed"] + limit["in_flight"]
    assert "were applied by a later attempt" in result["warnings"][0]


def test_a_sweep_table_holds_each_components_queueing_figures() -> None:
    body = {
        "flows": {},
        "components": {"api-gateway": {"utilisation": 0.5, "queue_wait_s": {"p95": 0.1}}, "meters": {}},
    }
    found = figures(body)
    assert found == {"components.api-gateway.utilisation": 0.5, "components.api-gateway.queue_wait_s.p95": 0.1}
    assert "utilisation" in COMPONENT_FIGURES


# -- the M3 scenario --------------------------------------------------------------------------------


def test_the_m3_scenario_sweeps_app_users_with_their_dashboards() -> None:
    scenario = load(TWIN, M3)
    assert scenario.sweep is not None
    (points,) = scenario.sweep.parameters.values()
    users = [point["mobile_users"] for point in points]
    assert users[0] == 1000 and users[-1] == 20000 and users == sorted(users)
    assert all(point["dashboard_users"] == point["mobile_users"] for point in points)
    assert scenario.workload.mobile_users == 10000  # the file's own run: the review's target


def tiny_m3() -> dict[str, Any]:
    """The M3 scenario scaled down: a minute, a tenth of IoT Core's limit, two analytics workers."""
    data: dict[str, Any] = yaml.safe_load(M3.read_text())
    data["duration"] = "1m"
    data["workload"]["quiet_before_end"] = "10s"
    data["fleet"] = {"meters": 20, "controllables": 1200}
    data["broker"] = {"publish_limit_per_s": 10}  # ceiling: 600 users at a command a minute
    data["analytics"] = {"concurrency": 2}  # about 40 refreshes a second: saturates near 600 users
    return data


def test_a_tiny_m3_sweep_finds_its_knee_saturation_and_ceiling(tmp_path: Path) -> None:
    points = [{"mobile_users": n, "dashboard_users": n} for n in (100, 300, 600, 1200)]
    swept = sweep(tiny_m3(), {"workload": points}, replications=2, workers=1, out=tmp_path / "o")
    assert swept.complete and swept.invariants_held
    tidy = swept.to_frame()
    assert {"components.analytics-engine.utilisation", "components.api-gateway.mean_queue_length"} <= set(
        tidy["metric"]
    )
    capacity = analyse(tmp_path / "o", STUDY)  # read back from results.parquet
    assert capacity.loads == (100, 300, 600, 1200) and capacity.replications == 2
    dashboards = capacity.knees[1]
    assert dashboards.mean_curve.status == "within" and 300 <= dashboards.mean_curve.load <= 1200  # type: ignore[operator]
    assert capacity.saturation[0].component == "analytics-engine"
    assert capacity.ceiling is not None and capacity.ceiling.first_refused.bracket == (300, 600)
    assert capacity.ceiling.load is not None and capacity.ceiling.load.estimate == pytest.approx(600, rel=0.1)
    assert "saturation:" in report_text(capacity)


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_the_full_m3_sweep(tmp_path: Path) -> None:
    """The file's sweep as written, three replications (5 to 10 minutes on two cores)."""
    swept = sweep(M3, replications=3, out=tmp_path / "o")
    assert swept.invariants_held
    capacity = analyse(swept, STUDY)
    commands, dashboards = capacity.knees
    assert commands.mean_curve.status == dashboards.mean_curve.status == "within"
    assert 10000 <= dashboards.mean_curve.load <= commands.mean_curve.load <= 20000  # type: ignore[operator]
    assert [s.component for s in capacity.saturation[:2]] == ["analytics-engine", "api-gateway"]
    assert capacity.ceiling is not None and capacity.ceiling.load is not None
    assert capacity.ceiling.load.estimate == pytest.approx(6000, rel=0.05)  # 100 publishes/s at 60 per user per hour
