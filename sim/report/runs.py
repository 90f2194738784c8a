"""A scenario's runs as a report reads them: every variant on every replication's seed.

The report generator runs each scenario once (:func:`sim.report.build.run_for_report`) and
hands the same :class:`ScenarioRuns` to the figures, the pages and the FMEA catalogue, so
they all speak of the same runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sim.replications import Replications

__all__ = ["Figure", "ScenarioRuns"]


@dataclass(frozen=True)
class ScenarioRuns:
    """One scenario, run for a report.

    ``replications.results[i][variant]`` is replication ``i``'s result body for a variant
    (replication 0 runs on the first spawned seed, ``replications.seeds[0]``);
    ``replications.body`` holds every figure's mean and 95 % interval per variant and the
    expectations' verdicts.  ``source`` is the scenario file as the report names it.
    """

    name: str
    source: str
    description: str
    scenario: Any
    replications: Replications

    @property
    def variants(self) -> tuple[str, ...]:
        """The variants in the scenario's order (a scenario without variants has one)."""
        return self.replications.variants

    def body(self, variant: str, replication: int = 0) -> dict[str, Any]:
        """One run's result body."""
        return self.replications.results[replication][variant]


@dataclass(frozen=True)
class Figure:
    """One rendered figure: ``svg`` is the whole SVG document, deterministic text."""

    name: str
    """a file-name stem, unique within the scenario: ``timeline``, ``latency-cdf``, ..."""
    title: str
    caption: str
    svg: str
