"""Expectations: what must hold in a run's result, written as data in the scenario file.

Two forms, in the ``expect:`` section, keyed by variant (or ``between`` for comparisons)::

    expect:
      as-designed:
        - commands.orphaned > 0
      outbox:
        - commands.orphaned == 0
        - commands.success_rate >= 0.999
      between:
        - analytics.availability: breaker > as-designed + 0.1

A *path* names a number in the result: dotted keys from the result's top level
(``components.iot-core.served``), where a path that does not start with a top-level key
is looked up under ``flows`` (``commands.orphaned`` is ``flows.commands.orphaned``).  An
*absolute* expectation compares one variant's value with a number; a *relative* one
compares two variants' values, the right side optionally shifted (``+ 0.1``, ``- 5``) or
scaled (``* 2``).  Operators: ``<``, ``<=``, ``>``, ``>=``, ``==``, ``!=``; ``==`` on floats
means equal within 1e-9 (relative).

Parsing happens at load time, and every path is checked against the paths the model
really produces (:func:`check_paths`), so a typo is an error with the file's line, not a
silent pass.
"""

from __future__ import annotations

import difflib
import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BETWEEN",
    "VARIANT_NAME",
    "Expectation",
    "Verdict",
    "check_paths",
    "evaluate",
    "numeric_paths",
    "parse",
    "value_at",
]

BETWEEN = "between"
"""The ``expect:`` key of expectations that compare two variants."""

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": lambda a, b: math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12),
    "!=": lambda a, b: not math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12),
    "<": operator.lt,
    ">": operator.gt,
}
_PATH = r"[A-Za-z_][\w-]*(?:\.[\w-]+)*"
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_OP = r"<=|>=|==|!=|<|>"
VARIANT_NAME = r"[a-z0-9][a-z0-9._-]*"
"""What a variant name looks like (a slug)."""
_ABSOLUTE = re.compile(rf"^\s*(?P<path>{_PATH})\s*(?P<op>{_OP})\s*(?P<number>{_NUMBER})\s*$")
_RELATIVE = re.compile(
    rf"^\s*(?P<path>{_PATH})\s*:\s*(?P<left>{VARIANT_NAME})\s*(?P<op>{_OP})\s*(?P<right>{VARIANT_NAME})"
    rf"(?:\s*(?P<shift>[-+*])\s*(?P<amount>{_NUMBER}))?\s*$"
)


@dataclass(frozen=True)
class Expectation:
    """One parsed expectation: ``left`` (a variant) ``op`` a number or ``right`` (shifted)."""

    text: str
    path: str
    op: str
    left: str
    number: float | None = None
    right: str | None = None
    shift: str | None = None
    amount: float = 0.0

    @property
    def variants(self) -> tuple[str, ...]:
        """The variants whose results it reads."""
        return (self.left,) if self.right is None else (self.left, self.right)


@dataclass(frozen=True)
class Verdict:
    """Whether an expectation held, with the values it compared."""

    expectation: Expectation
    held: bool
    measured: float | None
    against: float | None
    detail: str

    def as_dict(self) -> dict[str, Any]:
        """Plain data for result files."""
        return {
            "expect": self.expectation.text,
            "variant": self.expectation.left,
            "held": self.held,
            "measured": self.measured,
            "against": self.against,
            "detail": self.detail,
        }


def parse(text: str, variant: str) -> Expectation:
    """Parse one expectation of ``variant`` (or of :data:`BETWEEN`); ValueError says what is wrong."""
    if variant == BETWEEN:
        match = _RELATIVE.match(text)
        if match is None:
            raise ValueError(
                f"expected '<path>: <variant> <op> <variant> [+|-|* <number>]', e.g. "
                f"'analytics.availability: breaker > as-designed + 0.1' (got {text!r})"
            )
        amount = float(match["amount"]) if match["amount"] else 0.0
        if not math.isfinite(amount):
            raise ValueError(f"the shift must be a finite number (got {match['amount']})")
        return Expectation(
            text, match["path"], match["op"], match["left"], right=match["right"], shift=match["shift"], amount=amount
        )
    match = _ABSOLUTE.match(text)
    if match is None:
        raise ValueError(f"expected '<path> <op> <number>', e.g. 'commands.orphaned == 0' (got {text!r})")
    number = float(match["number"])
    if not math.isfinite(number):
        raise ValueError(f"the number must be finite (got {match['number']})")
    return Expectation(text, match["path"], match["op"], variant, number=number)


def _resolve(result: Mapping[str, Any], path: str) -> list[str]:
    parts = path.split(".")
    if parts[0] not in result and "flows" in result:
        parts = ["flows", *parts]
    return parts


def value_at(result: Mapping[str, Any], path: str) -> Any:
    """The value at ``path`` in ``result`` (see the module docstring); KeyError if absent."""
    node: Any = result
    for part in _resolve(result, path):
        if not isinstance(node, Mapping) or part not in node:
            raise KeyError(path)
        node = node[part]
    return node


def numeric_paths(result: Mapping[str, Any]) -> set[str]:
    """Every dotted path to a number (or a None that stands for one) in ``result``."""
    found: set[str] = set()

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, Mapping):
            for key, child in node.items():
                walk(child, f"{prefix}.{key}" if prefix else str(key))
        elif node is None or (isinstance(node, int | float) and not isinstance(node, bool)):
            found.add(prefix)
            if prefix.startswith("flows."):
                found.add(prefix.removeprefix("flows."))

    walk(result, "")
    return found


def check_paths(expectation: Expectation, known: Iterable[str]) -> str | None:
    """None if ``expectation``'s path is a number the model produces, else the message."""
    paths = set(known)
    if expectation.path in paths:
        return None
    close = difflib.get_close_matches(expectation.path, sorted(paths), n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return f"{expectation.path!r} is no number in this model's results{hint}"


def evaluate(expectation: Expectation, results: Mapping[str, Mapping[str, Any]]) -> Verdict:
    """Judge ``expectation`` on the results of each variant, by name."""
    compare = _OPERATORS[expectation.op]
    measured = _number(value_at(results[expectation.left], expectation.path))
    if expectation.right is None:
        against = expectation.number
        shown = f"{expectation.path} = {_show(measured)}"
    else:
        base = _number(value_at(results[expectation.right], expectation.path))
        against = None if base is None else _shifted(base, expectation.shift, expectation.amount)
        shown = f"{expectation.left}: {_show(measured)}, {expectation.right}: {_show(base)}"
    if measured is None or against is None:
        return Verdict(expectation, False, measured, against, f"{shown} (no value to compare)")
    return Verdict(expectation, compare(measured, against), measured, against, shown)


def _number(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"not a number: {value!r}")
    return float(value)


def _shifted(value: float, shift: str | None, amount: float) -> float:
    if shift == "+":
        return value + amount
    if shift == "-":
        return value - amount
    if shift == "*":
        return value * amount
    return value


def _show(value: float | None) -> str:
    return "none" if value is None else f"{value:.6g}"
