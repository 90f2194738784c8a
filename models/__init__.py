"""The smart-home energy management system of the design review, as a twin.

``models.twin.TWIN`` is what the engine runs; ``models.config.Scenario`` is the scenario
format; ``models.logic`` holds the system's own (sans-IO) logic and ``models.policies``
the resilience policies it can adopt.
"""

from models.config import Scenario
from models.twin import TWIN, SmartHomeTwin, World, build

__all__ = ["TWIN", "Scenario", "SmartHomeTwin", "World", "build"]
