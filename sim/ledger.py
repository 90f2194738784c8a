"""The ledger: every command and every reading ends in exactly one final state.

Two bookkeeping styles, because the populations differ by orders of magnitude:

* **tracked** items (commands: thousands) are kept one by one, so the ledger can say which
  item ended how and catch an item settled twice;
* **counted** items (readings: millions) are counted per final state and reason, so memory
  does not grow with simulated duration.

At the end of a run every item not settled is *in flight*.  The conservation invariant is
that, per kind, ``entered == settled + in flight`` and that the in-flight count equals
the inventory the model's components report holding (queued in a broker, unread in a
stream, in transit on the network).  A leak -- an item silently forgotten by a component --
breaks that equality, and the run says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = ["FinalState", "Invariant", "Ledger"]


class FinalState(StrEnum):
    """Where an item ended up; ``IN_FLIGHT`` only ever describes the end of a run."""

    APPLIED = "applied"
    FAILED = "failed"
    DEAD_LETTERED = "dead_lettered"
    STORED = "stored"
    DROPPED = "dropped"
    IN_FLIGHT = "in_flight"


@dataclass(frozen=True, slots=True)
class Invariant:
    """A named property of the run and whether it held, with the evidence."""

    name: str
    held: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        """Plain data for result files."""
        return {"name": self.name, "held": self.held, "detail": self.detail}


class Ledger:
    """Accounts for tracked and counted items; see the module docstring."""

    def __init__(self) -> None:
        self._tracked: dict[str, dict[Any, tuple[FinalState, str] | None]] = {}
        self._tracked_outcomes: dict[str, dict[tuple[str, str], int]] = {}
        self._double_settled: dict[str, int] = {}
        self._entered: dict[str, int] = {}
        self._counted: dict[str, dict[tuple[str, str], int]] = {}

    def copy(self) -> Ledger:
        """An independent copy: a checker settles into it without touching the run's ledger."""
        other = Ledger()
        other._tracked = {kind: dict(items) for kind, items in self._tracked.items()}
        other._tracked_outcomes = {kind: dict(table) for kind, table in self._tracked_outcomes.items()}
        other._double_settled = dict(self._double_settled)
        other._entered = dict(self._entered)
        other._counted = {kind: dict(table) for kind, table in self._counted.items()}
        return other

    # -- tracked items -------------------------------------------------------------------
    def track(self, kind: str, item: Any) -> None:
        """Register ``item`` of ``kind`` as entered (and so in flight)."""
        items = self._tracked.setdefault(kind, {})
        if item in items:
            raise ValueError(f"{kind} {item!r} is already tracked")
        items[item] = None
        self._tracked_outcomes.setdefault(kind, {})

    def settle(self, kind: str, item: Any, state: FinalState, reason: str = "") -> None:
        """Give a tracked ``item`` its final state; a second settle is recorded as a violation."""
        if state is FinalState.IN_FLIGHT:
            raise ValueError("in_flight is not a final state one can settle into")
        items = self._tracked[kind]
        if items[item] is not None:
            self._double_settled[kind] = self._double_settled.get(kind, 0) + 1
            return
        items[item] = (state, reason)
        outcomes = self._tracked_outcomes[kind]
        key = (state.value, reason)
        outcomes[key] = outcomes.get(key, 0) + 1

    def state_of(self, kind: str, item: Any) -> tuple[FinalState, str]:
        """The final state of a tracked item, ``(IN_FLIGHT, "")`` if not settled yet."""
        outcome = self._tracked[kind][item]
        return outcome if outcome is not None else (FinalState.IN_FLIGHT, "")

    # -- counted items -------------------------------------------------------------------
    def enter(self, kind: str, n: int = 1) -> None:
        """``n`` counted items of ``kind`` entered the system."""
        self._entered[kind] = self._entered.get(kind, 0) + n
        self._counted.setdefault(kind, {})

    def settle_count(self, kind: str, state: FinalState, reason: str = "", n: int = 1) -> None:
        """``n`` counted items of ``kind`` reached ``state`` (for ``reason``)."""
        if n <= 0:
            return
        if state is FinalState.IN_FLIGHT:
            raise ValueError("in_flight is not a final state one can settle into")
        outcomes = self._counted.setdefault(kind, {})
        key = (state.value, reason)
        outcomes[key] = outcomes.get(key, 0) + n

    def settled(self, kind: str, state: FinalState, reason: str | None = None) -> int:
        """How many items of ``kind`` settled in ``state`` (for ``reason``, or any reason)."""
        source = self._counted.get(kind) or self._tracked_outcomes.get(kind) or {}
        return sum(n for (s, r), n in source.items() if s == state.value and (reason is None or r == reason))

    # -- the report ----------------------------------------------------------------------
    def report(self, inventory: dict[str, int]) -> tuple[dict[str, Any], list[Invariant]]:
        """Per-kind outcome tables and the conservation invariants.

        ``inventory`` maps each counted kind to what the model's components say they still
        hold at the end of the run.
        """
        table: dict[str, Any] = {}
        invariants: list[Invariant] = []
        for kind in sorted(self._tracked):
            items = self._tracked[kind]
            in_flight = sum(1 for outcome in items.values() if outcome is None)
            table[kind] = self._table(len(items), self._tracked_outcomes[kind], in_flight)
            doubles = self._double_settled.get(kind, 0)
            invariants.append(
                Invariant(
                    f"{kind}: each settled exactly once",
                    doubles == 0,
                    f"{len(items)} tracked, {doubles} settled more than once",
                )
            )
        for kind in sorted(self._entered.keys() | self._counted.keys()):
            entered = self._entered.get(kind, 0)
            settled = sum(self._counted[kind].values())
            in_flight = entered - settled
            table[kind] = self._table(entered, self._counted[kind], in_flight)
            held = in_flight >= 0 and in_flight == inventory.get(kind, 0)
            invariants.append(
                Invariant(
                    f"{kind}: conservation",
                    held,
                    f"entered {entered} = settled {settled} + in flight {in_flight}; "
                    f"components hold {inventory.get(kind, 0)}",
                )
            )
        return table, invariants

    @staticmethod
    def _table(entered: int, outcomes: dict[tuple[str, str], int], in_flight: int) -> dict[str, Any]:
        states: dict[str, Any] = {}
        for (state, reason), n in sorted(outcomes.items()):
            entry = states.setdefault(state, {"total": 0, "by_reason": {}})
            entry["total"] += n
            if reason:
                entry["by_reason"][reason] = n
        states[FinalState.IN_FLIGHT.value] = {"total": in_flight, "by_reason": {}}
        return {"entered": entered, "states": states}
