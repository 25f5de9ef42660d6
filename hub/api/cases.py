"""Cases: list, read (with timeline and clock), operator actions and manual reports, scoped to the
caller's subtree. The work is done by `hub.cases.actions`; every query by `hub.store.cases`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from itertools import islice
from typing import Annotated, Any, Final, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from gridwatch.core.alert import Place
from hub.analysis import tables
from hub.api.audit import counted
from hub.api.audited import ON_TIMELINE, audited
from hub.api.deps import HubDep, Operator, Reader, StoreDep
from hub.api.errors import BODY, GUARD, Problem, Refused, responses
from hub.api.schemas import CaseDetail, CaseList, CasePublic, Text, case_public
from hub.api.seen import actionable, load_visible, refusing
from hub.cases import actions
from hub.policy import access
from hub.policy.access import Principal
from hub.policy.labels import Labels, Lang
from hub.policy.lifecycle import ACTIONS, Action, Rating
from hub.store.cases import CaseFilter, Scope, Store

router = APIRouter(prefix="/api/v1/cases", tags=["cases"], responses=responses(*GUARD, 403, 404))


def _scope(store: Store, who: Principal, unit: str | None) -> Scope:
    """The caller's scope, narrowed to `unit`'s subtree when one is asked for."""
    scope = access.scope(store.org, who)
    if unit is not None:
        scope = (scope if scope is not None else set(store.org.units)) & (
            store.org.subtree(unit) if unit in store.org.units else set())
    return scope


def _filter(store: Store, who: Principal, *, status: str | None, grid: str | None, category: str | None,
            unit: str | None, q: str | None, since: datetime | None, until: datetime | None,
            cursor: str | None = None, limit: int = 500) -> tuple[CaseFilter, Scope]:
    return CaseFilter(status=status, grid=grid, category=category, limit=limit, q=q or None, since=since,
                      until=until, before=cursor), _scope(store, who, unit)


def _matching(store: Store, f: CaseFilter, scope: Scope, light: str | None) -> Iterator[CasePublic]:
    """Every visible case of the filter, newest first, with its clock; the light is judged case by case before
    counting, so a light filter never hides cases behind a limit."""
    now = store.clock()
    for c, p in store.walk_cases(f, scope, batch=max(f.limit, 200) if light else f.limit + 1):
        pub = case_public(store, c, p, now)
        if light is None or (pub.clock is not None and pub.clock.light == light):
            yield pub


Cursor = Annotated[str | None, Query(pattern=r"^[0-9a-z]{1,32}$", description="`next_cursor` of the page before")]
Since = Annotated[datetime | None, Query(description="opened at or after (ISO 8601)")]
Until = Annotated[datetime | None, Query(description="opened before (ISO 8601)")]
Search = Annotated[Text | None, Query(max_length=200, description="part of the id, device, place, grid or title")]


@router.get("")
def list_cases(store: StoreDep, who: Reader, status: Text | None = None, grid: Text | None = None,
               category: Text | None = None, unit: Text | None = None, light: Text | None = None,
               q: Search = None, since: Since = None, until: Until = None, cursor: Cursor = None,
               limit: Annotated[int, Query(ge=1, le=5000)] = 500) -> CaseList:
    """Newest first, `limit` at a time: pass `next_cursor` back as `cursor` for the next page. Cases opened
    while a client pages never shift a page (they sort before its cursor), so a walk sees each case once."""
    f, scope = _filter(store, who, status=status, grid=grid, category=category, unit=unit, q=q, since=since,
                       until=until, cursor=cursor, limit=limit)
    cases = list(islice(_matching(store, f, scope, light), limit + 1))
    more = len(cases) > limit
    cases = cases[:limit]
    return CaseList(cases=cases, next_cursor=cases[-1].id if more else None)


EXPORT_COLUMNS: Final = (
    ("id", "案件编号", "Case"), ("status", "状态", "State"), ("category", "类别", "Category"),
    ("severity", "级别", "Severity"), ("light", "亮灯", "Light"), ("grid", "网格", "Grid"),
    ("device", "设备", "Device"), ("place", "地点", "Place"), ("owner", "责任单位", "Owner"),
    ("title", "内容", "Message"), ("opened_at", "立案时间", "Opened"), ("accepted_at", "受理时间", "Accepted"),
    ("resolved_at", "处置时间", "Resolved"), ("closed_at", "办结时间", "Closed"), ("elapsed", "已挂单", "Pending"),
    ("remaining", "剩余", "Left"), ("escalations", "升级次数", "Escalations"), ("alert_count", "告警数", "Alerts"))


def _hms(seconds: float) -> str:
    s = int(abs(seconds))
    return f"{'-' if seconds < 0 else ''}{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _export_row(c: CasePublic, store: Store, labels: Labels, lang: Lang, zone: ZoneInfo) -> list[Any]:
    def when(t: datetime | None) -> str:
        return t.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S") if t is not None else ""
    unit = store.org.units.get(c.owner)
    place = c.place or {}
    return [c.id, labels.name("status", c.status, lang), labels.name("category", c.category, lang),
            labels.name("severity", c.severity, lang), labels.name("light", c.clock.light if c.clock else None, lang),
            c.grid, c.device or "", " ".join(str(place.get(k) or "") for k in ("name", "address")).strip(),
            (unit.name or unit.id) if unit is not None else c.owner, c.title, when(c.opened_at), when(c.accepted_at),
            when(c.resolved_at), when(c.closed_at), _hms(c.clock.elapsed_s) if c.clock else "",
            _hms(c.clock.remaining_s) if c.clock else "", c.escalations, c.alert_count]


@router.get("/export", response_class=Response, responses={200: {"content": {"text/csv": {}, tables.XLSX: {}},
                                                                 "description": "the filtered cases as a sheet"}},
            openapi_extra=audited("export"))
def export_cases(request: Request, hub: HubDep, who: Reader, status: Text | None = None, grid: Text | None = None,
                 category: Text | None = None, unit: Text | None = None, light: Text | None = None,
                 q: Search = None, since: Since = None, until: Until = None,
                 format: Literal["csv", "xlsx"] = "csv", lang: Lang = "zh-CN") -> Response:
    """The same filters as the list, every matching case (no limit), names in `lang`, stamps in the hub's time
    zone. Read from the store a thousand at a time and written as they come: memory stays flat."""
    store = hub.store
    f, scope = _filter(store, who, status=status, grid=grid, category=category, unit=unit, q=q, since=since,
                       until=until, limit=1000)
    zone = ZoneInfo(hub.tz)
    header = [zh if lang == "zh-CN" else en for _, zh, en in EXPORT_COLUMNS]
    rows = counted(request, (_export_row(c, store, hub.labels, lang, zone) for c in _matching(store, f, scope, light)))
    stamp = store.clock().astimezone(zone).strftime("%Y%m%d-%H%M%S")
    name = f"cases-{stamp}.{format}"
    disposition = {"Content-Disposition": f'attachment; filename="{name}"'}
    if format == "xlsx":
        return StreamingResponse(tables.xlsx_chunks(header, rows, "cases"), media_type=tables.XLSX,
                                 headers=disposition)
    return StreamingResponse(tables.csv_chunks(header, rows), media_type="text/csv; charset=utf-8",
                             headers=disposition)


class Summary(BaseModel):
    opened_today: int
    closed_today: int
    overdue_today: int = Field(description="cases whose clock turned red today")
    open: int
    day_start: datetime = Field(description="midnight in the hub's time zone")


@router.get("/summary")
def summary(hub: HubDep, who: Reader, unit: Text | None = None) -> Summary:
    """Today's figures for the wall's header (today = since midnight in the hub's time zone)."""
    store = hub.store
    scope = _scope(store, who, unit)
    zone = ZoneInfo(hub.tz)
    midnight = store.clock().astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    return Summary(**store.day_counts(midnight, scope), day_start=midnight)


@router.get("/{case_id}")
def get_case(case_id: str, store: StoreDep, who: Reader) -> CaseDetail:
    return load_visible(store, who, case_id)


class ManualCase(BaseModel):
    grid: Text = Field(max_length=64)
    category: str = Field(pattern=r"^[a-z0-9_]{1,64}$")
    tier: actions.Tier = "general"
    title: Text = Field(min_length=1, max_length=2000)
    device: Text | None = Field(None, max_length=64)
    place: Place | None = Field(None, description="where it is: the phone's position and/or an address")


@router.post("", status_code=201, responses=responses(*BODY, 409),
             openapi_extra=ON_TIMELINE)
def report(body: ManualCase, store: StoreDep, who: Operator) -> CaseDetail:
    """A grid worker's one-key report (一键上报), timed by the 2-3-10 tiers; a photo follows by
    `POST /api/v1/cases/{id}/photos`."""
    if who.unit is not None and body.grid in store.org.units and body.grid not in store.org.subtree(who.unit):
        raise Refused(403, f"{body.grid} is outside {who.unit}'s subtree", "outside_scope", unit=who.unit,
                      target=body.grid)
    with refusing():
        case = actions.open_manual(store, grid=body.grid, category=body.category, tier=body.tier,
                                   title=body.title, actor=who.name, device=body.device,
                                   place=body.place.model_dump() if body.place is not None else None)
    return load_visible(store, who, case.id)


@router.get("/{case_id}/evidence/{n}", response_class=Response,
            responses={200: {"content": {"image/jpeg": {}, "image/png": {}, "image/webp": {}, "video/mp4": {}},
                             "description": "the snapshot, photo or recorded clip"}})
def evidence(case_id: str, n: Annotated[int, Path(ge=1, le=2**31 - 1)], store: StoreDep, who: Reader) -> Response:
    load_visible(store, who, case_id)  # 404 unless the caller may see the case
    item = store.evidence(case_id, n)
    if item is None:
        raise HTTPException(404, "no such evidence")
    return Response(item.data, media_type=item.content_type, headers={"Cache-Control": "no-store"})


PHOTO_TYPES: Final = ("image/jpeg", "image/png", "image/webp")


async def body_within(request: Request, limit: int, what: str, reason: str) -> bytes:
    """The raw body, read as it streams in and refused (413, `reason`) once it passes `limit` bytes."""
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            raise Refused(413, f"{what} is at most {limit} bytes", reason, limit=limit)
    return bytes(data)


def sniff(data: bytes) -> str | None:
    """The image type the bytes really are (a photo's declared type must match)."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


@router.post("/{case_id}/photos", status_code=201, responses=responses(*BODY, 409, 415),
             openapi_extra={"requestBody": {"required": True, "content": {
                 t: {"schema": {"type": "string", "format": "binary"}} for t in PHOTO_TYPES}}, **ON_TIMELINE})
async def add_photo(case_id: str, request: Request, hub: HubDep, who: Operator,
                    note: Annotated[Text | None, Query(max_length=500)] = None) -> CaseDetail:
    """A photo taken on the spot (JPEG, PNG or WebP, at most `limits.max_photo_bytes`), sent as the raw body
    with its type; stored with the case as evidence and shown on its page and timeline."""
    store = hub.store
    case, _ = await run_in_threadpool(actionable, store, who, case_id)
    kind = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if kind not in PHOTO_TYPES:
        raise Refused(415, f"a photo is {', '.join(PHOTO_TYPES)}, not {kind or 'nothing'}", "photo_type", type=kind)
    data = await body_within(request, hub.max_photo_bytes, "a photo", "photo_size")
    if sniff(data) != kind:
        raise Refused(415, f"the body is not a {kind} image", "photo_type", type=kind)
    with refusing():
        await run_in_threadpool(actions.add_photo, store, case.id, data=data, content_type=kind,
                                actor=who.name, note=note, person=who.person)
    return await run_in_threadpool(load_visible, store, who, case_id)


@router.post("/{case_id}/clips", status_code=201, responses=responses(*BODY, 409, 413, 415),
             openapi_extra={"requestBody": {"required": True, "content": {
                 "video/mp4": {"schema": {"type": "string", "format": "binary"}}}}, **ON_TIMELINE})
async def add_clip(case_id: str, request: Request, hub: HubDep, who: Operator,
                   note: Annotated[Text | None, Query(max_length=500)] = None,
                   start: datetime | None = None, end: datetime | None = None) -> CaseDetail:
    """A clip of the camera's own recording around the alarm (MP4, at most `limits.max_clip_bytes`), sent by its
    gateway as the raw body with `start` and `end`; played on the case page."""
    store = hub.store
    case, _ = await run_in_threadpool(actionable, store, who, case_id)
    kind = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if kind != "video/mp4":
        raise Refused(415, f"a clip is video/mp4, not {kind or 'nothing'}", "clip_type", type=kind)
    data = await body_within(request, hub.max_clip_bytes, "a clip", "clip_size")
    if data[4:8] != b"ftyp":  # ISO/IEC 14496-12 §4.3: an MP4 starts with its file type box
        raise Refused(415, "the body is not an MP4 file", "clip_type", type=kind)
    with refusing():
        await run_in_threadpool(actions.add_clip, store, case.id, data=data, actor=who.name, note=note,
                                start=start, end=end)
    return await run_in_threadpool(load_visible, store, who, case_id)


class ActionBody(BaseModel):
    note: Text | None = Field(None, max_length=4000)
    unit: Text | None = Field(None, max_length=64, description="transfer, dispatch: the unit that gets the case")
    rating: Rating | None = Field(None, description="callback (回访): 满意 satisfied, 基本满意 basically, 不满意 "
                                                   "unsatisfied")
    assist: list[Annotated[str, Field(max_length=64)]] = Field(
        default_factory=list, max_length=20, description="dispatch: the assisting units of joint handling (协办)")


def _act(store: Store, who: Principal, case_id: str, name: Action, body: ActionBody) -> None:
    case, backup = actionable(store, who, case_id, name)
    org = store.org
    if name == "transfer" and who.unit is not None and body.unit not in store.org.subtree(who.unit):
        raise Refused(403, f"{who.unit} may transfer only within its subtree, not to {body.unit}",
                      "transfer_outside", unit=who.unit, target=body.unit)
    if name == "dispatch":
        if not access.dispatches(org, who, case):
            raise Refused(403, f"{case.owner} was dispatched the case; the level above re-dispatches it (or send it "
                               f"back)", "not_dispatcher", unit=who.unit, owner=case.owner)
        outside = [u for u in (body.unit, *body.assist) if not access.reachable(org, who, u)]
        if outside:
            raise Refused(403, f"{who.unit} may dispatch within its subtree or to departments above it, not to "
                               f"{', '.join(str(u) for u in outside)}", "transfer_outside", unit=who.unit,
                          target=outside[0])
    if name == "hold" and access.self_held(org, who, case):
        raise Refused(409, "挂起 of a case held by one's own unit is approved by the level above: ask for it at "
                           f"/api/v1/cases/{case_id}/suspension", "needs_approval", action="hold")
    with refusing():
        actions.act(store, case_id, name, actor=who.name, note=body.note, unit=body.unit,
                    as_backup=backup and name == "accept", person=who.person, rating=body.rating,
                    assist=body.assist)


class BulkBody(ActionBody):
    ids: list[Annotated[str, Field(pattern=r"^[0-9a-z]{1,32}$")]] = Field(min_length=1, max_length=500)


class BulkResult(BaseModel):
    done: list[str]
    refused: dict[str, Problem] = Field(description="case id -> why (the same answer a single action gives)")


@router.post("/bulk/{action}", responses=responses(*BODY),
             openapi_extra=ON_TIMELINE)
def act_bulk(action: Action, body: BulkBody, store: StoreDep, who: Operator) -> BulkResult:
    """One action on several cases (bulk acknowledge: `accept`), each in its own transaction: a case that
    refuses does not stop the others, and says why."""
    done: list[str] = []
    refused: dict[str, Problem] = {}
    for case_id in dict.fromkeys(body.ids):
        try:
            _act(store, who, case_id, action, body)
            done.append(case_id)
        except Refused as exc:
            refused[case_id] = Problem(detail=str(exc.detail), code=exc.code, params=exc.params)
        except HTTPException as exc:
            refused[case_id] = Problem(detail=str(exc.detail), code="not_found" if exc.status_code == 404 else None)
    return BulkResult(done=done, refused=refused)


class AssignBody(BaseModel):
    username: str = Field(pattern=r"^[A-Za-z0-9_.@-]{1,64}$")
    note: Text | None = Field(None, max_length=4000)


@router.post("/{case_id}/assign", responses=responses(*GUARD, *BODY, 403, 404, 409), openapi_extra=ON_TIMELINE)
def assign(case_id: str, body: AssignBody, store: StoreDep, hub: HubDep, who: Operator) -> CaseDetail:
    """Give a case to a person of the unit that holds it (a 网格员 of the grid), by whoever holds it."""
    case, _ = actionable(store, who, case_id)
    person = hub.people.get(body.username)
    if person is None or person.disabled or person.unit != case.owner:
        raise Refused(409, f"{body.username} is not an active member of {case.owner}", "not_member",
                      username=body.username, unit=case.owner)
    with refusing():
        actions.assign(store, case_id, username=person.username, name=person.name, actor=who.name,
                       person=who.person, note=body.note)
    return load_visible(store, who, case_id)


def _action_route(name: Action) -> None:
    """`POST /api/v1/cases/{case_id}/{name}`: one route per action of the lifecycle's table, so a case action
    never shadows another resource's route under a case (`/assign`, `/extension`, …) whatever their order."""
    def act(case_id: str, store: StoreDep, who: Operator, body: ActionBody | None = None) -> CaseDetail:
        _act(store, who, case_id, name, body or ActionBody())
        return load_visible(store, who, case_id)
    router.add_api_route(f"/{{case_id}}/{name}", act, methods=["POST"], responses=responses(*BODY, 409),
                         name=f"case_{name}", summary=f"{name} the case", operation_id=f"case_{name}",
                         openapi_extra=ON_TIMELINE)


for _name in ACTIONS:
    _action_route(_name)
