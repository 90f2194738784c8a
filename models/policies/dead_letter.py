"""Dead-letter policy: give up on a message after a few failed attempts instead of looping on it.

Why: in the review's finding S2 one event with an unexpected schema crashes the stream
consumer, the stream redelivers it, and the consumer never gets past it: one poison message
stops ingestion for everybody. Counting failures per message and setting a message aside
after ``max_attempts`` failures (3 in the review) lets the consumer move on.

The policy only decides; moving the message to a dead-letter queue, alerting and logging the
payload are the caller's job.

Memory: a key is held from its first failure until it succeeds or is dead-lettered. With an
at-least-once stream every message ends one way or the other, so the policy holds at most
the messages currently being retried. A caller that abandons a message without an outcome
must call :meth:`DeadLetterPolicy.record_success` (or otherwise forget it) to free it.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Literal

from ._validation import is_count

__all__ = ["DeadLetterPolicy"]


class DeadLetterPolicy:
    """Counts processing failures per message key and says when to dead-letter.

    Args:
        max_attempts: Processing attempts a message gets; the failure of the last one
            dead-letters it.
    """

    __slots__ = ("_failures", "_max")

    def __init__(self, max_attempts: int = 3) -> None:
        if not is_count(max_attempts) or max_attempts < 1:
            raise ValueError(f"max_attempts must be an integer >= 1 (got {max_attempts!r})")
        self._max = int(max_attempts)
        self._failures: dict[Hashable, int] = {}

    def __len__(self) -> int:
        """Messages that have failed and are still being retried."""
        return len(self._failures)

    @property
    def max_attempts(self) -> int:
        """Processing attempts a message gets."""
        return self._max

    def record_failure(self, key: Hashable) -> Literal["retry", "dead_letter"]:
        """Count a failed attempt of ``key``.

        Returns:
            ``"dead_letter"`` on the ``max_attempts``-th failure (and the key is forgotten, so
            a later redelivery of the same key starts again from zero), else ``"retry"``.
        """
        failures = self._failures.get(key, 0) + 1
        if failures >= self._max:
            self._failures.pop(key, None)
            return "dead_letter"
        self._failures[key] = failures
        return "retry"

    def record_success(self, key: Hashable) -> None:
        """``key`` was processed: forget its failures."""
        self._failures.pop(key, None)

    def attempts(self, key: Hashable) -> int:
        """Failed attempts of ``key`` so far (0 if it never failed or was forgotten)."""
        return self._failures.get(key, 0)
