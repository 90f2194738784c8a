"""Tests of models.logic.durability: hand-worked WAL, archive, backup, restore and Redis numbers
(finding C4), and properties of the RPO/RTO arithmetic."""

from __future__ import annotations

import ast
import itertools
import math
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import models.logic.durability as durability
from models.logic.durability import (
    AOF_EVERYSEC_WORST_S,
    DEFAULT_SEGMENT_BYTES,
    MIB,
    AofEverysec,
    Archive,
    ArchiveOutcome,
    ArchiverSettings,
    BackupDamage,
    BackupWindow,
    BaseBackup,
    RdbSnapshots,
    RestoreSettings,
    SegmentState,
    WalSegment,
    WalWorkload,
    archive_segments,
    base_backup,
    plan_base_backups,
    redis_loss_s,
    restore,
    rows_lost,
    scripted_outcomes,
    verify_backup,
    wal_segments,
)

OK, RETRY, SILENT, CORRUPT = (
    ArchiveOutcome.OK,
    ArchiveOutcome.RETRY,
    ArchiveOutcome.SILENT_FAILURE,
    ArchiveOutcome.CORRUPT,
)
HOUR = 3600.0


# --------------------------------------------------------------------------------------------
# Hygiene


def test_module_is_pure_and_exports_a_sorted_all() -> None:
    tree = ast.parse(Path(durability.__file__).read_text())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported.add(node.module.split(".")[0])
    assert imported.isdisjoint({"simpy", "time", "datetime", "random", "os", "io", "sim", "pydantic", "numpy"})
    exported = durability.__all__
    assert exported == sorted(exported, key=lambda n: (0 if n.isupper() else 1 if n[:1].isupper() else 2, n))
    assert all(hasattr(durability, name) for name in exported)


# --------------------------------------------------------------------------------------------
# A small hand-worked world: 1000 B/s of WAL, archive_timeout 60 s, so segment k covers
# [60k, 60k + 60] and holds 60,000 bytes; each archive_command run takes 1 s.

TRICKLE = WalWorkload.constant(1000.0)


def trickle_segments(until: float = 2000.0, switches: tuple[float, ...] = (60.0,)) -> list[WalSegment]:
    return list(wal_segments(TRICKLE, until, archive_timeout_s=60.0, switches=switches))


def trickle_backup(segments: list[WalSegment], size: float = 1e11, damage: BackupDamage | None = None) -> BaseBackup:
    return base_backup("b0", BackupWindow(30.0, 60.0, size), segments, TRICKLE, damage)


def trickle_archive(script: dict[int, list[ArchiveOutcome]] | None = None, until: float = 2000.0) -> Archive:
    return archive_segments(trickle_segments(until), until, outcome=scripted_outcomes(script or {}))


# --------------------------------------------------------------------------------------------
# WAL segments


def test_under_load_a_segment_closes_when_full_every_16_8_s() -> None:
    segments = list(wal_segments(WalWorkload.constant(1e6), 100.0, archive_timeout_s=60.0))
    assert [s.index for s in segments] == [0, 1, 2, 3, 4]
    assert [s.closed_at for s in segments] == pytest.approx([16.777216 * (k + 1) for k in range(5)])
    assert not any(s.forced for s in segments)
    assert all(s.wal_bytes == DEFAULT_SEGMENT_BYTES for s in segments)
    assert segments[3].start_lsn == 3 * 16 * MIB


def test_a_trickle_switches_every_archive_timeout_and_wastes_the_rest_of_the_segment() -> None:
    segments = list(wal_segments(TRICKLE, 200.0, archive_timeout_s=60.0))
    assert [(s.opened_at, s.closed_at) for s in segments] == [(0.0, 60.0), (60.0, 120.0), (120.0, 180.0)]
    assert all(s.forced for s in segments)
    assert [s.start_lsn for s in segments] == [0, 16 * MIB, 32 * MIB]  # the next boundary, not end_lsn
    assert [s.wal_bytes for s in segments] == [60_000] * 3


def test_no_switch_on_an_idle_server_and_the_timer_restarts() -> None:
    # Idle until 100 s, then a trickle: the deadline at 60 s passes without a switch (and
    # restarts the timer), the next one at 120 s switches with 20 s of WAL in the segment.
    workload = WalWorkload(((0.0, 0.0), (100.0, 1000.0)))
    segments = list(wal_segments(workload, 250.0, archive_timeout_s=60.0))
    assert [s.closed_at for s in segments] == [120.0, 180.0, 240.0]
    assert segments[0].wal_bytes == 20_000


def test_archive_timeout_zero_never_forces_a_switch() -> None:
    assert list(wal_segments(TRICKLE, 10_000.0, archive_timeout_s=0.0)) == []
    with pytest.raises(ValueError, match="archive_timeout_s"):
        next(wal_segments(TRICKLE, 10.0, archive_timeout_s=0.5))


def test_an_explicit_switch_closes_the_segment_and_restarts_the_timeout() -> None:
    segments = list(wal_segments(TRICKLE, 200.0, archive_timeout_s=60.0, switches=(30.0,)))
    assert [s.closed_at for s in segments] == [30.0, 90.0, 150.0]
    assert segments[0].wal_bytes == 30_000


def test_workload_validation_and_bytes_between() -> None:
    with pytest.raises(ValueError, match="increasing"):
        WalWorkload(((10.0, 1.0), (5.0, 1.0)))
    with pytest.raises(ValueError, match="non-negative"):
        WalWorkload(((0.0, -1.0),))
    workload = WalWorkload(((0.0, 10.0), (5.0, 0.0), (8.0, 2.0)))
    assert workload.bytes_between(0.0, 10.0) == pytest.approx(50.0 + 0.0 + 4.0)


# --------------------------------------------------------------------------------------------
# Archiver


def test_a_healthy_archive_lags_by_one_archive_command() -> None:
    archive = trickle_archive(until=1000.0)
    assert [e.archived_at for e in archive.entries[:3]] == [61.0, 121.0, 181.0]
    assert all(e.state is SegmentState.ARCHIVED for e in archive.entries)
    assert archive.max_lag_s == 1.0
    assert [e.segment.index for e in archive.as_of(181.0).entries] == [0, 1, 2]


def test_a_failing_archive_command_is_retried_and_holds_back_later_segments() -> None:
    # Segment 2 closes at 180 and fails twice: 180+1 fail, sleep 1, +1 fail, sleep 1, +1 ok.
    archive = trickle_archive({2: [RETRY, RETRY, OK]}, until=1000.0)
    assert archive.get(2) is not None
    assert (archive.entries[2].archived_at, archive.entries[2].attempts) == (185.0, 3)
    # After three failures in a row the archiver waits for its next wake-up (60 s).
    archive = trickle_archive({2: [RETRY, RETRY, RETRY, OK]}, until=1000.0)
    assert archive.entries[2].archived_at == 180.0 + 1 + 1 + 1 + 1 + 1 + 60 + 1
    # Segment 3 closed at 240 but waited for segment 2 (done at 246).
    assert archive.entries[3].archived_at == 247.0


def test_a_segment_that_never_archives_blocks_the_whole_archive() -> None:
    archive = trickle_archive({5: [RETRY]}, until=2000.0)
    assert [e.segment.index for e in archive.entries] == [0, 1, 2, 3, 4]


def test_silent_and_corrupt_archiving_look_done_but_are_not() -> None:
    archive = trickle_archive({3: [SILENT], 4: [CORRUPT]}, until=1000.0)
    assert archive.entries[3].state is SegmentState.MISSING
    assert archive.entries[4].state is SegmentState.CORRUPT
    assert archive.entries[3].archived_at == 241.0  # PostgreSQL moved on as if it worked
    assert archive.entries[5].state is SegmentState.ARCHIVED


def test_archiver_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="retries_per_round"):
        ArchiverSettings(retries_per_round=0)


# --------------------------------------------------------------------------------------------
# Base backups and verification


def test_daily_backups_take_size_over_throughput_and_grow_with_the_database() -> None:
    day = 24 * HOUR
    windows = plan_base_backups(HOUR, day, 3 * day, size_at=lambda t: 100e9 + t * 1e6, throughput_bytes_per_s=100e6)
    assert [w.start_s for w in windows] == [HOUR, HOUR + day, HOUR + 2 * day]
    assert windows[0].end_s - windows[0].start_s == pytest.approx(1000.0 + HOUR * 1e6 / 100e6)
    durations = [w.end_s - w.start_s for w in windows]
    assert durations == sorted(durations) and durations[0] < durations[-1]


def test_a_backup_longer_than_the_period_skips_the_slots_it_overlaps() -> None:
    windows = plan_base_backups(0.0, 100.0, 1000.0, size_at=lambda t: 150.0, throughput_bytes_per_s=1.0)
    assert [(w.start_s, w.end_s) for w in windows] == [
        (0.0, 150.0),
        (200.0, 350.0),
        (400.0, 550.0),
        (600.0, 750.0),
        (800.0, 950.0),
    ]


def test_the_backup_needs_the_wal_from_its_start_to_its_end() -> None:
    segments = trickle_segments(switches=(150.0,))
    backup = base_backup("b", BackupWindow(70.0, 150.0, 1e9), segments, TRICKLE)
    assert (backup.first_segment, backup.last_segment) == (1, 2)
    assert backup.start_lsn == 16 * MIB + 10_000
    assert backup.end_lsn == 32 * MIB + 30_000


def test_verification_passes_an_intact_backup_with_its_wal() -> None:
    verdict = verify_backup(trickle_backup(trickle_segments()), trickle_archive())
    assert verdict.ok and verdict.problems == ()
    assert len(verdict.not_checked) == 2


def test_verification_catches_missing_and_corrupt_files() -> None:
    backup = trickle_backup(
        trickle_segments(), damage=BackupDamage(missing_files=("base/1/1259",), corrupt_files=("global/pg_control",))
    )
    verdict = verify_backup(backup, trickle_archive())
    assert not verdict.ok
    assert verdict.problems == ("missing file base/1/1259", "checksum mismatch in global/pg_control")


def test_a_corrupt_manifest_is_fatal() -> None:
    backup = trickle_backup(trickle_segments(), damage=BackupDamage(manifest_corrupt=True, missing_files=("x",)))
    assert verify_backup(backup, trickle_archive()).problems == ("backup_manifest checksum mismatch (fatal)",)


def test_verification_catches_the_backups_own_wal_missing_only_when_parsing_wal() -> None:
    archive = trickle_archive({0: [SILENT]})
    backup = trickle_backup(trickle_segments())
    assert verify_backup(backup, archive).problems == ("WAL segment 0 missing in the archive",)
    assert verify_backup(backup, archive, parse_wal=False).ok


def test_verification_misses_a_lost_segment_after_the_backup_and_logical_corruption() -> None:
    archive = trickle_archive({7: [SILENT]})
    backup = trickle_backup(trickle_segments(), damage=BackupDamage(logical_corruption=True))
    assert verify_backup(backup, archive).ok  # and yet PITR past segment 6 is impossible:
    assert restore(1000.0, [backup], archive).stopped_at_segment == 7


# --------------------------------------------------------------------------------------------
# Restore


RESTORE = RestoreSettings(
    copy_bytes_per_s=1e8, replay_bytes_per_s=1e4, fetch_s_per_segment=0.5, fixed_steps=(("provision", 600.0),)
)


def test_restore_with_a_healthy_archive_hand_worked() -> None:
    # At T=1000 the archive holds segments 0..15 (segment k archived at 60k+61); 15 closed at 960.
    result = restore(1000.0, [trickle_backup(trickle_segments())], trickle_archive(), RESTORE)
    assert result.recovered_to_s == 960.0
    assert result.rpo_s == 40.0
    assert result.replayed_segments == 16
    assert result.stopped_at_segment == 16
    assert result.stop_reason == "segment 16 not archived before the disaster"
    # copy 1e11 / 1e8 = 1000 s; fetch 16 * 0.5 = 8 s; replay (30,000 + 15 * 60,000) / 1e4 = 93 s.
    assert result.steps == (
        ("provision", 600.0),
        ("copy base backup", 1000.0),
        ("fetch WAL", 8.0),
        ("replay WAL", 93.0),
    )
    assert result.rto_s == 1701.0


@pytest.mark.parametrize("fault", [SILENT, CORRUPT])
def test_a_bad_segment_k_stops_recovery_there(fault: ArchiveOutcome) -> None:
    result = restore(1000.0, [trickle_backup(trickle_segments())], trickle_archive({7: [fault]}), RESTORE)
    assert result.stopped_at_segment == 7
    assert result.recovered_to_s == 420.0  # the start of segment 7
    assert result.rpo_s == 1000.0 - 420.0
    assert result.replayed_segments == 7
    assert result.stop_reason.startswith("segment 7 ")


def test_a_segment_stuck_in_retry_at_the_disaster_is_lost_with_pg_wal() -> None:
    result = restore(1000.0, [trickle_backup(trickle_segments())], trickle_archive({5: [RETRY]}), RESTORE)
    assert (result.stopped_at_segment, result.recovered_to_s) == (5, 300.0)


def test_without_a_usable_backup_everything_is_lost() -> None:
    segments = trickle_segments()
    result = restore(1000.0, [trickle_backup(segments)], trickle_archive({0: [SILENT]}), RESTORE)
    assert result.backup is None and result.recovered_to_s is None
    assert math.isinf(result.rpo_s) and math.isinf(result.rto_s)
    assert result.skipped_backups == (("b0", "WAL segment 0 needed for consistency not intact in the archive"),)
    # A backup that finishes after the disaster does not count either.
    assert restore(50.0, [trickle_backup(segments)], trickle_archive(), RESTORE).backup is None


def test_a_damaged_newest_backup_falls_back_to_an_older_one() -> None:
    segments = trickle_segments(switches=(60.0, 600.0))
    old = base_backup("old", BackupWindow(30.0, 60.0, 1e9), segments, TRICKLE)
    new = base_backup("new", BackupWindow(570.0, 600.0, 1e9), segments, TRICKLE, BackupDamage(missing_files=("x",)))
    archive = archive_segments(segments, 2000.0)
    result = restore(1000.0, [old, new], archive, RESTORE)
    assert result.backup == old
    assert result.skipped_backups == (("new", "backup files missing or corrupt"),)


def test_an_older_backup_cannot_replay_past_a_newer_ones_missing_wal() -> None:
    # C4: the newest backup's own WAL was lost; the older one is usable but stops at the gap.
    segments = trickle_segments(switches=(60.0, 600.0))
    old = base_backup("old", BackupWindow(30.0, 60.0, 1e9), segments, TRICKLE)
    new = base_backup("new", BackupWindow(570.0, 600.0, 1e9), segments, TRICKLE)
    bad = new.first_segment
    archive = archive_segments(segments, 2000.0, outcome=scripted_outcomes({bad: [SILENT]}))
    result = restore(1000.0, [old, new], archive, RESTORE)
    assert result.backup == old
    assert result.stopped_at_segment == bad
    assert result.recovered_to_s == segments[bad].opened_at


def test_rows_lost_counts_commits_after_the_recovered_point() -> None:
    commits = {
        "readings": [(float(t), 5) for t in range(10, 1001, 10)],
        "device_commands": [(950.0, 1), (965.0, 1), (1200.0, 1)],
    }
    assert rows_lost(commits, 960.0, 1000.0) == {"readings": 20, "device_commands": 1}
    assert rows_lost(commits, None, 1000.0) == {"readings": 500, "device_commands": 2}


# --------------------------------------------------------------------------------------------
# Redis


def test_rdb_loses_everything_since_the_last_completed_snapshot() -> None:
    six_hours = 6 * HOUR
    assert redis_loss_s(six_hours + 100.0, RdbSnapshots(six_hours)) == 100.0
    # The snapshot forked at 6 h is still being written at 6 h + 100 s: the one at 0 counts.
    assert redis_loss_s(six_hours + 100.0, RdbSnapshots(six_hours, duration_s=300.0)) == six_hours + 100.0
    assert redis_loss_s(6 * six_hours - 1.0, RdbSnapshots(six_hours)) == six_hours - 1.0
    assert redis_loss_s(50.0, RdbSnapshots(six_hours, first_s=100.0), data_since_s=10.0) == 40.0


def test_aof_everysec_loses_at_most_about_a_second_or_two() -> None:
    assert redis_loss_s(10.4, AofEverysec()) == pytest.approx(0.4)
    assert redis_loss_s(10.4, AofEverysec(phase_s=0.5)) == pytest.approx(0.9)
    assert redis_loss_s(10.9, AofEverysec(fsync_stall_s=1.9)) == AOF_EVERYSEC_WORST_S


# --------------------------------------------------------------------------------------------
# Properties

outcomes = st.dictionaries(
    st.integers(0, 40), st.lists(st.sampled_from(list(ArchiveOutcome)), min_size=1, max_size=4), max_size=6
)


def _world(
    rate: float, timeout: float, archive_s: float, script: dict[int, list[ArchiveOutcome]], until: float
) -> tuple[BaseBackup, Archive]:
    window = BackupWindow(5.0, 5.0 + 1e9 / 1e8, 1e9)
    workload = WalWorkload.constant(rate)
    segments = list(
        wal_segments(workload, until, segment_bytes=MIB, archive_timeout_s=timeout, switches=[window.end_s])
    )
    backup = base_backup("b", window, segments, workload, segment_bytes=MIB)
    archive = archive_segments(
        segments, until, settings=ArchiverSettings(archive_s=archive_s), outcome=scripted_outcomes(script)
    )
    return backup, archive


@settings(max_examples=150, deadline=None)
@given(
    rate=st.floats(1.0, 3e5),
    timeout=st.floats(5.0, 120.0),
    archive_s=st.floats(0.0, 3.0),
    script=outcomes,
    disaster=st.floats(0.0, 2000.0),
)
def test_rpo_is_never_negative_and_replay_never_passes_the_first_bad_segment(
    rate: float, timeout: float, archive_s: float, script: dict[int, list[ArchiveOutcome]], disaster: float
) -> None:
    backup, archive = _world(rate, timeout, archive_s, script, 2000.0)
    result = restore(disaster, [backup], archive)
    assert result.rpo_s >= 0.0
    if result.backup is None:
        return
    assert result.recovered_to_s is not None and result.recovered_to_s <= disaster
    available = archive.as_of(disaster)
    bad = [
        e.segment.index
        for e in available.entries
        if e.segment.index >= backup.first_segment and e.state is not SegmentState.ARCHIVED
    ]
    assert result.stopped_at_segment is not None
    if bad:
        assert result.stopped_at_segment <= min(bad)
    replayed = range(backup.first_segment, result.stopped_at_segment)
    assert all((e := available.get(i)) is not None and e.state is SegmentState.ARCHIVED for i in replayed)


@settings(max_examples=150, deadline=None)
@given(
    rate=st.floats(1.0, 3e5),
    timeout=st.floats(5.0, 120.0),
    archive_s=st.floats(0.0, 3.0),
    disaster=st.floats(200.0, 2000.0),
)
def test_with_a_perfect_archive_rpo_is_at_most_one_timeout_plus_the_archiving_lag(
    rate: float, timeout: float, archive_s: float, disaster: float
) -> None:
    backup, archive = _world(rate, timeout, archive_s, {}, 5000.0)  # lags measured past the disaster
    result = restore(disaster, [backup], archive)
    assume(result.backup is not None)
    assert result.rpo_s <= timeout + archive.max_lag_s + 1e-9


@settings(max_examples=100, deadline=None)
@given(small=st.floats(1e6, 1e12), factor=st.floats(1.01, 100.0), disaster=st.floats(100.0, 1000.0))
def test_rto_grows_with_database_size(small: float, factor: float, disaster: float) -> None:
    segments = trickle_segments()
    archive = trickle_archive()
    rtos = [
        restore(disaster, [trickle_backup(segments, size)], archive, RESTORE).rto_s for size in (small, small * factor)
    ]
    assert rtos[0] < rtos[1]


@settings(max_examples=100, deadline=None)
@given(
    steps=st.lists(st.tuples(st.floats(0.1, 100.0), st.floats(0.0, 1e6)), min_size=1, max_size=5),
    timeout=st.one_of(st.just(0.0), st.floats(1.0, 120.0)),
)
def test_segments_are_contiguous_and_never_overfull(steps: list[tuple[float, float]], timeout: float) -> None:
    times = [0.0]
    for gap, _ in steps[1:]:
        times.append(times[-1] + gap)
    workload = WalWorkload(tuple(zip(times, [r for _, r in steps], strict=True)))
    segments = list(wal_segments(workload, 600.0, segment_bytes=MIB, archive_timeout_s=timeout))
    assert [s.index for s in segments] == list(range(len(segments)))
    for before, after in itertools.pairwise(segments):
        assert after.opened_at == before.closed_at
    for s in segments:
        assert s.start_lsn == s.index * MIB and 0 < s.wal_bytes <= MIB
        assert s.closed_at > s.opened_at


# --------------------------------------------------------------------------------------------
# Review fixes: backup-end switches on an idle server (1d), self-contained backups (1c)


def test_a_backup_end_switch_closes_a_segment_even_on_an_idle_server() -> None:
    # pg_backup_stop writes a backup-end record, then switches: the segment holds (at least) that
    # record, so it closes; the timeout's deadlines before and after pass without a switch.
    idle = WalWorkload.constant(0.0)
    segments = list(wal_segments(idle, 500.0, archive_timeout_s=60.0, switches=(100.0,)))
    assert [(s.index, s.opened_at, s.closed_at, s.wal_bytes, s.forced) for s in segments] == [(0, 0.0, 100.0, 1, True)]
    backup = base_backup("idle", BackupWindow(50.0, 100.0, 1e9), segments, idle)
    archive = archive_segments(segments, 500.0)
    assert verify_backup(backup, archive).ok
    result = restore(500.0, [backup], archive)
    assert result.backup == backup and result.recovered_to_s == 100.0


def test_a_switch_at_the_instant_of_a_timeout_close_rides_on_it() -> None:
    # the trickle's timeout closes segment 0 at 60 s; a backup ending then adds no second segment
    assert [s.closed_at for s in trickle_segments(200.0, switches=(60.0,))] == [60.0, 120.0, 180.0]


def test_a_self_contained_backup_restores_without_its_wal_in_the_archive_hand_worked() -> None:
    # Segment 0 (the backup's own WAL: it ran from 30 s to 60 s) is missing in the archive. Taken
    # with -X stream the backup carries it: usable, its 30,000 bytes replayed from the backup
    # (no fetch), then segments 1..15 from the archive (archived by T=1000).
    archive = trickle_archive({0: [SILENT]})
    streamed = base_backup("s", BackupWindow(30.0, 60.0, 1e11), trickle_segments(), TRICKLE, stream=True)
    assert streamed.self_contained and [s.index for s in streamed.wal] == [0]
    assert verify_backup(streamed, archive).ok  # pg_verifybackup reads the backup's pg_wal
    result = restore(1000.0, [streamed], archive, RESTORE)
    assert result.backup == streamed
    assert (result.recovered_to_s, result.replayed_segments, result.stopped_at_segment) == (960.0, 16, 16)
    # copy 1000 s; fetch 15 * 0.5 = 7.5 s (segment 0 came with the backup); replay 93 s as before
    assert result.steps == (
        ("provision", 600.0),
        ("copy base backup", 1000.0),
        ("fetch WAL", 7.5),
        ("replay WAL", 93.0),
    )
    # the same backup taking its WAL from the archive is unusable
    plain = trickle_backup(trickle_segments())
    assert not plain.self_contained and restore(1000.0, [plain], archive, RESTORE).backup is None


def test_a_self_contained_backup_stops_at_the_first_bad_segment_after_its_end() -> None:
    archive = trickle_archive({1: [SILENT]})
    streamed = base_backup("s", BackupWindow(30.0, 60.0, 1e11), trickle_segments(), TRICKLE, stream=True)
    result = restore(1000.0, [streamed], archive, RESTORE)
    assert (result.recovered_to_s, result.stopped_at_segment) == (60.0, 1)
    assert result.stop_reason == "segment 1 missing in the archive"
    assert dict(result.steps)["fetch WAL"] == 0.0
