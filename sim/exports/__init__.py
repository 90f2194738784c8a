"""Exports of a run in formats other tools read: traces (Chrome trace events, OTLP JSON) and metrics (Prometheus).

* :mod:`sim.exports.chrome` -- a :class:`~sim.tracing.Trace` as Chrome trace-event JSON,
  which Perfetto and ``chrome://tracing`` load;
* :mod:`sim.exports.otlp` -- the same spans as OTLP/HTTP JSON (an ``ExportTraceServiceRequest``);
* :mod:`sim.exports.prometheus` -- a result body's final figures in the Prometheus text
  exposition format 0.0.4;
* :mod:`sim.exports.command` -- the ``hems-twin export`` command.

Every export is deterministic: the same trace or result gives the same bytes.
"""

from __future__ import annotations

from sim.exports.chrome import chrome_trace
from sim.exports.otlp import EPOCH_UNIX_NANO, otlp_trace
from sim.exports.prometheus import prometheus_text

__all__ = ["EPOCH_UNIX_NANO", "chrome_trace", "otlp_trace", "prometheus_text"]
