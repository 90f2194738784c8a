"""How far a run has got: tracked always, shown as a progress bar only on a terminal.

:class:`RunProgress` is the ``progress`` callback ``Twin.run`` calls now and then with the
simulated seconds reached and the events so far (see :data:`sim.kernel.Progress`). It
always remembers the last report, so an interrupted run can say where it stopped. When its
stream is a terminal it also draws a tqdm bar -- simulated time reached out of the run's
duration, events per wall-clock second, the time left -- but only once the run has taken
``delay_s`` (2 s) of wall time, so short runs print nothing extra; piped, it draws nothing.

Watching changes nothing: the kernel runs in slices either way the callback is given, and
results are byte-identical with and without it.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TextIO

from tqdm import tqdm

__all__ = ["SHOW_AFTER_S", "RunProgress"]

SHOW_AFTER_S = 2.0
"""Wall seconds before the bar appears: a run shorter than this shows none."""

_BAR_FORMAT = "{desc}{percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} simulated s [{elapsed}<{remaining}{postfix}]"


class _Bar(tqdm):  # type: ignore[type-arg]  # tqdm is generic over what it iterates; a bar iterates nothing
    monitor_interval = 0  # no monitor thread: the bar is only updated from the run's own callback


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class RunProgress:
    """The ``progress`` callback of one run; see the module docstring.

    Args:
        duration_s: the simulated seconds the run will reach.
        stream: where the bar goes (default: ``sys.stderr`` at the time of the call).
        show: draw the bar (default: whether ``stream`` is a terminal).
        delay_s: wall seconds before the bar first appears.
        refresh_s: wall seconds between redraws at most.
    """

    def __init__(
        self,
        duration_s: float,
        *,
        stream: TextIO | None = None,
        show: bool | None = None,
        delay_s: float = SHOW_AFTER_S,
        refresh_s: float = 0.5,
    ) -> None:
        self.duration_s = float(duration_s)
        self.simulated_s = 0.0
        """the simulated time last reported"""
        self.events = 0
        """the events last reported"""
        self._started = time.monotonic()
        stream = sys.stderr if stream is None else stream
        self._bar: _Bar | None = None
        if _is_terminal(stream) if show is None else show:
            self._bar = _Bar(
                total=self.duration_s,
                desc="hems-twin run ",
                bar_format=_BAR_FORMAT,
                file=stream,
                delay=delay_s,
                leave=False,
                dynamic_ncols=True,
                mininterval=refresh_s,
            )

    @property
    def showing(self) -> bool:
        """Whether a bar is (or would be, after the delay) drawn."""
        return self._bar is not None

    def __call__(self, now: float, events: int) -> None:
        self.simulated_s, self.events = float(now), int(events)
        if self._bar is None:
            return
        wall = time.monotonic() - self._started
        if wall > 0:
            self._bar.set_postfix_str(f"{events / wall:,.0f} events/s", refresh=False)
        self._bar.update(min(self.simulated_s, self.duration_s) - self._bar.n)

    def close(self) -> None:
        """Remove the bar (if one was drawn) so what is printed next starts on a clean line."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> RunProgress:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
