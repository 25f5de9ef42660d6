"""`GET /api/v1/stats`: case-class analysis over a period, scoped to the caller's subtree."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from hub.analysis.stats import CaseRow, case_stats
from hub.api.deps import Reader, StoreDep, TzDep
from hub.api.errors import GUARD, responses
from hub.policy import access
from hub.store.models import Case

router = APIRouter(prefix="/api/v1", tags=["stats"], responses=responses(*GUARD, 403))
EARLIEST, LATEST = datetime(1970, 1, 1), datetime(9000, 1, 1)  # room for repeat_days either side


@router.get("/stats")
def stats(store: StoreDep, who: Reader, tz: TzDep, since: datetime | None = None, until: datetime | None = None,
          repeat_days: Annotated[int, Query(ge=1, le=365)] = 30,
          min_repeats: Annotated[int, Query(ge=2, le=1000)] = 2) -> dict[str, Any]:
    for name, t in (("since", since), ("until", until)):
        if t is not None and not EARLIEST <= t.replace(tzinfo=None) <= LATEST:
            raise HTTPException(422, [{"loc": ["query", name], "type": "value_error",
                                       "msg": f"{name} must lie between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}"}])
    until = until or store.clock()
    since = since or until - timedelta(days=30)
    since, until = (t if t.tzinfo else t.replace(tzinfo=UTC) for t in (since, until))
    scope = access.scope(store.org, who)
    period = [CaseRow(*r) for r in store.case_rows(scope, Case.opened_at >= since, Case.opened_at < until)]
    history = [CaseRow(*r) for r in store.case_rows(
        scope, Case.closed_at.is_not(None), Case.closed_at >= since - timedelta(days=repeat_days),
        Case.closed_at < until)]
    out = case_stats(period, history, tz=tz, repeat_days=repeat_days, min_repeats=min_repeats)
    return {"since": since, "until": until, **out}
