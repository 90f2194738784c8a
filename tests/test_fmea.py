"""The FMEA catalogue: its scoring rule, its ranking, its rendering and the smart-home catalogue's data."""

from __future__ import annotations

import functools
import itertools
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from models.failure_modes import FAILURE_MODES
from models.report_profile import REPORT_PROFILE
from sim.replications import Replications
from sim.report.fmea import (
    HARM_BANDS,
    RULE,
    catalogue_markdown,
    detection_score,
    mode_key,
    occurrence_score,
    rank,
    resolve,
    score,
    severity_score,
)
from sim.report.profile import FailureMode, ReportProfile, Runbook, Signal
from sim.report.runs import ScenarioRuns

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"


# -- the scoring rule on synthetic numbers -----------------------------------------------------


@pytest.mark.parametrize("harm", sorted(HARM_BANDS))
def test_a_worse_effect_never_lowers_severity(harm: str) -> None:
    scores = [severity_score(harm, m / 100) for m in range(-10, 121)]
    assert scores == sorted(scores)
    low, high = HARM_BANDS[harm]
    assert scores[0] == low and scores[-1] == high


def test_worse_kinds_of_harm_score_at_least_as_high() -> None:
    order = ["degraded", "unavailable", "wrong", "silent", "lost"]
    for m in (0.0, 0.3, 0.5, 1.0):
        scores = [severity_score(harm, m) for harm in order]
        assert scores == sorted(scores)
    with pytest.raises(ValueError, match="unknown harm"):
        severity_score("annoying", 0.5)


def test_occurrence_is_a_log_scale_of_the_share_touched() -> None:
    assert occurrence_score(0.0) == 1
    assert occurrence_score(1e-6) == 1
    assert occurrence_score(1e-4) == 1
    assert occurrence_score(1e-2) == 6  # 1 + round(9 x 2 / 4) = 1 + round(4.5), half up
    assert occurrence_score(1.0) == 10
    assert occurrence_score(3.0) == 10
    shares = [10 ** (e / 10) for e in range(-50, 1)]
    scores = [occurrence_score(s) for s in shares]
    assert scores == sorted(scores)


def test_no_signal_scores_detection_ten() -> None:
    assert detection_score(None, 300.0) == 10
    assert detection_score(None, None) == 10


def test_detection_grows_with_the_time_to_detect_and_with_misses() -> None:
    assert detection_score(0.0, 300.0) == 1
    assert detection_score(300.0, 300.0) == 9
    assert detection_score(3000.0, 300.0) == 9  # only after the fault: still better than never
    scores = [detection_score(t, 300.0) for t in range(0, 400, 10)]
    assert scores == sorted(scores)
    assert detection_score(30.0, 300.0, missed_share=0.5) > detection_score(30.0, 300.0)
    assert detection_score(30.0, 300.0, missed_share=1.0) == 10


def test_resolve_reads_keys_and_list_indexes() -> None:
    body = {"health": {"faults": [{"detection": {"deep": {"at": 12.5}}}]}}
    assert resolve(body, ("health", "faults", 0, "detection", "deep", "at")) == 12.5
    with pytest.raises(KeyError):
        resolve(body, ("health", "faults", 1, "detection"))
    with pytest.raises(KeyError):
        resolve(body, ("health", "faults", "0"))


# -- scoring synthetic runs ----------------------------------------------------------------------


def _mode(**changes: Any) -> FailureMode:
    fields: dict[str, Any] = {
        "finding": "X1",
        "title": "Lost widgets",
        "component": "widget store",
        "trigger": "the store crashes",
        "scenario": "synthetic",
        "as_designed": "as-designed",
        "countermeasure": "fixed",
        "countermeasure_text": "a journal",
        "effect": Signal("widgets lost", ("flows", "widgets", "lost"), "widgets"),
        "effect_of": ("flows", "widgets", "made"),
        "exposure": Signal("widgets lost", ("flows", "widgets", "lost")),
        "exposure_of": ("flows", "widgets", "made"),
        "detection_signal": "an alarm",
        "detection": Signal("alarm", ("alarm", "at"), "s"),
        "residual_risk": "none to speak of",
        "runbook": Runbook("the alarm", ("look at the store",), ("restart it",)),
        "harm": "lost",
    }
    fields.update(changes)
    return FailureMode(**fields)


def _body(lost: float, alarm_at: float | None, made: float = 100.0) -> dict[str, Any]:
    return {
        "flows": {"widgets": {"lost": lost, "made": made}},
        "alarm": {"at": alarm_at},
        "faults": [{"kind": "crash", "start": 100.0, "end": 400.0}],
    }


def _runs(per_replication: list[dict[str, dict[str, Any]]], name: str = "synthetic") -> ScenarioRuns:
    variants = tuple(per_replication[0])
    replications = Replications(
        body={"variants": {}},
        seeds=tuple(range(len(per_replication))),
        variants=variants,
        results=tuple(per_replication),
    )
    return ScenarioRuns(name, f"scenarios/{name}.yaml", "a test", None, replications)


SYNTHETIC = _runs(
    [
        {"as-designed": _body(10, 130.0), "fixed": _body(1, 110.0)},
        {"as-designed": _body(20, 160.0), "fixed": _body(2, 110.0)},
        {"as-designed": _body(30, None), "fixed": _body(3, 110.0)},
    ]
)


def test_score_reads_means_paired_differences_and_mttd_from_the_fault_start() -> None:
    scored = score(_mode(), SYNTHETIC)
    assert scored.effect.estimate == pytest.approx(20.0)
    assert scored.effect.n == 3 and scored.effect.low is not None and scored.effect.low < 20.0
    assert scored.effect_with.estimate == pytest.approx(2.0)
    assert scored.difference.estimate == pytest.approx(-18.0)
    assert scored.difference.method == "paired-t"
    assert scored.mttd is not None and scored.mttd.estimate == pytest.approx(45.0)  # (30 + 60) / 2
    assert scored.detected == 2 and scored.replications == 3
    assert scored.window_s == pytest.approx(300.0)
    assert scored.share == pytest.approx(0.2)
    assert scored.magnitude == pytest.approx(0.2)
    assert scored.severity == severity_score("lost", 0.2) == 8
    assert scored.occurrence == occurrence_score(0.2)
    # 45 s of a 300 s window gives 1 + round(1.2) = 2; one replication in three missed it
    assert scored.detection == 2 + round((10 - 2) / 3)
    assert scored.rpn == scored.severity * scored.occurrence * scored.detection


def test_a_design_without_a_signal_scores_ten_and_a_worse_effect_never_scores_lower() -> None:
    assert score(_mode(detection=None), SYNTHETIC).detection == 10
    worse = _runs([{"as-designed": _body(90, 130.0), "fixed": _body(1, 110.0)}] * 3)
    assert score(_mode(), worse).severity >= score(_mode(), SYNTHETIC).severity


def test_a_lower_is_worse_signal_counts_its_shortfall() -> None:
    runs = _runs([{"as-designed": {"rate": 0.25}, "fixed": {"rate": 1.0}}])
    signal = Signal("success", ("rate",), worse="lower")
    scored = score(_mode(effect=signal, effect_of=None, exposure=signal, exposure_of=None, detection=None), runs)
    assert scored.magnitude == pytest.approx(0.75)
    assert scored.share == pytest.approx(0.75)


def _series_body(errors: list[float], requests: list[float], end: float | None = 240.0) -> dict[str, Any]:
    body = _body(0, None)
    body["timeseries"] = {"interval_s": 60.0, "start_s": 0.0, "widget.errors": errors, "widget.requests": requests}
    body["faults"] = [{"start": 120.0, "end": end}, {"start": 300.0, "end": 360.0}]
    return body


_WINDOWED = Signal(
    "errors in fault 0", ("timeseries", "widget.errors"), window_series=("widget.errors", "widget.requests")
)


def test_a_windowed_signal_counts_only_its_faults_intervals() -> None:
    # intervals 2 and 3 (120-240 s) are fault 0's; interval 5 (fault 1's) is all errors and must not count
    body = _series_body([0, 0, 1, 3, 0, 10], [10, 10, 10, 10, 10, 10])
    runs = _runs([{"as-designed": body, "fixed": _series_body([0, 0, 0, 1, 0, 10], [10] * 6)}] * 2)
    scored = score(_mode(effect=_WINDOWED, effect_of=None, exposure=_WINDOWED, exposure_of=None), runs)
    assert scored.effect.estimate == pytest.approx(0.2)  # (1 + 3) / 20
    assert scored.effect_with.estimate == pytest.approx(0.05)
    assert scored.share == pytest.approx(0.2)
    on_fault_1 = _mode(
        effect=Signal("e", ("timeseries", "widget.errors"), window_series=_WINDOWED.window_series, window_fault=1),
        effect_of=None,
    )
    assert score(on_fault_1, runs).effect.estimate == pytest.approx(1.0)
    open_fault = _runs([{"as-designed": _series_body([0, 0, 1, 3, 0, 10], [10] * 6, end=None), "fixed": body}])
    assert score(_mode(effect=_WINDOWED, effect_of=None), open_fault).effect.estimate == pytest.approx(14 / 40)


def test_figures_no_replication_measured_are_not_measured_and_score_the_worst() -> None:
    bare = {"flows": {}, "alarm": {"at": 130.0}, "faults": [{"kind": "crash"}]}
    scored = score(_mode(), _runs([{"as-designed": bare, "fixed": bare}] * 2))
    assert scored.magnitude is None and scored.share is None
    assert scored.severity == HARM_BANDS["lost"][1] and scored.occurrence == 10
    assert scored.mttd is None and scored.detection == 10  # no fault start: not a 130 s MTTD from t = 0
    text = catalogue_markdown(
        ReportProfile(failure_modes=(_mode(),)), {"synthetic": _runs([{"as-designed": bare, "fixed": bare}])}
    )
    assert "relative size not measured" in text and "share touched not measured" in text


def test_a_figure_the_summary_has_keeps_the_summarys_own_interval() -> None:
    runs = _runs(
        [
            {"as-designed": _body(10, 130.0), "fixed": _body(1, 110.0)},
            {"as-designed": _body(30, 130.0), "fixed": _body(3, 110.0)},
        ]
    )
    runs.replications.body["variants"] = {
        "as-designed": {
            "metrics": {"widgets.lost": {"mean": 20.0, "ci_low": 11.0, "ci_high": 29.0, "n": 2, "method": "bootstrap"}}
        },
    }
    scored = score(_mode(), runs)
    assert (scored.effect.low, scored.effect.high, scored.effect.method) == (11.0, 29.0, "bootstrap")
    assert scored.effect_with.method == "t"  # not in the summary: computed, Student t


def test_a_mode_without_a_tracked_state_gives_its_reason_for_no_trace() -> None:
    mode = _mode(trace_none_reason="nothing marks a slow widget")
    text = catalogue_markdown(ReportProfile(failure_modes=(mode,)), {"synthetic": SYNTHETIC})
    assert "No trace: nothing marks a slow widget" in text


def test_a_variant_the_scenario_lacks_is_an_error() -> None:
    with pytest.raises(ValueError, match="no variant 'nope'"):
        score(_mode(countermeasure="nope"), SYNTHETIC)


def test_ranking_is_by_rpn_then_severity_detection_occurrence_and_names() -> None:
    base = score(_mode(), SYNTHETIC)
    from dataclasses import replace

    items = [
        replace(base, severity=5, occurrence=4, detection=10, mode=_mode(finding="B", title="b")),  # 200
        replace(base, severity=4, occurrence=5, detection=10, mode=_mode(finding="A", title="a")),  # 200
        replace(base, severity=5, occurrence=4, detection=10, mode=_mode(finding="A", title="z")),  # 200
        replace(base, severity=5, occurrence=10, detection=10, mode=_mode(finding="C", title="c")),  # 500
        replace(base, severity=5, occurrence=5, detection=8, mode=_mode(finding="D", title="d")),  # 200
    ]
    ranked = rank(items)
    assert [(i.mode.finding, i.mode.title) for i in ranked] == [
        ("C", "c"),
        ("A", "z"),  # S 5, D 10, O 4: ties with B/b on every score, the finding id decides
        ("B", "b"),
        ("D", "d"),  # S 5 but D 8
        ("A", "a"),  # S 4
    ]
    for order in itertools.permutations(items):
        assert rank(list(order)) == ranked


# -- rendering ------------------------------------------------------------------------------------


def test_the_catalogue_prints_the_rule_ranks_and_escapes_user_text() -> None:
    nasty = _mode(title="<script>alert(1)</script> | pipes", trigger="a *bold* [link](http://x)")
    quiet = _mode(finding="X2", title="Quiet", detection=None, trace_kind="widgets", trace_state="dropped")
    profile = ReportProfile(failure_modes=(nasty, quiet), findings=(("X1", "Widgets | lost"), ("X2", "Quiet")))
    text = catalogue_markdown(profile, {"synthetic": SYNTHETIC}, {mode_key(quiet): None})
    assert RULE in text
    assert "<script>" not in text and "\\<script\\>" in text
    assert "\\| pipes" in text and "Widgets \\| lost" in text
    assert "\\*bold\\*" in text and "\\[link\\]" in text
    assert "[synthetic](synthetic.md)" in text
    assert "No request of this kind was harmed in the runs." in text
    rows = [line for line in text.splitlines() if re.match(r"\| \d+ \|", line)]
    assert len(rows) == 2
    # every row of the ranking has the same number of unescaped cells
    assert {len(re.split(r"(?<!\\)\|", row)) for row in rows} == {10}
    assert text == catalogue_markdown(profile, {"synthetic": SYNTHETIC}, {mode_key(quiet): None})


def test_a_mode_whose_scenario_was_not_run_is_listed_as_not_measured() -> None:
    profile = ReportProfile(failure_modes=(_mode(scenario="elsewhere"),), findings=(("X1", "Widgets"),))
    text = catalogue_markdown(profile, {}, {})
    assert "Not measured in this build" in text and "`elsewhere`" in text


def test_a_finding_the_catalogue_serves_is_named_with_how_and_not_as_unmeasured() -> None:
    findings = (("X1", "Widgets"), ("M2", "No tracing"), ("M9", "Nothing here"))
    profile = ReportProfile(findings=findings, served_by_catalogue=(("M2", "each mode carries a trace"),))
    text = catalogue_markdown(profile, {}, {})
    assert "**M2** is served by this catalogue itself: each mode carries a trace" in text
    assert "Findings with no failure mode measured here: X1, M9." in text


# -- the smart-home catalogue --------------------------------------------------------------------


def _scenario_file(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((SCENARIOS / f"{name}.yaml").read_text())
    return data


def test_the_profile_carries_the_catalogue_and_keys_are_unique() -> None:
    assert REPORT_PROFILE.failure_modes == FAILURE_MODES
    keys = [mode_key(mode) for mode in FAILURE_MODES]
    assert len(keys) == len(set(keys))


def test_every_finding_with_a_scenario_has_a_failure_mode() -> None:
    with_scenario = {
        finding for finding, _ in REPORT_PROFILE.findings if any(SCENARIOS.glob(f"{finding.lower()}-*.yaml"))
    }
    assert {"C1", "C2", "C3", "C4", "C5", "S1", "S2", "S3", "M1"} <= with_scenario
    covered = {mode.finding for mode in FAILURE_MODES}
    assert with_scenario <= covered
    assert covered <= {finding for finding, _ in REPORT_PROFILE.findings}


@pytest.mark.parametrize("mode", FAILURE_MODES, ids=mode_key)
def test_every_mode_names_a_scenario_file_and_its_variants(mode: FailureMode) -> None:
    data = _scenario_file(mode.scenario)
    assert data["name"] == mode.scenario
    variants = data.get("variants") or {}
    assert mode.as_designed in variants and mode.countermeasure in variants
    assert mode.harm in HARM_BANDS
    assert mode.runbook.first_checks and mode.runbook.mitigation


def _fits_shape(body: Any, path: tuple[str | int, ...]) -> bool:
    """Whether ``path`` fits a result's shape before the run: a list may still be empty."""
    node = body
    for index, part in enumerate(path):
        if isinstance(part, int):
            if not isinstance(node, list):
                return False
            if not node:
                return True  # filled as the run goes (faults, transitions)
            node = node[part]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return node is None and index > 0  # a section that is null until measured
    return True


@functools.cache
def _shape(scenario_name: str, variant: str) -> dict[str, Any]:
    """The result of a variant's world as built, before it runs (its shape, numbers unmeasured)."""
    from models.results import summarise
    from models.twin import TWIN, build
    from sim.api import load_checked
    from sim.variants import variant_scenarios

    scenario = load_checked(TWIN, SCENARIOS / f"{scenario_name}.yaml")
    return summarise(build(variant_scenarios(scenario)[variant], seed=0))


def test_the_shape_check_rejects_a_path_the_result_lacks() -> None:
    shape = _shape("c1-outbox", "as-designed")
    assert _fits_shape(shape, ("flows", "commands", "orphaned"))
    assert _fits_shape(shape, ("health", "faults", 0, "detection", "shallow", "at"))
    assert not _fits_shape(shape, ("flows", "commands", "orphans"))
    assert not _fits_shape(shape, ("flows", "commands", 0))


_BUILT_SLOWLY = {"c4-backups"}
"""Scenarios whose world takes tens of seconds to build (months of WAL archiving): checked under -m slow."""


@pytest.mark.parametrize(
    "mode",
    [pytest.param(m, marks=pytest.mark.slow) if m.scenario in _BUILT_SLOWLY else m for m in FAILURE_MODES],
    ids=mode_key,
)
def test_every_signal_path_fits_the_result_shape_of_its_variant(mode: FailureMode) -> None:
    """Fast and structural: the result of each variant's world as built, before it runs."""
    shapes = {name: _shape(mode.scenario, name) for name in (mode.as_designed, mode.countermeasure)}
    for variant, shape in shapes.items():
        for path in (mode.effect.path, mode.exposure.path, mode.effect_of, mode.exposure_of):
            if path is not None:
                assert _fits_shape(shape, path), f"{variant}: {path}"
    if mode.detection is not None:
        assert _fits_shape(shapes[mode.as_designed], mode.detection.path)
    if mode.detection_with is not None:
        assert _fits_shape(shapes[mode.countermeasure], mode.detection_with.path)


@functools.cache
def _run_on_seed_7(scenario_name: str) -> dict[str, Any]:
    from sim.api import run

    variants: dict[str, Any] = run(SCENARIOS / f"{scenario_name}.yaml", seed=7).body["variants"]
    return variants


@pytest.mark.slow
@pytest.mark.parametrize("mode", FAILURE_MODES, ids=mode_key)
def test_every_signal_path_resolves_in_a_real_run(mode: FailureMode) -> None:
    """Slow (c4-backups and c4-region-outage take minutes): each scenario once, on its seed."""
    body = _run_on_seed_7(mode.scenario)
    for variant in (mode.as_designed, mode.countermeasure):
        for signal in (mode.effect, mode.exposure):
            if signal.window_series is None:
                assert isinstance(resolve(body[variant], signal.path), int | float), f"{variant}: {signal.path}"
            else:
                assert all(isinstance(resolve(body[variant], ("timeseries", n)), list) for n in signal.window_series)
        for path in (mode.effect_of, mode.exposure_of):
            if path is not None:
                assert isinstance(resolve(body[variant], path), int | float), f"{variant}: {path}"
    if mode.detection is not None:
        resolve(body[mode.as_designed], mode.detection.path)  # may be null: the signal never fired
    if mode.detection_with is not None:
        assert isinstance(resolve(body[mode.countermeasure], mode.detection_with.path), int | float)
