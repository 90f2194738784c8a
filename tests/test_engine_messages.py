"""``sim.ops.message``: a frozen, slotted dataclass with a cheaper ``__init__`` must behave
exactly like ``@dataclass(frozen=True, slots=True)``."""

from __future__ import annotations

import dataclasses
from dataclasses import field
from typing import Any

import pytest

from sim.ops import Operation, message


@message
class Sample(Operation):
    target: str
    rows: list[int] = field(default_factory=list)
    note: str = "none"
    timeout: float | None = None
    flag: bool = field(default=False, kw_only=True)


@dataclasses.dataclass(frozen=True, slots=True)
class Plain(Operation):
    target: str
    rows: list[int] = field(default_factory=list)
    note: str = "none"
    timeout: float | None = None
    flag: bool = field(default=False, kw_only=True)


@message
class Checked(Operation):
    target: str
    timeout: float | None = None

    def __post_init__(self) -> None:
        if not self.target:
            raise ValueError("empty target")


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [(("db",), {}), (("db", [1, 2], "n", 0.5), {"flag": True}), ((), {"target": "db", "note": "k", "timeout": None})],
)
def test_a_message_is_built_like_the_dataclass_it_replaces(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    ours, theirs = Sample(*args, **kwargs), Plain(*args, **kwargs)
    assert dataclasses.asdict(ours) == dataclasses.asdict(theirs)
    assert repr(ours).replace("Sample", "Plain") == repr(theirs)
    assert ours == Sample(*args, **kwargs) and hash(ours.target) == hash(theirs.target)
    assert dataclasses.replace(ours, note="other").note == "other"


def test_a_message_is_frozen_slotted_and_gets_a_fresh_default_each_time() -> None:
    one, two = Sample("db"), Sample("db")
    assert one.rows == [] and one.rows is not two.rows
    with pytest.raises(dataclasses.FrozenInstanceError):
        one.note = "x"  # type: ignore[misc]
    assert not hasattr(one, "__dict__")
    with pytest.raises(TypeError):
        Sample("db", [], "n", None, True)  # type: ignore[call-arg]  # flag is keyword-only
    with pytest.raises(TypeError):
        Sample()  # type: ignore[call-arg]


def test_a_message_with_post_init_keeps_the_generated_init() -> None:
    assert Checked("db").target == "db"
    with pytest.raises(ValueError, match="empty"):
        Checked("")
