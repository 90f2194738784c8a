"""The report's figures: what each draws from a result body, and that the SVG is deterministic.

Unit tests read small hand-made bodies (series arithmetic, breaker bands, ledger shares, the
time axis); the rest run shortened versions of two real scenarios (c3-cascade, whose
countermeasure has breakers, and m1-burn-rates, which has SLOs and alerts) with two
replications, and check the figures a report gets from them.  Text is drawn as paths, so the
labels are read from the comments matplotlib writes beside each text's glyphs.
"""

from __future__ import annotations

import copy
import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pytest
import yaml

from models.report_profile import REPORT_PROFILE
from sim.api import run
from sim.replications import Replications
from sim.report.figures import metric_name, scenario_figures
from sim.report.ledger import ledger_shares
from sim.report.profile import Band, Distribution, Line, Panel, ReportProfile, Signal
from sim.report.runs import Figure, ScenarioRuns
from sim.report.svg import clock, duration, time_format
from sim.report.timeline import UNKNOWN_STATE, band_segments, panel_lines, timeline_svg

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"


def _texts(svg: str) -> list[str]:
    """The texts of a figure: matplotlib writes each as a comment beside its glyph paths."""
    return re.findall(r"<!-- (.*?) -->", svg)


def _runs(name: str, results: list[dict[str, dict[str, Any]]], body: dict[str, Any] | None = None) -> ScenarioRuns:
    variants = tuple(results[0])
    replications = Replications(
        body=body or {"variants": {v: {"metrics": {}} for v in variants}},
        seeds=tuple(range(1, len(results) + 1)),
        variants=variants,
        results=tuple(results),
    )
    return ScenarioRuns(
        name=name, source=f"scenarios/{name}.yaml", description="", scenario=None, replications=replications
    )


# -- series arithmetic -------------------------------------------------------------------------


TIMESERIES: dict[str, Any] = {
    "interval_s": 60.0,
    "start_s": 0.0,
    "requests": [120, 0, 60, 30],
    "errors": [12, 0, 30, None],
    "failed": [1, 0, 2, 0],
    "ok": [3, 0, 2, 4],
    "dlq": [0, 2, 0, 3],
    "queue.b": [0, 1, 2, 3],
    "queue.a": [5, 5, 5, 5],
    "queue.never": [0, 0, 0, 0],
    "empty": [],
}


def test_panel_lines_compute_ratios_rates_totals_and_patterns() -> None:
    panel = Panel(
        "p",
        "",
        (
            Line("rate", "requests", per_second=True),
            Line("error %", "errors", per="requests", scale=100.0),
            Line("success", "errors", per="requests", complement=True),
            Line("failure share", "failed", per=("failed", "ok")),
            Line("depth", "dlq", cumulative=True),
            Line("{} queue", "queue.*"),
            Line("missing", "no-such-series"),
            Line("nothing yet", "empty"),
        ),
    )
    lines = dict(panel_lines(panel, TIMESERIES))
    assert list(lines) == ["rate", "error %", "success", "failure share", "depth", "a queue", "b queue"]
    np.testing.assert_allclose(lines["rate"], [2.0, 0.0, 1.0, 0.5])
    # a zero denominator, or a missing value, has no value
    np.testing.assert_allclose(lines["error %"], [10.0, math.nan, 50.0, math.nan])
    np.testing.assert_allclose(lines["success"], [0.9, math.nan, 0.5, math.nan])
    np.testing.assert_allclose(lines["failure share"], [0.25, math.nan, 0.5, 0.0])
    np.testing.assert_allclose(lines["depth"], [0, 2, 2, 5])
    np.testing.assert_allclose(lines["a queue"], [5, 5, 5, 5])


def test_log_panels_leave_out_values_at_or_below_zero() -> None:
    lines = panel_lines(Panel("p", "s", (Line("q", "queue.b"),), log=True), TIMESERIES)
    np.testing.assert_allclose(lines[0][1], [math.nan, 1, 2, 3])


def test_band_segments_start_in_the_initial_state_per_group_and_are_clipped() -> None:
    band = Band("breakers", ("t",), group_key="replica")
    body = {
        "t": [
            {"t": 100.0, "replica": "r2", "from": "closed", "to": "open"},
            {"t": 130.0, "replica": "r2", "from": "open", "to": "half_open"},
            {"t": 140.0, "replica": "r1", "from": "closed", "to": "open"},
            {"t": 150.0, "replica": "r2", "from": "half_open", "to": "closed"},
        ]
    }
    segments = band_segments(band, body, 50.0, 200.0)
    assert list(segments) == ["r1", "r2"]
    assert segments["r1"] == [(50.0, 140.0, "closed"), (140.0, 200.0, "open")]
    assert segments["r2"] == [
        (50.0, 100.0, "closed"),
        (100.0, 130.0, "open"),
        (130.0, 150.0, "half_open"),
        (150.0, 200.0, "closed"),
    ]
    assert band_segments(band, {"t": []}, 0.0, 10.0) == {}
    assert band_segments(band, {}, 0.0, 10.0) == {}


def test_a_transition_list_cut_at_its_limit_leaves_the_band_unknown_after_its_last_change() -> None:
    changes = [
        {"t": 100.0, "replica": "r1", "from": "closed", "to": "open"},
        {"t": 130.0, "replica": "r2", "from": "closed", "to": "open"},
    ]
    cut = band_segments(Band("b", ("t",), group_key="replica", listed_at_most=2), {"t": changes}, 0.0, 200.0)
    assert cut["r1"] == [(0.0, 100.0, "closed"), (100.0, 130.0, "open"), (130.0, 200.0, UNKNOWN_STATE)]
    assert cut["r2"] == [(0.0, 130.0, "closed"), (130.0, 200.0, UNKNOWN_STATE)]
    whole = band_segments(Band("b", ("t",), group_key="replica", listed_at_most=3), {"t": changes}, 0.0, 200.0)
    assert whole["r1"][-1] == (100.0, 200.0, "open")  # shorter than the limit: the list is whole


# -- time axis and numbers ---------------------------------------------------------------------


def test_run_time_is_written_in_minutes_hours_or_days_as_the_run_asks() -> None:
    write, label = time_format(1800.0)
    assert (write(300.0), write(1800.0), label) == ("5:00", "30:00", "run time (m:ss)")
    write, label = time_format(36000.0)
    assert (write(21600.0), write(22500.0), label) == ("6:00", "6:15", "run time (h:mm)")
    write, label = time_format(180 * 86400 + 5400.0)
    assert (write(179 * 86400 + 23 * 3600.0), label) == ("179d 23:00", "run time (day, h:mm)")
    assert clock(3661.0, days=False) == "1:01"
    assert (duration(40.0), duration(140.0), duration(7020.0), duration(9000.0)) == (
        "40 s",
        "140 s",
        "117 min",
        "2.5 h",
    )


# -- ledger and intervals --------------------------------------------------------------------


def _ledger_body(applied: int, app_timeout: int, orphaned: int, in_flight: int) -> dict[str, Any]:
    entered = applied + app_timeout + orphaned + in_flight
    return {
        "ledger": {
            "commands": {
                "entered": entered,
                "states": {
                    "applied": {"total": applied, "by_reason": {}},
                    "failed": {
                        "total": app_timeout + orphaned,
                        "by_reason": {"app_timeout": app_timeout, "orphaned_pending": orphaned},
                    },
                    "in_flight": {"total": in_flight, "by_reason": {}},
                },
            },
            "readings": {"entered": 0, "states": {"in_flight": {"total": 0, "by_reason": {}}}},
        }
    }


def test_ledger_shares_are_means_over_replications_in_a_fixed_order() -> None:
    runs = _runs(
        "x",
        [
            {"a": _ledger_body(80, 10, 10, 0), "b": _ledger_body(100, 0, 0, 0)},
            {"a": _ledger_body(60, 30, 0, 10), "b": _ledger_body(90, 0, 0, 10)},
        ],
    )
    segments, shares = ledger_shares(runs, "commands")
    assert segments == [
        ("applied", None),
        ("failed", "app_timeout"),
        ("failed", "orphaned_pending"),
        ("in_flight", None),
    ]
    assert shares["a"] == pytest.approx(
        {
            ("applied", None): 0.7,
            ("failed", "app_timeout"): 0.2,
            ("failed", "orphaned_pending"): 0.05,
            ("failed", None): 0.0,
            ("in_flight", None): 0.05,
        }
    )
    assert shares["b"][("in_flight", None)] == pytest.approx(0.05)
    assert ledger_shares(runs, "readings") == ([], {})  # nothing entered: no bar


def test_metric_names_follow_the_replication_summary() -> None:
    body = {"flows": {}, "durability": {}, "sensor": {}}
    assert metric_name(Signal("x", ("flows", "commands", "orphaned")), body) == "commands.orphaned"
    assert metric_name(Signal("x", ("flows", "sensor", "dropped")), body) == "flows.sensor.dropped"
    assert metric_name(Signal("x", ("durability", "rpo_s")), body) == "durability.rpo_s"


# -- whole figures on hand-made bodies --------------------------------------------------------


def _body(scale: float) -> dict[str, Any]:
    quantiles = [[p, scale * 0.01 * math.exp(6 * p)] for p in (0.001, 0.25, 0.5, 0.75, 0.95, 0.99, 0.999)]
    return {
        "timeseries": {**TIMESERIES, "interval_s": 600.0},
        "faults": [
            {"kind": "latency", "target": "db-replica-1", "start": 600.0, "end": 1200.0},
            {"kind": "crash", "target": "api-gateway", "start": 1800.0, "end": 1800.0},
        ],
        "flows": {
            "analytics": {"breaker_transitions": [{"t": 700.0, "replica": "r1", "from": "closed", "to": "open"}]}
        },
        "distributions": {"lat": {"count": 10, "unit": "s", "quantiles": quantiles}},
        **_ledger_body(90, 5, 5, 0),
    }


PROFILE = ReportProfile(
    panels=(
        Panel("Requests", "per second", (Line("requests", "requests", per_second=True),)),
        Panel("Nothing", "", (Line("n", "missing"),)),
        Panel("Queues", "", (Line("{}", "queue.n*"),)),
    ),
    bands=(Band("Breakers", ("flows", "analytics", "breaker_transitions"), group_key="replica"),),
    distributions=(Distribution("Latency", ("distributions", "lat")),),
    headline=(Signal("orphaned", ("flows", "commands", "orphaned"), "commands"),),
)


def _summary(means: dict[str, float]) -> dict[str, Any]:
    return {
        "variants": {
            v: {"metrics": {"commands.orphaned": {"mean": m, "ci_low": m - 1, "ci_high": m + 1}}}
            for v, m in means.items()
        }
    }


def test_figures_of_hand_made_runs_and_what_is_left_out() -> None:
    runs = _runs("x", [{"as-designed": _body(1.0), "fixed": _body(0.5)}], _summary({"as-designed": 5.0, "fixed": 0.0}))
    figures = scenario_figures(PROFILE, runs)
    assert [f.name for f in figures] == ["timeline-as-designed", "timeline-fixed", "latency-cdf", "ledger", "intervals"]
    timeline = _texts(figures[0].svg)
    assert "variant: as-designed" in timeline
    assert "latency on db-replica-1, 10:00 to 20:00" in timeline and "crash on api-gateway at 30:00" in timeline
    assert "Breakers" in timeline and "Nothing" not in " ".join(timeline)
    assert "zero throughout: Queues" in timeline  # queue.never: recorded, and zero
    assert {"p50", "p95", "p99"} <= set(_texts(figures[2].svg))
    assert "failed: orphaned_pending" in _texts(figures[3].svg)
    for figure in figures:
        assert isinstance(figure, Figure) and figure.title and figure.caption.endswith(".")
    # one variant: nothing to compare; no SLOs: no budget; no timeseries: no timeline
    single = scenario_figures(PROFILE, _runs("y", [{"only": {**_body(1.0), "timeseries": None}}]))
    assert [f.name for f in single] == ["latency-cdf", "ledger"]


def test_headline_figures_equal_in_every_variant_are_not_plotted() -> None:
    """The same mean everywhere (a bootstrap's interval may still differ by its seed): nothing to compare."""
    runs = _runs("x", [{"a": _body(1.0), "b": _body(1.0)}], _summary({"a": 3.0, "b": 3.0}))
    runs.replications.body["variants"]["b"]["metrics"]["commands.orphaned"]["ci_low"] = 2.5
    assert "intervals" not in [f.name for f in scenario_figures(PROFILE, runs)]
    runs.replications.body["variants"]["b"]["metrics"]["commands.orphaned"]["mean"] = 3.5
    assert "intervals" in [f.name for f in scenario_figures(PROFILE, runs)]


def test_svg_is_deterministic_valid_and_free_of_dates_and_versions() -> None:
    runs = _runs("x", [{"a": _body(1.0), "b": _body(2.0)}], _summary({"a": 5.0, "b": 1.0}))
    first = scenario_figures(PROFILE, runs)
    second = scenario_figures(PROFILE, copy.deepcopy(runs))
    assert [f.svg for f in first] == [f.svg for f in second]
    for figure in first:
        root = ET.fromstring(figure.svg)
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        assert "<text" not in figure.svg  # text as paths: the same glyphs on every machine
        assert "dc:date" not in figure.svg and "Matplotlib v" not in figure.svg


def test_the_users_matplotlib_settings_change_nothing() -> None:
    runs = _runs("x", [{"a": _body(1.0), "b": _body(2.0)}], _summary({"a": 5.0, "b": 1.0}))
    plain = [f.svg for f in scenario_figures(PROFILE, runs)]
    with matplotlib.rc_context({"font.size": 20, "lines.linewidth": 5, "svg.fonttype": "none", "svg.hashsalt": None}):
        assert [f.svg for f in scenario_figures(PROFILE, runs)] == plain


# -- real runs ----------------------------------------------------------------------------------


def _short(name: str, changes: dict[str, Any]) -> dict[str, Any]:
    data = yaml.safe_load((SCENARIOS / f"{name}.yaml").read_text())
    data.pop("expect", None)
    data.update(changes)
    return data


@pytest.fixture(scope="module")
def cascade() -> ScenarioRuns:
    """c3-cascade, 15 minutes: the replica stalls from 3 to 8 min, the device manager is cut off from 9 to 12."""
    data = _short(
        "c3-cascade",
        {
            "duration": "15m",
            "workload": {"mobile_users": 400, "dashboard_users": 200, "quiet_before_end": "2m"},
            "faults": [
                {"kind": "latency", "target": "db-replica-1", "at": "3m", "for": "5m", "add": "15s"},
                {"kind": "partition", "target": "device-manager", "other": ["iot-core"], "at": "9m", "for": "3m"},
            ],
        },
    )
    result = run(data, replications=2, workers=1, progress=False)
    assert result.replications is not None
    return ScenarioRuns("c3-cascade", "scenarios/c3-cascade.yaml", "", None, result.replications)


@pytest.fixture(scope="module")
def burn() -> ScenarioRuns:
    """m1-burn-rates, 50 minutes: the gateway down for 5 minutes at 30, or failing 0.4 % from 30 on."""
    data = _short("m1-burn-rates", {"duration": "50m"})
    data["variants"] = {
        "fast-burn": {"faults": [{"kind": "crash", "target": "api-gateway", "at": "30m", "restart_after": "5m"}]},
        "slow-burn": {
            "faults": [{"kind": "error_rate", "target": "api-gateway", "at": "30m", "for": "20m", "rate": 0.004}]
        },
    }
    result = run(data, replications=2, workers=1, progress=False)
    assert result.replications is not None
    return ScenarioRuns("m1-burn-rates", "scenarios/m1-burn-rates.yaml", "", None, result.replications)


def test_cascade_figures_show_breakers_only_where_there_are_breakers(cascade: ScenarioRuns) -> None:
    figures = {f.name: f for f in scenario_figures(REPORT_PROFILE, cascade)}
    assert list(figures) == [
        "timeline-as-designed",
        "timeline-timeouts-breakers",
        "timeline-bulkheads",
        "latency-cdf",
        "ledger",
        "intervals",
    ]
    band = REPORT_PROFILE.bands[0].title
    assert band in _texts(figures["timeline-timeouts-breakers"].svg)
    assert band not in _texts(figures["timeline-as-designed"].svg)
    as_designed = _texts(figures["timeline-as-designed"].svg)
    assert "latency on db-replica-1, 3:00 to 8:00" in as_designed
    assert "Throughput (per second)" in as_designed
    assert any(text.startswith("Errors (%") for text in as_designed)
    ledger = _texts(figures["ledger"].svg)
    assert "commands (share of those entered)" in ledger and "readings (share of those entered)" in ledger
    assert "command success rate" in _texts(figures["intervals"].svg)
    assert "error-budget" not in figures


def test_burn_rate_figures_mark_the_alerts(burn: ScenarioRuns) -> None:
    figures = {f.name: f for f in scenario_figures(REPORT_PROFILE, burn)}
    assert "error-budget" in figures
    texts = _texts(figures["error-budget"].svg)
    assert "SLO api-availability (objective 99.9 %)" in texts
    fired = [t for t in texts if t.startswith("page-1h (fast-burn): ")]
    assert fired and "after the fault" in fired[0]
    assert not any(t.startswith("page-1h (slow-burn)") for t in texts)  # a 0.4 % error rate never pages
    assert "crash on api-gateway at 30:00" in _texts(figures["timeline-fast-burn"].svg)


def test_real_figures_are_the_same_bytes_twice(burn: ScenarioRuns) -> None:
    first = scenario_figures(REPORT_PROFILE, burn)
    again = scenario_figures(REPORT_PROFILE, burn)
    assert [f.svg for f in first] == [f.svg for f in again]
    assert all(len(f.svg) < 400_000 for f in first)


def test_timeline_of_a_body_without_series_is_none() -> None:
    assert timeline_svg(REPORT_PROFILE, {"faults": []}, "x") is None
