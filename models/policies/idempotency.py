"""Idempotency keys: execute a request at most once per key, and replay its result to retries.

Why: in the review's finding C2, a phone retries "turn off the AC" after a timeout and the
device gets two commands. With an ``Idempotency-Key`` header the server runs the command once
and answers the retry with the stored result.

Semantics of ``draft-ietf-httpapi-idempotency-key-header`` and Stripe's API v1
(``research/semantics.md`` section 6):

* The first request with a key reserves it (:class:`Fresh`): execute the request, then
  :meth:`IdempotencyStore.complete` with its result, or :meth:`IdempotencyStore.release` if
  execution never began (validation failed, the request was shed), so the key may be retried.
* A duplicate while the first is still executing gets :class:`InProgress` (answer 409).
* A duplicate after completion gets :class:`Replay` with the stored result, whether it was a
  success or an error (Stripe v1 replays even a 500).
* The same key with a different request fingerprint gets :class:`Mismatch` (answer 422). This
  takes precedence over :class:`InProgress`: the client must fix its request either way.
* Keys expire ``ttl_s`` after completion (24 h, as Stripe and the review propose), or
  ``ttl_s`` after reservation if never completed; a key used again after expiry is a new
  request. An expired reservation means the execution is presumed lost (a crashed worker);
  until then retries get 409. Keep executions far shorter than ``ttl_s``.

Memory stays bounded by the keys used in the last ``ttl_s`` seconds: entries are kept in
order of their expiry (completion moves an entry to the end) and every call drops expired
entries from the front, an amortised O(1) sweep. ``now`` is expected to be non-decreasing;
with an earlier ``now`` the sweep may stop early, but lookups still honour each entry's own
expiry.

Keys should be scoped by the caller (e.g. ``f"{user_id}:{key}"``), as the draft recommends,
so that one client cannot replay another's result.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from ._validation import is_finite

__all__ = ["Fresh", "IdempotencyStore", "InProgress", "Mismatch", "Replay"]


@dataclass(frozen=True, slots=True)
class Fresh:
    """The key was unknown (or expired) and is now reserved: execute the request."""


@dataclass(frozen=True, slots=True)
class InProgress:
    """The first request with this key is still executing: answer 409 Conflict."""


@dataclass(frozen=True, slots=True)
class Replay:
    """The request was already executed: answer with the stored result.

    Attributes:
        result: Whatever was passed to :meth:`IdempotencyStore.complete`.
    """

    result: object


@dataclass(frozen=True, slots=True)
class Mismatch:
    """The key was used with a different request: answer 422 Unprocessable Content."""


_FRESH = Fresh()
_IN_PROGRESS = InProgress()
_MISMATCH = Mismatch()


@dataclass(slots=True)
class _Entry:
    fingerprint: str
    expires_at: float
    completed: bool = False
    result: object = None


class IdempotencyStore:
    """Reservations and stored results of idempotent requests, by key.

    Args:
        ttl_s: How long a key is remembered after completion (or after reservation, if the
            request never completes).
    """

    __slots__ = ("_entries", "_ttl")

    def __init__(self, ttl_s: float = 86_400.0) -> None:
        if not (is_finite(ttl_s) and ttl_s > 0):
            raise ValueError(f"ttl_s must be a finite number > 0 (got {ttl_s!r})")
        self._ttl = float(ttl_s)
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def __len__(self) -> int:
        """Keys held, reserved or completed (expired ones are dropped on the next call)."""
        return len(self._entries)

    def begin(self, key: str, fingerprint: str, now: float) -> Fresh | InProgress | Replay | Mismatch:
        """Look up ``key`` for a request with the given ``fingerprint`` arriving at ``now``.

        Returns:
            :class:`Fresh` (the key is now reserved), :class:`InProgress`, :class:`Replay` or
            :class:`Mismatch`; see the module documentation.
        """
        entry = self._live_entry(key, now)
        if entry is None:
            self._entries[key] = _Entry(fingerprint, now + self._ttl)
            return _FRESH
        if entry.fingerprint != fingerprint:
            return _MISMATCH
        if not entry.completed:
            return _IN_PROGRESS
        return Replay(entry.result)

    def complete(self, key: str, result: object, now: float) -> None:
        """Store the result of the reserved request ``key``, which finished at ``now``.

        Raises:
            KeyError: ``key`` is not reserved: never begun, released, or its reservation
                expired.
            ValueError: ``key`` was already completed.
        """
        entry = self._live_entry(key, now)
        if entry is None:
            raise KeyError(f"idempotency key {key!r} is not reserved (never begun, released or expired)")
        if entry.completed:
            raise ValueError(f"idempotency key {key!r} was already completed")
        entry.completed = True
        entry.result = result
        entry.expires_at = now + self._ttl
        self._entries.move_to_end(key)

    def release(self, key: str) -> None:
        """Forget the reservation of ``key`` because its execution never began.

        Releasing an unknown key does nothing (the reservation may have expired).

        Raises:
            ValueError: ``key`` was completed; forgetting it would let a retry execute twice.
        """
        entry = self._entries.get(key)
        if entry is None:
            return
        if entry.completed:
            raise ValueError(f"idempotency key {key!r} was completed and cannot be released")
        del self._entries[key]

    def _live_entry(self, key: str, now: float) -> _Entry | None:
        """Drop expired entries from the front, then return ``key``'s entry if not expired."""
        entries = self._entries
        while entries:
            oldest_key, oldest = next(iter(entries.items()))
            if oldest.expires_at > now:
                break
            del entries[oldest_key]
        entry = entries.get(key)
        if entry is not None and entry.expires_at <= now:
            del entries[key]
            return None
        return entry
