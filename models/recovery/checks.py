"""The checks that may (or may not) notice a broken archive, and what an alert sets in motion:
restore tests and drills, the WAL checksum and staleness checks, alerts, and their fixes
(finding C4).

Why this module: the question of C4 is not only what the archive holds but *when anyone finds
out*; every check here reads the archive and the backups as they stood at its time, and every
alert records the fault it caught (or none: a false alarm) and the detection delay from that
fault's start.

* *WAL checksum check* (``checks.wal_checksums``): every period, lists what was archived since
  the last check and finds missing and corrupt objects; blind to uploads that never happened.
* *Restore tests* (weekly), *full restores* (monthly, timed) and *DR drills* (quarterly, timed,
  into the DR region): restore the newest backup and replay the archive as of then
  (:meth:`BackupChecks._restore_at`); a test fails when no backup is usable, replay stops at a
  missing or corrupt segment, or the data is older than ``checks.restore_test_max_rpo``.
* *Staleness alert* (``checks.restore_test_alert``): checked daily; once per stale spell.
* *Archive-lag alert*: raised when the archiver hands one over
  (:class:`~models.recovery.wal_archiver.LagAlert`).
* *Respond*: every alert that catches a planned fault not yet being fixed schedules a fix
  ``checks.respond`` later: the fault ends then if it has no ``for`` (one with ``for`` ends on its
  own), and a fresh base backup starts at once (after the running one, if any).

:class:`BackupChecks` is the fourth layer of :class:`~models.recovery.backups.BackupPlane`, on
top of the base backups; the plane's event queue (``_push``) is the layer above it.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import replace
from typing import Any

from models.logic.durability import Archive, BaseBackup, RestoreResult, RestoreSettings
from models.logic.durability import restore as restore_from
from models.recovery.base_backups import BaseBackupJobs
from models.recovery.commits import CommitLog
from models.recovery.config import DurabilityConfig
from models.recovery.incidents import Incident
from models.recovery.plane_events import DRILL, FIX, FRESH_BACKUP, PERIODIC_NAMES, RESTORE_TEST
from models.recovery.wal_archiver import LagAlert
from sim.kernel import Kernel

__all__ = ["BackupChecks"]


class BackupChecks(BaseBackupJobs):
    """The alerts, restore tests, drills and fixes so far (:attr:`alerts`, :attr:`restore_tests`,
    :attr:`drills`, :attr:`fixes`), and restores as of any time."""

    def __init__(self, kernel: Kernel, config: DurabilityConfig, commits: CommitLog, incidents: list[Incident]) -> None:
        super().__init__(kernel, config, commits, incidents)
        self._settings = RestoreSettings(
            copy_bytes_per_s=config.restore.copy_rate,
            replay_bytes_per_s=config.restore.replay_rate,
            fetch_s_per_segment=config.restore.fetch_time,
        )
        # random draws taken in event order
        self._respond = kernel.sampler(config.checks.respond, "durability/respond")
        self.alerts: list[dict[str, Any]] = []
        self.restore_tests: list[dict[str, Any]] = []
        self.drills: list[dict[str, Any]] = []
        self.fixes: list[dict[str, Any]] = []
        self._checked_to = 0.0
        self._last_ok_test = 0.0
        self._stale_alerted = False

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
        name = PERIODIC_NAMES[kind]
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
        if kind != RESTORE_TEST:
            record["duration_s"] = None if math.isinf(result.rto_s) else result.rto_s
        (self.drills if kind == DRILL else self.restore_tests).append(record)
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

    def _lag_alert(self, lag: LagAlert) -> None:
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
            self._push(incident.fix_at, FIX, incident)

    def _fix(self, t: float, incident: Incident) -> None:
        ended = incident.end is None
        if ended:
            incident.end = t
        self.fixes.append({"at": t, "fault": incident.number, "kind": incident.fault.kind, "ended_fault": ended})
        self._push(t, FRESH_BACKUP, "after fix")
