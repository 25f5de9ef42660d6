"""协办 (joint handling): the assisting units of a case besides its lead (the owner). Each assisting unit
signs for its part and reports it; the lead's 办结 (resolve) waits until every part is reported. Parts are
set when a case is dispatched (by routing or by hand); a re-dispatch replaces the parts not yet reported.
Everything is on the timeline (`part_signed`, `part_reported`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.policy.errors import Conflict, NotFound
from hub.store.cases import Store
from hub.store.models import Case, CasePart


def unreported(s: Session, case_id: str) -> list[str]:
    """The assisting units whose part is not reported yet."""
    return list(s.scalars(select(CasePart.unit).where(CasePart.case_id == case_id, CasePart.reported_at.is_(None))
                          .order_by(CasePart.id)))


def replace(s: Session, case: Case, units: Sequence[str], now: datetime) -> None:
    """The assisting units become `units`: parts already reported stay, the others not named are dropped."""
    case_id = case.id
    have = {p.unit: p for p in s.scalars(select(CasePart).where(CasePart.case_id == case_id))}
    for unit, p in have.items():
        if unit not in units and p.reported_at is None:
            s.delete(p)
    for unit in dict.fromkeys(units):
        if unit not in have:
            s.add(CasePart(case_id=case_id, unit=unit, assigned_at=now, signed_at=None, signed_by=None,
                           reported_at=None, reported_by=None, note=""))
    kept = [u for u, p in have.items() if p.reported_at is not None and u not in units]
    case.assist = [*kept, *dict.fromkeys(units)] or None


def parts_of(store: Store, case_id: str) -> list[CasePart]:
    with Session(store.engine, expire_on_commit=False) as s:
        return list(s.scalars(select(CasePart).where(CasePart.case_id == case_id).order_by(CasePart.id)))


def act_on_part(store: Store, case_id: str, unit: str, *, report: bool, actor: str, note: str = "",
                person: str | None = None) -> CasePart:
    """An assisting unit signs for its part (`report` False) or reports it done (`report` True, with a note)."""
    now = store.now()
    with store.transaction() as s:
        case = store.lock_case(s, case_id)
        part = s.scalars(select(CasePart).where(CasePart.case_id == case_id, CasePart.unit == unit)
                         .with_for_update()).first()
        if part is None:
            raise NotFound(f"no part of {unit} on this case")
        if case.status in ("closed", "reported"):
            raise Conflict(f"a part is not handled while the case is {case.status}", "wrong_state",
                           action="part", status=case.status, allowed=["open", "accepted", "on_hold"])
        if not report:
            if part.signed_at is not None:
                raise Conflict("the part was already signed for", "decided", decision="signed")
            part.signed_at, part.signed_by = now, actor
        else:
            if part.reported_at is not None:
                raise Conflict("the part was already reported", "decided", decision="reported")
            if not note:
                raise Conflict("a part's report needs a note saying what was done", "needs_note", action="part")
            if part.signed_at is None:
                part.signed_at, part.signed_by = now, actor
            part.reported_at, part.reported_by, part.note = now, actor, note
        case.version += 1
        store.log(s, case, now, actor, "part_reported" if report else "part_signed",
                  {"unit": unit, **({"note": note} if note else {}), **({"by": person} if person else {})})
        return part
