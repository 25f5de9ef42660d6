"""Reaching people (issue 26): their contact points, who is on duty (值班) for a unit now, and the
administrators' view of the notices sent.

A contact point is shown in full to administrators and to the person; anyone else sees it masked
(138****5678). The duty answer is what the board shows beside a unit.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, Field

from hub.api.audited import audited
from hub.api.auth import Principal, require
from hub.api.deps import NoticeFilesDep, PeopleDep, Reader, StoreDep
from hub.api.errors import BODY, GUARD, responses
from hub.api.seen import refusing
from hub.notify.messages import mask
from hub.notify.queue import listing
from hub.policy import access
from hub.store.models import Contact

router = APIRouter(prefix="/api/v1", tags=["notices"])
Admin = Annotated[Principal, Depends(require("admin"))]


class ContactIn(BaseModel):
    mobile: str | None = Field(None, pattern=r"^\+?\d{5,20}$", description="手机号, for SMS")
    email: str | None = Field(None, pattern=r"^[^@\s]{1,64}@[^@\s]{1,190}$")
    wecom_user: str | None = Field(None, max_length=64, description="企业微信 userid, @-mentioned by the robot")
    dingtalk_mobile: str | None = Field(None, pattern=r"^\+?\d{5,20}$", description="钉钉 atMobiles")
    feishu_user: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,64}$",
                                    description="飞书 open_id (ou_…) or user_id, @-ed by the Feishu robot")


class ContactOut(BaseModel):
    username: str
    mobile: str | None
    email: str | None
    wecom_user: str | None
    dingtalk_mobile: str | None
    feishu_user: str | None
    masked: bool = Field(description="true when the numbers are masked (neither an admin nor the person)")


def _contact(username: str, c: Contact | None, full: bool) -> ContactOut:
    def m(v: str | None) -> str | None:
        return v if v is None or full else mask(v)
    return ContactOut(username=username, masked=not full, mobile=m(c.mobile if c else None),
                      email=m(c.email if c else None), wecom_user=c.wecom_user if c else None,
                      dingtalk_mobile=m(c.dingtalk_mobile if c else None), feishu_user=c.feishu_user if c else None)


def _full(who: Principal, username: str) -> bool:
    return who.role == "admin" or (who.person is not None and who.name == username)


@router.get("/users/{username}/contacts", responses=responses(*GUARD, 403, 404))
def get_contacts(username: str, people: PeopleDep, who: Reader) -> ContactOut:
    """A person's contact points: in full for an administrator and for the person."""
    if not _full(who, username):
        raise HTTPException(403, "only an administrator or the person reads their contact points")
    with refusing("no such user"):
        return _contact(username, people.contacts(username), True)


@router.put("/users/{username}/contacts", responses=responses(*GUARD, *BODY, 403, 404),
            openapi_extra=audited("contacts_changed"))
def put_contacts(username: str, body: ContactIn, people: PeopleDep, who: Reader) -> ContactOut:
    """Set a person's contact points (an administrator, or the person for their own)."""
    if not _full(who, username):
        raise HTTPException(403, "only an administrator or the person sets their contact points")
    with refusing("no such user"):
        return _contact(username, people.set_contacts(username, **body.model_dump()), True)


class OnDuty(BaseModel):
    username: str
    name: str
    contact: ContactOut


class DutyOut(BaseModel):
    unit: str
    at: datetime
    shift: Literal["day", "night", "holiday"] = Field(description="day: working hours; night: out of them on a "
                                                                  "working day; holiday: a day off")
    duty_day: date
    people: list[OnDuty]
    leader: OnDuty | None


@router.get("/duty", responses=responses(*GUARD, 403, 404))
def duty(store: StoreDep, files: NoticeFilesDep, people: PeopleDep, who: Reader,
         unit: Annotated[str, Query(max_length=64)]) -> DutyOut:
    """Who is on duty for a unit now (值班): the day staff in working hours, else the night or holiday
    rotation's person, and the unit's leader."""
    if unit not in store.org.units:
        raise HTTPException(404, f"no unit {unit}")
    scope = access.scope(store.org, who)
    if scope is not None and unit not in scope:
        raise HTTPException(403, "the unit is outside your part of the org tree")
    now = store.now()
    d = files.cfg.rosters.duty(unit, now)  # as the watcher last loaded them (the last good file if refused)
    if d is None:
        raise HTTPException(404, f"no roster for {unit}")
    names = people.names([*d.people, *([d.leader] if d.leader else [])])

    def one(u: str) -> OnDuty:
        name, c = names[u]
        return OnDuty(username=u, name=name, contact=_contact(u, c, _full(who, u)))
    return DutyOut(unit=unit, at=now, shift=d.shift, duty_day=d.duty_day, people=[one(p) for p in d.people],
                   leader=one(d.leader) if d.leader else None)


class NoticeOut(BaseModel):
    id: int
    case_id: str | None
    kind: str
    channel: str
    target: str = Field(description="masked: a mobile as 138****5678")
    recipient: str | None
    state: Literal["pending", "sending", "delivered", "failed", "stopped"]
    attempts: int
    created_at: datetime
    due_at: datetime
    done_at: datetime | None
    error: str
    title: str


@router.get("/notices", responses=responses(*GUARD, 403))
def notices(store: StoreDep, who: Admin, case_id: Annotated[str | None, Query(max_length=32)] = None,
            state: Annotated[str | None, Query(max_length=16)] = None,
            limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> list[NoticeOut]:
    """The notices, newest first (administrators): to whom, on which channel, delivered or failed and why."""
    return [NoticeOut(id=n.id, case_id=n.case_id, kind=n.kind, channel=n.channel, target=mask(n.target),
                      recipient=n.recipient, state=n.state, attempts=n.attempts,  # type: ignore[arg-type]
                      created_at=n.created_at, due_at=n.due_at, done_at=n.done_at, error=n.error,
                      title=str(n.body.get("title", "")))
            for n in listing(store, case_id=case_id, state=state, limit=limit)]


