"""布防/撤防 wishes (issue 41): what the hub asks of each camera now. An operator's 布防/撤防 (`devices.guard`)
holds, except while a maintenance window over the camera or its grid is in force: then it is disarmed (the
schedule; a recurring window disarms it at the same hours every week) and armed again when the window ends
(the gateway restores a camera it disarmed once the hub stops asking). Queries only; the routes call it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from hub.fleet import maintenance
from hub.store.cases import Store
from hub.store.models import Device


@dataclass(frozen=True, slots=True)
class Wish:
    device: Device
    wanted: str
    """armed or disarmed"""
    why: str
    """asked (by an operator) or maintenance (a window in force)"""


def _quiet(s: Session, store: Store, now: datetime) -> tuple[set[str], set[str]]:
    windows = [w for w in store.windows.get(s, now) if maintenance.active(w, now, store.tz)]
    return ({w.target for w in windows if w.scope == "device"}, {w.target for w in windows if w.scope == "grid"})


def wish_of(d: Device, devices: set[str], grids: set[str]) -> Wish | None:
    if d.kind == "camera" and (d.id in devices or d.grid in grids):
        return Wish(d, "disarmed", "maintenance")
    return Wish(d, d.guard, "asked") if d.guard is not None else None


def wishes(s: Session, store: Store, grids: set[str] | None, now: datetime) -> list[Wish]:
    """Every camera of these grids (None: all) the hub asks something of now, by id."""
    quiet_devices, quiet_grids = _quiet(s, store, now)
    q = select(Device).where(or_(Device.guard.is_not(None), and_(
        Device.kind == "camera", or_(Device.id.in_(quiet_devices), Device.grid.in_(quiet_grids))))).order_by(Device.id)
    if grids is not None:
        q = q.where(Device.grid.in_(grids))
    return [w for d in s.scalars(q) if (w := wish_of(d, quiet_devices, quiet_grids)) is not None]


def wish(s: Session, store: Store, d: Device, now: datetime) -> Wish | None:
    return wish_of(d, *_quiet(s, store, now))
