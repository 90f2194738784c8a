"""Run-time checks of constructor arguments, shared by the policies.

Why plain ``bool`` functions and not ``isinstance`` at the call site: typeshed's ``int`` and
``float`` are not subclasses of :class:`numbers.Integral` and :class:`numbers.Real`, and mypy
decides that a value annotated ``float`` can never be a ``Real`` (their method signatures are
incompatible). Narrowing with ``isinstance(value, Real)`` would therefore make the rest of the
check, and sometimes the rest of the function, unreachable to the type checker, which then
stops checking it. Behind a function boundary the argument keeps its declared type, while the
run-time test stays the same: any :class:`~numbers.Integral` or :class:`~numbers.Real` (so also
``numpy`` scalars and :class:`fractions.Fraction`) is accepted.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

__all__ = ["is_count", "is_finite", "is_real"]


_PLAIN = (float, int)
"""Checked by exact type first: policies run on every request, and an ABC ``isinstance``
costs ten times a ``type`` test (``bool`` is not ``int`` here, so it takes the slow path)."""


def is_count(value: object) -> bool:
    """Whether ``value`` is an integer (any :class:`~numbers.Integral`) and not a ``bool``."""
    if type(value) is int:
        return True
    return isinstance(value, Integral) and not isinstance(value, bool)


def is_real(value: object) -> bool:
    """Whether ``value`` is a real number (any :class:`~numbers.Real`)."""
    return type(value) in _PLAIN or isinstance(value, Real)


def is_finite(value: object) -> bool:
    """Whether ``value`` is a real number (any :class:`~numbers.Real`) and finite."""
    if type(value) in _PLAIN:
        return math.isfinite(value)  # type: ignore[arg-type]
    return isinstance(value, Real) and math.isfinite(value)
