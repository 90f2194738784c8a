"""When a committed report is stale: a fingerprint of everything that makes its bytes.

A report is a pure function of its inputs: the scenario (its hash, :func:`sim.results.scenario_hash`,
which covers every field, defaults, variants and expectations included, but not the seed), the
root seed, the number of replications, the installed hems-twin version, and the code that turns
them into numbers and pages.  The fingerprint is a sha256 over exactly those, so a test can tell,
without running anything, whether ``reports/`` still says what the tree would make.

The code is taken whole: every ``*.py`` under the engine's package (``sim/``) and under the
twin's (``models/`` for the smart-home twin), sorted by path, each file's path and content
hashed (line endings normalised, so a checkout with CRLF gives the same digest).  This is
deliberately coarse: a change to a docstring anywhere makes every report stale, and
``make report`` regenerates them.  A finer rule (only the modules a scenario's run imports) would
miss a change that moves a number through a path nobody listed -- a stale report that looks
current is worse than a rebuild that changes nothing.  What the fingerprint leaves out is the
environment (matplotlib's, numpy's and Python's versions): ``constraints.txt`` pins them, and the
slow test that regenerates a committed report and compares bytes catches a drift there.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim.results import package_version, scenario_hash

if TYPE_CHECKING:
    from sim.twin import Twin

__all__ = ["FINGERPRINT_INPUTS", "code_roots", "fingerprint", "fingerprint_inputs", "source_digest", "stale_inputs"]

FINGERPRINT_INPUTS = ("scenario_hash", "root_seed", "replications", "version", "source_digest")
"""What a report's fingerprint covers, in the order a staleness message names them."""


def code_roots(twin: Twin) -> tuple[Path, ...]:
    """The package folders whose code makes a report: the engine's and the twin's.

    The twin's package is the one defining its scenario type (``models`` for the smart-home twin),
    which holds the twin's code whatever object stands in for the twin.
    """
    names = dict.fromkeys(["sim", twin.scenario_type.__module__.split(".", 1)[0]])
    roots = []
    for name in names:
        module = importlib.import_module(name)
        if module.__file__ is None:  # a namespace package: no single folder to hash
            raise ValueError(f"package {name!r} has no __init__.py; its source cannot be fingerprinted")
        roots.append(Path(module.__file__).parent)
    return tuple(roots)


def source_digest(roots: Sequence[Path]) -> str:
    """sha256 over every ``*.py`` under ``roots``: each file's ``<package>/<relative path>`` and content.

    Sorted by that path (never by the file system's order), CRLF read as LF.
    """
    files = sorted(
        (f"{root.name}/{path.relative_to(root).as_posix()}", path) for root in roots for path in root.rglob("*.py")
    )
    digest = hashlib.sha256()
    for name, path in files:
        content = path.read_bytes().replace(b"\r\n", b"\n")
        digest.update(name.encode() + b"\0" + hashlib.sha256(content).digest())
    return digest.hexdigest()


def fingerprint_inputs(scenario: Any, root_seed: int, replications: int, digest: str) -> dict[str, Any]:
    """The inputs of one scenario's report, as the manifest records them (see the module docstring)."""
    return {
        "scenario_hash": scenario_hash(scenario),
        "root_seed": int(root_seed),
        "replications": int(replications),
        "version": package_version(),
        "source_digest": digest,
    }


def fingerprint(inputs: Mapping[str, Any]) -> str:
    """sha256 of the inputs' canonical JSON (sorted keys, no spaces)."""
    text = json.dumps({key: inputs[key] for key in FINGERPRINT_INPUTS}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def stale_inputs(recorded: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """Which inputs differ between a recorded report and the tree now (empty: it is current)."""
    return [key for key in FINGERPRINT_INPUTS if recorded.get(key) != current.get(key)]
