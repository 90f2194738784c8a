"""Idempotency keys: execute a request at most once per key, and replay its result to retries.

Why: in the review's finding C2, a phone retries "turn off the AC" after a timeout and the
device gets two commands. With an ``Idempotency-Key`` header the server runs the command once
and answers the retry with the stored result.

Semantics of ``draft-ietf-httpapi-idempotency-key-header``, Stripe's API v1 and the
in-progress records of Powertools for AWS Lambda (``research/semantics.md`` sections 6.2,
6.3 and the Addendum):

* The first request with a key reserves it: :meth:`IdempotencyStore.reserve` returns a
  :class:`Reservation` carrying an owner ``token``. Execute the request, then
  :meth:`IdempotencyStore.complete` the reservation with its result, or
  :meth:`IdempotencyStore.release` it if execution never began (validation failed, the
  request was shed), so that the key may be retried (Stripe saves nothing in that case).
* A duplicate while the first is still executing gets :class:`InProgress` (answer 409).
* A duplicate after completion gets :class:`Replay` with the stored result, whether it was a
  success or an error (Stripe v1 replays even a 500).
* The same key with a different request fingerprint gets :class:`Mismatch` (answer 422, the
  draft's status; distinct from the 409). This takes precedence over :class:`InProgress`: the
  client must fix its request either way, and must not retry it unchanged.
* **Two expiries.** A reservation holds the key for a short *lease* (``in_progress_ttl_s``,
  or ``lease_s`` per reservation: Powertools' ``in_progress_expiration``); a completed record
  is kept for ``ttl_s`` after completion (24 h, as Stripe and the review propose). A request
  after the lease has run out is served as if the key were new, so a crashed worker blocks its
  key for one lease, not for the whole TTL. A key used again after its record expired is a new
  request. Both expiries are exclusive: at exactly ``expires_at`` the entry is gone.
* **Owners.** Only the holder of a reservation's token can complete or release it. A worker
  whose lease ran out has lost the key, even if nobody has taken it since (the answer must not
  depend on whether somebody happened to look in the meantime): :meth:`~IdempotencyStore.complete`
  and :meth:`~IdempotencyStore.release` then return :class:`LeaseLost` and store nothing.
  Keep executions well inside the lease.

The older key-based calls (:meth:`~IdempotencyStore.begin` returning :class:`Fresh`,
``complete(key, result, now)`` and ``release(key)``) still work; they check no owner, and
they raise on misuse instead of returning an outcome.

Memory stays bounded by the keys completed in the last ``ttl_s`` seconds plus those reserved
in the last lease: expiries are kept in a heap and every call drops the expired entries, an
amortised O(log n) sweep. ``now`` is expected to be non-decreasing; with an earlier ``now``
the sweep drops less, but lookups still honour each entry's own expiry.

Keys should be scoped by the caller (e.g. ``f"{user_id}:{key}"``), as the draft recommends,
so that one client cannot replay another's result.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import ClassVar, Literal, overload

from ._validation import is_finite

__all__ = [
    "Completed",
    "Fresh",
    "IdempotencyStore",
    "InProgress",
    "LeaseLost",
    "LeaseLostReason",
    "Mismatch",
    "Released",
    "Replay",
    "Reservation",
]


@dataclass(frozen=True, slots=True)
class Fresh:
    """The key was unknown (or expired) and is now reserved: execute the request.

    Returned by the key-based :meth:`IdempotencyStore.begin`; :meth:`IdempotencyStore.reserve`
    returns a :class:`Reservation` instead.
    """


@dataclass(frozen=True, slots=True)
class Reservation:
    """The key was unknown (or its record or lease expired) and is now reserved for the caller.

    Execute the request, then pass this object to :meth:`IdempotencyStore.complete` or
    :meth:`IdempotencyStore.release`.

    Attributes:
        key: The idempotency key.
        fingerprint: The fingerprint of the request that reserved it.
        token: The owner token: unique within the store, never reused.
        reserved_at: When the key was reserved.
        expires_at: When the lease runs out; from then on the key is free again and this
            reservation can no longer be completed.
    """

    key: str
    fingerprint: str
    token: int
    reserved_at: float
    expires_at: float


@dataclass(frozen=True, slots=True)
class InProgress:
    """The first request with this key is still executing: answer 409 Conflict."""

    status: ClassVar[int] = 409


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

    status: ClassVar[int] = 422


@dataclass(frozen=True, slots=True)
class Completed:
    """The reservation's result is stored; retries with the key replay it until ``expires_at``."""

    key: str
    token: int
    expires_at: float


@dataclass(frozen=True, slots=True)
class Released:
    """The reservation is withdrawn and nothing was stored: the key may be retried at once."""

    key: str
    token: int


LeaseLostReason = Literal["expired", "superseded", "completed", "not_held"]
"""Why a reservation could not be completed or released.

* ``"expired"``: its lease ran out.
* ``"superseded"``: another reservation holds the key, or completed it.
* ``"completed"``: this reservation was already completed.
* ``"not_held"``: the key holds nothing (e.g. this reservation was already released).
"""


@dataclass(frozen=True, slots=True)
class LeaseLost:
    """The caller no longer owns the key: nothing was stored or released.

    Attributes:
        key: The idempotency key.
        token: The token of the reservation that was presented.
        reason: See :data:`LeaseLostReason`.
    """

    key: str
    token: int
    reason: LeaseLostReason


_FRESH = Fresh()
_IN_PROGRESS = InProgress()
_MISMATCH = Mismatch()


@dataclass(slots=True)
class _Entry:
    fingerprint: str
    token: int
    expires_at: float
    completed: bool = False
    result: object = None


def _check_duration(name: str, value: float) -> None:
    if not (is_finite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0 (got {value!r})")


class IdempotencyStore:
    """Reservations and stored results of idempotent requests, by key.

    Args:
        ttl_s: How long a completed record is remembered after completion.
        in_progress_ttl_s: How long a reservation holds its key if it is neither completed
            nor released (the lease), unless :meth:`reserve` is given ``lease_s``. ``None``
            means ``ttl_s``, the behaviour of stores without an in-progress expiry; set it to
            a little more than the longest execution you expect.
    """

    __slots__ = ("_entries", "_expiries", "_lease", "_tokens", "_ttl")

    def __init__(self, ttl_s: float = 86_400.0, in_progress_ttl_s: float | None = None) -> None:
        _check_duration("ttl_s", ttl_s)
        if in_progress_ttl_s is not None:
            _check_duration("in_progress_ttl_s", in_progress_ttl_s)
        self._ttl = float(ttl_s)
        self._lease = self._ttl if in_progress_ttl_s is None else float(in_progress_ttl_s)
        self._entries: dict[str, _Entry] = {}
        self._expiries: list[tuple[float, int, str]] = []  # (expires_at, token, key) heap
        self._tokens = 0

    @property
    def ttl_s(self) -> float:
        """How long a completed record is kept."""
        return self._ttl

    @property
    def in_progress_ttl_s(self) -> float:
        """The default lease of a reservation."""
        return self._lease

    def __len__(self) -> int:
        """Keys held, reserved or completed (expired ones are dropped on the next call)."""
        return len(self._entries)

    def reserve(
        self, key: str, fingerprint: str, now: float, *, lease_s: float | None = None
    ) -> Reservation | InProgress | Replay | Mismatch:
        """Look up ``key`` for a request with the given ``fingerprint`` arriving at ``now``.

        Args:
            key: The idempotency key, scoped by the caller.
            fingerprint: A digest of the request's parameters.
            now: The request's arrival time.
            lease_s: How long this reservation holds the key, if not ``in_progress_ttl_s``
                (e.g. the remaining time budget of the request, as Powertools does).

        Returns:
            A :class:`Reservation` (the caller now owns the key), :class:`InProgress` (409),
            :class:`Replay` or :class:`Mismatch` (422); see the module documentation.
        """
        if lease_s is not None:
            _check_duration("lease_s", lease_s)
        entry = self._live_entry(key, now)
        if entry is None:
            lease = self._lease if lease_s is None else float(lease_s)
            token = self._tokens
            self._tokens = token + 1
            expires_at = now + lease
            self._entries[key] = _Entry(fingerprint, token, expires_at)
            heapq.heappush(self._expiries, (expires_at, token, key))
            return Reservation(key, fingerprint, token, now, expires_at)
        if entry.fingerprint != fingerprint:
            return _MISMATCH
        if not entry.completed:
            return _IN_PROGRESS
        return Replay(entry.result)

    def begin(self, key: str, fingerprint: str, now: float) -> Fresh | InProgress | Replay | Mismatch:
        """:meth:`reserve` for the key-based calls: :class:`Fresh` instead of a reservation."""
        outcome = self.reserve(key, fingerprint, now)
        return _FRESH if isinstance(outcome, Reservation) else outcome

    @overload
    def complete(self, key: Reservation, result: object, now: float) -> Completed | LeaseLost: ...

    @overload
    def complete(self, key: str, result: object, now: float) -> None: ...

    def complete(self, key: Reservation | str, result: object, now: float) -> Completed | LeaseLost | None:
        """Store the result of a reserved request that finished at ``now``.

        Given a :class:`Reservation`, returns :class:`Completed`, or :class:`LeaseLost` (and
        stores nothing) if the caller no longer owns the key.

        Given a bare key (the key-based calls), stores the result whoever reserved the key.

        Raises:
            KeyError: A bare ``key`` is not reserved: never begun, released, or its
                reservation expired.
            ValueError: A bare ``key`` was already completed.
        """
        if isinstance(key, Reservation):
            entry, lost = self._owned(key, now)
            if entry is None:
                return lost
            self._store(key.key, entry, result, now)
            return Completed(key.key, key.token, entry.expires_at)
        entry = self._live_entry(key, now)
        if entry is None:
            raise KeyError(f"idempotency key {key!r} is not reserved (never begun, released or expired)")
        if entry.completed:
            raise ValueError(f"idempotency key {key!r} was already completed")
        self._store(key, entry, result, now)
        return None

    @overload
    def release(self, key: Reservation, now: float) -> Released | LeaseLost: ...

    @overload
    def release(self, key: str) -> None: ...

    def release(self, key: Reservation | str, now: float | None = None) -> Released | LeaseLost | None:
        """Withdraw a reservation whose execution never began, so that the key may be retried.

        Given a :class:`Reservation` and ``now``, returns :class:`Released`, or
        :class:`LeaseLost` (and releases nothing) if the caller no longer owns the key.

        Given a bare key (the key-based calls), forgets its reservation whoever made it;
        releasing an unknown key does nothing (the reservation may have expired).

        Raises:
            ValueError: A bare ``key`` was completed; forgetting it would let a retry execute
                twice.
            TypeError: A :class:`Reservation` without ``now``.
        """
        if isinstance(key, Reservation):
            if now is None:
                raise TypeError("release(reservation, now) needs the time")
            entry, lost = self._owned(key, now)
            if entry is None:
                return lost
            del self._entries[key.key]
            return Released(key.key, key.token)
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.completed:
            raise ValueError(f"idempotency key {key!r} was completed and cannot be released")
        del self._entries[key]
        return None

    def _owned(self, reservation: Reservation, now: float) -> tuple[_Entry | None, LeaseLost]:
        """The live, uncompleted entry of ``reservation``, or ``None`` and why it is lost."""
        entry = self._live_entry(reservation.key, now)
        reason: LeaseLostReason
        if entry is None:
            reason = "expired" if now >= reservation.expires_at else "not_held"
        elif entry.token != reservation.token:
            reason = "superseded"
        elif entry.completed:
            reason = "completed"
        else:
            return entry, LeaseLost(reservation.key, reservation.token, "not_held")
        return None, LeaseLost(reservation.key, reservation.token, reason)

    def _store(self, key: str, entry: _Entry, result: object, now: float) -> None:
        entry.completed = True
        entry.result = result
        entry.expires_at = now + self._ttl
        heapq.heappush(self._expiries, (entry.expires_at, entry.token, key))

    def _live_entry(self, key: str, now: float) -> _Entry | None:
        """Drop expired entries, then return ``key``'s entry if it has not expired."""
        expiries = self._expiries
        entries = self._entries
        while expiries and expiries[0][0] <= now:
            _, _, old_key = heapq.heappop(expiries)
            old = entries.get(old_key)
            # The heap also holds superseded expiries (a lease that was completed, an entry
            # released and reserved again): drop an entry only if it has really expired.
            if old is not None and old.expires_at <= now:
                del entries[old_key]
        entry = entries.get(key)
        if entry is not None and entry.expires_at <= now:
            del entries[key]
            return None
        return entry
