"""Tests for sim.durations: parsing, formatting and the pydantic Duration/Offset types."""

from __future__ import annotations

import math
import re

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter, ValidationError

from sim.durations import DURATION_PATTERN, Duration, Offset, format_duration, parse_duration

DURATION = TypeAdapter(Duration)
OFFSET = TypeAdapter(Offset)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("90s", 90.0),
        ("30m", 1800.0),
        ("6h", 21600.0),
        ("1d", 86400.0),
        ("1.5h", 5400.0),
        (".5s", 0.5),
        ("1h30m", 5400.0),
        ("1d6h", 108000.0),
        ("2m 30s", 150.0),
        ("1m30s500ms", 90.5),
        (" 45s ", 45.0),
        ("0s", 0.0),
        (90, 90.0),
        (0.25, 0.25),
    ],
)
def test_parse_duration_accepts(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("value", "got"),
    [
        ("", '""'),
        ("-5s", '"-5s"'),
        ("1h1h", '"1h1h"'),
        ("30s1m", '"30s1m"'),  # units must decrease
        ("5 minutes", '"5 minutes"'),
        ("1e3s", '"1e3s"'),
        ("6H", '"6H"'),
        (-3, "-3"),
        (True, "true"),
        (None, "null"),
        (math.inf, ".inf"),
        (math.nan, ".nan"),
        ([1], "a list"),
        (10**400, "a very large number"),
    ],
)
def test_parse_duration_rejects(value: object, got: str) -> None:
    message = f'expected a duration like "90s", "30m" or "6h" (got {got})'
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        parse_duration(value)  # type: ignore[arg-type]
    assert str(info.value) == message


def test_a_unitless_string_gets_a_hint() -> None:
    with pytest.raises(ValueError, match=r'\(got "90"; add a unit, e.g. "90s"\)$'):
        parse_duration("90")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (5400, "1h30m"),
        (0.25, "250ms"),
        (0, "0s"),
        (90, "1m30s"),
        (86400, "1d"),
        (108000, "1d6h"),
        (1.5, "1s500ms"),
        (0.0005, "0.5ms"),
        (3600.001, "1h1ms"),
        (-90, "-1m30s"),
        (math.inf, "inf"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=0, max_value=1e9, allow_nan=False))
def test_format_then_parse_round_trips(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds, rel=1e-12, abs=1e-9)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789.dhms -e", max_size=12) | st.text(max_size=12))
def test_parse_raises_only_value_error_and_agrees_with_the_pattern(text: str) -> None:
    try:
        seconds = parse_duration(text)
    except ValueError:
        matches_pattern = False
    else:
        assert math.isfinite(seconds) and seconds >= 0
        matches_pattern = True
    schema = {"type": "string", "pattern": DURATION_PATTERN}
    assert jsonschema.Draft202012Validator(schema).is_valid(text) == matches_pattern


class Timing(BaseModel):
    timeout: Duration
    at: Offset = 0.0


def test_model_fields_take_strings_and_numbers_and_dump_seconds() -> None:
    timing = Timing.model_validate({"timeout": "1h30m", "at": "0s"})
    assert timing.timeout == 5400.0 and timing.at == 0.0
    assert timing.model_dump() == {"timeout": 5400.0, "at": 0.0}
    assert Timing.model_validate_json('{"timeout": 2.5, "at": 1}').model_dump_json() == '{"timeout":2.5,"at":1.0}'


@pytest.mark.parametrize(("value", "got"), [(0, "0"), ("0s", '"0s"'), ("-5s", '"-5s"'), (-3, "-3"), ("soon", '"soon"')])
def test_duration_must_be_positive(value: object, got: str) -> None:
    with pytest.raises(ValidationError) as info:
        DURATION.validate_python(value)
    (error,) = info.value.errors()
    assert error["type"] == "duration"
    assert error["msg"] == f'expected a positive duration like "90s", "30m" or "6h" (got {got})'


def test_offset_allows_zero_but_not_negative() -> None:
    assert OFFSET.validate_python(0) == 0.0
    assert OFFSET.validate_python("0s") == 0.0
    with pytest.raises(ValidationError) as info:
        OFFSET.validate_python("-5s")
    assert info.value.errors()[0]["msg"] == 'expected a non-negative duration like "90s", "30m" or "6h" (got "-5s")'


def test_json_schema() -> None:
    pattern = {"type": "string", "pattern": DURATION_PATTERN}
    assert DURATION.json_schema() == {"anyOf": [{"type": "number", "exclusiveMinimum": 0}, pattern]}
    assert OFFSET.json_schema() == {"anyOf": [{"type": "number", "minimum": 0}, pattern]}
    assert DURATION.json_schema(mode="serialization") == {"type": "number", "exclusiveMinimum": 0}
    validator = jsonschema.Draft202012Validator(Timing.model_json_schema())
    assert validator.is_valid({"timeout": "1h30m", "at": 0})
    assert not validator.is_valid({"timeout": "90"})
    assert not validator.is_valid({"timeout": 0})
