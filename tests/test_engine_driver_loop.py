"""One loop for both drivers: the simulation driver and run_direct answer every operation alike."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

from sim.actor import Actor
from sim.distributions import constant
from sim.driver import Abandoned, interpret, run_direct
from sim.kernel import Kernel
from sim.ops import Logic, Now, Operation, OpError, Rejected, Sleep


@dataclass(frozen=True, slots=True)
class Get(Operation):
    target: str
    timeout: float | None = None


@dataclass(frozen=True, slots=True)
class Shout(Operation):
    """A local operation no driver knows."""

    local: ClassVar[bool] = True


def script() -> Logic[list[Any]]:
    """Touches every branch of the loop: Now, Sleep, a remote call, an error, an unknown local op."""
    seen: list[Any] = [(yield Now())]
    yield Sleep(2.0)
    seen.append((yield Now()))
    seen.append((yield Get("db")))
    try:
        yield Get("broken")
    except OpError as error:
        seen.append(error.reason)
    try:
        yield Shout()
    except TypeError as error:
        seen.append(type(error).__name__)
    return seen


class Db(Actor):
    def handle(self, op: Operation, origin: str) -> Any:
        if isinstance(op, Get) and op.target == "db":
            return "row"
        raise Rejected("broken", "refused")


def test_both_drivers_give_the_same_answers() -> None:
    def handle(op: Operation) -> Any:
        if isinstance(op, Get) and op.target == "db":
            return "row"
        raise Rejected("broken", "refused")

    direct, clock = run_direct(script(), handle, start=10.0)

    kernel = Kernel(seed=1)
    kernel.network.add_node("client", zone="z", region="r")
    Db(kernel, "db", zone="z", region="r", service_time=constant(0.0))
    Db(kernel, "broken", zone="z", region="r", service_time=constant(0.0))
    outcome: dict[str, Any] = {}
    kernel.env.run(until=10.0)
    kernel.driver.spawn(script(), "client", lambda result: outcome.update(result=result))
    kernel.run(20)
    simulated = outcome["result"]

    assert direct == [10.0, 12.0, "row", "broken", "TypeError"]
    assert clock == 12.0
    assert simulated[2:] == direct[2:]
    assert simulated[:2] == [10.0, 12.0]


def test_alive_check_closes_the_logic_and_abandons() -> None:
    closed: list[bool] = []

    def logic() -> Logic[None]:
        try:
            while True:
                yield Sleep(1.0)
        finally:
            closed.append(True)

    steps = 0

    def alive() -> bool:
        nonlocal steps
        steps += 1
        return steps < 3

    def sleep(seconds: float) -> Any:
        return
        yield

    def call(op: Operation) -> Any:
        raise AssertionError("no remote operation expected")
        yield

    loop = interpret(logic(), sleep=sleep, now=lambda: 0.0, call=call, alive=alive, who="worker")
    with pytest.raises(Abandoned, match="worker"):
        next(loop)
    assert closed == [True]
