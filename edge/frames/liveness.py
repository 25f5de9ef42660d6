"""A camera's liveness from the times of its frames (pure): `online` when frames come, `offline` when none
came for `offline_after`, each said once per change."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

State = Literal["online", "offline"]


@dataclass(slots=True)
class Liveness:
    offline_after: float
    since: float  # when the gateway started watching: a stream that never delivers is offline after the limit
    last_frame: float | None = None
    state: State | None = None  # what was last published; None = nothing yet

    def frame(self, now: float) -> State | None:
        """A frame arrived: `online` when that is news."""
        self.last_frame = now
        if self.state != "online":
            self.state = "online"
            return "online"
        return None

    def check(self, now: float) -> State | None:
        """`offline` when the silence has just passed the limit."""
        quiet_since = self.since if self.last_frame is None else self.last_frame
        if self.state != "offline" and now - quiet_since > self.offline_after:
            self.state = "offline"
            return "offline"
        return None
