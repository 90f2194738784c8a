"""WAL as the primary writes it, cut into segments: the ``archive_timeout`` rule over months,
and the primary losses that stop the writing (finding C4).

Why this module: months of WAL must cost little, and the segments must not depend on when the
plane is read. The rule is :func:`~models.logic.durability.wal_segments`'s; here it runs piece by
piece on constant-rate pieces (one numpy range per piece), the closes of a piece computed from
the piece's start so that where processing stopped inside a piece changes no close time.

* *Rate*: before ``durability.detail_from`` the WAL comes from the flows' aggregate rate; after
  it, per :data:`DETAIL_CELL_S` cell of the record-level commits (spread evenly over the cell).
  Nothing is written while the primary is down (a :class:`PrimaryLoss`, from ``at`` to its
  return).
* *Switches*: a base backup's end is an explicit switch (``pg_backup_stop``), which closes a
  segment even on an idle database (its backup-end record).
* *A lost primary*: the segment open at the loss is gone; the new primary's first segment opens
  at its return, numbering on from where the old history's closed ones stop.

:class:`WalSegmenter` is the first layer of :class:`~models.recovery.backups.BackupPlane`; the
archiver (:mod:`models.recovery.wal_archiver`) uploads what it closes.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field, replace

import numpy as np

from models.logic.durability import WalSegment
from models.recovery.commits import CommitLog
from models.recovery.config import DurabilityConfig
from models.recovery.incidents import Incident
from sim.kernel import Kernel

__all__ = ["DETAIL_CELL_S", "PrimaryLoss", "WalSegmenter"]

DETAIL_CELL_S = 1.0
"""In the detail window the WAL rate is taken per cell of this many seconds (the commits in the
cell spread evenly over it): record-level commits arrive as the twin runs, and a fixed grid keeps
the segments independent of when the plane is read."""


@dataclass(frozen=True, slots=True)
class PrimaryLoss:
    """A primary lost at ``at`` (with its ``pg_wal``), the data recovered to ``recovered_to``
    (``None``: nothing), and a new primary writing from ``back_at`` (``None``: not in the run)."""

    at: float
    recovered_to: float | None
    back_at: float | None

    @property
    def until(self) -> float:
        """When the database writes again (infinity: never in the run)."""
        return math.inf if self.back_at is None else self.back_at


@dataclass(frozen=True, slots=True)
class _Seg:
    """The segmenter's state: the current constant-rate piece as it started, and the progress in it.

    Closes in a piece are computed from the piece's start (``c0 + j * period``), never from the
    last emitted close, so where processing stopped inside a piece changes no close time.
    """

    a: float
    opened: float
    fill: float
    deadline: float
    first: int
    """Index of the first segment closing in this piece."""
    next: int
    """Index of the next segment to close."""


@dataclass(frozen=True, slots=True)
class _Closes:
    closed: list[float] = field(default_factory=list)
    opened: list[float] = field(default_factory=list)
    written: list[int] = field(default_factory=list)
    forced: list[bool] = field(default_factory=list)


class WalSegmenter:
    """The segments closed so far (close and open times, bytes written, forced or not), the
    segmenter's state in the current piece, the base backups' switches, and the primary losses.
    Advanced by :meth:`_segment` (pure) and committed by the archiver's ``_flow``."""

    def __init__(self, kernel: Kernel, config: DurabilityConfig, commits: CommitLog, incidents: list[Incident]) -> None:
        self.kernel = kernel
        self.config = config
        self.commits = commits
        self.incidents = incidents
        self.detail_from = config.detail_from
        wal = config.wal
        self._S = wal.segment_size
        self._T = wal.archive_timeout if wal.archive_timeout > 0 else math.inf
        self._pre_rate = commits.aggregate_wal_rate(0.0) if self.detail_from > 0 else 0.0
        self._seg = _Seg(0.0, 0.0, 0.0, self._T, 0, 0)
        self._closed: list[float] = []
        self._opened: list[float] = []
        self._written: list[int] = []
        self._forced: list[bool] = []
        self.losses: list[PrimaryLoss] = []
        self._switches: list[float] = []
        self._switch_set: set[float] = set()

    # -- WAL rate and pieces -------------------------------------------------------------------
    def _down(self, a: float) -> PrimaryLoss | None:
        """The loss during which ``a`` falls (``[at, until)``), if any."""
        return next((loss for loss in self.losses if loss.at <= a < loss.until), None)

    def _rate(self, a: float) -> float:
        if self._down(a) is not None:
            return 0.0
        if a < self.detail_from:
            return self._pre_rate
        lo = self.detail_from + self._cell(a) * DETAIL_CELL_S
        return self.commits.wal_bytes_between(lo, lo + DETAIL_CELL_S) / DETAIL_CELL_S

    def _cell(self, a: float) -> int:
        k = int((a - self.detail_from) // DETAIL_CELL_S)
        if self.detail_from + (k + 1) * DETAIL_CELL_S <= a:
            k += 1
        return k

    def _piece_end(self, a: float) -> float:
        down = self._down(a)
        if down is not None:
            boundary = down.until  # no cells while the database is down: one piece
        else:
            boundary = (
                self.detail_from if a < self.detail_from else self.detail_from + (self._cell(a) + 1) * DETAIL_CELL_S
            )
            boundary = min([boundary, *(loss.at for loss in self.losses if loss.at > a)])
        position = bisect.bisect_right(self._switches, a)
        if position < len(self._switches):
            boundary = min(boundary, self._switches[position])
        return boundary

    # -- segmenter ------------------------------------------------------------------------------
    def _piece(self, st: _Seg, r: float) -> tuple[float, int, bool, float, int, bool] | None:
        """The first close of the piece (time, bytes, forced) and the period after it."""
        S, T = self._S, self._T
        if r > 0:
            t_full = st.a + (S - st.fill) / r
            c0 = min(t_full, st.deadline)
            forced0 = st.deadline < t_full
            w0 = min(S, max(1, round(st.fill + r * (c0 - st.a)))) if forced0 else S
            full = S / r
            forced = full > T
            period = T if forced else full
            return c0, w0, forced0, period, (min(S, max(1, round(r * T))) if forced else S), forced
        if st.fill > 0 and st.deadline < math.inf:
            return st.deadline, min(S, max(1, round(st.fill))), True, math.inf, S, True
        return None

    def _segment(self, st: _Seg, upto: float) -> tuple[_Seg, _Closes]:
        """Closes up to ``upto`` (inclusive) from state ``st``: a pure function of its inputs."""
        out = _Closes()
        S, T = self._S, self._T
        while True:
            b = self._piece_end(st.a)
            r = self._rate(st.a)
            limit = min(b, upto)
            shape = self._piece(st, r)
            n = 0
            last = -math.inf
            if shape is not None and shape[0] <= limit:
                c0, w0, f0, period, wp, fp = shape
                n = 1 if period == math.inf else 1 + int((limit - c0) // period)
                while n > 1 and c0 + (n - 1) * period > limit:
                    n -= 1
                while period < math.inf and c0 + n * period <= limit:
                    n += 1
                j0 = st.next - st.first
                if j0 < n:
                    times = (c0 + np.arange(max(j0, 1), n, dtype=float) * period).tolist()
                    if j0 == 0:
                        out.closed.append(c0)
                        out.opened.append(st.opened)
                        out.written.append(w0)
                        out.forced.append(f0)
                    prev = c0 if j0 == 0 else c0 + (j0 - 1) * period
                    for time in times:
                        out.closed.append(time)
                        out.opened.append(prev)
                        out.written.append(wp)
                        out.forced.append(fp)
                        prev = time
                last = c0 + (n - 1) * period if n > 1 else c0
            if upto < b:
                return replace(st, next=st.first + n), out
            # the piece ends at b: its end state starts the next piece
            nxt = st.first + n
            if n:
                opened, fill, deadline = last, r * (b - last), last + T
            else:
                opened, fill, deadline = st.opened, st.fill + r * (b - st.a), st.deadline
            if fill == 0 and deadline <= b:
                deadline += (math.floor((b - deadline) / T) + 1) * T  # idle: the timer restarts
            if b in self._switch_set and not (n and last == b):
                # pg_backup_stop's backup-end record: the switch closes a segment even on an idle
                # database (at least one byte); one that closed at this very instant carries it
                out.closed.append(b)
                out.opened.append(opened)
                out.written.append(min(S, max(1, round(fill))))
                out.forced.append(True)
                nxt += 1
                opened, fill, deadline = b, 0.0, b + T
            for loss in self.losses:
                if loss.at == b:  # the open segment dies with pg_wal; nothing is written until the return
                    opened, fill, deadline = b, 0.0, math.inf
                if loss.until == b:  # the new primary's first segment opens
                    opened, fill, deadline = b, 0.0, b + T
            st = _Seg(b, opened, fill, deadline, nxt, nxt)
            if b >= upto:
                return st, out

    # -- segments, positions and switches -------------------------------------------------------
    def _wal_segment(self, i: int) -> WalSegment:
        start = i * self._S
        return WalSegment(i, start, start + self._written[i], self._opened[i], self._closed[i], self._forced[i])

    def _position(self, x: float) -> tuple[int, int]:
        """The segment and LSN of the WAL insert position at ``x`` (the flow is processed to x)."""
        if self._closed and self._closed[-1] == x:
            i = len(self._closed) - 1
            return i, i * self._S + self._written[i]
        st = self._seg
        if st.next > st.first:
            base, fill = self._closed[-1], 0.0
        else:
            base, fill = st.a, st.fill
        if x > base:
            fill += self._rate(st.a) * (x - base)
        return st.next, st.next * self._S + min(self._S, round(fill))

    def _add_switch(self, at: float) -> None:
        """A base backup ends at ``at``: its backup-end record closes a segment then."""
        if at not in self._switch_set:
            bisect.insort(self._switches, at)
            self._switch_set.add(at)

    def _drop_switch(self, at: float) -> None:
        """The backup that was to end at ``at`` will not: no switch then."""
        position = bisect.bisect_left(self._switches, at)
        if position < len(self._switches) and self._switches[position] == at:
            del self._switches[position]
            self._switch_set.discard(at)
