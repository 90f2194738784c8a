"""sim.ledger: tracked and counted items, and the invariants a run reports."""

from __future__ import annotations

import pytest

from sim.ledger import FinalState, Invariant, Ledger


def invariant(invariants: list[Invariant], name: str) -> Invariant:
    matches = [inv for inv in invariants if inv.name == name]
    assert len(matches) == 1, [inv.name for inv in invariants]
    return matches[0]


def test_tracked_items_settle_once_and_report_holds():
    ledger = Ledger()
    for i in range(4):
        ledger.track("command", i)
    ledger.settle("command", 0, FinalState.APPLIED)
    ledger.settle("command", 1, FinalState.FAILED, "timeout")
    ledger.settle("command", 2, FinalState.FAILED, "timeout")
    assert ledger.state_of("command", 1) == (FinalState.FAILED, "timeout")
    assert ledger.state_of("command", 3) == (FinalState.IN_FLIGHT, "")
    assert ledger.settled("command", FinalState.FAILED) == 2
    assert ledger.settled("command", FinalState.FAILED, "timeout") == 2
    assert ledger.settled("command", FinalState.FAILED, "other") == 0
    table, invariants = ledger.report({})
    assert invariant(invariants, "command: each settled exactly once").held
    assert table["command"]["entered"] == 4
    assert table["command"]["states"]["failed"] == {"total": 2, "by_reason": {"timeout": 2}}
    assert table["command"]["states"]["applied"]["total"] == 1
    assert table["command"]["states"]["in_flight"]["total"] == 1


def test_tracked_double_settle_is_a_violated_invariant():
    ledger = Ledger()
    ledger.track("command", "c1")
    ledger.track("command", "c2")
    ledger.settle("command", "c1", FinalState.APPLIED)
    ledger.settle("command", "c1", FinalState.FAILED, "late")  # second settle
    # the first outcome stands; the second is not counted as an outcome
    assert ledger.state_of("command", "c1") == (FinalState.APPLIED, "")
    assert ledger.settled("command", FinalState.FAILED) == 0
    _, invariants = ledger.report({})
    inv = invariant(invariants, "command: each settled exactly once")
    assert not inv.held
    assert "1 settled more than once" in inv.detail
    assert inv.as_dict()["held"] is False


def test_tracked_misuse_raises():
    ledger = Ledger()
    ledger.track("command", 1)
    with pytest.raises(ValueError, match=r"^command 1 is already tracked$"):
        ledger.track("command", 1)
    with pytest.raises(ValueError, match=r"^in_flight is not a final state one can settle into$"):
        ledger.settle("command", 1, FinalState.IN_FLIGHT)


def test_counted_conservation_holds_when_inventory_matches():
    ledger = Ledger()
    ledger.enter("reading", 1000)
    ledger.settle_count("reading", FinalState.STORED, n=900)
    ledger.settle_count("reading", FinalState.DROPPED, "validation", n=40)
    ledger.settle_count("reading", FinalState.DEAD_LETTERED, "poison", n=10)
    ledger.settle_count("reading", FinalState.DROPPED, "noop", n=0)  # ignored
    table, invariants = ledger.report({"reading": 50})
    inv = invariant(invariants, "reading: conservation")
    assert inv.held, inv.detail
    assert table["reading"]["entered"] == 1000
    assert table["reading"]["states"]["in_flight"]["total"] == 50
    assert table["reading"]["states"]["dropped"] == {"total": 40, "by_reason": {"validation": 40}}
    assert ledger.settled("reading", FinalState.STORED) == 900


@pytest.mark.parametrize("held_by_components", [0, 49, 51])
def test_counted_conservation_fails_when_inventory_differs(held_by_components):
    ledger = Ledger()
    ledger.enter("reading", 100)
    ledger.settle_count("reading", FinalState.STORED, n=50)
    _, invariants = ledger.report({"reading": held_by_components} if held_by_components else {})
    inv = invariant(invariants, "reading: conservation")
    assert not inv.held
    assert "in flight 50" in inv.detail


def test_counted_over_settled_fails_even_with_matching_inventory():
    ledger = Ledger()
    ledger.enter("reading", 10)
    ledger.settle_count("reading", FinalState.STORED, n=12)  # two settled twice
    _, invariants = ledger.report({"reading": -2})
    assert not invariant(invariants, "reading: conservation").held


def test_counted_settled_without_entering_breaks_conservation():
    # items that appear from nowhere are as much a bookkeeping bug as items that vanish
    ledger = Ledger()
    ledger.settle_count("reading", FinalState.STORED, n=5)
    table, invariants = ledger.report({})
    assert not invariant(invariants, "reading: conservation").held
    assert table["reading"]["entered"] == 0


def test_counted_settle_in_flight_rejected():
    with pytest.raises(ValueError, match=r"^in_flight is not a final state one can settle into$"):
        Ledger().settle_count("reading", FinalState.IN_FLIGHT, n=1)


def test_report_is_sorted_and_stable():
    ledger = Ledger()
    ledger.enter("z-kind", 1)
    ledger.enter("a-kind", 1)
    ledger.track("m-kind", 1)
    _, invariants = ledger.report({"z-kind": 1, "a-kind": 1})
    assert [inv.name for inv in invariants] == [
        "m-kind: each settled exactly once",
        "a-kind: conservation",
        "z-kind: conservation",
    ]
    assert all(inv.held for inv in invariants)
