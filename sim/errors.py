"""The engine's exception hierarchy.

* SimError                      -- root of everything the engine raises on purpose
  + ScenarioError(ValueError)   -- a scenario file is unusable: says file, line, field, expectation
  + ModelDefinitionError        -- a twin was assembled inconsistently (a bug, not bad input)

Failures *inside* a simulated system (timeouts, unavailable actors, throttling) are not
exceptions of the engine: they are :mod:`sim.ops` errors thrown into the system's logic,
and SLO violations are results, never exceptions.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ModelDefinitionError", "Problem", "ScenarioError", "SimError"]


class SimError(Exception):
    """Root of the engine's own exceptions."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a scenario file, located as precisely as the input allows."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        field = f" {self.field}:" if self.field else ""
        return f"{where}:{field} {self.message}"


class ScenarioError(SimError, ValueError):
    """A scenario cannot be used; ``problems`` lists every located problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class ModelDefinitionError(SimError):
    """A twin was wired inconsistently (unknown actor, duplicate name): a programming error."""
