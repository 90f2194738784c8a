"""The kinds of event the backup plane processes, in the order they run when they fall at the
same time (finding C4).

Why this module: the base backups, the checks and the plane that dispatches them all schedule
these events on the plane's one queue; the order of the numbers is the tie-break rule, so it
is written down once, here.
"""

from __future__ import annotations

__all__ = [
    "BACKUP_END",
    "BACKUP_START",
    "DRILL",
    "FIX",
    "FRESH_BACKUP",
    "FULL_RESTORE",
    "PERIODIC_NAMES",
    "RESTORE_TEST",
    "STALE",
    "VERIFY",
    "WAL_CHECK",
]

# Plane events, in the order they run when they fall at the same time.
BACKUP_END, VERIFY, FIX, BACKUP_START, FRESH_BACKUP = 0, 1, 2, 3, 4
WAL_CHECK, RESTORE_TEST, FULL_RESTORE, DRILL, STALE = 5, 6, 7, 8, 9
PERIODIC_NAMES = {
    WAL_CHECK: "wal_checksums",
    RESTORE_TEST: "restore_test",
    FULL_RESTORE: "full_restore",
    DRILL: "dr_drill",
    STALE: "restore_test_stale",
}
"""The checks that recur every period, by the name their records and alerts carry."""
