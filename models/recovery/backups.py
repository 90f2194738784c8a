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
twin runs, so the plane can only process up to the last whole
:data:`~models.recovery.wal_segmenter.DETAIL_CELL_S` cell before the kernel's clock. Nothing
here schedules simpy events: :meth:`BackupPlane.advance`
processes everything up to a time, lazily and in bulk, and every reader (``restore``,
``summary``) calls it first. It is monotone and split-invariant: advancing to ``t1`` and then to
``t2`` gives exactly what advancing straight to ``t2`` gives (closes within a constant-rate
piece are computed from the piece's start, random draws are indexed by segment or taken in
event order), so reading mid-run changes nothing.

**What happens when.** Processing goes from one plane event to the next, in time order (ties:
backup end, verification, fix, backup start, WAL check, restore test, full restore, DR drill,
staleness check). Each mechanism lives in its own module:

* *WAL* and its segments, and the primary losses: :mod:`models.recovery.wal_segmenter`;
* the *archiver* and the archive-lag alert: :mod:`models.recovery.wal_archiver`;
* *base backups*, retention, the backup-size alert and ``pg_verifybackup``:
  :mod:`models.recovery.base_backups`;
* the WAL checksum check, *restore tests*, full restores, *DR drills*, the staleness alert,
  every alert and its *fix*: :mod:`models.recovery.checks`;
* the planned faults as they played out: :mod:`models.recovery.incidents`; the event kinds and
  their order: :mod:`models.recovery.plane_events`.

The plane is built as layers, each on top of the one before (segmenter, archiver, base
backups, checks); this module adds the event queue that drives them, the public API, and what
a lost primary does to all of them.

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

import heapq
import math
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from models.logic.durability import Archive, RestoreResult
from models.recovery.base_backups import BackupRecord
from models.recovery.checks import BackupChecks
from models.recovery.commits import CommitLog
from models.recovery.config import DurabilityConfig
from models.recovery.faults import ARCHIVE, BACKUPS, PlannedFault
from models.recovery.incidents import Incident
from models.recovery.plane_events import (
    BACKUP_END,
    BACKUP_START,
    DRILL,
    FIX,
    FRESH_BACKUP,
    FULL_RESTORE,
    RESTORE_TEST,
    STALE,
    VERIFY,
    WAL_CHECK,
)
from models.recovery.wal_segmenter import DETAIL_CELL_S, PrimaryLoss
from sim.kernel import Kernel

__all__ = ["BackupPlane"]

_DAY = 86400.0


class BackupPlane(BackupChecks):
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
        planned = [f for f in faults if isinstance(f, PlannedFault) and f.target in (ARCHIVE, BACKUPS)]
        super().__init__(kernel, config, commits, [Incident(n, f, f.until) for n, f in enumerate(planned)])
        self.horizon = horizon
        self._events: list[tuple[float, int, int, object]] = []
        self._seq = 0
        self._processed = 0.0
        self._push(config.backups.first_at, BACKUP_START, None)
        checks = config.checks
        for kind, every in (
            (WAL_CHECK, checks.wal_checksums),
            (RESTORE_TEST, checks.restore_test_every),
            (FULL_RESTORE, checks.full_restore_every),
            (DRILL, checks.dr_drill_every),
            (STALE, _DAY if checks.restore_test_alert is not None else None),
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
        self._take_back_uploads(at)
        self.advance(at)
        self._interrupt_running(at)
        if back_at is not None:
            self._push(back_at, FRESH_BACKUP, "after recovery")

    def archive_as_of(self, t: float, first: int = 0, last: int | None = None) -> Archive:
        """The archive record as it stood at ``t``, for segments ``first..last`` (default: all),
        up to the first segment lost with a primary (an :class:`Archive` has no gaps)."""
        self.advance(t)
        return self._archive_slice(t, first, len(self._up) if last is None else last)

    def summary(self, until: float) -> dict[str, Any]:
        """Plain data for the result: backups, archive, alerts, restore tests, drills, fixes,
        faults as they played out (advances the plane to ``until`` first)."""
        until = self.advance(until)
        return {
            "processed_to_s": until,
            "backups": self._backups_summary(until),
            "archive": self._archive_summary(until),
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

    # -- events ---------------------------------------------------------------------------------
    def _push(self, when: float, kind: int, payload: object) -> None:
        if when <= self.horizon:
            heapq.heappush(self._events, (when, kind, self._seq, payload))
            self._seq += 1

    def _handle(self, t: float, kind: int, payload: object) -> None:
        if kind == BACKUP_START:
            self._push(t + self.config.backups.every, BACKUP_START, None)
            if self._running is not None:
                self.skipped_slots += 1
            else:
                self._start_backup(t, "scheduled")
        elif kind == FRESH_BACKUP:
            assert isinstance(payload, str)
            if self._running is not None:
                self._fresh_wanted = payload
            else:
                self._start_backup(t, payload)
        elif kind == BACKUP_END:
            assert isinstance(payload, BackupRecord)
            if payload is self._running:  # else a primary's loss interrupted it
                self._end_backup(t, payload)
        elif kind == VERIFY:
            assert isinstance(payload, BackupRecord)
            self._verify(t, payload)
        elif kind == FIX:
            assert isinstance(payload, Incident)
            self._fix(t, payload)
        else:
            assert isinstance(payload, float)
            self._push(t + payload, kind, payload)
            if kind == WAL_CHECK:
                self._wal_check(t)
            elif kind == STALE:
                self._stale_check(t)
            else:
                self._restore_test(t, kind)
