"""Fleet endpoints: the device registry, rule sets (check, save, diff, backtest, deploy, roll back), the
agents' heartbeats and long-polled assignments, maintenance windows and the map.

Who may do what: readers see devices, agents, windows and the map within their unit's subtree; operators
change devices and windows of their subtree; rule sets are the district's (an operator of a district
unit, or an admin), because one rule set runs on every agent it reaches; edge keys send heartbeats and
pull assignments for the grids their key allows.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridwatch.core.fleet import Heartbeat
from hub import fleet, maintenance, registry
from hub.api.auth import Principal, scope_of
from hub.api.deps import EdgeCaller, HubDep, Operator, Reader
from hub.api.errors import BODY, GUARD, responses
from hub.api.schemas import Text
from hub.ingest import Batch
from hub.models import Case, Device, HeldAlert, Maintenance, RuleVersion
from hub.store import Store

router = APIRouter(prefix="/api/v1", tags=["fleet"], responses=responses(*GUARD, 403))
MAX_WAIT = 60.0
Id = Annotated[int, PathParam(ge=1, le=2**31 - 1)]
"""A row number in a path (a rule version, a window): what every database can hold."""


# ---- scope helpers -----------------------------------------------------------------------------------
def grids_of(store: Store, who: Principal) -> set[str] | None:
    """The grids the caller sees (None: all)."""
    scope = scope_of(store, who)
    if scope is None:
        return None
    return {u for u in scope if store.org.units[u].level == "grid"}


def district_or_admin(store: Store, who: Principal) -> None:
    if who.role == "admin":
        return
    if who.role == "operator" and who.unit is not None and store.org.units[who.unit].level == "district":
        return
    raise HTTPException(403, "rule sets are managed by the district (an operator of a district unit, or an admin)")


def session(store: Store) -> Session:
    return Session(store.engine, expire_on_commit=False)


# ---- devices -----------------------------------------------------------------------------------------
class DeviceOut(registry.DeviceIn):
    updated_at: datetime
    state: registry.DeviceState = "ok"


class DeviceList(BaseModel):
    total: int
    devices: list[DeviceOut]


def device_states(s: Session, store: Store, devices: list[Device], now: datetime) -> dict[str, str]:
    """Each device's state: maintenance (a window over it or its grid is in force), unknown (only offline
    agents serve its grid), offline (an open offline case on it), alarm (another open case), else ok."""
    if not devices:
        return {}
    unknown, everything = fleet.unknown_grids(fleet.agents(s))
    windows = [w for w in store.windows.get(s, now) if maintenance.active(w, now, store.tz)]
    quiet = {(w.scope, w.target) for w in windows}
    ids = [d.id for d in devices]
    open_cases: dict[str, list[str]] = {}
    for i in range(0, len(ids), 5000):
        q = select(Case.device, Case.category).where(Case.device.in_(ids[i:i + 5000]), Case.status != "closed")
        for dev, cat in s.execute(q):
            open_cases.setdefault(dev or "", []).append(cat)
    out = {}
    for d in devices:
        if ("device", d.id) in quiet or ("grid", d.grid) in quiet:
            out[d.id] = "maintenance"
        elif everything or d.grid in unknown:
            out[d.id] = "unknown"
        elif any("offline" in c for c in open_cases.get(d.id, ())):
            out[d.id] = "offline"
        elif d.id in open_cases:
            out[d.id] = "alarm"
        else:
            out[d.id] = "ok"
    return out


@router.get("/devices")
def list_devices(hub: HubDep, who: Reader, q: Text | None = None, grid: Text | None = None,
                 kind: Text | None = None, limit: Annotated[int, Query(ge=1, le=5000)] = 500,
                 offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> DeviceList:
    """Search the registry (id, name, address, vendor, model, notes), with each device's state."""
    store = hub.store
    with session(store) as s:
        total, rows = registry.search(s, grids=grids_of(store, who), q=q, kind=kind, grid=grid, limit=limit,
                                      offset=offset)
        states = device_states(s, store, rows, store.now())
    return DeviceList(total=total, devices=[DeviceOut(**registry.device_in(d).model_dump(), updated_at=d.updated_at,
                                                      state=states[d.id]) for d in rows])  # type: ignore[arg-type]


def _writable(store: Store, who: Principal, grid: str) -> None:
    if grid not in store.org.units or store.org.units[grid].level != "grid":
        raise HTTPException(422, f"grid {grid!r} is not a grid of the org tree")
    mine = grids_of(store, who)
    if mine is not None and grid not in mine:
        raise HTTPException(403, f"{grid} is outside {who.unit}'s subtree")


@router.put("/devices/{device_id}", responses=responses(*BODY, 422))
def put_device(device_id: str, body: registry.DeviceIn, hub: HubDep, who: Operator) -> DeviceOut:
    """Add or change one device."""
    store = hub.store
    if body.id != device_id:
        raise HTTPException(422, f"the body's id {body.id!r} is not the path's {device_id!r}")
    _writable(store, who, body.grid)
    with store.transaction() as s:
        old = s.get(Device, device_id)
        if old is not None:
            _writable(store, who, old.grid)
        registry.upsert(s, [body], store.now())
    hub.changed()
    return DeviceOut(**body.model_dump(), updated_at=store.now())


@router.delete("/devices/{device_id}", status_code=204, responses=responses(404))
def delete_device(device_id: str, hub: HubDep, who: Operator) -> Response:
    store = hub.store
    with store.transaction() as s:
        old = s.get(Device, device_id)
        if old is None:
            raise HTTPException(404, "no such device")
        _writable(store, who, old.grid)
        registry.remove(s, device_id)
    hub.changed()
    return Response(status_code=204)


class ImportResult(BaseModel):
    created: int
    updated: int


@router.post("/devices/import", responses=responses(*BODY, 415, 422),
             openapi_extra={"requestBody": {"content": {"text/csv": {"schema": {"type": "string"}},
                                                        registry.XLSX: {"schema": {"type": "string",
                                                                                   "format": "binary"}}}}})
async def import_devices(request: Request, hub: HubDep, who: Operator) -> ImportResult:
    """A CSV (UTF-8) or XLSX sheet whose first row names the columns (`GET /devices/export` writes one):
    all rows or none; a bad row answers 422 with one reason per row."""
    store = hub.store
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    data = await request.body()

    def work() -> ImportResult:
        try:
            if kind in ("text/csv", "text/plain"):
                rows = registry.parse_rows(registry.read_csv(data), _grids(store))
            elif kind == registry.XLSX:
                rows = registry.parse_rows(iter(registry.read_xlsx(data)), _grids(store))
            else:
                raise HTTPException(415, f"send text/csv or {registry.XLSX}, not {kind or 'nothing'}")
        except registry.ImportError_ as exc:
            raise HTTPException(422, exc.problems) from None
        mine = grids_of(store, who)
        outside = sorted({d.grid for d in rows} - mine) if mine is not None else []
        if outside:
            raise HTTPException(403, f"grids {outside} are outside {who.unit}'s subtree")
        with store.transaction() as s:
            created, updated = registry.upsert(s, rows, store.now())
        return ImportResult(created=created, updated=updated)

    out = await run_in_threadpool(work)
    hub.changed()
    return out


def _grids(store: Store) -> set[str]:
    return {u.id for u in store.org.units.values() if u.level == "grid"}


@router.get("/devices/export", response_class=Response,
            responses={200: {"content": {"text/csv": {}, registry.XLSX: {}}, "description": "the sheet"}})
def export_devices(hub: HubDep, who: Reader, format: Annotated[str, Query(pattern="^(csv|xlsx)$")] = "csv",
                   q: Text | None = None, grid: Text | None = None) -> Response:
    store = hub.store
    with session(store) as s:
        _, rows = registry.search(s, grids=grids_of(store, who), q=q, grid=grid, limit=10_000_000)
    if format == "xlsx":
        return Response(registry.xlsx_bytes(rows), media_type=registry.XLSX,
                        headers={"Content-Disposition": 'attachment; filename="devices.xlsx"'})
    return StreamingResponse(registry.csv_chunks(rows), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": 'attachment; filename="devices.csv"'})


# ---- rule sets ---------------------------------------------------------------------------------------
class RuleText(BaseModel):
    text: Text = Field(max_length=8 * 1024 * 1024)
    note: Text = Field("", max_length=2000)


class CheckOut(BaseModel):
    ok: bool
    rules: int
    problems: list[str]


class VersionOut(BaseModel):
    version: int
    hash: str
    rules: int
    author: str
    note: str
    created_at: datetime


class VersionText(VersionOut):
    text: str


class DeployIn(BaseModel):
    version: int = Field(ge=1, le=2**31 - 1)
    grids: list[Text] | None = Field(None, description="staged: only agents serving these grids; none: all")
    note: Text = Field("", max_length=2000)


class DeployOut(BaseModel):
    id: int
    version: int
    grids: list[str] | None
    actor: str
    note: str
    at: datetime


class RulesOut(BaseModel):
    versions: list[VersionOut]
    deploys: list[DeployOut]
    agents: list[dict[str, Any]] = Field(description="each agent with the version it should run and runs")


def _tools(hub: Any) -> fleet.RuleTools:
    if hub.rule_tools is None:
        raise HTTPException(503, "this hub has no rule checker (start it with `gridwatch hub serve`)")
    tools: fleet.RuleTools = hub.rule_tools
    return tools


def _v(v: RuleVersion) -> VersionOut:
    return VersionOut(version=v.version, hash=v.hash, rules=v.rules, author=v.author, note=v.note,
                      created_at=v.created_at)


@router.post("/rules/check", tags=["rules"], responses=responses(*BODY, 503))
def check_rules(body: RuleText, hub: HubDep, who: Reader) -> CheckOut:
    """The checks of `gridwatch rules check`, for the board's editor as one types."""
    n, problems = _tools(hub).check(body.text)
    return CheckOut(ok=not problems, rules=n, problems=problems)


@router.get("/rules", tags=["rules"])
def rules_overview(hub: HubDep, who: Reader) -> RulesOut:
    store = hub.store
    now = store.now()
    with session(store) as s:
        vs = fleet.versions(s)
        ds = fleet.deploys(s)
        agents = fleet.agent_list(s, now, hub.fleet.heartbeat_limit)
    return RulesOut(versions=[_v(v) for v in vs],
                    deploys=[DeployOut(id=d.id, version=d.version, grids=d.grids, actor=d.actor, note=d.note,
                                       at=d.at) for d in ds], agents=agents)


@router.get("/rules/versions/{version}", tags=["rules"], responses=responses(404))
def rule_version(version: Id, hub: HubDep, who: Reader) -> VersionText:
    with session(hub.store) as s:
        v = s.get(RuleVersion, version)
    if v is None:
        raise HTTPException(404, "no such version")
    return VersionText(**_v(v).model_dump(), text=v.text)


@router.get("/rules/versions/{version}/diff", tags=["rules"], response_class=Response, responses=responses(404))
def rule_diff(version: Id, hub: HubDep, who: Reader,
              against: Annotated[int | None, Query(ge=0, le=2**31 - 1)] = None) -> Response:
    """A unified diff from `against` (default: the version before) to `version`."""
    with session(hub.store) as s:
        new = s.get(RuleVersion, version)
        old = s.get(RuleVersion, against if against is not None else version - 1)
    if new is None:
        raise HTTPException(404, "no such version")
    return Response(fleet.diff(old, new), media_type="text/x-diff; charset=utf-8")


@router.post("/rules", tags=["rules"], status_code=201, responses=responses(*BODY, 422, 503))
def save_rules(body: RuleText, hub: HubDep, who: Operator) -> VersionOut:
    """Save a rule set as the next version, after the checker passed it (422 with its messages if not).
    Saving deploys nothing."""
    store = hub.store
    district_or_admin(store, who)
    n, problems = _tools(hub).check(body.text)
    if problems:
        raise HTTPException(422, problems)
    with store.transaction() as s:
        v = fleet.save_version(s, body.text, n, who.name, body.note, store.now())
    return _v(v)


@router.post("/rules/deploy", tags=["rules"], status_code=201, responses=responses(*BODY, 404, 422))
def deploy_rules(body: DeployIn, hub: HubDep, who: Operator) -> DeployOut:
    """Send a version to the agents serving these grids (or to all); deploying an earlier version is a
    rollback."""
    store = hub.store
    district_or_admin(store, who)
    if body.grids is not None:
        bad = [g for g in body.grids if g not in _grids(store)]
        if bad or not body.grids:
            raise HTTPException(422, f"grids {bad} are not grids of the org tree" if bad else "grids is empty")
    with store.transaction() as s:
        if s.get(RuleVersion, body.version) is None:
            raise HTTPException(404, f"no rule version {body.version}")
        d = fleet.deploy(s, body.version, body.grids, who.name, body.note, store.now())
    hub.changed()
    return DeployOut(id=d.id, version=d.version, grids=d.grids, actor=d.actor, note=d.note, at=d.at)


@router.get("/rules/captures", tags=["rules"])
def captures(hub: HubDep, who: Reader) -> list[str]:
    """Recorded traffic a draft can be backtested on (JSONL files under `fleet.captures`)."""
    folder = hub.fleet.captures
    return sorted(p.name for p in folder.glob("*.jsonl")) if folder.is_dir() else []


class BacktestIn(BaseModel):
    text: Text = Field(max_length=8 * 1024 * 1024)
    capture: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,128}\.jsonl$")


@router.post("/rules/backtest", tags=["rules"], responses=responses(*BODY, 404, 422, 503))
def backtest(body: BacktestIn, hub: HubDep, who: Reader) -> dict[str, Any]:
    """What a draft would have raised on recorded traffic (in event time, no broker)."""
    tools = _tools(hub)
    path = hub.fleet.captures / body.capture
    if not path.is_file():
        raise HTTPException(404, f"no capture {body.capture!r}")
    _, problems = tools.check(body.text)
    if problems:
        raise HTTPException(422, problems)
    return tools.backtest(body.text, path)


# ---- agents ------------------------------------------------------------------------------------------
def _edge_grids(who: Principal, asked: list[str]) -> list[str]:
    if who.grids is None:
        return asked
    if not asked:
        return sorted(who.grids)
    outside = sorted(set(asked) - who.grids)
    if outside:
        raise HTTPException(403, f"grids {outside} are not grids of edge key {who.name!r}")
    return asked


@router.post("/fleet/heartbeat", tags=["agents"], responses=responses(*BODY, 422))
def heartbeat(body: Heartbeat, hub: HubDep, who: EdgeCaller) -> dict[str, Any]:
    """An agent's state; an agent marked offline that beats again clears its agent_offline case."""
    store = hub.store
    body.grids = _edge_grids(who, body.grids)
    now = store.now()
    with store.transaction() as s:
        back = fleet.beat(s, body, who.name, now)
        if back is not None:
            Batch(store, s, "watchdog").run([fleet.offline_alert(back, "resolved", now, store.org)])
    return {"ok": True, "heartbeat_limit_s": hub.fleet.heartbeat_limit}


@router.get("/fleet/assignment", tags=["agents"])
async def assignment(hub: HubDep, who: EdgeCaller, grids: Text = "",
                     rules: Annotated[int | None, Query(ge=0, le=2**31 - 1)] = None,
                     devices: Text = "", wait: Annotated[float, Query(ge=0, le=MAX_WAIT)] = 0) -> dict[str, Any]:
    """What the agent serving `grids` must run, long-polled: answers at once when its rule version or its
    devices differ from what it says it has (`rules`, `devices` etag), else when one changes, else after
    `wait` seconds with nothing changed (`rules` and `devices` null)."""
    store = hub.store
    mine = _edge_grids(who, [g for g in grids.split(",") if g])

    def look() -> tuple[RuleVersion | None, str]:
        with session(store) as s:
            return fleet.version_for(s, mine), fleet.devices_etag(s, mine)

    deadline = time.monotonic() + wait
    while True:
        gen = hub.generation
        version, etag = await run_in_threadpool(look)
        new_rules = version is not None and version.version != rules
        if new_rules or etag != devices or time.monotonic() >= deadline:
            break
        recheck = time.monotonic() + fleet.RECHECK
        while hub.generation == gen and time.monotonic() < min(recheck, deadline):
            await asyncio.sleep(0.05)
    out: dict[str, Any] = {"grids": mine, "rules": None, "devices": None}
    if new_rules and version is not None:
        out["rules"] = {"version": version.version, "hash": version.hash, "text": version.text}
    if etag != devices:
        def listing() -> tuple[str, list[dict[str, Any]]]:
            with session(store) as s:
                return fleet.devices_etag(s, mine), registry.for_agent(s, mine)[1]
        etag, rows = await run_in_threadpool(listing)
        out["devices"] = {"etag": etag, "list": rows}
    return out


@router.get("/agents", tags=["agents"])
def list_agents(hub: HubDep, who: Reader) -> list[dict[str, Any]]:
    """The agents seen by their heartbeats, with their state (online, late, offline) and the rule version
    they should run."""
    store = hub.store
    mine = grids_of(store, who)
    now = store.now()
    with session(store) as s:
        return fleet.agent_list(s, now, hub.fleet.heartbeat_limit, mine)


# ---- maintenance -------------------------------------------------------------------------------------
def _window_target(store: Store, who: Principal, scope: str, target: str) -> None:
    """May the caller set or end a window over this target? Rules are the district's; grids and devices
    their subtree's."""
    if scope == "rule":
        if grids_of(store, who) is not None:
            district_or_admin(store, who)
        return
    if scope == "grid":
        _writable(store, who, target)
        return
    with session(store) as s:
        d = s.get(Device, target)
    if d is None:
        raise HTTPException(422, f"no device {target!r} in the registry")
    _writable(store, who, d.grid)


def _visible_window(store: Store, who: Principal, w: Maintenance, s: Session) -> bool:
    mine = grids_of(store, who)
    if mine is None or w.scope == "rule":
        return True
    if w.scope == "grid":
        return w.target in mine
    d = s.get(Device, w.target)
    return d is not None and d.grid in mine


@router.get("/maintenance", tags=["maintenance"])
def list_windows(hub: HubDep, who: Reader, all: bool = False) -> list[dict[str, Any]]:
    """Windows not yet over (all=true: every one), with whether each is in force and how many alerts it
    holds."""
    store = hub.store
    now = store.now()
    with session(store) as s:
        q = select(Maintenance).order_by(Maintenance.starts_at.desc())
        rows = [w for w in s.scalars(q) if all or (w.cancelled_at is None and (w.ends_at is None or w.ends_at > now))]
        out = []
        for w in rows:
            if _visible_window(store, who, w, s):
                held = s.scalar(select(func.count()).select_from(HeldAlert).where(HeldAlert.window_id == w.id))
                out.append(maintenance.public(w, now, store.tz, held or 0))
    return out


@router.post("/maintenance", tags=["maintenance"], status_code=201, responses=responses(*BODY, 422))
def add_window(body: maintenance.WindowIn, hub: HubDep, who: Operator) -> dict[str, Any]:
    store = hub.store
    _window_target(store, who, body.scope, body.target)
    now = store.now()
    with store.transaction() as s:
        w = Maintenance(scope=body.scope, target=body.target, reason=body.reason, starts_at=body.starts_at,
                        ends_at=body.ends_at, recurrence=body.recurrence.model_dump() if body.recurrence else None,
                        actor=who.name, created_at=now, cancelled_at=None)
        s.add(w)
        s.flush()
    store.windows.invalidate()
    return maintenance.public(w, now, store.tz)


@router.post("/maintenance/{window_id}/cancel", tags=["maintenance"], responses=responses(404, 409))
def cancel_window(window_id: Id, hub: HubDep, who: Operator) -> dict[str, Any]:
    """End a window now: what it holds is released at once (cases open for conditions that still hold)."""
    store = hub.store
    now = store.now()
    with store.transaction() as s:
        w = s.get(Maintenance, window_id, with_for_update=True)
        if w is None or not _visible_window(store, who, w, s):
            raise HTTPException(404, "no such window")
        _window_target(store, who, w.scope, w.target)
        if w.cancelled_at is not None:
            raise HTTPException(409, "the window was cancelled already")
        w.cancelled_at = now
    store.windows.invalidate()
    return maintenance.public(w, now, store.tz)


# ---- the map ------------------------------------------------------------------------------------------
@router.get("/map", tags=["map"])
def map_data(hub: HubDep, who: Reader) -> dict[str, Any]:
    """Grids as polygons, devices as points with their state, open cases as markers with their light
    (at the case's place, else its device's), in the caller's scope."""
    store = hub.store
    mine = grids_of(store, who)
    now = store.now()
    units = [u for u in store.org.units.values() if u.level == "grid" and u.area and (mine is None or u.id in mine)]
    with session(store) as s:
        _, devs = registry.search(s, grids=mine, limit=20_000)
        states = device_states(s, store, devs, now)
        where = [Case.status != "closed"]
        scope = scope_of(store, who)
        if scope is not None:
            where.append(Case.owner.in_(scope) | Case.grid.in_(scope))
        cases = list(s.scalars(select(Case).where(*where).order_by(Case.opened_at.desc()).limit(2000)))
        pauses = store.pauses_of(s, [c.id for c in cases])
    at = {d.id: (d.lat, d.lon) for d in devs if d.lat is not None and d.lon is not None}
    markers = []
    for c in cases:
        place = c.place or {}
        lat, lon = place.get("lat"), place.get("lon")
        if (lat is None or lon is None) and c.device in at:
            lat, lon = at[c.device]
        if lat is None or lon is None:
            continue
        found = store.clock_of(c, pauses.get(c.id, []), now)
        markers.append({"id": c.id, "lat": lat, "lon": lon, "light": found[1].light if found else None,
                        "category": c.category, "severity": c.severity, "title": c.title, "device": c.device,
                        "grid": c.grid})
    return {"tiles": hub.fleet.map_tiles,
            "grids": [{"id": u.id, "name": u.name or u.id, "area": u.area} for u in units],
            "devices": [{"id": d.id, "name": d.name, "kind": d.kind, "grid": d.grid, "lat": d.lat, "lon": d.lon,
                         "address": d.address, "state": states[d.id]} for d in devs if d.id in at],
            "cases": markers}
