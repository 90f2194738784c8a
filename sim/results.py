"""Result files: canonical JSON, scenario hashes, the header every result carries.

Determinism is a feature: the same scenario, seed and version must give byte-identical
``result.json``.  So the header holds no wall-clock time, keys are sorted, floats are
rounded to a fixed number of significant digits (summation order inside numpy can differ
in the last bit between builds; twelve digits is far beyond what any figure means), and
NaN/inf become null.

Every result starts with the header :func:`result_header` makes: ``scenario`` (name),
``scenario_hash``, ``seed``, ``twin``, ``version`` (the installed hems-twin) and
``format_version`` (:data:`FORMAT_VERSION`, the layout of the file), so a reader can tell
which run a file is and whether it knows how to read it.

Files are written atomically (:func:`write_text_atomic`): into a temporary file in the same
folder, then renamed over the old one, so an interrupted or crashed run never leaves a
partial ``result.json`` -- the folder holds the earlier complete file or the new one.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import secrets
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from pydantic import BaseModel

__all__ = [
    "FORMAT_VERSION",
    "RESULT_FILE",
    "canonical_json",
    "package_version",
    "result_header",
    "scenario_hash",
    "write_result",
    "write_text_atomic",
]

DIGITS = 12
FORMAT_VERSION = 1
"""The layout of ``result.json``: which fields exist, where, and what they mean.

Raised by one whenever a reader of the previous layout could misread a file of the new one
(a field renamed, moved, removed or changing its meaning or unit); adding a field leaves it.
It is independent of ``version``: a release may keep the layout, and a layout change is
what a notebook or dashboard reading old and new files side by side needs to know."""
RESULT_FILE = "result.json"


def package_version() -> str:
    """The installed hems-twin version (part of every result's identity)."""
    try:
        return version("hems-twin")
    except PackageNotFoundError:
        return "0+unknown"


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return float(f"{value:.{DIGITS}g}")
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _clean(value.item())
    return value


def canonical_json(data: Any) -> str:
    """Sorted, rounded, NaN-free JSON text with a trailing newline."""
    return json.dumps(_clean(data), sort_keys=True, indent=2, allow_nan=False) + "\n"


def scenario_hash(scenario: BaseModel) -> str:
    """sha256 of the scenario's canonical JSON form (defaults included, seed excluded)."""
    data = scenario.model_dump(mode="json", by_alias=True, exclude={"seed"})
    text = json.dumps(_clean(data), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def result_header(scenario: BaseModel, seed: int, twin: str) -> dict[str, Any]:
    """What identifies a result and says how to read it.

    ``scenario`` (its name), ``scenario_hash`` (:func:`scenario_hash`), ``seed``, ``twin``
    (which installed twin ran it), ``version`` (the hems-twin package) and
    ``format_version`` (:data:`FORMAT_VERSION`: the file's layout, an integer starting at 1).
    """
    return {
        "format_version": FORMAT_VERSION,
        "scenario": getattr(scenario, "name", "?"),
        "scenario_hash": scenario_hash(scenario),
        "seed": seed,
        "twin": twin,
        "version": package_version(),
    }


def write_result(result: dict[str, Any], out_dir: str | Path) -> Path:
    """Write ``result.json`` into ``out_dir`` (created if needed), atomically; returns its path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / RESULT_FILE
    write_text_atomic(path, canonical_json(result))
    return path


def write_text_atomic(path: str | Path, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8) so that no reader ever sees a partial file.

    The text goes to a temporary file in the same folder (same file system, so the rename is
    atomic), is flushed to disk, then renamed over ``path``. If anything fails or the
    process is interrupted before the rename, the temporary file is removed and ``path`` is
    as it was. The new file gets the permissions a plain ``open(path, "w")`` would give.
    """
    target = Path(path)
    data = text.encode("utf-8")
    while True:
        temporary = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        except FileExistsError:
            continue
        break
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
