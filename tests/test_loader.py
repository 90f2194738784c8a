"""Tests for sim.loader: every bad scenario becomes located Problems, never another exception."""

from __future__ import annotations

import decimal
import math
import os
import re
import socket
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest
import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field

from sim import loader
from sim.durations import Duration, Offset
from sim.errors import Problem, ScenarioError
from sim.loader import MAX_DEPTH, MAX_FILE_BYTES, MAX_VALUES, Loc, load_scenario_file, load_scenario_text

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
        ("[" * 5000, [(1, "", "the document is nested too deeply (more than 100 levels of lists and mappings)")]),
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
    message = (
        "too large: the document holds 1,111,111,119 values (keys included, aliases expanded), "
        "1,000,000,001 of them here; a scenario may hold at most 200,000"
    )
    assert problems(text) == [(9, "i", message)]


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


# -- what a scenario file may be: a small regular file, read without blocking ------------------

NOT_REGULAR = "is not a regular file (a device, FIFO or socket)"
TOO_LARGE = "is larger than 16 MiB; a scenario is a small YAML file"
posix_only = pytest.mark.skipif(os.name != "posix", reason="devices, FIFOs and sockets as POSIX has them")


def file_problem(path: Path | str) -> Problem:
    with pytest.raises(ScenarioError) as info:
        load_scenario_file(path, Scenario)
    (problem,) = info.value.problems
    return problem


FILE_NAMES = st.text(
    st.characters(blacklist_characters="/\0", blacklist_categories=("Cs",)), min_size=1, max_size=16
).filter(lambda name: name not in (".", "..") and len(name.encode()) < 100)
DEVICES = [d for d in ("/dev/zero", "/dev/urandom", "/dev/null", "/dev/full", "/dev/random") if os.path.exists(d)]


@posix_only
@pytest.mark.timeout(60)
@settings(max_examples=40, deadline=None)
@given(kind=st.sampled_from(["fifo", "socket", "device"]), name=FILE_NAMES, data=st.data())
def test_devices_fifos_and_sockets_are_refused_at_once(kind: str, name: str, data: st.DataObject) -> None:
    """Nothing that is not a regular file is read: /dev/zero would never end, a FIFO would block."""
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        holder = None
        if kind == "fifo":
            path = directory / name
            os.mkfifo(path)
        elif kind == "socket":
            path = directory / "s"  # socket paths are short (108 bytes)
            holder = socket.socket(socket.AF_UNIX)
            holder.bind(str(path))
        else:
            path = Path(data.draw(st.sampled_from(DEVICES), label="device"))
        if data.draw(st.booleans(), label="through a link"):
            link = directory / f"link-{name}"
            link.symlink_to(path)
            path = link
        started = time.monotonic()
        try:
            problem = file_problem(path)
        finally:
            if holder is not None:
                holder.close()
        assert (problem.line, problem.field, problem.message) == (None, "", NOT_REGULAR)
        assert time.monotonic() - started < 5


@settings(max_examples=15, deadline=None)
@given(excess=st.integers(1, 2**32))
def test_files_over_16_mib_are_refused_before_reading(excess: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.yaml"
        with path.open("wb") as file:
            file.truncate(MAX_FILE_BYTES + excess)  # sparse: nothing is written
        assert file_problem(path).message == TOO_LARGE


@settings(max_examples=60, deadline=None)
@given(size=st.integers(0, 120), limit=st.integers(1, 100))
def test_the_size_limit_is_exact(size: int, limit: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as patch:
        patch.setattr(loader, "MAX_FILE_BYTES", limit)
        path = Path(tmp) / "s.yaml"
        path.write_bytes(b"#" * size)  # a comment: an empty scenario when it is read
        message = file_problem(path).message
        assert message == TOO_LARGE if size > limit else message.startswith("scenario is empty")


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc")
def test_a_file_longer_than_its_stated_size_is_still_read_no_further_than_the_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """/proc files say they are empty; reading stops one byte past the limit all the same."""
    monkeypatch.setattr(loader, "MAX_FILE_BYTES", 16)
    assert file_problem("/proc/self/status").message == TOO_LARGE


# -- how many values a document may hold ----------------------------------------------------------


def expanded_scalars(text: str) -> int:
    """Scalars of the composed document, each alias counting what it refers to (independently)."""
    return sum(scalars_by_key(text).values())


def scalars_by_key(text: str) -> dict[str, int]:
    """Expanded scalars under each key of the root mapping (key included); ``{"": n}`` otherwise."""
    from yaml.nodes import MappingNode, ScalarNode, SequenceNode

    sizes: dict[int, int] = {}

    def size(node: Any) -> int:
        if id(node) not in sizes:
            if isinstance(node, ScalarNode):
                sizes[id(node)] = 1
            elif isinstance(node, SequenceNode):
                sizes[id(node)] = sum(size(item) for item in node.value)
            elif isinstance(node, MappingNode):
                sizes[id(node)] = sum(size(k) + size(v) for k, v in node.value)
        return sizes[id(node)]

    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if isinstance(root, MappingNode):
        return {str(k.value): size(k) + size(v) for k, v in root.value}
    return {"": 0 if root is None else size(root)}


ITEMS = ["1", "x", "true", "null", "2.5", "{a: 1, b: [2, 3]}", "[]", "{}", "[[1], [2, [3]]]"]


@st.composite
def documents(draw: st.DrawFn) -> str:
    """Mappings of anchored lists holding scalars, nested collections and aliases to earlier lists."""
    lines: list[str] = []
    for i in range(draw(st.integers(1, 6))):
        items = []
        for _ in range(draw(st.integers(0, 8))):
            if lines and draw(st.booleans()):
                items.append(f"*a{draw(st.integers(0, len(lines) - 1))}")
            else:
                items.append(draw(st.sampled_from(ITEMS)))
        style = draw(st.sampled_from(["flow", "block"]))
        if style == "flow" or not items:
            lines.append(f"k{i}: &a{i} [{', '.join(items)}]")
        else:
            lines.append(f"k{i}: &a{i}\n" + "".join(f"  - {item}\n" for item in items).rstrip("\n"))
    return "\n".join(lines) + "\n"


@settings(max_examples=150, deadline=None)
@given(text=documents(), limit=st.integers(1, 80), fast=st.booleans())
def test_documents_over_the_value_bound_get_one_message_with_the_count(text: str, limit: int, fast: bool) -> None:
    expected = expanded_scalars(text)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(loader, "MAX_VALUES", limit)
        if not fast:
            patch.setattr(loader, "_FAST_PARSER", None)
        with pytest.raises(ScenarioError) as info:
            load_scenario_text(text, Scenario, filename="s.yaml")
    too_large = [p for p in info.value.problems if p.message.startswith("too large")]
    if expected <= limit:
        assert too_large == []
        return
    (problem,) = info.value.problems
    counted = f"{expected:,}" if fast or loader._FAST_PARSER is None else f"more than {limit:,}"
    assert f"the document holds {counted} values" in problem.message
    assert problem.message.endswith(f"a scenario may hold at most {limit:,}")
    key_lines = {line.partition(":")[0]: n for n, line in enumerate(text.splitlines(), 1) if line[:1] == "k"}
    assert problem.line == key_lines[problem.field]
    if fast or loader._FAST_PARSER is None:  # counted to the end: the biggest field is named
        by_key = scalars_by_key(text)
        assert problem.field == max(by_key, key=lambda key: by_key[key])
        assert f", {by_key[problem.field]:,} of them here;" in problem.message


@settings(max_examples=60, deadline=None)
@given(text=documents())
def test_both_parsers_count_the_same(text: str) -> None:
    slow = loader._count_events(yaml.parse(text, Loader=yaml.SafeLoader), stop=None)
    assert slow.total == expanded_scalars(text)
    if loader._FAST_PARSER is not None:
        fast = loader._count_events(yaml.parse(text, Loader=loader._FAST_PARSER), stop=None)
        assert (fast.total, fast.field, fast.field_total, fast.index) == (
            slow.total,
            slow.field,
            slow.field_total,
            slow.index,
        )


@st.composite
def nested(draw: st.DrawFn) -> tuple[str, int, int]:
    """(text, depth, line of the collection one level too deep) of a document nesting lists and mappings."""
    depth = draw(st.integers(1, 2 * MAX_DEPTH + 20))
    lines, opened_at = ["root:"], {}
    for level in range(1, depth + 1):
        indent = "  " * level
        if draw(st.booleans()):
            lines.append(f"{indent}- x")  # a list item holding the next level
            lines.append(f"{indent}-")
        else:
            lines.append(f"{indent}k{level}:")
        opened_at[level] = len(lines) + 1  # the next level's collection starts on the next line
    lines.append("  " * (depth + 1) + "leaf")
    too_deep_line = opened_at.get(MAX_DEPTH - 1, 0)
    return "\n".join(lines) + "\n", depth, too_deep_line


@settings(max_examples=80, deadline=None)
@given(document=nested(), fast=st.booleans())
def test_nesting_deeper_than_the_bound_is_refused_at_its_line(document: tuple[str, int, int], fast: bool) -> None:
    text, depth, line = document
    with pytest.MonkeyPatch.context() as patch:
        if not fast:
            patch.setattr(loader, "_FAST_PARSER", None)
        started = time.monotonic()
        found = messages(text, Scenario)
        assert time.monotonic() - started < 5
    deep = "the document is nested too deeply (more than 100 levels of lists and mappings)"
    # the root mapping is a level, each of the ``depth`` levels one more, and the leaf is a scalar
    assert (deep in found) == (depth + 1 > MAX_DEPTH)
    if depth + 1 > MAX_DEPTH:
        with pytest.raises(ScenarioError) as info:
            load_scenario_text(text, Scenario)
        assert [p.line for p in info.value.problems] == [line]


def test_a_hundred_thousand_faults_get_one_located_message_quickly() -> None:
    text = "name: demo\nduration: 1h\nfaults:\n" + "  - {kind: crash, target: b1, at: 1s}\n" * 100_000
    started = time.monotonic()
    with pytest.raises(ScenarioError) as info:
        load_scenario_text(text, Scenario, filename="s.yaml")
    assert time.monotonic() - started < 10  # it took 49 s and 1 GB before the bound
    assert [(p.line, p.field, p.message) for p in info.value.problems] == [
        (
            3,
            "faults",
            "too large: the document holds 600,005 values (keys included, aliases expanded), "
            f"600,001 of them here; a scenario may hold at most {MAX_VALUES:,}",
        )
    ]


# -- numbers YAML 1.1 reads as text ------------------------------------------------------------


class Numbers(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    count: int = 0
    rate: float = 0.0
    limit: float | None = None
    wait: Duration = 1.0
    keys: dict[int, float] = {}


EXPONENT_FORM = r"[-+]?(?:[0-9]{1,4}(?:\.[0-9]{0,3})?|\.[0-9]{1,3})[eE][-+]?[0-9]{1,3}"


def read_as_text(value: str) -> bool:
    return isinstance(yaml.safe_load(f"v: {value}")["v"], str)


@settings(max_examples=300, deadline=None)
@given(
    value=st.from_regex(rf"\A{EXPONENT_FORM}\Z").filter(read_as_text),
    field=st.sampled_from(["count", "rate", "limit", "wait", "keys"]),
)
def test_numbers_yaml_reads_as_text_get_a_hint_whose_spellings_are_numbers(value: str, field: str) -> None:
    text = f"keys: {{{value}: 1.0}}\n" if field == "keys" else f"{field}: {value}\n"
    with pytest.raises(ScenarioError) as info:
        load_scenario_text(text, Numbers, filename="n.yaml")
    (problem,) = info.value.problems
    assert problem.line == 1
    assert f'(got "{value}"; YAML reads {value} as text' in problem.message
    number = decimal.Decimal(value)
    spellings = problem.message.partition(" as text: write ")[2].rstrip(")").split(" or ")
    if field in ("count", "keys"):  # an integer: only a whole number, written out
        whole = number == number.to_integral_value()
        assert ("not a whole number" in problem.message) == (not whole)
    for spelling in filter(None, spellings):
        read = yaml.safe_load(f"v: {spelling}")["v"]
        assert isinstance(read, int if field in ("count", "keys") else (int, float)) and not isinstance(read, bool)
        assert math.isclose(read, float(number), rel_tol=1e-12, abs_tol=1e-300)


@settings(max_examples=200, deadline=None)
@given(
    value=st.text(max_size=12) | st.from_regex(r"\A[-+.0-9eE_ ]{1,10}\Z"),
    field=st.sampled_from(["count", "rate", "limit", "wait"]),
)
def test_other_text_gets_no_number_hint(value: str, field: str) -> None:
    assume(not re.fullmatch(r"\s*[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)[eE][-+]?[0-9]+\s*", value))
    assert all("YAML reads" not in message for message in messages(yaml.safe_dump({field: value}), Numbers))


def messages(text: str, model: type[BaseModel]) -> list[str]:
    """The problems' messages (none if ``text`` loads)."""
    try:
        load_scenario_text(text, model, filename="n.yaml")
    except ScenarioError as err:
        return [problem.message for problem in err.problems]
    return []


def test_the_hint_in_the_examples_users_meet() -> None:
    assert problems("name: a\nduration: 1h\nseed: 1e3\n") == [
        (3, "seed", 'expected an integer (got "1e3"; YAML reads 1e3 as text: write 1000)')
    ]
    assert problems("name: a\nduration: 1e3\n") == [
        (
            2,
            "duration",
            'expected a positive duration like "90s", "30m" or "6h" '
            '(got "1e3"; YAML reads 1e3 as text: write 1000 or 1.0e+3)',
        )
    ]
