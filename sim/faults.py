"""Faults as typed data on a timeline.

A scenario lists faults; each has a ``kind``, a ``target``, a start ``at`` and, where it
lasts, a duration ``for``::

    faults:
      - {kind: latency, target: db-replica-1, at: 10m, for: 5m, add: 10s}
      - {kind: crash, target: ingest-consumer, at: 20m, restart_after: 30s}
      - {kind: partition, target: us-east-1a, at: 30m, for: 2m}

The engine knows how to inflict the generic kinds on actors and network nodes; a model
registers extra targets (:class:`FaultTarget`) for kinds only it can interpret, such as
poison messages.  :func:`fault_kinds_for` tells the loader which kinds a target accepts,
so an unknown kind or target is rejected when the scenario is loaded, not mid-run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from sim.distributions import Distribution
from sim.durations import Duration, Offset

if TYPE_CHECKING:
    from sim.kernel import Kernel

__all__ = [
    "ACTOR_FAULTS",
    "NODE_FAULTS",
    "Crash",
    "Duplication",
    "ErrorRate",
    "Fault",
    "FaultTarget",
    "FaultTimeline",
    "Latency",
    "MessageLoss",
    "Partition",
    "Poison",
    "Reordering",
]


class _Fault(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    target: str = Field(description="name of the component, node, zone or region hit")
    at: Offset = Field(description="when the fault starts, from the start of the run")

    @property
    def until(self) -> float | None:
        """When the fault ends, or None for instantaneous faults."""
        duration = getattr(self, "for_", None)
        return None if duration is None else self.at + duration


class _Lasting(_Fault):
    for_: Duration = Field(alias="for", description="how long the fault lasts")


class _MessageFault(_Lasting):
    probability: float = Field(gt=0, le=1, description="chance that each message is affected")


class Latency(_Lasting):
    """Added delay: extra service time on an actor, extra transit time on a network node."""

    kind: Literal["latency"]
    add: Distribution = Field(description="delay added to each request or message")


class ErrorRate(_Lasting):
    """A fraction of the actor's requests is answered with an error."""

    kind: Literal["error_rate"]
    rate: float = Field(gt=0, le=1, description="probability that a request fails")


class Crash(_Fault):
    """The actor dies, losing volatile state and in-flight work, and restarts later."""

    kind: Literal["crash"]
    restart_after: Duration = Field(default=30.0, description="time until the restart completes")


class Partition(_Lasting):
    """Messages between ``target`` and ``other`` (default: everyone else) are dropped."""

    kind: Literal["partition"]
    other: list[str] | None = Field(default=None, description="the other side; default all other nodes")


class MessageLoss(_MessageFault):
    """Each message to or from the node is lost with ``probability``."""

    kind: Literal["message_loss"]


class Duplication(_MessageFault):
    """Each message to or from the node is delivered twice with ``probability``."""

    kind: Literal["duplication"]


class Reordering(_MessageFault):
    """Each message to or from the node is held back with ``probability``, so it overtakes."""

    kind: Literal["reordering"]


class Poison(_Fault):
    """The target emits ``count`` messages its consumers cannot process."""

    kind: Literal["poison"]
    count: int = Field(default=1, ge=1, description="how many poison messages")
    schema_version: int = Field(default=99, description="the unsupported schema version they carry")


Fault = Annotated[
    Latency | ErrorRate | Crash | Partition | MessageLoss | Duplication | Reordering | Poison,
    Field(discriminator="kind"),
]
"""Any fault; the ``kind`` field selects the variant."""

NETWORK_KINDS = frozenset({"partition", "message_loss", "duplication", "reordering"})
NODE_FAULTS = NETWORK_KINDS | {"latency"}
ACTOR_FAULTS = NODE_FAULTS | {"error_rate", "crash"}


def _less(total: float, part: float) -> float:
    """``total - part`` for summed fault probabilities, snapping float residue (1e-17) to 0."""
    rest = total - part
    return rest if rest > 1e-9 else 0.0


class FaultTarget(Protocol):
    """A model component that interprets faults the engine cannot (e.g. ``poison``)."""

    fault_kinds: frozenset[str]

    def inject(self, fault: Any) -> Callable[[], None] | None:
        """Start ``fault``; return a callable that ends it, or None if it cannot be ended."""


class FaultTimeline:
    """Schedules a scenario's faults and records when each was active."""

    def __init__(self, kernel: Kernel, faults: Sequence[Any], custom: Mapping[str, FaultTarget]) -> None:
        self.kernel = kernel
        self.custom = dict(custom)
        self.log: list[dict[str, Any]] = []
        for fault in faults:
            kernel.call_later(fault.at, self._start, fault)

    def _start(self, fault: Any) -> None:
        end = self._inflict(fault)
        entry = {"kind": fault.kind, "target": fault.target, "start": self.kernel.now, "end": None}
        self.log.append(entry)
        until = fault.until
        if until is None:
            entry["end"] = self.kernel.now
            return

        def stop() -> None:
            if end is not None:
                end()
            entry["end"] = self.kernel.now

        self.kernel.call_later(until - fault.at, stop)

    def _inflict(self, fault: Any) -> Callable[[], None] | None:
        kernel = self.kernel
        custom = self.custom.get(fault.target)
        if custom is not None and fault.kind in custom.fault_kinds:
            return custom.inject(fault)
        actor = kernel.actors.get(fault.target)
        network = kernel.network
        if fault.kind == "latency":
            sampler = kernel.sampler(fault.add, f"fault/{fault.target}/latency")
            added = actor.added_latency if actor is not None else network.faults_of(fault.target).added
            added.append(sampler)
            return lambda: added.remove(sampler)
        if fault.kind == "error_rate":
            actor.error_rate += fault.rate
            return lambda: setattr(actor, "error_rate", _less(actor.error_rate, fault.rate))
        if fault.kind == "crash":
            actor.crash(fault.restart_after)
            return None
        if fault.kind == "partition":
            handle = network.partition([fault.target], fault.other)
            return lambda: network.heal(handle)
        if fault.kind in ("message_loss", "duplication", "reordering"):
            faults = network.faults_of(fault.target)
            attribute = {"message_loss": "loss", "duplication": "duplication", "reordering": "reorder"}[fault.kind]
            setattr(faults, attribute, getattr(faults, attribute) + fault.probability)
            return lambda: setattr(faults, attribute, _less(getattr(faults, attribute), fault.probability))
        raise ValueError(f"fault kind {fault.kind!r} cannot target {fault.target!r}")  # the loader prevents this
