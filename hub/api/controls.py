"""Controls over the API (issue 13): 延期 requested by the unit holding a case and decided by the dispatching
level, 督办 orders from above answered by the holder, and the queue a command center works from. The rules
are `hub.cases.controls`'."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from hub.api.audited import ON_TIMELINE
from hub.api.deps import Operator, Reader, StoreDep
from hub.api.errors import BODY, GUARD, Refused, responses
from hub.api.schemas import CaseDetail, CasePublic, Text, case_detail, case_public
from hub.api.seen import actionable, load_visible, refusing, seen
from hub.cases import controls, parts
from hub.policy import access
from hub.policy.access import Principal
from hub.policy.stages import RequestFields
from hub.store.cases import Store
from hub.store.models import Case

router = APIRouter(prefix="/api/v1", tags=["controls"])


class ExtensionBody(BaseModel):
    reason: Text = Field(min_length=1, max_length=4000)
    until: datetime = Field(description="the deadline asked for (with its offset)")


class DecisionBody(BaseModel):
    note: Text | None = Field(None, max_length=4000)


def _from_above(store: Store, who: Principal, case_id: str) -> Case:
    """The case if the caller is a level above the unit holding it (the dispatching level: it decides 延期
    and orders 督办); 404 when the caller does not see it, 403 when it is not above."""
    case, _, _ = seen(store, who, case_id)
    if not access.may_decide(store.org, who.unit, case):
        raise Refused(403, f"{who.unit} is not above {case.owner}: the dispatching level decides", "not_dispatcher",
                      unit=who.unit, owner=case.owner)
    return case


@router.post("/cases/{case_id}/extension", status_code=201, responses=responses(*GUARD, *BODY, 403, 404, 409),
             openapi_extra=ON_TIMELINE)
def request_extension(case_id: str, body: ExtensionBody, store: StoreDep, who: Operator) -> CaseDetail:
    """延期: the unit holding the case asks for more time for the running stage."""
    case, _ = actionable(store, who, case_id)
    if body.until.tzinfo is None:
        raise Refused(422, "until needs a time zone offset", "needs_offset")
    with refusing():
        controls.request_extension(store, case.id, actor=who.name, reason=body.reason, until=body.until,
                                   person=who.person)
    return load_visible(store, who, case_id)


class SuspensionBody(BaseModel):
    reason: Text = Field(min_length=1, max_length=4000, description="what the case waits on")


@router.post("/cases/{case_id}/suspension", status_code=201, responses=responses(*GUARD, *BODY, 403, 404, 409),
             openapi_extra=ON_TIMELINE)
def request_suspension(case_id: str, body: SuspensionBody, store: StoreDep, who: Operator) -> CaseDetail:
    """挂起: the unit holding the case asks the dispatching level to suspend it (its clock paused)."""
    case, _ = actionable(store, who, case_id)
    with refusing():
        controls.request_suspension(store, case.id, actor=who.name, reason=body.reason, person=who.person)
    return load_visible(store, who, case_id)


@router.post("/cases/{case_id}/extension/{request_id}/{decision}", responses=responses(*GUARD, *BODY, 403, 404, 409),
             openapi_extra=ON_TIMELINE)
@router.post("/cases/{case_id}/suspension/{request_id}/{decision}", responses=responses(*GUARD, *BODY, 403, 404, 409),
             openapi_extra=ON_TIMELINE)
def decide(case_id: str, request_id: int, decision: str, store: StoreDep, who: Operator,
           body: DecisionBody | None = None) -> CaseDetail:
    """The dispatching level approves or refuses a 延期 or a 挂起 (`decision`: approve | refuse)."""
    if decision not in ("approve", "refuse"):
        raise HTTPException(404, "decision is approve or refuse")
    _from_above(store, who, case_id)
    with refusing("no such request on this case"):
        controls.decide_extension(store, case_id, request_id, approve=decision == "approve", actor=who.name,
                                  decider_unit=who.unit, note=(body.note if body else None) or "", person=who.person)
    return load_visible(store, who, case_id)


class SuperviseBody(BaseModel):
    order: Text = Field(min_length=1, max_length=4000, description="what the holder must do")
    until: datetime = Field(description="the deadline for the holder's reply (with its offset)")


class ReplyBody(BaseModel):
    note: Text = Field(min_length=1, max_length=4000)


@router.post("/cases/{case_id}/supervise", status_code=201, responses=responses(*GUARD, *BODY, 403, 404, 409),
             openapi_extra=ON_TIMELINE)
def supervise(case_id: str, body: SuperviseBody, store: StoreDep, who: Operator) -> CaseDetail:
    """督办: a unit above the one holding the case orders it, with a deadline for the reply."""
    _from_above(store, who, case_id)
    if body.until.tzinfo is None:
        raise Refused(422, "until needs a time zone offset", "needs_offset")
    with refusing():
        controls.supervise(store, case_id, actor=who.name, unit=who.unit, order=body.order, until=body.until,
                           person=who.person)
    return load_visible(store, who, case_id)


@router.post("/cases/{case_id}/supervise/{request_id}/reply", responses=responses(*GUARD, *BODY, 403, 404, 409),
             openapi_extra=ON_TIMELINE)
def reply(case_id: str, request_id: int, body: ReplyBody, store: StoreDep, who: Operator) -> CaseDetail:
    """The holder's reply to a 督办 order (late when after its deadline)."""
    actionable(store, who, case_id)
    with refusing("no such order on this case"):
        controls.reply_supervision(store, case_id, request_id, actor=who.name, note=body.note, person=who.person)
    return load_visible(store, who, case_id)


class SendBackBody(BaseModel):
    reason: Text = Field(min_length=1, max_length=4000, description="why the case is not this unit's")


@router.post("/cases/{case_id}/send_back", responses=responses(*GUARD, *BODY, 403, 404, 409),
             openapi_extra=ON_TIMELINE)
def send_back(case_id: str, body: SendBackBody, store: StoreDep, who: Operator) -> CaseDetail:
    """退回: the unit a case was dispatched to (its own people, not a level above acting for it) hands a case
    not yet signed for back to the level above, with a reason."""
    case, _ = actionable(store, who, case_id)
    if who.unit != case.owner:
        raise Refused(403, f"only {case.owner} itself sends its case back", "held_elsewhere", owner=case.owner,
                      unit=who.unit)
    with refusing():
        controls.send_back(store, case_id, actor=who.name, reason=body.reason, person=who.person)
    case, timeline, pauses = store.get(case_id)
    if access.sees(store.org, who, case):
        return load_visible(store, who, case_id)
    return case_detail(store, case, timeline, pauses, store.clock())  # a unit no longer sees what it handed back


class PartBody(BaseModel):
    note: Text | None = Field(None, max_length=4000, description="report: what the unit did (required)")


@router.post("/cases/{case_id}/parts/{unit}/{step}", responses=responses(*GUARD, *BODY, 403, 404, 409),
             openapi_extra=ON_TIMELINE)
def part(case_id: str, unit: str, step: str, store: StoreDep, who: Operator, body: PartBody | None = None
         ) -> CaseDetail:
    """协办: an assisting unit signs for its part (`sign`) or reports it done (`report`, with a note); the
    lead's 办结 waits until every part is reported."""
    if step not in ("sign", "report"):
        raise HTTPException(404, "step is sign or report")
    case, _, _ = seen(store, who, case_id)
    if unit not in (case.assist or []):
        raise HTTPException(404, "no such part on this case")
    if not access.part_holder(store.org, who, unit):
        raise Refused(403, f"the part is {unit}'s, outside {who.unit}'s subtree", "held_elsewhere", owner=unit,
                      unit=who.unit)
    with refusing("no such part on this case"):
        parts.act_on_part(store, case_id, unit, report=step == "report", actor=who.name,
                          note=(body.note if body else None) or "", person=who.person)
    return load_visible(store, who, case_id)


class QueueItem(RequestFields):
    request: int
    can_decide: bool
    case: CasePublic


@router.get("/requests", responses=responses(*GUARD, 403))
def queue(store: StoreDep, who: Reader) -> list[QueueItem]:
    """Requests waiting on the cases in the caller's scope, oldest first: 延期 to decide (`can_decide` for the
    dispatching level) and 督办 orders to answer (`can_decide` for the holder)."""
    now = store.clock()
    waiting = controls.pending_for(store, access.scope(store.org, who))
    with store.reading() as s:
        pauses = store.pauses_of(s, [c.id for _, c in waiting])
    out = []
    for r, c in waiting:
        if r.kind == "supervision":  # the holder answers a 督办 order
            can = who.role in access.ACTORS and access.holds(store.org, who, c)
        else:
            can = (who.role in access.ACTORS and access.may_decide(store.org, who.unit, c)
                   and r.requested_by != who.name)
        out.append(QueueItem(request=r.id, kind=r.kind, stage=r.stage, reason=r.reason, until=r.until,
                             requested_by=r.requested_by, requested_at=r.requested_at, can_decide=can,
                             case=case_public(store, c, pauses.get(c.id, []), now)))
    return out
