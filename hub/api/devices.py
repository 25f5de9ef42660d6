"""Devices: the registry (search with each device's state, add, change, remove, import and export a
sheet). Readers see the devices of their subtree's grids; operators change them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from hub.api.audited import audited
from hub.api.deps import HubDep, Operator, Reader, grid_writer, grids_of
from hub.api.errors import BODY, GUARD, responses
from hub.api.schemas import Text
from hub.fleet import registry
from hub.fleet.devicestate import device_states
from hub.policy import access

router = APIRouter(prefix="/api/v1", tags=["devices"], responses=responses(*GUARD, 403))


class DeviceOut(registry.DeviceIn):
    updated_at: datetime
    state: registry.DeviceState = "ok"
    guard: Literal["armed", "disarmed"] | None = None
    """布防/撤防 the hub asks now (`hub.api.device_guard`; a camera under maintenance: disarmed);
    guard_reported: what the device confirmed."""
    guard_reported: Literal["armed", "disarmed"] | None = None


class DeviceList(BaseModel):
    total: int
    devices: list[DeviceOut]


@router.get("/devices")
def list_devices(hub: HubDep, who: Reader, q: Text | None = None, grid: Text | None = None,
                 kind: Text | None = None, limit: Annotated[int, Query(ge=1, le=5000)] = 500,
                 offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> DeviceList:
    """Search the registry (id, name, address, vendor, model, notes), with each device's state."""
    store = hub.store
    with store.reading() as s:
        total, rows = registry.search(s, grids=access.grids_seen(store.org, who), q=q, kind=kind, grid=grid,
                                      limit=limit, offset=offset)
        states = device_states(s, store, rows, store.now())
    return DeviceList(total=total, devices=[DeviceOut(
        **registry.device_in(d).model_dump(), updated_at=d.updated_at, state=states[d.id],  # type: ignore[arg-type]
        guard="disarmed" if d.kind == "camera" and states[d.id] == "maintenance" else d.guard,  # type: ignore[arg-type]
        guard_reported=d.guard_reported) for d in rows])  # type: ignore[arg-type]


@router.put("/devices/{device_id}", responses=responses(*BODY, 422), openapi_extra=audited("device_changed"))
def put_device(device_id: str, body: registry.DeviceIn, hub: HubDep, who: Operator) -> DeviceOut:
    """Add or change one device."""
    store = hub.store
    if body.id != device_id:
        raise HTTPException(422, "the body's id is not the path's")
    grid_writer(store, who, body.grid)
    with store.transaction() as s:
        old = registry.get(s, device_id)
        if old is not None:
            grid_writer(store, who, old.grid)
        if problems := registry.unknown_cameras(s, [body]):
            raise HTTPException(422, problems)
        registry.upsert(s, [body], store.now())
    hub.changed()
    return DeviceOut(**body.model_dump(), updated_at=store.now())


@router.delete("/devices/{device_id}", status_code=204, responses=responses(404),
               openapi_extra=audited("device_removed"))
def delete_device(device_id: str, hub: HubDep, who: Operator) -> Response:
    store = hub.store
    with store.transaction() as s:
        old = registry.get(s, device_id)
        if old is None:
            raise HTTPException(404, "no such device")
        grid_writer(store, who, old.grid)
        registry.remove(s, device_id)
    hub.changed()
    return Response(status_code=204)


class ImportResult(BaseModel):
    created: int
    updated: int


@router.post("/devices/import", responses=responses(*BODY, 415, 422),
             openapi_extra={"requestBody": {"content": {"text/csv": {"schema": {"type": "string"}},
                                                        registry.XLSX: {"schema": {"type": "string",
                                                                                   "format": "binary"}}}},
                            **audited("devices_imported")})
async def import_devices(request: Request, hub: HubDep, who: Operator) -> ImportResult:
    """A CSV (UTF-8) or XLSX sheet whose first row names the columns (`GET /devices/export` writes one):
    all rows or none; a bad row answers 422 with one reason per row."""
    store = hub.store
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    data = await request.body()

    def work() -> ImportResult:
        try:
            if kind in ("text/csv", "text/plain"):
                rows = registry.parse_rows(registry.read_csv(data), grids_of(store))
            elif kind == registry.XLSX:
                rows = registry.parse_rows(iter(registry.read_xlsx(data)), grids_of(store))
            else:
                raise HTTPException(415, f"send text/csv or {registry.XLSX}, not {kind or 'nothing'}")
        except registry.ImportError_ as exc:
            raise HTTPException(422, exc.problems) from None
        outside = sorted(g for g in {d.grid for d in rows} if not access.writes_grid(store.org, who, g))
        if outside:
            raise HTTPException(403, f"grids {outside} are outside {who.unit}'s subtree")
        with store.transaction() as s:
            if problems := registry.unknown_cameras(s, rows):
                raise HTTPException(422, problems)
            created, updated = registry.upsert(s, rows, store.now())
        return ImportResult(created=created, updated=updated)

    out = await run_in_threadpool(work)
    hub.changed()
    return out


@router.get("/devices/export", response_class=Response,
            responses={200: {"content": {"text/csv": {}, registry.XLSX: {}}, "description": "the sheet"}},
            openapi_extra=audited("export"))
def export_devices(request: Request, hub: HubDep, who: Reader,
                   format: Annotated[str, Query(pattern="^(csv|xlsx)$")] = "csv", q: Text | None = None,
                   grid: Text | None = None) -> Response:
    store = hub.store
    with store.reading() as s:
        _, rows = registry.search(s, grids=access.grids_seen(store.org, who), q=q, grid=grid, limit=10_000_000)
    request.state.audit = {"rows": len(rows)}
    if format == "xlsx":
        return Response(registry.xlsx_bytes(rows), media_type=registry.XLSX,
                        headers={"Content-Disposition": 'attachment; filename="devices.xlsx"'})
    return StreamingResponse(registry.csv_chunks(rows), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": 'attachment; filename="devices.csv"'})
