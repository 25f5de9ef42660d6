"""`GET /api/v1/stream`: Server-Sent Events of every case event, filtered to the caller's subtree.

Live events come from the process's one `EventFeed` (`hub.stream.fanout`); a client that reconnects with
`Last-Event-ID` first gets what it missed from the timeline table (the event log every replica shares),
then joins the live feed without a gap or a repeat.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse

from hub.api.deps import Reader, StoreDep
from hub.api.errors import GUARD, responses
from hub.policy import access
from hub.stream.events import events_after, sse
from hub.stream.fanout import EventFeed

KEEPALIVE_S = 15.0
router = APIRouter(prefix="/api/v1", tags=["stream"], responses=responses(*GUARD, 403))
REPLAY_BATCH = 500


@router.get("/stream")
async def stream(request: Request, store: StoreDep, who: Reader,
                 last_event_id: Annotated[str | None, Header()] = None) -> StreamingResponse:
    feed: EventFeed = request.app.state.feed
    resume = int(last_event_id) if last_event_id and last_event_id.isdigit() else None
    scope = access.scope(store.org, who) if resume is not None else None

    async def events() -> AsyncIterator[bytes]:
        sub = feed.subscribe(who.unit)
        getter: asyncio.Future[tuple[int, bytes]] | None = None
        try:
            sent = sub.start if resume is None else resume
            yield b": connected\nretry: 2000\n\n"
            while resume is not None and sent < sub.start:  # history from before we joined the feed
                batch = await asyncio.to_thread(events_after, store, sent, scope, REPLAY_BATCH)
                for ev in batch:
                    sent = ev["id"]
                    yield sse(ev)
                if len(batch) < REPLAY_BATCH:
                    break
            while True:
                # a comment every 15 s while nothing happens: the page knows a silent stream is alive (the
                # pending get is kept across pings, so no event is lost to a timeout)
                if getter is None:
                    getter = asyncio.ensure_future(sub.queue.get())
                done, _ = await asyncio.wait({getter}, timeout=KEEPALIVE_S)
                if not done:
                    yield b": ping\n\n"
                    continue
                items, getter = [getter.result()], None
                while not sub.queue.empty():  # behind: what has piled up goes out in one write
                    items.append(sub.queue.get_nowait())
                if sub.dropped:  # too far behind: end; the client resumes from Last-Event-ID
                    return
                out = []
                for ev_id, data in items:
                    if ev_id == 0 or ev_id > sent:
                        sent = max(sent, ev_id)
                        out.append(data)
                if out:
                    yield b"".join(out)
        finally:
            if getter is not None:
                getter.cancel()
            feed.unsubscribe(sub)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
