"""Dead-letter policy: give up on a message after a few failed attempts instead of looping on it.

Why: in the review's finding S2 one event with an unexpected schema crashes the stream
consumer, the stream redelivers it, and the consumer never gets past it: one poison message
stops ingestion for everybody. Counting failures per message and setting a message aside
after ``max_attempts`` failures (3 in the review) lets the consumer move on.

Semantics (Spring Kafka's ``DefaultErrorHandler`` with a ``DeadLetterPublishingRecoverer``,
SQS's ``maxReceiveCount`` redrive policy):

* A retryable failure is retried until the ``max_attempts``-th attempt fails; then the
  message is dead-lettered with its error and the attempts it had, and the consumer commits
  past it and moves on.
* A **non-retryable** failure is dead-lettered at once, on its first attempt: retrying a
  record that cannot be decoded (an unknown schema version) fails the same way every time,
  so retrying it only delays everybody behind it, and crashing on it is the crash loop of S2.
  Spring Kafka treats deserialisation errors this way by default. Pass ``retryable=False``
  to :meth:`DeadLetterPolicy.record_failure`, or list the exception types in
  ``not_retryable`` (Spring's ``addNotRetryableExceptions``).
* The dead-letter queue itself is kept here, in arrival order: :attr:`DeadLetterPolicy.depth`
  is its length (what an alarm on the DLQ watches), :meth:`DeadLetterPolicy.drain` takes
  letters out (for inspection or a redrive).

Memory: a key is held from its first failure until it succeeds or is dead-lettered. With an
at-least-once stream every message ends one way or the other, so the policy holds at most
the messages currently being retried. A caller that abandons a message without an outcome
must call :meth:`DeadLetterPolicy.record_success` (or otherwise forget it) to free it. Dead
letters are held until drained.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Literal

from ._validation import is_count

__all__ = ["DeadLetter", "DeadLetterPolicy"]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message set aside, with why.

    Attributes:
        key: The message's key.
        error: The last failure (an exception or a description), as given.
        attempts: Processing attempts it had, the last one included.
        retryable: ``False`` if it was dead-lettered at once as non-retryable.
        at: When it was dead-lettered, if the caller said.
        message: The message itself, if the caller passed it (for a redrive).
    """

    key: Hashable
    error: object
    attempts: int
    retryable: bool
    at: float | None = None
    message: object = None


class DeadLetterPolicy:
    """Counts processing failures per message key, says when to dead-letter, and keeps the DLQ.

    Args:
        max_attempts: Processing attempts a retryable message gets; the failure of the last
            one dead-letters it.
        not_retryable: Exception types whose failures are dead-lettered at once.
    """

    __slots__ = ("_dead_lettered", "_failures", "_letters", "_max", "_not_retryable")

    def __init__(self, max_attempts: int = 3, not_retryable: tuple[type[BaseException], ...] = ()) -> None:
        if not is_count(max_attempts) or max_attempts < 1:
            raise ValueError(f"max_attempts must be an integer >= 1 (got {max_attempts!r})")
        not_retryable = tuple(not_retryable)
        for kind in not_retryable:
            if not (isinstance(kind, type) and issubclass(kind, BaseException)):
                raise ValueError(f"not_retryable must hold exception types (got {kind!r})")
        self._max = int(max_attempts)
        self._not_retryable = not_retryable
        self._failures: dict[Hashable, int] = {}
        self._letters: deque[DeadLetter] = deque()
        self._dead_lettered = 0

    def __len__(self) -> int:
        """Messages that have failed and are still being retried."""
        return len(self._failures)

    @property
    def max_attempts(self) -> int:
        """Processing attempts a retryable message gets."""
        return self._max

    @property
    def depth(self) -> int:
        """Dead letters waiting in the queue (dead-lettered and not drained)."""
        return len(self._letters)

    @property
    def dead_lettered(self) -> int:
        """Messages dead-lettered so far, drained or not."""
        return self._dead_lettered

    @property
    def letters(self) -> tuple[DeadLetter, ...]:
        """The dead letters waiting in the queue, oldest first."""
        return tuple(self._letters)

    def record_failure(
        self,
        key: Hashable,
        error: object = None,
        *,
        retryable: bool | None = None,
        now: float | None = None,
        message: object = None,
    ) -> Literal["retry", "dead_letter"]:
        """Count a failed attempt of ``key``.

        Args:
            key: The message's key.
            error: Why it failed; kept with the dead letter.
            retryable: Whether another attempt could succeed. ``None``: yes, unless ``error``
                is an instance of one of the ``not_retryable`` types.
            now: When it failed; kept with the dead letter.
            message: The message; kept with the dead letter.

        Returns:
            ``"dead_letter"`` on a non-retryable failure or the ``max_attempts``-th failure
            (the message is now in the queue and the key is forgotten, so a later redelivery
            of the same key starts again from zero), else ``"retry"``.
        """
        if retryable is None:
            retryable = not (self._not_retryable and isinstance(error, self._not_retryable))
        failures = self._failures.get(key, 0) + 1
        if retryable and failures < self._max:
            self._failures[key] = failures
            return "retry"
        self._failures.pop(key, None)
        self._letters.append(DeadLetter(key, error, failures, bool(retryable), now, message))
        self._dead_lettered += 1
        return "dead_letter"

    def record_success(self, key: Hashable) -> None:
        """``key`` was processed: forget its failures."""
        self._failures.pop(key, None)

    def attempts(self, key: Hashable) -> int:
        """Failed attempts of ``key`` so far (0 if it never failed or was forgotten)."""
        return self._failures.get(key, 0)

    def drain(self, limit: int | None = None) -> list[DeadLetter]:
        """Take up to ``limit`` dead letters (all if ``None``) out of the queue, oldest first."""
        if limit is not None and (not is_count(limit) or limit < 0):
            raise ValueError(f"limit must be an integer >= 0 or None (got {limit!r})")
        letters = self._letters
        count = len(letters) if limit is None else min(int(limit), len(letters))
        return [letters.popleft() for _ in range(count)]
