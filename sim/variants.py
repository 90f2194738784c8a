"""Variants: one scenario as designed and with its countermeasures, run on the same seed.

A scenario file may declare ``variants:``, each an *overlay* on the base scenario (the
countermeasure is a line or two), and ``expect:``, what must hold per variant and
between variants (:mod:`sim.expectations`)::

    variants:
      as-designed: {}
      outbox: {device_manager: {outbox: true}}
    expect:
      as-designed: [commands.orphaned > 0]
      outbox: [commands.orphaned == 0]

An overlay merges into the base scenario key by key: mappings merge recursively, anything
else (a number, a list such as ``faults``) replaces.  Each variant is validated as a whole
scenario when the file is loaded, and its problems are reported at the overlay's lines.

Every variant runs on the same seed: random streams are keyed by component name, so
variants share the workload and the fault draws wherever the variant does not change them
(common random numbers), and their difference is a paired comparison.

An experiment may also declare a ``sweep:`` (:mod:`sim.sweep`): points in the config, each
run with every variant. The section describes how to explore, not the system, so it is left
out of dumps and therefore of scenario hashes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import Field, ValidationError, field_validator

from sim.expectations import BETWEEN, VARIANT_NAME, Expectation, Verdict, check_paths, evaluate, parse
from sim.spec import Spec
from sim.sweep import Sweep, check_sweep

if TYPE_CHECKING:
    from sim.kernel import Progress
    from sim.twin import Twin

__all__ = ["Experiment", "check_variants", "expectations_of", "overlay", "run_variants", "variant_scenarios"]

Loc = tuple[str | int, ...]
_NAME_RULE = "a slug of lower-case letters, digits, '.', '_' or '-' (not 'between')"


class Experiment(Spec):
    """The fields a twin's scenario type adds to describe variants and expectations."""

    variants: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="named overlays on this scenario (e.g. as-designed: {}, outbox: {device_manager: {outbox: true}})",
    )
    expect: dict[str, list[str | dict[str, str]]] = Field(
        default_factory=dict,
        description="per variant (or 'between'), what must hold: 'commands.orphaned == 0', "
        "'analytics.availability: breaker > as-designed + 0.1' (YAML reads the latter as a one-key mapping)",
    )
    sweep: Sweep | None = Field(
        default=None,
        exclude=True,
        description="points in the config to run (hems-twin sweep): design grid, random or lhs; parameters "
        "(dotted path -> list of values, or range {low, high}); samples; seed",
    )

    @field_validator("expect")
    @classmethod
    def _one_key(cls, value: dict[str, list[str | dict[str, str]]]) -> dict[str, list[str | dict[str, str]]]:
        for texts in value.values():
            for item in texts:
                if isinstance(item, dict) and len(item) != 1:
                    raise ValueError("an expectation written as a mapping has one key, the path")
        return value

    @field_validator("variants")
    @classmethod
    def _names(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name in value:
            if name == BETWEEN or not re.fullmatch(VARIANT_NAME, name) or len(name) > 64:
                raise ValueError(f"variant name {name!r} must be {_NAME_RULE}")
        return value


def overlay(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` merged in: mappings recursively, anything else replaced."""
    merged = dict(base)
    for key, value in changes.items():
        current = merged.get(key)
        if isinstance(value, Mapping) and isinstance(current, Mapping):
            merged[key] = overlay(current, value)
        else:
            merged[key] = value
    return merged


def _base_data(scenario: Experiment) -> dict[str, Any]:
    return scenario.model_dump(by_alias=True, exclude={"variants", "expect", "sweep"}, exclude_unset=True)


def variant_scenarios(scenario: Experiment) -> dict[str, Experiment]:
    """Each variant as a full scenario, in declaration order; ``{}`` when there are none.

    Raises ValidationError if an overlay does not give a valid scenario (the loader's check
    reports that, located, before anyone calls this).
    """
    base = _base_data(scenario)
    kind = type(scenario)
    return {name: kind.model_validate(overlay(base, changes)) for name, changes in scenario.variants.items()}


def expectations_of(scenario: Experiment) -> list[tuple[Loc, Expectation]]:
    """The parsed expectations with their place in the file (raises ValueError on bad syntax)."""
    found: list[tuple[Loc, Expectation]] = []
    for variant, texts in scenario.expect.items():
        for index, item in enumerate(texts):
            found.append((("expect", variant, index), parse(_text(item), variant)))
    return found


def _text(item: str | dict[str, str]) -> str:
    """An expectation's text: ``path: left > right`` reads in YAML as ``{path: "left > right"}``."""
    if isinstance(item, str):
        return item
    ((path, rest),) = item.items()
    return f"{path}: {rest}"


def check_variants(twin: Twin, scenario: Experiment) -> list[tuple[Loc, str]]:
    """Load-time problems of the variants and expectations, as ``(loc, message)``.

    Each overlay must give a valid scenario that passes the twin's own check; each
    expectation must parse, name declared variants and read a number the model produces;
    every point of a ``sweep:`` section, with every variant, must be a valid scenario.
    """
    problems: list[tuple[Loc, str]] = check_sweep(twin, scenario)
    base = _base_data(scenario)
    kind = type(scenario)
    valid: dict[str, Experiment] = {}
    for name, changes in scenario.variants.items():
        try:
            built = kind.model_validate(overlay(base, changes))
        except ValidationError as error:
            for detail in error.errors(include_url=False):
                text = detail["msg"].removeprefix("Value error, ")
                problems.append((("variants", name, *detail["loc"]), f"in variant {name!r}: {text}"))
            continue
        valid[name] = built
        for where, text in twin.check(built):
            problems.append((("variants", name, *where), f"in variant {name!r}: {text}"))
    if scenario.expect and not scenario.variants:
        problems.append((("expect",), "expectations need variants to judge: add a variants: section"))
        return problems
    known = set(scenario.variants)
    paths: dict[str, set[str]] = {}
    for variant, texts in scenario.expect.items():
        if variant != BETWEEN and variant not in known:
            problems.append((("expect", variant), f"no variant called {variant!r} (variants: {', '.join(known)})"))
            continue
        for index, item in enumerate(texts):
            loc: Loc = ("expect", variant, index)
            try:
                expectation = parse(_text(item), variant)
            except ValueError as error:
                problems.append((loc, str(error)))
                continue
            missing = [v for v in expectation.variants if v not in known]
            if missing:
                problems.append((loc, f"no variant called {missing[0]!r} (variants: {', '.join(known)})"))
                continue
            for name in expectation.variants:
                if name not in valid:
                    break
                if name not in paths:
                    paths[name] = twin.result_paths(valid[name])
                unknown = check_paths(expectation, paths[name])
                if unknown is not None:
                    problems.append((loc, unknown))
                    break
    return problems


def run_variants(
    twin: Twin, scenario: Experiment, seed: int, progress: Callable[[str], Progress | None] | None = None
) -> tuple[dict[str, dict[str, Any]], list[Verdict]]:
    """Run every variant on ``seed``; returns each one's result body and the verdicts.

    ``progress(variant)`` gives the progress callback of that variant's run, if any.
    """
    results = {
        name: twin.run(variant, seed, None if progress is None else progress(name))
        for name, variant in variant_scenarios(scenario).items()
    }
    verdicts = [evaluate(expectation, results) for _, expectation in expectations_of(scenario)]
    return results, verdicts
