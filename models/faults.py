"""Fault kinds only the smart-home model can inflict, registered beside the engine's own.

The engine ships the generic kinds (:data:`sim.faults.GENERIC_FAULTS`); this module adds the
ones that need to know what a reading is.  :data:`FAULT_KINDS` is the full list the scenario
format (:mod:`models.config`) accepts, and the JSON Schema follows from it.
"""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

from pydantic import Field

from models.recovery.faults import DURABILITY_FAULTS
from models.replication import WriteBurst
from sim.errors import ModelDefinitionError
from sim.faults import GENERIC_FAULTS, Fault, FaultContext, LastingFault, Undo

__all__ = ["FAULT_KINDS", "Flood", "FloodSource", "Poison", "PoisonSource"]


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


@runtime_checkable
class FloodSource(Protocol):
    """A population of app users that a bug can turn into a flood of commands (the mobile users)."""

    def flood(self, device: int, rate_per_s: float, users: int) -> Undo:
        """Send commands to ``device`` at ``rate_per_s`` from ``users`` users until undone."""


class Flood(LastingFault):
    """A buggy app release floods one device with commands (finding S1): ``rate`` commands
    per second, from ``users`` users of that release, with no backoff."""

    kind: Literal["flood"]
    device: int = Field(default=0, ge=0, le=10_000_000, description="the device every command targets")
    rate: float = Field(gt=0, le=10_000, description="commands per second, all flooding users together")
    users: int = Field(default=20, ge=1, le=100_000, description="users running the buggy release")

    def start(self, ctx: FaultContext) -> Undo:
        source = ctx.component(self.target, self.kind)
        if not isinstance(source, FloodSource):
            raise ModelDefinitionError(f"a 'flood' fault targets {self.target!r}, which sends no commands")
        return source.flood(self.device, self.rate, self.users)


FAULT_KINDS: tuple[type[Fault], ...] = (*GENERIC_FAULTS, Poison, Flood, WriteBurst, *DURABILITY_FAULTS)
"""Every fault kind a smart-home scenario may use."""
