"""`GET /api/v1/stream`: Server-Sent Events of every case event, filtered to the caller's subtree.

The timeline table is the event log (`hub.events`), so every hub process serves the same stream, and a
client that reconnects with `Last-Event-ID` gets what it missed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse

from hub.api.auth import scope_of
from hub.api.deps import Reader, StoreDep
from hub.events import events_after

router = APIRouter(prefix="/api/v1", tags=["stream"])


@router.get("/stream")
async def stream(request: Request, store: StoreDep, who: Reader,
                 last_event_id: Annotated[str | None, Header()] = None) -> StreamingResponse:
    scope = scope_of(store, who)
    start = int(last_event_id) if last_event_id and last_event_id.isdigit() else await asyncio.to_thread(
        store.last_event_id)

    async def events() -> AsyncIterator[bytes]:
        after = start
        yield b": connected\nretry: 2000\n\n"
        idle = 0.0
        while not await request.is_disconnected():
            batch = await asyncio.to_thread(events_after, store, after, scope)
            for ev in batch:
                after = ev["id"]
                yield f"id: {ev['id']}\nevent: {ev['event']}\ndata: {json.dumps(ev, ensure_ascii=False)}\n\n".encode()
            if batch:
                idle = 0.0
                continue
            await asyncio.sleep(0.25)
            idle += 0.25
            if idle >= 15:  # keep proxies from closing a quiet stream
                idle = 0.0
                yield b": keep-alive\n\n"

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
