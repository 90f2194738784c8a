"""Load YAML scenario files into pydantic models, reporting every problem with file and line.

What is read: a regular file of at most :data:`MAX_FILE_BYTES` (16 MiB), opened without
blocking (devices, FIFOs and sockets are refused before anything is read, so ``/dev/zero``
or a named pipe cannot hang a command), holding at most :data:`MAX_VALUES` (200,000) scalars
once aliases are expanded, nested at most :data:`MAX_DEPTH` (100) levels deep -- counted
from the parse events before anything is built or validated, so a 100,000-fault file is
refused in about a second with the count.

Components:

* :func:`load_scenario_file` / :func:`load_scenario_text` -- read, parse and validate. The
  only exception they raise for bad input is :class:`~sim.errors.ScenarioError`, which lists
  every located :class:`~sim.errors.Problem` found, sorted by line.
* :data:`Check` -- an optional semantic check run on the validated model. It returns
  ``(loc, message)`` pairs, located the same way as pydantic's errors.

How locations are found: the text is composed into a YAML node tree with ``yaml.SafeLoader``
(nodes carry their marks), the Python data are built from that tree, and each pydantic error
``loc`` is walked back down the tree. Segments of a ``loc`` that are not in the data, such as
the tag of a discriminated union (``faults.2.latency.target``), are skipped, so the field reads
``faults[2].target`` and the line is that of the deepest node reached (for an unknown field,
the line of its key). Building the data ourselves also catches what PyYAML silently accepts:
duplicate keys (the later one would win), keys that are lists or mappings, and aliases that
refer to the collection containing them.
"""

from __future__ import annotations

import bisect
import decimal
import difflib
import errno
import json
import os
import re
import stat
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from sim.durations import _show  # one way of printing a rejected value in every message
from sim.errors import Problem, ScenarioError

__all__ = [
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_VALUES",
    "Check",
    "Loc",
    "field_line",
    "load_scenario_file",
    "load_scenario_text",
]

M = TypeVar("M", bound=BaseModel)

#: A path into the scenario data, as in pydantic's error ``loc``: ``("faults", 2, "target")``.
Loc = tuple[str | int, ...]

#: A semantic check of a validated scenario, returning ``(loc, message)`` for each problem.
Check = Callable[[M], list[tuple[Loc, str]]]

_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"

MAX_FILE_BYTES = 16 * 2**20
"""The largest scenario file read (16 MiB); a scenario is a small YAML file."""
MAX_VALUES = 200_000
"""The most scalars (keys and values, aliases expanded) a scenario document may hold.

A real scenario holds a few hundred. The bound is checked while the text is parsed, before
anything is built or validated, so a huge list (100,000 faults) or an alias bomb ("billion
laughs") is refused in well under a second instead of taking a minute and a gigabyte."""

MAX_DEPTH = 100
"""The deepest nesting of lists and mappings a scenario document may have (scenarios need 5)."""

_NOT_REGULAR = "is not a regular file (a device, FIFO or socket)"
_TOO_LARGE = f"is larger than {MAX_FILE_BYTES // 2**20} MiB; a scenario is a small YAML file"
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
_LINE_BREAK = re.compile(r"\r\n?|\n")
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")
_QUOTED_NAME = re.compile(r"'(\w+)'")
_KEY_SEGMENT = ("[key]",)  # pydantic's last loc segment when a dict key is invalid

# Expectations replacing pydantic's wording for the errors users meet most. The value got is
# appended to every message that does not already show it.
_EXPECTED = {
    "int_type": "expected an integer",
    "int_parsing": "expected an integer",
    "int_from_float": "expected a whole number",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "finite_number": "expected a finite number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "string_type": "expected a string",
    "list_type": "expected a list",
    "tuple_type": "expected a list",
    "set_type": "expected a list",
    "dict_type": "expected a mapping",
    "model_type": "expected a mapping of fields",
    "model_attributes_type": "expected a mapping of fields",
    "dataclass_type": "expected a mapping of fields",
    "none_required": "expected null",
    "invalid_key": "field names must be strings",
}


def load_scenario_file(path: str | os.PathLike[str], model: type[M], *, check: Check[M] | None = None) -> M:
    """Read the YAML file at ``path`` and validate it as a ``model``.

    Args:
        path: the scenario file (UTF-8; a byte-order mark is allowed).
        model: the pydantic model the whole document must match.
        check: optional semantic validation of the model (e.g. unknown fault targets). It
            runs only when the data match ``model``; its problems join the others.

    Raises:
        ScenarioError: the file is missing or unreadable, is not YAML, or does not satisfy
            ``model`` or ``check``. It lists every problem found, each with file and line.
    """
    name = os.fsdecode(path)
    raw = _read_bounded(path, name)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        byte = f"0x{raw[err.start]:02x}"
        message = f"expected UTF-8 text (got the byte {byte}, which cannot be decoded)"
        raise _fail(name, message, line) from None
    return load_scenario_text(text, model, filename=name, check=check)


def load_scenario_text(text: str, model: type[M], *, filename: str = "<string>", check: Check[M] | None = None) -> M:
    """Parse ``text`` as YAML and validate it as a ``model``; see :func:`load_scenario_file`.

    ``filename`` only names the source in problems.
    """
    tree = _Tree(filename, text)
    data = tree.parse(model)
    problems = list(tree.problems)
    try:
        result = model.model_validate(data)
    except ValidationError as err:
        problems += tree.locate_errors(err.errors(include_url=False), model)
    else:
        if check is not None:
            problems += [tree.check_problem(tuple(loc), message) for loc, message in check(result)]
        if not problems:
            return result
    unique = dict.fromkeys(problems)  # a node reached twice through an alias reports once
    raise ScenarioError(sorted(unique, key=lambda p: (p.line or 0, p.field, p.message)))


def field_line(path: str | os.PathLike[str], field: str) -> int | None:
    """The line where ``field`` (dotted: ``fleet.meters``) is written in the file at ``path``.

    ``None`` if the file does not set it (a default) or cannot be read. For messages about a
    scenario that loaded fine, such as a run refused for its estimated cost.
    """
    name = os.fsdecode(path)
    try:
        text = _read_bounded(path, name).decode("utf-8-sig")
        tree = _Tree(name, text)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except (ScenarioError, UnicodeDecodeError, yaml.YAMLError, RecursionError):
        return None
    key: Node | None = None
    for part in field.split("."):
        if not isinstance(node, MappingNode):
            return None
        found = [(k, v) for k, v in node.value if isinstance(k, ScalarNode) and k.value == part]
        if not found:
            return None
        key, node = found[-1]
    return None if key is None else tree._line(key)


def _read_bounded(path: str | os.PathLike[str], name: str) -> bytes:
    """The bytes of the scenario file at ``path``: a regular file of at most :data:`MAX_FILE_BYTES`.

    Nothing here can block or read forever: a FIFO opened for reading waits for a writer and
    ``/dev/zero`` never ends, so the path is checked to be a regular file before it is
    opened, opened non-blocking, checked again once open (it may have been swapped), and
    read no further than one byte past the limit (a file may grow while it is read).
    """
    try:
        info = os.stat(path)
    except (OSError, ValueError) as err:  # ValueError: a path with a NUL byte in it
        raise _unreadable(name, err) from None
    _refuse_unless_small_regular(info, name)
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as err:
        raise _unreadable(name, err) from None
    try:
        _refuse_unless_small_regular(os.fstat(fd), name)
        chunks, size = [], 0
        while size <= MAX_FILE_BYTES:
            chunk = os.read(fd, min(1 << 20, MAX_FILE_BYTES + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as err:
        raise _unreadable(name, err) from None
    finally:
        os.close(fd)
    if size > MAX_FILE_BYTES:
        raise _fail(name, _TOO_LARGE)
    return b"".join(chunks)


def _refuse_unless_small_regular(info: os.stat_result, name: str) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise _fail(name, "is a directory, not a scenario file")
    if not stat.S_ISREG(info.st_mode):
        raise _fail(name, _NOT_REGULAR)
    if info.st_size > MAX_FILE_BYTES:
        raise _fail(name, _TOO_LARGE)


def _unreadable(name: str, err: OSError | ValueError) -> ScenarioError:
    """The one message for a scenario file the system will not let us read."""
    if isinstance(err, FileNotFoundError):
        return _fail(name, "no such scenario file")
    if isinstance(err, IsADirectoryError):
        return _fail(name, "is a directory, not a scenario file")
    if isinstance(err, PermissionError):
        return _fail(name, "cannot read scenario file: permission denied")
    if isinstance(err, OSError) and err.errno == errno.ENXIO:  # opening a socket
        return _fail(name, _NOT_REGULAR)
    reason = getattr(err, "strerror", None) or str(err)
    return _fail(name, f"cannot read scenario file: {reason}")


def _fail(filename: str, message: str, line: int | None = None) -> ScenarioError:
    return ScenarioError([Problem(filename, line, "", message)])


def _render(path: Iterable[Any]) -> str:
    """``("faults", 2, "target") -> "faults[2].target"``; odd keys are quoted in brackets."""
    text = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            text += f"[{part}]"
        elif _PLAIN_KEY.fullmatch(str(part)):
            text += f".{part}" if text else str(part)
        else:
            shown = str(part) if len(str(part)) <= 40 else str(part)[:37] + "..."
            text += f"[{json.dumps(shown, ensure_ascii=False)}]"
    return text


@dataclass
class _ValueCount:
    """How many scalars a document holds (aliases expanded), and its biggest top-level field."""

    total: int = 0
    complete: bool = True
    """False when counting stopped at the bound (the slow parser stops there)"""
    field: str | None = None
    """the top-level key holding the most values (None if the document is no mapping)"""
    field_total: int = 0
    index: int = 0
    """character index of that key (or 0)"""
    too_deep: int | None = None
    """character index of a collection nested deeper than MAX_DEPTH (counting stopped there)"""


_FAST_PARSER: Any = getattr(yaml, "CBaseLoader", None)  # libyaml, when PyYAML was built with it


def _count_values(text: str) -> _ValueCount | None:
    """Count the scalars of ``text`` from its parse events, without building anything.

    libyaml's parser (about twenty times faster than PyYAML's, same YAML 1.1 grammar and the
    same character marks) counts to the end, so the message can give the whole count;
    without it, or if it refuses the text, PyYAML's own parser counts up to the bound.
    ``None``: the text is not YAML; composing it will say where.
    """
    if _FAST_PARSER is not None:
        try:
            return _count_events(yaml.parse(text, Loader=_FAST_PARSER), stop=None)
        except (yaml.YAMLError, ValueError):  # ValueError: text libyaml cannot encode
            pass
    try:
        return _count_events(yaml.parse(text, Loader=yaml.SafeLoader), stop=MAX_VALUES)
    except (yaml.YAMLError, ValueError):
        return None


def _count_events(events: Iterable[yaml.Event], stop: int | None) -> _ValueCount:
    """Scalars in ``events``, an alias counting what its anchor holds; see :func:`_count_values`."""
    count = _ValueCount()
    held: dict[str, int] = {}  # anchor -> scalars it holds
    # Open collections: [anchor, scalars so far, children so far, is a mapping, character index].
    stack: list[list[Any]] = []
    fields: list[list[Any]] = []  # the root mapping's keys: [name, character index, scalars]
    for event in events:
        if isinstance(event, yaml.CollectionStartEvent):
            if len(stack) == MAX_DEPTH:
                count.too_deep, count.complete = _index(event), False
                break
            is_mapping = isinstance(event, yaml.MappingStartEvent)
            stack.append([event.anchor, 0, 0, is_mapping, _index(event)])
            continue
        if isinstance(event, yaml.CollectionEndEvent):
            anchor, n, _, _, index = stack.pop()
            name = "?"  # a collection as a key: the composer reports it
            if anchor is not None:
                held[anchor] = n
        elif isinstance(event, yaml.ScalarEvent):
            n, name, index = 1, event.value, _index(event)
            if event.anchor is not None:
                held[event.anchor] = 1
            count.total += 1
        elif isinstance(event, yaml.AliasEvent):
            # An anchor still open is recursion, which the composer reports: count it once.
            n, name, index = held.get(event.anchor or "", 1), f"*{event.anchor}", _index(event)
            count.total += n
        else:
            continue
        if stack:
            parent = stack[-1]
            parent[1] += n
            if len(stack) == 1 and parent[3]:  # a key, then its value, of the root mapping
                if parent[2] % 2 == 0:
                    fields.append([name, index, n])
                else:
                    fields[-1][2] += n
            parent[2] += 1
        if stop is not None and count.total > stop:
            count.complete = False
            break
    if fields:
        count.field, count.index, count.field_total = max(fields, key=lambda field: field[2])
    return count


def _index(event: yaml.Event) -> int:
    return 0 if event.start_mark is None else int(event.start_mark.index)


class _Cycle(Exception):
    """An alias refers to a collection that contains it."""

    def __init__(self, node: Node) -> None:
        self.node = node


class _Tree:
    """One YAML document: its node tree, the data built from it and the problems met so far.

    Nodes are looked up by ``id()``; the tree keeps every node alive, so ids stay unique.
    """

    def __init__(self, filename: str, text: str) -> None:
        self.filename = filename
        self.text = text
        self.problems: list[Problem] = []
        self.root: Node | None = None
        self._line_starts = [0] + [m.end() for m in _LINE_BREAK.finditer(text)]
        self._loader = yaml.SafeLoader("")  # constructs scalars and applies merge keys
        self._scalars: dict[int, Any] = {}  # scalar node -> its Python value
        self._built: dict[int, Any] = {}  # collection node -> its Python value
        self._acyclic: set[int] = set()  # collection nodes known to hold no alias to themselves
        self._active: set[int] = set()  # nodes being walked (to spot recursive aliases)
        self._paths: dict[int, tuple[Any, ...]] = {}  # node -> path of its first occurrence
        self._unreadable: set[tuple[int, str]] = set()  # (line, field) of values YAML cannot build

    # -- lines and problems ------------------------------------------------------------------

    def _line_at(self, index: int) -> int:
        """The 1-based line of a character index, counting ``\\n``, ``\\r\\n`` and ``\\r``.

        PyYAML's ``Mark.line`` also breaks lines at U+0085, U+2028 and U+2029, which editors
        and ``grep -n`` do not.
        """
        return bisect.bisect_right(self._line_starts, index)

    def _line(self, node: Node) -> int:
        return self._line_at(node.start_mark.index)

    def _report(self, node: Node, path: Iterable[Any], message: str) -> None:
        self.problems.append(Problem(self.filename, self._line(node), _render(path), message))

    # -- parsing -----------------------------------------------------------------------------

    def parse(self, model: type[BaseModel]) -> Any:
        """Compose and build the document; raise ScenarioError if there is nothing to validate."""
        try:
            self._refuse_if_too_big()
            self.root = root = yaml.compose(self.text, Loader=yaml.SafeLoader)
            if root is None:
                fields = ", ".join(_field_names([model]))
                message = f"scenario is empty (expected a mapping with fields: {fields})"
                raise _fail(self.filename, message)
            self._check_keys(root)
            self._check_acyclic(root)
            self._flatten_merges(root)
            data = self._build(root)
        except yaml.MarkedYAMLError as err:
            raise self._syntax_error(err) from None
        except yaml.reader.ReaderError as err:  # a character YAML forbids, e.g. NUL
            char = f"#x{err.character:04x}"
            message = f"invalid YAML: unacceptable character {char} (no control characters)"
            raise _fail(self.filename, message, self._line_at(err.position)) from None
        except _Cycle as err:
            message = "an alias refers to a collection that contains it (no recursive data)"
            raise _fail(self.filename, message, self._line(err.node)) from None
        except RecursionError:
            raise _fail(self.filename, "the document is nested too deeply") from None
        if not isinstance(root, MappingNode):
            got = "a list" if isinstance(root, SequenceNode) else _show(data)
            message = f"expected a mapping of scenario fields at the top level (got {got})"
            raise _fail(self.filename, message, self._line(root))
        return data

    def _syntax_error(self, err: yaml.MarkedYAMLError) -> ScenarioError:
        mark = err.problem_mark or err.context_mark
        line = self._line_at(mark.index) if mark is not None else None
        if "single document" in (err.context or ""):  # the composer found a second "---"
            message = "expected a single YAML document (found a second one)"
        elif err.problem and err.context:
            mark = err.context_mark
            where = "" if mark is None else f" at line {self._line_at(mark.index)}"
            message = f"invalid YAML: {err.problem} ({err.context}{where})"
        else:
            message = f"invalid YAML: {err.problem or err.context}"
        if "'\\t'" in message:
            message += "; indent with spaces, YAML does not allow tabs there"
        return _fail(self.filename, message, line)

    def _scalar(self, node: ScalarNode) -> Any:
        """The Python value of a scalar; a value YAML cannot build is reported and kept as text."""
        key = id(node)
        if key not in self._scalars:
            try:
                value = self._loader.construct_object(node, deep=True)
            except (yaml.YAMLError, ValueError, TypeError, OverflowError) as err:
                # e.g. a timestamp with month 13, an unknown "!tag", an int of 5000 digits
                reason = str(err.problem if isinstance(err, yaml.MarkedYAMLError) else err)
                if "could not determine a constructor" in reason:
                    reason = f"unsupported YAML tag {node.tag!r}"
                elif node.tag == _TIMESTAMP_TAG:
                    reason += " (quote it if it is meant as text)"
                elif "Exceeds the limit" in reason:
                    reason = "too many digits"
                path = self._paths.get(key, ())
                self._unreadable.add((self._line(node), _render(path)))
                self._report(node, path, f"cannot read value {_show(node.value)}: {reason}")
                value = node.value
            self._scalars[key] = value
        return self._scalars[key]

    def _check_keys(self, root: Node) -> None:
        """Report duplicate keys and keys that are not scalars, before merges add keys."""
        stack: list[tuple[Node, tuple[Any, ...]]] = [(root, ())]
        while stack:
            node, path = stack.pop()
            if id(node) in self._paths:  # an alias: checked at its anchor
                continue
            self._paths[id(node)] = path
            if isinstance(node, SequenceNode):
                stack.extend((item, (*path, i)) for i, item in enumerate(node.value))
            if not isinstance(node, MappingNode):
                continue
            first_lines: dict[Any, int] = {}
            for key_node, value_node in node.value:
                if key_node.tag == _MERGE_TAG:
                    stack.append((value_node, path))
                elif not isinstance(key_node, ScalarNode):
                    kind = "a list" if isinstance(key_node, SequenceNode) else "a mapping"
                    message = f"expected a plain key such as a field name (got {kind})"
                    self._report(key_node, path, message)
                else:
                    field = (*path, key_node.value)
                    self._paths[id(key_node)] = field
                    key = self._scalar(key_node)
                    if key in first_lines:
                        first = first_lines[key]
                        message = f"duplicate key {key_node.value!r} (first at line {first})"
                        self._report(key_node, field, message)
                    first_lines.setdefault(key, self._line(key_node))
                    stack.append((value_node, field))

    @staticmethod
    def _children(node: Node) -> list[Node]:
        if isinstance(node, SequenceNode):
            return list(node.value)
        if isinstance(node, MappingNode):
            return [child for pair in node.value for child in pair]
        return []

    def _check_acyclic(self, node: Node) -> None:
        """Raise _Cycle if an alias refers to a collection that contains it (recursive data)."""
        key = id(node)
        if key in self._acyclic:
            return
        if key in self._active:
            raise _Cycle(node)
        self._active.add(key)
        for child in self._children(node):
            self._check_acyclic(child)
        self._active.discard(key)
        self._acyclic.add(key)

    def _refuse_if_too_big(self) -> None:
        """Raise ScenarioError if the text holds more than :data:`MAX_VALUES` scalars or nests
        lists and mappings more than :data:`MAX_DEPTH` deep.

        The one bound on a document's size, whatever makes it big: a long list, wide mappings,
        aliases (each alias counts what it refers to) or deep nesting (which PyYAML's scanner
        pays for quadratically). Text that is not YAML is left to the composer, which says
        where it breaks.
        """
        size = _count_values(self.text)
        if size is not None and size.too_deep is not None:
            message = f"the document is nested too deeply (more than {MAX_DEPTH} levels of lists and mappings)"
            raise _fail(self.filename, message, self._line_at(size.too_deep))
        if size is None or size.total <= MAX_VALUES:
            return
        total = f"{size.total:,}" if size.complete else f"more than {MAX_VALUES:,}"
        message = f"too large: the document holds {total} values (keys included, aliases expanded)"
        if size.field is not None and size.complete:
            message += f", {size.field_total:,} of them here"
        message += f"; a scenario may hold at most {MAX_VALUES:,}"
        field = "" if size.field is None else _render([size.field])
        raise ScenarioError([Problem(self.filename, self._line_at(size.index), field, message)])

    def _flatten_merges(self, root: Node) -> None:
        """Apply ``<<: *anchor`` merge keys in place; merged pairs keep their own marks."""
        stack, seen = [root], set()
        while stack:
            node = stack.pop()
            if id(node) not in seen:
                seen.add(id(node))
                if isinstance(node, MappingNode):
                    self._loader.flatten_mapping(node)
                stack.extend(self._children(node))

    def _build(self, node: Node) -> Any:
        """The Python data of ``node``; shared (aliased) nodes give shared objects."""
        if isinstance(node, ScalarNode):
            return self._scalar(node)
        key = id(node)
        if key not in self._built:
            plain = _SEQ_TAG if isinstance(node, SequenceNode) else _MAP_TAG
            if node.tag != plain:
                tag = node.tag.replace("tag:yaml.org,2002:", "!!")
                message = f"unsupported YAML tag {tag!r} (write a plain list or mapping)"
                self._report(node, (), message)
            if isinstance(node, SequenceNode):
                self._built[key] = [self._build(item) for item in node.value]
            else:
                pairs = [(k, v) for k, v in node.value if isinstance(k, ScalarNode)]
                self._built[key] = {self._scalar(k): self._build(v) for k, v in pairs}
        return self._built[key]

    # -- locating ----------------------------------------------------------------------------

    def _child(self, node: Node, segment: Any) -> tuple[Node | None, Node] | None:
        """The (key node, value node) that a loc ``segment`` names below ``node``, if any."""
        if isinstance(node, SequenceNode):
            if isinstance(segment, bool) or not isinstance(segment, int):
                return None
            return (None, node.value[segment]) if 0 <= segment < len(node.value) else None
        if not isinstance(node, MappingNode):
            return None
        keys = [(self._scalars.get(id(k)), k, v) for k, v in node.value if id(k) in self._scalars]
        # The last equal key is the one in effect; pydantic spells non-string keys as str(key).
        exact = [(k, v) for key, k, v in keys if type(key) is type(segment) and key == segment]
        spelled = [(k, v) for key, k, v in keys if str(key) == segment]
        found = exact or spelled
        return found[-1] if found else None

    def _resolve(self, loc: Loc, *, keep_missing: bool) -> tuple[list[Any], Node | None, Node, bool]:
        """Walk ``loc`` down the tree: (path, last key node, deepest node, whether any was skipped).

        Segments not in the data (union tags, member labels) are skipped, except a last one
        when ``keep_missing``: a missing field is named although it has no node.
        """
        assert self.root is not None
        path: list[Any] = []
        node, key_node, skipped = self.root, None, False
        for i, segment in enumerate(loc):
            found = self._child(node, segment)
            if found is not None:
                key_node, node = found
                path.append(segment if key_node is None else key_node.value)
            elif keep_missing and i == len(loc) - 1:
                path.append(segment)
            else:
                skipped = True
        return path, key_node, node, skipped

    def check_problem(self, loc: Loc, message: str) -> Problem:
        """A problem found by ``check``: the field as given, at the deepest node reached."""
        _, _, node, _ = self._resolve(loc, keep_missing=False)
        return Problem(self.filename, self._line(node), _render(loc), message)

    def locate_errors(self, errors: list[ErrorDetails], model: type[BaseModel]) -> list[Problem]:
        """One problem per pydantic error; alternatives of one union at one place are merged."""
        groups: dict[Any, list[tuple[ErrorDetails, Loc]]] = {}
        places: dict[Any, tuple[int, str]] = {}
        for error in errors:
            loc, kind = tuple(error["loc"]), error["type"]
            tag_field = _QUOTED_NAME.fullmatch(str(error.get("ctx", {}).get("discriminator", "")))
            if kind in ("union_tag_invalid", "union_tag_not_found") and tag_field:
                loc += (tag_field.group(1),)  # point at the "kind:" line, or name it if absent
            keep_missing = kind.startswith("missing") or kind == "union_tag_not_found"
            path, key_node, node, skipped = self._resolve(loc, keep_missing=keep_missing)
            at_key = kind in ("extra_forbidden", "invalid_key") or loc[-1:] == _KEY_SEGMENT
            place = (self._line(key_node if at_key and key_node else node), _render(path))
            if place in self._unreadable:  # already reported: YAML could not read the value
                continue
            # Skipped segments name union members: their errors at one place are alternatives.
            group = place if skipped else len(places)
            places.setdefault(group, place)
            groups.setdefault(group, []).append((error, loc))
        return [Problem(self.filename, *places[group], _message(errs, model)) for group, errs in groups.items()]


def _message(errors: list[tuple[ErrorDetails, Loc]], model: type[BaseModel]) -> str:
    """The message for the errors at one place: usually one, several for a union's alternatives."""
    if all(error["type"] == "extra_forbidden" for error, _ in errors):
        names = [name for _, loc in errors for name in _field_names(_types_at(model, loc[:-1]))]
        return _unknown_field(str(errors[0][1][-1]), list(dict.fromkeys(names)))
    expectations, got = [], ""
    for error, loc in errors:
        expected, shown = _expectation(error, loc, model)
        expectations.append(f"invalid key: {expected}" if loc[-1:] == _KEY_SEGMENT else expected)
        got = max(got, shown, key=len)  # alternatives see one value; keep the one with a hint
    unique = list(dict.fromkeys(expectations))
    if len(unique) > 1 and all(e.startswith("expected ") for e in unique):
        message = "expected " + " or ".join(e.removeprefix("expected ") for e in unique)
    else:
        message = "; or ".join(unique)
    if got and "(got " not in message:
        message += f" (got {got})"
    return message


def _unknown_field(name: str, allowed: list[str]) -> str:
    if not allowed:
        return "unknown field"
    close = difflib.get_close_matches(name, allowed, n=1)
    hint = f", did you mean {close[0]!r}?" if close else ""
    listed = ", ".join(allowed[:15]) + (", ..." if len(allowed) > 15 else "")
    return f"unknown field{hint} (allowed: {listed})"


def _expectation(error: ErrorDetails, loc: Loc, model: type[BaseModel]) -> tuple[str, str]:
    """(what was expected, the value got or "") for one pydantic error at ``loc``.

    Where a number was expected and YAML read one as text (``1e3``), the value got carries
    the hint that says why and what to write instead.
    """
    expected, got = _plain_expectation(error, loc, model)
    hint = _number_hint(error["input"], error["type"])
    if hint:
        shown = _show(error["input"])
        if f"(got {shown})" in expected:  # a message that shows the value itself (durations)
            expected = expected.replace(f"(got {shown})", f"(got {shown}; {hint})")
        else:
            got = f"{shown}; {hint}"
    return expected, got


# A number in exponent form that YAML 1.1 reads as text: PyYAML wants a dot in the mantissa
# and a sign in the exponent (1.0e+3), so 1e3, 1.5e3 and 2e-5 are strings.
_EXPONENT_FORM = re.compile(r"\s*([-+]?)([0-9]+\.?[0-9]*|\.[0-9]+)[eE]([-+]?)([0-9]+)\s*")
_NUMBER_ERRORS = {"int_type": int, "int_parsing": int, "float_type": float, "float_parsing": float, "duration": float}


def _number_hint(value: Any, kind: str) -> str:
    """``YAML reads 1e3 as text: write 1000 or 1.0e+3`` for a number YAML read as text, else ""."""
    wanted = _NUMBER_ERRORS.get(kind)
    typed = wanted is not None and isinstance(value, str) and len(value) <= 40  # longer: nobody typed a number
    match = _EXPONENT_FORM.fullmatch(value) if typed else None
    if match is None:
        return ""
    sign, mantissa, exponent_sign, exponent = match.groups()
    number = decimal.Decimal(f"{sign}{mantissa}e{exponent_sign}{exponent}")
    written = []
    plain = format(number, "f") if len(exponent) <= 2 else ""
    plain = plain.rstrip("0").rstrip(".") if "." in plain else plain
    if 0 < len(plain) <= 24:  # short enough to write out in full
        written.append("0" if plain == "-0" else plain)
    if wanted is int:  # 1.0e+3 is a float, which an integer field refuses
        written = [text for text in written if "." not in text]
    else:
        whole, _, fraction = mantissa.partition(".")  # YAML 1.1 wants digits on both sides here
        dotted = f"{whole or '0'}.{fraction or '0'}"
        written.append(f"{sign}{dotted}e{exponent_sign or '+'}{exponent}")
    text = value.strip()
    if written:
        return f"YAML reads {text} as text: write {' or '.join(written)}"
    if number == number.to_integral_value():
        return f"YAML reads {text} as text; write the integer in digits"
    return f"YAML reads {text} as text, and it is not a whole number"


def _plain_expectation(error: ErrorDetails, loc: Loc, model: type[BaseModel]) -> tuple[str, str]:
    """(what was expected, the value got or "") in the words users meet, before any hint."""
    kind, ctx = error["type"], error.get("ctx", {})
    got = _show(error["input"])
    if kind.startswith("missing"):
        return "missing required field", ""
    if kind == "union_tag_invalid":
        return f"expected one of {ctx.get('expected_tags', '?')}", _show(ctx.get("tag"))
    if kind == "union_tag_not_found":  # loc ends with the tag field appended by locate_errors
        tags = _tags(_types_at(model, loc[:-1]), str(loc[-1]))
        choice = f" (one of {', '.join(repr(t) for t in tags)})" if tags else ""
        return f"missing required field that selects the variant{choice}", ""
    if kind in ("literal_error", "enum"):
        return f"expected {ctx.get('expected', 'one of the listed values')}", got
    if kind in _EXPECTED:
        return _EXPECTED[kind], got
    if isinstance(error["input"], (dict, list)):  # e.g. a model validator: the field says where
        got = ""
    message = error["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message[:1].lower() + message[1:], got


# -- the model's types at a loc, for allowed field names and variant tags -----------------------


def _leaves(annotation: Any) -> list[Any]:
    """The alternatives of ``annotation``, without Annotated/Optional/Union wrappers."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _leaves(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        return [leaf for arg in typing.get_args(annotation) for leaf in _leaves(arg)]
    return [annotation]


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _literals(tp: Any) -> list[Any]:
    return list(typing.get_args(tp)) if typing.get_origin(tp) is typing.Literal else []


def _step(tp: Any, segment: Any) -> list[Any]:
    """The annotations one loc ``segment`` below the type ``tp`` (empty if it does not apply)."""
    if _is_model(tp):
        for name, field in tp.model_fields.items():
            if segment in (name, field.alias, field.validation_alias):
                return [field.annotation]
        return []
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if not isinstance(origin, type) or not args:
        return []
    if issubclass(origin, Mapping):
        return [args[-1]]
    if issubclass(origin, tuple) and isinstance(segment, int) and args[-1] is not Ellipsis:
        return [args[segment]] if 0 <= segment < len(args) else []
    if issubclass(origin, Sequence | set | frozenset) and isinstance(segment, int):
        return [args[0]]
    return []


def _is_label(tp: Any, segment: Any) -> bool:
    """Whether pydantic may name the union member ``tp`` by ``segment``: class name or tag."""
    if not _is_model(tp):
        return False
    tags = (value for field in tp.model_fields.values() for value in _literals(field.annotation))
    return segment == tp.__name__ or segment in tags


def _types_at(model: type[BaseModel], loc: Loc) -> list[Any]:
    """Best effort: the types ``model`` expects at ``loc``; union tags in it select members."""
    current: list[Any] = [model]
    for segment in loc:
        leaves = [leaf for tp in current for leaf in _leaves(tp)]
        below = [sub for leaf in leaves for sub in _step(leaf, segment)]
        current = below or [leaf for leaf in leaves if _is_label(leaf, segment)] or leaves
    return [leaf for tp in current for leaf in _leaves(tp)]


def _field_names(candidates: list[Any]) -> list[str]:
    """The keys a YAML mapping may use for these models (aliases where they have them)."""
    names: dict[str, None] = {}
    for tp in filter(_is_model, candidates):
        for name, field in tp.model_fields.items():
            alias = field.validation_alias
            names[(alias if isinstance(alias, str) else field.alias) or name] = None
    return list(names)


def _tags(candidates: list[Any], discriminator: str) -> list[Any]:
    """The values of the ``discriminator`` field that select one of these models."""
    tags: dict[Any, None] = {}
    for tp in filter(_is_model, candidates):
        field = tp.model_fields.get(discriminator)
        tags.update(dict.fromkeys(_literals(field.annotation) if field else []))
    return list(tags)
