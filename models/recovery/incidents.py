"""The planned archive and backup faults of a run as they played out (finding C4).

Why this module: the archiver (which faults block or corrupt an upload), the base backups
(which fault fails a job) and the checks (which fault an alert caught, when it is fixed) all
read and update the same record of each planned fault, so it lives apart from all three.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from models.recovery.faults import PlannedFault

__all__ = ["Incident"]


@dataclass(slots=True)
class Incident:
    """A planned fault as it played out: when it started, was first caught, fixed, and ended."""

    number: int
    fault: PlannedFault
    end: float | None
    """When it ended: its ``for``, or the fix; ``None`` while it lasts."""
    detected_at: float | None = None
    fix_at: float | None = None

    @property
    def start(self) -> float:
        return self.fault.at

    def active(self, t: float) -> bool:
        """Whether the fault acts at ``t`` (as far as the plane knows now)."""
        return self.fault.at <= t < (math.inf if self.end is None else self.end)
