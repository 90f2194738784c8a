"""Report pages: deterministic bytes, escaped text, self-contained HTML, a careful build folder."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import pytest

from models.twin import TWIN
from sim.errors import ScenarioError, SimError
from sim.replications import Replications
from sim.report import build
from sim.report.build import MANIFEST_FILE, build_reports, read_manifest, scenario_files
from sim.report.command import add_report_parser, report_command
from sim.report.fingerprint import fingerprint, source_digest, stale_inputs
from sim.report.html import render_html
from sim.report.markdown import escape_markdown, render_markdown
from sim.report.page import IndexEntry, format_difference, format_interval, format_number, index_page, scenario_page
from sim.report.profile import ReportProfile, Signal
from sim.report.runs import Figure, ScenarioRuns

HOSTILE = "<script>alert(1)</script>"
QUOTES = "\"&'<>"
DESCRIPTION = f"A {HOSTILE} description {QUOTES} with a | pipe, *stars* and [a](link)."
SMALL = f"""
name: tiny-report
description: {json.dumps(DESCRIPTION)}
duration: 4m
seed: 11
fleet: {{meters: 40, controllables: 20}}
workload: {{mobile_users: 40, dashboard_users: 5}}
faults:
  - {{kind: crash, target: device-manager, at: 1m, restart_after: 20s}}
variants:
  as-designed: {{}}
  outbox: {{device_manager: {{outbox: true}}}}
expect:
  outbox:
    - commands.orphaned == 0
"""
SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>\n'


class _Twin:
    """The smart-home twin with a chosen report profile (the real one, or none)."""

    def __init__(self, profile: ReportProfile) -> None:
        self.report_profile = profile

    def __getattr__(self, name: str) -> Any:
        return getattr(TWIN, name)


def _profile() -> ReportProfile:
    """The twin's own profile when its module exists, else an empty one."""
    try:
        return TWIN.report_profile
    except ImportError:
        return ReportProfile()


def _stub_figures(names: tuple[str, ...] = ("timeline", "latency-cdf")) -> Any:
    def figures(profile: ReportProfile, runs: ScenarioRuns) -> list[Figure]:
        return [Figure(name, f"{name} of {runs.name}", f"What {name} shows {HOSTILE}", SVG) for name in names]

    return figures


@pytest.fixture(scope="module")
def small_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("scenario") / "tiny-report.yaml"
    path.write_text(SMALL)
    return path


@pytest.fixture(scope="module")
def built_twice(small_file: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A small scenario with a hostile description, built twice (real runs; real figures when
    sim.report.figures exists, else a stub with the same bytes every time)."""
    twin = _Twin(_profile())
    first, second = tmp_path_factory.mktemp("a"), tmp_path_factory.mktemp("b")
    with pytest.MonkeyPatch.context() as patch:
        try:
            import sim.report.figures  # noqa: F401
        except ImportError:
            patch.setattr(build, "_scenario_figures", _stub_figures())
        build_reports(twin, [small_file], first, replications=2, workers=1)  # type: ignore[arg-type]
        build_reports(twin, [small_file], second, replications=2, workers=1)  # type: ignore[arg-type]
    return first, second


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_building_twice_gives_the_same_bytes(built_twice: tuple[Path, Path]) -> None:
    first, second = built_twice
    a, b = _files(first), _files(second)
    assert {"tiny-report.md", "tiny-report.html", "index.md", "index.html", MANIFEST_FILE} <= set(a)
    assert a.keys() == b.keys()
    assert [name for name in a if a[name] != b[name]] == []
    manifest = read_manifest(first)
    listed = set(manifest["scenarios"]["tiny-report"]["files"]) | set(manifest["files"])
    assert listed | {MANIFEST_FILE} == set(a)  # every file is the manifest's, and every listed one exists


def test_loaded_description_is_escaped_and_the_html_is_self_contained(built_twice: tuple[Path, Path]) -> None:
    first, _ = built_twice
    page = (first / "tiny-report.html").read_text()
    markdown = (first / "tiny-report.md").read_text()
    for text in (page, markdown, (first / "index.html").read_text(), (first / "index.md").read_text()):
        assert "<script" not in text.lower()
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&quot;&amp;&#x27;&lt;&gt;" in page
    assert "http://" not in page and "https://" not in page and "//" not in re.sub(r"data:[^\"]*", "", page)
    assert re.search(r"<(link|iframe|object|embed|base|form|audio|video|source)\b", page) is None
    assert "@import" not in page and "url(" not in page
    sources = re.findall(r"<img\b[^>]*>", page)
    assert len(sources) == len(read_manifest(first)["scenarios"]["tiny-report"]["files"]) - 2  # one per SVG
    for tag in sources:
        assert re.search(r' src="data:image/svg\+xml;base64,[A-Za-z0-9+/=]+"', tag), tag
        assert re.search(r' alt="[^"]+"', tag), tag
    assert 'http-equiv="Content-Security-Policy"' in page
    # the Markdown table keeps its columns: the description's pipe is escaped
    row = next(line for line in (first / "index.md").read_text().splitlines() if "tiny-report.md" in line)
    assert len(re.findall(r"(?<!\\)\|", row)) == 6
    assert "\\*stars\\*" in markdown and "\\[a\\]" in markdown


def test_pages_carry_no_timestamp_machine_or_absolute_path(built_twice: tuple[Path, Path], small_file: Path) -> None:
    first, _ = built_twice
    for name, data in _files(first).items():
        text = data.decode()
        assert str(small_file.parent) not in text and str(first) not in text, name
        assert not re.search(r"\b20\d\d-\d\d-\d\d\b", text), name
        assert "tiny-report.yaml" in text or not name.endswith((".md", ".html")) or name.startswith("index")


# -- a ScenarioRuns built by hand: hostile text everywhere ---------------------------------------------


def _runs(name: str = HOSTILE, description: str = f"{HOSTILE} {QUOTES} | x", variant: str = HOSTILE) -> ScenarioRuns:
    variants = ("as-designed", variant)

    def metric(mean: float, low: float, high: float) -> dict[str, Any]:
        return {"mean": mean, "ci_low": low, "ci_high": high, "n": 2, "method": "t", "values": [low, high]}

    body = {
        "replications": {"count": 2, "root_seed": 7, "seeds": [1, 2], "confidence": 0.95},
        "first_variant": "as-designed",
        "variants": {
            "as-designed": {"metrics": {"commands.orphaned": metric(39.5, 30.0, 49.0)}, "invariants_broken_on": []},
            variant: {
                "metrics": {"commands.orphaned": metric(0.0, 0.0, 0.0)},
                "difference_from_first": {"commands.orphaned": metric(-39.5, -49.0, -30.0)},
                "invariants_broken_on": [],
            },
        },
        "expectations": [
            {"variant": variant, "expect": f"{HOSTILE} == 0", "held_on": 1, "of": 2, "failed_replications": [1]}
        ],
    }
    one = {
        "faults": [{"kind": "crash", "target": HOSTILE, "start": 60.0, "end": 60.0}],
        "invariants": [{"name": f"{HOSTILE} holds", "held": True, "detail": ""}],
        "warnings": [f"{HOSTILE} warned"],
        "flows": {"commands": {"success_rate": 0.95}},
    }
    results = tuple({v: dict(one) for v in variants} for _ in range(2))
    return ScenarioRuns(name, "scenarios/x.yaml", description, None, Replications(body, (1, 2), variants, results))


def _hostile_page() -> tuple[str, str]:
    runs = _runs()
    profile = ReportProfile(headline=(Signal("success", ("flows", "commands", "success_rate"), worse="lower"),))
    figure = Figure("timeline", HOSTILE, f"caption {HOSTILE} {QUOTES}", SVG)
    inputs = {"scenario_hash": "0" * 64, "root_seed": 7, "replications": 2, "version": "1", "source_digest": "f" * 64}
    page = scenario_page(runs, profile, [(figure, "figures/x/timeline.svg")], "ab" * 32, inputs)
    return render_html(page), render_markdown(page)


def test_hostile_text_renders_as_text_in_html() -> None:
    page, _ = _hostile_page()
    assert "<script" not in page.lower()
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 7  # title, h1, variant, expectation, fault, ...
    assert "&quot;&amp;&#x27;&lt;&gt;" in page
    assert 'alt="&lt;script&gt;alert(1)&lt;/script&gt;"' in page
    assert "FAILED: held 1 of 2" in page  # the failing expectation is shown as failed


def test_hostile_text_is_safe_in_markdown() -> None:
    _, markdown = _hostile_page()
    assert "<" not in markdown.replace("<br>", "")  # no tag at all: every '<' is an entity
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in markdown
    for line in markdown.splitlines():
        if line.startswith("|"):
            assert len(re.findall(r"(?<!\\)\|", line)) in (4, 5), line  # 3 or 4 columns, pipes escaped


def test_markdown_escaping_rules() -> None:
    assert escape_markdown("a|b") == "a\\|b"
    assert escape_markdown("<b>&") == "&lt;b&gt;&amp;"
    assert escape_markdown("- not a list") == "\\- not a list"
    assert escape_markdown("1. not a list") == "1\\. not a list"
    assert escape_markdown("two\nlines") == "two lines"
    assert escape_markdown("# no heading `code` _x_") == "\\# no heading \\`code\\` \\_x\\_"


def test_numbers_follow_one_rule() -> None:
    assert format_number(1234567) == "1,234,567"
    assert format_number(1234567.0) == "1,234,567"
    assert format_number(1234.5) == "1,230"
    assert format_number(12.345) == "12.3"
    assert format_number(999.7) == "1,000"  # rounds up into the thousands: never "1e+03"
    assert format_number(-999.6) == "-1,000"
    assert format_number(0.012345) == "0.0123"
    assert format_number(0.00001234) == "1.23e-05"
    assert format_number(-0.0) == "0"
    assert format_number(None) == "-"
    assert format_number(float("nan")) == "-"
    assert format_number(2.5, signed=True) == "+2.5"
    assert format_interval({"mean": 1030.4, "ci_low": 1012.0, "ci_high": 1048.9}) == "1,030 [1,012 to 1,050]"
    assert format_interval({"mean": 3, "ci_low": 3, "ci_high": 3}) == "3 (every run)"
    assert format_interval({"mean": 3, "ci_low": None, "ci_high": None}) == "3 (no interval)"
    assert format_difference({"mean": -39.5, "ci_low": -49.0, "ci_high": -30.0}) == "-39.5 [-49 to -30]"


def test_index_lists_scenarios_sorted_with_their_verdicts() -> None:
    entries = [
        IndexEntry("zeta", "last", (), ("as-written",), 0, 0),
        IndexEntry("alpha", "first", ("C1",), ("a", "b"), 1, 2),
    ]
    markdown = render_markdown(index_page(entries, "failure-modes.md"))
    assert markdown.index("[alpha](alpha.md)") < markdown.index("[zeta](zeta.md)")
    assert "**1 of 2 held**" in markdown and "[failure-modes.md](failure-modes.md)" in markdown
    page = render_html(index_page(entries, None))
    assert '<a href="alpha.html">alpha</a>' in page and "failure-modes" not in page


# -- the build folder ---------------------------------------------------------------------------------


@pytest.fixture
def fake_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """No simulation: every scenario 'runs' to a small hand-made ScenarioRuns named as the scenario."""

    def run_loaded(twin: Any, scenario: Any, path: Any, replications: int, workers: Any) -> ScenarioRuns:
        made = _runs(name=str(scenario.name), description="plain", variant="outbox")
        return ScenarioRuns(made.name, build.source_name(path), "plain", scenario, made.replications)

    monkeypatch.setattr(build, "_run_loaded", run_loaded)


def test_a_dropped_figure_is_removed_and_nothing_else(
    fake_runs: None, small_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    twin = _Twin(ReportProfile())
    out = tmp_path / "reports"
    monkeypatch.setattr(build, "_scenario_figures", _stub_figures(("timeline", "ledger")))
    build_reports(twin, [small_file], out, replications=2)  # type: ignore[arg-type]
    assert (out / "figures/tiny-report/ledger.svg").is_file()
    mine = [out / "notes.md", out / "figures/tiny-report/mine.svg", out / "figures/other/x.svg"]
    for path in mine:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("the user's")
    manifest = read_manifest(out)
    manifest["scenarios"]["tiny-report"]["files"] += ["../outside.txt", "/etc/hostname"]
    (tmp_path / "outside.txt").write_text("outside")
    (out / MANIFEST_FILE).write_text(json.dumps(manifest))
    monkeypatch.setattr(build, "_scenario_figures", _stub_figures(("timeline",)))
    build_reports(twin, [small_file], out, replications=2)  # type: ignore[arg-type]
    assert not (out / "figures/tiny-report/ledger.svg").exists()
    assert (out / "figures/tiny-report/timeline.svg").is_file()
    assert all(path.read_text() == "the user's" for path in mine)
    assert (tmp_path / "outside.txt").exists()
    assert read_manifest(out)["scenarios"]["tiny-report"]["files"] == [
        "figures/tiny-report/timeline.svg",
        "tiny-report.html",
        "tiny-report.md",
    ]


def test_building_one_scenario_keeps_the_others_in_the_index(fake_runs: None, tmp_path: Path) -> None:
    twin = _Twin(ReportProfile())
    files = []
    for name in ("one", "two"):
        path = tmp_path / f"{name}.yaml"
        path.write_text(SMALL.replace("name: tiny-report", f"name: {name}"))
        files.append(path)
    out = tmp_path / "reports"
    build_reports(twin, files, out, replications=2)  # type: ignore[arg-type]
    build_reports(twin, files[:1], out, replications=2)  # type: ignore[arg-type]
    index = (out / "index.md").read_text()
    assert "[one](one.md)" in index and "[two](two.md)" in index
    assert sorted(read_manifest(out)["scenarios"]) == ["one", "two"]


def test_bad_input_is_refused_before_anything_runs(fake_runs: None, small_file: Path, tmp_path: Path) -> None:
    twin = _Twin(ReportProfile())
    with pytest.raises(SimError, match="scenario names must differ"):
        build_reports(twin, [small_file, small_file], tmp_path / "r", replications=2)  # type: ignore[arg-type]
    with pytest.raises(ScenarioError):
        build_reports(twin, [tmp_path / "missing.yaml"], tmp_path / "r", replications=2)  # type: ignore[arg-type]
    with pytest.raises(SimError, match="at least two"):
        build_reports(twin, [small_file], tmp_path / "r", replications=1)  # type: ignore[arg-type]
    reserved = tmp_path / "index.yaml"
    reserved.write_text(SMALL.replace("name: tiny-report", "name: index"))
    with pytest.raises(SimError, match="cannot name a report page"):
        build_reports(twin, [reserved], tmp_path / "r", replications=2)  # type: ignore[arg-type]
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / MANIFEST_FILE).write_text("{}")
    with pytest.raises(SimError, match="not a hems-twin report manifest"):
        build_reports(twin, [small_file], tmp_path / "bad", replications=2)  # type: ignore[arg-type]
    assert not (tmp_path / "r").exists()


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_report_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["report", *argv])


def test_cli_options_and_bad_input(
    fake_runs: None,
    small_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    defaults = _args(str(small_file))
    assert (defaults.out, defaults.replications, defaults.workers) == ("reports", "5", None)
    twin = _Twin(ReportProfile())
    monkeypatch.setattr(build, "_scenario_figures", _stub_figures())
    for argv, message in (
        (["--replications", "many"], "--replications 'many': expected a whole number"),
        (["--replications", "1"], "expected 2 to"),
        (["--workers", "0"], "--workers 0: expected 1 to"),
        (["--out", ""], "--out must name a directory"),
        (["--out", str(small_file)], "exists and is not a directory"),
    ):
        with pytest.raises(SimError, match=re.escape(message)):
            report_command(twin, _args(str(small_file), *argv))  # type: ignore[arg-type]
    out = tmp_path / "cli"
    assert report_command(twin, _args(str(small_file), "--out", str(out), "--replications", "2")) == 0  # type: ignore[arg-type]
    assert "wrote 1 report (" in capsys.readouterr().out
    assert (out / "tiny-report.html").is_file()


def test_api_report(fake_runs: None, small_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sim.api import report

    monkeypatch.setattr(build, "_scenario_figures", _stub_figures())
    written = report(small_file, out=tmp_path / "api", replications=2, twin=_Twin(ReportProfile()))  # type: ignore[arg-type]
    assert tmp_path / "api" / "tiny-report.md" in written and tmp_path / "api" / MANIFEST_FILE in written


def test_scenario_files_refuse_a_figure_name_that_is_not_a_slug() -> None:
    inputs = {"scenario_hash": "0", "root_seed": 7, "replications": 2, "version": "1", "source_digest": "f"}
    runs = _runs(name="x")
    with pytest.raises(ValueError, match="slug"):
        scenario_files(runs, ReportProfile(), [Figure("../evil", "t", "c", SVG)], "fp", inputs)


# -- fingerprints ------------------------------------------------------------------------------------------


def test_source_digest_follows_content_not_line_endings(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "a.py").write_bytes(b"x = 1\n")
    (package / "sub" / "b.py").write_bytes(b"y = 2\n")
    (package / "notes.txt").write_text("not code")
    before = source_digest([package])
    (package / "notes.txt").write_text("changed")
    assert source_digest([package]) == before
    (package / "a.py").write_bytes(b"x = 1\r\n")
    assert source_digest([package]) == before
    (package / "sub" / "b.py").write_bytes(b"y = 3\n")
    assert source_digest([package]) != before


def test_fingerprint_covers_every_input() -> None:
    inputs = {"scenario_hash": "h", "root_seed": 7, "replications": 5, "version": "1.0", "source_digest": "d"}
    prints = {fingerprint(inputs)}
    for key, value in (
        ("scenario_hash", "g"),
        ("root_seed", 8),
        ("replications", 4),
        ("version", "1.1"),
        ("source_digest", "e"),
    ):
        changed = {**inputs, key: value}
        prints.add(fingerprint(changed))
        assert stale_inputs(inputs, changed) == [key]
    assert len(prints) == 6
