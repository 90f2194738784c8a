"""Tests of models.recovery.backups: the backup plane over long horizons (finding C4).

Most tests use a hand-workable world: 1,000 WAL bytes per second before ``detail_from``
(10 readings/s of 100 bytes), ``archive_timeout`` 60 s, so a forced switch every 60 s with
60,000 bytes (segment i closes at 60 * (i + 1)), uploads of exactly 1 s, and small backups.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest

from models.logic.durability import SegmentState, WalWorkload, wal_segments
from models.recovery.backups import BackupPlane
from models.recovery.base_backups import TRUNCATED_SHARE
from models.recovery.commits import CommitLog
from models.recovery.config import DurabilityConfig, Flow, Table
from models.recovery.faults import ArchiveFailure, BackupFailure, SegmentCorruption
from sim.kernel import Kernel

DAY = 86400.0
HOUR = 3600.0
WAL_PER_ROW = {"readings": 100.0, "device_commands": 100.0, "users": 100.0}


def config(detail_from: float, **sections: Any) -> DurabilityConfig:
    spec: dict[str, Any] = {
        "detail_from": detail_from,
        "flows": {"readings": {"rows_per_s": 10.0}, "users": {"rows_per_s": 0.0}},
        "wal": {"archive_timeout": "60s", "upload_time": "1s", "retry_interval": "60s"},
        "backups": {"initial_size": 1e9, "throughput": 1e7, "first_at": "3h"},
        "checks": {"respond": "4h"},
    }
    for name, value in sections.items():
        spec[name] = {**spec.get(name, {}), **value}
    return DurabilityConfig.model_validate(spec)


def flows(cfg: DurabilityConfig) -> dict[Table, Flow]:
    return dict(cfg.flows.items())


def plane(
    days: float, faults: list[object] | None = None, seed: int = 7, horizon: float | None = None, **sections: Any
) -> BackupPlane:
    cfg = config(days * DAY, **sections)
    commits = CommitLog(flows(cfg), WAL_PER_ROW, detail_from=cfg.detail_from)
    kernel = Kernel(seed, start=cfg.detail_from)
    return BackupPlane(kernel, cfg, commits, faults or [], horizon if horizon is not None else days * DAY)


def corruption(at: float, duration: float | None = None, **extra: Any) -> SegmentCorruption:
    spec: dict[str, Any] = {"kind": "segment_corruption", "target": "wal-archive", "at": at, **extra}
    if duration is not None:
        spec["for"] = duration
    return SegmentCorruption.model_validate(spec)


def failure(at: float, duration: float | None = None) -> ArchiveFailure:
    spec: dict[str, Any] = {"kind": "archive_failure", "target": "wal-archive", "at": at}
    if duration is not None:
        spec["for"] = duration
    return ArchiveFailure.model_validate(spec)


# --------------------------------------------------------------------------------------------
# WAL and archive


def test_segments_match_the_pure_rule_including_backup_switches() -> None:
    p = plane(3.0)
    p.advance(3 * DAY)
    switches = [b.end_s for b in p.backups]
    assert switches == pytest.approx([3 * HOUR + 101.08, DAY + 3 * HOUR + 109.72, 2 * DAY + 3 * HOUR + 118.36])
    reference = list(wal_segments(WalWorkload.constant(1000.0), 3 * DAY, archive_timeout_s=60.0, switches=switches))
    archive = p.archive_as_of(3 * DAY)
    mine = [entry.segment for entry in archive.entries]
    assert len(reference) - 1 <= len(mine) <= len(reference)  # the last one may still be uploading
    for got, want in zip(mine, reference, strict=False):
        assert got.index == want.index
        assert got.closed_at == pytest.approx(want.closed_at, abs=1e-6)
        assert got.opened_at == pytest.approx(want.opened_at, abs=1e-6)
        assert got.end_lsn == want.end_lsn
        assert got.forced == want.forced
    # hand-worked: the first backup ends at 3h + 101.08 s, 41.08 s after the timeout's switch at 3h + 60 s
    by_index = {s.index: s for s in mine}
    assert by_index[0].closed_at == 60.0 and by_index[0].wal_bytes == 60_000
    switched = next(s for s in mine if s.closed_at == pytest.approx(3 * HOUR + 101.08))
    assert switched.wal_bytes == 41_080 and switched.forced


def test_a_healthy_archive_lags_by_one_upload() -> None:
    p = plane(1.0)
    summary = p.summary(DAY)
    assert summary["archive"]["missing"] == summary["archive"]["corrupt"] == 0
    assert summary["archive"]["max_lag_s"] == pytest.approx(1.0)
    entry = p.archive_as_of(DAY).get(0)
    assert entry is not None and entry.archived_at == 61.0 and entry.state is SegmentState.ARCHIVED


def test_restore_stops_at_a_missing_segment() -> None:
    # Segments uploaded in [5h, 5h + 90 s) go missing: the uploads starting at 5h + 0..59 s.
    # Backup at 3h; a restore at 6h replays from it up to the first hole.
    p = plane(0.5, [corruption(5 * HOUR, 90.0)])
    result = p.restore(6 * HOUR)
    assert result.backup is not None and result.backup.label == "base-0001"
    hole = p.archive_as_of(6 * HOUR).entries
    missing = [e.segment.index for e in hole if e.state is SegmentState.MISSING]
    assert missing  # the segments whose upload started in the window
    first = missing[0]
    assert result.stopped_at_segment == first
    assert "missing in the archive" in result.stop_reason
    before = next(e for e in hole if e.segment.index == first - 1)
    assert result.recovered_to_s == before.segment.closed_at
    assert result.rpo_s == pytest.approx(6 * HOUR - before.segment.closed_at)
    assert [name for name, _ in result.steps] == ["copy base backup", "fetch WAL", "replay WAL"]


def test_a_restore_with_every_segment_missing_has_no_usable_backup() -> None:
    p = plane(3.0, [corruption(0.0)])
    result = p.restore(3 * DAY)
    assert result.backup is None and math.isinf(result.rpo_s)
    assert len(result.skipped_backups) == 3
    assert all("needed for consistency" in why for _, why in result.skipped_backups)


# --------------------------------------------------------------------------------------------
# Checks


def test_archive_failure_is_seen_by_the_lag_alert_and_fixed() -> None:
    p = plane(2.0, [failure(10 * HOUR)], checks={"archive_lag_alert": "5m"})
    summary = p.summary(2 * DAY)
    alerts = summary["alerts"]
    assert [a["check"] for a in alerts] == ["archive_lag"]
    # The 3h backup's switch (at 3h + 101.08 s) shifted the timeout's phase: segments close at
    # 3h + 101.08 + 60 k, the first after 10h at 10h + 41.08 s; its upload fails, and it has
    # waited 5 min at 10h + 341.08 s.
    assert alerts[0]["at"] == pytest.approx(10 * HOUR + 341.08)
    assert alerts[0]["caught"] == "archive_failure"
    assert alerts[0]["delay_s"] == pytest.approx(341.08)
    fix = summary["fixes"][0]
    assert fix["at"] == pytest.approx(alerts[0]["at"] + 4 * HOUR) and fix["ended_fault"]
    assert summary["faults"][0]["end_s"] == pytest.approx(fix["at"])
    assert summary["archive"]["pending"] == 0 and summary["archive"]["missing"] == 0
    # a fresh backup started at the fix
    assert any(b.reason == "after fix" and b.start_s == pytest.approx(fix["at"]) for b in p.backups)


def test_silent_corruption_is_invisible_to_the_lag_alert() -> None:
    p = plane(2.0, [corruption(10 * HOUR)], checks={"archive_lag_alert": "5m"})
    summary = p.summary(2 * DAY)
    assert summary["alerts"] == [] and summary["fixes"] == []
    assert summary["archive"]["missing"] > 0
    assert summary["faults"][0]["detected_s"] is None


def test_an_archive_failure_for_a_while_delays_but_loses_nothing() -> None:
    p = plane(1.0, [failure(2 * HOUR, 600.0)])
    summary = p.summary(DAY)
    assert summary["archive"]["missing"] == 0 and summary["archive"]["pending"] == 0
    # segment 119 closes at 2h, as the fault starts: it is retried every 60 s until the fault
    # ends at 2h + 600 s (11th attempt) and uploaded 1 s later; segment 120 waits behind it.
    archive = p.archive_as_of(DAY)
    entry = archive.get(119)
    assert entry is not None and entry.segment.closed_at == 2 * HOUR
    assert entry.archived_at == pytest.approx(2 * HOUR + 601.0) and entry.attempts == 11
    after = archive.get(120)
    assert after is not None and after.archived_at == pytest.approx(2 * HOUR + 602.0) and after.attempts == 1
    assert summary["archive"]["max_lag_s"] == pytest.approx(601.0)


def test_checksum_verification_catches_corruption_within_its_period() -> None:
    p = plane(2.0, [corruption(5 * HOUR + 30.0, mode="corrupt")], checks={"wal_checksums": "1h"})
    summary = p.summary(2 * DAY)
    first = summary["alerts"][0]
    assert first["check"] == "wal_checksums" and first["caught"] == "segment_corruption"
    assert first["at"] == 6 * HOUR  # the first hourly check after the first corrupt upload
    assert 0 < first["delay_s"] <= HOUR
    assert summary["archive"]["corrupt"] > 0


def test_restore_tests_catch_a_gap() -> None:
    # A short silent fault on day 6 (after the day-6 backup): the test on day 7 at 0:00 replays
    # from the day-6 backup, stops at the hole, and the data is hours old.
    p = plane(8.0, [corruption(6 * DAY + 10 * HOUR, 120.0)], checks={"restore_test_every": "7d"})
    summary = p.summary(8 * DAY)
    test = summary["restore_tests"][0]
    assert test["at"] == 7 * DAY and test["outcome"] == "failed"
    assert "missing in the archive" in test["reason"]
    assert test["rpo_s"] == pytest.approx(14 * HOUR, abs=120.0)
    alert = summary["alerts"][0]
    assert alert["check"] == "restore_test" and alert["caught"] == "segment_corruption"
    assert alert["delay_s"] == pytest.approx(14 * HOUR)


def test_pg_verifybackup_and_the_size_alert_catch_a_truncated_backup() -> None:
    fault = BackupFailure.model_validate(
        {"kind": "backup_failure", "target": "backups", "at": 2 * DAY + 2 * HOUR, "mode": "truncated", "for": "2h"}
    )
    p = plane(4.0, [fault], checks={"verify_backups": True, "backup_size_alert": 0.2})
    summary = p.summary(4 * DAY)
    truncated = next(b for b in p.backups if b.status == "truncated")
    assert truncated.start_s == 2 * DAY + 3 * HOUR
    assert truncated.verified is False and truncated.problems == ("missing file base/16384 (truncated)",)
    full = truncated.end_s - truncated.start_s
    assert truncated.size_bytes == pytest.approx(full * 1e7 * TRUNCATED_SHARE)
    checks = [(a["check"], a["caught"]) for a in summary["alerts"]]
    assert checks == [("backup_size", "backup_failure"), ("verify_backup", "backup_failure")]
    assert summary["backups"]["truncated"] == 1 and summary["backups"]["verified"] >= 3


def test_a_restore_skips_a_truncated_backup_for_an_older_one() -> None:
    fault = BackupFailure.model_validate(
        {"kind": "backup_failure", "target": "backups", "at": 2 * DAY + 2 * HOUR, "mode": "truncated", "for": "2h"}
    )
    p = plane(3.0, [fault])
    result = p.restore(2 * DAY + 6 * HOUR)
    assert result.backup is not None and result.backup.label == "base-0002"
    assert result.skipped_backups == (("base-0003", "backup files missing or corrupt"),)


# --------------------------------------------------------------------------------------------
# Backups


def test_retention_deletes_old_backups() -> None:
    p = plane(10.0, backups={"retention": "3d"})
    summary = p.summary(10 * DAY)
    assert summary["backups"]["taken"] == 10
    # Days 7..9, and day 6's (base-0007): it ended just over 3 d before day 9's, but it is the
    # newest older than the window, the one that restores to the window's start (pgBackRest).
    assert summary["backups"]["kept"] == 4
    deleted = [b for b in p.backups if b.deleted_at is not None]
    assert [b.label for b in deleted] == [f"base-{n:04d}" for n in range(1, 7)]
    assert all(b.deleted_at is not None and b.deleted_at - b.end_s > 3 * DAY for b in deleted)
    assert p.backups[6].end_s < p.backups[9].end_s - 3 * DAY
    result = p.restore(10 * DAY)
    assert result.backup is not None and result.backup.label == "base-0010"


def test_backup_duration_grows_with_the_database() -> None:
    p = plane(10.0)
    p.advance(10 * DAY)
    durations = [b.end_s - b.start_s for b in p.backups]
    # 1 GB + 10 rows/s * 100 B * t, at 10 MB/s: 100 s + t / 10,000
    assert durations[0] == pytest.approx(100.0 + 3 * HOUR / 1e4)
    assert durations[5] == pytest.approx(100.0 + (5 * DAY + 3 * HOUR) / 1e4)
    assert all(b > a for a, b in itertools.pairwise(durations))


# --------------------------------------------------------------------------------------------
# Determinism, laziness, long horizons


COUNTERMEASURES = {
    "verify_backups": True,
    "wal_checksums": "1d",
    "archive_lag_alert": "1m",
    "restore_test_every": "7d",
    "full_restore_every": "30d",
    "dr_drill_every": "90d",
    "restore_test_alert": "8d",
    "backup_size_alert": 0.2,
    "respond": {"kind": "lognormal", "median": "4h", "sigma": 0.5},
}


def long_plane(seed: int = 7, checks: dict[str, Any] | None = None, days: float = 30.0) -> BackupPlane:
    return plane(
        days,
        [corruption(0.0, fraction=0.5), failure(9 * DAY), corruption(20 * DAY, 3 * DAY, mode="corrupt", fraction=0.1)],
        seed=seed,
        checks=checks if checks is not None else COUNTERMEASURES,
        wal={"upload_time": {"kind": "lognormal", "median": "1s", "sigma": 0.5}},
    )


def test_same_seed_same_summary_and_another_seed_differs() -> None:
    one = long_plane(7).summary(30 * DAY)
    assert one == long_plane(7).summary(30 * DAY)
    assert one != long_plane(8).summary(30 * DAY)
    assert {a["caught"] for a in one["alerts"]} >= {"segment_corruption", "archive_failure"}


def test_advance_is_idempotent_and_reading_mid_run_changes_nothing() -> None:
    straight = long_plane()
    stepped = long_plane()
    t = 0.0
    while t < 30 * DAY:
        t = min(30 * DAY, t + 13 * HOUR + 17.0)
        stepped.summary(t)
        stepped.restore(t)
        assert stepped.advance(t) == t
        assert stepped.advance(t - 100.0) == t  # never backwards
    assert stepped.summary(30 * DAY) == straight.summary(30 * DAY)
    assert stepped.restore(30 * DAY) == straight.restore(30 * DAY)


def test_c4_over_180_days_as_designed_and_with_countermeasures() -> None:
    days = 180.0
    designed = plane(days, [corruption(0.0)], horizon=days * DAY + HOUR)
    result = designed.restore(days * DAY)
    assert result.backup is None  # every backup in retention lacks its own WAL
    summary = designed.summary(days * DAY)
    assert summary["alerts"] == [] and summary["archive"]["archived"] == 0
    assert summary["archive"]["segments"] > 250_000

    countered = plane(days, [corruption(0.0)], horizon=days * DAY + HOUR, checks=COUNTERMEASURES)
    result = countered.restore(days * DAY)
    assert result.backup is not None and result.rpo_s <= HOUR
    summary = countered.summary(days * DAY)
    fault = summary["faults"][0]
    assert fault["detection_delay_s"] is not None and fault["detection_delay_s"] < 2 * DAY
    assert fault["end_s"] is not None
    assert len(summary["drills"]) == 2 and all(d["outcome"] == "ok" for d in summary["drills"])
    assert all(r["outcome"] == "ok" for r in summary["restore_tests"] if r["at"] > 7 * DAY)
    assert all(d["duration_s"] > 0 for d in summary["drills"])


def test_the_detail_window_takes_the_twins_commits() -> None:
    # No aggregate WAL after detail_from: the readings are record-level and the twin commits
    # 1,000,000 bytes at 1h + 100.25 s: one segment of 1 MB closes at the next timeout.
    cfg = config(
        HOUR,
        flows={"readings": {"rows_per_s": 10.0, "level": "records"}},
        wal={"segment_size": 16 * 1024 * 1024},
    )
    commits = CommitLog(flows(cfg), WAL_PER_ROW, detail_from=cfg.detail_from)
    kernel = Kernel(7, start=HOUR)
    p = BackupPlane(kernel, cfg, commits, [], 2 * HOUR)
    kernel.run(until=HOUR + 100.5)
    commits.record("readings", HOUR + 100.25, 10_000, 1_000_000.0)
    kernel.run(until=HOUR + 300.0)
    p.advance(HOUR + 300.0)
    segments = [e.segment for e in p.archive_as_of(HOUR + 300.0).entries]
    last = segments[-1]
    # segment 59 closed at 1h; idle, the timeout restarted at 1h + 60 s; it fires at 1h + 120 s
    assert last.closed_at == pytest.approx(HOUR + 120.0)
    assert last.wal_bytes == 1_000_000


# --------------------------------------------------------------------------------------------
# Review fixes: retention (1a), backups.wal (1c), idle backups (1d), a lost primary (1e)


def backup_failure(at: float, duration: str, mode: str = "failed") -> BackupFailure:
    return BackupFailure.model_validate(
        {"kind": "backup_failure", "target": "backups", "at": at, "mode": mode, "for": duration}
    )


def test_forty_days_of_failed_jobs_keep_the_last_good_backups() -> None:
    # Days 0..4 back up fine; every job from day 5 to day 44 fails; retention 30 d; the archive
    # is intact. Failed jobs expire nothing: on day 45 the day-4 backup still restores, with
    # the archive's WAL up to the last minute.
    p = plane(46.0, [backup_failure(5 * DAY, "40d")], backups={"retention": "30d"})
    result = p.restore(45 * DAY)
    assert result.backup is not None and result.backup.label == "base-0005"
    assert result.rpo_s < 62.0  # the open segment (< 60 s) and the last upload (1 s)
    assert [b.deleted_at for b in p.backups[:5]] == [None] * 5
    assert sum(b.status == "failed" for b in p.backups) == 40
    # Day 45's job succeeds (the fault ended at 45d): retention runs again, and keeps the newest
    # backup older than the window (day 4's) while deleting days 0..3.
    p.advance(46 * DAY)
    day45 = p.backups[45]
    assert day45.status == "ok" and day45.start_s == 45 * DAY + 3 * HOUR
    assert [b.label for b in p.backups if b.deleted_at is not None] == [f"base-{n:04d}" for n in range(1, 5)]
    assert all(b.deleted_at == day45.end_s for b in p.backups[:4])
    assert p.summary(46 * DAY)["backups"]["kept"] == 2


def test_stream_backups_restore_despite_a_broken_archive_and_verify_cannot_see_it() -> None:
    streamed = plane(3.0, [corruption(0.0)], backups={"wal": "stream"}, checks={"verify_backups": True})
    result = streamed.restore(3 * DAY)
    newest = streamed.backups[2]
    assert result.backup is not None and result.backup.label == newest.label == "base-0003"
    base = newest.base
    assert base is not None and base.self_contained
    assert [s.index for s in base.wal] == list(range(base.first_segment, base.last_segment + 1))
    # its own WAL replayed, then the archive's first segment after it is missing
    assert result.recovered_to_s == newest.end_s
    assert result.stopped_at_segment == base.last_segment + 1
    assert result.stop_reason == f"segment {base.last_segment + 1} missing in the archive"
    assert result.rpo_s == pytest.approx(3 * DAY - newest.end_s)
    assert dict(result.steps)["fetch WAL"] == 0.0  # nothing came from the archive
    # pg_verifybackup passes every backup: it reads the backup's own pg_wal, never the archive
    assert [b.verified for b in streamed.backups] == [True, True, True]
    summary = streamed.summary(3 * DAY)
    assert summary["backups"]["wal"] == "stream"
    assert summary["alerts"] == [] and summary["faults"][0]["detected_s"] is None
    # a restore test still sees it: the data is as of the backup's end, hours old, and the blame
    # is the archive fault (its first segment after the backup is missing)
    tested = plane(1.5, [corruption(0.0)], backups={"wal": "stream"}, checks={"restore_test_every": "1d"})
    test = tested.summary(1.5 * DAY)["restore_tests"][0]
    assert test["outcome"] == "failed" and test["reason"].startswith("replay stopped: segment")
    assert test["rpo_s"] == pytest.approx(DAY - tested.backups[0].end_s)
    assert tested.alerts[0]["check"] == "restore_test" and tested.alerts[0]["caught"] == "segment_corruption"

    # the same world with archive-based backups: nothing restores, and pg_verifybackup (which
    # reads their WAL from the archive) fails the very first one
    archived = plane(3.0, [corruption(0.0)])
    assert archived.restore(3 * DAY).backup is None
    assert archived.summary(3 * DAY)["backups"]["wal"] == "archive"
    verified = plane(1.0, [corruption(0.0)], checks={"verify_backups": True})
    assert verified.summary(DAY)["alerts"][0]["check"] == "verify_backup"
    assert verified.backups[0].verified is False


def test_a_backup_of_an_idle_database_is_restorable() -> None:
    # No WAL at all: the backup's end still switches (its backup-end record), so its one
    # segment closes at 3h + 100 s (1 GB at 10 MB/s), is archived 1 s later, and restores.
    p = plane(1.0, flows={"readings": {"rows_per_s": 0.0}})
    result = p.restore(DAY)
    assert result.backup is not None and result.backup.label == "base-0001"
    entry = p.archive_as_of(DAY).get(0)
    assert entry is not None and entry.segment.closed_at == 3 * HOUR + 100.0
    assert entry.segment.wal_bytes == 1 and entry.segment.forced
    assert result.recovered_to_s == 3 * HOUR + 100.0 and result.replayed_segments == 1
    assert p.summary(DAY)["archive"]["segments"] == 1


def test_a_lost_primary_archives_nothing_more_from_its_pg_wal() -> None:
    # The archive fails from 10h for 6 h: segments pile up in pg_wal. The primary dies at 12h,
    # restored to 10h, back at 14h. Segments close at 10h + 41.08 s + 60 k (the 3h backup's
    # switch set the phase): the 120 of them up to 12h are never archived.
    p = plane(1.0, [failure(10 * HOUR, 6 * HOUR)])
    p.advance(11 * HOUR)
    p.primary_lost(12 * HOUR, 10 * HOUR, 14 * HOUR)
    summary = p.summary(DAY)
    assert summary["archive"]["lost_with_primary"] == 120
    assert summary["primary_losses"] == [
        {"at_s": 12 * HOUR, "recovered_to_s": 10 * HOUR, "back_at_s": 14 * HOUR, "segments_lost": 120}
    ]
    closed = p._closed
    assert not [c for c in closed if 12 * HOUR < c <= 14 * HOUR]  # the database was down: no WAL
    assert min(c for c in closed if c > 12 * HOUR) == 14 * HOUR + 60.0  # the new primary's first timeout
    archive_times = [u.done for u, c in zip(p._up, closed, strict=False) if c <= 12 * HOUR and u.done > 12 * HOUR]
    assert archive_times == []
    # a fresh backup of the recovered database at 14h: 1 GB + 36 MB (14 h of rows less the 4 h lost)
    fresh = next(b for b in p.backups if b.reason == "after recovery")
    assert fresh.start_s == 14 * HOUR
    assert fresh.end_s - fresh.start_s == pytest.approx((1e9 + 1000.0 * 10 * HOUR) / 1e7)
    # at 15h the fresh backup's WAL waits behind the failure (until 16h): the 3h backup replays
    # up to the first lost segment, which a restore cannot fetch
    early = p.restore(15 * HOUR)
    assert early.backup is not None and early.backup.label == "base-0001"
    assert early.recovered_to_s == pytest.approx(10 * HOUR - 18.92)
    assert early.stop_reason.endswith("not archived before the disaster")
    late = p.restore(DAY)
    assert late.backup is not None and late.backup.label == fresh.label
    assert late.rpo_s < 62.0


def test_a_lost_primary_interrupts_its_backup_and_fails_jobs_while_down() -> None:
    p = plane(2.0)
    p.primary_lost(3 * HOUR + 50.0, 3 * HOUR, None)
    summary = p.summary(2 * DAY)
    first = p.backups[0]
    assert first.status == "failed" and first.end_s == 3 * HOUR + 50.0 and first.base is None
    assert [b.status for b in p.backups] == ["failed", "failed"]  # day 1's job found it down
    assert summary["backups"]["interrupted"] == 1 and summary["backups"]["primary_down"] == 1
    assert not [c for c in p._closed if c > 3 * HOUR + 50.0]  # never back: no WAL, no switch
    assert p.restore(2 * DAY).backup is None
    with pytest.raises(ValueError, match="still down"):
        p.primary_lost(DAY, None, None)


def test_a_loss_is_refused_once_the_plane_is_past_it() -> None:
    p = plane(1.0)
    p.advance(12 * HOUR)
    with pytest.raises(ValueError, match="already processed"):
        p.primary_lost(11 * HOUR, None, None)


def test_a_loss_reads_the_same_whether_the_plane_was_advanced_before_it() -> None:
    # The loss falls 0.5 s into a segment's 1 s upload (closed at 12h + 41.08 s): a plane that
    # had already counted that upload as done takes it back.
    at, back = 12 * HOUR + 41.58, 15 * HOUR

    def run(stepped: bool) -> tuple[dict[str, Any], Any]:
        p = plane(30.0, [corruption(20 * DAY, 3 * DAY, mode="corrupt", fraction=0.1)], checks=COUNTERMEASURES)
        if stepped:
            t = 0.0
            while t < at - 0.2:
                t = min(at - 0.2, t + 3 * HOUR + 7.0)
                p.summary(t)
        p.primary_lost(at, at - 41.58, back)
        if stepped:
            t = at
            while t < 30 * DAY:
                t = min(30 * DAY, t + 17 * HOUR + 3.0)
                p.summary(t)
        return p.summary(30 * DAY), p.restore(30 * DAY)

    straight, stepped = run(False), run(True)
    assert straight == stepped
    summary, result = straight
    assert summary["archive"]["lost_with_primary"] == 1
    assert result.backup is not None and result.rpo_s < 62.0


def test_archive_timeout_is_off_or_at_least_a_second_and_backups_take_wal_from_the_archive() -> None:
    from pydantic import ValidationError

    from models.recovery.config import ChecksConfig, WalConfig

    assert WalConfig.model_validate({"archive_timeout": 0}).archive_timeout == 0.0
    assert WalConfig.model_validate({"archive_timeout": "1s"}).archive_timeout == 1.0
    with pytest.raises(ValidationError, match="0 \\(off\\) or at least 1s"):
        WalConfig.model_validate({"archive_timeout": "1ms"})
    assert config(1.0).backups.wal == "archive"
    with pytest.raises(ValidationError):
        config(1.0, backups={"wal": "fetch"})
    fields = ChecksConfig.model_fields
    assert "does not change the runbook" in (fields["dr_drill_every"].description or "")
    assert "not the runbook's other steps" in (fields["full_restore_every"].description or "")
