"""Cases: list, read (with timeline and clock), operator actions and manual reports, scoped to the
caller's subtree. The work is done by `hub.actions`; every query by `hub.store`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from itertools import islice
from typing import Annotated, Any, Final, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from gridwatch.core.alert import Place
from hub import actions, parts, tables
from hub.api.auth import Principal, scope_of
from hub.api.deps import HubDep, Operator, Reader, StoreDep
from hub.api.errors import BODY, GUARD, Problem, Refused, responses
from hub.api.schemas import CaseDetail, CaseList, CasePublic, Text, case_detail, case_public
from hub.errors import Conflict, NotFound
from hub.labels import Labels, Lang
from hub.lifecycle import ACTIONS, Action, Rating, Refusal, transition
from hub.models import Case, Pause, TimelineEntry
from hub.store import CaseFilter, Scope, Store

router = APIRouter(prefix="/api/v1/cases", tags=["cases"], responses=responses(*GUARD, 403, 404))


def visible(store: Store, who: Principal, case: Case) -> bool:
    """The same rule as the store's visibility filter, for one loaded case."""
    scope = scope_of(store, who)
    return (scope is None or case.owner in scope or case.grid in scope
            or (case.backup is not None and case.backup in scope) or any(u in scope for u in case.assist or ()))


def seen(store: Store, who: Principal, case_id: str) -> tuple[Case, list[TimelineEntry], list[Pause]]:
    """The stored case, its timeline and pauses, if the caller may see it; 404 when it does not exist or lies
    outside the caller's scope (no hint that it exists)."""
    try:
        found = store.get(case_id)
    except NotFound:
        raise HTTPException(404, "no such case") from None
    if not visible(store, who, found[0]):
        raise HTTPException(404, "no such case")
    return found


@contextmanager
def refusing(missing: str | None = None) -> Iterator[None]:
    """What the case layer refuses, as the API answers it: a Conflict is a 409 with its reason code; with
    `missing`, a LookupError (no such request, part or user) is a 404 saying so."""
    try:
        yield
    except Conflict as exc:
        raise refused(exc) from None
    except LookupError:
        if missing is None:
            raise
        raise HTTPException(404, missing) from None


def load_visible(store: Store, who: Principal, case_id: str) -> CaseDetail:
    """The case as the caller may see it (404 otherwise), with what the caller may do to it now."""
    case, timeline, pauses = seen(store, who, case_id)
    detail = case_detail(store, case, timeline, pauses, store.clock(), allowed(store, who, case),
                         parts.parts_of(store, case.id) if case.assist else [])
    detail.controls = control_actions(store, who, case, detail)
    return detail


def control_actions(store: Store, who: Principal, case: Case, detail: CaseDetail) -> list[str]:
    """The controls the caller may use now (hub.controls): `extension` (ask for 延期) for the unit holding a
    case waiting to be accepted or resolved, `decide_extension` for the dispatching level while one waits."""
    if who.role not in ("operator", "admin"):
        return []
    waiting = next((r for r in detail.requests if r.decision is None and r.kind in ("extension", "suspension")), None)
    out = []
    if (waiting is None and case.status in ("open", "accepted") and holds(store, who, case)
            and case.extensions < int(case.policy.get("extensions_max", 2))):
        out.append("extension")
    above = who.unit is None or (who.unit != case.owner and case.owner in store.org.subtree(who.unit))
    if waiting is not None and waiting.requested_by != who.name and above:
        out.append(f"decide_{waiting.kind}")
    if waiting is None and who.unit == case.owner and case.status not in ("on_hold", "closed"):
        out.append("suspension")
    if case.status == "open" and self_held(store, who, case):
        out.append("send_back")
    if above and case.status != "closed":
        out.append("supervise")
    if holds(store, who, case) and any(r.kind == "supervision" and r.decision is None for r in detail.requests):
        out.append("reply_supervision")
    if case.status not in ("closed", "reported"):
        mine = [p for p in detail.parts if part_holder(store, who, p.unit)]
        if any(p.signed_at is None for p in mine):
            out.append("part_sign")
        if any(p.reported_at is None for p in mine):
            out.append("part_report")
    return out


def part_holder(store: Store, who: Principal, unit: str) -> bool:
    """The caller works for the assisting unit (协办) or above it."""
    return who.unit is None or unit in store.org.subtree(who.unit)


def verifies(store: Store, who: Principal, case: Case) -> bool:
    """核查 is done by the unit holding the case or above it, or by the grid where the case happened (a
    department's result is checked on the spot by the grid)."""
    return holds(store, who, case) or (who.unit is not None and case.status == "resolved"
                                       and case.grid in store.org.subtree(who.unit))


def dispatches(store: Store, who: Principal, case: Case) -> bool:
    """派单 is a command center's: a case waiting for it, a case a level above the caller's was dispatched to
    (re-dispatch), or one a command center holds itself (sent back to it); not a grid's or a department's own."""
    if who.unit is None or case.status == "reported" or not self_held(store, who, case):
        return True
    return store.org.units[case.owner].level not in ("grid", "department")


def self_held(store: Store, who: Principal, case: Case) -> bool:
    """The caller's own unit holds the case and has a dispatching level above it: a hold (挂起) must be
    asked for and approved, a dispatch is not its to make, and it may send the case back (退回)."""
    return who.unit == case.owner and store.org.parent(case.owner) is not None


def holds(store: Store, who: Principal, case: Case) -> bool:
    """The case is held within the caller's subtree: the caller may act on it (roles are checked by the route)."""
    return who.unit is None or case.owner in store.org.subtree(who.unit)


BACKUP_ACTIONS: Final[tuple[Action, ...]] = ("accept", "comment")
VERIFY_ACTIONS: Final[tuple[Action, ...]] = ("close", "reject", "comment")


def as_backup(store: Store, who: Principal, case: Case) -> bool:
    """The caller is the backup grid (AB角) the case was offered to, and it has not been signed for yet: it
    may sign for it (accept, which makes the case its own) or comment."""
    return (who.unit is not None and case.backup is not None and case.status == "open"
            and case.backup in store.org.subtree(who.unit) and not holds(store, who, case))


def allowed(store: Store, who: Principal, case: Case) -> list[str]:
    """What the caller may do to the case now: its role, its subtree, and the case's state decide."""
    if who.role not in ("operator", "admin"):
        return []
    if holds(store, who, case):
        choice: tuple[Action, ...] = ACTIONS
    elif as_backup(store, who, case):
        choice = BACKUP_ACTIONS
    elif verifies(store, who, case):
        choice = VERIFY_ACTIONS
    else:
        return []
    own = self_held(store, who, case)
    return [a for a in choice if not isinstance(transition(case.status, a, case.held_from), Refusal)
            and not (a in VERIFY_ACTIONS and a != "comment" and case.resolved_by == who.name)
            and not (own and a == "hold")
            and not (a == "dispatch" and not dispatches(store, who, case))]


def refused(exc: Conflict) -> Refused:
    """The 409 for what the case layer refused, with its reason code."""
    return Refused(409, str(exc), exc.code, **exc.params)


def _scope(store: Store, who: Principal, unit: str | None) -> Scope:
    """The caller's scope, narrowed to `unit`'s subtree when one is asked for."""
    scope = scope_of(store, who)
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
                                                                 "description": "the filtered cases as a sheet"}})
def export_cases(hub: HubDep, who: Reader, status: Text | None = None, grid: Text | None = None,
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
    rows = (_export_row(c, store, hub.labels, lang, zone) for c in _matching(store, f, scope, light))
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


@router.post("", status_code=201, responses=responses(*BODY, 409))
def report(body: ManualCase, store: StoreDep, who: Operator) -> CaseDetail:
    """A grid worker's one-key report (一键上报), timed by the 2-3-10 tiers; a photo follows by
    `POST /api/v1/cases/{id}/photos`."""
    if who.unit is not None and body.grid not in store.org.subtree(who.unit):
        raise Refused(403, f"{body.grid} is outside {who.unit}'s subtree", "outside_scope", unit=who.unit,
                      target=body.grid)
    with refusing():
        case = actions.open_manual(store, grid=body.grid, category=body.category, tier=body.tier,
                                   title=body.title, actor=who.name, device=body.device,
                                   place=body.place.model_dump() if body.place is not None else None)
    return load_visible(store, who, case.id)


@router.get("/{case_id}/evidence/{n}", response_class=Response,
            responses={200: {"content": {"image/jpeg": {}, "image/png": {}, "image/webp": {}},
                             "description": "the snapshot or photo"}})
def evidence(case_id: str, n: Annotated[int, Path(ge=1, le=2**31 - 1)], store: StoreDep, who: Reader) -> Response:
    load_visible(store, who, case_id)  # 404 unless the caller may see the case
    item = store.evidence(case_id, n)
    if item is None:
        raise HTTPException(404, "no such evidence")
    return Response(item.data, media_type=item.content_type, headers={"Cache-Control": "private, max-age=86400"})


PHOTO_TYPES: Final = ("image/jpeg", "image/png", "image/webp")


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
                 t: {"schema": {"type": "string", "format": "binary"}} for t in PHOTO_TYPES}}})
async def add_photo(case_id: str, request: Request, hub: HubDep, who: Operator,
                    note: Annotated[Text | None, Query(max_length=500)] = None) -> CaseDetail:
    """A photo taken on the spot (JPEG, PNG or WebP, at most `limits.max_photo_bytes`), sent as the raw body
    with its type; stored with the case as evidence and shown on its page and timeline."""
    store = hub.store
    case, _ = await run_in_threadpool(_actionable, store, who, case_id)
    kind = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if kind not in PHOTO_TYPES:
        raise Refused(415, f"a photo is {', '.join(PHOTO_TYPES)}, not {kind or 'nothing'}", "photo_type", type=kind)
    limit = hub.max_photo_bytes
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            raise Refused(413, f"a photo is at most {limit} bytes", "photo_size", limit=limit)
    if sniff(bytes(data)) != kind:
        raise Refused(415, f"the body is not a {kind} image", "photo_type", type=kind)
    with refusing():
        await run_in_threadpool(actions.add_photo, store, case.id, data=bytes(data), content_type=kind,
                                actor=who.name, note=note, person=who.person)
    return await run_in_threadpool(load_visible, store, who, case_id)


class ActionBody(BaseModel):
    note: Text | None = Field(None, max_length=4000)
    unit: Text | None = Field(None, max_length=64, description="transfer, dispatch: the unit that gets the case")
    rating: Rating | None = Field(None, description="callback (回访): 满意 satisfied, 基本满意 basically, 不满意 "
                                                   "unsatisfied")
    assist: list[Annotated[str, Field(max_length=64)]] = Field(
        default_factory=list, max_length=20, description="dispatch: the assisting units of joint handling (协办)")


def _actionable(store: Store, who: Principal, case_id: str, action: Action | None = None) -> tuple[Case, bool]:
    """The case if the caller may act on it (it lies in the caller's subtree, or the caller is the backup
    grid it was offered to and `action` is one a backup may take), and whether as its backup; 404/403
    otherwise."""
    case, _, _ = seen(store, who, case_id)
    if holds(store, who, case):
        return case, False
    if action in BACKUP_ACTIONS and as_backup(store, who, case):
        return case, True
    if action in VERIFY_ACTIONS and verifies(store, who, case):
        return case, False
    raise Refused(403, f"case is held by {case.owner}, outside {who.unit}'s subtree", "held_elsewhere",
                  owner=case.owner, unit=who.unit)


def reachable(store: Store, who: Principal, unit: str | None) -> bool:
    """A unit the caller may give a case to: within its subtree, or a functional department attached to a
    level above it (the district's departments serve the streets)."""
    if who.unit is None or unit is None or unit not in store.org.units:
        return True  # no unit, or not one of the tree: the case layer says what is missing
    if unit in store.org.subtree(who.unit):
        return True
    u = store.org.units.get(unit)
    return u is not None and u.level == "department" and u.parent in store.org.chain(who.unit)


def _act(store: Store, who: Principal, case_id: str, name: Action, body: ActionBody) -> None:
    case, backup = _actionable(store, who, case_id, name)
    if name == "transfer" and who.unit is not None and body.unit not in store.org.subtree(who.unit):
        raise Refused(403, f"{who.unit} may transfer only within its subtree, not to {body.unit}",
                      "transfer_outside", unit=who.unit, target=body.unit)
    if name == "dispatch":
        if not dispatches(store, who, case):
            raise Refused(403, f"{case.owner} was dispatched the case; the level above re-dispatches it (or send it "
                               f"back)", "not_dispatcher", unit=who.unit, owner=case.owner)
        outside = [u for u in (body.unit, *body.assist) if not reachable(store, who, u)]
        if outside:
            raise Refused(403, f"{who.unit} may dispatch within its subtree or to departments above it, not to "
                               f"{', '.join(str(u) for u in outside)}", "transfer_outside", unit=who.unit,
                          target=outside[0])
    if name == "hold" and self_held(store, who, case):
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


@router.post("/bulk/{action}", responses=responses(*BODY))
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


@router.post("/{case_id}/{action}", responses=responses(*BODY, 409))
def act(case_id: str, action: str, store: StoreDep, who: Operator, body: ActionBody | None = None) -> CaseDetail:
    name = next((a for a in ACTIONS if a == action), None)
    if name is None:
        raise HTTPException(404, f"unknown action {action!r} (one of {', '.join(ACTIONS)})")
    _act(store, who, case_id, name, body or ActionBody())
    return load_visible(store, who, case_id)
