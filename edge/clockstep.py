"""Steps of the wall clock (NTP stepping it, an operator setting it), told apart from its running: the
monotonic clock does not step, so the difference of the two jumps. The agent then moves its timers by the
step (`Engine.shift`) so they count the time that really passed, instead of finding every device silent at
once (forward) or waiting an hour longer (back). Slewing changes the difference slowly and is left alone."""

from __future__ import annotations

from collections.abc import Callable

CLOCK_STEP = 2.0
"""Seconds: a larger jump of wall minus monotonic time between two looks is a clock step."""


class StepWatch:
    def __init__(self, clock: Callable[[], float], monotonic: Callable[[], float]) -> None:
        self.clock = clock
        self.monotonic = monotonic
        self._offset: float | None = None  # wall clock minus monotonic clock at the last look

    def step(self) -> float:
        """The wall clock's step since the last look (0.0 when it only ran, or at the first look)."""
        offset = self.clock() - self.monotonic()
        if self._offset is None:
            self._offset = offset
            return 0.0
        step, self._offset = offset - self._offset, offset
        return step if abs(step) >= CLOCK_STEP else 0.0
