"""docs/results.md names every field a real result.json holds, so the reference cannot go stale.

Three short runs (the baseline cut to 5 minutes and 200 meters; a variant with faults, a
breaker and a dead letter queue, so that every list and ledger kind has entries; and a small
run with a ``durability:`` section, a broken WAL archive and a lost primary disk, so that the
``durability`` section's lists have entries) are walked key by key.  Each key path must appear
in the page as a code span: literally, or with the name of a per-name map replaced by its
placeholder (``components.<actor>.served``, ``ledger.<kind>.states.<state>.total``), and a
numbered instance as ``-N`` (``db-replica-N``).  Distribution summaries stop the walk; their
keys are checked once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from models.names import COMMANDS, READING_COPIES, READINGS
from models.twin import TWIN
from sim.cli import load, run_scenario
from sim.ledger import FinalState
from tests.conftest import ROOT, scenario

DOC = ROOT / "docs" / "results.md"
LEDGER_KINDS = (COMMANDS, READINGS, READING_COPIES)
SUMMARY_KEYS = frozenset({"count", "mean", "p50", "p95", "p99", "max"})

FAULTED = """\
name: docs-reference
description: a short run that puts something in every part of result.json
duration: 5m
seed: 7
fleet: {meters: 200, controllables: 100}
workload: {mobile_users: 600, dashboard_users: 150, queries_per_user_per_hour: 30, automation: {devices: 50}}
analytics: {breaker: {}, query_timeout: 2s}
ingest: {dead_letter: true}
health: {deep: {}, synthetic: {}, gate_traffic: true}
slos: review
faults:
  - {kind: latency, target: db-replica-1, at: 30s, for: 2m, add: 15s}
  - {kind: crash, target: iot-core, at: 60s, restart_after: 60s}
  - {kind: duplication, target: meters, at: 30s, for: 3m, probability: 0.2}
  - {kind: poison, target: meters, at: 150s}
"""

# Two hours, the detailed twin from the first: backups every 30 minutes, half the archived WAL
# silently corrupt from the start until a check catches it and it is fixed, restore tests and
# drills, and the primary's disk lost at 90 minutes (restored from the backups).
DURABLE = """\
name: docs-durability
description: a short run that puts something in every part of the durability section
duration: 2h
seed: 7
fleet: {meters: 20, controllables: 20}
workload: {mobile_users: 20, dashboard_users: 5}
durability:
  detail_from: 1h
  wal: {archive_timeout: 60s}
  backups: {every: 30m, first_at: 10m, initial_size: 1000000000}
  checks:
    verify_backups: true
    wal_checksums: 1h
    restore_test_every: 30m
    full_restore_every: 1h
    dr_drill_every: 1h
    respond: 10m
  failover: {on_primary_loss: restore}
faults:
  - {kind: segment_corruption, target: wal-archive, at: 0s, mode: corrupt, fraction: 0.5}
  - {kind: disk_loss, target: db-primary, at: 90m}
"""

# Maps whose keys are names (of components, kinds, states...), not fields: the page names
# them with a placeholder.  Keyed by the path of the map, with placeholders already applied.
PER_NAME = {
    "ledger": "<kind>",
    "ledger.<kind>.states": "<state>",
    "health.probes": "<probe>",
    "health.faults[].detection": "<probe>",
    "flows.commands.windows": "<window>",
    "flows.analytics.breakers": "<replica>",
    "slos": "<slo>",
    "distributions": "<distribution>",
    "slos.<slo>.alerts": "<alert>",
    "slos.<slo>.series.burn_rate": "<window>",
    "components.db-primary.burst_rows": "<table>",
    "durability.flows": "<table>",
    "durability.rows_lost": "<table>",
    "durability.disasters[].rows_lost": "<table>",
    "durability.disasters[].step_s": "<step>",
    "durability.disasters[].traffic": "<moment>",
    "durability.disasters_by_name": "<disaster>",
}
# Maps whose entries are documented as another path's: each disaster by name is one item of
# ``durability.disasters``.
SAME_AS = {"durability.disasters_by_name": "durability.disasters[]"}
# Maps of names to counts: documented as a whole, their keys vary from run to run.
OPAQUE = {
    "flows.analytics.statuses",
    "ledger.<kind>.states.<state>.by_reason",
    "components.db-primary.device_commands",
    "components.api-gateway.bulkhead_refused",
    "components.automation.answers",
}


def _documented() -> str:
    return DOC.read_text(encoding="utf-8")


def _mentioned(text: str, path: str) -> bool:
    return f"`{path}`" in text


def _component(name: str) -> str:
    """``db-replica-2`` -> ``db-replica-N``: numbered instances are documented once (as
    components, and as keys of maps by server such as ``answers_from``)."""
    return re.sub(r"-\d+$", "-N", name)


def _paths(value: Any, path: str) -> Iterator[tuple[str, ...]]:
    """Each key path below ``path`` as its candidate spellings in the page (any one will do)."""
    if isinstance(value, dict) and value and set(value) == SUMMARY_KEYS:
        return  # a distribution summary: its keys are checked once, apart
    if path in OPAQUE:
        return
    if isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                for key, inner in item.items():
                    child = f"{path}[].{key}"
                    yield (child,)
                    yield from _paths(inner, child)
        return
    if not isinstance(value, dict):
        return
    for key, inner in value.items():
        if path == "components":
            # components.<name>: its own figures literally, the common ones as <actor>
            name = _component(key)
            yield (f"components.{name}",)
            for field, figure in inner.items():
                spellings = (f"components.{name}.{field}", f"components.<actor>.{field}")
                yield spellings
                yield from _paths(figure, spellings[0])
            continue
        if path in ("counters", "timeseries") or not path:
            child = f"{path}.{key}" if path else key  # metric names contain dots: keep them whole
        else:
            child = f"{path}.{PER_NAME.get(path, _component(key))}"
        yield (child,)
        yield from _paths(inner, SAME_AS.get(path, child))


def _summaries(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        if value and set(value) == SUMMARY_KEYS:
            yield value
            return
        for inner in value.values():
            yield from _summaries(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _summaries(inner)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    base = scenario("baseline")
    short = base.model_copy(
        update={"duration": 300.0, "fleet": base.fleet.model_copy(update={"meters": 200, "controllables": 100})}
    )
    path = tmp_path_factory.mktemp("docs") / "docs-reference.yaml"
    path.write_text(FAULTED, encoding="utf-8")
    faulted = load(TWIN, path)
    path = path.with_name("docs-durability.yaml")
    path.write_text(DURABLE, encoding="utf-8")
    durable = load(TWIN, path)
    return [run_scenario(TWIN, short, seed=7), run_scenario(TWIN, faulted, seed=7), run_scenario(TWIN, durable, seed=7)]


def test_the_runs_fill_every_part_of_the_result(results: list[dict[str, Any]]) -> None:
    faulted = results[1]
    assert faulted["invariants_held"]
    assert faulted["faults"] and faulted["spans"] and faulted["flows"]["analytics"]["breaker_transitions"]
    assert set(faulted["ledger"]) == set(LEDGER_KINDS)
    durability = results[2]["durability"]
    backups = durability["backups"]
    assert backups["alerts"] and backups["restore_tests"] and backups["drills"] and backups["fixes"]
    assert backups["faults"] and durability["disasters_happened"] == 1
    assert durability["disasters"][0]["restore"] and durability["disasters"][0]["steps"]


def test_every_field_of_the_result_is_in_the_reference(results: list[dict[str, Any]]) -> None:
    text = _documented()
    missing = set()
    for result in results:
        for spellings in _paths(result, ""):
            if not any(_mentioned(text, spelling) for spelling in spellings):
                missing.add(spellings[0])
    assert not missing, f"docs/results.md does not mention: {', '.join(sorted(missing))}"


def test_the_walk_reaches_deep_fields(results: list[dict[str, Any]]) -> None:
    """Guard the guard: the walk must see the fields it is meant to check."""
    seen = {spellings[0] for spellings in _paths(results[1], "")}
    for path in (
        "scenario_hash",
        "flows.sensor.processed_awaiting_checkpoint",
        "flows.analytics.breaker_transitions[].replica",
        "components.db-replica-N.utilisation",
        "components.kinesis.records_accepted",
        "components.analytics-engine.answers_from.db-replica-N",
        "ledger.<kind>.states.<state>.by_reason",
        "invariants[].held",
        "faults[].end",
        "spans[].p99",
        "timeseries.readings.stored",
        "counters.readings.poison_injected",
        "engine.events",
    ):
        assert path in seen, path


def test_the_walk_reaches_the_durability_section(results: list[dict[str, Any]]) -> None:
    """Guard the guard for ``durability``: its lists and per-name maps are walked into."""
    seen = {spellings[0] for spellings in _paths(results[2], "")}
    for path in (
        "durability.rpo_within_claim",
        "durability.rows_lost.<table>",
        "durability.flows.<table>.rows_committed",
        "durability.backups.archive.corrupt",
        "durability.backups.alerts[].check",
        "durability.backups.restore_tests[].outcome",
        "durability.backups.drills[].duration_s",
        "durability.backups.fixes[].ended_fault",
        "durability.backups.faults[].detection_delay_s",
        "durability.disasters[].rpo_s",
        "durability.disasters[].rows_lost.<table>",
        "durability.disasters[].step_s.<step>",
        "durability.disasters[].steps[].recovers_data",
        "durability.disasters[].restore.stop_reason",
        "durability.disasters[].traffic.<moment>.readings_emitted",
        "durability.disasters_by_name.<disaster>",
        "components.redis.persistence.keys_lost.sessions",
    ):
        assert path in seen, path


def test_summary_keys_ledger_names_and_reasons_are_in_the_reference(results: list[dict[str, Any]]) -> None:
    text = _documented()
    names = set(SUMMARY_KEYS) | set(LEDGER_KINDS) | {state.value for state in FinalState}
    for result in results:
        for summary in _summaries(result):
            names |= set(summary)
        for table in result["ledger"].values():
            for entry in table["states"].values():
                names |= set(entry["by_reason"])
    missing = sorted(name for name in names if not _mentioned(text, name))
    assert not missing, f"docs/results.md does not mention: {', '.join(missing)}"


def test_the_header_fields_are_documented() -> None:
    text = _documented()
    for field in ("scenario", "scenario_hash", "seed", "twin", "version", "format_version"):
        assert _mentioned(text, field), field


def test_the_system_page_lists_every_finding_with_real_scenarios() -> None:
    text = (ROOT / "docs" / "system.md").read_text(encoding="utf-8")
    scenarios = {path.stem for path in (ROOT / "scenarios").glob("*.yaml")}
    cited: set[str] = set()
    for finding in (f"{tier}{number}" for tier in "CSM" for number in range(1, 6)):
        row = re.search(rf"^\| {finding} \|(.*)$", text, re.MULTILINE)
        assert row, f"{finding} is missing from docs/system.md"
        today = row.group(1).split("|")[1]
        named = set(re.findall(r"`([a-z0-9]+(?:-[a-z0-9]+)+)`", today))  # scenario names are kebab-case
        assert named <= scenarios, f"{finding} cites no such scenario: {sorted(named - scenarios)}"
        assert named or "not yet modelled" in today or "outside" in today, f"{finding}: no scenario and no plan"
        cited |= named
    assert scenarios - cited <= {"baseline"}, f"scenarios no finding cites: {sorted(scenarios - cited - {'baseline'})}"
    assert "../shared" not in text
