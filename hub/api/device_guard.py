"""布防/撤防 (issue 41): an operator arms or disarms a camera or a GB/T 28181 platform from the board (audited);
a maintenance window in force over a camera disarms it for its hours (`hub.fleet.guards`). Its gateway reads
what is asked (`GET /devices/guards`), sends the device its `DeviceControl` guard command and says what the
device confirmed. While a device or its platform is disarmed, its gateway opens no case for its alarms
(`edge.gb28181.guard`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel

from hub.api.audited import audited
from hub.api.deps import HubDep, Operator, Reader, grid_writer
from hub.api.errors import BODY, GUARD, responses
from hub.fleet import guards, registry
from hub.policy import access
from hub.store.models import Device  # (typing only)

router = APIRouter(prefix="/api/v1", tags=["devices"], responses=responses(*GUARD, 403))
GuardState = Literal["armed", "disarmed"]


class GuardIn(BaseModel):
    state: GuardState


class GuardOut(BaseModel):
    id: str
    gateway: str | None
    wanted: GuardState | None
    """What the gateway must apply now (None: nothing asked)."""
    why: Literal["asked", "maintenance"] | None
    """An operator asked it, or a maintenance window is in force over the camera or its grid."""
    guard: GuardState | None
    """What an operator asked (None: never asked)."""
    guard_reported: GuardState | None
    """What the device confirmed through its gateway (None: not yet)."""
    guard_at: datetime | None


class GuardList(BaseModel):
    guards: list[GuardOut]


def _out(d: Device, w: guards.Wish | None) -> GuardOut:
    return GuardOut(id=d.id, gateway=d.gateway, wanted=w.wanted if w else None,  # type: ignore[arg-type]
                    why=w.why if w else None, guard=d.guard, guard_reported=d.guard_reported,  # type: ignore[arg-type]
                    guard_at=d.guard_at)


def _writable(s: Any, store: Any, who: Any, device_id: str) -> Device:
    """The device, if the caller writes its grid (404, 403 otherwise)."""
    d = registry.get(s, device_id)
    if d is None:
        raise HTTPException(404, "no such device")
    grid_writer(store, who, d.grid)
    return d


@router.get("/devices/guards")
def list_guards(hub: HubDep, who: Reader) -> GuardList:
    """Every device the caller sees that the hub asks to be armed or disarmed now: what its gateway applies."""
    store = hub.store
    with store.reading() as s:
        return GuardList(guards=[_out(w.device, w) for w in guards.wishes(s, store, access.grids_seen(store.org, who),
                                                                          store.now())])


@router.post("/devices/{device_id}/guard", responses=responses(*BODY, 404, 422),
             openapi_extra=audited("device_guard"))
def set_guard(device_id: str, body: GuardIn, hub: HubDep, who: Operator) -> GuardOut:
    """布防 (armed) or 撤防 (disarmed): its gateway sends the command; the device's alarms open no case while it
    (or its platform) is disarmed."""
    store = hub.store
    with store.transaction() as s:
        d = _writable(s, store, who, device_id)
        if d.guard != body.state:
            d.guard, d.guard_reported, d.guard_at = body.state, None, None
        out = _out(d, guards.wish(s, store, d, store.now()))
    hub.changed()
    return out


@router.post("/devices/{device_id}/guard/reported", responses=responses(*BODY, 404, 409, 422),
             openapi_extra=audited("device_guard_confirmed"))
def guard_reported(device_id: str, body: GuardIn, hub: HubDep, who: Operator) -> GuardOut:
    """The gateway: the device confirmed this guard state (409 when the hub now asks the other, or nothing)."""
    store = hub.store
    with store.transaction() as s:
        d = _writable(s, store, who, device_id)
        w = guards.wish(s, store, d, store.now())
        if w is None or w.wanted != body.state:
            raise HTTPException(409, f"the hub now asks {w.wanted if w else 'nothing'} of {device_id}")
        d.guard_reported, d.guard_at = body.state, store.now()
        out = _out(d, w)
    return out
