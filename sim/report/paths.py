"""Reading a :class:`~sim.report.profile.ReportProfile` path out of a result body.

A profile names a value by a tuple of keys (an int indexes a list), never a dotted string, so
a series called ``postgres.replica_replay_lag_s`` is one key.  A figure whose value is not in
a body (a scenario without SLOs, a twin version without a series) leaves it out, so a missing
key is ``None`` here, not an error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["at", "number_at"]


def at(body: Any, path: Sequence[str | int]) -> Any:
    """The value at ``path`` in ``body``, or ``None`` where a key or index is missing."""
    node = body
    for key in path:
        if isinstance(key, int) and not isinstance(node, Mapping):
            if not isinstance(node, Sequence) or isinstance(node, str) or not -len(node) <= key < len(node):
                return None
            node = node[key]
        elif isinstance(node, Mapping) and key in node:
            node = node[key]
        else:
            return None
    return node


def number_at(body: Any, path: Sequence[str | int]) -> float | None:
    """The number at ``path`` as a float, or ``None`` when it is missing or not a number."""
    value = at(body, path)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
