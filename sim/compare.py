"""Running a scenario's variants side by side, on one seed or on many, and saying what changed.

* :func:`run_compared` runs every variant on one seed and builds the result file's body:
  each variant's result, the expectations' verdicts, and whether everything held.
* :func:`comparison_text` prints the key figures of the variants next to each other: every
  figure an expectation reads, then each flow's own figures.
* :func:`parse_seeds` and :func:`seeds_body` / :func:`seeds_text` run the same on many
  seeds and count, per expectation, the seeds it held on.

Pure functions of results: nothing here changes a run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sim.errors import SimError
from sim.expectations import value_at
from sim.variants import Experiment, expectations_of, run_variants

if TYPE_CHECKING:
    from sim.kernel import Progress
    from sim.twin import Twin

__all__ = ["comparison_text", "markdown_table", "parse_seeds", "run_compared", "seeds_body", "seeds_text"]

MAX_SEEDS = 10_000


def run_compared(
    twin: Twin, scenario: Experiment, seed: int, progress: Callable[[str], Progress | None] | None = None
) -> dict[str, Any]:
    """Every variant on ``seed``: ``{"variants": ..., "expectations": ..., "..._held": ...}``.

    ``progress(variant)`` gives the progress callback for one variant's run (or None).
    """
    results, verdicts = run_variants(twin, scenario, seed, progress)
    return {
        "variants": results,
        "expectations": [v.as_dict() for v in verdicts],
        "expectations_held": all(v.held for v in verdicts),
        "invariants_held": all(r.get("invariants_held", True) for r in results.values()),
    }


def _figure(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _rows(body: Mapping[str, Any], paths: Sequence[str]) -> list[str]:
    variants: dict[str, Any] = body["variants"]
    rows = list(dict.fromkeys(paths))
    first: Mapping[str, Any] = next(iter(variants.values()), {})
    for flow, figures in first.get("flows", {}).items():
        for key, value in figures.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                rows.append(f"{flow}.{key}")
    return list(dict.fromkeys(rows))


def comparison_text(body: Mapping[str, Any], scenario: Experiment) -> str:
    """The variants' key figures side by side, then each expectation with its verdict."""
    variants: dict[str, Any] = body["variants"]
    names = list(variants)
    paths = [e.path for _, e in expectations_of(scenario)]
    rows = _rows(body, paths)
    width = max((len(r) for r in rows), default=10) + 2
    columns = [max(12, len(n) + 2) for n in names]
    lines = ["".ljust(width) + "".join(n.rjust(c) for n, c in zip(names, columns, strict=True))]
    for row in rows:
        cells = []
        for name, column in zip(names, columns, strict=True):
            try:
                cells.append(_figure(value_at(variants[name], row)).rjust(column))
            except KeyError:
                cells.append("n/a".rjust(column))
        lines.append(row.ljust(width) + "".join(cells))
    if body["expectations"]:
        lines.append("\nexpectations")
        for verdict in body["expectations"]:
            mark = "held  " if verdict["held"] else "FAILED"
            lines.append(f"  {mark} [{verdict['variant']}] {verdict['expect']}   ({verdict['detail']})")
    for name, result in variants.items():
        for warning in result.get("warnings", []):
            lines.append(f"\nwarning [{name}] {warning}")
    broken = [n for n, r in variants.items() if not r.get("invariants_held", True)]
    if broken:
        lines.append(f"\ninvariants BROKEN in: {', '.join(broken)}")
    return "\n".join(lines)


def _shown(result: Mapping[str, Any], path: str) -> str:
    """The figure at ``path``, or ``n/a`` where the variant has none (a probe only a countermeasure adds)."""
    try:
        return _figure(value_at(result, path))
    except KeyError:
        return "n/a"


def markdown_table(compared: Mapping[str, tuple[Experiment, Mapping[str, Any]]]) -> str:
    """One Markdown row per scenario and figure its expectations read: the figure under each
    variant (as designed first), and whether all the scenario's expectations held.

    ``compared`` maps a scenario's name to the scenario and its :func:`run_compared` body.
    """
    lines = [
        "| scenario | figure | as designed | with the countermeasure(s) | expectations |",
        "|---|---|---|---|---|",
    ]
    for name, (scenario, body) in compared.items():
        variants: dict[str, Any] = body["variants"]
        first, *others = list(variants)
        verdict = (
            "all held"
            if body["expectations_held"]
            else "FAILED: " + "; ".join(v["expect"] for v in body["expectations"] if not v["held"])
        )
        paths = list(dict.fromkeys(e.path for _, e in expectations_of(scenario)))
        for index, path in enumerate(paths):
            shown = [_shown(variants[v], path) for v in [first, *others]]
            countermeasures = ", ".join(f"{v}: {s}" for v, s in zip(others, shown[1:], strict=True))
            lines.append(
                f"| {name if index == 0 else ''} | `{path}` | {shown[0]} | {countermeasures} | "
                f"{verdict if index == 0 else ''} |"
            )
    return "\n".join(lines)


def parse_seeds(text: str) -> list[int]:
    """``"20"`` (20 seeds from the scenario's seed on), ``"1-20"`` or ``"3,5,8"``: the list.

    A single number N means N consecutive seeds; the caller adds the start.
    """
    text = text.strip()
    try:
        if "," in text:
            seeds = [int(part) for part in text.split(",")]
        elif "-" in text.lstrip("-"):
            low, high = (int(part) for part in text.split("-", 1))
            if high < low:
                raise SimError(f"--seeds {text}: the range ends before it starts")
            seeds = list(range(low, high + 1))
        else:
            count = int(text)
            if count < 1:
                raise SimError(f"--seeds {text}: expected at least 1 seed")
            seeds = list(range(count))  # offsets, added to the scenario's seed by the caller
    except ValueError:
        raise SimError(f"--seeds {text!r}: expected a count (20), a range (1-20) or a list (3,5,8)") from None
    if len(seeds) > MAX_SEEDS:
        raise SimError(f"--seeds {text}: at most {MAX_SEEDS} seeds (got {len(seeds)})")
    if len(set(seeds)) != len(seeds):
        raise SimError(f"--seeds {text}: a seed is listed twice")
    return seeds


def seeds_body(per_seed: Mapping[int, Mapping[str, Any]]) -> dict[str, Any]:
    """For each expectation, the seeds it held and failed on; plus the invariants per seed."""
    counts: dict[tuple[str, str], dict[str, Any]] = {}
    for seed, body in per_seed.items():
        for verdict in body["expectations"]:
            key = (verdict["variant"], verdict["expect"])
            entry = counts.setdefault(key, {"variant": key[0], "expect": key[1], "held_on": 0, "failed_seeds": []})
            if verdict["held"]:
                entry["held_on"] += 1
            else:
                entry["failed_seeds"].append(seed)
    seeds = list(per_seed)
    return {
        "seeds": seeds,
        "expectations": [{**entry, "of": len(seeds)} for entry in counts.values()],
        "expectations_held": all(not e["failed_seeds"] for e in counts.values()),
        "invariants_broken_on": [s for s, b in per_seed.items() if not b["invariants_held"]],
        "invariants_held": all(b["invariants_held"] for b in per_seed.values()),
        "per_seed": {str(s): {"expectations": b["expectations"]} for s, b in per_seed.items()},
    }


def seeds_text(body: Mapping[str, Any]) -> str:
    """One line per expectation: on how many seeds it held, and the seeds it failed on."""
    n = len(body["seeds"])
    lines = [f"{n} seeds: {body['seeds'][0]} .. {body['seeds'][-1]}" if n > 1 else f"seed {body['seeds'][0]}"]
    for entry in body["expectations"]:
        failed = entry["failed_seeds"]
        shown = ", ".join(map(str, failed[:20])) + (" ..." if len(failed) > 20 else "")
        tail = f"   failed on seeds {shown}" if failed else ""
        mark = "held  " if not failed else "FAILED"
        lines.append(f"  {mark} {entry['held_on']:>4}/{n} [{entry['variant']}] {entry['expect']}{tail}")
    if body["invariants_broken_on"]:
        lines.append(f"  invariants BROKEN on seeds {', '.join(map(str, body['invariants_broken_on']))}")
    return "\n".join(lines)
