"""A :class:`~sim.tracing.Trace` as Chrome trace-event JSON (the JSON object format), for Perfetto.

Layout: one process (``pid``) per component, named by ``process_name`` metadata and
ordered by first appearance (callers above callees); a span is drawn on its *origin*'s
process -- it is the time the caller waited for the target -- as a complete event
(``ph: "X"``) named ``Operation -> target``.  Spans of one component that overlap in time
go on separate rows (``tid``), packed greedily in start order, because events on one row
must nest.  Times are simulated microseconds from the run's start (``ts``, ``dur``).
``args`` carry the OTLP-width hex trace, span and parent span ids, the target and the
outcome; a flow arrow (``ph: "s"``/``"f"``, ``bp: "e"``) joins each span to the spans its
handler made.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from sim.spans import Span, span_hex, trace_hex

if TYPE_CHECKING:
    from sim.tracing import Trace

__all__ = ["chrome_json", "chrome_trace"]

_US = 1e6  # simulated seconds to trace-event microseconds


def _micros(seconds: float) -> float:
    return round(seconds * _US, 3)  # nanosecond resolution; no float noise in the file


def chrome_trace(trace: Trace) -> dict[str, Any]:
    """The trace-event document: ``{"traceEvents": [...], "displayTimeUnit": "ms", "otherData": {...}}``."""
    pids = {component: index + 1 for index, component in enumerate(trace.components)}
    events: list[dict[str, Any]] = []
    for component, pid in pids.items():
        events.append({"name": "process_name", "ph": "M", "pid": pid, "tid": 0, "args": {"name": component}})
        events.append({"name": "process_sort_index", "ph": "M", "pid": pid, "tid": 0, "args": {"sort_index": pid}})
    rows = _rows(trace.spans)
    for component, row in sorted({(span.origin, rows[span.span_id, span.origin]) for span in trace.spans}):
        events.append(
            {"name": "thread_name", "ph": "M", "pid": pids[component], "tid": row, "args": {"name": f"calls {row}"}}
        )
    placed = {span.span_id: span for span in trace.spans if span.span_id}
    for span in trace.spans:
        pid, tid = pids[span.origin], rows[span.span_id, span.origin]
        events.append(
            {
                "name": f"{span.operation} -> {span.target}",
                "cat": "ok" if span.outcome == "ok" else "error",
                "ph": "X",
                "ts": _micros(span.start),
                "dur": _micros(span.end - span.start),
                "pid": pid,
                "tid": tid,
                "args": {
                    "trace_id": trace_hex(span.trace_id),
                    "span_id": span_hex(span.span_id),
                    "parent_span_id": span_hex(span.parent_id),
                    "target": span.target,
                    "outcome": span.outcome,
                },
            }
        )
        parent = placed.get(span.parent_id) if span.parent_id else None
        if parent is not None:  # an arrow from the caller's span to this one
            # The arrow leaves the caller's slice while it is still open: a caller that timed out
            # before the handler began would otherwise start it past its own end, where the
            # viewer binds it to whatever slice comes next on that row.
            ppid, ptid = pids[parent.origin], rows[parent.span_id, parent.origin]
            arrow = {"name": "request", "cat": "flow", "id": span.span_id}
            leaves = _micros(min(span.start, parent.end))
            events.append({**arrow, "ph": "s", "ts": leaves, "pid": ppid, "tid": ptid})
            events.append({**arrow, "ph": "f", "bp": "e", "ts": _micros(span.start), "pid": pid, "tid": tid})
    other: dict[str, Any] = {"scenario": trace.scenario, "seed": trace.seed, "subject": trace.describe()}
    if trace.variant is not None:
        other["variant"] = trace.variant
    return {"traceEvents": events, "displayTimeUnit": "ms", "otherData": other}


def chrome_json(trace: Trace) -> str:
    """:func:`chrome_trace` as JSON text (one event per line: diffable, still one JSON object)."""
    document = chrome_trace(trace)
    lines = ",\n".join(json.dumps(event, sort_keys=True) for event in document["traceEvents"])
    rest = json.dumps({k: v for k, v in document.items() if k != "traceEvents"}, sort_keys=True)[1:-1]
    return '{"traceEvents": [\n' + lines + "\n], " + rest + "}\n"


def _rows(spans: tuple[Span, ...]) -> dict[tuple[int, str], int]:
    """The row of each span on its origin's process: the first row free when it starts (rows from 1)."""
    free_at: dict[str, list[float]] = {}  # per component, when each row's last span ends
    rows: dict[tuple[int, str], int] = {}
    for span in spans:  # ordered by start
        ends = free_at.setdefault(span.origin, [])
        for index, end in enumerate(ends):
            if end <= span.start:
                ends[index] = span.end
                rows[span.span_id, span.origin] = index + 1
                break
        else:
            ends.append(span.end)
            rows[span.span_id, span.origin] = len(ends)
    return rows
