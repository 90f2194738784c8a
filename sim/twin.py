"""What the engine needs from a model, and how it finds one.

The engine never imports a model.  A model package advertises a :class:`Twin` under the
``hems_twin.twins`` entry-point group (see ``pyproject.toml``); the CLI and the
experiment helpers look it up by name with :func:`load_twin`.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel

from sim.errors import SimError

if TYPE_CHECKING:
    from sim.kernel import Progress

__all__ = ["ENTRY_POINT_GROUP", "Estimate", "Twin", "load_twin"]

ENTRY_POINT_GROUP = "hems_twin.twins"


@dataclass(frozen=True)
class Estimate:
    """A run's cost, estimated before it starts, so one that cannot fit is refused early.

    Rough by nature (within a factor of two or so): what matters is the order of magnitude.
    ``driver`` names the scenario field that contributes most, the one a user would change.
    """

    events: float
    """simpy events the run would schedule"""
    memory_bytes: float
    """peak resident memory"""
    wall_s: float
    """wall-clock seconds on one core of this class of machine"""
    driver: str
    """the scenario field that dominates the cost, as ``section.field``"""


class Twin(Protocol):
    """A simulated system the engine can load scenarios for and run.

    A twin may also offer ``report_profile`` (a :class:`sim.report.profile.ReportProfile`):
    what its failure-mode reports draw and catalogue.  It is optional -- a twin without one
    gets reports with the engine's own sections only -- so it is not part of this protocol.
    """

    name: str
    scenario_type: type[BaseModel]

    def check(self, scenario: Any) -> list[tuple[tuple[str | int, ...], str]]:
        """Semantic problems pydantic cannot see (unknown fault targets), as (field path, message)."""

    def result_paths(self, scenario: Any) -> set[str]:
        """Every path to a number a run of ``scenario`` puts in its result (what expectations may read)."""

    def estimate(self, scenario: Any) -> Estimate:
        """What running ``scenario`` would cost, worked out from the scenario alone."""

    def run(self, scenario: Any, seed: int, progress: Progress | None = None) -> dict[str, Any]:
        """Simulate ``scenario`` with ``seed``; returns the result body (plain, JSON-ready data).

        ``progress`` is told the simulated time reached and the events so far, now and then.
        """


def load_twin(name: str | None = None) -> Twin:
    """The installed twin called ``name`` (or the only one installed)."""
    found = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    if not found:
        raise SimError(f"no twin installed (entry-point group {ENTRY_POINT_GROUP!r}); run 'pip install -e .'")
    if name is None:
        if len(found) > 1:
            raise SimError(f"several twins installed ({', '.join(sorted(found))}); name one")
        name = next(iter(found))
    if name not in found:
        raise SimError(f"no twin called {name!r} (installed: {', '.join(sorted(found))})")
    twin: Twin = found[name].load()
    return twin
