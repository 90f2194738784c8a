"""What a smart meter reports: one reading, named field by field.

A reading is a plain 7-tuple ``(device_id, time, power_watts, voltage, current,
schema_version, is_copy)`` whose positions are named by the constants below; every module
reads a field by its name (``reading[POWER_WATTS]``), none by a bare number.

Why not a ``NamedTuple``: readings are the twin's bulk data (millions per simulated hour),
and CPython's garbage collector stops tracking a plain tuple of numbers but keeps
tracking every instance of a tuple subclass, so each collection walks them all.  Measured
on the fleet benchmark, NamedTuple readings made the whole run 16-18 % slower.  The
``Reading`` type alias still gives the type checker the fields' types, and
:func:`as_dict` gives a notebook the names.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = [
    "CURRENT",
    "DEVICE_ID",
    "FIELDS",
    "IS_COPY",
    "POWER_WATTS",
    "SCHEMA_VERSION",
    "TIME",
    "VOLTAGE",
    "Reading",
    "as_copy",
    "as_dict",
    "reading",
    "with_schema",
]

Reading = tuple[int, float, float, float, float, int, int]
"""``(device_id, time, power_watts, voltage, current, schema_version, is_copy)``."""

FIELDS = ("device_id", "time", "power_watts", "voltage", "current", "schema_version", "is_copy")
DEVICE_ID: Final = 0
TIME: Final = 1
POWER_WATTS: Final = 2
VOLTAGE: Final = 3
CURRENT: Final = 4
SCHEMA_VERSION: Final = 5
IS_COPY: Final = 6
"""Positions of the fields (``Final``, so the type checker knows each field's type).
``TIME`` is when the meter took the reading (with ``DEVICE_ID`` the key of deduplication);
``SCHEMA_VERSION`` is the firmware's payload format (a consumer that cannot decode it meets
a poison record); ``IS_COPY`` is 1 for an extra copy made by an MQTT resend or a
duplicating network: the twin's ledger needs it, and no decision of the system's logic may
depend on it (a real consumer cannot see it)."""


def reading(
    device_id: int,
    time: float,
    power_watts: float,
    voltage: float,
    current: float,
    schema_version: int,
    is_copy: int = 0,
) -> Reading:
    """A reading from its fields, by name."""
    return (device_id, time, power_watts, voltage, current, schema_version, is_copy)


def as_copy(original: Reading) -> Reading:
    """The same reading, marked as an extra copy."""
    device_id, time, power_watts, voltage, current, schema_version, _ = original
    return (device_id, time, power_watts, voltage, current, schema_version, 1)


def with_schema(original: Reading, schema_version: int) -> Reading:
    """The same reading in another payload format (what a poison fault sends)."""
    device_id, time, power_watts, voltage, current, _, is_copy = original
    return (device_id, time, power_watts, voltage, current, schema_version, is_copy)


def as_dict(item: Reading) -> dict[str, Any]:
    """The reading as ``{field: value}``, for people reading it."""
    return dict(zip(FIELDS, item, strict=True))
