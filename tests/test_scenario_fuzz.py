"""Generated malformed scenarios: the real loader always answers with a clean error."""

from __future__ import annotations

import contextlib
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.twin import TWIN
from sim.errors import ScenarioError
from sim.loader import load_scenario_text

BASE = yaml.safe_load(
    """
name: fuzz
duration: 10m
fleet: {meters: 10, report_every: 10s, schema_versions: {2: 1.0}}
ingest: {validate: true, power_range: [0, 10000]}
analytics: {retry: {delays: [1s, 2s]}, breaker: {open_for: 30s}}
faults:
  - {kind: latency, target: db-replica-1, at: 1m, for: 2m, add: {kind: lognormal, median: 1s, sigma: 0.5}}
  - {kind: partition, target: us-east-1a, other: [aws-managed], at: 2m, for: 1m}
  - {kind: crash, target: redis-master-2, at: 3m}
"""
)

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**12), 10**12), st.floats(allow_nan=True),
    st.text(max_size=12), st.sampled_from(["-1s", "0s", "1h", "abc", "lognormal", "meters", "1e400", ".inf"]),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, child in node.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found += _paths(child, (*prefix, index))
    return found


PATHS = _paths(BASE)


def _mutate(path: tuple[Any, ...], action: str, value: Any) -> Any:
    import copy

    doc = copy.deepcopy(BASE)
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if action == "replace":
        parent[last] = value
    elif action == "delete":
        del parent[last]
    elif action == "extra" and isinstance(parent, dict):
        parent[f"unknown_{last}"] = value
    return doc


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PATHS), st.sampled_from(["replace", "delete", "extra"]), values)
def test_mutated_scenarios_load_or_fail_cleanly(path: tuple[Any, ...], action: str, value: Any) -> None:
    text = yaml.safe_dump(_mutate(path, action, value), sort_keys=False)
    try:
        scenario = load_scenario_text(text, TWIN.scenario_type, filename="fuzz.yaml", check=TWIN.check)
    except ScenarioError as error:
        problems = error.problems
    else:
        assert scenario.name is not None
        return
    assert problems
    assert all(p.file == "fuzz.yaml" and p.message for p in problems)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_never_escapes_as_another_exception(text: str) -> None:
    with contextlib.suppress(ScenarioError):
        load_scenario_text(text, TWIN.scenario_type, filename="junk.yaml", check=TWIN.check)


def test_the_unmutated_base_is_valid() -> None:
    load_scenario_text(yaml.safe_dump(BASE), TWIN.scenario_type, check=TWIN.check)
