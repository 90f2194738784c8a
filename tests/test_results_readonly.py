"""Reading a result changes nothing: summarise is a pure function of what the run recorded."""

from __future__ import annotations

from models.results import summarise
from models.twin import build
from sim.results import canonical_json
from tests.conftest import scenario


def small(name: str = "crash-iot-core") -> object:
    spec = scenario(name)
    return spec.model_copy(
        update={"duration": 900.0, "fleet": spec.fleet.model_copy(update={"meters": 200, "controllables": 100})}
    )


def test_summarise_twice_gives_equal_results() -> None:
    spec = small()
    world = build(spec, seed=3)
    world.kernel.run(until=spec.duration)
    first = canonical_json(summarise(world))
    second = canonical_json(summarise(world))
    assert first == second
    assert '"held": false' not in first  # neither call broke "each settled exactly once"


def test_summarise_mid_run_then_run_on_equals_a_single_run() -> None:
    spec = small()
    interrupted = build(spec, seed=3)
    interrupted.kernel.run(until=700.0)  # the broker is down from 600 s: commands in every state
    middle = summarise(interrupted)
    assert middle["flows"]["commands"]["intents"] > 0
    interrupted.kernel.run(until=spec.duration)
    after = canonical_json(summarise(interrupted))

    straight = build(spec, seed=3)
    straight.kernel.run(until=spec.duration)
    assert after == canonical_json(summarise(straight))


def test_summarise_leaves_the_runs_ledger_untouched() -> None:
    spec = small()
    world = build(spec, seed=3)
    world.kernel.run(until=spec.duration)
    before = world.kernel.ledger.report({})
    summarise(world)
    assert world.kernel.ledger.report({}) == before
