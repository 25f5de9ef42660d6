"""Cases: list, read (with timeline and clock), and operator actions, scoped to the caller's subtree."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.api.auth import READERS, Principal, require, scope_of, where_visible
from hub.models import Case, Pause
from hub.store import ACTIONS, Conflict, NotFound, Store

router = APIRouter(prefix="/api/v1/cases", tags=["cases"])


def visible(store: Store, who: Principal, case: Case) -> bool:
    """The same rule as `where_visible`, for one loaded case."""
    scope = scope_of(store, who)
    return scope is None or case.owner in scope or case.grid in scope


def case_public(store: Store, case: Case, pauses: list[Pause], now: datetime) -> dict[str, Any]:
    clock = store.clock_of(case, pauses, now)
    out = {c: getattr(case, c) for c in ("id", "status", "manual", "category", "severity", "grid", "device",
                                         "owner", "title", "opened_at", "accepted_at", "resolved_at",
                                         "closed_at", "stage_started_at", "first_seen", "last_seen",
                                         "first_received", "alert_count", "cleared_at", "escalations")}
    out["owner_level"] = store.org.units[case.owner].level if case.owner in store.org.units else None
    out["policy"] = case.policy["id"]
    if clock is not None:
        stage, r = clock
        out["clock"] = {"stage": stage, "elapsed_s": r.elapsed_s, "remaining_s": r.remaining_s,
                        "light": r.light, "paused": r.paused, "next_change": r.next_change}
    return out


@router.get("")
def list_cases(request: Request, who: Annotated[Principal, Depends(require(*READERS))],
               status: str | None = None, grid: str | None = None, category: str | None = None,
               unit: str | None = None, light: str | None = None,
               limit: Annotated[int, Query(ge=1, le=5000)] = 500) -> dict[str, Any]:
    store: Store = request.app.state.store
    q = select(Case).order_by(Case.opened_at.desc()).limit(limit)
    for col, val in ((Case.status, status), (Case.grid, grid), (Case.category, category)):
        if val is not None:  # one value, or several separated by commas
            q = q.where(col.in_(val.split(","))) if "," in val else q.where(col == val)
    scope = scope_of(store, who)
    if unit is not None:
        scope = (scope if scope is not None else set(store.org.units)) & (
            store.org.subtree(unit) if unit in store.org.units else set())
    q = where_visible(q, scope)
    now = store.clock()
    with Session(store.engine) as s:
        cases = list(s.scalars(q))
        pauses: dict[str, list[Pause]] = {}
        if cases:
            for p in s.scalars(select(Pause).where(Pause.case_id.in_([c.id for c in cases]))):
                pauses.setdefault(p.case_id, []).append(p)
        out = [case_public(store, c, pauses.get(c.id, []), now) for c in cases]
    if light is not None:
        out = [c for c in out if c.get("clock", {}).get("light") == light]
    return {"cases": out}


@router.get("/{case_id}")
def get_case(case_id: str, request: Request,
             who: Annotated[Principal, Depends(require(*READERS))]) -> dict[str, Any]:
    store: Store = request.app.state.store
    try:
        case, timeline, pauses = store.get(case_id)
    except NotFound:
        raise HTTPException(404, "no such case") from None
    if not visible(store, who, case):
        raise HTTPException(404, "no such case")  # outside the caller's scope: no hint that it exists
    out = case_public(store, case, pauses, store.clock())
    out["timeline"] = [{"at": e.at, "actor": e.actor, "action": e.action, "detail": e.detail} for e in timeline]
    out["pauses"] = [{"start": p.start, "end": p.end, "reason": p.reason} for p in pauses]
    out["alerts"] = store.alerts_of(case_id)
    out["evidence"] = [f"/api/v1/cases/{case_id}/evidence/{a['evidence']['stored']}" for a in out["alerts"]
                       if isinstance((a.get("evidence") or {}).get("stored"), int)]
    return out


class ManualCase(BaseModel):
    grid: str
    category: str = Field(pattern=r"^[a-z0-9_]{1,64}$")
    tier: Literal["general", "important", "major"] = "general"
    title: str = Field(min_length=1, max_length=2000)
    device: str | None = None


@router.post("", status_code=201)
def report(body: ManualCase, request: Request,
           who: Principal = Depends(require("operator", "admin"))) -> dict[str, Any]:  # noqa: B008
    """A grid worker's one-key report (一键上报), timed by the 2-3-10 tiers."""
    store: Store = request.app.state.store
    if who.unit is not None and body.grid not in store.org.subtree(who.unit):
        raise HTTPException(403, f"{body.grid} is outside {who.unit}'s subtree")
    try:
        case = store.open_manual(grid=body.grid, category=body.category, tier=body.tier, title=body.title,
                                 actor=who.name, device=body.device)
    except Conflict as exc:
        raise HTTPException(409, str(exc)) from None
    return get_case(case.id, request, who)


@router.get("/{case_id}/evidence/{n}")
def evidence(case_id: str, n: int, request: Request,
             who: Annotated[Principal, Depends(require(*READERS))]) -> Response:
    get_case(case_id, request, who)  # 404 unless the caller may see the case
    item = request.app.state.store.evidence(case_id, n)
    if item is None:
        raise HTTPException(404, "no such evidence")
    return Response(item.data, media_type=item.content_type)


class ActionBody(BaseModel):
    note: str | None = None
    unit: str | None = None


@router.post("/{case_id}/{action}")
def act(case_id: str, action: str, request: Request, body: ActionBody | None = None,
        who: Principal = Depends(require("operator", "admin"))) -> dict[str, Any]:  # noqa: B008
    store: Store = request.app.state.store
    if action not in ACTIONS:
        raise HTTPException(404, f"unknown action {action!r} (one of {', '.join(ACTIONS)})")
    try:
        case, _, _ = store.get(case_id)
    except NotFound:
        raise HTTPException(404, "no such case") from None
    if not visible(store, who, case):
        raise HTTPException(404, "no such case")
    if who.unit is not None and case.owner not in store.org.subtree(who.unit):
        raise HTTPException(403, f"case is held by {case.owner}, outside {who.unit}'s subtree")
    body = body or ActionBody()
    try:
        store.act(case_id, action, actor=who.name, note=body.note, unit=body.unit)
    except Conflict as exc:
        raise HTTPException(409, str(exc)) from None
    return get_case(case_id, request, who)
