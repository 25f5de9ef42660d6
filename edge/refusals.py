"""What the agent refuses or fails on, counted and told once: input refused with its reason
(`gridwatch_edge_rejected_total{reason}`), messages the agent itself failed on (`internal_error`, kept in
the outbox's dead messages and acknowledged with their batch, so the broker does not hand them back for
ever), each logged at most once per reason every 10 s so a broken gateway or a full disk cannot flood the
log."""

from __future__ import annotations

import logging
import sqlite3
import time

from edge.errors import Rejected
from edge.message import Message
from edge.metrics import AgentMetrics
from edge.outbox import Outbox

logger = logging.getLogger(__name__)


class LogGate:
    """At most one line per key every `every` seconds (monotonic time)."""

    def __init__(self, every: float = 10.0) -> None:
        self.every = every
        self._last: dict[str, float] = {}

    def open(self, key: str) -> bool:
        now = time.monotonic()
        if now - self._last.get(key, -1e9) < self.every:
            return False
        self._last[key] = now
        return True


class Refusals:
    def __init__(self, metrics: AgentMetrics, outbox: Outbox) -> None:
        self.metrics = metrics
        self.outbox = outbox
        self.gate = LogGate()

    def refuse(self, topic: str, rej: Rejected) -> None:
        """Input refused: counted by reason, logged once per reason every 10 s."""
        self.metrics.rejected.labels(rej.reason).inc()
        if self.gate.open(rej.reason):
            logger.warning("rejected %s: %s (%s)", topic, rej.detail, rej.reason)

    def failed_on(self, msg: Message, reason: str) -> None:
        """A message the agent failed on (a fault of ours, not bad input): counted, logged with its stack
        (once per 10 s) and kept in the outbox's dead messages."""
        if self.gate.open("internal_error"):
            logger.exception("processing %s failed; message kept as a dead message", msg.topic)
        self.metrics.rejected.labels("internal_error").inc()
        try:
            self.outbox.dead_message(msg.topic, msg.payload, reason)
        except sqlite3.Error as exc:
            logger.error("could not keep the dead message: %s", exc)
