"""No scenario that validates may crash or hang, and none that is unusable may validate.

The classes of bad input found by trying the twin as a hostile user would, each tested
across the whole class: every field of the scenario format is listed by walking the
pydantic models, and hypothesis picks fields and values from it.
"""

from __future__ import annotations

import math
import types
import typing
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from models.config import MAX_DURATION, Scenario
from models.twin import TWIN
from sim.distributions import Empirical
from sim.durations import _Span
from sim.errors import ScenarioError
from sim.loader import load_scenario_text

BASE = {"name": "hard", "duration": "2m", "fleet": {"meters": 20, "controllables": 10}}
BASE.update(workload={"mobile_users": 10, "dashboard_users": 5})


def _leaf(annotation: Any) -> tuple[str, Any]:
    """(kind, metadata) of a field: int, float, bool, duration, model, or other."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        base, *extra = typing.get_args(annotation)
        if any(isinstance(e, _Span) for e in extra):
            return "duration", None
        return _leaf(base)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _leaf(options[0]) if len(options) == 1 else ("other", None)
    if annotation is bool:
        return "bool", None
    if annotation is int:
        return "int", None
    if annotation is float:
        return "float", None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "model", annotation
    return "other", None


def _fields(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], str, Any]]:
    """Every leaf field below ``model``: (path, kind, the FieldInfo)."""
    found = []
    for name, info in model.model_fields.items():
        key = info.alias or name
        kind, sub = _leaf(info.annotation)
        if kind == "model":
            found += _fields(sub, (*prefix, key))
        else:
            found.append(((*prefix, key), kind, info))
    return found


FIELDS = [f for f in _fields(Scenario) if f[0][0] not in ("faults",)]
NUMBERS = [f for f in FIELDS if f[1] in ("int", "float", "duration")]
INTS = [f for f in FIELDS if f[1] == "int"]
FLOATS = [f for f in FIELDS if f[1] in ("float", "duration")]


def _with(path: tuple[str, ...], value: Any) -> str:
    doc: dict[str, Any] = yaml.safe_load(yaml.safe_dump(BASE))
    node = doc
    for step in path[:-1]:
        node = node.setdefault(step, {})
    node[path[-1]] = value
    return yaml.safe_dump(doc, sort_keys=False)


def _load(text: str) -> Scenario:
    scenario: Scenario = load_scenario_text(text, Scenario, filename="hard.yaml", check=TWIN.check)
    return scenario


def _rejected(text: str, field: str) -> ScenarioError:
    with pytest.raises(ScenarioError) as caught:
        _load(text)
    assert field in str(caught.value), str(caught.value)
    assert all(p.line is not None for p in caught.value.problems)
    return caught.value


def test_the_field_walk_sees_the_whole_format() -> None:
    paths = {".".join(p) for p, _, _ in FIELDS}
    assert {"fleet.meters", "duration", "broker.publish_limit_per_s", "ingest.validate", "seed"} <= paths
    assert len(NUMBERS) > 40


@given(st.sampled_from(FLOATS), st.sampled_from([math.nan, math.inf, -math.inf]))
def test_no_float_field_takes_nan_or_infinity(field: tuple[Any, ...], value: float) -> None:
    path, _, _ = field
    _rejected(_with(path, value), path[-1])


@given(st.sampled_from(NUMBERS), st.booleans())
def test_no_number_field_takes_a_boolean(field: tuple[Any, ...], value: bool) -> None:
    path, _, _ = field
    _rejected(_with(path, value), path[-1])


def test_every_count_has_a_ceiling() -> None:
    unbounded = [".".join(p) for p, _, info in INTS if not any(hasattr(m, "le") for m in info.metadata)]
    assert unbounded == []


@given(st.sampled_from(INTS), st.integers(min_value=10**7 + 1, max_value=10**40))
def test_huge_counts_are_refused(field: tuple[Any, ...], value: int) -> None:
    path, _, info = field
    bound = next(m.le for m in info.metadata if hasattr(m, "le"))
    if value <= bound:
        return
    _rejected(_with(path, value), path[-1])


@given(st.sampled_from(INTS), st.floats(min_value=1.5, max_value=1e30).filter(lambda v: v != int(v)))
def test_counts_refuse_fractions(field: tuple[Any, ...], value: float) -> None:
    path, _, _ = field
    _rejected(_with(path, value), path[-1])


@given(st.sampled_from(["1e3", "2E5", "1e+3", "5e-1"]))
def test_yaml_1_1_exponents_are_refused_with_a_located_message(text: str) -> None:
    _rejected(_with(("fleet", "meters"), text).replace(f"'{text}'", text), "fleet.meters")


def test_the_run_length_is_bounded() -> None:
    _rejected(_with(("duration",), MAX_DURATION * 2), "duration")
    _rejected(_with(("fleet", "tick"), 1e-9), "fleet.tick")
    _rejected(_with(("metrics_interval",), 1e-6), "metrics_interval")


@given(st.lists(st.floats(min_value=0, max_value=1e308), min_size=1, max_size=6))
def test_empirical_weights_are_usable_probabilities_whatever_their_scale(weights: list[float]) -> None:
    values = list(range(len(weights)))
    if max(weights) <= 0:
        with pytest.raises(ValueError, match="not all be zero"):
            Empirical(values=values, weights=weights)
        return
    spec = Empirical(values=values, weights=weights)
    import numpy as np

    drawn = spec.sampler(np.random.default_rng(1)).many(50)
    assert np.isfinite(drawn).all() and math.isfinite(spec.mean())


@given(st.dictionaries(st.integers(0, 5), st.sampled_from([0.0, 1.0, 1e308, -1.0, math.nan]), min_size=1, max_size=4))
def test_schema_shares_are_usable_probabilities(shares: dict[int, float]) -> None:
    usable = all(math.isfinite(v) and v >= 0 for v in shares.values()) and max(shares.values()) > 0
    text = _with(("fleet", "schema_versions"), shares)
    if usable:
        assert _load(text).fleet.schema_versions == shares
    else:
        _rejected(text, "fleet.schema_versions")


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("ingest", "supported_schema_versions"), []),
        (("fleet", "schema_versions"), {}),
        (("ingest", "power_range"), [10, 1]),
        (("name",), "../../../x"),
        (("name",), "/etc/passwd"),
        (("name",), "."),
        (("name",), "a\nb"),
        (("name",), "x" * 65),
    ],
)
def test_meaningless_settings_are_refused(path: tuple[str, ...], value: Any) -> None:
    _rejected(_with(path, value), path[-1])


# -- what validates must run ------------------------------------------------------------------

KINDS_AND_TARGETS = [
    ("latency", "db-replica-1", {"for": 20, "add": "2s"}),
    ("error_rate", "db-primary", {"for": 20, "rate": 0.5}),
    ("crash", "iot-core", {"restart_after": 10}),
    ("crash", "ingest-consumer", {"restart_after": 5}),
    ("crash", "redis-master-1", {}),
    ("partition", "us-east-1a", {"for": 15}),
    ("message_loss", "devices", {"for": 20, "probability": 0.5}),
    ("duplication", "meters", {"for": 20, "probability": 0.5}),
    ("reordering", "mobile", {"for": 20, "probability": 0.5}),
    ("poison", "meters", {"count": 2}),
    ("flood", "mobile", {"for": 10, "rate": 50, "device": 0, "users": 3}),
]


@st.composite
def scenarios(draw: st.DrawFn) -> str:
    doc: dict[str, Any] = {
        "name": "gen",
        "duration": draw(st.sampled_from([30, 60, 90])),
        "metrics_interval": draw(st.sampled_from([0.1, 1, 60, 1000])),
        "fleet": {
            "meters": draw(st.integers(0, 40)),
            "controllables": draw(st.integers(1, 20)),
            "report_every": draw(st.sampled_from([0.5, 1, 10])),
            "tick": draw(st.sampled_from([0.001, 0.25, 0.5])),
            "corrupt_fraction": draw(st.sampled_from([0.0, 0.5, 1.0])),
            "qos1_max_retries": draw(st.integers(0, 4)),
            "schema_versions": draw(st.sampled_from([{2: 1.0}, {1: 1e308, 2: 1e308}, {2: 1.0, 3: 0.0}])),
        },
        "stream": {"shards": draw(st.integers(1, 5)), "write_limit_per_shard": draw(st.sampled_from([1, 50, 1000]))},
        "postgres": {"replicas": draw(st.integers(0, 3))},
        "redis": {"masters": draw(st.integers(1, 4))},
        "gateway": {"concurrency": draw(st.integers(1, 8)), "user_limit_per_min": draw(st.sampled_from([1, 1e6]))},
        "device_manager": {
            "concurrency": draw(st.integers(1, 4)),
            "outbox": draw(st.booleans()),
            "idempotency_keys": draw(st.booleans()),
            "device_limit_per_min": draw(st.sampled_from([None, 0.5, 10])),
        },
        "ingest": {
            "validate": draw(st.booleans()),
            "dedup": draw(st.booleans()),
            "dead_letter": draw(st.booleans()),
            "checkpoint_every": draw(st.sampled_from([0, 60])),
            "supported_schema_versions": draw(st.sampled_from([[2], [1, 2]])),
        },
        "analytics": {"breaker": draw(st.sampled_from([None, {}])), "fallback_to_cache": draw(st.booleans())},
        "workload": {
            "mobile_users": draw(st.integers(0, 30)),
            "commands_per_user_per_hour": draw(st.sampled_from([0, 60, 3600])),
            "dashboard_users": draw(st.integers(0, 10)),
            "queries_per_user_per_hour": draw(st.sampled_from([0, 600])),
            "send_idempotency_keys": draw(st.booleans()),
        },
    }
    faults = []
    for kind, target, extra in draw(st.lists(st.sampled_from(KINDS_AND_TARGETS), max_size=4)):
        faults.append({"kind": kind, "target": target, "at": draw(st.integers(0, 29)), **extra})
    doc["faults"] = faults
    return yaml.safe_dump(doc, sort_keys=False)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.integers(0, 2**32))
def test_a_scenario_that_validates_runs_to_the_end(text: str, seed: int) -> None:
    try:
        scenario = _load(text)
    except ScenarioError:
        return  # refused with a located message: fine (e.g. poison with no meters)
    result = TWIN.run(scenario, seed)
    assert result["engine"]["simulated_s"] == scenario.duration


@pytest.mark.slow
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.integers(0, 2**32))
def test_many_scenarios_that_validate_run_to_the_end(text: str, seed: int) -> None:
    test_a_scenario_that_validates_runs_to_the_end.hypothesis.inner_test(text, seed)  # type: ignore[attr-defined]
