"""What the case endpoints answer, as response models: `/docs` and `/openapi.json` document them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field

from hub.lifecycle import Status
from hub.models import Case, CasePart, Pause, TimelineEntry
from hub.sla import Light, Stage
from hub.store import Store


def _no_nul(v: str) -> str:
    if "\x00" in v:
        raise ValueError("must not contain a NUL character")
    return v


Text = Annotated[str, AfterValidator(_no_nul)]
"""A string from a client that the store can keep (PostgreSQL refuses NUL characters in text)."""


class ClockOut(BaseModel):
    """The running stage's clock (挂单计时) and light (亮灯警告)."""

    stage: Stage
    elapsed_s: float
    remaining_s: float = Field(description="negative when overdue")
    light: Light
    paused: bool
    next_change: datetime | None = Field(description="when the light changes next; null while paused or red")
    deadline: datetime | None = Field(None, description="限期: when the stage's limit runs out or ran out (moves "
                                                        "while the case is on hold)")
    owner_elapsed_s: float | None = Field(None, description="time with the current owner (since an escalation, "
                                                            "backup or transfer gave it the case)")


class CasePublic(BaseModel):
    id: str
    status: Status
    manual: bool
    category: str
    severity: str
    grid: str
    device: str | None
    owner: str = Field(description="the unit holding the case")
    owner_level: str | None
    title: str
    policy: str = Field(description="id of the SLA policy the case was opened with")
    opened_at: datetime
    accepted_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    stage_started_at: datetime
    first_seen: datetime = Field(description="device time of the first alert")
    last_seen: datetime = Field(description="device time of the latest alert")
    first_received: datetime
    alert_count: int
    cleared_at: datetime | None = Field(description="the edge reported the condition resolved")
    escalations: int
    place: dict[str, Any] | None = Field(None, description="the device's place when the case opened: lat, lon, "
                                                           "address, name")
    clock: ClockOut | None = Field(None, description="null once closed")
    total_s: float = Field(0.0, description="since the case was reported (opened), to its closing or now")
    backup: str | None = Field(None, description="the backup grid (AB角) the case was offered to")
    repeat_of: str | None = Field(None, description="重复件: the earlier case of this place and kind")
    reopened: int = Field(0, description="times the condition's return reopened the case")
    resolved_by: str | None = Field(None, description="who reported the result")
    extensions: int = Field(0, description="延期 granted over the case's life")
    supervisions: int = Field(0, description="督办 orders the case received (flagged on the board)")
    assignee: str | None = Field(None, description="the person of the owning unit the case is assigned to")
    dispatched_at: datetime | None = Field(None, description="派单 by hand (null: dispatched at opening by routing)")
    verified_at: datetime | None = Field(None, description="核查 passed")
    rejections: int = Field(0, description="核查 failed the result back to handling")
    rating: str | None = Field(None, description="回访: satisfied | basically | unsatisfied")
    assist: list[str] = Field(default_factory=list, description="协办: the assisting units of joint handling")


class TimelineOut(BaseModel):
    at: datetime
    actor: str
    action: str
    detail: dict[str, Any]


class PauseOut(BaseModel):
    start: datetime
    end: datetime | None
    reason: str


class PhotoOut(BaseModel):
    url: str
    at: datetime
    actor: str
    note: str | None = None


class RequestOut(BaseModel):
    """A request on the case (延期, or a 督办 order) and its answer, as the timeline records them."""

    id: int
    kind: str
    stage: str
    reason: str
    until: datetime | None
    requested_by: str
    requested_at: datetime
    decision: str | None = Field(None, description="approved | refused; null while pending")
    decided_by: str | None = None
    decided_at: datetime | None = None
    note: str | None = None
    late: bool | None = Field(None, description="督办: the reply came after its deadline")


DECISIONS = {"extension_approved": "approved", "extension_refused": "refused", "suspension_approved": "approved",
             "suspension_refused": "refused", "supervision_replied": "replied"}


class PartOut(BaseModel):
    """协办: an assisting unit's part of a jointly handled case."""

    unit: str
    assigned_at: datetime
    signed_at: datetime | None
    signed_by: str | None
    reported_at: datetime | None
    reported_by: str | None
    note: str


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


class CaseDetail(CasePublic):
    timeline: list[TimelineOut]
    pauses: list[PauseOut]
    alerts: list[dict[str, Any]] = Field(description="the alert bodies as received, with `received_at`")
    evidence: list[str] = Field(description="paths of the stored evidence: the edge's snapshots and photos")
    photos: list[PhotoOut] = Field(default_factory=list, description="photos taken on the spot, oldest first")
    actions: list[str] = Field(default_factory=list, description="the actions the caller may take on the case now")
    requests: list[RequestOut] = Field(default_factory=list,
                                       description="延期 requests and 督办 orders, and their answers")
    controls: list[str] = Field(default_factory=list, description="the controls the caller may use now (each its own "
                                "route): extension, decide_extension, suspension, decide_suspension, send_back, "
                                "supervise, reply_supervision, part_sign, part_report")
    parts: list[PartOut] = Field(default_factory=list, description="协办: the assisting units' parts")
    stages: list[StageOut] = Field(default_factory=list, description="流程看板: every stage, done, running or to come")


class CaseList(BaseModel):
    cases: list[CasePublic]
    next_cursor: str | None = Field(None, description="pass as `cursor` for the next page; null on the last page")


class UnitOut(BaseModel):
    id: str
    name: str
    level: str
    parent: str | None


class MeOut(BaseModel):
    name: str
    person: str | None = Field(None, description="a signed-in person's own name; null for a key")
    role: str
    unit: str | None
    tz: str
    units: list[UnitOut]
    dispatch_to: list[UnitOut] = Field(default_factory=list, description="派单: the grids and functional departments "
                                       "the caller may dispatch a case to")
    can_act: bool


_COLUMNS = ("id", "status", "manual", "category", "severity", "grid", "device", "owner", "title", "opened_at",
            "accepted_at", "resolved_at", "closed_at", "stage_started_at", "first_seen", "last_seen",
            "first_received", "alert_count", "cleared_at", "escalations", "place", "backup", "repeat_of",
            "reopened", "resolved_by", "assignee", "extensions", "supervisions", "dispatched_at", "verified_at",
            "rejections", "rating")


def case_fields(store: Store, case: Case, pauses: list[Pause], now: datetime) -> dict[str, Any]:
    out: dict[str, Any] = {c: getattr(case, c) for c in _COLUMNS}
    out["owner_level"] = store.org.units[case.owner].level if case.owner in store.org.units else None
    out["policy"] = case.policy["id"]
    found = store.clock_of(case, pauses, now)
    if found is not None:
        stage, r = found
        level = store.clock_of(case, pauses, now, level=True) if case.level_started_at is not None else None
        out["clock"] = ClockOut(stage=stage, elapsed_s=r.elapsed_s, remaining_s=r.remaining_s, light=r.light,
                                paused=r.paused, next_change=r.next_change, deadline=store.deadline(case, r, now),
                                owner_elapsed_s=level[1].elapsed_s if level is not None else r.elapsed_s)
    out["assist"] = list(case.assist or [])
    out["total_s"] = max(0.0, ((case.closed_at or now) - case.opened_at).total_seconds())
    return out


def case_public(store: Store, case: Case, pauses: list[Pause], now: datetime) -> CasePublic:
    return CasePublic(**case_fields(store, case, pauses, now))


def stages_of(case: Case, timeline: list[TimelineEntry], clock: ClockOut | None) -> list[StageOut]:
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


def case_detail(store: Store, case: Case, timeline: list[TimelineEntry], pauses: list[Pause],
                now: datetime, actions: list[str] | None = None, parts: list[CasePart] | None = None) -> CaseDetail:
    alerts = store.alerts_of(case.id)
    base = f"/api/v1/cases/{case.id}/evidence"
    photos = [e for e in timeline if e.action == "photo" and isinstance(e.detail.get("n"), int)]
    # every stored evidence number is named either by its alert (snapshots) or by a photo entry
    numbers = sorted([a["evidence"]["stored"] for a in alerts
                      if isinstance((a.get("evidence") or {}).get("stored"), int)] + [e.detail["n"] for e in photos])
    fields = case_fields(store, case, pauses, now)
    return CaseDetail(
        **fields,
        timeline=[TimelineOut(at=e.at, actor=e.actor, action=e.action, detail=e.detail) for e in timeline],
        pauses=[PauseOut(start=p.start, end=p.end, reason=p.reason) for p in pauses],
        alerts=alerts,
        evidence=[f"{base}/{n}" for n in numbers],
        photos=[PhotoOut(url=f"{base}/{e.detail['n']}", at=e.at, actor=e.actor, note=e.detail.get("note"))
                for e in photos],
        actions=actions or [],
        requests=requests_from(timeline),
        parts=[PartOut(unit=p.unit, assigned_at=p.assigned_at, signed_at=p.signed_at, signed_by=p.signed_by,
                       reported_at=p.reported_at, reported_by=p.reported_by, note=p.note) for p in parts or []],
        stages=stages_of(case, timeline, fields.get("clock")))
