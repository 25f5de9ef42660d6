"""视频复核 (issue 41): looks asked of cameras. A sensor whose registry entry names the camera that covers it
(`devices.camera`, `devices.preset`) asks a look when its alert opens a case (`hub.cases.ingest`); an operator
asks one from the case page (`hub.api.looks`). The camera's gateway reads the looks waiting
(`GET /api/v1/looks`), turns the camera to its preset (GB/T 28181 `PTZCmd`, ONVIF `GotoPreset`), lets it
settle, and sends the picture (added to the case as a photo) or why there is none. A look no gateway has
answered within `LOOK_TTL` is no longer offered: a picture minutes late shows the scene as it is then, not as
the alert found it. Queries and the timeline entries; the routes call them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.cases.actions import photo_in
from hub.store.cases import Store
from hub.store.models import Case, Device, Look

LOOK_TTL = timedelta(minutes=2)


def links(s: Session, devices: Iterable[str]) -> dict[str, tuple[str, int | None]]:
    """The camera (and preset) that covers each of these devices that names one."""
    wanted = set(devices)
    if not wanted:
        return {}
    q = select(Device.id, Device.camera, Device.preset).where(Device.id.in_(wanted), Device.camera.is_not(None))
    return {i: (c, p) for i, c, p in s.execute(q) if c is not None}


def asked(case_id: str, camera: str, preset: int | None, sensor: str | None, by: str, now: datetime
          ) -> tuple[dict[str, Any], dict[str, Any]]:
    """A look's row and its timeline entry's detail."""
    row = {"case_id": case_id, "camera": camera, "preset": preset, "sensor": sensor, "asked_by": by,
           "asked_at": now, "done_at": None, "result": None, "detail": ""}
    detail: dict[str, Any] = {"camera": camera, "preset": preset}
    if sensor is not None:
        detail["sensor"] = sensor
    return row, detail


def ask(store: Store, case_id: str, camera: str | None, preset: int | None, *, actor: str) -> Look:
    """An operator's look for a case (one transaction: the row and its timeline entry `look_asked`). With no
    camera named, the camera that covers the case's device (and its preset unless one is named); a case of a
    camera with no camera named for it: that camera. Raises ValueError saying what is missing."""
    now = store.now()
    with store.transaction() as s:
        case = store.lock_case(s, case_id)
        device = s.get(Device, case.device) if case.device else None
        if camera is None and device is not None and device.camera is not None:
            camera, preset = device.camera, preset if preset is not None else device.preset
        elif camera is None and device is not None and device.kind == "camera":
            camera = device.id
        if camera is None:
            raise ValueError(f"case {case_id}'s device names no camera that covers it: name one")
        cam = s.get(Device, camera)
        if cam is None or cam.kind != "camera":
            raise ValueError(f"{camera!r} is {'a ' + cam.kind + ', not a camera' if cam else 'not in the registry'}")
        row, detail = asked(case.id, camera, preset, None, actor, now)
        look = Look(**row)
        s.add(look)
        s.flush()
        case.version += 1
        store.log(s, case, now, actor, "look_asked", detail | {"look": look.id})
        s.expunge(look)
        return look


def has_camera(store: Store, device: str | None) -> bool:
    """Whether a case of this device has a camera to look with: the one that covers it, or itself."""
    if not device:
        return False
    with store.reading() as s:
        d = s.get(Device, device)
        return d is not None and (d.camera is not None or d.kind == "camera")


def waiting(s: Session, grids: set[str] | None, now: datetime) -> list[Look]:
    """Looks not answered yet, asked within `LOOK_TTL`, of cameras in these grids (None: all), oldest first."""
    q = select(Look).where(Look.done_at.is_(None), Look.asked_at >= now - LOOK_TTL).order_by(Look.id)
    if grids is not None:
        q = q.join(Device, Device.id == Look.camera).where(Device.grid.in_(grids))
    return list(s.scalars(q.limit(500)))


def get(s: Session, look_id: int) -> Look | None:
    return s.get(Look, look_id)


def done(s: Session, store: Store, look: Look, case: Case, result: str, detail: str, *, actor: str,
         now: datetime) -> None:
    """The gateway's answer: a picture (`snapshot`, the photo added beside) or why not (`failed`)."""
    look.done_at, look.result, look.detail = now, result, detail[:500]
    entry: dict[str, Any] = {"look": look.id, "camera": look.camera, "preset": look.preset, "result": result}
    if detail:
        entry["reason"] = detail[:500]
    store.log(s, case, now, actor, "look_done", entry)


def note_of(look: Look) -> str:
    """The photo's note: 视频复核 · the camera · its preset."""
    return f"视频复核 · {look.camera}" + (f" · 预置位 {look.preset}" if look.preset is not None else "")


def answer(store: Store, look_id: int, *, result: str, detail: str, actor: str, jpeg: bytes | None = None,
           grids: set[str] | None = None) -> Look | None:
    """One transaction: the look answered (its picture added to its case as a photo); None when there is no such
    look among these grids' cameras. Raises ValueError when it was answered already."""
    now = store.now()
    with store.transaction() as s:
        look = s.get(Look, look_id, with_for_update=True)
        cam = s.get(Device, look.camera) if look is not None else None
        if look is None or (grids is not None and (cam is None or cam.grid not in grids)):
            return None
        if look.done_at is not None:
            raise ValueError(f"look {look_id} was answered already ({look.result})")
        case = store.lock_case(s, look.case_id)
        if jpeg is not None:
            photo_in(s, store, case, now, data=jpeg, content_type="image/jpeg", actor=actor, note=note_of(look))
        done(s, store, look, case, result, detail, actor=actor, now=now)
        s.flush()
        s.expunge(look)
        return look
