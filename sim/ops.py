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

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

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
]

T = TypeVar("T")


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


@dataclass(frozen=True, slots=True)
class Sleep(Operation):
    """Wait ``seconds`` of simulated time (a backoff, a poll interval)."""

    seconds: float
    local: ClassVar[bool] = True


@dataclass(frozen=True, slots=True)
class Now(Operation):
    """Ask the driver for the current time, so logic can feed clock-injected policies."""

    local: ClassVar[bool] = True


@dataclass(frozen=True, slots=True)
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
