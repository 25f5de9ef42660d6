"""People's actions on a case (accept, resolve, close, hold, resume, transfer, comment) and manual reports
(一键上报). The life-cycle table (`hub.policy.lifecycle`) says whether an action is allowed and which state it
leads to; this module stamps the case, writes the timeline and re-schedules its clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Final, Literal

from sqlalchemy.orm import Session

from gridwatch.core.names import Severity
from hub.cases import parts
from hub.policy.errors import Conflict
from hub.policy.lifecycle import Action, Rating, Refusal, Status, requirement, transition
from hub.policy.sla import Policy
from hub.store.cases import Store, new_case_id
from hub.store.models import Case, Evidence, Pause

Tier = Literal["general", "important", "major"]
TIER_SEVERITY: Final[dict[Tier, Severity]] = {"general": "minor", "important": "major", "major": "critical"}

Detail = dict[str, Any]
"""What an action records in the timeline entry (JSON)."""

Effect = Callable[[Store, Session, Case, datetime, str | None, str | None], Detail]


def act(store: Store, case_id: str, action: Action, *, actor: str, note: str | None = None,
        unit: str | None = None, as_backup: bool = False, person: str | None = None, rating: Rating | None = None,
        assist: list[str] | None = None) -> Case:
    """Carry out an action or raise Conflict with the reason (NotFound if there is no such case).

    `as_backup`: the backup grid (AB角) the case was offered to signs for it: it accepts, and the case is
    its own from then on. Separation of duties: whoever reported the result (resolve) cannot also pass
    its verification (close or reject). `rating`: a callback's answer; `assist`: on dispatch, the assisting
    departments (协办) of joint handling."""
    now = store.now()
    with store.transaction() as s:
        case = store.lock_case(s, case_id)
        policy = case.policy
        outcome = transition(case.status, action, case.held_from, callback=bool(policy.get("callback", False)),
                             rating=rating, reopen_unsatisfied=bool(policy.get("reopen_unsatisfied", True)))
        if isinstance(outcome, Refusal):
            raise Conflict(outcome.reason, outcome.code, **outcome.params)
        missing = requirement(action, note=note, unit=unit, rating=rating)
        if missing is not None:
            raise Conflict(missing.reason, missing.code, **missing.params)
        if action in ("close", "reject") and case.resolved_by is not None and case.resolved_by == actor:
            raise Conflict(f"{actor} reported the result, so someone else must verify it",
                           "same_person", action=action, actor=actor)
        if action == "resolve":
            waiting = parts.unreported(s, case.id)
            if waiting:
                raise Conflict(f"the assisting units have not all reported their part: {', '.join(waiting)}",
                               "parts_pending", action=action, units=waiting)
        backup_of: str | None = None
        if as_backup:
            if action != "accept" or case.backup is None:
                raise Conflict("a backup grid may only sign for a case it was offered", "not_backup",
                               action=action)
            backup_of, case.owner = case.owner, case.backup
        if action in ("accept", "resolve"):  # the stage ends: fix its time and lateness for the assessment
            found = store.clock_of(case, store.pauses(s, case.id), now)
            if found is not None:
                reading = found[1]
                if action == "accept":
                    case.accept_s, case.accept_late = reading.elapsed_s, reading.remaining_s < 0
                else:
                    case.resolve_s, case.resolve_late = reading.elapsed_s, reading.remaining_s < 0
        if action == "dispatch":
            detail = _dispatch(store, s, case, now, note, unit, assist or [], actor)
        elif action == "callback":
            detail = _callback(case, now, note, rating, outcome)
        else:
            detail = EFFECTS[action](store, s, case, now, note, unit)
        if backup_of is not None:
            detail = {**detail, "as_backup": True, "from": backup_of, "to": case.owner}
        if person is not None:
            detail = {**detail, "by": person}  # the person's own name beside their username (the actor)
        if action == "resolve":
            case.resolved_by = actor
        case.status = outcome
        case.version += 1
        store.log(s, case, now, actor, action, detail)
        store.schedule(s, case, now)
        return case


def _noted(note: str | None) -> Detail:
    return {"note": note} if note else {}


def _accept(store: Store, s: Session, case: Case, now: datetime, note: str | None, unit: str | None) -> Detail:
    case.accepted_at, case.stage_started_at, case.level_started_at, case.stage_extra_s = now, now, None, 0.0
    return _noted(note)


def _resolve(store: Store, s: Session, case: Case, now: datetime, note: str | None,
             unit: str | None) -> Detail:
    case.resolved_at, case.stage_started_at, case.level_started_at, case.stage_extra_s = now, now, None, 0.0
    return {"note": note}


def _close(store: Store, s: Session, case: Case, now: datetime, note: str | None, unit: str | None) -> Detail:
    """核查通过: the result holds; the case waits for its callback (回访) or, without one, closes."""
    case.verified_at = now
    if case.policy.get("callback", False):
        case.stage_started_at, case.level_started_at, case.stage_extra_s = now, None, 0.0
        return {**_noted(note), "verified": True, "next": "callback"}
    case.closed_at = now
    return {**_noted(note), "verified": True}


def _reject(store: Store, s: Session, case: Case, now: datetime, note: str | None, unit: str | None) -> Detail:
    """核查不通过: the result does not hold; back to handling with a fresh resolve clock, judged again."""
    case.back_to_handling(now)
    case.rejections += 1
    return {"note": note, "count": case.rejections, "stage": "resolve"}


def _callback(case: Case, now: datetime, note: str | None, rating: Rating | None, outcome: Status) -> Detail:
    """回访: the answer is kept for the satisfaction rate; 不满意 reopens the case when the policy says so."""
    case.rating = rating
    if outcome == "accepted":
        case.back_to_handling(now)
        case.reopened += 1
        return {"rating": rating, **_noted(note), "reopened": True, "count": case.reopened, "stage": "resolve"}
    case.closed_at = now
    return {"rating": rating, **_noted(note)}


def _dispatch(store: Store, s: Session, case: Case, now: datetime, note: str | None, unit: str | None,
              assist: list[str], actor: str) -> Detail:
    """派单 by hand: the case goes to a unit (a grid or a functional department) to be signed for, with the
    assisting departments of joint handling (协办). From `reported` the dispatch stage ends and the sign-for
    clock starts; a re-dispatch of a case not yet signed for keeps its clock running (like a transfer)."""
    org = store.org
    if unit is None or unit not in org.units:
        raise Conflict("dispatch needs a unit of the org tree", "needs_unit", action="dispatch")
    bad = [u for u in assist if u not in org.units or u == unit]
    if bad:
        raise Conflict(f"assisting units must be other units of the org tree: {', '.join(bad)}", "needs_unit",
                       action="dispatch", units=bad)
    previous = case.owner
    first = case.status == "reported"
    case.owner, case.level_started_at, case.backup_notified, case.backup = unit, now, False, None
    if first:
        case.dispatched_at, case.stage_started_at, case.level_started_at, case.stage_extra_s = now, now, None, 0.0
    parts.replace(s, case, assist, now)
    return {"from": previous, "to": unit, **({"assist": assist} if assist else {}), **_noted(note),
            **({"redispatch": True} if not first else {})}


def _hold(store: Store, s: Session, case: Case, now: datetime, note: str | None, unit: str | None) -> Detail:
    held_from: Status = case.status
    case.held_from = held_from
    s.add(Pause(case_id=case.id, start=now, end=None, reason=note or ""))
    return {"reason": note}


def _resume(store: Store, s: Session, case: Case, now: datetime, note: str | None,
            unit: str | None) -> Detail:
    case.held_from = None
    for p in store.open_pauses(s, case.id):
        p.end = now
    return _noted(note)


def _transfer(store: Store, s: Session, case: Case, now: datetime, note: str | None,
              unit: str | None) -> Detail:
    if unit is None or unit not in store.org.units:
        raise Conflict("transfer needs a unit of the org tree", "needs_unit", action="transfer")
    previous, case.owner, case.level_started_at = case.owner, unit, now  # the stage clock runs on
    case.backup_notified = False
    return {"from": previous, "to": unit, **_noted(note)}


def _comment(store: Store, s: Session, case: Case, now: datetime, note: str | None,
             unit: str | None) -> Detail:
    return {"text": note}


EFFECTS: Final[dict[str, Effect]] = {
    "accept": _accept, "resolve": _resolve, "close": _close, "reject": _reject, "hold": _hold, "resume": _resume,
    "transfer": _transfer, "comment": _comment,
}


def assign(store: Store, case_id: str, *, username: str, name: str, actor: str, person: str | None = None,
           note: str | None = None) -> Case:
    """Give an active case to a named person (the route checks they belong to the unit holding it)."""
    now = store.now()
    with store.transaction() as s:
        case = store.lock_case(s, case_id)
        if case.status == "closed":
            raise Conflict("cannot assign a case that is closed", "wrong_state", action="assign", status=case.status,
                           allowed=["reported", "open", "accepted", "resolved", "verified", "on_hold"])
        previous, case.assignee = case.assignee, username
        case.version += 1
        detail: Detail = {"to": username, "name": name, **({"from": previous} if previous else {}), **_noted(note)}
        if person is not None:
            detail["by"] = person
        store.log(s, case, now, actor, "assigned", detail)
        return case


def open_manual(store: Store, *, grid: str, category: str, tier: Tier, title: str, actor: str,
                device: str | None = None, place: dict[str, Any] | None = None) -> Case:
    """A grid worker's report: the 2-3-10 tiers set its resolve limit, unless a manual policy matches."""
    if grid not in store.org.units or store.org.units[grid].level != "grid":
        raise Conflict("the grid is not a grid of the org tree", "not_a_grid")
    severity = TIER_SEVERITY[tier]
    policy = manual_policy(store, category, severity, tier)
    now = store.now()
    placed = store.routing.place(store.org, category=category, severity=severity, grid=grid, manual=True)
    with store.transaction() as s:
        case_id = new_case_id(now)
        owner = placed.owner if placed is not None else store.org.owner_at(grid, policy.start_level)
        case = Case(id=case_id, dedup_key=f"manual|{case_id}", status="reported" if placed and placed.reported
                    else "open", manual=True, category=category, severity=severity, grid=grid, device=device,
                    owner=owner, title=title, policy=policy.model_dump(mode="json"), opened_at=now,
                    stage_started_at=now, first_seen=now, last_seen=now, first_received=now, alert_count=0,
                    escalations=0, backup_notified=False, version=1, place=place)
        s.add(case)
        s.flush()
        if placed is not None and placed.assist:
            parts.replace(s, case, placed.assist, now)
        opened: dict[str, Any] = {"manual": True, "tier": tier, "policy": policy.id, "owner": owner}
        if placed is not None:
            opened |= placed.logged()
        store.log(s, case, now, actor, "opened", opened)
        store.schedule(s, case, now)
        return case


def add_photo(store: Store, case_id: str, *, data: bytes, content_type: str, actor: str,
              note: str | None = None, person: str | None = None) -> int:
    """A photo taken on the spot (a report, a result) stored with the case as evidence; its number."""
    now = store.now()
    with store.transaction() as s:
        return photo_in(s, store, store.lock_case(s, case_id), now, data=data, content_type=content_type,
                        actor=actor, note=note, person=person)


def add_clip(store: Store, case_id: str, *, data: bytes, actor: str, note: str | None = None,
             start: datetime | None = None, end: datetime | None = None) -> int:
    """A recorded clip (MP4) of the case's camera around its alarm, stored with the case as evidence; its number."""
    now = store.now()
    with store.transaction() as s:
        case = store.lock_case(s, case_id)
        n = store.next_evidence_number(s, case_id)
        s.add(Evidence(case_id=case_id, n=n, alert_id=f"clip:{actor}"[:64], content_type="video/mp4", data=data))
        case.version += 1
        store.log(s, case, now, actor, "clip", {"n": n, "type": "video/mp4", "bytes": len(data), **_noted(note),
                                                **({"start": start.isoformat()} if start else {}),
                                                **({"end": end.isoformat()} if end else {})})
        return n


def photo_in(s: Session, store: Store, case: Case, now: datetime, *, data: bytes, content_type: str, actor: str,
             note: str | None = None, person: str | None = None) -> int:
    """`add_photo` inside the caller's transaction, on the locked case."""
    n = store.next_evidence_number(s, case.id)
    s.add(Evidence(case_id=case.id, n=n, alert_id=f"photo:{actor}"[:64], content_type=content_type, data=data))
    case.version += 1
    store.log(s, case, now, actor, "photo", {"n": n, "type": content_type, "bytes": len(data), **_noted(note),
                                             **({"by": person} if person else {})})
    return n


def manual_policy(store: Store, category: str, severity: str, tier: Tier) -> Policy:
    for p in store.sla.policies:
        if p.match.manual is True and p.match.selects(category, severity, True):
            return p
    base = store.sla.policies[-1]
    limits = base.limits.model_copy(update={"resolve": getattr(store.sla.manual_tiers, tier)})
    return base.model_copy(update={"id": f"manual-{tier}", "limits": limits})
