"""Tests for sim.loader: every bad scenario becomes located Problems, never another exception."""

from __future__ import annotations

import os
import re
import textwrap
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field

from sim.durations import Duration, Offset
from sim.errors import Problem, ScenarioError
from sim.loader import Loc, load_scenario_file, load_scenario_text

# -- a toy scenario schema with the shapes real ones use ---------------------------------------


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Broker(Strict):
    name: str
    replicas: int = Field(default=1, gt=0)


class Latency(Strict):
    kind: Literal["latency"]
    target: str
    at: Offset = 0.0
    extra_ms: int = Field(gt=0)


class Crash(Strict):
    kind: Literal["crash"]
    target: str
    at: Offset = 0.0
    restart_after: Duration = 60.0


class Scenario(Strict):
    name: str
    duration: Duration
    seed: int = 0
    mode: Literal["fast", "exact"] = "fast"
    brokers: list[Broker] = []
    faults: list[Annotated[Latency | Crash, Field(discriminator="kind")]] = []


VALID = """\
# a comment first
name: demo
duration: 1h30m
seed: 7
mode: exact
brokers:
  - name: b1
    replicas: 3
  - name: b2
faults:
  - kind: latency
    target: b1
    at: 10m
    extra_ms: 250
  - kind: crash
    target: b2
    restart_after: 90s
"""


def known_targets(scenario: Scenario) -> list[tuple[Loc, str]]:
    names = {broker.name for broker in scenario.brokers}
    return [
        (("faults", i, "target"), f"unknown target {fault.target!r} (brokers: {', '.join(sorted(names))})")
        for i, fault in enumerate(scenario.faults)
        if fault.target not in names
    ]


def problems(text: str, **kwargs: Any) -> list[tuple[int | None, str, str]]:
    """(line, field, message) of each problem found in ``text``."""
    with pytest.raises(ScenarioError) as info:
        load_scenario_text(textwrap.dedent(text), Scenario, filename="s.yaml", **kwargs)
    assert all(p.file == "s.yaml" for p in info.value.problems)
    return [(p.line, p.field, p.message) for p in info.value.problems]


# -- valid input -----------------------------------------------------------------------------


def test_valid_scenario_loads() -> None:
    scenario = load_scenario_text(VALID, Scenario, check=known_targets)
    assert scenario.duration == 5400.0
    assert [b.replicas for b in scenario.brokers] == [3, 1]
    assert isinstance(scenario.faults[0], Latency) and scenario.faults[0].at == 600.0
    assert isinstance(scenario.faults[1], Crash) and scenario.faults[1].restart_after == 90.0


def test_anchors_aliases_and_merge_keys_are_supported() -> None:
    text = """\
    name: demo
    duration: 5m
    brokers:
      - &base {name: b1, replicas: 2}
      - <<: *base
        name: b2
    """
    scenario = load_scenario_text(textwrap.dedent(text), Scenario)
    assert [(b.name, b.replicas) for b in scenario.brokers] == [("b1", 2), ("b2", 2)]


# -- located messages --------------------------------------------------------------------------


def test_unknown_field_is_reported_at_its_key_with_the_allowed_names() -> None:
    assert problems("name: demo\nduration: 1h\ndurration: 5s\n") == [
        (
            3,
            "durration",
            "unknown field, did you mean 'duration'? (allowed: name, duration, seed, mode, brokers, faults)",
        )
    ]


def test_unknown_field_inside_a_union_variant_drops_the_tag_from_the_path() -> None:
    text = """\
    name: demo
    duration: 1h
    faults:
      - kind: crash
        target: b1
        restart_afer:
          90s
    """
    assert problems(text) == [
        (
            6,
            "faults[0].restart_afer",
            "unknown field, did you mean 'restart_after'? (allowed: kind, target, at, restart_after)",
        )
    ]


def test_wrong_types_show_what_was_expected_and_got() -> None:
    text = """\
    name: [demo]
    duration: 1h
    seed: abc
    mode: slow
    brokers: {name: b1}
    """
    assert problems(text) == [
        (1, "name", "expected a string (got a list)"),
        (3, "seed", 'expected an integer (got "abc")'),
        (4, "mode", "expected 'fast' or 'exact' (got \"slow\")"),
        (5, "brokers", "expected a list (got a mapping)"),
    ]


def test_bad_durations_and_constraints() -> None:
    text = """\
    name: demo
    duration: 0
    brokers:
      - name: b1
        replicas: -3
    faults:
      - kind: latency
        target: b1
        at: -5s
        extra_ms: 10
      - kind: crash
        target: b1
        restart_after: soon
    """
    assert problems(text) == [
        (2, "duration", 'expected a positive duration like "90s", "30m" or "6h" (got 0)'),
        (5, "brokers[0].replicas", "input should be greater than 0 (got -3)"),
        (9, "faults[0].at", 'expected a non-negative duration like "90s", "30m" or "6h" (got "-5s")'),
        (13, "faults[1].restart_after", 'expected a positive duration like "90s", "30m" or "6h" (got "soon")'),
    ]


def test_missing_fields_and_union_tags() -> None:
    text = """\
    name: demo
    faults:
      - kind: latency
        target: b1
      - kind: boom
      - target: b1
      - 3
    """
    assert problems(text) == [
        (1, "duration", "missing required field"),
        (3, "faults[0].extra_ms", "missing required field"),
        (5, "faults[1].kind", "expected one of 'latency', 'crash' (got \"boom\")"),
        (6, "faults[2].kind", "missing required field that selects the variant (one of 'latency', 'crash')"),
        (7, "faults[3]", "expected a mapping of fields (got 3)"),
    ]


def test_alternatives_of_a_plain_union_are_merged() -> None:
    class Limits(Strict):
        limit: int | bool

    with pytest.raises(ScenarioError) as info:
        load_scenario_text("limit: [1]\n", Limits)
    assert [p.message for p in info.value.problems] == ["expected an integer or true or false (got a list)"]


def test_yaml_syntax_error_has_its_line() -> None:
    text = """\
    name: demo
    duration: 1h
    brokers: [b1, b2
    seed: 3
    """
    assert problems(text) == [
        (4, "", "invalid YAML: expected ',' or ']', but got ':' (while parsing a flow sequence at line 3)")
    ]


def test_tabs_get_a_hint() -> None:
    ((line, field, message),) = problems("name: demo\nbrokers:\n\t- name: b1\n")
    assert (line, field) == (3, "")
    assert message.startswith("invalid YAML: found character '\\t' that cannot start any token")
    assert message.endswith("indent with spaces, YAML does not allow tabs there")


def test_duplicate_keys_are_reported_with_both_lines() -> None:
    text = """\
    name: demo
    duration: 1h
    brokers:
      - name: b1
        replicas: 2
        replicas: 3
    name: other
    """
    assert problems(text) == [
        (6, "brokers[0].replicas", "duplicate key 'replicas' (first at line 5)"),
        (7, "name", "duplicate key 'name' (first at line 1)"),
    ]


def test_check_problems_are_located_and_reported_with_the_rest() -> None:
    text = VALID.replace("target: b2", "target: b9")
    assert problems(text, check=known_targets) == [(16, "faults[1].target", "unknown target 'b9' (brokers: b1, b2)")]
    text += "name: again\n"
    assert problems(text, check=known_targets) == [
        (16, "faults[1].target", "unknown target 'b9' (brokers: b1, b2)"),
        (18, "name", "duplicate key 'name' (first at line 2)"),
    ]


def test_check_is_skipped_when_validation_fails() -> None:
    def explode(scenario: Scenario) -> list[tuple[Loc, str]]:
        raise AssertionError("check must not run on invalid data")

    assert problems("name: demo\n", check=explode) == [(1, "duration", "missing required field")]


def test_errors_in_aliased_nodes_point_at_the_anchor() -> None:
    text = """\
    name: demo
    duration: 1h
    brokers:
      - &b {name: b1, replica: 2}
      - *b
    """
    assert problems(text) == [
        (4, "brokers[0].replica", "unknown field, did you mean 'replicas'? (allowed: name, replicas)"),
        (4, "brokers[1].replica", "unknown field, did you mean 'replicas'? (allowed: name, replicas)"),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "",
            [
                (
                    None,
                    "",
                    "scenario is empty (expected a mapping with fields: name, duration, seed, mode, brokers, faults)",
                )
            ],
        ),
        (
            "# only a comment\n",
            [
                (
                    None,
                    "",
                    "scenario is empty (expected a mapping with fields: name, duration, seed, mode, brokers, faults)",
                )
            ],
        ),
        ("- name: demo\n", [(1, "", "expected a mapping of scenario fields at the top level (got a list)")]),
        ("just text\n", [(1, "", 'expected a mapping of scenario fields at the top level (got "just text")')]),
        ("name: a\nduration: 1s\n---\nname: b\n", [(3, "", "expected a single YAML document (found a second one)")]),
        (
            "1: x\nnull: y\nname: a\nduration: 1s\n",
            [(1, "1", "field names must be strings (got 1)"), (2, "null", "field names must be strings (got null)")],
        ),
        ("name: 2024-05-01\nduration: 1s\n", [(1, "name", "expected a string (got the timestamp 2024-05-01)")]),
        (
            "name: a\nduration: .inf\n",
            [(2, "duration", 'expected a positive duration like "90s", "30m" or "6h" (got .inf)')],
        ),
        (
            "name: a\nduration: 2024-13-01\n",
            [
                (
                    2,
                    "duration",
                    'cannot read value "2024-13-01": month must be in 1..12 (quote it if it is meant as text)',
                )
            ],
        ),
        ("name: !secret a\nduration: 1s\n", [(1, "name", "cannot read value \"a\": unsupported YAML tag '!secret'")]),
        ("a: &a [*a]\n", [(1, "", "an alias refers to a collection that contains it (no recursive data)")]),
        ("name: a\nduration: 1s\n[x]: 1\n", [(3, "", "expected a plain key such as a field name (got a list)")]),
        ('name: "a\x00"\n', [(1, "", "invalid YAML: unacceptable character #x0000 (no control characters)")]),
        ("[" * 5000, [(None, "", "the document is nested too deeply")]),
        ("name: a\r\nseed: x\r\nduration: 1s\r\n", [(2, "seed", 'expected an integer (got "x")')]),
        ("name: 'a\u2028b'\nseed: x\nduration: 1s\n", [(2, "seed", 'expected an integer (got "x")')]),  # YAML says 3
    ],
)
def test_odd_documents(text: str, expected: list[tuple[int | None, str, str]]) -> None:
    assert problems(text) == expected


def test_alias_bombs_are_refused() -> None:
    text = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        text += f"{name}: &{name} [{', '.join([f'*{prev}'] * 10)}]\n"
    assert problems(text) == [(1, "", "aliases expand the document to more than 1,000,000 values")]


def test_all_problems_are_reported_sorted_by_line_and_printed_for_the_cli() -> None:
    text = "seed: x\nname: demo\nmode: slow\nbogus: 1\n"
    with pytest.raises(ScenarioError) as info:
        load_scenario_text(text, Scenario, filename="scenarios/s.yaml")
    assert str(info.value) == "\n".join(
        [
            "scenarios/s.yaml:1: duration: missing required field",
            'scenarios/s.yaml:1: seed: expected an integer (got "x")',
            "scenarios/s.yaml:3: mode: expected 'fast' or 'exact' (got \"slow\")",
            "scenarios/s.yaml:4: bogus: unknown field (allowed: name, duration, seed, mode, brokers, faults)",
        ]
    )


# -- files ----------------------------------------------------------------------------------------


def test_load_scenario_file(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text("\ufeff" + VALID, encoding="utf-8")  # a BOM is tolerated
    assert load_scenario_file(path, Scenario, check=known_targets).name == "demo"
    (tmp_path / "bad.yaml").write_text("name: demo\nduration: -1h\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario_file(str(tmp_path / "bad.yaml"), Scenario)
    assert info.value.problems == [
        Problem(
            str(tmp_path / "bad.yaml"),
            2,
            "duration",
            'expected a positive duration like "90s", "30m" or "6h" (got "-1h")',
        )
    ]


def test_file_problems(tmp_path: Path) -> None:
    def only_problem(path: Path | str) -> Problem:
        with pytest.raises(ScenarioError) as info:
            load_scenario_file(path, Scenario)
        (problem,) = info.value.problems
        return problem

    assert only_problem(tmp_path / "nope.yaml") == Problem(
        str(tmp_path / "nope.yaml"), None, "", "no such scenario file"
    )
    assert only_problem(tmp_path).message == "is a directory, not a scenario file"
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"name: demo\n\xff\xfe\n")
    assert only_problem(binary) == Problem(
        str(binary), 2, "", "expected UTF-8 text (got the byte 0xff, which cannot be decoded)"
    )
    if os.name == "posix" and os.geteuid() != 0:
        locked = tmp_path / "locked.yaml"
        locked.write_text(VALID)
        locked.chmod(0)
        assert only_problem(locked).message == "cannot read scenario file: permission denied"


# -- never anything but ScenarioError --------------------------------------------------------------

YAML_BITS = [
    *"ab:-[]{},&*!|>'\"#\n\t ?.01~%@`",
    "kind", "name", "faults", "<<", "!!binary", "!!set", "yes", ".inf", "2024-13-01", "\x00", "\ufeff",
    "---", "  ", "\n  - ", "{}", "[]", "&x", "*x", "9" * 5000, "\u2028",
]  # fmt: skip


def assert_only_scenario_errors(text: str) -> None:
    try:
        load_scenario_text(text, Scenario, filename="fuzz.yaml", check=known_targets)
    except ScenarioError as err:
        problems = err.problems
    else:
        return  # a model is a fine answer too
    assert problems, "a ScenarioError must carry problems"
    lines = len(re.findall(r"\r\n?|\n", text)) + 1
    for problem in problems:
        assert problem.file == "fuzz.yaml" and problem.message
        assert problem.line is None or 1 <= problem.line <= lines
    keys = [(p.line or 0) for p in problems]
    assert keys == sorted(keys)


@settings(max_examples=200, deadline=None)
@given(st.text() | st.lists(st.sampled_from(YAML_BITS), max_size=40).map("".join))
def test_any_text_gives_a_model_or_a_scenario_error(text: str) -> None:
    assert_only_scenario_errors(text)


SCALARS = (
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8) | st.dates()
    | st.sampled_from(["1h", "0s", "-5s", "latency", "crash", "b1", "fast"])
)  # fmt: skip
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


def containers(data: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths of every mapping and list in ``data``."""
    found = [path] if isinstance(data, (dict, list)) else []
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else []
    for key, value in items:
        found += containers(value, (*path, key))
    return found


def at(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_scenarios_give_a_model_or_located_problems(data: st.DataObject) -> None:
    doc = yaml.safe_load(VALID)
    for _ in range(data.draw(st.integers(0, 4), label="mutations")):
        target = at(doc, data.draw(st.sampled_from(containers(doc)), label="where"))
        action = data.draw(st.sampled_from(["delete", "add", "replace"]), label="action")
        keys = list(target) if isinstance(target, dict) else list(range(len(target)))
        if action == "add" and isinstance(target, dict):
            target[data.draw(st.text(min_size=1, max_size=8), label="new key")] = data.draw(VALUES)
        elif action == "add":
            target.append(data.draw(VALUES))
        elif keys and action == "delete":
            del target[data.draw(st.sampled_from(keys))]
        elif keys:
            target[data.draw(st.sampled_from(keys))] = data.draw(VALUES, label="new value")
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=data.draw(st.booleans()))
    lines = text.splitlines(keepends=True)
    if data.draw(st.booleans(), label="duplicate a line"):
        i = data.draw(st.integers(0, len(lines) - 1))
        lines.insert(i, lines[i])
    text = "".join(lines)
    if data.draw(st.booleans(), label="truncate"):
        text = text[: data.draw(st.integers(0, len(text)))]
    assert_only_scenario_errors(text)
