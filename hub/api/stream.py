"""`GET /api/v1/stream`: Server-Sent Events of every case event, filtered to the caller's subtree.

The timeline table is the event log, so every hub process serves the same stream, and a client that
reconnects with `Last-Event-ID` gets what it missed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.api.auth import READERS, Principal, require, scope_of, where_visible
from hub.models import Case, TimelineEntry
from hub.store import Store

router = APIRouter(prefix="/api/v1", tags=["stream"])

KINDS = {"opened": "case_opened", "merged": "case_merged", "light": "light_changed", "escalated": "escalated",
         "backup_notified": "backup_notified", "reminder": "reminder"}


def fetch(store: Store, after: int, scope: set[str] | None, limit: int = 500) -> list[dict[str, Any]]:
    q = where_visible(select(TimelineEntry, Case).join(Case, Case.id == TimelineEntry.case_id)
                      .where(TimelineEntry.id > after).order_by(TimelineEntry.id).limit(limit), scope)
    with Session(store.engine) as s:
        return [{"id": e.id, "event": KINDS.get(e.action, "case_changed"), "case_id": c.id, "action": e.action,
                 "at": e.at.isoformat(), "actor": e.actor, "detail": e.detail, "status": c.status,
                 "owner": c.owner, "grid": c.grid, "category": c.category, "severity": c.severity,
                 "escalations": c.escalations} for e, c in s.execute(q)]


def last_id(store: Store) -> int:
    with Session(store.engine) as s:
        return int(s.scalar(select(func.coalesce(func.max(TimelineEntry.id), 0))) or 0)


@router.get("/stream")
async def stream(request: Request, who: Annotated[Principal, Depends(require(*READERS))],
                 last_event_id: Annotated[str | None, Header()] = None) -> StreamingResponse:
    store: Store = request.app.state.store
    scope = scope_of(store, who)
    start = int(last_event_id) if last_event_id and last_event_id.isdigit() else await asyncio.to_thread(last_id, store)

    async def events() -> AsyncIterator[bytes]:
        after = start
        yield b": connected\nretry: 2000\n\n"
        idle = 0.0
        while not await request.is_disconnected():
            batch = await asyncio.to_thread(fetch, store, after, scope)
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
