"""The WAL archiver: ``archive_command`` uploading closed segments one at a time, the faults
that block or silently corrupt its uploads, and what the archive holds as of any time (finding C4).

Why this module: C4's RPO claim stands or falls with what the archive holds on the day of the
disaster; the archiver is where a silently broken ``archive_command`` turns into holes, and the
archive views here are what every restore, verification and blame reads.

* *Archiver* (continuous, one segment at a time, in order): a segment's upload starts when it
  has closed and the previous one is done, and takes a draw of ``wal.upload_time``. An attempt
  starting while an ``archive_failure`` is active fails and is retried every
  ``wal.retry_interval`` (later segments wait in ``pg_wal``). An upload starting while a
  ``segment_corruption`` is active reports success, but with probability ``fraction`` the
  object is missing or corrupt (the fault's ``mode``).
* *Archive-lag alert* (``checks.archive_lag_alert``): due at ``closed + threshold`` for the first
  segment not archived within the threshold; re-armed once a segment is archived in time. The
  archiver stops at it and hands it to the checks (:class:`LagAlert`).
* *A lost primary*: segments closed but not archived by then (waiting, or mid-upload) are never
  archived -- they count as ``lost_with_primary``, and a replay stops there ("not archived
  before the disaster").

Random draws are indexed by segment, so the uploads do not depend on when the plane is read.
:class:`WalArchiver` is the second layer of :class:`~models.recovery.backups.BackupPlane`, on top
of the segmenter (:mod:`models.recovery.wal_segmenter`).
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, replace
from typing import Any

from models.logic.durability import Archive, ArchiveEntry, SegmentState
from models.recovery.commits import CommitLog
from models.recovery.config import DurabilityConfig
from models.recovery.faults import ArchiveFailure, SegmentCorruption
from models.recovery.incidents import Incident
from models.recovery.wal_segmenter import WalSegmenter
from sim.kernel import Kernel

__all__ = ["LagAlert", "WalArchiver"]

_OK, _MISSING, _CORRUPT, _LOST = 0, 1, 2, 3
"""Upload outcomes; ``_LOST``: never archived, the primary died with it in ``pg_wal`` (no archive
entry: views of the archive stop before it)."""
_STATES = (SegmentState.ARCHIVED, SegmentState.MISSING, SegmentState.CORRUPT)


@dataclass(frozen=True, slots=True)
class _Arch:
    """The archiver's state: the next segment to upload, when the previous one was done, and
    whether the lag alert is armed."""

    next: int
    free_at: float
    armed: bool


@dataclass(frozen=True, slots=True)
class _Uploaded:
    start: float
    done: float
    state: int
    attempts: int
    fault: int
    delayer: int


@dataclass(frozen=True, slots=True)
class LagAlert:
    """An archive-lag alert due at ``at`` for ``segment``, delayed by planned fault ``fault`` (-1: none)."""

    at: float
    segment: int
    fault: int


class WalArchiver(WalSegmenter):
    """The uploads decided so far (a prefix of the closed segments), the archiver's state, and
    views of the archive as of a time. :meth:`_flow` segments and archives up to a time."""

    def __init__(self, kernel: Kernel, config: DurabilityConfig, commits: CommitLog, incidents: list[Incident]) -> None:
        super().__init__(kernel, config, commits, incidents)
        self._R = config.wal.retry_interval
        self._failures = [i for i in incidents if isinstance(i.fault, ArchiveFailure)]
        self._corruptions = [i for i in incidents if isinstance(i.fault, SegmentCorruption)]
        # random draws, indexed by segment (uploads, corruption)
        self._upload = kernel.sampler(config.wal.upload_time, "durability/upload")
        self._uploads: list[float] = []
        self._uniform_rng = kernel.streams.stream("durability/corruption")
        self._uniforms: list[float] = []
        self._arch = _Arch(0, -math.inf, True)
        self._up: list[_Uploaded] = []
        self._done: list[float] = []  # the archiver works in order, so this is non-decreasing
        self._bad: list[int] = []  # indices of uploaded segments missing or corrupt, in order
        self._lost: list[int] = []  # indices of segments lost with a primary's pg_wal, in order
        self._max_lag = 0.0
        self._flow_to = 0.0

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
    ) -> tuple[_Arch, list[_Uploaded], LagAlert | None]:
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
                        return replace(st, next=i, free_at=free, armed=armed), out, LagAlert(c + threshold, i, delayer)
                    break
                if loss > horizon:
                    break
                out.append(_Uploaded(loss, loss, _LOST, attempts, -1, delayer))
                free = loss
                continue
            if blocked or s >= horizon:
                if armed and threshold is not None and c + threshold < horizon:
                    return replace(st, next=i, free_at=free, armed=armed), out, LagAlert(c + threshold, i, delayer)
                break
            done = s + self._draw_upload(i)
            if threshold is not None:
                if armed and done - c > threshold:
                    at = c + threshold
                    if at >= horizon:
                        break
                    return replace(st, next=i, free_at=free, armed=armed), out, LagAlert(at, i, delayer)
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

    def _flow(self, e: float) -> LagAlert | None:
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

    def _entry(self, i: int) -> ArchiveEntry:
        up = self._up[i]
        return ArchiveEntry(self._wal_segment(i), _STATES[up.state], up.done, up.attempts)

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

    # -- a lost primary and the summary --------------------------------------------------------
    def _take_back_uploads(self, at: float) -> None:
        """Uploads still running at a primary's loss at ``at`` die with it: take them back, the
        archiver re-decides them knowing the loss (they are lost)."""
        k = bisect.bisect_right(self._done, at)
        if k < len(self._up):
            del self._up[k:], self._done[k:]
            del self._bad[bisect.bisect_left(self._bad, k) :]
            del self._lost[bisect.bisect_left(self._lost, k) :]
            self._max_lag = max(
                (u.done - self._closed[i] for i, u in enumerate(self._up) if u.state != _LOST), default=0.0
            )
            self._arch = replace(self._arch, next=k, free_at=self._done[-1] if self._done else -math.inf)

    def _archive_summary(self, until: float) -> dict[str, Any]:
        """The ``archive`` part of the plane's summary, as of ``until`` (processed to it)."""
        uploaded = bisect.bisect_right(self._done, until)
        states = [u.state for u in self._up[:uploaded]]
        closed = bisect.bisect_right(self._closed, until)
        waiting = [until - self._closed[i] for i in range(uploaded, closed)]
        lags = [u.done - self._closed[i] for i, u in enumerate(self._up[:uploaded]) if u.state != _LOST]
        return {
            "segments": closed,
            "archived": states.count(_OK),
            "missing": states.count(_MISSING),
            "corrupt": states.count(_CORRUPT),
            "lost_with_primary": states.count(_LOST),
            "pending": closed - uploaded,
            "max_lag_s": max([0.0, *lags, *waiting]),
            "segment_bytes": self._S,
        }
