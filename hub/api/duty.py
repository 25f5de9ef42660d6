"""Who is on duty (值班) for a unit now (`GET /api/v1/duty`): the rosters in force (`hub.notify.files`), as the
board shows them beside a unit; contact points masked but for administrators and the person."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from hub.api.contacts import ContactOut, contact_out, in_full
from hub.api.deps import NoticeFilesDep, PeopleDep, Reader, StoreDep
from hub.api.errors import GUARD, responses
from hub.policy import access

router = APIRouter(prefix="/api/v1", tags=["notices"])


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
        return OnDuty(username=u, name=name, contact=contact_out(u, c, in_full(who, u)))
    return DutyOut(unit=unit, at=now, shift=d.shift, duty_day=d.duty_day, people=[one(p) for p in d.people],
                   leader=one(d.leader) if d.leader else None)
