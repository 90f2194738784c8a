"""Durability arithmetic for disaster recovery (review finding C4): WAL archive, base backups,
restore, and the RPO/RTO they really give.

Why this module: the design review promises "RPO 1 h / RTO 4 h" from daily base backups plus
WAL archiving (and Redis RDB snapshots every 6 h), and finding C4 warns that a silently broken
``archive_command`` turns that RPO into "6 months". The promise is arithmetic over a few
mechanisms whose rules are fixed by PostgreSQL and Redis, so it is written here once, as plain
data and pure functions of simulated time (seconds, floats), for a simulation to drive and for
tests to check by hand. Nothing here reads a clock, draws a random number or imports simpy:
every fault (a failed or silently lost archive, a corrupt copy, a damaged backup) is an input.
The rules follow ``research/semantics.md`` section 5.4 (Redis) and 5.5 (PostgreSQL).

The pieces, in the order a disaster drill uses them:

1. :func:`wal_segments` cuts the WAL a :class:`WalWorkload` writes into fixed-size segments.
   A segment closes when it is full, when ``archive_timeout`` has passed since the last switch
   *and* WAL was written since (PostgreSQL's checkpointer, ``CheckArchiveTimeout``: on an idle
   server the timer restarts without a switch, "so we don't retry constantly"), or at a base
   backup's end (``pg_backup_stop`` writes a backup-end record and switches, so that switch
   happens even on an idle server). A forced switch still uses a whole segment's LSN space: the
   next segment starts at the next 16 MiB boundary.
2. :func:`archive_segments` runs the archiver over the closed segments, one at a time and in
   order, as PostgreSQL does: a failed ``archive_command`` (non-zero exit) is retried and blocks
   every later segment in ``pg_wal``; a broken command that exits 0 without copying marks the
   segment done although the archive lacks it; a copy may land corrupt. The result is an
   :class:`Archive`: the ordered record of what the archive holds, and since when.
3. :func:`plan_base_backups` and :func:`base_backup` model scheduled base backups, whose
   duration grows with database size; :func:`verify_backup` says what ``pg_verifybackup``
   would and would not catch.
4. :func:`restore` restores at a disaster time from the newest usable backup plus the archive,
   replaying WAL in order until the first segment it cannot fetch intact, and reports the
   recovered-to time, the RPO, and the RTO step by step. :func:`rows_lost` turns the RPO
   window into committed rows per table.
5. :func:`redis_loss_s` is the Redis side: how much is lost at a crash with RDB snapshots or
   with AOF ``appendfsync everysec``.

Assumptions, decided once here:

* The disaster destroys the primary with its ``pg_wal`` (a region loss, as in C4's failover to
  us-west-2): only the archive and the base backups survive. Segments still waiting in
  ``pg_wal`` at the disaster are lost, whatever the archiver would have done later.
* A base backup takes its WAL from the archive (``pg_basebackup -X none``, or the
  archive-based backups of pgBackRest / WAL-G), so the archive must hold the segments from its
  start LSN to its end LSN for the backup to be consistent at all -- unless it carries that WAL
  itself (:attr:`BaseBackup.wal`: ``pg_basebackup``'s default ``-X stream``). Such a backup is
  consistent whatever the archive holds; the archive only matters for replay past its end.
* Recovery runs to the end of the archive (no ``recovery_target``): the best RPO the archive
  allows. Replay stops at the first segment the ``restore_command`` cannot deliver intact;
  PostgreSQL then ends recovery there, so later segments never count even if they are intact.
* Failed restore attempts from a broken newer backup cost no time here: :func:`restore`
  reports the skipped backups and why, and a drill that wants the wasted hours adds them as a
  fixed step.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

__all__ = [
    "AOF_EVERYSEC_WORST_S",
    "DEFAULT_SEGMENT_BYTES",
    "MIB",
    "NOT_CHECKED",
    "AofEverysec",
    "Archive",
    "ArchiveEntry",
    "ArchiveOutcome",
    "ArchiverSettings",
    "BackupDamage",
    "BackupWindow",
    "BaseBackup",
    "RdbSnapshots",
    "RestoreResult",
    "RestoreSettings",
    "SegmentState",
    "Verification",
    "WalSegment",
    "WalWorkload",
    "archive_segments",
    "base_backup",
    "plan_base_backups",
    "redis_loss_s",
    "restore",
    "rows_lost",
    "scripted_outcomes",
    "verify_backup",
    "wal_segments",
]

MIB = 1024 * 1024
DEFAULT_SEGMENT_BYTES = 16 * MIB
"""PostgreSQL's default ``wal_segment_size``."""

AOF_EVERYSEC_WORST_S = 2.0
"""Redis ``appendfsync everysec``: the docs say "you may lose 1 second of data"; when a
background fsync is slow, Redis postpones writes for at most 2 s before writing anyway, so up
to about 2 s of acknowledged writes can be lost (semantics.md 5.4)."""


# --------------------------------------------------------------------------------------------
# WAL


@dataclass(frozen=True, slots=True)
class WalWorkload:
    """How fast the database writes WAL: a piecewise-constant rate, in bytes per second.

    ``steps`` holds ``(from_s, bytes_per_s)`` pairs in increasing time; each rate holds until
    the next step, the last one for ever. The workload starts at the first step's time.
    """

    steps: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        if not self.steps:
            raise ValueError("a workload needs at least one step")
        times = [when for when, _ in self.steps]
        if any(b <= a for a, b in itertools.pairwise(times)):
            raise ValueError("workload steps must be in strictly increasing time")
        if any(not math.isfinite(rate) or rate < 0 for _, rate in self.steps):
            raise ValueError("WAL rates must be finite and non-negative")

    @classmethod
    def constant(cls, bytes_per_s: float, start_s: float = 0.0) -> WalWorkload:
        """One rate for ever, from ``start_s``."""
        return cls(((start_s, bytes_per_s),))

    @property
    def start_s(self) -> float:
        """When the workload (and the first WAL segment) starts."""
        first, _ = self.steps[0]
        return first

    def _step(self, t: float) -> int:
        return max(0, bisect.bisect_right([when for when, _ in self.steps], t) - 1)

    def rate_at(self, t: float) -> float:
        """The WAL rate in force at ``t``."""
        _, rate = self.steps[self._step(t)]
        return rate

    def next_change(self, t: float) -> float:
        """The first rate change strictly after ``t`` (infinity when there is none)."""
        index = self._step(t) + 1
        if index < len(self.steps):
            when, _ = self.steps[index]
            return when if when > t else math.inf
        return math.inf

    def bytes_between(self, a: float, b: float) -> float:
        """WAL bytes written in ``[a, b]``."""
        total, t = 0.0, max(a, self.start_s)
        while t < b:
            end = min(b, self.next_change(t))
            total += self.rate_at(t) * (end - t)
            t = end
        return total


@dataclass(frozen=True, slots=True)
class WalSegment:
    """One closed WAL segment: the LSN range it holds and the time range its WAL was written in.

    ``start_lsn`` is ``index * segment_bytes``; ``end_lsn`` is where the written WAL ends. A
    forced switch leaves the rest of the segment unused (the file is still full size in the
    archive), so the next segment starts at the next boundary, not at ``end_lsn``.
    """

    index: int
    start_lsn: int
    end_lsn: int
    opened_at: float
    closed_at: float
    forced: bool
    """Closed by ``archive_timeout`` or an explicit switch rather than by filling up."""

    @property
    def wal_bytes(self) -> int:
        """The WAL written into the segment (what replay has to apply)."""
        return self.end_lsn - self.start_lsn


def wal_segments(
    workload: WalWorkload,
    until_s: float,
    *,
    segment_bytes: int = DEFAULT_SEGMENT_BYTES,
    archive_timeout_s: float = 60.0,
    switches: Iterable[float] = (),
) -> Iterator[WalSegment]:
    """The segments ``workload`` closes up to ``until_s``, in order (the open one is not given).

    Why a generator: months of WAL are millions of segments, and a simulation consumes them in
    order. ``archive_timeout_s`` of 0 disables the timeout (PostgreSQL's default). ``switches``
    are base backups' ends (``pg_backup_stop``): unlike the timeout, such a switch happens even
    when the segment holds no WAL yet, because ``pg_backup_stop`` first writes its backup-end
    record (counted as at least one byte), so the backup's last segment always closes; a switch
    at the very instant a segment closes anyway rides on that close. A switch restarts the
    timeout's clock.
    """
    if segment_bytes <= 0:
        raise ValueError("segment_bytes must be positive")
    if archive_timeout_s != 0 and not archive_timeout_s >= 1:
        # PostgreSQL's unit is whole seconds; a sub-second timeout would also stall the loop.
        raise ValueError("archive_timeout_s must be 0 (disabled) or at least 1 s")
    pending = sorted(s for s in switches if s > workload.start_s)
    next_switch = 0
    timeout = archive_timeout_s if archive_timeout_s > 0 else math.inf
    t = opened = workload.start_s
    deadline = t + timeout
    fill = 0.0
    index = 0
    while t < until_s:
        rate = workload.rate_at(t)
        t_full = t + (segment_bytes - fill) / rate if rate > 0 else math.inf
        switch_at = pending[next_switch] if next_switch < len(pending) else math.inf
        t_next = min(t_full, deadline, switch_at, workload.next_change(t), until_s)
        fill += rate * (t_next - t)
        t = t_next
        closing, forced = False, False
        if t >= t_full:
            fill, closing = float(segment_bytes), True
        elif t >= deadline and fill > 0:
            closing = forced = True
        while next_switch < len(pending) and pending[next_switch] <= t:
            next_switch += 1
            if not closing:  # the backup-end record: the segment holds WAL even on an idle server
                closing = forced = True
        if closing:
            start = index * segment_bytes
            written = min(segment_bytes, max(1, round(fill)))
            yield WalSegment(index, start, start + written, opened, t, forced)
            index, fill, opened = index + 1, 0.0, t
            deadline = t + timeout
        elif t >= deadline:
            deadline = t + timeout  # idle at the deadline: the timer restarts without a switch


# --------------------------------------------------------------------------------------------
# Archive


class ArchiveOutcome(Enum):
    """What one run of ``archive_command`` does with a segment."""

    OK = "ok"
    """Copied intact, exit 0: PostgreSQL marks the segment done and moves on."""
    RETRY = "retry"
    """Non-zero exit: the segment stays in ``pg_wal`` and is tried again; later ones wait."""
    SILENT_FAILURE = "silent_failure"
    """A broken command that logs an error (e.g. S3 permission denied) but exits 0: PostgreSQL
    marks the segment done, the archive does not have it (C4's scenario)."""
    CORRUPT = "corrupt"
    """Exit 0, but the archive holds a damaged copy (truncated upload, bit rot)."""


class SegmentState(Enum):
    """What the archive holds for a segment PostgreSQL considers archived."""

    ARCHIVED = "archived"
    MISSING = "missing"
    CORRUPT = "corrupt"


@dataclass(frozen=True, slots=True)
class ArchiverSettings:
    """How long ``archive_command`` takes and how PostgreSQL's archiver retries it.

    PostgreSQL's archiver tries a segment up to 3 times in a row, 1 s apart, then sleeps until
    its next wake-up (at most 60 s) and starts again; it never gives up and never skips ahead.
    """

    archive_s: float = 1.0
    """Duration of one ``archive_command`` run (e.g. an S3 upload of 16 MiB)."""
    retries_per_round: int = 3
    retry_sleep_s: float = 1.0
    round_wait_s: float = 60.0

    def __post_init__(self) -> None:
        if self.archive_s < 0 or self.retry_sleep_s < 0 or self.round_wait_s < 0 or self.retries_per_round < 1:
            raise ValueError("archiver durations must be non-negative and retries_per_round at least 1")


@dataclass(frozen=True, slots=True)
class ArchiveEntry:
    """A segment PostgreSQL considers archived, what the archive really holds, and since when."""

    segment: WalSegment
    state: SegmentState
    archived_at: float
    attempts: int

    @property
    def lag_s(self) -> float:
        """From the segment closing to it being marked done: the archiving lag."""
        return self.archived_at - self.segment.closed_at


@dataclass(frozen=True, slots=True)
class Archive:
    """The ordered record of the WAL archive (entries in segment order, no gaps in indices).

    Entries with ``archived_at`` after a given time did not exist yet at that time: use
    :meth:`as_of` to see the archive a restore at that time would find.
    """

    entries: tuple[ArchiveEntry, ...]

    def as_of(self, t: float) -> Archive:
        """The archive as it stood at ``t`` (the archiver works in order, so this is a prefix)."""
        done = [entry.archived_at for entry in self.entries]
        return Archive(self.entries[: bisect.bisect_right(done, t)])

    def get(self, index: int) -> ArchiveEntry | None:
        """The entry of segment ``index``, or ``None`` when the archive has no record of it."""
        if not self.entries:
            return None
        position = index - self.entries[0].segment.index
        return self.entries[position] if 0 <= position < len(self.entries) else None

    @property
    def max_lag_s(self) -> float:
        """The largest archiving lag in the record (0 when empty): C4's "< 1 minute" alert."""
        return max((entry.lag_s for entry in self.entries), default=0.0)


OutcomeOf = Callable[[int, int], ArchiveOutcome]
"""``outcome(segment_index, attempt)`` with attempts counted from 1."""


def scripted_outcomes(script: Mapping[int, Sequence[ArchiveOutcome]]) -> OutcomeOf:
    """Outcomes from a table: segment index -> outcome of attempt 1, 2, ... (the last repeats).

    Segments not in the table archive fine. A deterministic way for tests and scenarios to say
    "segment 7 is lost silently, segment 9 fails twice and then succeeds".
    """

    def outcome(index: int, attempt: int) -> ArchiveOutcome:
        plan = script.get(index)
        if not plan:
            return ArchiveOutcome.OK
        return plan[min(attempt, len(plan)) - 1]

    return outcome


def _all_ok(index: int, attempt: int) -> ArchiveOutcome:
    return ArchiveOutcome.OK


def archive_segments(
    segments: Iterable[WalSegment],
    until_s: float,
    *,
    settings: ArchiverSettings = ArchiverSettings(),  # frozen, so one shared default is safe
    outcome: OutcomeOf = _all_ok,
) -> Archive:
    """Run the archiver over ``segments`` (in order) until ``until_s``.

    Each segment starts archiving when it has closed and the previous one is done. A segment
    whose archiving has not finished by ``until_s`` is not in the record, nor is any later
    one: they are still in ``pg_wal`` (and die with the primary). A segment that keeps
    failing with :attr:`ArchiveOutcome.RETRY` therefore holds back the whole archive.
    """
    entries: list[ArchiveEntry] = []
    free_at = -math.inf
    for segment in segments:
        t = max(segment.closed_at, free_at)
        attempt = 0
        while True:
            attempt += 1
            if t + settings.archive_s > until_s:
                return Archive(tuple(entries))
            t += settings.archive_s
            result = outcome(segment.index, attempt)
            if result is not ArchiveOutcome.RETRY:
                break
            t += settings.retry_sleep_s if attempt % settings.retries_per_round else settings.round_wait_s
        state = {
            ArchiveOutcome.OK: SegmentState.ARCHIVED,
            ArchiveOutcome.SILENT_FAILURE: SegmentState.MISSING,
            ArchiveOutcome.CORRUPT: SegmentState.CORRUPT,
        }[result]
        entries.append(ArchiveEntry(segment, state, t, attempt))
        free_at = t
    return Archive(tuple(entries))


# --------------------------------------------------------------------------------------------
# Base backups


@dataclass(frozen=True, slots=True)
class BackupWindow:
    """When a scheduled base backup runs, and how big the database was when it started."""

    start_s: float
    end_s: float
    size_bytes: float


def plan_base_backups(
    first_s: float,
    every_s: float,
    until_s: float,
    *,
    size_at: Callable[[float], float],
    throughput_bytes_per_s: float,
) -> tuple[BackupWindow, ...]:
    """The base backups of a schedule (daily: ``every_s=86400``) that finish by ``until_s``.

    A backup copies the whole database, so it takes ``size / throughput``; ``size_at(t)`` is the
    database size when it starts. A slot that falls while the previous backup still runs is
    skipped (cron plus the backup tool's lock: one backup at a time), so a backup that outgrows
    the period silently halves the schedule. The end times are the explicit WAL switches to
    pass to :func:`wal_segments` (``pg_backup_stop`` switches segment).
    """
    if every_s <= 0 or throughput_bytes_per_s <= 0:
        raise ValueError("every_s and throughput_bytes_per_s must be positive")
    windows: list[BackupWindow] = []
    k = 0
    while True:
        start = first_s + k * every_s
        size = size_at(start)
        end = start + size / throughput_bytes_per_s
        if end > until_s:
            return tuple(windows)
        windows.append(BackupWindow(start, end, size))
        k = max(k + 1, math.ceil((end - first_s) / every_s))


@dataclass(frozen=True, slots=True)
class BackupDamage:
    """What is wrong with a base backup, as data (an intact backup has all defaults).

    ``logical_corruption`` is damage the backup faithfully copied (a bad page written by the
    server, a bug's wrong rows): the manifest's checksums agree with it.
    """

    manifest_corrupt: bool = False
    missing_files: tuple[str, ...] = ()
    corrupt_files: tuple[str, ...] = ()
    logical_corruption: bool = False

    @property
    def physically_intact(self) -> bool:
        """Whether the files are all there and match the manifest."""
        return not (self.manifest_corrupt or self.missing_files or self.corrupt_files)


@dataclass(frozen=True, slots=True)
class BaseBackup:
    """A finished base backup and the WAL it needs to be consistent.

    ``wal`` is the WAL the backup carries in its own ``pg_wal`` (``pg_basebackup -X stream``,
    its default): the segments ``first_segment..last_segment``. Empty, the backup takes that WAL
    from the archive (``-X none``, and the archive-based backups of pgBackRest and WAL-G).
    """

    label: str
    start_s: float
    end_s: float
    size_bytes: float
    start_lsn: int
    end_lsn: int
    first_segment: int
    last_segment: int
    damage: BackupDamage = field(default_factory=BackupDamage)
    wal: tuple[WalSegment, ...] = ()

    @property
    def self_contained(self) -> bool:
        """Whether the backup carries the WAL it needs to be consistent (``-X stream``)."""
        return bool(self.wal)


def _locate(segments: Sequence[WalSegment], workload: WalWorkload, t: float, segment_bytes: int) -> tuple[int, int]:
    """The segment index and LSN of the WAL insert position at ``t``."""
    closes = [segment.closed_at for segment in segments]
    position = bisect.bisect_left(closes, t)
    if position < len(segments):
        segment = segments[position]
        written = round(workload.bytes_between(segment.opened_at, t))
        return segment.index, min(segment.end_lsn, segment.start_lsn + written)
    index = segments[-1].index + 1 if segments else 0  # the segment still open at t
    opened = segments[-1].closed_at if segments else workload.start_s
    written = min(segment_bytes, round(workload.bytes_between(opened, t)))
    return index, index * segment_bytes + written


def base_backup(
    label: str,
    window: BackupWindow,
    segments: Sequence[WalSegment],
    workload: WalWorkload,
    damage: BackupDamage | None = None,
    *,
    segment_bytes: int = DEFAULT_SEGMENT_BYTES,
    stream: bool = False,
) -> BaseBackup:
    """The backup taken in ``window``, with the WAL range it needs read off ``segments``.

    ``segments`` should be the output of :func:`wal_segments` with the backup's end among the
    switches, so the last segment it needs is closed when the backup ends. With ``stream``
    the backup carries those segments itself (``pg_basebackup -X stream``).
    """
    first, start_lsn = _locate(segments, workload, window.start_s, segment_bytes)
    last, end_lsn = _locate(segments, workload, window.end_s, segment_bytes)
    return BaseBackup(
        label,
        window.start_s,
        window.end_s,
        window.size_bytes,
        start_lsn,
        end_lsn,
        first,
        last,
        damage or BackupDamage(),
        tuple(s for s in segments if first <= s.index <= last) if stream else (),
    )


@dataclass(frozen=True, slots=True)
class Verification:
    """A ``pg_verifybackup`` verdict: ``ok`` when no problem was found.

    ``problems`` are what it caught; ``not_checked`` are what it cannot catch, listed every
    time because a passing verification is no proof of a working restore (the docs: "test
    restores are still required").
    """

    ok: bool
    problems: tuple[str, ...]
    not_checked: tuple[str, ...]


NOT_CHECKED = (
    "WAL needed after the backup's end (PITR beyond its end LSN is not verified)",
    "logical corruption the manifest agrees with (only a test restore with queries finds it)",
)
"""What ``pg_verifybackup`` cannot vouch for, whatever its verdict (C4: test restores too)."""


def verify_backup(backup: BaseBackup, archive: Archive, *, parse_wal: bool = True) -> Verification:
    """Check ``backup`` as ``pg_verifybackup`` does, in its four stages, against ``archive``.

    1. the manifest's own checksum: a failure is fatal, nothing else is checked;
    2. every file in the manifest is present (missing files);
    3. every file's checksum matches (corrupt files);
    4. with ``parse_wal`` (no ``--no-parse-wal``), the WAL from the backup's start LSN to its
       end LSN parses: for a backup taken with ``-X stream``, the segments in its own
       ``pg_wal`` (the archive is never looked at); otherwise every segment in
       ``first_segment..last_segment`` is in the archive intact (pointing ``--wal-directory``
       at the archive's copy).

    It cannot see WAL the backup does not need (a segment lost after the backup's end breaks
    PITR but not this verdict) nor damage the backup faithfully copied; a self-contained
    backup's verdict says nothing about the archive at all.
    """
    damage = backup.damage
    if damage.manifest_corrupt:
        return Verification(False, ("backup_manifest checksum mismatch (fatal)",), NOT_CHECKED)
    problems = [f"missing file {name}" for name in damage.missing_files]
    problems += [f"checksum mismatch in {name}" for name in damage.corrupt_files]
    if parse_wal and backup.self_contained:
        carried = {segment.index for segment in backup.wal}
        problems += [
            f"WAL segment {index} not in the backup's pg_wal"
            for index in range(backup.first_segment, backup.last_segment + 1)
            if index not in carried
        ]
    elif parse_wal:
        for index in range(backup.first_segment, backup.last_segment + 1):
            entry = archive.get(index)
            if entry is None:
                problems.append(f"WAL segment {index} not in the archive")
            elif entry.state is not SegmentState.ARCHIVED:
                problems.append(f"WAL segment {index} {entry.state.value} in the archive")
    return Verification(not problems, tuple(problems), NOT_CHECKED)


# --------------------------------------------------------------------------------------------
# Restore


@dataclass(frozen=True, slots=True)
class RestoreSettings:
    """How fast a restore runs, and the fixed steps around it (provisioning, promotion, DNS)."""

    copy_bytes_per_s: float = 200e6
    """Copying the base backup onto the new server (e.g. from S3)."""
    replay_bytes_per_s: float = 50e6
    """WAL replay speed (single-threaded startup process)."""
    fetch_s_per_segment: float = 0.0
    """``restore_command`` latency per segment (fetched one at a time)."""
    fixed_steps: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        if self.copy_bytes_per_s <= 0 or self.replay_bytes_per_s <= 0 or self.fetch_s_per_segment < 0:
            raise ValueError("restore throughputs must be positive and fetch time non-negative")


@dataclass(frozen=True, slots=True)
class RestoreResult:
    """The outcome of a restore at ``disaster_s``.

    ``recovered_to_s`` is the time the restored data is as of (``None`` when no backup was
    usable: everything is lost, and ``rpo_s`` and ``rto_s`` are infinite). ``steps`` is the time
    spent in each step, in order; ``rto_s`` is their sum.
    """

    disaster_s: float
    backup: BaseBackup | None
    recovered_to_s: float | None
    rpo_s: float
    rto_s: float
    steps: tuple[tuple[str, float], ...]
    replayed_segments: int
    stopped_at_segment: int | None
    """The first segment recovery did not replay (``None``: no backup was usable)."""
    stop_reason: str
    """Why replay stopped there: missing or corrupt in the archive, or never archived (still
    in the lost ``pg_wal``, or the segment that was open at the disaster)."""
    skipped_backups: tuple[tuple[str, str], ...]
    """Newer backups passed over: ``(label, why)``."""


def _unusable(backup: BaseBackup, archive: Archive) -> str | None:
    if not backup.damage.physically_intact:
        return "backup files missing or corrupt"
    if backup.self_contained:
        return None  # its own pg_wal makes it consistent, whatever the archive holds
    for index in range(backup.first_segment, backup.last_segment + 1):
        entry = archive.get(index)
        if entry is None or entry.state is not SegmentState.ARCHIVED:
            return f"WAL segment {index} needed for consistency not intact in the archive"
    return None


def restore(
    disaster_s: float,
    backups: Sequence[BaseBackup],
    archive: Archive,
    settings: RestoreSettings = RestoreSettings(),  # frozen, so one shared default is safe
) -> RestoreResult:
    """Restore at ``disaster_s`` from the newest usable backup plus the archive as it stood then.

    A backup is usable when it finished by ``disaster_s``, its files are intact, and it has
    its own WAL intact: in the archive, or in the backup itself (:attr:`BaseBackup.wal`; else
    recovery never reaches a consistent state). Replay applies the backup's own segments (no
    fetch: they are local; PostgreSQL falls back to ``pg_wal`` when ``restore_command`` cannot
    deliver one), then archived segments in order, and stops at the first segment missing,
    corrupt or not yet archived. The data is as of the last replayed segment's close; RPO is
    the rest of the time to the disaster. RTO is the fixed steps plus copying the backup plus
    fetching (archived segments only) and replaying the WAL.
    """
    available = archive.as_of(disaster_s)
    skipped: list[tuple[str, str]] = []
    chosen: BaseBackup | None = None
    for backup in sorted((b for b in backups if b.end_s <= disaster_s), key=lambda b: b.end_s, reverse=True):
        reason = _unusable(backup, available)
        if reason is None:
            chosen = backup
            break
        skipped.append((backup.label, reason))
    fixed = tuple(settings.fixed_steps)
    if chosen is None:
        return RestoreResult(
            disaster_s, None, None, math.inf, math.inf, fixed, 0, None, "no usable base backup", tuple(skipped)
        )
    index, replay_bytes, recovered_to, fetched = chosen.first_segment, 0, chosen.end_s, 0
    for segment in chosen.wal:  # carried by the backup (-X stream)
        replay_bytes += segment.end_lsn - max(segment.start_lsn, min(chosen.start_lsn, segment.end_lsn))
        recovered_to = max(recovered_to, segment.closed_at)
        index = segment.index + 1
    while True:
        entry = available.get(index)
        if entry is None:
            reason = f"segment {index} not archived before the disaster"
            break
        if entry.state is not SegmentState.ARCHIVED:
            reason = f"segment {index} {entry.state.value} in the archive"
            break
        segment = entry.segment
        replay_bytes += segment.end_lsn - max(segment.start_lsn, min(chosen.start_lsn, segment.end_lsn))
        recovered_to = max(recovered_to, segment.closed_at)
        index += 1
        fetched += 1
    replayed = index - chosen.first_segment
    steps = (
        *fixed,
        ("copy base backup", chosen.size_bytes / settings.copy_bytes_per_s),
        ("fetch WAL", fetched * settings.fetch_s_per_segment),
        ("replay WAL", replay_bytes / settings.replay_bytes_per_s),
    )
    rto = math.fsum(seconds for _, seconds in steps)
    return RestoreResult(
        disaster_s,
        chosen,
        recovered_to,
        disaster_s - recovered_to,
        rto,
        steps,
        replayed,
        index,
        reason,
        tuple(skipped),
    )


def rows_lost(
    commits: Mapping[str, Iterable[tuple[float, int]]], recovered_to_s: float | None, disaster_s: float
) -> dict[str, int]:
    """Committed rows per table that the restore lost: commits after ``recovered_to_s`` and up
    to ``disaster_s``. ``commits`` maps a table to ``(commit_time, rows)`` pairs; with no
    usable backup (``recovered_to_s`` of ``None``) every commit up to the disaster is lost.
    """
    floor = -math.inf if recovered_to_s is None else recovered_to_s
    return {
        table: sum(count for when, count in timeline if floor < when <= disaster_s)
        for table, timeline in commits.items()
    }


# --------------------------------------------------------------------------------------------
# Redis


@dataclass(frozen=True, slots=True)
class RdbSnapshots:
    """RDB snapshots every ``every_s`` from ``first_s`` (the review: every 6 h).

    A snapshot holds the data as of its fork (its start); it only counts once written
    (``duration_s`` later). Loss at a crash: everything since the last completed snapshot began.
    """

    every_s: float
    first_s: float = 0.0
    duration_s: float = 0.0


@dataclass(frozen=True, slots=True)
class AofEverysec:
    """AOF with ``appendfsync everysec``: an fsync each second, at ``phase_s`` past the second.

    ``fsync_stall_s`` is how late the last background fsync is (a slow disk); Redis writes
    anyway after 2 s, so the loss is capped at :data:`AOF_EVERYSEC_WORST_S`.
    """

    phase_s: float = 0.0
    fsync_stall_s: float = 0.0


def redis_loss_s(crash_s: float, persistence: RdbSnapshots | AofEverysec, *, data_since_s: float = 0.0) -> float:
    """Seconds of writes lost when Redis crashes at ``crash_s`` (no replica promoted).

    RDB: from the start of the last snapshot completed by the crash (or ``data_since_s`` when
    none has completed) to the crash, so up to ``every_s + duration_s``. AOF everysec: the time
    since the last fsync, below 1 s normally and at most 2 s with a stalled fsync.
    """
    if isinstance(persistence, RdbSnapshots):
        if persistence.every_s <= 0:
            raise ValueError("every_s must be positive")
        completed = math.floor((crash_s - persistence.first_s - persistence.duration_s) / persistence.every_s)
        if completed < 0:
            return max(0.0, crash_s - data_since_s)
        return crash_s - (persistence.first_s + completed * persistence.every_s)
    since_fsync = (crash_s - persistence.phase_s) % 1.0
    return min(since_fsync + persistence.fsync_stall_s, AOF_EVERYSEC_WORST_S)
