"""Scheduled base backups: the jobs, what a ``backup_failure`` does to them, retention, the
backup-size alert and ``pg_verifybackup`` (finding C4).

Why this module: the review's "daily backups" are only as good as the newest backup that is
both kept and consistent on the day of the disaster; this is where backups are taken, fail,
expire and get verified.

* *Jobs*: at ``backups.first_at + k * every`` (a slot is skipped while a backup runs), and at
  once after each fix. A backup copies the database (``initial_size`` plus every row written so
  far, less what recoveries from primary losses did not bring back) at ``throughput``.
  ``backup_failure`` active at its start: ``failed`` (no backup) or ``truncated`` (reported
  fine, files missing, :data:`TRUNCATED_SHARE` of the size). ``backups.wal``: ``archive``
  (pgBackRest / WAL-G style) takes the backup's own WAL from the archive; ``stream``
  (``pg_basebackup -X stream``) carries it in the backup
  (:attr:`~models.logic.durability.BaseBackup.wal`), so a broken archive does not make the
  backup unusable, only its replay past the end short. A job while the primary is down fails at
  once; a job running when the primary is lost fails (``interrupted``).
* *Retention* runs at the end of each job that reports success (``ok`` or ``truncated``; a
  ``failed`` job expires nothing, so forty days of failed jobs keep the last good backups, as
  pgBackRest expires only after a successful backup): the backups that ended more than
  ``retention`` ago are deleted, except the newest of them (it restores to the window's start,
  as pgBackRest's time-based retention keeps it). The backup just taken is never deleted, so
  the newest backup that reported success always survives.
* *Backup-size alert*: compares the size with the mean of the last :data:`SIZE_WINDOW_S`'
  backups (those that raised it themselves left out; a failed job counts as size 0, so the
  alert catches it too; a job that found the primary down is not compared).
* *pg_verifybackup* (``checks.verify_backups``): ``checks.verify_after`` after each backup's
  end, against the archive as it then is (:func:`~models.logic.durability.verify_backup`).

:class:`BaseBackupJobs` is the third layer of :class:`~models.recovery.backups.BackupPlane`, on
top of the WAL archiver; the plane's event queue (``_push``) and the alerts (``_alert``, in
:mod:`models.recovery.checks`) are the layers above it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from models.logic.durability import Archive, BackupDamage, BaseBackup, verify_backup
from models.recovery.commits import CommitLog
from models.recovery.config import DurabilityConfig
from models.recovery.faults import BackupFailure
from models.recovery.incidents import Incident
from models.recovery.plane_events import BACKUP_END, VERIFY
from models.recovery.wal_archiver import WalArchiver
from sim.kernel import Kernel

__all__ = ["SIZE_WINDOW_S", "TRUNCATED_SHARE", "BackupRecord", "BaseBackupJobs"]

SIZE_WINDOW_S = 7 * 86400.0
"""The backup-size alert compares a backup with the mean of the backups of this window."""
TRUNCATED_SHARE = 0.5
"""A truncated backup (``backup_failure`` mode ``truncated``) holds this share of the files."""
_INTERRUPTED = ("interrupted: the primary was lost during the backup",)
_PRIMARY_DOWN = ("not run: the primary is down",)


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


class BaseBackupJobs(WalArchiver):
    """Every base backup job so far (:attr:`backups`), the one running, and a fresh backup
    waiting for it. Jobs start from the plane's events and end, expire and get verified here."""

    def __init__(self, kernel: Kernel, config: DurabilityConfig, commits: CommitLog, incidents: list[Incident]) -> None:
        super().__init__(kernel, config, commits, incidents)
        self._backup_faults = [i for i in incidents if isinstance(i.fault, BackupFailure)]
        self.backups: list[BackupRecord] = []
        self._running: BackupRecord | None = None
        self._fresh_wanted: str | None = None  # a fresh backup's reason, waiting for the running one
        self.skipped_slots = 0

    # -- provided by the layers above -----------------------------------------------------------
    def _push(self, when: float, kind: int, payload: object) -> None:
        """Schedule a plane event (the plane's queue)."""
        raise NotImplementedError

    def _alert(self, t: float, check: str, fault: int | None, detail: str) -> None:
        """Raise an alert (the checks)."""
        raise NotImplementedError

    # -- jobs -----------------------------------------------------------------------------------
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
            self._push(t, BACKUP_END, record)
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
        self._add_switch(end)
        self._push(end, BACKUP_END, record)

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
            self._push(t + self.config.checks.verify_after, VERIFY, record)
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

    def _interrupt_running(self, at: float) -> None:
        """The primary was lost at ``at``: a backup still running fails, and no fresh backup
        waits for it (the new primary's first backup replaces it)."""
        running = self._running
        if running is not None and running.end_s > at:
            self._drop_switch(running.end_s)
            running.status, running.end_s, running.base, running.size_bytes = "failed", at, None, 0.0
            running.problems = _INTERRUPTED
            self._running = None
        self._fresh_wanted = None  # the new primary's first backup replaces it

    def _backups_summary(self, until: float) -> dict[str, Any]:
        """The ``backups`` part of the plane's summary, as of ``until`` (processed to it)."""
        done = [b for b in self.backups if b.end_s <= until]
        kept = [b for b in done if b.base is not None and (b.deleted_at is None or b.deleted_at > until)]
        return {
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
        }
