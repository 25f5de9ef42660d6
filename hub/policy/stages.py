"""The case as its timeline tells it, beside the lifecycle's table: the requests on it (延期, 挂起, 督办) with
their answers, and the stage view (流程看板: 派单 → 签收 → 办理 → 核查 → 回访, each done, running or to come).
Pure: the stored case and its timeline in, the models the API sends out."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Literal, Protocol

from pydantic import BaseModel, Field

from hub.policy.lifecycle import TimelineAction
from hub.policy.sla import Light, Stage

if TYPE_CHECKING:  # the stored case and its timeline, read by attribute only
    from hub.store.models import Case, TimelineEntry


class RunningClock(Protocol):
    """What the stage view needs of the running stage's clock (`ClockOut`)."""

    @property
    def stage(self) -> Stage: ...
    @property
    def remaining_s(self) -> float: ...
    @property
    def light(self) -> Light: ...


class RequestFields(BaseModel):
    """What a request on a case says: its kind, the stage it is about, why, until when, who asked and when."""

    kind: str
    stage: str
    reason: str
    until: datetime | None
    requested_by: str
    requested_at: datetime


class RequestOut(RequestFields):
    """A request on the case (延期, or a 督办 order) and its answer, as the timeline records them."""

    id: int
    decision: str | None = Field(None, description="approved | refused; null while pending")
    decided_by: str | None = None
    decided_at: datetime | None = None
    note: str | None = None
    late: bool | None = Field(None, description="督办: the reply came after its deadline")


DECISIONS: dict[TimelineAction, str] = {
    "extension_approved": "approved", "extension_refused": "refused", "suspension_approved": "approved",
    "suspension_refused": "refused", "supervision_replied": "replied"}


class StageOut(BaseModel):
    """One stage of the case (流程看板): where it is, who acted, whether it ran late."""

    stage: Stage
    state: Literal["done", "running", "waiting", "skipped"]
    started_at: datetime | None
    ended_at: datetime | None
    by: str | None = Field(None, description="who ended it")
    late: bool | None = Field(None, description="ended after its limit (or, running, is past it now)")
    light: Light | None = Field(None, description="the running stage's light")


def requests_from(timeline: list[TimelineEntry]) -> list[RequestOut]:
    """Each request the timeline records (its `request` number), with its answer once given."""
    out: dict[int, RequestOut] = {}
    for e in timeline:
        rid = e.detail.get("request")
        if not isinstance(rid, int):
            continue
        if e.action == "extension_requested":
            until = e.detail.get("until")
            out[rid] = RequestOut(id=rid, kind="extension", stage=str(e.detail.get("stage", "")),
                                  reason=str(e.detail.get("reason", "")),
                                  until=datetime.fromisoformat(until) if isinstance(until, str) else None,
                                  requested_by=e.actor, requested_at=e.at)
        elif e.action == "supervised":
            until = e.detail.get("until")
            out[rid] = RequestOut(id=rid, kind="supervision", stage="", reason=str(e.detail.get("order", "")),
                                  until=datetime.fromisoformat(until) if isinstance(until, str) else None,
                                  requested_by=e.actor, requested_at=e.at)
        elif e.action == "suspension_requested":
            out[rid] = RequestOut(id=rid, kind="suspension", stage=str(e.detail.get("stage", "")),
                                  reason=str(e.detail.get("reason", "")), until=None, requested_by=e.actor,
                                  requested_at=e.at)
        elif e.action in DECISIONS and rid in out:
            r = out[rid]
            r.decision = DECISIONS[e.action]
            r.decided_by, r.decided_at, r.note = e.actor, e.at, e.detail.get("note")
            r.late = bool(e.detail.get("late")) if e.action == "supervision_replied" else None
    return list(out.values())


def stages_of(case: Case, timeline: list[TimelineEntry], clock: RunningClock | None) -> list[StageOut]:
    """流程看板: 派单 → 签收 → 办理 → 核查 → 回访, each done (when, by whom, late or not), running (its light) or
    to come, from the stamps and the timeline (the latest entry of each action)."""
    last: dict[str, TimelineEntry] = {}
    for e in timeline:
        last[e.action] = e
    by = {a: (e.detail.get("by") or e.actor) for a, e in last.items()}
    running = clock.stage if clock is not None else None
    manual_dispatch = case.dispatched_at is not None or case.status == "reported"
    spans: list[tuple[Stage, datetime | None, datetime | None, str | None, bool | None]] = [
        ("dispatch", case.opened_at, case.dispatched_at or (case.opened_at if not manual_dispatch else None),
         by.get("dispatch") if manual_dispatch else "routing", None),
        ("accept", case.dispatched_at or case.opened_at, case.accepted_at, by.get("accept"), case.accept_late),
        ("resolve", case.accepted_at, case.resolved_at, by.get("resolve"), case.resolve_late),
        ("feedback", case.resolved_at, case.verified_at, by.get("close"), None),
    ]
    if case.policy.get("callback", False):
        spans.append(("callback", case.verified_at, case.closed_at if case.verified_at else None, by.get("callback"),
                      None))
    out = []
    for stage, start, end, who, late in spans:
        if stage == running:
            out.append(StageOut(stage=stage, state="running", started_at=case.stage_started_at, ended_at=None,
                                late=clock.remaining_s < 0 if clock else None, light=clock.light if clock else None))
        elif end is not None:
            out.append(StageOut(stage=stage, state="done", started_at=start, ended_at=end, by=who, late=late))
        else:
            out.append(StageOut(stage=stage, state="skipped" if case.status == "closed" else "waiting",
                                started_at=None, ended_at=None))
    return out
