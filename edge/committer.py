"""The commit side of the agent's pipeline: a round's alerts and rule state go to the outbox in one
transaction, and only then are the round's messages acknowledged to the broker, never the other way round.
A failing commit (disk full, locked, read-only) is counted by reason, logged once per 10 s and retried
every second while the messages stay unacknowledged; stopping gives up (soon, when draining) and leaves
them to the broker to hand back."""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from edge.message import Message
from edge.metrics import AgentMetrics
from edge.outbox import Outbox, outbox_error
from edge.refusals import LogGate
from gridwatch.core.alert import Alert

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class Job:
    """What one worker round hands to the committer."""

    alerts: list[Alert]
    states: dict[str, str]  # key -> JSON, snapshotted by the worker
    deleted: set[str]
    batch: list[Message]


class Committer:
    def __init__(self, outbox: Outbox, metrics: AgentMetrics, gate: LogGate, stop: threading.Event,
                 on_committed: Callable[[Job], None]) -> None:
        self.outbox = outbox
        self.metrics = metrics
        self.gate = gate
        self.stop = stop
        self.on_committed = on_committed
        self.draining = False
        self.jobs: queue.Queue[Job | None] = queue.Queue(maxsize=2)  # worker -> committer
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        """The committer thread: the worker evaluates the next batch while this one is written and synced."""
        self.thread = threading.Thread(target=self._loop, name="gridwatch-committer", daemon=True)
        self.thread.start()

    def close(self, final: Job) -> None:
        """Commit the last job (the worker has stopped) and end the thread."""
        self.draining = True
        if self.thread is not None:
            self.jobs.put(final)
            self.jobs.put(None)
            self.thread.join(timeout=60)
        else:
            self.finish(final)

    def _loop(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            self.finish(job)

    def finish(self, job: Job) -> bool:
        """Commit a round's alerts and state, then acknowledge its messages."""
        if not self._commit(job):
            return False
        for msg in job.batch:
            if msg.ack is not None:
                msg.ack()
        if job.batch:  # the oldest message of the batch waited longest
            self.metrics.batch_latency.observe(time.time() - job.batch[0].received_at)
        self.on_committed(job)
        return True

    def _commit(self, job: Job) -> bool:
        attempt = 0
        while True:
            try:
                self.outbox.commit(job.alerts, job.states, job.deleted)
                return True
            except sqlite3.Error as exc:  # disk full, locked: keep the batch unacknowledged and retry
                reason = outbox_error(exc)
                self.metrics.outbox_errors.labels(reason).inc()
                if self.gate.open("outbox:" + reason):
                    logger.error("outbox commit failed: %s (%s); retrying every second, messages stay "
                                 "unacknowledged at the broker", exc, reason)
            attempt += 1
            # stopping: unacknowledged messages come back from the broker, so give up (soon, when draining)
            if self.stop.is_set() and (not self.draining or attempt >= 5):
                return False
            time.sleep(1.0)
