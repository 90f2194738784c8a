"""A run's final figures in the Prometheus text exposition format (version 0.0.4).

So dashboards and alert rules written for the real system can be pointed at twin output
(a textfile collector, a Pushgateway, ``promtool``).  The input is a result: a whole
``result.json`` (its header's ``scenario`` and ``seed`` become labels, and each variant's
body gets a ``variant`` label) or one result body as a twin's ``run`` returns it.

What becomes what (names prefixed ``hems_twin_``, sanitised to ``[a-zA-Z_:][a-zA-Z0-9_:]*``):

* ``counters`` -> counter ``hems_twin_<name>_total``;
* ``ledger`` -> counters ``hems_twin_ledger_entered_total{kind}`` and
  ``hems_twin_ledger_settled_total{kind,state,reason}``, gauge ``hems_twin_ledger_in_flight{kind}``;
* ``spans`` -> counter ``hems_twin_span_calls_total`` and summary
  ``hems_twin_span_latency_seconds`` (quantiles 0.5 and 0.99) per origin, target, operation, outcome;
* ``invariants`` -> gauge ``hems_twin_invariant_held{invariant}`` (1 held, 0 broken);
* ``engine.events`` -> counter ``hems_twin_engine_events_total``;
* ``components`` -> per component (label ``component``): the actor counters every actor
  reports (:data:`ACTOR_COUNTERS`) as ``hems_twin_component_<field>_total``, every other
  number as gauge ``hems_twin_component_<field>`` (utilisation, queued_at_end, ...);
* every other section (``flows``, ``health``, ``slos``, ``durability``, ...) -> gauges
  named by their path, ``hems_twin_<section>_<field>_...``.

Everywhere, a distribution summary (a mapping with ``count`` and percentiles, see
docs/results.md) becomes a summary: ``{quantile="0.5"|"0.95"|"0.99"}``, ``_sum`` (mean
times count) and ``_count``, its ``max`` a gauge ``<name>_max``; a mapping whose keys are
data rather than names (``db-replica-1``, ``200``) becomes one gauge with a ``key`` label;
booleans are 0/1; None (not measured) and text are left out; lists other than the above
(time series, fault lists) are left out: this is the final state, not a history.  Label
values are escaped (backslash, double quote, newline); families and samples are sorted.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ACTOR_COUNTERS", "PREFIX", "prometheus_text"]

PREFIX = "hems_twin_"

ACTOR_COUNTERS = frozenset({"served", "refused", "crashes", "lost_in_crash", "arrivals", "waited", "immediate"})
"""Fields of every actor's figures (:meth:`sim.actor.Actor.stats`) that only ever grow during a run."""

_QUANTILES = (("p50", "0.5"), ("p95", "0.95"), ("p99", "0.99"))
_HANDLED = frozenset({"counters", "ledger", "spans", "invariants", "components", "timeseries", "warnings"})
_HEADER = frozenset(
    {"scenario", "seed", "twin", "version", "format_version", "scenario_hash", "expectations", "variants"}
)
_NAME_WORD = re.compile(r"[a-z_][a-z0-9_]*")

Labels = tuple[tuple[str, str], ...]


@dataclass
class _Family:
    name: str
    kind: str  # counter, gauge, summary
    help: str
    samples: dict[tuple[str, Labels], float] = field(default_factory=dict)  # (suffix, labels) -> value


class _Exposition:
    """Families by name; a name used twice with different types keeps the first family and drops
    the other's samples (the exposition format allows one type per name)."""

    def __init__(self) -> None:
        self.families: dict[str, _Family] = {}

    def family(self, name: str, kind: str, help_text: str) -> _Family | None:
        name = sanitise(PREFIX + name)
        found = self.families.get(name)
        if found is None:
            found = self.families[name] = _Family(name, kind, help_text)
        return found if found.kind == kind else None

    def add(self, name: str, kind: str, help_text: str, labels: Labels, value: Any, suffix: str = "") -> None:
        number = _number(value)
        if number is None:
            return
        family = self.family(name, kind, help_text)
        if family is not None:
            family.samples[suffix, tuple(sorted(labels))] = number

    def summary(self, name: str, help_text: str, labels: Labels, stats: Mapping[str, Any]) -> None:
        count = _number(stats.get("count"))
        if count is None:
            return
        family = self.family(name, "summary", help_text)
        if family is None:
            return
        base = tuple(sorted(labels))
        for key, quantile in _QUANTILES:
            value = _number(stats.get(key))
            if value is not None:
                family.samples["", tuple(sorted((*labels, ("quantile", quantile))))] = value
        mean = _number(stats.get("mean"))
        if mean is not None:
            family.samples["_sum", base] = mean * count
        family.samples["_count", base] = count
        if "max" in stats:
            self.add(f"{name}_max", "gauge", f"largest value of {help_text}", labels, stats["max"])

    def render(self) -> str:
        lines: list[str] = []
        for name in sorted(self.families):
            family = self.families[name]
            if not family.samples:
                continue
            lines.append(f"# HELP {name} {_escape_help(family.help)}")
            lines.append(f"# TYPE {name} {family.kind}")
            for (suffix, labels), value in sorted(family.samples.items(), key=_sample_order):
                text = ",".join(f'{key}="{_escape_label(val)}"' for key, val in labels)
                lines.append(
                    f"{name}{suffix}{{{text}}} {_format(value)}" if text else f"{name}{suffix} {_format(value)}"
                )
        return "\n".join(lines) + "\n" if lines else ""


def _sample_order(item: tuple[tuple[str, Labels], float]) -> tuple[Labels, str]:
    (suffix, labels), _ = item
    plain = tuple(pair for pair in labels if pair[0] != "quantile")
    quantile = tuple(float(v) for k, v in labels if k == "quantile")
    return (plain, f"{suffix}{quantile}")


def sanitise(name: str) -> str:
    """``name`` made a valid metric name: anything outside ``[a-zA-Z0-9_:]`` becomes ``_``, no leading digit."""
    cleaned = re.sub(r"[^a-zA-Z0-9_:]", "_", name)
    return cleaned if cleaned and not cleaned[0].isdigit() else f"_{cleaned}"


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    return None


def _format(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def _is_distribution(value: Any) -> bool:
    return isinstance(value, Mapping) and "count" in value and "p50" in value


def _keyed_by_data(value: Mapping[str, Any]) -> bool:
    """A mapping of numbers whose keys are data (replica names, HTTP statuses), not field names."""
    return (
        bool(value)
        and all(_number(v) is not None for v in value.values())
        and any(not _NAME_WORD.fullmatch(str(k)) for k in value)
    )


def _walk(out: _Exposition, name: str, where: str, labels: Labels, value: Any, counters: frozenset[str]) -> None:
    """Numbers under ``value`` as gauges named by their path (see the module docstring)."""
    if _is_distribution(value):
        out.summary(name, where, labels, value)
    elif isinstance(value, Mapping):
        if _keyed_by_data(value):
            for key, item in value.items():
                out.add(name, "gauge", f"{where} by key", (*labels, ("key", str(key))), item)
            return
        for key, item in value.items():
            _walk(out, f"{name}_{key}", f"{where}.{key}", labels, item, frozenset())
    elif _number(value) is not None:
        if where.rsplit(".", 1)[-1] in counters:
            out.add(f"{name}_total", "counter", where, labels, value)
        else:
            out.add(name, "gauge", where, labels, value)


def _body(out: _Exposition, body: Mapping[str, Any], labels: Labels) -> None:
    for name, value in (body.get("counters") or {}).items():
        out.add(f"{name}_total", "counter", f"counters.{name} in result.json", labels, value)
    for kind, table in (body.get("ledger") or {}).items():
        kind_labels = (*labels, ("kind", kind))
        out.add("ledger_entered_total", "counter", "ledger: items that entered", kind_labels, table.get("entered"))
        for state, entry in (table.get("states") or {}).items():
            if state == "in_flight":
                out.add(
                    "ledger_in_flight", "gauge", "ledger: items not settled at the end", kind_labels, entry["total"]
                )
                continue
            reasons = entry.get("by_reason") or {}
            unexplained = entry["total"] - sum(reasons.values())
            for reason, n in [*reasons.items(), *([("", unexplained)] if unexplained or not reasons else [])]:
                out.add(
                    "ledger_settled_total",
                    "counter",
                    "ledger: items settled, by final state and reason",
                    (*kind_labels, ("state", state), ("reason", reason)),
                    n,
                )
    for row in body.get("spans") or []:
        span_labels = (*labels, *((key, str(row[key])) for key in ("origin", "target", "operation", "outcome")))
        out.add("span_calls_total", "counter", "operations the driver carried out", span_labels, row.get("count"))
        out.summary("span_latency_seconds", "operation latency as the caller saw it", span_labels, row)
    for invariant in body.get("invariants") or []:
        out.add(
            "invariant_held",
            "gauge",
            "1 when the run's invariant held, 0 when it broke",
            (*labels, ("invariant", str(invariant.get("name")))),
            bool(invariant.get("held")),
        )
    for component, figures in sorted((body.get("components") or {}).items()):
        if isinstance(figures, Mapping):
            component_labels = (*labels, ("component", component))
            for key, value in figures.items():
                _walk(out, f"component_{key}", f"components.*.{key}", component_labels, value, ACTOR_COUNTERS)
    engine = body.get("engine") or {}
    out.add("engine_events_total", "counter", "simpy events the run scheduled", labels, engine.get("events"))
    out.add("engine_simulated_seconds", "gauge", "simulated seconds the run covered", labels, engine.get("simulated_s"))
    for section, value in body.items():
        if section in _HANDLED or section in _HEADER or section == "engine":
            continue
        _walk(out, section, section, labels, value, frozenset())


def prometheus_text(result: Mapping[str, Any]) -> str:
    """The exposition of ``result`` (a whole result file or one body); see the module docstring."""
    out = _Exposition()
    labels: Labels = ()
    if "scenario" in result:
        labels += (("scenario", str(result["scenario"])),)
    if "seed" in result:
        labels += (("seed", str(result["seed"])),)
    variants = result.get("variants")
    if isinstance(variants, Mapping) and variants:
        for variant, body in variants.items():
            _body(out, body, (*labels, ("variant", str(variant))))
    else:
        _body(out, result, labels)
    return out.render()
