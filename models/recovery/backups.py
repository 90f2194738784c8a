"""The PostgreSQL backup plane over months: WAL segments, the archiver, base backups, and the
checks and drills that may (or may not) notice that the archive is broken (finding C4).

Why this module: C4 is a story of six months -- a silently broken ``archive_command`` on day 0,
the primary's disk lost on day 180 -- and the review's RPO claim stands or falls with what the
archive and the backups hold on day 180. The rules of each mechanism are pure arithmetic in
:mod:`models.logic.durability`; this module runs them through the scenario's horizon, fed by
the workload's WAL (:class:`~models.recovery.commits.CommitLog`) and the scenario's planned
faults, and meters what the checks see.

**Time.** The plane starts at 0 (the scenario's start), although the detailed twin's clock
starts at ``durability.detail_from``. Before ``detail_from`` the WAL comes from the flows'
aggregate rates, so months are known in advance; after it, record-level commits arrive as the
twin runs, so the plane can only process up to the last whole :data:`DETAIL_CELL_S` cell
before the kernel's clock. Nothing here schedules simpy events: :meth:`BackupPlane.advance`
processes everything up to a time, lazily and in bulk, and every reader (``restore``,
``summary``) calls it first. It is monotone and split-invariant: advancing to ``t1`` and then to
``t2`` gives exactly what advancing straight to ``t2`` gives (closes within a constant-rate
piece are computed from the piece's start, random draws are indexed by segment or taken in
event order), so reading mid-run changes nothing.

**What happens when.** Processing goes from one plane event to the next, in time order (ties:
backup end, verification, fix, backup start, WAL check, restore test, full restore, DR drill,
staleness check):

* *WAL* (continuous): cut into segments by the ``archive_timeout`` rule of
  :func:`~models.logic.durability.wal_segments` (same rule, computed piece by piece on
  constant-rate pieces, so months of WAL cost one numpy range per piece); a base backup's
  end is an explicit switch (``pg_backup_stop``), which closes a segment even on an idle
  database (its backup-end record).
* *Archiver* (continuous, one segment at a time, in order): a segment's upload starts when it
  has closed and the previous one is done, and takes a draw of ``wal.upload_time``. An attempt
  starting while an ``archive_failure`` is active fails and is retried every
  ``wal.retry_interval`` (later segments wait in ``pg_wal``). An upload starting while a
  ``segment_corruption`` is active reports success, but with probability ``fraction`` the
  object is missing or corrupt (the fault's ``mode``).
* *Archive-lag alert* (``checks.archive_lag_alert``): at ``closed + threshold`` for the first
  segment not archived within the threshold; re-armed once a segment is archived in time.
* *Base backups*: at ``backups.first_at + k * every`` (a slot is skipped while a backup runs),
  and at once after each fix. A backup copies the database (``initial_size`` plus every row
  written so far) at ``throughput``. ``backup_failure`` active at its start: ``failed`` (no
  backup) or ``truncated`` (reported fine, files missing, :data:`TRUNCATED_SHARE` of the size).
  ``backups.wal``: ``archive`` (pgBackRest / WAL-G style) takes the backup's own WAL from the
  archive; ``stream`` (``pg_basebackup -X stream``) carries it in the backup
  (:attr:`~models.logic.durability.BaseBackup.wal`), so a broken archive does not make the
  backup unusable, only its replay past the end short.
  *Retention* runs at the end of each job that reports success (``ok`` or ``truncated``; a
  ``failed`` job expires nothing, so forty days of failed jobs keep the last good backups, as
  pgBackRest expires only after a successful backup): the backups that ended more than
  ``retention`` ago are deleted, except the newest of them (it restores to the window's start,
  as pgBackRest's time-based retention keeps it). The backup just taken is never deleted, so
  the newest backup that reported success always survives.
  The backup-size alert compares the size with the mean of the last 7 days' backups (those that
  raised it themselves left out; a failed job counts as size 0, so the alert catches it too;
  a job that found the primary down is not compared).
* *pg_verifybackup* (``checks.verify_backups``): ``checks.verify_after`` after each backup's
  end, against the archive as it then is (:func:`~models.logic.durability.verify_backup`).
* *WAL checksum check* (``checks.wal_checksums``): every period, lists what was archived since
  the last check and finds missing and corrupt objects; blind to uploads that never happened.
* *Restore tests* (weekly), *full restores* (monthly, timed) and *DR drills* (quarterly, timed,
  into the DR region): restore the newest backup and replay the archive as of then
  (:meth:`BackupPlane.restore`); a test fails when no backup is usable, replay stops at a
  missing or corrupt segment, or the data is older than ``checks.restore_test_max_rpo``.
* *Staleness alert* (``checks.restore_test_alert``): checked daily; once per stale spell.
* *Respond*: every alert that catches a planned fault not yet being fixed schedules a fix
  ``checks.respond`` later: the fault ends then if it has no ``for`` (one with ``for`` ends on its
  own), and a fresh base backup starts at once (after the running one, if any).

An alert records its time, the check that raised it, the fault it caught (or none: a false
alarm) and the detection delay from that fault's start.

**A lost primary** (:meth:`BackupPlane.primary_lost`, called by the failover at a primary's
disk loss or a region's failover): at ``at`` the primary dies with its ``pg_wal``. Segments
closed but not archived by then (waiting, or mid-upload) are never archived -- they count as
``lost_with_primary``, and a replay stops there ("not archived before the disaster") -- and
the segment open at ``at`` is gone. A backup running at ``at`` fails (``interrupted``);
scheduled jobs while the database is down fail at once. No WAL is written from ``at`` until
``back_at``, the aggregate flows' included (the database is down). From ``back_at`` the new
primary writes WAL and archives it again, numbering segments on from where the old history's
closed ones stop, and a fresh base backup (reason ``after recovery``) starts at once; its size
leaves out what the recovery lost (from ``recovered_to`` to ``back_at``). Kept simple: the
archive is one sequence of segments, not PostgreSQL's timelines. A restore from a backup of
the old history replays the old history up to its first hole and continues into the new one
only when there is none -- which is what following the new timeline gives when the recovery
replayed the whole archive; a restore that stopped at a hole branched there, and a later
restore from an old backup stops at that hole too (PostgreSQL could follow the new timeline
from it: conservative). Until the fresh backup ends, restore tests therefore see stale data.
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from models.logic.durability import (
    Archive,
    ArchiveEntry,
    BackupDamage,
    BaseBackup,
    RestoreResult,
    RestoreSettings,
    SegmentState,
    WalSegment,
    verify_backup,
)
from models.logic.durability import restore as restore_from
from models.recovery.commits import CommitLog
from models.recovery.config import DurabilityConfig
from models.recovery.faults import ARCHIVE, BACKUPS, ArchiveFailure, BackupFailure, PlannedFault, SegmentCorruption
from sim.kernel import Kernel

__all__ = [
    "DETAIL_CELL_S",
    "SIZE_WINDOW_S",
    "TRUNCATED_SHARE",
    "BackupPlane",
    "BackupRecord",
    "Incident",
    "PrimaryLoss",
]

DETAIL_CELL_S = 1.0
"""In the detail window the WAL rate is taken per cell of this many seconds (the commits in the
cell spread evenly over it): record-level commits arrive as the twin runs, and a fixed grid keeps
the segments independent of when the plane is read."""
SIZE_WINDOW_S = 7 * 86400.0
"""The backup-size alert compares a backup with the mean of the backups of this window."""
TRUNCATED_SHARE = 0.5
"""A truncated backup (``backup_failure`` mode ``truncated``) holds this share of the files."""
_DAY = 86400.0
_OK, _MISSING, _CORRUPT, _LOST = 0, 1, 2, 3
"""Upload outcomes; ``_LOST``: never archived, the primary died with it in ``pg_wal`` (no archive
entry: views of the archive stop before it)."""
_STATES = (SegmentState.ARCHIVED, SegmentState.MISSING, SegmentState.CORRUPT)

# Plane events, in the order they run when they fall at the same time.
_BACKUP_END, _VERIFY, _FIX, _BACKUP_START, _FRESH_BACKUP = 0, 1, 2, 3, 4
_WAL_CHECK, _RESTORE_TEST, _FULL_RESTORE, _DRILL, _STALE = 5, 6, 7, 8, 9
_INTERRUPTED = ("interrupted: the primary was lost during the backup",)
_PRIMARY_DOWN = ("not run: the primary is down",)
_PERIODIC_NAMES = {
    _WAL_CHECK: "wal_checksums",
    _RESTORE_TEST: "restore_test",
    _FULL_RESTORE: "full_restore",
    _DRILL: "dr_drill",
    _STALE: "restore_test_stale",
}


@dataclass(slots=True)
class Incident:
    """A planned fault as it played out: when it started, was first caught, fixed, and ended."""

    number: int
    fault: PlannedFault
    end: float | None
    """When it ended: its ``for``, or the fix; ``None`` while it lasts."""
    detected_at: float | None = None
    fix_at: float | None = None

    @property
    def start(self) -> float:
        return self.fault.at

    def active(self, t: float) -> bool:
        """Whether the fault acts at ``t`` (as far as the plane knows now)."""
        return self.fault.at <= t < (math.inf if self.end is None else self.end)


@dataclass(slots=True)
class BackupRecord:
    """One base backup job: when it ran, how big it was, and what became of it."""

    label: str
    start_s: float
    end_s: float
    size_bytes: float
    status: str
    """``ok``, ``failed`` (no backup) or ``truncated`` (files missing, reported fine)."""
    fault: int | None
    base: BaseBackup | None = None
    verified: bool | None = None
    problems: tuple[str, ...] = ()
    deleted_at: float | None = None
    reason: str = "scheduled"
    """``scheduled``, ``after fix`` (the fresh backup after a fix) or ``after recovery`` (the
    first backup of a new primary)."""
    size_alert: bool = False
    """Its size raised the backup-size alert (it is left out of later backups' mean)."""


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
class _Arch:
    """The archiver's state: the next segment to upload, when the previous one was done, and
    whether the lag alert is armed."""

    next: int
    free_at: float
    armed: bool


@dataclass(frozen=True, slots=True)
class _Closes:
    closed: list[float] = field(default_factory=list)
    opened: list[float] = field(default_factory=list)
    written: list[int] = field(default_factory=list)
    forced: list[bool] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Uploaded:
    start: float
    done: float
    state: int
    attempts: int
    fault: int
    delayer: int


@dataclass(frozen=True, slots=True)
class _LagAlert:
    at: float
    segment: int
    fault: int


class BackupPlane:
    """See the module docstring. Public: :meth:`advance`, :meth:`restore`, :meth:`primary_lost`,
    :meth:`summary`, :attr:`backups`, :attr:`incidents`, :attr:`alerts`, :attr:`losses`,
    :meth:`archive_as_of`."""

    def __init__(
        self,
        kernel: Kernel,
        config: DurabilityConfig,
        commits: CommitLog,
        faults: Iterable[object],
        horizon: float,
    ) -> None:
        self.kernel = kernel
        self.config = config
        self.commits = commits
        self.horizon = horizon
        self.detail_from = config.detail_from
        wal = config.wal
        self._S = wal.segment_size
        self._T = wal.archive_timeout if wal.archive_timeout > 0 else math.inf
        self._R = wal.retry_interval
        self._pre_rate = commits.aggregate_wal_rate(0.0) if self.detail_from > 0 else 0.0
        self._settings = RestoreSettings(
            copy_bytes_per_s=config.restore.copy_rate,
            replay_bytes_per_s=config.restore.replay_rate,
            fetch_s_per_segment=config.restore.fetch_time,
        )
        planned = [f for f in faults if isinstance(f, PlannedFault) and f.target in (ARCHIVE, BACKUPS)]
        self.incidents = [Incident(n, f, f.until) for n, f in enumerate(planned)]
        self._failures = [i for i in self.incidents if isinstance(i.fault, ArchiveFailure)]
        self._corruptions = [i for i in self.incidents if isinstance(i.fault, SegmentCorruption)]
        self._backup_faults = [i for i in self.incidents if isinstance(i.fault, BackupFailure)]
        # random draws, indexed by segment (uploads, corruption) or taken in event order (respond)
        self._upload = kernel.sampler(wal.upload_time, "durability/upload")
        self._uploads: list[float] = []
        self._uniform_rng = kernel.streams.stream("durability/corruption")
        self._uniforms: list[float] = []
        self._respond = kernel.sampler(config.checks.respond, "durability/respond")
        # segments (closed) and their archiving (finalised uploads, a prefix of the segments)
        self._seg = _Seg(0.0, 0.0, 0.0, self._T, 0, 0)
        self._closed: list[float] = []
        self._opened: list[float] = []
        self._written: list[int] = []
        self._forced: list[bool] = []
        self._arch = _Arch(0, -math.inf, True)
        self._up: list[_Uploaded] = []
        self._done: list[float] = []  # the archiver works in order, so this is non-decreasing
        self._bad: list[int] = []  # indices of uploaded segments missing or corrupt, in order
        self._lost: list[int] = []  # indices of segments lost with a primary's pg_wal, in order
        self.losses: list[PrimaryLoss] = []
        self._max_lag = 0.0
        self._switches: list[float] = []
        self._switch_set: set[float] = set()
        # backups, checks, alerts
        self.backups: list[BackupRecord] = []
        self._running: BackupRecord | None = None
        self._fresh_wanted: str | None = None  # a fresh backup's reason, waiting for the running one
        self.alerts: list[dict[str, Any]] = []
        self.restore_tests: list[dict[str, Any]] = []
        self.drills: list[dict[str, Any]] = []
        self.fixes: list[dict[str, Any]] = []
        self.skipped_slots = 0
        self._checked_to = 0.0
        self._last_ok_test = 0.0
        self._stale_alerted = False
        self._events: list[tuple[float, int, int, object]] = []
        self._seq = 0
        self._flow_to = 0.0
        self._processed = 0.0
        self._push(config.backups.first_at, _BACKUP_START, None)
        checks = config.checks
        for kind, every in (
            (_WAL_CHECK, checks.wal_checksums),
            (_RESTORE_TEST, checks.restore_test_every),
            (_FULL_RESTORE, checks.full_restore_every),
            (_DRILL, checks.dr_drill_every),
            (_STALE, _DAY if checks.restore_test_alert is not None else None),
        ):
            if every is not None:
                self._push(every, kind, every)

    # -- public ---------------------------------------------------------------------------------
    def advance(self, t: float) -> float:
        """Process everything up to ``t`` (clamped to the horizon and, in the detail window, to
        the WAL known so far); return the time processed to. Idempotent and monotone."""
        target = min(t, self.horizon, self._known_until())
        while True:
            nxt = self._events[0][0] if self._events else math.inf
            e = min(nxt, target)
            if e < self._flow_to:
                break
            lag = self._flow(e)
            if lag is not None:
                self._lag_alert(lag)
                continue
            if nxt <= target:
                when, kind, _, payload = heapq.heappop(self._events)
                self._handle(when, kind, payload)
                continue
            break
        self._processed = max(self._processed, min(target, self._flow_to))
        return self._processed

    def restore(self, disaster_s: float) -> RestoreResult:
        """Restore at ``disaster_s`` from the newest usable backup and the archive as it stood
        then (no fixed steps: those are the failover's). Advances the plane first."""
        self.advance(disaster_s)
        return self._restore_at(disaster_s)

    def primary_lost(self, at: float, recovered_to: float | None, back_at: float | None) -> None:
        """The primary died at ``at`` with its ``pg_wal``; its data was recovered to
        ``recovered_to`` (``None``: nothing recovered) and a new primary writes from ``back_at``
        (``None``: not in this run). See the module docstring for what follows.

        Call it at the disaster (``at`` at or before the kernel's clock, and not before what the
        plane has processed), once per loss, in time order; a loss while the database is still
        down from the previous one is refused (``ValueError``).
        """
        if back_at is not None and back_at < at:
            raise ValueError(f"back_at ({back_at}) is before the loss ({at})")
        if recovered_to is not None and recovered_to > at:
            raise ValueError(f"recovered_to ({recovered_to}) is after the loss ({at})")
        if self.losses and at < self.losses[-1].until:
            raise ValueError(
                f"the primary is still down from the loss at {self.losses[-1].at} (until {self.losses[-1].until})"
            )
        if at < self._flow_to:
            raise ValueError(f"the plane has already processed WAL up to {self._flow_to}, after the loss at {at}")
        self.losses.append(PrimaryLoss(at, recovered_to, back_at))
        if self._seg.a == at:  # a piece starts right at the loss: its open segment dies now
            self._seg = replace(self._seg, opened=at, fill=0.0, deadline=math.inf, first=self._seg.next)
        # uploads still running at the loss die with the primary: take them back, the archiver
        # re-decides them knowing the loss (they are lost)
        k = bisect.bisect_right(self._done, at)
        if k < len(self._up):
            del self._up[k:], self._done[k:]
            del self._bad[bisect.bisect_left(self._bad, k) :]
            del self._lost[bisect.bisect_left(self._lost, k) :]
            self._max_lag = max(
                (u.done - self._closed[i] for i, u in enumerate(self._up) if u.state != _LOST), default=0.0
            )
            self._arch = replace(self._arch, next=k, free_at=self._done[-1] if self._done else -math.inf)
        self.advance(at)
        running = self._running
        if running is not None and running.end_s > at:
            position = bisect.bisect_left(self._switches, running.end_s)
            if position < len(self._switches) and self._switches[position] == running.end_s:
                del self._switches[position]
                self._switch_set.discard(running.end_s)
            running.status, running.end_s, running.base, running.size_bytes = "failed", at, None, 0.0
            running.problems = _INTERRUPTED
            self._running = None
        self._fresh_wanted = None  # the new primary's first backup replaces it
        if back_at is not None:
            self._push(back_at, _FRESH_BACKUP, "after recovery")

    def archive_as_of(self, t: float, first: int = 0, last: int | None = None) -> Archive:
        """The archive record as it stood at ``t``, for segments ``first..last`` (default: all),
        up to the first segment lost with a primary (an :class:`Archive` has no gaps)."""
        self.advance(t)
        return self._archive_slice(t, first, len(self._up) if last is None else last)

    def summary(self, until: float) -> dict[str, Any]:
        """Plain data for the result: backups, archive, alerts, restore tests, drills, fixes,
        faults as they played out (advances the plane to ``until`` first)."""
        until = self.advance(until)
        uploaded = bisect.bisect_right(self._done, until)
        states = [u.state for u in self._up[:uploaded]]
        closed = bisect.bisect_right(self._closed, until)
        waiting = [until - self._closed[i] for i in range(uploaded, closed)]
        lags = [u.done - self._closed[i] for i, u in enumerate(self._up[:uploaded]) if u.state != _LOST]
        done = [b for b in self.backups if b.end_s <= until]
        kept = [b for b in done if b.base is not None and (b.deleted_at is None or b.deleted_at > until)]
        return {
            "processed_to_s": until,
            "backups": {
                "wal": self.config.backups.wal,
                "taken": sum(b.status != "failed" for b in done),
                "failed": sum(b.status == "failed" for b in done),
                "truncated": sum(b.status == "truncated" for b in done),
                "verified": sum(b.verified is True for b in done),
                "verify_failed": sum(b.verified is False for b in done),
                "kept": len(kept),
                "deleted": sum(b.deleted_at is not None and b.deleted_at <= until for b in done),
                "skipped_slots": self.skipped_slots,
                "interrupted": sum(b.problems[:1] == _INTERRUPTED for b in done),
                "primary_down": sum(b.problems[:1] == _PRIMARY_DOWN for b in done),
                "last_size_bytes": done[-1].size_bytes if done else None,
                "last_duration_s": done[-1].end_s - done[-1].start_s if done else None,
                "max_duration_s": max((b.end_s - b.start_s for b in done), default=None),
            },
            "archive": {
                "segments": closed,
                "archived": states.count(_OK),
                "missing": states.count(_MISSING),
                "corrupt": states.count(_CORRUPT),
                "lost_with_primary": states.count(_LOST),
                "pending": closed - uploaded,
                "max_lag_s": max([0.0, *lags, *waiting]),
                "segment_bytes": self._S,
            },
            "alerts": [dict(a) for a in self.alerts if a["at"] <= until],
            "alerts_raised": sum(a["at"] <= until for a in self.alerts),
            "first_alert_s": next((a["at"] for a in self.alerts if a["caught"] is not None and a["at"] <= until), None),
            "first_detection_delay_s": min(
                (
                    i.detected_at - i.start
                    for i in self.incidents
                    if i.detected_at is not None and i.detected_at <= until
                ),
                default=None,
            ),
            "faults_fixed": sum(f["at"] <= until for f in self.fixes if f["ended_fault"]),
            "primary_losses": [
                {
                    "at_s": loss.at,
                    "recovered_to_s": loss.recovered_to,
                    "back_at_s": loss.back_at,
                    "segments_lost": sum(self._up[i].done == loss.at for i in self._lost),
                }
                for loss in self.losses
                if loss.at <= until
            ],
            "restore_tests": [dict(r) for r in self.restore_tests if r["at"] <= until],
            "drills": [dict(d) for d in self.drills if d["at"] <= until],
            "fixes": [dict(f) for f in self.fixes if f["at"] <= until],
            "faults": [
                {
                    "kind": i.fault.kind,
                    "start_s": i.start,
                    "end_s": i.end if i.end is not None and i.end <= until else None,
                    "detected_s": i.detected_at if i.detected_at is not None and i.detected_at <= until else None,
                    "detection_delay_s": None
                    if i.detected_at is None or i.detected_at > until
                    else i.detected_at - i.start,
                }
                for i in self.incidents
            ],
        }

    # -- WAL known so far -----------------------------------------------------------------------
    def _known_until(self) -> float:
        """The WAL is known up to ``detail_from`` in advance; after it, up to the last whole cell
        before the kernel's clock (commits at the clock's own instant may still come)."""
        now = self.kernel.now
        if now <= self.detail_from:
            known = self.detail_from if self.detail_from > 0 else 0.0
        else:
            cells = math.ceil((now - self.detail_from) / DETAIL_CELL_S) - 1
            known = self.detail_from + max(0, cells) * DETAIL_CELL_S
        # from a primary's loss to its return nothing is written: known to the return
        return max([known, *(loss.until for loss in self.losses if loss.at <= now)])

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

    # -- archiver ---------------------------------------------------------------------------------
    def _draw_upload(self, i: int) -> float:
        while len(self._uploads) <= i:
            self._uploads.append(self._upload())
        return self._uploads[i]

    def _draw_uniform(self, i: int) -> float:
        while len(self._uniforms) <= i:
            self._uniforms.extend(self._uniform_rng.random(4096).tolist())
        return self._uniforms[i]

    def _archive(
        self, st: _Arch, new_closed: list[float], horizon: float
    ) -> tuple[_Arch, list[_Uploaded], _LagAlert | None]:
        """Uploads starting before ``horizon`` (pure, given the faults as known now).

        ``new_closed`` holds the close times of the segments closed after the committed ones.
        Stops at a segment blocked by an ``archive_failure`` whose end is not known yet, and
        before a segment whose lag alert would fire at or after ``horizon`` (a later step
        decides it); a lag alert due before ``horizon`` is returned instead. A segment whose
        upload cannot be done by the next primary loss after its close is lost then.
        """
        threshold = self.config.checks.archive_lag_alert
        out: list[_Uploaded] = []
        free, armed = st.free_at, st.armed
        committed = len(self._closed)
        for i in range(st.next, committed + len(new_closed)):
            c = self._closed[i] if i < committed else new_closed[i - committed]
            s, attempts, delayer = max(c, free), 1, -1
            blocked = False
            while True:
                window = next((w for w in self._failures if w.active(s)), None)
                if window is None:
                    break
                if window.end is None:
                    blocked, delayer = True, window.number
                    break
                k = max(1, math.ceil((window.end - s) / self._R))
                s += k * self._R
                attempts += k
                delayer = window.number
            loss = next((x.at for x in self.losses if x.at >= c), math.inf)
            if loss < math.inf and (blocked or s + self._draw_upload(i) > loss):
                # still in pg_wal (waiting or uploading) when the primary dies: never archived
                if armed and threshold is not None and c + threshold < loss:
                    if c + threshold < horizon:
                        return replace(st, next=i, free_at=free, armed=armed), out, _LagAlert(c + threshold, i, delayer)
                    break
                if loss > horizon:
                    break
                out.append(_Uploaded(loss, loss, _LOST, attempts, -1, delayer))
                free = loss
                continue
            if blocked or s >= horizon:
                if armed and threshold is not None and c + threshold < horizon:
                    return replace(st, next=i, free_at=free, armed=armed), out, _LagAlert(c + threshold, i, delayer)
                break
            done = s + self._draw_upload(i)
            if threshold is not None:
                if armed and done - c > threshold:
                    at = c + threshold
                    if at >= horizon:
                        break
                    return replace(st, next=i, free_at=free, armed=armed), out, _LagAlert(at, i, delayer)
                if not armed and done - c <= threshold:
                    armed = True
            state, fault = _OK, -1
            for incident in self._corruptions:
                if incident.active(s):
                    fault_spec = incident.fault
                    assert isinstance(fault_spec, SegmentCorruption)
                    if self._draw_uniform(i) < fault_spec.fraction:
                        state = _MISSING if fault_spec.mode == "missing" else _CORRUPT
                        fault = incident.number
                    break
            out.append(_Uploaded(s, done, state, attempts, fault, delayer))
            free = done
        return _Arch(st.next + len(out), free, armed), out, None

    def _flow(self, e: float) -> _LagAlert | None:
        """Segment and archive up to ``e``; stop early at a lag alert and return it."""
        if e <= self._flow_to:
            return None
        seg, closes = self._segment(self._seg, e)
        arch, uploads, lag = self._archive(self._arch, closes.closed, e)
        if lag is not None:
            seg, closes = self._segment(self._seg, lag.at)
            arch, uploads, again = self._archive(self._arch, closes.closed, lag.at)
            assert again is None, "a lag alert before the first one"
        self._seg = seg
        self._closed += closes.closed
        self._opened += closes.opened
        self._written += closes.written
        self._forced += closes.forced
        first = self._arch.next
        for offset, up in enumerate(uploads):
            i = first + offset
            self._up.append(up)
            self._done.append(up.done)
            if up.state == _LOST:
                self._lost.append(i)
                continue
            self._max_lag = max(self._max_lag, up.done - self._closed[i])
            if up.state != _OK:
                self._bad.append(i)
        self._arch = arch
        self._flow_to = lag.at if lag is not None else e
        return lag

    def _wal_segment(self, i: int) -> WalSegment:
        start = i * self._S
        return WalSegment(i, start, start + self._written[i], self._opened[i], self._closed[i], self._forced[i])

    def _entry(self, i: int) -> ArchiveEntry:
        up = self._up[i]
        return ArchiveEntry(self._wal_segment(i), _STATES[up.state], up.done, up.attempts)

    # -- events ---------------------------------------------------------------------------------
    def _push(self, when: float, kind: int, payload: object) -> None:
        if when <= self.horizon:
            heapq.heappush(self._events, (when, kind, self._seq, payload))
            self._seq += 1

    def _handle(self, t: float, kind: int, payload: object) -> None:
        if kind == _BACKUP_START:
            self._push(t + self.config.backups.every, _BACKUP_START, None)
            if self._running is not None:
                self.skipped_slots += 1
            else:
                self._start_backup(t, "scheduled")
        elif kind == _FRESH_BACKUP:
            assert isinstance(payload, str)
            if self._running is not None:
                self._fresh_wanted = payload
            else:
                self._start_backup(t, payload)
        elif kind == _BACKUP_END:
            assert isinstance(payload, BackupRecord)
            if payload is self._running:  # else a primary's loss interrupted it
                self._end_backup(t, payload)
        elif kind == _VERIFY:
            assert isinstance(payload, BackupRecord)
            self._verify(t, payload)
        elif kind == _FIX:
            assert isinstance(payload, Incident)
            self._fix(t, payload)
        else:
            assert isinstance(payload, float)
            self._push(t + payload, kind, payload)
            if kind == _WAL_CHECK:
                self._wal_check(t)
            elif kind == _STALE:
                self._stale_check(t)
            else:
                self._restore_test(t, kind)

    # -- backups ----------------------------------------------------------------------------------
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

    def _size(self, t: float) -> float:
        """The database's size at ``t``: what it started with, every row written since, less what
        the recoveries from primary losses did not bring back."""
        cfg = self.config.backups
        size = cfg.initial_size + self.commits.data_bytes_between(0.0, t)
        for loss in self.losses:
            if loss.until <= t:
                lost_from = -math.inf if loss.recovered_to is None else loss.recovered_to
                size -= self.commits.data_bytes_between(lost_from, loss.until)
                if loss.recovered_to is None:
                    size -= cfg.initial_size
        return max(0.0, size)

    def _start_backup(self, t: float, reason: str) -> None:
        cfg = self.config.backups
        label = f"base-{len(self.backups) + 1:04d}"
        if self._down(t) is not None:
            # cron runs, pg_basebackup cannot connect: the job fails at once, with no switch
            record = BackupRecord(label, t, t, 0.0, "failed", None, reason=reason, problems=_PRIMARY_DOWN)
            self.backups.append(record)
            self._running = record
            self._push(t, _BACKUP_END, record)
            return
        size = self._size(t)
        end = t + size / cfg.throughput
        hit = next((i for i in self._backup_faults if i.active(t)), None)
        status = "ok"
        if hit is not None:
            assert isinstance(hit.fault, BackupFailure)
            status = hit.fault.mode
        shown = size * TRUNCATED_SHARE if status == "truncated" else (0.0 if status == "failed" else size)
        record = BackupRecord(label, t, end, shown, status, None if hit is None else hit.number, reason=reason)
        first, start_lsn = self._position(t)
        record.base = BaseBackup(label, t, end, shown, start_lsn, start_lsn, first, first)
        self.backups.append(record)
        self._running = record
        if end not in self._switch_set:
            bisect.insort(self._switches, end)
            self._switch_set.add(end)
        self._push(end, _BACKUP_END, record)

    def _end_backup(self, t: float, record: BackupRecord) -> None:
        self._running = None
        partial = record.base
        if partial is None or record.status == "failed":
            record.base = None
        else:
            # the backup-end switch closed its last segment at t
            last = len(self._closed) - 1 if self._closed and self._closed[-1] == t else self._seg.next - 1
            end_lsn = last * self._S + self._written[last] if last >= 0 else 0
            damage = BackupDamage(missing_files=("base/16384 (truncated)",)) if record.status == "truncated" else None
            last = max(last, partial.first_segment)
            stream = self.config.backups.wal == "stream"
            record.base = replace(
                partial,
                end_lsn=max(end_lsn, partial.start_lsn),
                last_segment=last,
                damage=damage or BackupDamage(),
                wal=tuple(self._wal_segment(i) for i in range(partial.first_segment, last + 1)) if stream else (),
            )
            self._expire(t, record)
        if record.problems != _PRIMARY_DOWN:
            self._size_check(t, record)
        if self.config.checks.verify_backups and record.base is not None:
            self._push(t + self.config.checks.verify_after, _VERIFY, record)
        if self._fresh_wanted is not None:
            reason, self._fresh_wanted = self._fresh_wanted, None
            self._start_backup(t, reason)

    def _expire(self, t: float, record: BackupRecord) -> None:
        """Retention after ``record``, a job that reported success: delete the backups that ended
        more than ``retention`` before ``t``, except the newest of them (it restores to the
        window's start). ``record`` itself is never old enough, so the newest backup that
        reported success is never deleted."""
        cutoff = t - self.config.backups.retention
        old = [b for b in self.backups if b is not record and b.base is not None and b.end_s < cutoff]
        for expired in old[:-1]:
            if expired.deleted_at is None:
                expired.deleted_at = t

    def _size_check(self, t: float, record: BackupRecord) -> None:
        limit = self.config.checks.backup_size_alert
        if limit is None:
            return
        recent = [
            b.size_bytes
            for b in self.backups
            if b is not record and b.status != "failed" and not b.size_alert and t - SIZE_WINDOW_S <= b.end_s <= t
        ]
        if not recent:
            return
        mean = math.fsum(recent) / len(recent)
        if mean > 0 and abs(record.size_bytes - mean) > limit * mean:
            record.size_alert = True
            self._alert(t, "backup_size", record.fault, f"{record.label}: {record.size_bytes:.3g} B vs mean {mean:.3g}")

    def _verify(self, t: float, record: BackupRecord) -> None:
        base = record.base
        assert base is not None
        # a self-contained backup's WAL is checked in its own pg_wal: the archive is not read
        wal = Archive(()) if base.self_contained else self._archive_slice(t, base.first_segment, base.last_segment)
        verdict = verify_backup(base, wal)
        record.verified = verdict.ok
        record.problems = verdict.problems
        if not verdict.ok:
            blame = record.fault if not base.damage.physically_intact else None
            if blame is None:
                blame = self._blame_range(t, base.first_segment, base.last_segment)
            self._alert(t, "verify_backup", blame, f"{record.label}: {verdict.problems[0]}")

    # -- archive views and blame ------------------------------------------------------------------
    def _archive_slice(self, t: float, first: int, last: int) -> Archive:
        """Archived segments ``first..last`` as of ``t``, stopping before a segment lost with a
        primary (never in the archive: an :class:`Archive` has no gaps)."""
        count = bisect.bisect_right(self._done, t)
        stop = int(min(count, last + 1, self._next_lost(first)))
        return Archive(tuple(self._entry(i) for i in range(max(0, first), stop)))

    def _next_lost(self, first: int) -> float:
        position = bisect.bisect_left(self._lost, first)
        return self._lost[position] if position < len(self._lost) else math.inf

    def _first_bad(self, t: float, first: int) -> int:
        """The first segment from ``first`` not intact in the archive as of ``t``."""
        count = bisect.bisect_right(self._done, t)
        position = bisect.bisect_left(self._bad, first)
        bad = self._bad[position] if position < len(self._bad) else math.inf
        return int(min(bad, self._next_lost(first), max(count, first)))

    def _blame_segment(self, t: float, i: int) -> int | None:
        """The planned fault that keeps segment ``i`` out of the archive (as of ``t``), if any."""
        if i < len(self._up) and self._up[i].done <= t:
            fault = self._up[i].fault
            return fault if fault >= 0 else None
        if i < len(self._up):
            return self._up[i].delayer if self._up[i].delayer >= 0 else None
        waiting = next((w for w in self._failures if w.active(t)), None)
        return None if waiting is None else waiting.number

    def _blame_range(self, t: float, first: int, last: int) -> int | None:
        bad = self._first_bad(t, first)
        return self._blame_segment(t, bad) if bad <= last else None

    # -- restore ----------------------------------------------------------------------------------
    def _restore_at(self, t: float) -> RestoreResult:
        """durability.restore over the backups alive at ``t`` and the part of the archive it reads."""
        alive = [
            b.base
            for b in self.backups
            if b.base is not None and b.end_s <= t and (b.deleted_at is None or b.deleted_at > t)
        ]
        passed: list[BaseBackup] = []
        chosen: BaseBackup | None = None
        for base in reversed(alive):
            passed.append(base)
            if base.damage.physically_intact and self._has_own_wal(t, base):
                chosen = base
                break
        if not passed:
            return restore_from(t, (), Archive(()), self._settings)
        if chosen is not None and chosen.self_contained:
            # the newer backups passed over carry their WAL too: only the replay reads the archive
            lo = chosen.last_segment + 1
            return restore_from(t, passed, self._archive_slice(t, lo, self._first_bad(t, lo)), self._settings)
        lo = min(b.first_segment for b in passed)
        hi = max(b.last_segment for b in passed)
        if chosen is not None:
            hi = max(hi, self._first_bad(t, chosen.first_segment))
        return restore_from(t, passed, self._archive_slice(t, lo, hi), self._settings)

    def _has_own_wal(self, t: float, base: BaseBackup) -> bool:
        """Whether ``base`` has the WAL it needs to be consistent: in itself, or in the archive as of ``t``."""
        return base.self_contained or self._first_bad(t, base.first_segment) > base.last_segment

    def _restore_test(self, t: float, kind: int) -> None:
        result = self._restore_at(t)
        limit = self.config.checks.restore_test_max_rpo
        name = _PERIODIC_NAMES[kind]
        if result.backup is None:
            ok, reason = False, "no usable base backup"
        elif result.stop_reason.endswith(("missing in the archive", "corrupt in the archive")):
            ok, reason = False, f"replay stopped: {result.stop_reason}"
        elif result.rpo_s > limit:
            ok, reason = False, f"restored data {result.rpo_s:.0f} s old (limit {limit:.0f} s)"
        else:
            ok, reason = True, result.stop_reason
        record: dict[str, Any] = {
            "at": t,
            "kind": name,
            "outcome": "ok" if ok else "failed",
            "reason": reason,
            "backup": None if result.backup is None else result.backup.label,
            "rpo_s": None if math.isinf(result.rpo_s) else result.rpo_s,
        }
        if kind != _RESTORE_TEST:
            record["duration_s"] = None if math.isinf(result.rto_s) else result.rto_s
        (self.drills if kind == _DRILL else self.restore_tests).append(record)
        if ok:
            self._last_ok_test = t
            self._stale_alerted = False
            return
        self._alert(t, name, self._blame_restore(t, result), reason)

    def _blame_restore(self, t: float, result: RestoreResult) -> int | None:
        if result.backup is not None:
            stop = result.stopped_at_segment
            return None if stop is None else self._blame_segment(t, stop)
        for record in reversed(self.backups):
            base = record.base
            if base is None or base.end_s > t or (record.deleted_at is not None and record.deleted_at <= t):
                continue
            if not base.damage.physically_intact:
                return record.fault
            if base.self_contained:
                continue
            blame = self._blame_range(t, base.first_segment, base.last_segment)
            if blame is not None:
                return blame
        return None

    # -- checks -----------------------------------------------------------------------------------
    def _wal_check(self, t: float) -> None:
        lo = bisect.bisect_right(self._done, self._checked_to)
        hi = bisect.bisect_right(self._done, t)
        self._checked_to = t
        position = bisect.bisect_left(self._bad, lo)
        if position < len(self._bad) and self._bad[position] < hi:
            bad = [i for i in self._bad[position:] if i < hi]
            first = bad[0]
            self._alert(
                t,
                "wal_checksums",
                self._up[first].fault,
                f"{len(bad)} of {hi - lo} segments archived since the last check missing or corrupt (first: {first})",
            )

    def _stale_check(self, t: float) -> None:
        limit = self.config.checks.restore_test_alert
        assert limit is not None
        if self._stale_alerted or t - self._last_ok_test <= limit:
            return
        self._stale_alerted = True
        blame = self._blame_restore(t, self._restore_at(t)) if self.restore_tests else None
        self._alert(t, "restore_test_stale", blame, f"no successful restore test since {self._last_ok_test:.0f} s")

    def _lag_alert(self, lag: _LagAlert) -> None:
        self._arch = replace(self._arch, armed=False)
        threshold = self.config.checks.archive_lag_alert
        self._alert(
            lag.at,
            "archive_lag",
            lag.fault if lag.fault >= 0 else None,
            f"segment {lag.segment} waiting for the archive longer than {threshold} s",
        )

    def _alert(self, t: float, check: str, fault: int | None, detail: str) -> None:
        incident = None if fault is None else self.incidents[fault]
        self.alerts.append(
            {
                "at": t,
                "check": check,
                "caught": None if incident is None else incident.fault.kind,
                "fault": fault,
                "delay_s": None if incident is None else t - incident.start,
                "detail": detail,
            }
        )
        if incident is None:
            return
        if incident.detected_at is None:
            incident.detected_at = t
        if incident.fix_at is None:
            incident.fix_at = t + self._respond()
            self._push(incident.fix_at, _FIX, incident)

    def _fix(self, t: float, incident: Incident) -> None:
        ended = incident.end is None
        if ended:
            incident.end = t
        self.fixes.append({"at": t, "fault": incident.number, "kind": incident.fault.kind, "ended_fault": ended})
        self._push(t, _FRESH_BACKUP, "after fix")
