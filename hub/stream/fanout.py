"""One reader of new case events per hub process, fanned out in memory to every stream subscriber.

The reader follows the timeline by id (ids are in commit order, see `hub.store.cases`). It wakes when a writer in
this process commits (`Store.on_events`), when PostgreSQL delivers `NOTIFY gridwatch_events` (a writer in
any replica), and at the latest every `poll` seconds. Each event is encoded once and handed only to the
subscribers whose unit sees it (subscribers are indexed by unit; an event goes to the units on the chains
above its grid and its owner), so an event costs its recipients, not every connection.

Each subscriber has a bounded queue. One that falls `queue_size` events behind (a slow phone) is dropped:
its stream ends, the browser reconnects with `Last-Event-ID`, and the stream replays what it missed from
the database. A slow client therefore never slows the others nor grows the hub's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from typing import Any

from hub.ops.gcpolicy import GcPolicy
from hub.store.cases import EVENTS_CHANNEL, Store
from hub.store.db import libpq_conninfo
from hub.stream.events import events_after, sse, units_seeing

logger = logging.getLogger(__name__)

KEEPALIVE = (0, b": keep-alive\n\n")
"""A comment line every `keepalive` seconds keeps proxies from closing a quiet stream. Subscribers are spread
over `SLICES` slices and one slice gets its keep-alive at each tick, so 10,000 connections cost a steady
trickle of writes rather than one burst that would hold up requests."""
SLICES = 15


class Subscriber:
    """One stream connection: the unit it sees (None: the whole tree) and its queue of (id, bytes)."""

    __slots__ = ("unit", "start", "queue", "dropped", "slice", "gen")

    def __init__(self, unit: str | None, start: int, size: int) -> None:
        self.unit, self.start = unit, start
        self.queue: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue(size)
        self.dropped = False
        self.slice = self.gen = 0

    def offer(self, item: tuple[int, bytes]) -> bool:
        if self.dropped:
            return False
        try:
            self.queue.put_nowait(item)
            return True
        except asyncio.QueueFull:
            self.dropped = True  # the consumer sees it at its next get and ends the stream
            return False


class EventFeed:
    def __init__(self, store: Store, *, queue_size: int = 1000, poll: float = 1.0, keepalive: float = 15.0,
                 chunk: int = 50, batch: int = 1000, gc: GcPolicy | None = None) -> None:
        self.store = store
        self.gc = gc or GcPolicy(enabled=False)
        self.queue_size, self.poll, self.keepalive, self.chunk, self.batch = queue_size, poll, keepalive, chunk, batch
        self.position = 0
        self.by_unit: dict[str | None, set[Subscriber]] = {}
        self.slices: list[set[Subscriber]] = [set() for _ in range(SLICES)]
        self.count = 0
        self.dropped = 0
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop = threading.Event()
        self._listener: threading.Thread | None = None

    # ---- life -----------------------------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self.position = await asyncio.to_thread(self.store.last_event_id)
        self.store.on_events.append(self.wake)
        if self.store.engine.dialect.name == "postgresql":
            self._listener = threading.Thread(target=self._listen, name="gridwatch-hub-listen", daemon=True)
            self._listener.start()
        self.gc.started()
        self._task = asyncio.create_task(self._run(), name="gridwatch-hub-feed")

    async def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(ValueError):
            self.store.on_events.remove(self.wake)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._listener is not None:
            await asyncio.to_thread(self._listener.join, 5)

    def wake(self) -> None:
        """Thread-safe: new events were committed."""
        loop, ev = self._loop, self._wake
        if loop is not None and ev is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop is closing
                loop.call_soon_threadsafe(ev.set)

    # ---- subscribers ----------------------------------------------------------------------------
    def subscribe(self, unit: str | None) -> Subscriber:
        sub = Subscriber(unit, self.position, self.queue_size)
        self.by_unit.setdefault(unit, set()).add(sub)
        self.count += 1
        sub.slice = self.count % SLICES
        self.slices[sub.slice].add(sub)
        sub.gen = self.gc.opened()
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        subs = self.by_unit.get(sub.unit)
        if subs is not None and sub in subs:
            subs.discard(sub)
            self.slices[sub.slice].discard(sub)
            self.count -= 1
            if not subs:
                del self.by_unit[sub.unit]
            if sub.dropped:
                self.dropped += 1
            self.gc.closed(sub.gen)

    def recipients(self, ev: dict[str, Any]) -> list[Subscriber]:
        out = list(self.by_unit.get(None, ()))
        for u in units_seeing(self.store.org, ev):
            out.extend(self.by_unit.get(u, ()))
        return out

    # ---- the reader -----------------------------------------------------------------------------
    async def _run(self) -> None:
        assert self._wake is not None
        tick = self.keepalive / SLICES
        next_tick, turn = time.monotonic() + tick, 0
        failing = False
        # `_stop` as well as the cancel: on Python 3.11 `asyncio.wait_for` can swallow a cancellation that
        # arrives as the wake event fires (cpython gh-86296), and the loop then ran on while `stop()` awaited
        # it for ever; that was the hub's shutdown hang seen in CI on PostgreSQL, where NOTIFY wakes it often
        while not self._stop.is_set():
            wait = max(0.0, min(self.poll, next_tick - time.monotonic()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait)
            self._wake.clear()
            try:
                rows = await asyncio.to_thread(events_after, self.store, self.position, None, self.batch)
                failing = False
            except Exception as e:  # the database is away: keep the subscribers, try again
                if not failing:
                    logger.warning("reading case events failed (will retry): %s", str(e).splitlines()[0][:200])
                failing = True
                rows = []
            for ev in rows:
                await self._fan_out((ev["id"], sse(ev)), self.recipients(ev))
                self.position = ev["id"]
                await asyncio.sleep(0)  # let the streams take it before the next: a burst is not a backlog
            if len(rows) == self.batch:
                self._wake.set()
            self.gc.tick(self.count)
            if time.monotonic() >= next_tick:
                next_tick, turn = time.monotonic() + tick, (turn + 1) % SLICES
                await self._fan_out(KEEPALIVE, list(self.slices[turn]))

    async def _fan_out(self, item: tuple[int, bytes], subs: list[Subscriber]) -> None:
        """Queue the item for each subscriber, yielding to the loop every `chunk` of them so requests
        keep being served while thousands of streams are written."""
        for i, sub in enumerate(subs, 1):
            sub.offer(item)
            if i % self.chunk == 0:
                await asyncio.sleep(0)

    def _listen(self) -> None:
        """PostgreSQL: wake on NOTIFY from any replica's writers (reconnecting while the database is away)."""
        import psycopg

        conninfo = libpq_conninfo(self.store.engine)
        while not self._stop.is_set():
            try:
                with psycopg.connect(conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {EVENTS_CHANNEL}")
                    self.wake()  # anything committed while we were not listening
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=1.0):
                            self.wake()
            except Exception as e:
                logger.warning("listening for case events failed (will retry): %s", str(e).splitlines()[0][:200])
                self._stop.wait(2)
