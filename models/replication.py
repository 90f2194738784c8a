"""Streaming replication: what a read replica has replayed, and so what a read on it can see.

A PostgreSQL standby receives the primary's WAL over the network (the walsender/walreceiver
pair) and applies it with one single-threaded startup process.  Its data is the primary's as
of the last commit it has replayed, so a query on a lagging replica misses the newest rows --
not merely "reports" a lag.  This module holds that model and what leans on it:

* :class:`ReplayStream` -- one replica's WAL stream as a FIFO fluid queue.  Commit ``i``
  (time ``c_i``, ``b_i`` bytes) arrives after a shipping delay ``d_i`` (network + the
  standby's write and flush: ``postgres.replication_lag``), in order, and is replayed at
  ``replay_rate`` bytes/s once everything before it is::

      arrived_i  = max(arrived_{i-1}, c_i + d_i)
      replayed_i = max(replayed_{i-1}, arrived_i) + b_i / replay_rate

  Both are known the moment the commit happens, so a commit costs O(1) and needs no event;
  a deque of the commits not yet replayed is trimmed from the front as time passes them.
  ``replayed_i - c_i`` is the commit's replay lag, what ``pg_stat_replication.replay_lag``
  reports.  A replica is *as of* the instant before its oldest commit not yet replayed (or
  of now, when it has replayed everything): ``now() - pg_last_xact_replay_timestamp()`` on a
  busy primary, without that query's false lag on an idle one.  Promoting it loses less than
  that: a standby replays everything it has *received* before it opens for writes, so only
  the commits not yet arrived are gone (``unshipped_since``), and the promotion waits for the
  rest to be replayed (``replay_done_at``).
* :class:`RecentRows` -- the readings rows of the commits some replica has not replayed yet
  (commit number, device, energy), so a replica's ``energy_summary`` can subtract what it
  cannot see.  Trimmed at the slowest replica's position: bounded by the lag, not the run.
* :class:`WriteBurst` -- a lasting fault: the primary writes a burst of WAL (a backfill, a
  bulk migration, a backlog drained after an outage) that every replica must replay.
* :class:`LagRouter` -- bounded staleness, the countermeasure: like pgpool-II's
  ``delay_threshold_by_time`` checked every ``sr_check_period``, it tells the analytics
  engine which replicas are too far behind to be queried.

Assumptions, decided once here: a replica's crash or a partition does not pause its replay
(the model replays on, as if its WAL kept arriving); one replay rate for every kind of WAL
(real replay is slower on full-page images and cold caches); the burst's rows are not
readings the dashboards total (a backfill of other history, or a migration): they cost the
replicas replay time and are reported to commit listeners, and change no home's energy.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

import numpy as np
from pydantic import Field, model_validator

from sim.durations import Duration
from sim.errors import ModelDefinitionError
from sim.faults import FaultContext, LastingFault, Undo

if TYPE_CHECKING:
    from sim.kernel import Kernel

__all__ = ["BurstTarget", "LagRouter", "RecentRows", "ReplayStream", "WriteBurst"]


class ReplayStream:
    """One replica's WAL: shipped after a delay, replayed at ``replay_rate`` bytes/s, in order.

    Commits are numbered by the caller (1, 2, ...; the primary's commit order).  Times are
    simulated seconds and must not go backwards between calls.
    """

    __slots__ = ("_arrived", "_pending", "_replayed", "_ship_delay", "max_lag", "replay_rate", "replayed_upto")

    def __init__(self, replay_rate: float, ship_delay: Callable[[], float]) -> None:
        if not replay_rate > 0:
            raise ValueError(f"replay_rate must be > 0 (got {replay_rate})")
        self.replay_rate = replay_rate
        self._ship_delay = ship_delay
        self._arrived = -math.inf  # when the last commit's WAL reached the replica
        self._replayed = -math.inf  # when the last commit will have been replayed
        # (replayed at, number, commit time, arrived at): arrival and replay times never decrease
        self._pending: deque[tuple[float, int, float, float]] = deque()
        self.replayed_upto = 0  # the newest commit replayed, as of the last trim
        self.max_lag = 0.0

    def commit(self, number: int, time: float, wal_bytes: float) -> float:
        """The primary committed ``wal_bytes`` of WAL as commit ``number`` at ``time``: when
        this replica will have replayed it (the commit's replay lag is that minus ``time``)."""
        arrived = max(self._arrived, time + self._ship_delay())
        replayed = max(self._replayed, arrived) + wal_bytes / self.replay_rate
        self._arrived, self._replayed = arrived, replayed
        self._trim(time)
        self._pending.append((replayed, number, time, arrived))
        lag = replayed - time
        if lag > self.max_lag:
            self.max_lag = lag
        return replayed

    def _trim(self, now: float) -> None:
        pending = self._pending
        while pending and pending[0][0] <= now:
            self.replayed_upto = pending.popleft()[1]

    def position(self, now: float) -> tuple[int, float]:
        """``(replayed, as_of)`` at ``now``: the newest commit number replayed (all before it
        are too), and the time the replica's data is as of (``now`` when nothing is pending)."""
        self._trim(now)
        pending = self._pending
        return (self.replayed_upto, pending[0][2]) if pending else (self.replayed_upto, now)

    def staleness(self, now: float) -> float:
        """How old the replica's data is at ``now``: 0 when it has replayed every commit."""
        return now - self.position(now)[1]

    def oldest_pending(self, now: float) -> int | None:
        """The number of the oldest commit not replayed at ``now``, or None."""
        self._trim(now)
        return self._pending[0][1] if self._pending else None

    def unshipped_since(self, now: float) -> float | None:
        """The commit time of the oldest commit whose WAL has not reached the replica by ``now``
        (None: every commit has arrived).

        What a promotion at ``now`` loses: a standby replays all the WAL it has received before
        it finishes recovery, so only the commits never shipped are gone (asynchronous
        replication).  Arrivals are in commit order, so the commits not arrived are the tail of
        the pending queue; the scan walks that tail only (a few shipping delays' worth)."""
        self._trim(now)
        oldest: float | None = None
        for _replayed, _number, time, arrived in reversed(self._pending):
            if arrived <= now:
                break
            oldest = time
        return oldest

    def replay_done_at(self, now: float) -> float:
        """When the WAL that has reached the replica by ``now`` will have been replayed (``now``
        if it already is): what a promotion at ``now`` must wait for before it opens for writes."""
        self._trim(now)
        for replayed, _number, _time, arrived in reversed(self._pending):
            if arrived <= now:
                return replayed
        return now

    @property
    def backlog_commits(self) -> int:
        """Commits shipped or replaying, as of the last trim."""
        return len(self._pending)


class RecentRows:
    """Readings rows ``(commit, device, energy)`` appended in commit order, dropped once replayed everywhere.

    A numpy buffer with a head and a tail: appends amortise to O(rows), a trim is a binary
    search, and a lookup scans only the rows after a replica's position.
    """

    __slots__ = ("_commit", "_device", "_energy", "_head", "_tail")

    def __init__(self, capacity: int = 1024) -> None:
        self._commit = np.zeros(capacity, dtype=np.int64)
        self._device = np.zeros(capacity, dtype=np.int64)
        self._energy = np.zeros(capacity)
        self._head = 0
        self._tail = 0

    def __len__(self) -> int:
        return self._tail - self._head

    def append(self, commit: int, devices: np.ndarray, energy: np.ndarray) -> None:
        """Record the rows of commit ``commit`` (numbers never decrease from one call to the next)."""
        n = devices.size
        if not n:
            return
        if self._tail + n > self._commit.size:
            self._make_room(n)
        tail = self._tail
        self._commit[tail : tail + n] = commit
        self._device[tail : tail + n] = devices
        self._energy[tail : tail + n] = energy
        self._tail = tail + n

    def _make_room(self, n: int) -> None:
        """Move the live rows to the front, growing the buffer so that they and ``n`` more fill
        at most half of it: the next move is at least half a buffer of appends away."""
        live = self._tail - self._head
        size = self._commit.size
        while live + n > size // 2:
            size *= 2
        for name in ("_commit", "_device", "_energy"):
            old = getattr(self, name)
            new = np.zeros(size, dtype=old.dtype) if size != old.size else old
            new[:live] = old[self._head : self._tail]  # numpy copies overlapping slices safely
            setattr(self, name, new)
        self._head, self._tail = 0, live

    def _after(self, commit: int) -> int:
        """Index of the first row of a commit later than ``commit``."""
        head, tail = self._head, self._tail
        return head + int(np.searchsorted(self._commit[head:tail], commit, side="right"))

    def trim(self, before: int) -> None:
        """Forget the rows of commits numbered below ``before``."""
        self._head = self._after(before - 1)

    def missed(self, device: int, replayed: int) -> tuple[int, float]:
        """``(rows, energy)`` of ``device``'s rows in commits later than ``replayed``."""
        start = self._after(replayed)
        if start == self._tail:
            return 0, 0.0
        mine = self._device[start : self._tail] == device
        rows = int(np.count_nonzero(mine))
        return (rows, float(self._energy[start : self._tail][mine].sum())) if rows else (0, 0.0)

    def rows_after(self, replayed: int) -> int:
        """Rows of every device in commits later than ``replayed``."""
        return self._tail - self._after(replayed)


@runtime_checkable
class BurstTarget(Protocol):
    """A primary that can be made to write a burst of rows (the PostgreSQL primary)."""

    def write_burst(self, table: str, rows_per_s: float | None, bytes_per_s: float | None, every: float) -> Undo:
        """Commit rows of ``table`` (or raw WAL) every ``every`` seconds until undone."""


class WriteBurst(LastingFault):
    """The primary writes a burst of WAL its replicas must replay: a backfill, a bulk
    migration, a backlog drained after an outage.

    Give ``rows_per_s`` of ``table`` (WAL from ``postgres.wal_bytes_per_row``) or the WAL
    rate ``bytes_per_s`` itself (rows then follow from the table's figure).  Committed in
    chunks every ``commit_every``; the rows touch no home's energy totals (see the module).
    """

    kind: Literal["write_burst"]
    table: str = Field(default="readings", pattern=r"^[a-z_][a-z0-9_]{0,62}$", description="the table written")
    rows_per_s: float | None = Field(default=None, gt=0, le=1e9, description="rows committed per second")
    bytes_per_s: float | None = Field(default=None, gt=0, le=1e11, description="WAL bytes written per second")
    commit_every: Duration = Field(default=1.0, description="one commit (a COPY batch) this often")

    @model_validator(mode="after")
    def _one_rate(self) -> WriteBurst:
        if (self.rows_per_s is None) == (self.bytes_per_s is None):
            raise ValueError("give exactly one of rows_per_s and bytes_per_s")
        return self

    def start(self, ctx: FaultContext) -> Undo:
        target = ctx.actor(self.target, self.kind)
        if not isinstance(target, BurstTarget):
            raise ModelDefinitionError(f"a 'write_burst' fault targets {self.target!r}, which writes no WAL")
        return target.write_burst(self.table, self.rows_per_s, self.bytes_per_s, self.commit_every)


class LagRouter:
    """Which replicas are too far behind to query, as a read router that checks replay lag
    periodically sees it (pgpool-II: ``delay_threshold_by_time``, ``sr_check_period``).

    The check reads each replica's staleness directly, standing for the router's query of
    ``pg_stat_replication`` / ``pg_last_xact_replay_timestamp()``; between checks the verdict
    stands, so a replica that falls behind just after a check is still queried until the
    next one.  ``lagging`` is what the engine passes to its routing logic.
    """

    def __init__(
        self, kernel: Kernel, staleness: Mapping[str, Callable[[float], float]], max_lag: float, every: float
    ) -> None:
        self.kernel = kernel
        self.staleness = dict(staleness)
        self.max_lag = max_lag
        self.every = every
        self.lagging: frozenset[str] = frozenset()
        self.checks = 0
        self.excluded = dict.fromkeys(sorted(self.staleness), 0)  # checks that found each replica too far behind
        self._check()

    def _check(self) -> None:
        now = self.kernel.now
        self.checks += 1
        behind = [name for name, lag in self.staleness.items() if lag(now) > self.max_lag]
        for name in behind:
            self.excluded[name] += 1
        self.lagging = frozenset(behind)
        self.kernel.call_later(self.every, self._check)

    def stats(self) -> dict[str, object]:
        """Checks made, and per replica how many found it beyond ``max_lag``."""
        return {"checks": self.checks, "replica_excluded": dict(self.excluded)}
