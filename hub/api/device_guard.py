"""布防/撤防 (issue 41): an operator arms or disarms a camera or a GB/T 28181 platform from the board (audited);
its gateway reads what is asked (`GET /devices/guards`), sends the device its `DeviceControl` guard command and
says what the device confirmed. While a device or its platform is disarmed, its gateway opens no case for its
alarms (`edge.gb28181.guard`)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel

from hub.api.audited import audited
from hub.api.deps import HubDep, Operator, Reader, grid_writer
from hub.api.errors import BODY, GUARD, responses
from hub.fleet import registry
from hub.policy import access
from hub.store.models import Device  # (typing only)

router = APIRouter(prefix="/api/v1", tags=["devices"], responses=responses(*GUARD, 403))
GuardState = Literal["armed", "disarmed"]


class GuardIn(BaseModel):
    state: GuardState


class GuardOut(BaseModel):
    id: str
    gateway: str | None
    guard: GuardState | None
    """What the hub asked (None: never asked)."""
    guard_reported: GuardState | None
    """What the device confirmed through its gateway (None: not yet)."""
    guard_at: datetime | None


class GuardList(BaseModel):
    guards: list[GuardOut]


def _out(d: Device) -> GuardOut:
    return GuardOut(id=d.id, gateway=d.gateway, guard=d.guard, guard_reported=d.guard_reported,  # type: ignore[arg-type]
                    guard_at=d.guard_at)


@router.get("/devices/guards")
def list_guards(hub: HubDep, who: Reader) -> GuardList:
    """Every device the caller sees that was armed or disarmed from the hub: what its gateway must apply."""
    store = hub.store
    with store.reading() as s:
        return GuardList(guards=[_out(d) for d in registry.guarded(s, access.grids_seen(store.org, who))])


@router.post("/devices/{device_id}/guard", responses=responses(*BODY, 404, 422),
             openapi_extra=audited("device_guard"))
def set_guard(device_id: str, body: GuardIn, hub: HubDep, who: Operator) -> GuardOut:
    """布防 (armed) or 撤防 (disarmed): its gateway sends the command; the device's alarms open no case while it
    (or its platform) is disarmed."""
    store = hub.store
    with store.transaction() as s:
        d = registry.get(s, device_id)
        if d is None:
            raise HTTPException(404, "no such device")
        grid_writer(store, who, d.grid)
        if d.guard != body.state:
            d.guard, d.guard_reported, d.guard_at = body.state, None, None
        out = _out(d)
    hub.changed()
    return out


@router.post("/devices/{device_id}/guard/reported", responses=responses(*BODY, 404, 409, 422),
             openapi_extra=audited("device_guard_confirmed"))
def guard_reported(device_id: str, body: GuardIn, hub: HubDep, who: Operator) -> GuardOut:
    """The gateway: the device confirmed this guard state (409 when the hub has since asked for the other)."""
    store = hub.store
    with store.transaction() as s:
        d = registry.get(s, device_id)
        if d is None:
            raise HTTPException(404, "no such device")
        grid_writer(store, who, d.grid)
        if d.guard != body.state:
            raise HTTPException(409, f"the hub now asks {d.guard or 'nothing'} of {device_id}")
        d.guard_reported, d.guard_at = body.state, store.now()
        out = _out(d)
    return out
