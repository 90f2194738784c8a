"""A :class:`~sim.tracing.Trace` as OTLP/HTTP JSON: the JSON encoding of an ``ExportTraceServiceRequest``.

What a collector's ``/v1/traces`` endpoint accepts (``Content-Type: application/json``):
``resourceSpans``, one per component that made calls, its resource named by the
``service.name`` attribute; one ``scopeSpans`` (scope ``hems-twin``); the spans, each a
``SPAN_KIND_CLIENT`` span (the caller's view of one operation) with

* ``traceId`` (32 hex digits), ``spanId`` (16), ``parentSpanId`` (absent for a root) --
  the OTLP JSON encoding writes ids as hex, not base64;
* ``name`` (the operation), ``startTimeUnixNano``/``endTimeUnixNano`` as decimal strings
  (64-bit integers are strings in this encoding): simulated time plus :data:`EPOCH_UNIX_NANO`;
* ``status``: ``STATUS_CODE_ERROR`` (2) with the outcome as message for a failed call,
  unset for a successful one (the instrumentation convention);
* ``attributes``: ``peer.service`` (the target) and ``hems.outcome``.

Enum fields (``kind``, ``status.code``) are integers, as the OTLP JSON encoding requires.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from sim.spans import Span, span_hex, trace_hex

if TYPE_CHECKING:
    from sim.tracing import Trace

__all__ = ["EPOCH_UNIX_NANO", "SCOPE", "otlp_json", "otlp_trace"]

EPOCH_UNIX_NANO = 1_704_067_200 * 10**9
"""Simulated time 0 as Unix time: 2024-01-01T00:00:00Z, in nanoseconds (a fixed date, so exports are reproducible)."""

SCOPE = "hems-twin"
"""The instrumentation scope's name: the twin's driver, which recorded the spans."""

SPAN_KIND_CLIENT = 3
STATUS_CODE_ERROR = 2


def unix_nano(seconds: float) -> str:
    """Simulated ``seconds`` as OTLP's decimal-string Unix nanoseconds."""
    return str(EPOCH_UNIX_NANO + round(seconds * 1e9))


def _string(key: str, value: str) -> dict[str, Any]:
    return {"key": key, "value": {"stringValue": value}}


def _span(span: Span) -> dict[str, Any]:
    out: dict[str, Any] = {"traceId": trace_hex(span.trace_id), "spanId": span_hex(span.span_id)}
    if span.parent_id:
        out["parentSpanId"] = span_hex(span.parent_id)
    out["name"] = span.operation
    out["kind"] = SPAN_KIND_CLIENT
    out["startTimeUnixNano"] = unix_nano(span.start)
    out["endTimeUnixNano"] = unix_nano(span.end)
    out["attributes"] = [_string("peer.service", span.target), _string("hems.outcome", span.outcome)]
    out["status"] = {} if span.outcome == "ok" else {"code": STATUS_CODE_ERROR, "message": span.outcome}
    return out


def otlp_trace(trace: Trace, version: str = "") -> dict[str, Any]:
    """The ``ExportTraceServiceRequest`` as plain data; ``version`` goes into the scope (optional)."""
    by_component: dict[str, list[dict[str, Any]]] = {}
    for span in trace.spans:
        by_component.setdefault(span.origin, []).append(_span(span))
    scope: dict[str, Any] = {"name": SCOPE, **({"version": version} if version else {})}
    resource_spans = []
    for component, spans in by_component.items():  # components in order of their first span
        attributes = [_string("service.name", component), _string("hems.scenario", trace.scenario)]
        if trace.variant is not None:
            attributes.append(_string("hems.variant", trace.variant))
        attributes.append({"key": "hems.seed", "value": {"intValue": str(trace.seed)}})
        resource_spans.append(
            {"resource": {"attributes": attributes}, "scopeSpans": [{"scope": scope, "spans": spans}]}
        )
    return {"resourceSpans": resource_spans}


def otlp_json(trace: Trace, version: str = "") -> str:
    """:func:`otlp_trace` as JSON text, indented, keys in the spec's order."""
    return json.dumps(otlp_trace(trace, version), indent=1) + "\n"
