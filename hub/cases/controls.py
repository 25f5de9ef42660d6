"""Controls a command center decides on a case (issue 13), starting with 延期: the unit holding a case asks
for more time for the running stage (accept or resolve), with a reason and the deadline it needs; the
dispatching level (a unit above the holder, never the one who asked) approves or refuses. An approval adds
the working time between the old and the new deadline to the running stage's limit (`stage_extra_s`, on
the policy's calendar), so the clock, the light and the escalation all follow it; a new stage starts with
no extra. A case may be granted at most the policy's `extensions_max`, and has at most one request pending.

督办: a unit above the holder orders an active case with a deadline for the holder's reply; the case is
flagged and counted (`supervisions`, in the assessment), the order waits in the holder's queue, and a reply
after the deadline is marked late.

挂起: the holder asks for a suspension with a reason (the clock would pause while the case waits on
something outside its hands); the dispatching level approves (the case goes on hold) or refuses. A level
above may hold a case directly (`hold`), since it is the one that approves.

Everything is recorded on the timeline (`extension_requested`, `extension_approved`, `extension_refused`,
`supervised`, `supervision_replied`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.policy import access
from hub.policy.calendar import Calendar
from hub.policy.errors import Conflict, NotFound
from hub.policy.lifecycle import clock_stage
from hub.policy.sla import Policy
from hub.store.cases import Store
from hub.store.models import Case, CaseRequest, Pause

STAGES_EXTENDABLE = ("accept", "resolve")


def pending(s: Session, case_id: str) -> CaseRequest | None:
    """The 延期 or 挂起 request waiting for the dispatching level's decision (督办 orders wait apart)."""
    return s.scalars(select(CaseRequest).where(CaseRequest.case_id == case_id, CaseRequest.decision.is_(None),
                                               CaseRequest.kind.in_(("extension", "suspension")))).first()


def new_request(s: Session, case: Case, kind: str, *, stage: str, reason: str, until: datetime | None, actor: str,
                now: datetime, unit: str | None = None, done: bool = False) -> CaseRequest:
    """A request on a case, stored and numbered (its id goes on the timeline): pending, or `done` at once (a
    send-back's record). `unit`: who asked (default: the case's holder)."""
    req = CaseRequest(case_id=case.id, kind=kind, stage=stage, reason=reason, until=until,
                      unit=case.owner if unit is None else unit, requested_by=actor, requested_at=now,
                      decision="done" if done else None, decided_by=actor if done else None,
                      decided_at=now if done else None, note="")
    s.add(req)
    s.flush()
    case.version += 1
    return req


def request_extension(store: Store, case_id: str, *, actor: str, reason: str, until: datetime,
                      person: str | None = None) -> CaseRequest:
    now = store.now()
    with store.transaction() as s:
        case = store.lock_case(s, case_id)
        stage = clock_stage(case.status, case.held_from)
        if case.status not in ("open", "accepted") or stage not in STAGES_EXTENDABLE:
            raise Conflict(f"an extension is asked while the case waits to be accepted or resolved, not while it is "
                           f"{case.status}", "wrong_state", action="extension", status=case.status,
                           allowed=["open", "accepted"])
        policy = Policy.model_validate(case.policy)
        if case.extensions >= policy.extensions_max:
            raise Conflict(f"the case has had {case.extensions} extensions, the most its policy allows",
                           "extensions_used", used=case.extensions, max=policy.extensions_max)
        if pending(s, case_id) is not None:
            raise Conflict("an extension request is already waiting for a decision", "request_pending")
        found = store.clock_of(case, store.pauses(s, case_id), now)
        assert found is not None
        deadline = store.deadline(case, found[1], now)
        if until <= deadline or until <= now:
            raise Conflict(f"the new deadline must be after the current one ({deadline.isoformat()})",
                           "not_later", deadline=deadline.isoformat())
        req = new_request(s, case, "extension", stage=stage, reason=reason, until=until, actor=actor, now=now)
        detail = {"request": req.id, "stage": stage, "until": until.isoformat(), "reason": reason,
                  "deadline": deadline.isoformat(), **({"by": person} if person else {})}
        store.log(s, case, now, actor, "extension_requested", detail)
        return req


def decide_extension(store: Store, case_id: str, request_id: int, *, approve: bool, actor: str,
                     decider_unit: str | None, note: str = "", person: str | None = None) -> CaseRequest:
    now = store.now()
    with store.transaction() as s:
        case = store.lock_case(s, case_id)
        req = s.get(CaseRequest, request_id, with_for_update=True)
        if req is None or req.case_id != case_id:
            raise NotFound(f"no request {request_id} on this case")
        if req.decision is not None:
            raise Conflict(f"the request was already {req.decision}", "decided", decision=req.decision)
        if not access.may_decide(store.org, decider_unit, case):
            raise Conflict(f"{decider_unit} is not above {case.owner}: the dispatching level decides",
                           "not_dispatcher", unit=decider_unit, owner=case.owner)
        if actor == req.requested_by:
            raise Conflict("whoever asked cannot decide their own request", "same_person", action="extension",
                           actor=actor)
        if req.kind == "suspension":
            return _decide_suspension(store, s, case, req, approve=approve, actor=actor, note=note, person=person,
                                      now=now)
        if req.kind != "extension":
            raise NotFound(f"no request {request_id} on this case")
        stage = clock_stage(case.status, case.held_from)
        if approve and stage != req.stage:
            raise Conflict(f"the case has moved on from the {req.stage} stage it was asked for", "wrong_state",
                           action="extension", status=case.status, allowed=[req.stage])
        req.decision = "approved" if approve else "refused"
        req.decided_by, req.decided_at, req.note = actor, now, note
        detail: dict[str, object] = {"request": req.id, "stage": req.stage, "until": req.until.isoformat()
                                     if req.until else None, **({"note": note} if note else {}),
                                     **({"by": person} if person else {})}
        if approve and req.until is not None:
            policy = Policy.model_validate(case.policy)
            cal = store.calendars.get(policy.calendar, Calendar.always())
            found = store.clock_of(case, store.pauses(s, case_id), now)
            assert found is not None
            deadline = store.deadline(case, found[1], now)
            extra = cal.working_seconds(deadline, req.until) if req.until > deadline else 0.0
            case.stage_extra_s = (case.stage_extra_s or 0.0) + extra
            case.extensions += 1
            detail["extra_s"] = extra
            store.schedule(s, case, now)
        case.version += 1
        store.log(s, case, now, actor, "extension_approved" if approve else "extension_refused", detail)
        return req


def request_suspension(store: Store, case_id: str, *, actor: str, reason: str, person: str | None = None
                       ) -> CaseRequest:
    """挂起 asked by the unit holding an active case, with a reason; the dispatching level approves (the case
    goes on hold at once, its clock paused) or refuses. One request pending at a time."""
    now = store.now()
    with store.transaction() as s:
        case = store.lock_case(s, case_id)
        if case.status in ("on_hold", "closed"):
            raise Conflict(f"a case that is {case.status} is not suspended", "wrong_state", action="suspension",
                           status=case.status, allowed=["reported", "open", "accepted", "resolved", "verified"])
        if pending(s, case_id) is not None:
            raise Conflict("a request is already waiting for a decision", "request_pending")
        stage = clock_stage(case.status, case.held_from) or case.status
        req = new_request(s, case, "suspension", stage=stage, reason=reason, until=None, actor=actor, now=now)
        store.log(s, case, now, actor, "suspension_requested", {"request": req.id, "stage": stage, "reason": reason,
                                                                **({"by": person} if person else {})})
        return req


def _decide_suspension(store: Store, s: Session, case: Case, req: CaseRequest, *, approve: bool, actor: str,
                       note: str, person: str | None, now: datetime) -> CaseRequest:
    if approve and case.status in ("on_hold", "closed"):
        raise Conflict(f"the case is {case.status} now", "wrong_state", action="suspension", status=case.status,
                       allowed=["reported", "open", "accepted", "resolved", "verified"])
    req.decision = "approved" if approve else "refused"
    req.decided_by, req.decided_at, req.note = actor, now, note
    detail: dict[str, object] = {"request": req.id, "reason": req.reason, **({"note": note} if note else {}),
                                 **({"by": person} if person else {})}
    case.version += 1
    if approve:
        case.held_from, case.status = case.status, "on_hold"
        s.add(Pause(case_id=case.id, start=now, end=None, reason=req.reason))
        s.flush()
        store.log(s, case, now, actor, "suspension_approved", detail)
        store.schedule(s, case, now)
    else:
        store.log(s, case, now, actor, "suspension_refused", detail)
    return req


def requests_of(store: Store, case_id: str) -> list[CaseRequest]:
    with Session(store.engine, expire_on_commit=False) as s:
        return list(s.scalars(select(CaseRequest).where(CaseRequest.case_id == case_id).order_by(CaseRequest.id)))


def pending_for(store: Store, scope: set[str] | None, limit: int = 500) -> list[tuple[CaseRequest, Case]]:
    """Requests waiting for a decision on cases held within `scope` (None: all), oldest first: a command
    center's queue."""
    q = (select(CaseRequest, Case).join(Case, Case.id == CaseRequest.case_id)
         .where(CaseRequest.decision.is_(None)).order_by(CaseRequest.id).limit(limit))
    if scope is not None:
        q = q.where(Case.owner.in_(scope))
    with Session(store.engine, expire_on_commit=False) as s:
        return [(r, c) for r, c in s.execute(q)]


def supervise(store: Store, case_id: str, *, actor: str, unit: str | None, order: str, until: datetime,
              person: str | None = None) -> CaseRequest:
    """督办: a unit above the one holding an active case orders it, with a deadline for the holder's reply.
    The case is flagged (`supervisions`) and the order waits in the holder's queue until answered."""
    now = store.now()
    with store.transaction() as s:
        case = store.lock_case(s, case_id)
        if case.status == "closed":
            raise Conflict("a closed case is not supervised", "wrong_state", action="supervise", status=case.status,
                           allowed=["open", "accepted", "resolved", "on_hold"])
        if not access.may_decide(store.org, unit, case):
            raise Conflict(f"{unit} is not above {case.owner}: a supervision order comes from above",
                           "not_dispatcher", unit=unit, owner=case.owner)
        if until <= now:
            raise Conflict("the reply deadline must be in the future", "not_later", deadline=now.isoformat())
        stage = clock_stage(case.status, case.held_from) or case.status
        req = new_request(s, case, "supervision", stage=stage, reason=order, until=until, actor=actor, now=now,
                          unit=unit or "")
        case.supervisions += 1
        store.log(s, case, now, actor, "supervised", {"request": req.id, "until": until.isoformat(), "order": order,
                                                      "to": case.owner, **({"by": person} if person else {})})
        return req


def reply_supervision(store: Store, case_id: str, request_id: int, *, actor: str, note: str,
                      person: str | None = None) -> CaseRequest:
    """The holder's reply to a 督办 order; a reply after its deadline is marked late."""
    now = store.now()
    with store.transaction() as s:
        case = store.lock_case(s, case_id)
        req = s.get(CaseRequest, request_id, with_for_update=True)
        if req is None or req.case_id != case_id or req.kind != "supervision":
            raise NotFound(f"no request {request_id} on this case")
        if req.decision is not None:
            raise Conflict("the order was already answered", "decided", decision=req.decision)
        late = req.until is not None and now > req.until
        req.decision, req.decided_by, req.decided_at, req.note = "replied", actor, now, note
        case.version += 1
        store.log(s, case, now, actor, "supervision_replied", {"request": req.id, "late": late, "note": note,
                                                               **({"by": person} if person else {})})
        return req


def send_back(store: Store, case_id: str, *, actor: str, reason: str, person: str | None = None) -> Case:
    """退回: the unit a case was dispatched to hands it back, with a reason, while it still waits to be signed
    for and within its sign-for limit; it goes to the level above, which re-routes it (a transfer). The
    case's own clock runs on (the wait is real); the unit above gets its own limit; nobody is counted late
    for it, and the timeline records who sent it back and why."""
    now = store.now()
    with store.transaction() as s:
        case = store.lock_case(s, case_id)
        if case.status != "open":
            raise Conflict(f"only a case waiting to be signed for can be sent back, not one that is {case.status}",
                           "wrong_state", action="send_back", status=case.status, allowed=["open"])
        found = store.clock_of(case, store.pauses(s, case_id), now, level=True)
        assert found is not None
        if found[1].remaining_s < 0 or case.backup_notified:  # its window has passed (and its backup was asked)
            raise Conflict("the sign-for limit has passed: too late to send the case back", "too_late",
                           action="send_back")
        parent = store.org.parent(case.owner)
        if parent is None:
            raise Conflict(f"{case.owner} has no level above to send the case back to", "no_parent",
                           unit=case.owner)
        previous, case.owner, case.level_started_at = case.owner, parent, now
        case.backup_notified, case.backup = False, None
        new_request(s, case, "send_back", stage="accept", reason=reason, until=None, actor=actor, now=now,
                    unit=previous, done=True)  # the record the assessment counts (退回, per unit)
        store.log(s, case, now, actor, "sent_back", {"from": previous, "to": parent, "reason": reason,
                                                     **({"by": person} if person else {})})
        store.schedule(s, case, now)
        return case
