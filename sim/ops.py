"""The sans-IO boundary: what system logic yields, and the errors it gets back.

System logic is a plain generator that never imports simpy.  It ``yield``\\ s
:class:`Operation` objects and receives each one's result -- or has an :class:`OpError`
thrown into it -- from whichever driver runs it: the simulation driver
(:mod:`sim.driver`) in the twin, or :func:`sim.driver.run_direct` with in-memory fakes in
unit tests.  Timeouts, spans and fault injection therefore live at one boundary instead
of being sprinkled through the logic.

Error hierarchy thrown into logic::

    OpError
    + OperationTimeout   the caller's deadline passed before a reply arrived
    + Unavailable        the target refused the connection (crashed, restarting)
    + Rejected           the target answered with an error (throttled, injected, constraint)
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar, TypeVar, dataclass_transform

__all__ = [
    "Logic",
    "Now",
    "OpError",
    "Operation",
    "OperationTimeout",
    "Ping",
    "Rejected",
    "Sleep",
    "Unavailable",
    "message",
]

T = TypeVar("T")


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def message(cls: type[T]) -> type[T]:
    """``@dataclass(frozen=True, slots=True)`` for what crosses the simulated network.

    Why not the plain decorator: a request builds several operations and answers, and a
    frozen dataclass's generated ``__init__`` sets each field through
    ``object.__setattr__`` looked up anew per field -- about 1.3 microseconds for six
    fields, as much as the rest of an operation's bookkeeping.  This one keeps everything
    the dataclass gives (fields, equality, hashing, ``repr``, ``FrozenInstanceError`` on
    assignment, ``replace``) and swaps in an ``__init__`` that writes each slot through its
    own descriptor, about three times cheaper.  Classes with ``__post_init__`` or fields
    outside ``__init__`` keep the generated one.
    """
    made: type[T] = dataclass(frozen=True, slots=True)(cls)
    init = _slot_init(made)
    if init is not None:
        made.__init__ = init  # type: ignore[method-assign]  # replacing the generated one is the point
    return made


_FACTORY = object()  # stands for "call the field's default_factory" in a generated signature


def _slot_init(cls: type) -> Callable[..., None] | None:
    every = fields(cls)
    if hasattr(cls, "__post_init__") or any(not f.init for f in every):
        return None
    namespace: dict[str, Any] = {"_FACTORY": _FACTORY}
    positional: list[str] = []
    keyword: list[str] = []
    body: list[str] = []
    for f in every:
        name = f.name
        slot = next(klass.__dict__[name] for klass in cls.__mro__ if name in klass.__dict__)
        namespace[f"_set_{name}"] = slot.__set__
        if f.default is not MISSING:
            namespace[f"_default_{name}"] = f.default
            parameter = f"{name}=_default_{name}"
        elif f.default_factory is not MISSING:
            namespace[f"_factory_{name}"] = f.default_factory
            parameter = f"{name}=_FACTORY"
            body.append(f"    if {name} is _FACTORY: {name} = _factory_{name}()")
        else:
            parameter = name
        (keyword if f.kw_only else positional).append(parameter)
        body.append(f"    _set_{name}(self, {name})")
    signature = ", ".join(["self", *positional, *(["*", *keyword] if keyword else [])])
    exec(f"def __init__({signature}):\n" + "\n".join(body or ["    pass"]), namespace)
    init: Callable[..., None] = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init


class Operation:
    """Base of everything logic may yield.

    Remote operations define ``target`` (the name of the actor that owns the resource)
    and ``timeout`` (seconds the caller waits for a reply, ``None`` for forever, which is
    how the review's services behave before countermeasure C3).  ``local`` operations are
    answered by the driver itself without a message.
    """

    __slots__ = ()
    local: ClassVar[bool] = False
    target: str
    timeout: float | None

    @property
    def name(self) -> str:
        """Short operation name used in spans and metrics."""
        return type(self).__name__


@message
class Sleep(Operation):
    """Wait ``seconds`` of simulated time (a backoff, a poll interval)."""

    seconds: float
    local: ClassVar[bool] = True


@message
class Now(Operation):
    """Ask the driver for the current time, so logic can feed clock-injected policies."""

    local: ClassVar[bool] = True


@message
class Ping(Operation):
    """The cheapest request a server can answer: a health check's round trip.

    Every actor answers it itself (:class:`sim.actor.Actor`), without its handler and
    without service time, once a worker takes it: a PostgreSQL ``SELECT 1``, a Redis
    ``PING``, a Kinesis ``DescribeStreamSummary``.  So it proves what a real one proves --
    the server is up, reachable, has a free worker or connection and is not failing
    requests (injected latency and errors apply) -- and nothing about the server's data.
    """

    target: str
    timeout: float | None = None


class OpError(Exception):
    """An operation failed; ``reason`` is a short machine-friendly tag."""

    def __init__(self, reason: str, detail: str = "") -> None:
        # args must re-create the error: simpy throws ``type(e)(*e.args)`` into the waiting process
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}" if self.detail else self.reason


class OperationTimeout(OpError):
    """No reply within the operation's timeout."""


class Unavailable(OpError):
    """The target could not take the request at all."""


class Rejected(OpError):
    """The target processed the request and answered with an error."""


Logic = Generator[Operation, Any, T]
"""The type of a piece of system logic that returns ``T``."""
