"""The administrators' view of the notices sent (`GET /api/v1/notices`, issue 26): to whom, on which channel,
delivered, failed and why, or stopped; targets masked."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from hub.api.auth import Principal, require
from hub.api.deps import StoreDep
from hub.api.errors import GUARD, responses
from hub.notify.messages import mask
from hub.notify.queue import listing

router = APIRouter(prefix="/api/v1", tags=["notices"])
Admin = Annotated[Principal, Depends(require("admin", "sysadmin"))]


class NoticeOut(BaseModel):
    id: int
    case_id: str | None
    kind: str
    channel: str
    target: str = Field(description="masked: a mobile as 138****5678")
    recipient: str | None
    state: Literal["pending", "sending", "delivered", "failed", "stopped"]
    attempts: int
    created_at: datetime
    due_at: datetime
    done_at: datetime | None
    error: str
    title: str


@router.get("/notices", responses=responses(*GUARD, 403))
def notices(store: StoreDep, who: Admin, case_id: Annotated[str | None, Query(max_length=32)] = None,
            state: Annotated[str | None, Query(max_length=16)] = None,
            limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> list[NoticeOut]:
    """The notices, newest first (administrators): to whom, on which channel, delivered or failed and why."""
    return [NoticeOut(id=n.id, case_id=n.case_id, kind=n.kind, channel=n.channel, target=mask(n.target),
                      recipient=n.recipient, state=n.state, attempts=n.attempts,  # type: ignore[arg-type]
                      created_at=n.created_at, due_at=n.due_at, done_at=n.done_at, error=n.error,
                      title=str(n.body.get("title", "")))
            for n in listing(store, case_id=case_id, state=state, limit=limit)]


