"""Failure-mode reports: per scenario a Markdown page and one self-contained HTML file with its
figures, an index, the FMEA catalogue, and a manifest that says when they are stale.

The pieces, one concept each: :mod:`~sim.report.profile` (what a twin tells the generator),
:mod:`~sim.report.runs` (a scenario's runs), :mod:`~sim.report.figures` (matplotlib figures),
:mod:`~sim.report.page` (a page as neutral blocks), :mod:`~sim.report.markdown` and
:mod:`~sim.report.html` (its two renderings), :mod:`~sim.report.fmea` (the catalogue),
:mod:`~sim.report.fingerprint` (staleness) and :mod:`~sim.report.build` (the folder).  Names
are imported on first use, so reading a profile never loads matplotlib.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sim.lazy import lazy_exports

if TYPE_CHECKING:
    from sim.report.build import build_reports, run_for_report
    from sim.report.profile import Band, Distribution, FailureMode, Line, Panel, ReportProfile, Runbook, Signal
    from sim.report.runs import Figure, ScenarioRuns

_HOME = {
    "Band": "sim.report.profile",
    "Distribution": "sim.report.profile",
    "FailureMode": "sim.report.profile",
    "Figure": "sim.report.runs",
    "Line": "sim.report.profile",
    "Panel": "sim.report.profile",
    "ReportProfile": "sim.report.profile",
    "Runbook": "sim.report.profile",
    "ScenarioRuns": "sim.report.runs",
    "Signal": "sim.report.profile",
    "build_reports": "sim.report.build",
    "run_for_report": "sim.report.build",
}

__all__ = [
    "Band",
    "Distribution",
    "FailureMode",
    "Figure",
    "Line",
    "Panel",
    "ReportProfile",
    "Runbook",
    "ScenarioRuns",
    "Signal",
    "build_reports",
    "run_for_report",
]

__getattr__, __dir__ = lazy_exports("sim.report", globals(), _HOME)
