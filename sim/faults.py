"""Faults as typed data on a timeline; each kind owns how it is inflicted and undone.

A scenario lists faults; each has a ``kind``, a ``target``, a start ``at`` and, where it
lasts, a duration ``for``::

    faults:
      - {kind: latency, target: db-replica-1, at: 10m, for: 5m, add: 10s}
      - {kind: crash, target: ingest-consumer, at: 20m, restart_after: 30s}
      - {kind: partition, target: us-east-1a, at: 30m, for: 2m}

Every kind is one pydantic class deriving from :class:`Fault`: its fields are the kind's
parameters and its :meth:`Fault.start` inflicts it, returning the callable that undoes it
(or None when there is nothing to undo).  The engine ships the generic kinds
(:data:`GENERIC_FAULTS`: latency, error_rate, crash, partition, message_loss, duplication,
reordering); a model defines its own kinds the same way, outside the engine, and builds its
scenario type's fault field with :func:`fault_union`, so a new kind touches no engine file.
Which kinds a target accepts is the model's to say (``Twin.check``), so an unknown kind or
target is rejected when the scenario is loaded, not mid-run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Protocol, TypeVar, Union, runtime_checkable

import numpy as np
from pydantic import Field

from sim.distributions import Distribution
from sim.durations import Duration, Offset
from sim.errors import ModelDefinitionError
from sim.spec import Spec

if TYPE_CHECKING:
    from sim.actor import Actor
    from sim.kernel import Kernel
    from sim.network import NodeFaults

F = TypeVar("F", bound="Fault")

__all__ = [
    "ACTOR_FAULTS",
    "GENERIC_FAULTS",
    "NODE_FAULTS",
    "Crash",
    "Crashable",
    "Duplication",
    "ErrorRate",
    "Fault",
    "FaultContext",
    "FaultTimeline",
    "LastingFault",
    "Latency",
    "MessageFault",
    "MessageLoss",
    "Partition",
    "Reordering",
    "Undo",
    "draw_start_times",
    "fault_union",
    "kind_of",
]

Undo = Callable[[], None]
"""Ends a lasting fault: what :meth:`Fault.start` returns."""


@runtime_checkable
class Crashable(Protocol):
    """A model component that can crash although it is not an actor (a Redis master)."""

    def crash(self, restart_after: float) -> None:
        """Fail now and come back (or be replaced) later."""


@dataclass(frozen=True)
class FaultContext:
    """What a fault may act on: the kernel (actors, network, random streams) and the
    model's own fault-target components, by name."""

    kernel: Kernel
    components: Mapping[str, object] = field(default_factory=dict)

    def actor(self, name: str, kind: str) -> Actor:
        """The actor called ``name``; a clear error if the twin has none (a model bug)."""
        actor = self.kernel.actors.get(name)
        if actor is None:
            raise ModelDefinitionError(
                f"a {kind!r} fault targets {name!r}, which is no actor of this twin "
                f"(actors: {', '.join(sorted(self.kernel.actors))}); the twin's load-time check should have caught it"
            )
        return actor

    def component(self, name: str, kind: str) -> object:
        """The model component called ``name``; a clear error if the model registered none."""
        found = self.components.get(name)
        if found is None:
            raise ModelDefinitionError(
                f"a {kind!r} fault targets {name!r}, which is no fault component of this twin "
                f"(components: {', '.join(sorted(self.components)) or 'none'})"
            )
        return found

    def node_faults(self, name: str, kind: str) -> NodeFaults:
        """The message-fault record of network node ``name``."""
        if name not in self.kernel.network.nodes():
            raise ModelDefinitionError(f"a {kind!r} fault targets {name!r}, which is no network node of this twin")
        return self.kernel.network.faults_of(name)


class Fault(Spec):
    """Base of every fault kind: a target, a start time and how to inflict it.

    Subclasses declare ``kind: Literal["..."]`` (the tag scenarios use) and implement
    :meth:`start`.  Instantaneous kinds derive from this class, lasting ones from
    :class:`LastingFault`.
    """

    kind: str
    target: str = Field(description="name of the component, node, zone or region hit")
    at: Offset = Field(description="when the fault starts, from the start of the run")
    within: Duration | None = Field(
        default=None,
        description="start instead at a uniformly random time in [at, at + within), drawn from the run's seed: "
        "the same fault at many times over replications (a disaster does not wait for a backup to finish)",
    )

    @property
    def until(self) -> float | None:
        """When the fault ends, or None for instantaneous faults."""
        return None

    @property
    def latest_start(self) -> float:
        """The latest time the fault may start (``at`` unless ``within`` spreads it)."""
        return self.at if self.within is None else self.at + self.within

    def start(self, ctx: FaultContext) -> Undo | None:
        """Inflict the fault now; return what undoes it, or None if nothing can."""
        raise NotImplementedError(f"fault kind {self.kind!r} does not say how it is inflicted")


class LastingFault(Fault):
    """A fault active for a window ``[at, at + for)``."""

    for_: Duration = Field(alias="for", description="how long the fault lasts")

    @property
    def until(self) -> float | None:
        return self.at + self.for_


class MessageFault(LastingFault):
    """A lasting fault that hits each message to or from a node with a probability."""

    probability: float = Field(gt=0, le=1, description="chance that each message is affected")
    attribute: ClassVar[str]  # the NodeFaults field it adds to

    def start(self, ctx: FaultContext) -> Undo:
        faults = ctx.node_faults(self.target, self.kind)
        name, share = self.attribute, self.probability
        setattr(faults, name, getattr(faults, name) + share)
        return lambda: setattr(faults, name, _less(getattr(faults, name), share))


def _less(total: float, part: float) -> float:
    """``total - part`` for summed fault probabilities, snapping float residue (1e-17) to 0."""
    rest = total - part
    return rest if rest > 1e-9 else 0.0


class Latency(LastingFault):
    """Added delay: extra service time on an actor, extra transit time on a network node."""

    kind: Literal["latency"]
    add: Distribution = Field(description="delay added to each request or message")

    def start(self, ctx: FaultContext) -> Undo:
        kernel = ctx.kernel
        sampler = kernel.sampler(self.add, f"fault/{self.target}/latency")
        actor = kernel.actors.get(self.target)
        added = actor.added_latency if actor is not None else ctx.node_faults(self.target, self.kind).added
        added.append(sampler)
        return lambda: added.remove(sampler)


class ErrorRate(LastingFault):
    """A fraction of the actor's requests is answered with an error."""

    kind: Literal["error_rate"]
    rate: float = Field(gt=0, le=1, description="probability that a request fails")

    def start(self, ctx: FaultContext) -> Undo:
        actor = ctx.actor(self.target, self.kind)
        rate = self.rate
        actor.error_rate += rate

        def undo() -> None:
            actor.error_rate = _less(actor.error_rate, rate)

        return undo


class Crash(Fault):
    """The target dies, losing volatile state and in-flight work, and restarts later."""

    kind: Literal["crash"]
    restart_after: Duration = Field(default=30.0, description="time until the restart completes")

    def start(self, ctx: FaultContext) -> None:
        component = ctx.components.get(self.target)
        if isinstance(component, Crashable):
            component.crash(self.restart_after)
        else:
            ctx.actor(self.target, self.kind).crash(self.restart_after)


class Partition(LastingFault):
    """Messages between ``target`` and ``other`` (default: everyone else) are dropped."""

    kind: Literal["partition"]
    other: list[str] | None = Field(default=None, description="the other side; default all other nodes")

    def start(self, ctx: FaultContext) -> Undo:
        network = ctx.kernel.network
        try:
            handle = network.partition([self.target], self.other)
        except ModelDefinitionError as error:
            raise ModelDefinitionError(f"a 'partition' fault cannot cut {self.target!r}: {error}") from None
        return lambda: network.heal(handle)


class MessageLoss(MessageFault):
    """Each message to or from the node is lost with ``probability``."""

    kind: Literal["message_loss"]
    attribute: ClassVar[str] = "loss"


class Duplication(MessageFault):
    """Each message to or from the node is delivered twice with ``probability``."""

    kind: Literal["duplication"]
    attribute: ClassVar[str] = "duplication"


class Reordering(MessageFault):
    """Each message to or from the node is held back with ``probability``, so it overtakes."""

    kind: Literal["reordering"]
    attribute: ClassVar[str] = "reorder"


GENERIC_FAULTS: tuple[type[Fault], ...] = (Latency, ErrorRate, Crash, Partition, MessageLoss, Duplication, Reordering)
"""The kinds the engine ships; a model adds its own with :func:`fault_union`."""

NETWORK_KINDS = frozenset({"partition", "message_loss", "duplication", "reordering"})
NODE_FAULTS = NETWORK_KINDS | {"latency"}
"""Generic kinds a network node (not an actor) can take."""
ACTOR_FAULTS = NODE_FAULTS | {"error_rate", "crash"}
"""Generic kinds an actor can take."""


def kind_of(kind: type[Fault]) -> str:
    """The tag a fault class answers to in scenarios (its ``kind: Literal[...]``)."""
    annotation = kind.model_fields["kind"].annotation
    tags: tuple[object, ...] = getattr(annotation, "__args__", ())
    if getattr(annotation, "__origin__", None) is not Literal or len(tags) != 1 or not isinstance(tags[0], str):
        raise ModelDefinitionError(f'fault class {kind.__name__} must declare kind: Literal["<its tag>"]')
    return str(tags[0])


def fault_union(*kinds: type[Fault]) -> Any:
    """The pydantic type of "any of ``kinds``", told apart by their ``kind`` tag.

    A model's scenario type declares ``faults: list[fault_union(*GENERIC_FAULTS, *its own)]``
    (behind ``TYPE_CHECKING``, ``list[Fault]``); the JSON Schema follows from it.
    """
    seen: dict[str, str] = {}
    for kind in kinds:
        if not (isinstance(kind, type) and issubclass(kind, Fault)):
            raise ModelDefinitionError(f"{kind!r} is not a Fault class")
        tag = kind_of(kind)
        if tag in seen:
            raise ModelDefinitionError(f"fault kind {tag!r} is defined twice ({seen[tag]} and {kind.__name__})")
        seen[tag] = kind.__name__
    if len(kinds) == 1:
        return Annotated[kinds[0], Field(discriminator="kind")]
    return Annotated[Union[kinds], Field(discriminator="kind")]  # noqa: UP007 - a runtime tuple of classes


def draw_start_times(faults: Sequence[F], rng: np.random.Generator) -> list[F]:
    """``faults`` with every ``within`` resolved: a start drawn uniformly in ``[at, at + within)``.

    The draws come from ``rng`` in the faults' order, one per fault that has ``within``, so a
    fault without it draws nothing and shifts no other draw. A model calls this once per run,
    before anything reads the faults' times, and uses the resolved list everywhere.
    """
    resolved: list[F] = []
    for fault in faults:
        if fault.within is None:
            resolved.append(fault)
        else:
            start = fault.at + float(rng.uniform(0.0, fault.within))
            resolved.append(fault.model_copy(update={"at": start, "within": None}))
    return resolved


class FaultTimeline:
    """Schedules a scenario's faults and records when each was active.

    ``components`` names the model's fault targets that are not actors or network nodes
    (a device fleet, a cache shard); generic kinds look up actors and
    network nodes in the kernel.
    """

    def __init__(self, kernel: Kernel, faults: Sequence[Fault], components: Mapping[str, object] | None = None) -> None:
        self.kernel = kernel
        self.context = FaultContext(kernel, dict(components or {}))
        self.log: list[dict[str, Any]] = []
        start = kernel.now
        for fault in faults:
            if fault.at < start:
                raise ModelDefinitionError(
                    f"a {fault.kind!r} fault at {fault.at:g}s is before the clock starts ({start:g}s)"
                )
            kernel.call_later(fault.at - start, self._start, fault)

    def _start(self, fault: Fault) -> None:
        undo = fault.start(self.context)
        now = self.kernel.now
        entry: dict[str, Any] = {"kind": fault.kind, "target": fault.target, "start": now, "end": None}
        self.log.append(entry)
        until = fault.until
        if until is None:
            entry["end"] = now
            return

        def stop() -> None:
            if undo is not None:
                undo()
            entry["end"] = self.kernel.now

        self.kernel.call_later(until - fault.at, stop)
