"""Keeping CPython's cycle collector off the request path when the hub holds thousands of streams.

Each stream connection is about 200 tracked objects. CPython's full (generation 2) collection scans every
one of them: at 10,000 connections it took 0.9–1.1 s on the reference machine, during which no request is
answered (measured by `bench/fanout.py`: a 920 ms POST, p99 4× the baseline). So the hub moves long-lived
objects out of the collector's reach with `gc.freeze()`: once after start-up, whenever connections have
accumulated, and every `freeze_every` seconds while streams are open (each waiting stream holds a fresh
future after every event or keep-alive; left unfrozen they are promoted and scanned again). A frozen
object that later becomes cyclic garbage (about 50 objects per closed stream) is not reclaimed until the
next `unfreeze + collect + freeze`, which this policy runs when closed frozen streams reach a quarter of
those frozen (at least `min_closed`), and every `reclaim_every` seconds after any freeze (a request in
flight at a freeze leaves its cycles frozen too). That full pass costs what a default full collection
costs, but it comes after real churn instead of every few minutes of idle keep-alives.

`decide` is the pure rule; `GcPolicy` applies it to the interpreter.
"""

from __future__ import annotations

import gc
import logging
import time
from dataclasses import dataclass
from typing import Literal

logger = logging.getLogger(__name__)

Step = Literal["freeze", "reclaim", "none"]


@dataclass
class GcState:
    frozen_streams: int = 0  # streams open at the last freeze
    opened_since: int = 0  # streams opened since the last freeze
    closed_frozen: int = 0  # frozen streams closed since the last reclaim
    freezes: int = 0  # freezes since the last reclaim
    last_reclaim: float = 0.0
    last_freeze: float = 0.0


def decide(st: GcState, now: float, streams: int, *, freeze_after: int = 50, freeze_every: float = 2.0,
           min_streams: int = 100, min_closed: int = 200, reclaim_every: float = 3600.0) -> Step:
    """Reclaim after churn (a quarter of the frozen streams closed) or hourly after any freeze; freeze when
    streams have opened, or every `freeze_every` seconds while at least `min_streams` are open."""
    if st.closed_frozen >= max(min_closed, st.frozen_streams // 4) or (
            st.freezes and now - st.last_reclaim >= reclaim_every):
        return "reclaim"
    if st.opened_since >= freeze_after or (streams >= min_streams and now - st.last_freeze >= freeze_every):
        return "freeze"
    return "none"


class GcPolicy:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.st = GcState(last_reclaim=time.monotonic())
        self.generation = 0  # bumped at every freeze: a stream opened before it is frozen
        self.reclaims = 0

    def started(self) -> None:
        """After start-up: modules, app, models, caches are long-lived."""
        if self.enabled:
            gc.collect()
            gc.freeze()

    def opened(self) -> int:
        self.st.opened_since += 1
        return self.generation

    def closed(self, generation: int) -> None:
        if generation < self.generation:
            self.st.closed_frozen += 1

    def tick(self, streams: int) -> Step:
        if not self.enabled:
            return "none"
        now = time.monotonic()
        step = decide(self.st, now, streams)
        if step == "reclaim":
            t = time.perf_counter()
            gc.unfreeze()
            n = gc.collect()
            gc.freeze()
            self.reclaims += 1
            logger.info("reclaimed %d objects of closed streams in %.0f ms (%d streams open)", n,
                        (time.perf_counter() - t) * 1000, streams)
            self.st = GcState(frozen_streams=streams, last_reclaim=now, last_freeze=now)
            self.generation += 1
        elif step == "freeze":
            gc.freeze()
            self.st.frozen_streams, self.st.opened_since, self.st.last_freeze = streams, 0, now
            self.st.freezes += 1
            self.generation += 1
        return step
