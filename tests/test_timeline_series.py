"""The result data the report's timelines and CDF figures read: per-interval p95 series
(against numpy), per-actor queue depth peaks (on a scripted actor), the users' failures per
interval, and the ``distributions`` section (shape, probabilities, monotone values)."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models.names import (
    APP_RESPONSE,
    COMMAND_FAILED,
    COMMAND_LATENCY,
    COMMAND_LATENCY_P95,
    COMMAND_SUCCEEDED,
    DASHBOARD_LATENCY,
    DASHBOARD_LATENCY_P95,
    READING_END_TO_END,
)
from models.twin import TWIN
from sim.cli import load, run_scenario
from sim.distributions import constant
from sim.errors import ModelDefinitionError
from sim.kernel import Kernel
from sim.metrics import CDF_PROBABILITIES, Histogram, Metrics, PeakSeries, QuantileSeries
from tests.test_engine_actor_driver import Get, Store, kernel_with_client, submit

ACCURACY = 0.005  # the sketch's relative error (Histogram's default)


# -- the p95 of each interval ------------------------------------------------------------------


def test_quantile_series_matches_numpy_per_interval_and_is_none_where_empty() -> None:
    rng = np.random.default_rng(11)
    series = QuantileSeries(10.0)
    samples = {0: rng.lognormal(-3.0, 1.0, 500), 1: rng.exponential(2.0, 37), 3: np.array([0.25])}
    for bucket, values in samples.items():
        times = bucket * 10.0 + rng.uniform(0.0, 10.0, values.size)
        for t, value in zip(times.tolist(), values.tolist(), strict=True):
            series.add(t, value)
    got = series.series(50.0)
    assert len(got) == 5 and got[2] is None and got[4] is None
    for bucket, values in samples.items():
        # the sketch's rank is floor(q * (n - 1)): numpy's "lower" method
        exact = float(np.quantile(values, 0.95, method="lower"))
        value = got[bucket]
        assert value is not None and value == pytest.approx(exact, rel=ACCURACY)
    assert got[3] == 0.25  # one value: clamped to the range, exactly
    assert series.series(50.0, since=25.0) == got[2:]  # from the interval holding `since`
    assert json.loads(json.dumps(got)) == got  # JSON-clean: null where empty, no NaN


def test_quantile_series_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="interval"):
        QuantileSeries(0.0)
    with pytest.raises(ValueError, match="q must be"):
        QuantileSeries(1.0, q=1.5)


# -- the peak of a level -----------------------------------------------------------------------


def test_peak_series_carries_the_level_over_intervals_without_change() -> None:
    peaks = PeakSeries(10.0)
    peaks.set(1.0, 3)  # interval 0 rises to 3 ...
    peaks.set(2.0, 5)
    peaks.set(3.0, 1)  # ... peaks at 5 and falls to 1
    peaks.set(45.0, 0)  # 1 held through intervals 1-3 and into 4, then 0
    peaks.set(61.0, 2)  # interval 6 rises to 2, still queued at the end
    assert peaks.series(90.0) == [5, 1, 1, 1, 1, 0, 2, 2, 2]
    assert peaks.series(90.0) == [5, 1, 1, 1, 1, 0, 2, 2, 2]  # reading changes nothing
    assert peaks.series(90.0, since=35.0) == [1, 1, 0, 2, 2, 2]
    assert PeakSeries(10.0).series(30.0) == [0, 0, 0]  # never set: level 0


def test_a_change_on_an_interval_boundary_starts_that_interval_at_the_new_level() -> None:
    series = PeakSeries(5.0)
    series.set(5.0, 3)  # queued at the start of interval 1
    series.set(10.0, 0)  # emptied exactly when interval 2 starts: interval 2 never saw the 3
    assert series.series(15.0) == [0, 3, 0]
    series = PeakSeries(5.0)
    series.set(5.0, 3)
    series.set(11.0, 0)  # emptied a second into interval 2: it did see the 3
    assert series.series(15.0) == [0, 3, 3]


def test_peak_series_against_a_brute_force_step_function() -> None:
    rng = np.random.default_rng(3)
    times = np.sort(rng.uniform(0.0, 100.0, 300))
    levels = rng.integers(0, 9, 300)
    peaks = PeakSeries(7.0)
    for t, level in zip(times.tolist(), levels.tolist(), strict=True):
        peaks.set(t, level)
    expected = []
    for i in range(math.ceil(120.0 / 7.0)):
        low, high = i * 7.0, (i + 1) * 7.0
        before = levels[times < low]
        carried = int(before[-1]) if before.size else 0
        inside = levels[(times >= low) & (times < high)]
        expected.append(max([carried, *inside.tolist()]))
    assert peaks.series(120.0) == expected


# -- the registry ------------------------------------------------------------------------------


def test_metrics_declares_p95_and_peak_and_reads_every_series_by_name() -> None:
    metrics = Metrics(interval=10.0)
    metrics.declare(("b.latency_p95_s", "p95", "s", ""), ("a.depth", "peak", "items", ""), ("c.count", "sum", "", ""))
    metrics.quantile_series("b.latency_p95_s").add(12.0, 0.5)
    metrics.peak_series("a.depth").set(1.0, 4)
    metrics.timeseries("c.count").add(5.0)
    assert metrics.every_series(20.0) == {"a.depth": [4, 4], "b.latency_p95_s": [None, 0.5], "c.count": [1.0, 0.0]}
    assert list(metrics.series) == ["c.count"]  # sums and maxes only: numbers in every interval
    with pytest.raises(ModelDefinitionError, match="declared as a peak"):
        metrics.quantile_series("a.depth")
    with pytest.raises(ModelDefinitionError, match="never declared"):
        metrics.peak_series("a.dpeth")


# -- queue depth per actor ---------------------------------------------------------------------


def _saturated(kernel: Kernel, requests: int) -> Store:
    """A one-worker store taking 10 s per request, ``requests`` sent at once at time 0."""
    db = Store(kernel, "db", service_time=constant(10.0))
    for i in range(requests):
        submit(kernel, Get("db", f"k{i}"))
    return db


def test_an_actor_reports_its_deepest_queue_in_each_interval() -> None:
    kernel = kernel_with_client(metrics_interval=10.0)
    _saturated(kernel, 5)
    kernel.run(70.0)
    # 1 served, 4 queued at ~0.0004 s; one taken at ~10, ~20, ~30, ~40 s: each interval
    # peaks at the depth it started with, which the take then lowers
    assert kernel.metrics.peak_series("queue.db").series(70.0) == [4, 4, 3, 2, 1, 0, 0]
    assert kernel.metrics.catalogue["queue.db"].kind == "peak"
    assert "queue.db" in kernel.metrics.every_series(70.0)


def test_a_crash_empties_the_queue_series() -> None:
    kernel = kernel_with_client(metrics_interval=10.0)
    db = _saturated(kernel, 5)
    kernel.call_later(15.0, lambda: db.crash(restart_after=1.0))
    kernel.run(40.0)
    assert kernel.metrics.peak_series("queue.db").series(40.0) == [4, 4, 0, 0]


# -- a twin run: failures per interval, p95 series, distributions ------------------------------

FAULTED = """\
name: timeline-series
description: a short run with faults, for the timeline and CDF data
duration: 5m
seed: 7
fleet: {meters: 200, controllables: 100}
workload: {mobile_users: 600, dashboard_users: 150, queries_per_user_per_hour: 30}
faults:
  - {kind: crash, target: device-manager, at: 60s, restart_after: 60s}
  - {kind: latency, target: db-replica-1, at: 30s, for: 2m, add: 3s}
"""


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path: Path = tmp_path_factory.mktemp("timeline") / "timeline-series.yaml"
    path.write_text(FAULTED, encoding="utf-8")
    return run_scenario(TWIN, load(TWIN, path), seed=7)


def test_every_answer_the_app_heard_is_a_success_or_a_failure_in_its_interval(result: dict[str, Any]) -> None:
    series = result["timeseries"]
    heard = result["flows"]["commands"]["app_response_s"]["count"]
    failed, succeeded = series[COMMAND_FAILED], series[COMMAND_SUCCEEDED]
    assert sum(failed) > 0 and sum(failed) + sum(succeeded) == heard
    p95 = series[COMMAND_LATENCY_P95]
    assert len(p95) == len(failed)
    # a p95 exactly where some answer was heard
    assert [v is None for v in p95] == [f + s == 0 for f, s in zip(failed, succeeded, strict=True)]


def test_the_dashboard_p95_series_covers_the_good_refreshes(result: dict[str, Any]) -> None:
    series = result["timeseries"]
    good = [r - e for r, e in zip(series["dashboard.requests"], series["dashboard.errors"], strict=True)]
    p95 = series[DASHBOARD_LATENCY_P95]
    assert [v is None for v in p95] == [g == 0 for g in good]
    worst = max(v for v in p95 if v is not None)
    assert worst <= result["flows"]["analytics"]["latency_s"]["max"]
    assert worst > result["flows"]["analytics"]["latency_s"]["p50"]  # the replica's added 3 s shows somewhere


def test_every_actor_has_a_queue_series(result: dict[str, Any]) -> None:
    series = result["timeseries"]
    actors = [name for name in result["components"] if f"queue.{name}" in series]
    assert {"db-primary", "db-replica-1", "device-manager", "api-gateway", "iot-core"} <= set(actors)
    for name in actors:
        values = series[f"queue.{name}"]
        assert len(values) == len(series[COMMAND_FAILED]) and all(isinstance(v, int) and v >= 0 for v in values)


def test_the_distributions_section_tabulates_each_latency_for_a_cdf(result: dict[str, Any]) -> None:
    distributions = result["distributions"]
    assert {APP_RESPONSE, COMMAND_LATENCY, DASHBOARD_LATENCY, READING_END_TO_END} <= set(distributions)
    summaries = {
        APP_RESPONSE: result["flows"]["commands"]["app_response_s"],
        COMMAND_LATENCY: result["flows"]["commands"]["latency_s"],
        DASHBOARD_LATENCY: result["flows"]["analytics"]["latency_s"],
        READING_END_TO_END: result["flows"]["sensor"]["end_to_end_latency_s"],
    }
    for name, entry in distributions.items():
        assert set(entry) == {"count", "unit", "quantiles"} and entry["unit"] == "s"
        points = entry["quantiles"]
        assert entry["count"] > 0 and [p for p, _ in points] == list(CDF_PROBABILITIES)
        values = [v for _, v in points]
        assert all(a <= b for a, b in itertools.pairwise(values)), name
        assert values[-1] > values[0], name
        if name in summaries:  # the same sketch as the summary
            summary = summaries[name]
            assert entry["count"] == summary["count"]
            assert dict(map(tuple, points))[0.5] == summary["p50"]
            assert values[-1] <= summary["max"]


def test_the_probabilities_increase_strictly_over_the_tails() -> None:
    assert CDF_PROBABILITIES[:3] == (0.001, 0.01, 0.02) and CDF_PROBABILITIES[-3:] == (0.99, 0.995, 0.999)
    assert all(a < b for a, b in itertools.pairwise(CDF_PROBABILITIES))
    assert Histogram().quantiles() == []  # count 0: no points
