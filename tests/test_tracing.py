"""Trace context in the driver and trace capture (sim.tracing): ids, parents, items, windows, ceilings."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from sim.actor import Actor
from sim.kernel import Kernel
from sim.ops import Operation
from sim.spans import Span, capturing, span_hex, trace_hex
from sim.tracing import TracingError, capture_item, capture_window, find_item, trace_of_item
from sim.twin import load_twin


@dataclass(frozen=True, slots=True)
class Get(Operation):
    target: str
    key: str = ""
    timeout: float | None = None


class Back(Actor):
    def handle(self, op: Operation, origin: str) -> Any:
        return "value"


class Front(Actor):
    """Handles a Get by calling the back end twice: its flow continues the caller's trace."""

    def handle(self, op: Operation, origin: str) -> Any:
        def logic() -> Any:
            first = yield Get("back", "a")
            second = yield Get("back", "b")
            return (first, second)

        return logic()


class _Keep:
    """A capture keeping every span of the one kernel built inside it."""

    def __init__(self) -> None:
        self.spans: list[Span] = []

    def attach(self, kernel: Kernel) -> None:
        kernel.spans.sink = lambda *fields: self.spans.append(Span(*fields))


def _world() -> tuple[Kernel, _Keep]:
    keep = _Keep()
    with capturing(keep):
        kernel = Kernel(seed=1)
    kernel.network.add_node("client", zone="z", region="r")
    Back(kernel, "back", zone="z", region="r")
    Front(kernel, "front", zone="z", region="r")
    return kernel, keep


def _client(kernel: Kernel) -> Any:
    yield Get("front", "x")
    yield Get("back", "y")


def test_a_spawned_flow_starts_a_trace_and_a_handler_continues_it():
    kernel, keep = _world()
    kernel.driver.spawn(_client(kernel), "client")
    kernel.driver.spawn(_client(kernel), "client")
    kernel.run(1.0)
    spans = sorted(keep.spans, key=lambda s: s.span_id)
    assert len(spans) == 8
    by_trace: dict[int, list[Span]] = {}
    for span in spans:
        by_trace.setdefault(span.trace_id, []).append(span)
    assert sorted(by_trace) == [1, 2]  # two client flows, two traces; the handlers made none of their own
    for trace in by_trace.values():
        roots = [s for s in trace if s.parent_id == 0]
        assert [(s.origin, s.target) for s in roots] == [("client", "front"), ("client", "back")]
        front_call = roots[0]
        children = [s for s in trace if s.parent_id == front_call.span_id]
        assert [(s.origin, s.target) for s in children] == [("front", "back"), ("front", "back")]
        for child in children:  # the handler's calls lie inside the call they serve
            assert front_call.start < child.start <= child.end < front_call.end
    assert len({s.span_id for s in spans}) == 8


def test_a_loop_call_is_a_trace_of_its_own():
    kernel, keep = _world()

    def loop() -> Any:
        yield from kernel.driver.call("client", Get("front", "x"))
        yield from kernel.driver.call("client", Get("front", "y"))

    kernel.env.process(loop())
    kernel.run(1.0)
    roots = [s for s in keep.spans if s.parent_id == 0]
    assert len(roots) == 2 and roots[0].trace_id != roots[1].trace_id
    for root in roots:
        children = [s for s in keep.spans if s.parent_id == root.span_id]
        assert len(children) == 2 and {c.trace_id for c in children} == {root.trace_id}


def test_ids_render_at_otlp_widths():
    assert trace_hex(1) == "0" * 31 + "1" and len(trace_hex(2**100)) == 32
    assert span_hex(255) == "00000000000000ff"
    assert span_hex(0) == ""


def test_first_keep_spans_still_kept_without_a_capture():
    kernel = Kernel(seed=1, keep_spans=3)
    kernel.network.add_node("client", zone="z", region="r")
    Back(kernel, "back", zone="z", region="r")
    Front(kernel, "front", zone="z", region="r")
    for _ in range(3):
        kernel.driver.spawn(_client(kernel), "client")
    kernel.run(1.0)
    assert len(kernel.spans.kept) == 3 and kernel.spans.sink is None
    assert all(span.trace_id and span.span_id for span in kernel.spans.kept)


# -- capture on the smart-home twin -------------------------------------------------------------

SMALL = "scenarios/c1-outbox.yaml"


@pytest.fixture(scope="module")
def small() -> dict[str, Any]:
    """c1-outbox cut to 8 minutes: the broker's error window (2m to 4m) orphans commands as designed."""
    with open(SMALL, encoding="utf-8") as file:
        data = yaml.safe_load(file)
    data.update(
        duration="8m", faults=[{"kind": "error_rate", "target": "iot-core", "at": "2m", "for": "2m", "rate": 0.5}]
    )
    data["workload"].update(quiet_before_end="1m", dashboard_users=5)
    data["fleet"]["meters"] = 20
    data["expect"] = {}
    return data


@pytest.fixture(scope="module")
def twin() -> Any:
    return load_twin()


@pytest.fixture(scope="module")
def orphan(twin: Any, small: dict[str, Any]) -> Any:
    return trace_of_item(
        twin, small, 7, variant="as-designed", kind="commands", state="failed", reason="orphaned_pending"
    )


def test_the_trace_of_an_orphaned_command(orphan: Any):
    assert orphan is not None and orphan.item is not None
    assert (orphan.item.kind, orphan.item.state, orphan.item.reason) == ("commands", "failed", "orphaned_pending")
    assert orphan.variant == "as-designed" and orphan.seed == 7
    spans = orphan.spans
    assert [s.start for s in spans] == sorted(s.start for s in spans)
    assert {s.trace_id for s in spans} == set(orphan.item.trace_ids) and len(orphan.item.trace_ids) == 1
    ids = {s.span_id for s in spans}
    assert all(s.parent_id == 0 or s.parent_id in ids for s in spans)  # the whole tree was kept
    assert spans[0].origin == "mobile" and spans[0].parent_id == 0
    # as designed, the publish failed and the row stayed pending: the trace shows the failed publish
    assert any(s.target == "iot-core" and s.outcome != "ok" for s in spans)
    assert "orphaned_pending" in orphan.describe()


def test_an_item_capture_is_deterministic(twin: Any, small: dict[str, Any], orphan: Any):
    again = capture_item(twin, small, 7, variant="as-designed", kind="commands", key=orphan.item.key)
    assert again.spans == orphan.spans and again.item == orphan.item


def test_a_capture_leaves_the_result_as_an_ordinary_run_has_it(twin: Any, small: dict[str, Any]):
    from sim.tracing import _Capture, select_variant

    chosen, _, _, seed = select_variant(twin, small, 7, "as-designed")
    ordinary = json.dumps(twin.run(chosen, seed), sort_keys=True)
    with capturing(_Capture(10, window=(100.0, 200.0), find_kind="commands")):
        captured = json.dumps(twin.run(chosen, seed), sort_keys=True)
    assert captured == ordinary


def test_a_window_keeps_the_spans_overlapping_it(twin: Any, small: dict[str, Any]):
    trace = capture_window(twin, small, 7, variant="outbox", start=150.0, end=151.0)
    assert trace.spans and trace.window == (150.0, 151.0) and trace.item is None
    assert all(s.end >= 150.0 and s.start <= 151.0 for s in trace.spans)
    assert len(trace.trace_ids) > 1


def test_the_ceiling_refuses_with_the_count(twin: Any, small: dict[str, Any]):
    with pytest.raises(TracingError, match=r"holds [\d,]+ spans, more than the ceiling of 5"):
        capture_window(twin, small, 7, variant="outbox", start=0.0, end=480.0, max_spans=5)


def test_no_item_in_that_state_is_none(twin: Any, small: dict[str, Any]):
    assert find_item(twin, small, 7, variant="outbox", kind="commands", state="failed", reason="no-such") is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"variant": "nope", "kind": "commands", "state": "failed"}, "no variant 'nope'"),
        ({"variant": "outbox", "kind": "commands", "state": "lost"}, "unknown final state 'lost'"),
        ({"variant": "outbox", "kind": "comands", "state": "failed"}, "no item of kind 'comands'"),
    ],
)
def test_bad_requests_say_what_is_wrong(twin: Any, small: dict[str, Any], kwargs: dict[str, Any], message: str):
    with pytest.raises(TracingError, match=message):
        find_item(twin, small, 7, **kwargs)
