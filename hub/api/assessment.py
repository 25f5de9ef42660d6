"""考核 over the API: per-unit figures and ranking for a period, the cases behind a figure, and the table as
CSV or XLSX in the reader's language. Scoped like everything else: a unit sees the units of its subtree."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from hub.analysis import assessment, tables
from hub.api.audited import audited
from hub.api.deps import HubDep, Reader, StoreDep
from hub.api.errors import GUARD, responses
from hub.policy import access
from hub.policy.labels import Lang

router = APIRouter(prefix="/api/v1/assessment", tags=["assessment"], responses=responses(*GUARD, 403))
Since = Annotated[datetime | None, Query(description="cases opened at or after (default: 30 days before until)")]
Until = Annotated[datetime | None, Query(description="cases opened before (default: now)")]
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("rank", "排名", "Rank"), ("unit", "单位", "Unit"), ("dispatched", "派单数", "Dispatched"),
    ("accepted", "签收数", "Signed for"), ("accepted_on_time_pct", "按时签收率%", "Signed for on time %"),
    ("resolved", "办结数", "Resolved"), ("resolved_on_time_pct", "按时办结率%", "Resolved on time %"),
    ("mean_accept_s", "平均签收用时(秒)", "Mean time to sign for (s)"),
    ("mean_resolve_s", "平均办理用时(秒)", "Mean time to resolve (s)"), ("extended", "延期", "Extended"),
    ("escalated", "升级", "Escalated"), ("overdue", "超时", "Overdue"), ("reopened", "重新办理", "Reopened"),
    ("repeats", "重复件", "Repeats"), ("closed", "已结案", "Closed"), ("supervised", "督办", "Supervised"),
    ("sent_back", "退回", "Sent back"), ("rated", "回访数", "Called back"),
    ("satisfaction_pct", "满意率%", "Satisfied %"))


class UnitRow(BaseModel):
    rank: int
    unit: str
    name: str
    level: str | None
    dispatched: int
    accepted: int
    accepted_on_time: int
    accepted_on_time_pct: float | None
    resolved: int
    resolved_on_time: int
    resolved_on_time_pct: float | None
    mean_accept_s: float | None
    mean_resolve_s: float | None
    extended: int
    escalated: int
    overdue: int
    reopened: int
    repeats: int
    closed: int
    supervised: int
    sent_back: int = Field(0, description="退回: cases this unit sent back (recorded, counted against nobody)")
    rated: int = Field(0, description="回访: cases with a callback rating")
    satisfied: int = Field(0, description="回访 answered 满意 or 基本满意 (the latest answer)")
    satisfaction_pct: float | None = Field(None, description="满意率: satisfied of rated, %")


class Assessment(BaseModel):
    since: datetime
    until: datetime
    units: list[UnitRow]


def _window(store_now: datetime, since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    until = until or store_now
    return since or until - timedelta(days=30), until


def _rows(hub: HubDep, who: Reader, since: datetime | None, until: datetime | None) -> Assessment:
    store = hub.store
    start, end = _window(store.clock(), since, until)
    org = store.org
    out = []
    for u in assessment.assess(store, start, end, access.scope(store.org, who)):
        unit = org.units.get(u.unit)
        out.append(UnitRow(rank=u.rank, unit=u.unit, name=(unit.name or u.unit) if unit else u.unit,
                           level=unit.level if unit else None, dispatched=u.dispatched, accepted=u.accepted,
                           accepted_on_time=u.accepted_on_time, accepted_on_time_pct=u.accepted_on_time_pct,
                           resolved=u.resolved, resolved_on_time=u.resolved_on_time,
                           resolved_on_time_pct=u.resolved_on_time_pct, mean_accept_s=u.mean_accept_s,
                           mean_resolve_s=u.mean_resolve_s, extended=u.extended, escalated=u.escalated,
                           overdue=u.overdue, reopened=u.reopened, repeats=u.repeats, closed=u.closed,
                           supervised=u.supervised, sent_back=u.sent_back, rated=u.rated, satisfied=u.satisfied,
                           satisfaction_pct=u.satisfaction_pct))
    return Assessment(since=start, until=end, units=out)


@router.get("", responses=responses(*GUARD, 403))
def get_assessment(hub: HubDep, who: Reader, since: Since = None, until: Until = None) -> Assessment:
    """Each unit's figures for the cases opened in the period, ranked (resolved on time, then accepted on time,
    then cases handled)."""
    return _rows(hub, who, since, until)


class Behind(BaseModel):
    unit: str
    measure: str
    cases: list[str] = Field(description="case ids, newest first (at most 1,000)")


@router.get("/cases", responses=responses(*GUARD, 403, 404))
def cases_behind(store: StoreDep, who: Reader, unit: str, measure: str, since: Since = None,
                 until: Until = None) -> Behind:
    """The cases behind one figure of one unit (the drill-down)."""
    if measure not in assessment.MEASURES:
        raise HTTPException(404, f"measure is one of {', '.join(assessment.MEASURES)}")
    scope = access.scope(store.org, who)
    if scope is not None and unit not in scope:
        raise HTTPException(404, "no such unit in your scope")
    start, end = _window(store.clock(), since, until)
    return Behind(unit=unit, measure=measure, cases=assessment.cases_behind(store, unit, measure, start, end, scope))


@router.get("/export", response_class=Response, responses={200: {"content": {"text/csv": {}, tables.XLSX: {}},
                                                                 "description": "the assessment as a sheet"}},
            openapi_extra=audited("export"))
def export(request: Request, hub: HubDep, who: Reader, since: Since = None, until: Until = None,
           format: Literal["csv", "xlsx"] = "csv", lang: Lang = "zh-CN") -> Response:
    got = _rows(hub, who, since, until)
    header = [zh if lang == "zh-CN" else en for _, zh, en in COLUMNS]
    rows = [[getattr(r, key) if key != "unit" else f"{r.name} ({r.unit})" for key, _, _ in COLUMNS]
            for r in got.units]
    request.state.audit = {"rows": len(rows)}
    name = f"assessment-{got.since:%Y%m%d}-{got.until:%Y%m%d}.{format}"
    disposition = {"Content-Disposition": f'attachment; filename="{name}"'}
    if format == "xlsx":
        return StreamingResponse(tables.xlsx_chunks(header, rows, "考核" if lang == "zh-CN" else "assessment"),
                                 media_type=tables.XLSX, headers=disposition)
    return StreamingResponse(tables.csv_chunks(header, rows), media_type="text/csv; charset=utf-8",
                             headers=disposition)
