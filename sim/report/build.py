"""Building the report folder: run each scenario once, write its pages and figures, the index,
the FMEA catalogue and the manifest.

What goes where, inside the output folder (``reports/`` for the committed ones)::

    <name>.md                    the scenario's page, figures linked from figures/<name>/
    <name>.html                  the same page, one self-contained file (figures inline)
    figures/<name>/<figure>.svg  each figure
    index.md, index.html         every scenario the manifest knows, with links
    failure-modes.md             the FMEA catalogue (when the twin's profile has failure modes)
    manifest.json                per scenario: its fingerprint, its inputs and the files written

The manifest is what makes the folder safe to rebuild in part: building some scenarios keeps
the others' entries (the index still lists them), and a file that an entry listed but the new
build no longer makes (a figure dropped) is deleted -- only such files: nothing the manifest
does not list is ever deleted, so a user's own file in the folder is left alone.  Every file is
written atomically (:func:`sim.results.write_text_atomic`).

The catalogue needs the runs of every scenario a failure mode names; it is rewritten only by a
build that includes them all (``make report`` builds every scenario), and is otherwise left as
it was, with the fingerprints it was made from in the manifest.

Memory: each scenario's runs (every variant on every replication, full result bodies) are
dropped once its pages are written, except those the catalogue still needs.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim.errors import SimError
from sim.replications import MAX_REPLICATIONS, replicate
from sim.report.fingerprint import code_roots, fingerprint, fingerprint_inputs, source_digest
from sim.report.html import render_html
from sim.report.markdown import render_markdown
from sim.report.page import IndexEntry, index_page, scenario_page
from sim.report.profile import ReportProfile
from sim.report.runs import Figure, ScenarioRuns
from sim.results import canonical_json, write_text_atomic

if TYPE_CHECKING:
    from sim.twin import Twin

__all__ = [
    "CATALOGUE_FILE",
    "DEFAULT_REPLICATIONS",
    "INDEX_STEM",
    "MANIFEST_FILE",
    "MANIFEST_FORMAT",
    "build_reports",
    "read_manifest",
    "report_profile",
    "run_for_report",
    "scenario_files",
    "source_name",
]

DEFAULT_REPLICATIONS = 5
MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = 1
"""The manifest's layout; raised when a reader of the old one could misread the new."""
CATALOGUE_FILE = "failure-modes.md"
INDEX_STEM = "index"
_SLUG = re.compile(r"[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?")
_RESERVED = frozenset({INDEX_STEM, CATALOGUE_FILE.removesuffix(".md"), "figures", "manifest"})


def report_profile(twin: Twin) -> ReportProfile:
    """The twin's :class:`ReportProfile`, or an empty one for a twin without."""
    profile = getattr(twin, "report_profile", None)
    return profile if isinstance(profile, ReportProfile) else ReportProfile()


def source_name(path: str | os.PathLike[str]) -> str:
    """How a page names its scenario file: relative to the current folder when inside it, else
    the file's name alone -- never an absolute path (a page must not carry the machine's layout)."""
    given = Path(path)
    if not given.is_absolute() and ".." not in given.parts:
        return given.as_posix()
    try:
        return given.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except (ValueError, OSError):
        return given.name


def _load(twin: Twin, path: str | os.PathLike[str]) -> Any:
    from sim.api import load_checked  # sim.api imports the CLI, which imports this package's command

    return load_checked(twin, path)


def _run_loaded(
    twin: Twin, scenario: Any, path: str | os.PathLike[str], replications: int, workers: int | None
) -> ScenarioRuns:
    replicated = replicate(twin, scenario, replications, int(scenario.seed), workers=workers)
    return ScenarioRuns(
        name=str(scenario.name),
        source=source_name(path),
        description=str(getattr(scenario, "description", "")),
        scenario=scenario,
        replications=replicated,
    )


def run_for_report(
    twin: Twin, path: str | os.PathLike[str], *, replications: int = DEFAULT_REPLICATIONS, workers: int | None = None
) -> ScenarioRuns:
    """Load and check the scenario file as ``hems-twin run`` does, and run every variant (one,
    ``as-written``, without variants) on ``replications`` seeds spawned from the scenario's own
    seed.  A scenario with a ``sweep:`` section runs at its written point."""
    _check_replications(replications)
    return _run_loaded(twin, _load(twin, path), path, replications, workers)


def _check_replications(replications: int) -> None:
    if not 2 <= replications <= MAX_REPLICATIONS:
        raise SimError(
            f"replications must be between 2 and {MAX_REPLICATIONS:,} (got {replications}): "
            "a confidence interval needs at least two"
        )


def _scenario_figures(profile: ReportProfile, runs: ScenarioRuns) -> list[Figure]:
    from sim.report.figures import scenario_figures  # matplotlib loads only when a report is drawn

    return scenario_figures(profile, runs)


def _catalogue(twin: Twin, profile: ReportProfile, runs: Mapping[str, ScenarioRuns]) -> str:
    """The FMEA catalogue (:mod:`sim.report.fmea`), with one affected request's trace per mode."""
    from sim.report.fmea import affected_traces, catalogue_markdown

    return catalogue_markdown(profile, runs, affected_traces(twin, profile, runs))


def scenario_files(
    runs: ScenarioRuns, profile: ReportProfile, figures: Sequence[Figure], print_: str, inputs: Mapping[str, Any]
) -> dict[str, str]:
    """Every file of one scenario's report, by path relative to the output folder: its
    Markdown page, its HTML page and each figure's SVG.  ``print_`` is the fingerprint."""
    placed: list[tuple[Figure, str]] = []
    for figure in figures:
        if not _SLUG.fullmatch(figure.name) or any(figure.name == seen.name for seen, _ in placed):
            raise ValueError(f"figure name {figure.name!r} is not a unique slug (it names a file)")
        placed.append((figure, f"figures/{runs.name}/{figure.name}.svg"))
    page = scenario_page(runs, profile, placed, print_, inputs)
    files = {f"{runs.name}.md": render_markdown(page), f"{runs.name}.html": render_html(page)}
    files.update((file, figure.svg) for figure, file in placed)
    return files


def read_manifest(out: Path) -> dict[str, Any]:
    """The manifest in ``out`` (an empty one when there is none); SimError when it is not ours."""
    path = out / MANIFEST_FILE
    if not path.exists():
        return {"format": MANIFEST_FORMAT, "scenarios": {}, "files": []}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise SimError(
            f"{path}: cannot read the report manifest ({error}); move it away or rebuild into another folder"
        ) from None
    if (
        not isinstance(data, dict)
        or data.get("format") != MANIFEST_FORMAT
        or not isinstance(data.get("scenarios"), dict)
    ):
        raise SimError(
            f"{path} is not a hems-twin report manifest of format {MANIFEST_FORMAT}; "
            "move it away or rebuild into another folder"
        )
    return data


def _inside(out: Path, relative: str) -> Path | None:
    """``out/relative`` when ``relative`` is a plain relative path (a manifest is data, not trusted)."""
    candidate = Path(relative)
    if not relative or candidate.is_absolute() or candidate.drive or ".." in candidate.parts:
        return None
    return out / candidate


def _remove(out: Path, files: Sequence[str]) -> None:
    """Delete files an earlier build wrote and this one no longer makes; then their emptied folders."""
    for relative in sorted(files):
        target = _inside(out, relative)
        if target is None or target.is_symlink() or not target.is_file():
            continue
        target.unlink()
        for folder in target.parents:
            if folder == out or out not in folder.parents:
                break
            try:
                folder.rmdir()  # only when empty
            except OSError:
                break


def _write(out: Path, relative: str, text: str, written: list[Path]) -> None:
    target = out / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(target, text)
    written.append(target)


def _check_name(path: str | os.PathLike[str], name: str) -> None:
    if not _SLUG.fullmatch(name) or ".." in name or name in _RESERVED:
        raise SimError(
            f"{os.fspath(path)}: scenario name {name!r} cannot name a report page (a slug other than "
            f"{', '.join(sorted(_RESERVED))} is needed)"
        )


def build_reports(
    twin: Twin,
    paths: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    replications: int = DEFAULT_REPLICATIONS,
    workers: int | None = None,
) -> list[Path]:
    """Write the reports of the scenario files ``paths`` into ``out_dir`` (see the module
    docstring); returns the files written, in the order written.

    Every file is loaded and checked before anything runs, so a bad one fails fast
    (ScenarioError), as does a name given twice (SimError).
    """
    _check_replications(replications)
    if not paths:
        raise SimError("no scenario file given")
    profile = report_profile(twin)
    loaded: list[tuple[str | os.PathLike[str], Any]] = []
    for path in paths:
        scenario = _load(twin, path)
        name = str(scenario.name)
        _check_name(path, name)
        if any(str(other.name) == name for _, other in loaded):
            raise SimError(
                f"{os.fspath(path)}: another file given is also scenario {name!r}; scenario names must differ"
            )
        loaded.append((path, scenario))
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SimError(f"{out}: cannot create the report folder ({error.strerror or error})") from None
    manifest = read_manifest(out)
    digest = source_digest(code_roots(twin))
    needed = {mode.scenario for mode in profile.failure_modes}
    kept: dict[str, ScenarioRuns] = {}
    written: list[Path] = []
    for path, scenario in loaded:
        runs = _run_loaded(twin, scenario, path, replications, workers)
        inputs = fingerprint_inputs(scenario, int(scenario.seed), replications, digest)
        print_ = fingerprint(inputs)
        files = scenario_files(runs, profile, _scenario_figures(profile, runs), print_, inputs)
        for relative, text in files.items():
            _write(out, relative, text, written)
        earlier = manifest["scenarios"].get(runs.name, {})
        _remove(out, [f for f in earlier.get("files", []) if isinstance(f, str) and f not in files])
        manifest["scenarios"][runs.name] = {
            "source": runs.source,
            "fingerprint": print_,
            "inputs": inputs,
            "files": sorted(files),
            "index": IndexEntry.of(runs, profile).as_dict(),
        }
        if runs.name in needed:
            kept[runs.name] = runs
        del runs  # the bodies are large; only the catalogue's scenarios are kept
    if needed and needed <= set(kept):
        _write(out, CATALOGUE_FILE, _catalogue(twin, profile, {name: kept[name] for name in sorted(kept)}), written)
        manifest["catalogue"] = {
            "file": CATALOGUE_FILE,
            "fingerprints": {name: manifest["scenarios"][name]["fingerprint"] for name in sorted(needed)},
        }
    kept.clear()
    catalogue = manifest.get("catalogue")
    shown = CATALOGUE_FILE if isinstance(catalogue, dict) and (out / CATALOGUE_FILE).is_file() else None
    entries = [IndexEntry.from_dict(name, entry["index"]) for name, entry in manifest["scenarios"].items()]
    page = index_page(entries, shown)
    _write(out, f"{INDEX_STEM}.md", render_markdown(page), written)
    _write(out, f"{INDEX_STEM}.html", render_html(page), written)
    manifest["files"] = [f"{INDEX_STEM}.html", f"{INDEX_STEM}.md"]
    manifest["format"] = MANIFEST_FORMAT
    _write(out, MANIFEST_FILE, canonical_json(manifest), written)
    return written
