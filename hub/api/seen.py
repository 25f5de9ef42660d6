"""The case as the caller may see it and act on it, for every route that reads or acts on one case: the
reading and 404 of a case outside the caller's view, the 403 of a case it may not act on, and the case layer's
refusals as HTTP answers. The decisions themselves are `hub.policy.access`'."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import HTTPException

from hub.api.errors import Refused
from hub.api.schemas import CaseDetail, case_detail
from hub.cases import parts
from hub.fleet import looks
from hub.policy import access
from hub.policy.access import Principal
from hub.policy.errors import Conflict, NotFound
from hub.policy.lifecycle import Action
from hub.store.cases import Store
from hub.store.models import Case, Pause, TimelineEntry


def seen(store: Store, who: Principal, case_id: str) -> tuple[Case, list[TimelineEntry], list[Pause]]:
    """The stored case, its timeline and pauses, if the caller may see it; 404 when it does not exist or lies
    outside the caller's view (no hint that it exists)."""
    try:
        found = store.get(case_id)
    except NotFound:
        raise HTTPException(404, "no such case") from None
    if not access.sees(store.org, who, found[0]):
        raise HTTPException(404, "no such case")
    return found


def refused(exc: Conflict) -> Refused:
    """The 409 for what the case layer refused, with its reason code."""
    return Refused(409, str(exc), exc.code, **exc.params)


@contextmanager
def refusing(missing: str | None = None) -> Iterator[None]:
    """What the case layer refuses, as the API answers it: a Conflict is a 409 with its reason code; with
    `missing`, a LookupError (no such request, part or user) is a 404 saying so."""
    try:
        yield
    except Conflict as exc:
        raise refused(exc) from None
    except LookupError:
        if missing is None:
            raise
        raise HTTPException(404, missing) from None


def load_visible(store: Store, who: Principal, case_id: str) -> CaseDetail:
    """The case as the caller may see it (404 otherwise), with what the caller may do to it now."""
    case, timeline, pauses = seen(store, who, case_id)
    org = store.org
    detail = case_detail(store, case, timeline, pauses, store.clock(), list(access.allowed(org, who, case)),
                         parts.parts_of(store, case.id) if case.assist else [])
    waiting = [access.Waiting(r.kind, r.requested_by) for r in detail.requests if r.decision is None]
    mine = [access.Part(p.unit, p.signed_at is not None, p.reported_at is not None) for p in detail.parts]
    detail.controls = list(access.controls(org, who, case, waiting, mine))
    if who.role in ("operator", "admin") and looks.has_camera(store, case.device):
        detail.controls.append("look")  # 视频复核: a camera covers the case's device
    return detail


def actionable(store: Store, who: Principal, case_id: str, action: Action | None = None) -> tuple[Case, bool]:
    """The case if the caller may act on it (`access.may_take`: it holds it, or is the backup grid it was
    offered to and `action` is one a backup may take, or verifies it), and whether as its backup; 404 when
    the caller does not see it, 403 when it sees but may not act."""
    case, _, _ = seen(store, who, case_id)
    how = access.may_take(store.org, who, case, action)
    if how is None:
        raise Refused(403, f"case is held by {case.owner}, outside {who.unit}'s subtree", "held_elsewhere",
                      owner=case.owner, unit=who.unit)
    return case, how == "backup"
