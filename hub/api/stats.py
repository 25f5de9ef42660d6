"""`GET /api/v1/stats`: case-class analysis over a period, scoped to the caller's subtree."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.api.auth import READERS, Principal, require, scope_of, where_visible
from hub.models import Case
from hub.stats import CaseRow, case_stats
from hub.store import Store

router = APIRouter(prefix="/api/v1", tags=["stats"])


@router.get("/stats")
def stats(request: Request, who: Annotated[Principal, Depends(require(*READERS))],
          since: datetime | None = None, until: datetime | None = None,
          repeat_days: Annotated[int, Query(ge=1, le=365)] = 30,
          min_repeats: Annotated[int, Query(ge=2, le=1000)] = 2) -> dict[str, Any]:
    store: Store = request.app.state.store
    until = until or store.clock()
    since = since or until - timedelta(days=30)
    since, until = (t if t.tzinfo else t.replace(tzinfo=UTC) for t in (since, until))
    scope = scope_of(store, who)

    def rows(*where: Any) -> list[CaseRow]:
        q = where_visible(select(Case.id, Case.category, Case.grid, Case.device, Case.opened_at, Case.closed_at)
                          .where(*where), scope)
        with Session(store.engine) as s:
            return [CaseRow(*r) for r in s.execute(q)]

    period = rows(Case.opened_at >= since, Case.opened_at < until)
    history = rows(Case.closed_at.is_not(None), Case.closed_at >= since - timedelta(days=repeat_days),
                   Case.closed_at < until)
    out = case_stats(period, history, tz=request.app.state.tz, repeat_days=repeat_days, min_repeats=min_repeats)
    return {"since": since, "until": until, **out}
