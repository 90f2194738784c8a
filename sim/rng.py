"""Named random streams derived from one scenario seed.

Every component draws from its own ``numpy.random.Generator``, keyed by the component's
name through ``numpy.random.SeedSequence``.  Adding a component therefore never shifts
another component's draws, and two variants of a scenario run with the same seed share
common random numbers, which makes paired comparisons far less noisy.
"""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["RandomStreams"]


def _name_key(name: str) -> tuple[int, ...]:
    """A stable 128-bit spawn key for ``name`` (``hash()`` is salted per process; sha256 is not)."""
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return tuple(int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4))


class RandomStreams:
    """Factory of independent, reproducible generators, one per component name."""

    def __init__(self, seed: int) -> None:
        if seed < 0:
            raise ValueError(f"seed must be >= 0 (got {seed})")
        self.seed = seed
        self._streams: dict[str, np.random.Generator] = {}

    def stream(self, name: str) -> np.random.Generator:
        """The generator owned by ``name``; the same object on every call."""
        rng = self._streams.get(name)
        if rng is None:
            sequence = np.random.SeedSequence(entropy=self.seed, spawn_key=_name_key(name))
            rng = np.random.Generator(np.random.PCG64(sequence))
            self._streams[name] = rng
        return rng
