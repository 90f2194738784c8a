"""Time spans in scenario files: ``"250ms"``, ``"90s"``, ``"1h30m"`` or plain seconds.

Components:

* :data:`Duration` -- a pydantic-ready ``float`` of seconds that must be strictly positive
  (timeouts, windows, MTTRs).
* :data:`Offset` -- the same, but zero is allowed (``at: 0s``).
* :func:`parse_duration` / :func:`format_duration` -- the conversions behind both, usable
  on their own (reports, CLI arguments).

Accepted spellings: a number (int or float, meaning seconds) or a string of one or more
``<number><unit>`` parts with units in decreasing order, taken from ``d``, ``h``, ``m``,
``s`` and ``ms`` (``"1.5h"``, ``"1h30m"``, ``"2m 30s"``). A string without a unit is
refused on purpose: ``"90"`` could mean seconds or milliseconds. Validated values are plain
floats, so models serialise them back to seconds.
"""

from __future__ import annotations

import datetime
import json
import math
import re
from numbers import Real
from typing import Annotated, Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

__all__ = ["DURATION_PATTERN", "Duration", "Offset", "format_duration", "parse_duration"]

# Units from the largest down, with their length in seconds; a string names each at most once.
_UNITS: tuple[tuple[str, float], ...] = (
    ("d", 86400.0),
    ("h", 3600.0),
    ("m", 60.0),
    ("s", 1.0),
    ("ms", 0.001),
)
_NUMBER = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"

#: The accepted string syntax, written to mean the same in Python and in ECMA-262 regular
#: expressions (JSON Schema ``pattern``): one group per unit, in the order of ``_UNITS``.
DURATION_PATTERN = r"^\s*(?=[0-9.])" + "".join(rf"(?:({_NUMBER})\s*{unit}\s*)?" for unit, _ in _UNITS) + r"$"
_DURATION_RE = re.compile(DURATION_PATTERN)
_BARE_NUMBER_RE = re.compile(rf"\s*{_NUMBER}\s*")

_EXAMPLES = '"90s", "30m" or "6h"'


def _show(value: Any) -> str:
    """Render a rejected input for a message: ``"text"``, ``-3``, ``null``, ``a list``.

    Scalars print as YAML users wrote them (strings quoted and cut short); collections and
    other objects are named by kind, since dumping them would drown the message.
    """
    if isinstance(value, str):
        return json.dumps(value if len(value) <= 40 else value[:37] + "...", ensure_ascii=False)
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float) and not math.isfinite(value):
        return {math.inf: ".inf", -math.inf: "-.inf"}.get(value, ".nan")
    if isinstance(value, int) and value.bit_length() > 200:
        return "a very large number"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (datetime.date, datetime.time)):  # YAML reads 2024-05-01 as a date
        return f"the timestamp {value.isoformat()}"
    kinds = {dict: "a mapping", list: "a list", tuple: "a list", set: "a set", bytes: "binary data"}
    kind = next((kind for cls, kind in kinds.items() if isinstance(value, cls)), None)
    return kind or f"a {type(value).__name__}"


def _seconds(value: Any) -> float | None:
    """Seconds meant by ``value``, or ``None`` when it is not a finite, non-negative span."""
    seconds: float
    if isinstance(value, bool):  # YAML's yes/no/true/false are never durations
        return None
    if isinstance(value, Real):
        try:
            seconds = float(value)
        except (OverflowError, ValueError):
            return None
    elif isinstance(value, str):
        match = _DURATION_RE.fullmatch(value)
        if match is None:
            return None
        parts = zip(match.groups(), _UNITS, strict=True)
        seconds = sum(float(number) * scale for number, (_, scale) in parts if number)
    else:
        return None
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


def _rejection(value: Any, adjective: str) -> str:
    """The message for an input that is not a duration of the wanted kind."""
    hint = ""
    if isinstance(value, str) and _BARE_NUMBER_RE.fullmatch(value):
        hint = f'; add a unit, e.g. "{value.strip()}s"'
    return f"expected a {adjective}duration like {_EXAMPLES} (got {_show(value)}{hint})"


def parse_duration(value: str | float) -> float:
    """Return the seconds meant by ``value`` (a number of seconds or a string like ``"1h30m"``).

    Raises:
        ValueError: ``value`` is not a finite, non-negative duration; the message says what was
            expected and what was got.
    """
    seconds = _seconds(value)
    if seconds is None:
        raise ValueError(_rejection(value, ""))
    return seconds


def format_duration(seconds: float) -> str:
    """Return the most compact spelling of ``seconds``: ``5400 -> "1h30m"``, ``0.25 -> "250ms"``.

    The result parses back to the same value (to the nearest nanosecond) for every finite,
    non-negative input. Negative spans get a leading ``-`` and non-finite ones print as
    ``"inf"``/``"nan"``; :func:`parse_duration` refuses both, as scenario files must.
    """
    seconds = float(seconds)
    if not math.isfinite(seconds):
        return str(seconds)
    if seconds < 0:
        return "-" + format_duration(-seconds)
    # Whole nanoseconds split into whole milliseconds and a decimal fraction of one.
    rest, nanos = divmod(round(seconds * 1e9), 1_000_000)
    fraction = f".{nanos:06d}".rstrip("0") if nanos else ""
    parts = []
    for unit, scale in _UNITS:
        unit_millis = round(scale * 1000)
        count, rest = divmod(rest, unit_millis)
        if unit == "ms":
            if count or fraction:
                parts.append(f"{count}{fraction}ms")
        elif count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


class _Span:
    """Pydantic hook turning durations (``"90s"`` or seconds) into float seconds."""

    def __init__(self, *, allow_zero: bool) -> None:
        self.allow_zero = allow_zero

    def _validate(self, value: Any) -> float:
        seconds = _seconds(value)
        if seconds is None or (seconds == 0 and not self.allow_zero):
            adjective = "non-negative " if self.allow_zero else "positive "
            raise PydanticCustomError("duration", _rejection(value, adjective))
        return seconds

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            self._validate, serialization=core_schema.simple_ser_schema("float")
        )

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        bound = {"minimum": 0} if self.allow_zero else {"exclusiveMinimum": 0}
        number = {"type": "number", **bound}
        if getattr(handler, "mode", "validation") == "serialization":
            return number
        return {"anyOf": [number, {"type": "string", "pattern": DURATION_PATTERN}]}

    def __repr__(self) -> str:
        return f"_Span(allow_zero={self.allow_zero})"


#: A strictly positive time span in seconds; YAML may say ``90``, ``"90s"`` or ``"1h30m"``.
Duration = Annotated[float, _Span(allow_zero=False)]

#: A time span in seconds that may be zero, e.g. when a fault starts (``at: 0s``).
Offset = Annotated[float, _Span(allow_zero=True)]
