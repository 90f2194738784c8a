"""Exports: Chrome trace events, OTLP JSON, Prometheus text, and the ``export`` command."""

from __future__ import annotations

import argparse
import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from sim.errors import SimError
from sim.exports.chrome import chrome_json, chrome_trace
from sim.exports.command import add_export_parser, export_command
from sim.exports.otlp import EPOCH_UNIX_NANO, otlp_json, otlp_trace
from sim.exports.prometheus import prometheus_text
from sim.spans import Span
from sim.tracing import Trace
from sim.twin import load_twin

# a command's life: mobile -> gateway -> device manager -> (db, iot-core), and a concurrent second request
SPANS = (
    Span("mobile", "api-gateway", "HttpRequest", 1.0, 1.05, "ok", 1, 1, 0),
    Span("api-gateway", "device-manager", "HttpRequest", 1.01, 1.04, "ok", 1, 2, 1),
    Span("mobile", "api-gateway", "HttpRequest", 1.02, 1.03, "ok", 2, 5, 0),
    Span("device-manager", "db-primary", "Insert", 1.011, 1.02, "ok", 1, 3, 2),
    Span("device-manager", "iot-core", "Publish", 1.02, 1.039, "injected_error", 1, 4, 2),
)
TRACE = Trace("c1-outbox", "as-designed", 7, SPANS, window=(1.0, 2.0))


# -- Chrome trace events --------------------------------------------------------------------------


def test_chrome_events_have_what_perfetto_needs():
    document = json.loads(chrome_json(TRACE))
    assert document == chrome_trace(TRACE)  # the text is the document
    events = document["traceEvents"]
    complete = [e for e in events if e["ph"] == "X"]
    assert len(complete) == len(SPANS)
    for event in complete:
        assert {"name", "ph", "ts", "dur", "pid", "tid"} <= event.keys()
        assert event["dur"] >= 0 and isinstance(event["pid"], int) and isinstance(event["tid"], int)
        assert re.fullmatch(r"[0-9a-f]{32}", event["args"]["trace_id"])
        assert re.fullmatch(r"[0-9a-f]{16}", event["args"]["span_id"])
    names = {e["pid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "process_name"}
    assert sorted(names.values()) == sorted(TRACE.components)
    assert {e["pid"] for e in complete} <= names.keys()
    publish = next(e for e in complete if e["name"] == "Publish -> iot-core")
    assert publish["ts"] == 1_020_000 and publish["dur"] == 19_000  # microseconds
    assert publish["cat"] == "error" and publish["args"]["outcome"] == "injected_error"


def test_chrome_overlapping_spans_of_one_component_get_separate_rows():
    complete = [e for e in chrome_trace(TRACE)["traceEvents"] if e["ph"] == "X"]
    rows: dict[tuple[int, int], list[tuple[float, float]]] = {}
    for event in complete:
        rows.setdefault((event["pid"], event["tid"]), []).append((event["ts"], event["ts"] + event["dur"]))
    for spans in rows.values():  # events on one row never overlap (sequential calls of one flow)
        spans.sort()
        assert all(end <= start for (_, end), (start, _) in itertools.pairwise(spans))
    mobile = [e["tid"] for e in complete if e["name"] == "HttpRequest -> api-gateway"]
    assert sorted(mobile) == [1, 2]


def test_chrome_flow_arrows_pair_up():
    events = chrome_trace(TRACE)["traceEvents"]
    starts = sorted(e["id"] for e in events if e["ph"] == "s")
    ends = sorted(e["id"] for e in events if e["ph"] == "f")
    assert starts == ends == [2, 3, 4]  # every span whose parent is in the trace


# -- OTLP JSON ------------------------------------------------------------------------------------


def test_otlp_follows_the_export_trace_service_request_encoding():
    request = json.loads(otlp_json(TRACE, "1.2.3"))
    assert request.keys() == {"resourceSpans"}
    services = []
    seen = 0
    for resource_spans in request["resourceSpans"]:
        assert resource_spans.keys() == {"resource", "scopeSpans"}
        attributes = {a["key"]: a["value"] for a in resource_spans["resource"]["attributes"]}
        services.append(attributes["service.name"]["stringValue"])
        assert attributes["hems.seed"] == {"intValue": "7"}
        (scope_spans,) = resource_spans["scopeSpans"]
        assert scope_spans["scope"] == {"name": "hems-twin", "version": "1.2.3"}
        for span in scope_spans["spans"]:
            seen += 1
            assert set(span) <= {
                "traceId", "spanId", "parentSpanId", "name", "kind", "startTimeUnixNano", "endTimeUnixNano",
                "attributes", "status",
            }  # fmt: skip
            assert re.fullmatch(r"[0-9a-f]{32}", span["traceId"]) and re.fullmatch(r"[0-9a-f]{16}", span["spanId"])
            assert span["kind"] == 3
            assert isinstance(span["startTimeUnixNano"], str) and int(span["endTimeUnixNano"]) >= int(
                span["startTimeUnixNano"]
            )
    assert services == ["mobile", "api-gateway", "device-manager"]  # callers, in order of first span
    assert seen == len(SPANS)


def test_otlp_ids_times_and_status():
    spans = {s["spanId"]: s for r in otlp_trace(TRACE)["resourceSpans"] for s in r["scopeSpans"][0]["spans"]}
    root = spans["0000000000000001"]
    assert "parentSpanId" not in root and root["status"] == {}
    assert root["startTimeUnixNano"] == str(EPOCH_UNIX_NANO + 1_000_000_000)
    publish = spans["0000000000000004"]
    assert publish["parentSpanId"] == "0000000000000002"
    assert publish["status"] == {"code": 2, "message": "injected_error"}
    assert {"key": "peer.service", "value": {"stringValue": "iot-core"}} in publish["attributes"]


# -- Prometheus -----------------------------------------------------------------------------------

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def _families(text: str) -> dict[str, Any]:
    return {family.name: family for family in text_string_to_metric_families(text)}


def _body(component: str = "api-gateway") -> dict[str, Any]:
    return {
        "counters": {"readings.poison_injected": 3},
        "components": {
            component: {
                "served": 10,
                "utilisation": 0.25,
                "queued_at_end": 2,
                "queue_wait_s": {"count": 4, "mean": 0.5, "max": 1.5, "p50": 0.4, "p95": 1.2, "p99": 1.4},
                "answers_from": {"db-replica-1": 6, "db-replica-2": 4},
                "note": "text is left out",
                "missing": None,
            }
        },
        "ledger": {
            "commands": {
                "entered": 9,
                "states": {
                    "applied": {"total": 5, "by_reason": {}},
                    "failed": {"total": 3, "by_reason": {"orphaned_pending": 2, "app_503": 1}},
                    "in_flight": {"total": 1, "by_reason": {}},
                },
            }
        },
        "spans": [
            {
                "origin": "mobile",
                "target": "api-gateway",
                "operation": "HttpRequest",
                "outcome": "ok",
                "count": 9,
                "p50": 0.04,
                "p99": 0.2,
            },
        ],
        "invariants": [{"name": "commands: each settled exactly once", "held": True, "detail": ""}],
        "engine": {"events": 1000, "simulated_s": 60.0},
        "flows": {"commands": {"success_rate": 0.9, "in_flight": 1, "latency_s": {"count": 0, "mean": None}}},
        "timeseries": {"commands.intents": [1, 2, 3]},
    }


def test_prometheus_types_names_and_values():
    text = prometheus_text({"scenario": "s", "seed": 7, "variants": {"as-designed": _body()}})
    families = _families(text)
    assert families["hems_twin_readings_poison_injected"].type == "counter"
    served = families["hems_twin_component_served"]
    assert served.type == "counter" and served.samples[0].name == "hems_twin_component_served_total"
    assert served.samples[0].labels == {
        "component": "api-gateway",
        "scenario": "s",
        "seed": "7",
        "variant": "as-designed",
    }
    assert families["hems_twin_component_utilisation"].type == "gauge"
    wait = families["hems_twin_component_queue_wait_s"]
    assert wait.type == "summary"
    values = {(s.name, s.labels.get("quantile")): s.value for s in wait.samples}
    assert values[("hems_twin_component_queue_wait_s", "0.95")] == 1.2
    assert values[("hems_twin_component_queue_wait_s_sum", None)] == 2.0
    assert values[("hems_twin_component_queue_wait_s_count", None)] == 4
    answers = {s.labels["key"]: s.value for s in families["hems_twin_component_answers_from"].samples}
    assert answers == {"db-replica-1": 6, "db-replica-2": 4}
    settled = {(s.labels["state"], s.labels["reason"]): s.value for s in families["hems_twin_ledger_settled"].samples}
    assert settled == {("applied", ""): 5, ("failed", "orphaned_pending"): 2, ("failed", "app_503"): 1}
    assert families["hems_twin_ledger_in_flight"].samples[0].value == 1
    assert families["hems_twin_invariant_held"].samples[0].value == 1
    assert families["hems_twin_flows_commands_success_rate"].samples[0].value == 0.9
    assert "hems_twin_component_note" not in families and "hems_twin_component_missing" not in families
    assert not any("timeseries" in name for name in families)
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert NAME.fullmatch(name) and (kind != "counter" or name.endswith("_total"))  # 0.0.4 names it whole
    help_lines = [line for line in text.splitlines() if line.startswith("# HELP ")]
    assert len(help_lines) == len(families) and help_lines == sorted(help_lines)


def test_prometheus_escapes_label_values():
    hostile = 'evil"name\\with\nnewline'
    text = prometheus_text(_body(hostile))
    assert 'component="evil\\"name\\\\with\\nnewline"' in text
    components = {s.labels["component"] for s in _families(text)["hems_twin_component_served"].samples}
    assert components == {hostile}


def test_prometheus_is_deterministic_and_parses_a_real_result(real_result: dict[str, Any]):
    text = prometheus_text(real_result)
    assert text == prometheus_text(json.loads(json.dumps(real_result)))
    families = _families(text)
    assert len(families) > 50
    for family in families.values():
        assert NAME.fullmatch(family.name)
    variants = {s.labels["variant"] for s in families["hems_twin_engine_events"].samples}
    assert variants == {"as-designed", "outbox"}


# -- the command ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = yaml.safe_load(Path("scenarios/c1-outbox.yaml").read_text(encoding="utf-8"))
    data.update(
        duration="6m", faults=[{"kind": "error_rate", "target": "iot-core", "at": "2m", "for": "2m", "rate": 0.5}]
    )
    data["workload"].update(quiet_before_end="1m", dashboard_users=5)
    data["fleet"]["meters"] = 20
    data["expect"] = {}
    path = tmp_path_factory.mktemp("scenario") / "small.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def real_result(small_file: Path) -> dict[str, Any]:
    from sim.api import run

    body: dict[str, Any] = run(str(small_file), seed=7).body
    return body


def _export(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="hems-twin")
    add_export_parser(parser.add_subparsers(dest="command"))
    return export_command(load_twin(), parser.parse_args(["export", *argv]))


def test_export_chrome_of_an_item(small_file: Path, tmp_path: Path):
    out = tmp_path / "trace.json"
    assert _export(str(small_file), "--format", "chrome", "--variant", "as-designed", "--seed", "7",
                   "--item", "commands:failed:orphaned_pending", "--out", str(out)) == 0  # fmt: skip
    document = json.loads(out.read_text(encoding="utf-8"))
    assert "orphaned_pending" in document["otherData"]["subject"]
    assert any(e["ph"] == "X" and e["name"].startswith("Publish") for e in document["traceEvents"])


def test_export_otlp_of_a_window_and_prometheus_of_a_result(small_file: Path, tmp_path: Path, real_result: Any):
    out = tmp_path / "otlp.json"
    assert _export(str(small_file), "--format", "otlp", "--window", "2m:2m1s", "--out", str(out)) == 0
    assert json.loads(out.read_text(encoding="utf-8"))["resourceSpans"]
    result = tmp_path / "result.json"
    result.write_text(json.dumps(real_result), encoding="utf-8")
    metrics = tmp_path / "metrics.prom"
    assert _export(str(result), "--format", "prometheus", "--out", str(metrics)) == 0
    assert metrics.read_text(encoding="utf-8") == prometheus_text(real_result)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--format", "svg"], "--format 'svg': expected one of chrome, otlp, prometheus"),
        (["--format", "chrome"], "needs one of --window START:END or --item"),
        (["--format", "chrome", "--window", "5", "--item", "commands:failed"], "needs one of"),
        (["--format", "chrome", "--window", "10:5"], "START must come before END"),
        (["--format", "chrome", "--window", "abc"], "expected START:END"),
        (["--format", "otlp", "--item", "commands"], "expected KIND:STATE or KIND:STATE:REASON"),
        (["--format", "otlp", "--item", "commands:lost"], "unknown state 'lost'"),
        (["--format", "chrome", "--window", "1:2", "--seed", "x"], "--seed 'x': expected a whole number"),
        (["--format", "chrome", "--window", "1:2", "--max-spans", "0"], "--max-spans must be at least 1"),
        (["--format", "prometheus", "--window", "1:2"], "--format prometheus exports a run's final figures"),
    ],
)
def test_bad_arguments_are_one_line_errors(small_file: Path, tmp_path: Path, argv: list[str], message: str):
    with pytest.raises(SimError, match=re.escape(message)) as caught:
        _export(str(small_file), *argv, "--out", str(tmp_path / "x.json"))
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "x.json").exists()
