"""The automation scheduler: the backend job that sends scheduled commands in bursts (S1).

One process for the whole schedule: at each run it spaces ``devices`` commands evenly over
``spread`` and sends each as its own request (:func:`models.logic.automation.scheduled_command`).
Scheduled commands are not user intents: the ledger does not track them, and
``flows.commands`` stays about what users tapped; :meth:`ScheduledAutomation.stats` counts
how they were answered.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from models.config import AutomationConfig
from models.logic.automation import AutomationSettings, scheduled_command
from models.names import AUTOMATION
from models.settings import settings_from

if TYPE_CHECKING:
    from sim.kernel import Kernel

__all__ = ["ScheduledAutomation"]


class ScheduledAutomation:
    """See the module docstring."""

    def __init__(self, kernel: Kernel, config: AutomationConfig, devices: int, *, zone: str, region: str) -> None:
        self.kernel = kernel
        self.config = config
        self.devices = devices
        self.settings = settings_from(AutomationSettings, config)
        kernel.network.add_node(AUTOMATION, zone=zone, region=region)
        self.sent = 0
        self.answers: dict[str, int] = {}
        self.process = kernel.env.process(self._schedule()) if devices else None

    def _schedule(self) -> Any:
        env = self.kernel.env
        config = self.config
        gap = config.spread / config.devices
        first = config.first_at
        if first < env.now:  # a clock started late (a long horizon): the schedule's next run from now
            first += math.ceil((env.now - first) / config.every) * config.every
        yield env.timeout(first - env.now)
        while True:
            started = env.now
            for index in range(config.devices):
                due = started + index * gap
                if due > env.now:
                    yield env.timeout(due - env.now)
                self.sent += 1
                device = index % self.devices
                logic = scheduled_command(self.settings, f"user-{device}", device, f"automation-{self.sent}")
                self.kernel.driver.spawn(logic, AUTOMATION, on_done=self._answered)
            yield env.timeout(max(0.0, started + config.every - env.now))

    def _answered(self, outcome: Any) -> None:
        key = str(outcome)
        self.answers[key] = self.answers.get(key, 0) + 1

    def stats(self) -> dict[str, Any]:
        """Per-component figures for the result file."""
        accepted = sum(n for status, n in self.answers.items() if status.isdigit() and 200 <= int(status) < 300)
        return {
            "commands_sent": self.sent,
            "accepted": accepted,
            "answers": dict(sorted(self.answers.items())),
        }
