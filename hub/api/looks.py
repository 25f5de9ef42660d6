"""视频复核 (issue 41): looks asked of cameras for cases (`hub.fleet.looks`). An operator asks one from the case
page (the camera that covers the case's device turned to its preset, audited); the cameras' gateways read the
looks waiting and answer each with the picture taken after the turn (added to the case as a photo) or why
there is none."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from hub.api.audited import audited
from hub.api.cases import body_within, sniff
from hub.api.deps import HubDep, Operator
from hub.api.errors import BODY, GUARD, responses
from hub.api.schemas import Text
from hub.api.seen import seen
from hub.fleet import looks
from hub.policy import access

router = APIRouter(prefix="/api/v1", tags=["looks"], responses=responses(*GUARD, 403))
LookId = Annotated[int, Path(ge=1, le=2**31 - 1)]


class LookIn(BaseModel):
    camera: Text | None = Field(None, max_length=64, description="the camera to turn (default: the one that covers "
                                                                 "the case's device)")
    preset: int | None = Field(None, ge=1, le=255, description="its preset (default: the device's)")


class LookOut(BaseModel):
    id: int
    case_id: str
    camera: str
    preset: int | None
    sensor: str | None
    """The device whose alert asked it (None: an operator did)."""
    asked_by: str
    asked_at: datetime
    done_at: datetime | None
    result: str | None
    detail: str


class LookList(BaseModel):
    looks: list[LookOut]


class LookFailed(BaseModel):
    reason: Text = Field(min_length=1, max_length=500)


def _out(look: Any) -> LookOut:
    return LookOut.model_validate(look, from_attributes=True)


@router.post("/cases/{case_id}/look", status_code=201, responses=responses(*BODY, 404, 422),
             openapi_extra=audited("ptz_preset_called"))
def ask_look(case_id: str, body: LookIn, hub: HubDep, who: Operator) -> LookOut:
    """视频复核 from the case page: the camera turned to the preset, a picture added to the case."""
    store = hub.store
    seen(store, who, case_id)
    try:
        look = looks.ask(store, case_id, body.camera, body.preset, actor=who.name)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    return _out(look)


@router.get("/looks")
def waiting_looks(hub: HubDep, who: Operator) -> LookList:
    """The looks no gateway has answered yet (asked within the last two minutes), of the cameras the caller sees:
    what the gateways poll."""
    store = hub.store
    with store.reading() as s:
        return LookList(looks=[_out(lk) for lk in looks.waiting(s, access.grids_seen(store.org, who), store.now())])


def _answer(hub: Any, who: Any, look_id: int, **kw: Any) -> LookOut:
    try:
        look = looks.answer(hub.store, look_id, actor=who.name, grids=access.grids_seen(hub.store.org, who), **kw)
    except ValueError as exc:
        raise HTTPException(409, str(exc)) from None
    if look is None:
        raise HTTPException(404, "no such look")
    return _out(look)


@router.post("/looks/{look_id}/snapshot", responses=responses(*BODY, 404, 409, 413, 415),
             openapi_extra={"requestBody": {"required": True, "content": {
                 "image/jpeg": {"schema": {"type": "string", "format": "binary"}}}},
                 **audited("look_answered")})
async def look_snapshot(look_id: LookId, request: Request, hub: HubDep, who: Operator) -> LookOut:
    """The gateway: the picture the camera took after turning (a JPEG), added to the case as a photo."""
    if (request.headers.get("content-type") or "").split(";")[0].strip().lower() != "image/jpeg":
        raise HTTPException(415, "a look's picture is image/jpeg")
    data = await body_within(request, hub.max_photo_bytes, "a picture", "photo_size")
    if sniff(data) != "image/jpeg":
        raise HTTPException(415, "the body is not a JPEG image")
    return await run_in_threadpool(_answer, hub, who, look_id, result="snapshot", detail="", jpeg=data)


@router.post("/looks/{look_id}/failed", responses=responses(*BODY, 404, 409, 422),
             openapi_extra=audited("look_answered"))
def look_failed(look_id: LookId, body: LookFailed, hub: HubDep, who: Operator) -> LookOut:
    """The gateway: no picture, and why (the platform is offline, the camera sent no frame)."""
    return _answer(hub, who, look_id, result="failed", detail=body.reason)
