"""The HTML reports, opened in a real headless browser as a design review would open them.

Each committed ``reports/*.html`` must render (a title and its heading; a scenario's page has its
name in the heading and at least one figure), keep the console free of errors and warnings, load
every figure, and fetch nothing: the file is meant to be mailed around and opened offline.  A
full-page screenshot of each lands in ``out/report-browser/`` for CI to keep.

Two controls keep the check honest: a hand-made page in the reports' shape (inline CSS, a
matplotlib SVG as a ``data:`` URI) must pass, and a page with a broken image, console noise and
outside fetches must fail on each count.  Without chromium or Playwright the module is skipped,
saying how to get them.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.browser import check_page, chromium, missing_browser

if TYPE_CHECKING:
    from playwright.sync_api import Browser

ROOT = Path(__file__).resolve().parent.parent
REPORTS = sorted((ROOT / "reports").glob("*.html"))
SCREENSHOTS = ROOT / "out" / "report-browser"  # CI keeps out/ as its artifact folder


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One chromium for the whole module; each page still gets a fresh context."""
    reason = missing_browser()
    if reason is not None:
        pytest.skip(f"browser check skipped: {reason}")
    with chromium() as started:
        yield started


def _svg_data_uri() -> str:
    """A real matplotlib figure as the reports embed them: an SVG document, base64 in a data: URI."""
    from matplotlib.figure import Figure  # no pyplot: no global figure state shared with other tests

    figure = Figure(figsize=(6, 3))
    axes = figure.subplots()
    axes.plot([0, 1, 2, 3], [0.1, 0.4, 0.2, 0.3], label="p95 latency")
    axes.axvspan(1, 2, alpha=0.2, label="fault")
    axes.legend()
    svg = io.StringIO()
    figure.savefig(svg, format="svg")
    return "data:image/svg+xml;base64," + base64.b64encode(svg.getvalue().encode()).decode()


def _page(path: Path, body: str, *, head: str = "<title>c3-cascade</title>") -> Path:
    html = f'<!doctype html>\n<html lang="en">\n<head><meta charset="utf-8">{head}</head>\n'
    html += f"<body>{body}</body>\n</html>\n"
    path.write_text(html)
    return path


@pytest.mark.parametrize(
    "report",
    [pytest.param(path, id=path.stem) for path in REPORTS]
    or [pytest.param(None, marks=pytest.mark.skip(reason="no reports/*.html yet: run `make report`"))],
)
def test_report_renders_in_browser(browser: Browser, report: Path) -> None:
    check = check_page(browser, report, screenshot=SCREENSHOTS / f"{report.stem}.png")
    assert not check.problems, "\n".join(check.problems)
    if report.stem != "index":  # a scenario's page: its name heads it, and it has figures
        assert any(report.stem in heading for heading in check.headings), check.headings
        assert check.images >= 1
    assert (SCREENSHOTS / f"{report.stem}.png").stat().st_size > 0


def test_a_self_contained_page_passes(browser: Browser, tmp_path: Path) -> None:
    page = _page(
        tmp_path / "good.html",
        f'<h1>c3-cascade</h1><figure><img alt="timeline" src="{_svg_data_uri()}"><figcaption>x</figcaption></figure>',
        head="<title>c3-cascade</title><style>body { font-family: 'DejaVu Sans', sans-serif; }</style>",
    )
    screenshot = tmp_path / "good.png"

    check = check_page(browser, page, screenshot=screenshot)

    assert check.problems == ()
    assert (check.title, check.headings, check.images) == ("c3-cascade", ("c3-cascade",), 1)
    assert screenshot.read_bytes().startswith(b"\x89PNG")


def test_a_broken_page_fails_on_each_count(browser: Browser, tmp_path: Path) -> None:
    page = _page(
        tmp_path / "bad.html",
        '<h1>bad</h1><img alt="broken" src="data:image/png;base64,AAAA">'
        '<img alt="remote" src="https://example.com/figure.png">'
        '<script>console.error("boom"); console.warn("careful"); notDefined();</script>'
        "<p><script>alert(1)</script></p>",
        head='<title>bad</title><link rel="stylesheet" href="theme.css">',
    )

    problems = check_page(browser, page).problems

    assert "console error: boom" in problems
    assert "console warning: careful" in problems
    assert any(p.startswith("page error:") and "notDefined" in p for p in problems)
    assert "dialog opened: alert 1" in problems
    assert "image not loaded: data:image/png;base64,AAAA" in problems
    assert "request leaves the page: https://example.com/figure.png" in problems
    assert f"request leaves the page: {(tmp_path / 'theme.css').as_uri()}" in problems


def test_a_page_without_title_or_heading_fails(browser: Browser, tmp_path: Path) -> None:
    check = check_page(browser, _page(tmp_path / "empty.html", "<p>nothing</p>", head=""))

    assert check.problems == ("the page has no <title>", "the page has no <h1> heading")
    assert check.images == 0


def test_without_chromium_the_skip_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tests.browser.shutil.which", lambda name: None)
    assert "apt-get install chromium" in (missing_browser() or "")

    monkeypatch.setattr("tests.browser.importlib.util.find_spec", lambda name: None)
    reason = missing_browser() or ""
    assert "playwright is not installed" in reason and ".[dev]" in reason
