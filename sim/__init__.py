"""hems-twin's simulation engine: knows nothing about smart homes.

The public surface, for models and notebooks; see each module for the details.  Names are
imported on first use, so that system logic importing only :mod:`sim.ops` (the sans-IO
boundary) loads neither simpy, networkx nor pydantic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sim.lazy import lazy_exports

if TYPE_CHECKING:
    from sim.actor import Actor, QueueStats
    from sim.distributions import Distribution, Sampler
    from sim.driver import Driver, run_direct
    from sim.errors import ModelDefinitionError, Problem, ScenarioError, SimError
    from sim.faults import Fault, FaultContext, FaultTimeline, fault_union
    from sim.kernel import Kernel
    from sim.ledger import FinalState, Invariant, Ledger
    from sim.loader import load_scenario_file, load_scenario_text
    from sim.metrics import Histogram, Metrics, TimeSeries
    from sim.ops import Logic, Now, Operation, OperationTimeout, OpError, Rejected, Sleep, Unavailable
    from sim.twin import Twin, load_twin

_HOME = {
    "Actor": "sim.actor",
    "Distribution": "sim.distributions",
    "Driver": "sim.driver",
    "Fault": "sim.faults",
    "FaultContext": "sim.faults",
    "FaultTimeline": "sim.faults",
    "FinalState": "sim.ledger",
    "Histogram": "sim.metrics",
    "Invariant": "sim.ledger",
    "Kernel": "sim.kernel",
    "Ledger": "sim.ledger",
    "Logic": "sim.ops",
    "Metrics": "sim.metrics",
    "ModelDefinitionError": "sim.errors",
    "QueueStats": "sim.actor",
    "Now": "sim.ops",
    "OpError": "sim.ops",
    "Operation": "sim.ops",
    "OperationTimeout": "sim.ops",
    "Problem": "sim.errors",
    "Rejected": "sim.ops",
    "Sampler": "sim.distributions",
    "ScenarioError": "sim.errors",
    "SimError": "sim.errors",
    "Sleep": "sim.ops",
    "TimeSeries": "sim.metrics",
    "Twin": "sim.twin",
    "Unavailable": "sim.ops",
    "fault_union": "sim.faults",
    "load_scenario_file": "sim.loader",
    "load_scenario_text": "sim.loader",
    "load_twin": "sim.twin",
    "run_direct": "sim.driver",
}

__all__ = [
    "Actor",
    "Distribution",
    "Driver",
    "Fault",
    "FaultContext",
    "FaultTimeline",
    "FinalState",
    "Histogram",
    "Invariant",
    "Kernel",
    "Ledger",
    "Logic",
    "Metrics",
    "ModelDefinitionError",
    "Now",
    "OpError",
    "Operation",
    "OperationTimeout",
    "Problem",
    "QueueStats",
    "Rejected",
    "Sampler",
    "ScenarioError",
    "SimError",
    "Sleep",
    "TimeSeries",
    "Twin",
    "Unavailable",
    "fault_union",
    "load_scenario_file",
    "load_scenario_text",
    "load_twin",
    "run_direct",
]


__getattr__, __dir__ = lazy_exports("sim", globals(), _HOME)
