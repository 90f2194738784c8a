"""hems-twin's simulation engine: knows nothing about smart homes.

The public surface, for models and notebooks; see each module for the details.
"""

from sim.actor import Actor
from sim.distributions import Distribution, Sampler
from sim.driver import Driver, run_direct
from sim.errors import ModelDefinitionError, Problem, ScenarioError, SimError
from sim.faults import Fault, FaultTimeline
from sim.kernel import Kernel
from sim.ledger import FinalState, Invariant, Ledger
from sim.loader import load_scenario_file, load_scenario_text
from sim.metrics import Histogram, Metrics, TimeSeries
from sim.ops import Logic, Now, Operation, OperationTimeout, OpError, Rejected, Sleep, Unavailable
from sim.twin import Twin, load_twin

__all__ = [
    "Actor",
    "Distribution",
    "Driver",
    "Fault",
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
    "Rejected",
    "Sampler",
    "ScenarioError",
    "SimError",
    "Sleep",
    "TimeSeries",
    "Twin",
    "Unavailable",
    "load_scenario_file",
    "load_scenario_text",
    "load_twin",
    "run_direct",
]
