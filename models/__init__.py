"""The smart-home energy management system of the design review, as a twin.

``models.twin.TWIN`` is what the engine runs; ``models.config.Scenario`` is the scenario
format; ``models.logic`` holds the system's own (sans-IO) logic and ``models.policies``
the resilience policies it can adopt.  Names are imported on first use, so that importing
the logic or the policies alone loads neither simpy, networkx nor pydantic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sim.lazy import lazy_exports

if TYPE_CHECKING:
    from models.config import Scenario
    from models.twin import TWIN, SmartHomeTwin, World, build

_HOME = {
    "TWIN": "models.twin",
    "Scenario": "models.config",
    "SmartHomeTwin": "models.twin",
    "World": "models.twin",
    "build": "models.twin",
}

__all__ = ["TWIN", "Scenario", "SmartHomeTwin", "World", "build"]


__getattr__, __dir__ = lazy_exports("models", globals(), _HOME)
