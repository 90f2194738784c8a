"""The committed reports under reports/ say what the tree would make: none is stale.

Fast (nothing is simulated): each scenario's fingerprint (:mod:`sim.report.fingerprint`) --
its hash, root seed, replications, the hems-twin version and a digest of every source file under
sim/ and models/ -- is recomputed and compared with the one reports/manifest.json recorded when
the report was built.  So any change to a scenario or to the code makes the reports stale, and
``make report`` regenerates them.  A slow test rebuilds one committed report and compares bytes,
which also catches what the fingerprint leaves out (matplotlib's or numpy's version).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from models.twin import TWIN
from sim.cli import load
from sim.report.build import CATALOGUE_FILE, MANIFEST_FILE, build_reports, read_manifest, report_profile
from sim.report.fingerprint import code_roots, fingerprint, fingerprint_inputs, source_digest, stale_inputs

ROOT = Path(__file__).resolve().parent.parent
REPORTS = ROOT / "reports"
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
STALE = "reports/ is stale: run make report"


def _manifest() -> dict[str, Any]:
    if not (REPORTS / MANIFEST_FILE).is_file():
        pytest.fail(f"{STALE} (reports/{MANIFEST_FILE} is missing)")
    return read_manifest(REPORTS)


def test_every_scenario_has_a_current_report() -> None:
    manifest = _manifest()
    digest = source_digest(code_roots(TWIN))
    problems = []
    names = set()
    for path in SCENARIOS:
        scenario = load(TWIN, path)
        name = str(scenario.name)
        names.add(name)
        entry = manifest["scenarios"].get(name)
        if entry is None:
            problems.append(f"{path.name}: no report")
            continue
        recorded = entry["inputs"]
        current = fingerprint_inputs(scenario, int(scenario.seed), int(recorded["replications"]), digest)
        if entry["fingerprint"] != fingerprint(current):
            problems.append(f"{name}: {', '.join(stale_inputs(recorded, current)) or 'fingerprint'} changed")
    for name in sorted(set(manifest["scenarios"]) - names):
        problems.append(f"{name}: reported, but scenarios/{name}.yaml is gone (delete its files from reports/)")
    assert not problems, f"{STALE} ({'; '.join(problems)})"


def test_the_manifest_files_exist() -> None:
    manifest = _manifest()
    listed = list(manifest["files"]) + [f for entry in manifest["scenarios"].values() for f in entry["files"]]
    missing = [f for f in listed if not (REPORTS / f).is_file()]
    assert not missing, f"{STALE} (missing: {', '.join(missing[:10])})"
    assert {"index.md", "index.html"} <= set(manifest["files"])


def test_the_catalogue_was_made_from_the_current_reports() -> None:
    manifest = _manifest()
    profile = report_profile(TWIN)
    if not profile.failure_modes:
        pytest.skip("the twin's report profile has no failure modes")
    assert (REPORTS / CATALOGUE_FILE).is_file(), f"{STALE} (no {CATALOGUE_FILE})"
    made_from = manifest.get("catalogue", {}).get("fingerprints", {})
    needed = sorted({mode.scenario for mode in profile.failure_modes})
    behind = [name for name in needed if made_from.get(name) != manifest["scenarios"].get(name, {}).get("fingerprint")]
    assert not behind, f"{STALE} ({CATALOGUE_FILE} was made from older runs of {', '.join(behind)})"


@pytest.mark.slow
def test_a_committed_report_rebuilds_to_the_same_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The smallest committed scenario with variants, rebuilt into tmp: its pages and figures are the same bytes."""
    manifest = _manifest()
    name = "s2-poison-dlq" if "s2-poison-dlq" in manifest["scenarios"] else sorted(manifest["scenarios"])[0]
    entry = manifest["scenarios"][name]
    monkeypatch.chdir(ROOT)  # the page names its file as reports/ does: scenarios/<name>.yaml
    build_reports(TWIN, [entry["source"]], tmp_path, replications=int(entry["inputs"]["replications"]))
    rebuilt = json.loads((tmp_path / MANIFEST_FILE).read_text())["scenarios"][name]
    assert rebuilt["fingerprint"] == entry["fingerprint"], STALE
    differing = [f for f in entry["files"] if (tmp_path / f).read_bytes() != (REPORTS / f).read_bytes()]
    assert not differing, f"rebuilt {name} differs from reports/ in {', '.join(differing)}"
