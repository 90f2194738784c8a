"""What a Redis crash loses, key by key, and how long the cluster takes to fail over (review C4).

Why this module: the review keeps real-time device state and sessions in a Redis Cluster of
three masters with one replica each, persisted by RDB snapshots every 6 h. Two different
crashes lose two different things:

* a *master* crash: its replica is promoted, but replication is asynchronous, so the writes
  the replica had not received -- those within the replica's lag before the crash -- are
  gone (semantics.md 5.3, "Write loss");
* a crash of *every* node (a reboot of the zone the cluster lives in, a bad deploy): there is
  no replica left, and each node reloads its persistence file, so every key whose last write
  came after the persisted point is lost -- hours with RDB, about a second with AOF
  ``appendfsync everysec`` (semantics.md 5.4; the arithmetic is
  :func:`models.logic.durability.redis_loss_s`).

Both come down to one rule over the time of each key's last write, kept here as pure
functions of simulated time (no clock, no random draws: the caller passes the draws in) so a
simulation can drive them and a test can check them by hand. The module also classifies keys
into families (device state, sessions, idempotency, rate limits) so a result can say what
kind of state was lost, works out the session keys a user population holds without
simulating every login (:class:`SessionKeys`), and times a cluster failover from the
cluster-spec rules (:func:`cluster_failover_s`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from models.logic.durability import AofEverysec, RdbSnapshots, redis_loss_s

__all__ = [
    "DEVICE_STATE",
    "FAMILIES",
    "IDEMPOTENCY",
    "OTHER",
    "RATE_LIMIT",
    "SESSIONS",
    "ClusterFailover",
    "SessionKeys",
    "by_family",
    "cluster_failover_s",
    "family_of",
    "keys_written_after",
    "persisted_point_s",
]

DEVICE_STATE = "device_state"
"""``device:{id}``: the real-time state ingest writes per reading batch (and commands' desired state)."""
SESSIONS = "sessions"
"""``session:{user}``: a logged-in user's session, written at login and at each token refresh."""
IDEMPOTENCY = "idempotency"
"""``idem:{key}``: an idempotency record (the twin keeps its store in process memory today)."""
RATE_LIMIT = "rate_limit"
"""``ratelimit:{key}``: a rate limiter's counter (the twin's limiters live in process memory today)."""
OTHER = "other"
"""Any key with an unknown prefix."""
FAMILIES = (DEVICE_STATE, SESSIONS, IDEMPOTENCY, RATE_LIMIT, OTHER)
"""Every family, in the order results list them: all present, so a result's shape never varies."""

_PREFIXES = (("device:", DEVICE_STATE), ("session:", SESSIONS), ("idem:", IDEMPOTENCY), ("ratelimit:", RATE_LIMIT))


def family_of(key: str) -> str:
    """The family of ``key``, by its prefix."""
    for prefix, family in _PREFIXES:
        if key.startswith(prefix):
            return family
    return OTHER


def by_family(keys: Iterable[str]) -> dict[str, int]:
    """How many of ``keys`` fall in each family (every family listed, zero or not)."""
    counts = dict.fromkeys(FAMILIES, 0)
    for key in keys:
        counts[family_of(key)] += 1
    return counts


def persisted_point_s(crash_s: float, persistence: RdbSnapshots | AofEverysec, *, data_since_s: float = 0.0) -> float:
    """The time the data reloaded after a crash at ``crash_s`` is as of.

    Every write after it is lost. With RDB it is the start (the fork) of the last snapshot
    completed by the crash, or ``data_since_s`` when none has completed since the data was
    last loaded; with AOF everysec, the last fsync.
    """
    return crash_s - redis_loss_s(crash_s, persistence, data_since_s=data_since_s)


def keys_written_after(
    last_write: Mapping[str, float], point_s: float, keep: Callable[[str], bool] | None = None
) -> list[str]:
    """The keys whose last write came strictly after ``point_s`` (optionally only those ``keep``
    accepts), in ``last_write``'s order: the keys a crash with that persisted point loses.

    A write at exactly ``point_s`` is in the snapshot (the fork sees it).
    """
    return [key for key, when in last_write.items() if when > point_s and (keep is None or keep(key))]


@dataclass(frozen=True, slots=True)
class ClusterFailover:
    """The cluster-spec settings that time a replica's promotion (semantics.md 5.3)."""

    node_timeout_s: float = 15.0
    """``cluster-node-timeout``: a ping unanswered this long marks the master PFAIL."""
    rank: int = 0
    """The replica's rank among its master's replicas (0: the freshest; one replica per master)."""

    def __post_init__(self) -> None:
        if not self.node_timeout_s > 0 or self.rank < 0:
            raise ValueError("node_timeout_s must be positive and rank non-negative")


def cluster_failover_s(
    settings: ClusterFailover,
    *,
    masters: int,
    masters_down: int,
    detection_s: float,
    delay_u: float,
    election_s: float,
) -> float | None:
    """Seconds from a master's crash until its replica serves its slots, or None when no
    failover can happen.

    The cluster spec's sequence: the master is PFAIL after ``node_timeout_s`` without a pong;
    it becomes FAIL once a majority of masters report it, which takes ``detection_s`` more (ping
    timing and gossip); the replica then waits ``500 ms + random(0..500 ms) + rank * 1 s``
    (``delay_u`` is the uniform draw in [0, 1)) and wins the election in ``election_s``. FAIL and
    the election both need a majority of *all* masters alive: with ``masters_down`` of
    ``masters`` down (this one included) and no majority left, no replica is ever promoted (a
    1- or 2-master cluster cannot fail over at all).
    """
    if masters < 1 or not 1 <= masters_down <= masters:
        raise ValueError("masters must be positive and masters_down in 1..masters")
    if not 0.0 <= delay_u < 1.0 or detection_s < 0 or election_s < 0:
        raise ValueError("delay_u must be in [0, 1) and the times non-negative")
    if masters - masters_down <= masters // 2:
        return None
    delay = 0.5 + 0.5 * delay_u + settings.rank * 1.0
    return settings.node_timeout_s + detection_s + delay + election_s


@dataclass(frozen=True)
class SessionKeys:
    """The session keys of ``phases.size`` users, each written at login and every ``refresh_s``
    after it (a token refresh rewrites the session), at ``phases[i] + k * refresh_s``.

    Why analytic: sessions are a key family the review puts in Redis, but the twin's gateway
    checks JWTs without them; simulating a write per refresh would add load that moves every
    other figure. The schedule alone says which sessions a crash loses and when their users
    have logged in again, at no cost until a crash asks.
    """

    phases: np.ndarray
    refresh_s: float

    def __post_init__(self) -> None:
        if not self.refresh_s > 0:
            raise ValueError("refresh_s must be positive")

    def last_write(self, t: float) -> np.ndarray:
        """Each session's last write at or before ``t`` (the user's last login or refresh)."""
        return t - np.mod(t - self.phases, self.refresh_s)

    def lost(self, crash_s: float, point_s: float, mask: np.ndarray | None = None) -> np.ndarray:
        """Which sessions a crash at ``crash_s`` with persisted point ``point_s`` loses (only
        among ``mask``, e.g. one master's sessions): those last written after the point."""
        lost = self.last_write(crash_s) > point_s
        return lost if mask is None else lost & mask

    def rebuilt_at(self, lost: np.ndarray, available_s: float) -> float | None:
        """When the last user who lost a session has logged in again, or None if none lost.

        A user's app finds its session gone at its next refresh once Redis answers again, and
        logs in, which writes a new session: the first refresh time at or after ``available_s``.
        """
        if not lost.any():
            return None
        phases = self.phases[lost]
        k = np.ceil((available_s - phases) / self.refresh_s)
        return float(np.max(phases + k * self.refresh_s))
