"""The CI gate (``hems-twin check``): identical runs pass, a regression beyond its tolerance and
significant fails with a JUnit failure, a baseline made differently is reported, never compared.

A "regression" is injected the way a code change would make one: the twin's ``run`` is
patched (``--workers 1`` runs in this process) to add a broker crash to every run, so the
scenario -- and its hash -- stays the same while its SLOs get worse.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from models.twin import TWIN
from sim import gate
from sim.cli import load
from sim.gate import GatePlan, compare, judge, junit_xml, markdown_summary, plan_scenario, run_plans
from tests.conftest import ROOT
from tests.test_cli_run import invoke

TINY = """\
name: tiny
duration: 2m
seed: 3
fleet: {meters: 30, controllables: 20}
workload: {mobile_users: 1000, dashboard_users: 5}
faults:
  - {kind: crash, target: iot-core, at: 30s, restart_after: 20s}
variants:  # not in sorted order, as the baseline file keeps them
  outbox: {device_manager: {outbox: true}}
  as-designed: {}
"""
N = "3"
REAL_RUN = TWIN.run
SLOS = ["api-availability", "api-latency-p95", "api-latency-p99", "command-success", "data-freshness"]
GATED_SCENARIOS = [
    "baseline",
    "c1-outbox",
    "c2-idempotency",
    "c3-cascade",
    "c5-validation",
    "m1-burn-rates",
    "s1-flood",
    "s1-priority",
    "s2-poison-dlq",
    "s3-health-checks",
]


def _worse(scenario: Any, seed: int, progress: Any = None) -> dict[str, Any]:
    """The run after a "code change" that crashes the broker once more, at 70 s for 30 s."""
    crash = type(scenario.faults[0]).model_validate(
        {"kind": "crash", "target": "iot-core", "at": 70, "restart_after": 30}
    )
    return REAL_RUN(scenario.model_copy(update={"faults": [*scenario.faults, crash]}), seed, progress)


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with tiny.yaml and its baseline (3 replications), made once."""
    folder = tmp_path_factory.mktemp("gate")
    (folder / "tiny.yaml").write_text(TINY)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        code, out, err = invoke(["check", "tiny.yaml", "--baseline", "base.json", "--update-baseline", *_fast()])
    assert code == 0, err
    assert "added to the baseline" in out and "wrote base.json (1 scenario updated)" in out
    return folder


def _fast() -> list[str]:
    return ["--replications", N, "--workers", "1"]


@pytest.fixture
def work(made: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh copy of the made folder, the current folder meanwhile."""
    for name in ("tiny.yaml", "base.json"):
        (tmp_path / name).write_bytes((made / name).read_bytes())
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _check(*extra: str) -> tuple[int, str, str]:
    reports = ["--junit", "o/junit.xml", "--markdown", "o/s.md"]
    return invoke(["check", "tiny.yaml", "--baseline", "base.json", *reports, *extra])


def _cases(path: Path) -> dict[str, ET.Element]:
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    return {f"{case.get('classname')}::{case.get('name')}": case for case in root.iter("testcase")}


# -- passing ------------------------------------------------------------------------------------


def test_the_baseline_file_holds_what_the_gate_needs(made: Path) -> None:
    data = json.loads((made / "base.json").read_text())
    assert data["format"] == gate.BASELINE_FORMAT and data["format_version"] == 1 and data["rule"] == gate.RULE
    entry = data["scenarios"]["tiny"]
    assert entry["replications"] == 3 and entry["root_seed"] == 3 and len(entry["seeds"]) == 3
    assert entry["version"] and entry["twin"] == "smart-home" and entry["slos_inferred"] is True
    variant = entry["variants"]["as-designed"]
    assert list(variant["slos"]) == SLOS and variant["slos"]["api-availability"] == 0.999
    assert len(variant["scenario_hash"]) == 64
    metric = variant["metrics"]["slos.command-success.sli"]
    assert len(metric["values"]) == 3 and {"mean", "ci_low", "ci_high", "n", "method"} <= set(metric)
    assert (made / "base.json").read_text() == json.dumps(data, sort_keys=True, indent=2) + "\n"


def test_an_identical_run_passes_with_junit_and_markdown(work: Path) -> None:
    code, out, err = _check("--workers", "1")
    assert code == 0, out + err
    assert "tiny: 3 replications from root seed 3; 20 pass" in out and "gate passed" in out
    cases = _cases(work / "o" / "junit.xml")
    expected = {f"tiny::{slo}[{v}]" for slo in SLOS for v in ("as-designed", "outbox")} | {"tiny::invariants"}
    assert set(cases) == expected
    assert all(case.find("failure") is None and case.find("error") is None for case in cases.values())
    suite = ET.parse(work / "o" / "junit.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "11" and suite.get("failures") == "0"
    page = (work / "o" / "s.md").read_text()
    assert page.startswith("# SLO gate: passed") and gate.RULE in page
    assert "| scenario | SLO | variant | metric | baseline mean [95 % CI] | candidate mean [95 % CI] " in page
    assert "| tiny | command-success | outbox | sli (higher is better) |" in page
    assert page.count("| pass |") == 20


def test_update_is_a_byte_stable_round_trip(work: Path) -> None:
    before = (work / "base.json").read_bytes()
    code, _, err = invoke(["check", "tiny.yaml", "--baseline", "base.json", "--update-baseline", "--workers", "2"])
    assert code == 0, err
    assert (work / "base.json").read_bytes() == before  # the baseline's replications, 2 workers: same bytes


def test_update_keeps_other_scenarios_and_stores_tolerances(work: Path) -> None:
    other = work / "other.yaml"
    other.write_text(TINY.replace("name: tiny", "name: other").split("variants:")[0])
    code, _, err = invoke(
        ["check", "other.yaml", "--baseline", "base.json", "--update-baseline", "--tolerance", "sli=0.02", *_fast()]
    )
    assert code == 0, err
    data = json.loads((work / "base.json").read_text())
    assert sorted(data["scenarios"]) == ["other", "tiny"] and data["tolerances"] == {"sli": "0.02"}
    assert list(data["scenarios"]["other"]["variants"]) == ["as-written"]


# -- regressions ------------------------------------------------------------------------------------


def test_a_regression_fails_the_gate_with_the_numbers(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(TWIN, "run", _worse)
    code, out, _ = _check("--workers", "1")
    assert code == 1
    assert "REGRESSION [as-designed] slos.command-success.sli (higher is better): baseline " in out
    assert "gate FAILED: 2 regression(s)" in out
    cases = _cases(work / "o" / "junit.xml")
    failure = cases["tiny::command-success[as-designed]"].find("failure")
    assert failure is not None and failure.get("type") == "regression"
    assert "slos.command-success.sli regressed: worse by " in (failure.get("message") or "")
    assert "CI excludes 0" in (failure.get("message") or "") and "difference -0." in (failure.text or "")
    assert cases["tiny::api-availability[as-designed]"].find("failure") is None
    page = (work / "o" / "s.md").read_text()
    assert page.startswith("# SLO gate: FAILED (2 regressions)") and page.count("**REGRESSION**") == 2


def test_a_regression_within_its_tolerance_passes(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(TWIN, "run", _worse)
    assert _check("--workers", "1", "--tolerance", "slos.command-success.sli=0.5")[0] == 0
    assert _check("--workers", "1", "--tolerance", "tiny:sli=90%")[0] == 0  # relative to the baseline mean
    assert _check("--workers", "1", "--tolerance", "other:sli=0.5")[0] == 2  # no such scenario: a typo
    code, out, _ = _check("--workers", "1", "--tolerance", "sli=0.5", "--tolerance", "tiny:slos.command-success.sli=0")
    assert code == 1 and "tolerance 0 (tiny:slos.command-success.sli)" in out  # the most specific wins


def test_a_tolerance_stored_in_the_baseline_applies_without_flags(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = json.loads((work / "base.json").read_text())
    data["tolerances"] = {"slos.command-success.sli": "0.5"}
    (work / "base.json").write_text(json.dumps(data))
    monkeypatch.setattr(TWIN, "run", _worse)
    code, out, _ = _check("--workers", "1")
    assert code == 0 and "gate passed" in out
    assert _check("--workers", "1", "--tolerance", "slos.command-success.sli=0.001")[0] == 1  # the flag wins


def test_broken_invariants_fail_the_gate(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(scenario: Any, seed: int, progress: Any = None) -> dict[str, Any]:
        return {**REAL_RUN(scenario, seed, progress), "invariants_held": False}

    monkeypatch.setattr(TWIN, "run", broken)
    code, out, _ = _check("--workers", "1")
    assert code == 1 and "INVARIANTS BROKEN in outbox: replications [0, 1, 2]" in out
    failure = _cases(work / "o" / "junit.xml")["tiny::invariants"].find("failure")
    assert failure is not None and failure.get("type") == "invariants"


# -- the rule -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("baseline", "candidate", "higher", "tolerance", "verdict"),
    [
        ([0.99, 0.98, 0.97], [0.99, 0.98, 0.97], True, 0.0, "pass"),  # identical: [0, 0]
        ([0.99, 0.98, 0.97], [0.95, 0.94, 0.935], True, 0.001, "regression"),  # consistent drop
        ([0.99, 0.98, 0.97], [0.95, 0.94, 0.935], True, 0.05, "pass"),  # ... within tolerance
        ([0.90, 0.95, 0.99], [0.95, 0.85, 0.97], True, 0.001, "pass"),  # worse on average, not significant
        ([0.99, 0.98, 0.97], [0.989, 0.979, 0.969], True, 0.0, "regression"),  # a constant shift is certain
        ([0.01, 0.02, 0.03], [0.05, 0.06, 0.065], False, 0.01, "regression"),  # budget: higher is worse
        ([0.05, 0.06, 0.065], [0.01, 0.02, 0.03], False, 0.01, "improvement"),
        ([0.9, None, None], [0.5, 0.4, None], True, 0.0, "skipped"),  # one pair: nothing to judge
    ],
)
def test_the_rule_needs_both_size_and_significance(
    baseline: list[float | None], candidate: list[float | None], higher: bool, tolerance: float, verdict: str
) -> None:
    got, difference, reason = judge(baseline, candidate, higher, tolerance)
    assert got == verdict, reason
    if verdict == "pass" and baseline == candidate:
        assert difference is not None and (difference.low, difference.high) == (0.0, 0.0)


# -- what is not comparable ------------------------------------------------------------------------


def test_a_different_replication_count_or_seed_is_not_compared(work: Path) -> None:
    code, out, _ = _check("--replications", "2", "--workers", "1")
    assert code == 1
    assert "NOT COMPARABLE: the baseline holds 3 replications from root seed 3, this check ran 2" in out
    error = _cases(work / "o" / "junit.xml")["tiny::api-availability[outbox]"].find("error")
    assert error is not None and "baseline not comparable" in (error.get("message") or "")
    code, out, _ = _check("--seed", "4", "--workers", "1")
    assert code == 1 and "from root seed 4" in out and "--update-baseline" in out


def test_a_changed_scenario_is_not_compared_but_a_new_description_is(work: Path) -> None:
    (work / "tiny.yaml").write_text(TINY.replace("name: tiny", "name: tiny\ndescription: said otherwise"))
    assert _check("--workers", "1")[0] == 0
    (work / "tiny.yaml").write_text(TINY.replace("outbox: true", "outbox: true, concurrency: 32"))
    code, out, _ = _check("--workers", "1")
    assert code == 1 and "variant(s) outbox changed since the baseline was made (scenario hash differs)" in out
    assert "**not comparable**" in (work / "o" / "s.md").read_text()


def test_a_scenario_missing_from_the_baseline_fails_until_added(work: Path) -> None:
    (work / "tiny.yaml").write_text(TINY.replace("name: tiny", "name: tiny-two"))
    code, out, _ = _check("--workers", "1")
    assert code == 1 and "not in the baseline base.json: add it with --update-baseline" in out


# -- which SLOs ---------------------------------------------------------------------------------------


def _plan(text: str, tmp_path: Path) -> GatePlan:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return plan_scenario(TWIN, load(TWIN, path), str(path), root_seed=None, replications=2)


@pytest.mark.parametrize(
    ("workload", "slos"),
    [
        ("{mobile_users: 1000, dashboard_users: 5}", SLOS),
        (
            "{mobile_users: 0, dashboard_users: 5}",
            ["api-availability", "api-latency-p95", "api-latency-p99", "data-freshness"],
        ),
        ("{mobile_users: 0, dashboard_users: 0}", ["data-freshness"]),
    ],
)
def test_undeclared_slos_are_the_review_s_that_the_traffic_supports(
    tmp_path: Path, workload: str, slos: list[str]
) -> None:
    text = f"name: t\nduration: 2m\nfleet: {{meters: 30, controllables: 20}}\nworkload: {workload}\n"
    plan = _plan(text, tmp_path)
    assert plan.slos_inferred and [slo.name for slo in plan.variants["as-written"].slos] == slos


def test_declared_slos_are_gated_as_declared(tmp_path: Path) -> None:
    text = TINY.split("variants:")[0] + "slos:\n  - {name: only, sli: {kind: availability}, objective: 0.99}\n"
    plan = _plan(text, tmp_path)
    assert not plan.slos_inferred and [slo.name for slo in plan.variants["as-written"].slos] == ["only"]


def test_adding_the_slos_changes_no_other_figure(tmp_path: Path) -> None:
    plan = _plan(TINY, tmp_path)
    for name, with_slos in plan.variants.items():
        without = with_slos.model_copy(update={"slos": []})
        a, b = REAL_RUN(with_slos, 5), REAL_RUN(without, 5)
        assert a["slos"] and not b.get("slos")
        assert {k: v for k, v in a.items() if k != "slos"} == {k: v for k, v in b.items() if k != "slos"}, name


# -- the outputs ---------------------------------------------------------------------------------------


def test_junit_and_markdown_escape_every_text(tmp_path: Path) -> None:
    plan = _plan(TINY.split("variants:")[0], tmp_path)
    nasty = 'a<b>&"c\x01\ud800|d\n.yaml'
    plan = GatePlan(plan.name, nasty, plan.root_seed, plan.replications, plan.variants, plan.slos_inferred)
    measured = run_plans(TWIN, [plan], workers=1)
    report = compare([plan], measured, None, {})
    root = ET.fromstring(junit_xml(report).encode())  # well-formed, whatever the file was called
    shown = [p.get("value") for p in root.iter("property") if p.get("name") == "file"]
    assert shown == ['a<b>&"c\\x01\\xd800|d\n.yaml']
    assert root.get("errors") == str(len(SLOS))  # not in any baseline: every testcase is an error
    page = markdown_summary(report)
    assert "**not comparable**" in page and "a&lt;b&gt;&amp;" not in page.split("## Notes")[0]
    rows = [line for line in page.splitlines() if line.startswith("| tiny | ")]
    assert rows[0] == "| tiny | 2 | 3 | 10 | 0 | 0 | not comparable |"  # the overview
    assert len(rows) == 11 and all(line.count(" | ") == 8 for line in rows[1:])  # no cell split by a pipe


# -- bad input ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--baseline", "none.json"], "none.json: no such baseline file; create it with --update-baseline"),
        (["--baseline", "bad.json"], "bad.json:1: not JSON"),
        (["--baseline", "other.json"], 'other.json: not a hems-twin SLO baseline (expected "format"'),
        (["--baseline", "base.json", "--tolerance", "sli"], "--tolerance 'sli': expected METRIC=VALUE"),
        (["--baseline", "base.json", "--tolerance", "latency=1"], "--tolerance 'latency=1': expected METRIC=VALUE"),
        (["--baseline", "base.json", "--tolerance", "sli=-1"], "--tolerance 'sli=-1': expected a non-negative"),
        (["--baseline", "base.json", "--tolerance", "slos.nope.sli=1"], "--tolerance slos.nope.sli: no SLO 'nope'"),
        (["--baseline", "base.json", "--replications", "1"], "--replications 1: expected 2 to 10,000"),
        (["--baseline", "base.json", "--workers", "0"], "--workers 0: expected 1 to 1,024"),
        (["--baseline", "base.json", "--junit", "."], "--junit .: is a directory, expected a file"),
        (["--baseline", "."], "--baseline .: is a directory, expected a JSON file"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(work: Path, arguments: list[str], message: str) -> None:
    (work / "bad.json").write_text("{nope")
    (work / "other.json").write_text("{}")
    code, out, err = invoke(["check", "tiny.yaml", *arguments])
    assert code == 2 and out == "", err
    assert err.startswith(f"hems-twin: {message}") and err.count("\n") == 1 and "Traceback" not in err


def test_a_baseline_with_a_bad_field_names_it(work: Path) -> None:
    data = json.loads((work / "base.json").read_text())
    data["scenarios"]["tiny"]["replications"] = "three"
    (work / "base.json").write_text(json.dumps(data))
    code, _, err = _check()
    assert code == 2 and err.startswith("hems-twin: base.json: scenarios.tiny.replications: ") and err.count("\n") == 1


def test_a_scenario_that_does_not_load_is_the_loader_s_message(work: Path) -> None:
    (work / "tiny.yaml").write_text(TINY.replace("meters: 30", "meterz: 30"))
    code, out, err = _check()
    assert code == 2 and out == "" and err.startswith("tiny.yaml:4: fleet.meterz: unknown field")


def test_two_files_of_one_scenario_are_refused(work: Path) -> None:
    (work / "copy.yaml").write_text(TINY)
    code, _, err = invoke(["check", "tiny.yaml", "copy.yaml", "--baseline", "base.json"])
    assert code == 2 and "copy.yaml: another file given is also scenario 'tiny'" in err


# -- the project's own gate ----------------------------------------------------------------------------


def test_the_committed_baseline_covers_the_gated_scenarios() -> None:
    data = json.loads((ROOT / "ci" / "slo-baseline.json").read_text())
    assert sorted(data["scenarios"]) == sorted(GATED_SCENARIOS)
    makefile = (ROOT / "Makefile").read_text()
    assert all(f"scenarios/{name}.yaml" in makefile for name in GATED_SCENARIOS)


@pytest.mark.slow
def test_the_project_passes_its_own_gate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = [str(ROOT / "scenarios" / f"{name}.yaml") for name in GATED_SCENARIOS]
    monkeypatch.chdir(tmp_path)
    code, out, err = invoke(["check", *files, "--baseline", str(ROOT / "ci" / "slo-baseline.json")])
    assert code == 0, out + err


def test_a_scenario_with_no_traffic_for_any_slo_is_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "quiet.yaml"
    quiet = "workload: {mobile_users: 0, dashboard_users: 0}\n"
    path.write_text(f"name: quiet\nduration: 2m\nfleet: {{meters: 0, controllables: 5}}\n{quiet}")
    code, _, err = invoke(["check", str(path), "--baseline", str(tmp_path / "b.json"), "--update-baseline"])
    assert code == 2 and err == f"hems-twin: {path}: the scenario has no SLO its traffic supports: nothing to gate\n"
