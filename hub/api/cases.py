"""Cases: list, read (with timeline and clock), operator actions and manual reports, scoped to the
caller's subtree. The work is done by `hub.actions`; every query by `hub.store`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Response
from pydantic import BaseModel, Field

from hub import actions
from hub.api.auth import Principal, scope_of
from hub.api.deps import Operator, Reader, StoreDep
from hub.api.errors import BODY, GUARD, responses
from hub.api.schemas import CaseDetail, CaseList, Text, case_detail, case_public
from hub.errors import Conflict, NotFound
from hub.lifecycle import ACTIONS
from hub.models import Case
from hub.store import CaseFilter, Store

router = APIRouter(prefix="/api/v1/cases", tags=["cases"], responses=responses(*GUARD, 403, 404))


def visible(store: Store, who: Principal, case: Case) -> bool:
    """The same rule as the store's visibility filter, for one loaded case."""
    scope = scope_of(store, who)
    return scope is None or case.owner in scope or case.grid in scope


def load_visible(store: Store, who: Principal, case_id: str) -> CaseDetail:
    """The case as the caller may see it; 404 when it does not exist or lies outside the caller's scope
    (no hint that it exists)."""
    try:
        case, timeline, pauses = store.get(case_id)
    except NotFound:
        raise HTTPException(404, "no such case") from None
    if not visible(store, who, case):
        raise HTTPException(404, "no such case")
    return case_detail(store, case, timeline, pauses, store.clock())


@router.get("")
def list_cases(store: StoreDep, who: Reader, status: Text | None = None, grid: Text | None = None,
               category: Text | None = None, unit: Text | None = None, light: Text | None = None,
               limit: Annotated[int, Query(ge=1, le=5000)] = 500) -> CaseList:
    scope = scope_of(store, who)
    if unit is not None:
        scope = (scope if scope is not None else set(store.org.units)) & (
            store.org.subtree(unit) if unit in store.org.units else set())
    now = store.clock()
    found = store.list_cases(CaseFilter(status=status, grid=grid, category=category, limit=limit), scope)
    cases = [case_public(store, c, p, now) for c, p in found]
    if light is not None:
        cases = [c for c in cases if c.clock is not None and c.clock.light == light]
    return CaseList(cases=cases)


@router.get("/{case_id}")
def get_case(case_id: str, store: StoreDep, who: Reader) -> CaseDetail:
    return load_visible(store, who, case_id)


class ManualCase(BaseModel):
    grid: Text = Field(max_length=64)
    category: str = Field(pattern=r"^[a-z0-9_]{1,64}$")
    tier: actions.Tier = "general"
    title: Text = Field(min_length=1, max_length=2000)
    device: Text | None = Field(None, max_length=64)


@router.post("", status_code=201, responses=responses(*BODY, 409))
def report(body: ManualCase, store: StoreDep, who: Operator) -> CaseDetail:
    """A grid worker's one-key report (一键上报), timed by the 2-3-10 tiers."""
    if who.unit is not None and body.grid not in store.org.subtree(who.unit):
        raise HTTPException(403, f"{body.grid} is outside {who.unit}'s subtree")
    try:
        case = actions.open_manual(store, grid=body.grid, category=body.category, tier=body.tier,
                                   title=body.title, actor=who.name, device=body.device)
    except Conflict as exc:
        raise HTTPException(409, str(exc)) from None
    return load_visible(store, who, case.id)


@router.get("/{case_id}/evidence/{n}", response_class=Response,
            responses={200: {"content": {"image/jpeg": {}}, "description": "the JPEG snapshot"}})
def evidence(case_id: str, n: Annotated[int, Path(ge=1, le=2**31 - 1)], store: StoreDep, who: Reader) -> Response:
    load_visible(store, who, case_id)  # 404 unless the caller may see the case
    item = store.evidence(case_id, n)
    if item is None:
        raise HTTPException(404, "no such evidence")
    return Response(item.data, media_type=item.content_type)


class ActionBody(BaseModel):
    note: Text | None = Field(None, max_length=4000)
    unit: Text | None = Field(None, max_length=64)


@router.post("/{case_id}/{action}", responses=responses(*BODY, 409))
def act(case_id: str, action: str, store: StoreDep, who: Operator, body: ActionBody | None = None) -> CaseDetail:
    name = next((a for a in ACTIONS if a == action), None)
    if name is None:
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
    if name == "transfer" and who.unit is not None and body.unit not in store.org.subtree(who.unit):
        raise HTTPException(403, f"{who.unit} may transfer only within its subtree, not to {body.unit}")
    try:
        actions.act(store, case_id, name, actor=who.name, note=body.note, unit=body.unit)
    except Conflict as exc:
        raise HTTPException(409, str(exc)) from None
    return load_visible(store, who, case_id)
