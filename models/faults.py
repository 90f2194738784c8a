"""Fault kinds only the smart-home model can inflict, registered beside the engine's own.

The engine ships the generic kinds (:data:`sim.faults.GENERIC_FAULTS`); this module adds the
ones that need to know what a reading is.  :data:`FAULT_KINDS` is the full list the scenario
format (:mod:`models.config`) accepts, and the JSON Schema follows from it.
"""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

from pydantic import Field

from sim.errors import ModelDefinitionError
from sim.faults import GENERIC_FAULTS, Fault, FaultContext

__all__ = ["FAULT_KINDS", "Poison", "PoisonSource"]


@runtime_checkable
class PoisonSource(Protocol):
    """A producer that can emit records its consumers cannot decode (the meter fleet)."""

    def emit_poison(self, count: int, schema_version: int) -> None:
        """Send ``count`` records tagged with the unsupported ``schema_version`` now."""


class Poison(Fault):
    """The target emits ``count`` messages its consumers cannot process (finding S2)."""

    kind: Literal["poison"]
    count: int = Field(default=1, ge=1, description="how many poison messages")
    schema_version: int = Field(default=99, description="the unsupported schema version they carry")

    def start(self, ctx: FaultContext) -> None:
        source = ctx.component(self.target, self.kind)
        if not isinstance(source, PoisonSource):
            raise ModelDefinitionError(f"a 'poison' fault targets {self.target!r}, which cannot emit records")
        source.emit_poison(self.count, self.schema_version)


FAULT_KINDS: tuple[type[Fault], ...] = (*GENERIC_FAULTS, Poison)
"""Every fault kind a smart-home scenario may use."""
