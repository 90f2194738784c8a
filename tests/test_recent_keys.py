"""The database's vectorised duplicate-key window answers exactly like the one-by-one window."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from models.policies.dedup import DedupWindow
from models.postgres import RecentKeys

batches = st.lists(
    st.tuples(
        st.floats(0.0, 5.0),  # time advance before the batch
        st.lists(st.tuples(st.integers(0, 6), st.integers(0, 40)), max_size=25),  # (device, time step)
    ),
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(batches, st.sampled_from([1.0, 3.0, 10.0]))
def test_seen_many_matches_dedup_window(steps: list[tuple[float, list[tuple[int, int]]]], window: float) -> None:
    fast = RecentKeys(window, devices=2, slots=2)  # small on purpose: the rings must grow
    slow = DedupWindow(window)
    now = 0.0
    for advance, keys in steps:
        now += advance
        devices = np.asarray([d for d, _ in keys], dtype=np.int64)
        times = np.asarray([t * 0.5 for _, t in keys], dtype=float)
        mask = fast.seen_many(devices, times, now)
        expected = [slow.seen((d, t * 0.5), now) for d, t in keys]
        got = [False] * len(keys) if mask is None else mask.tolist()
        assert got == expected


def test_memory_is_bounded_by_the_window_not_the_run() -> None:
    keys = RecentKeys(60.0, devices=100)
    for second in range(0, 3600, 10):
        devices = np.arange(100)
        keys.seen_many(devices, np.full(100, float(second)), float(second))
    assert keys.slots <= 16  # about 6 live keys per device at one reading per 10 s
