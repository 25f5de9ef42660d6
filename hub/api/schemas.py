"""What the case endpoints answer, as response models: `/docs` and `/openapi.json` document them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field

from hub.policy.lifecycle import Status
from hub.policy.sla import Light, Stage
from hub.policy.stages import RequestOut, StageOut, requests_from, stages_of
from hub.store.cases import Store
from hub.store.models import Case, CasePart, Pause, TimelineEntry


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
    warning: str | None = Field(None, description="预警 level of an early-warning case: blue, yellow, orange, red "
                                                  "(蓝色 Ⅳ级 … 红色 Ⅰ级); null for other cases")


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


class ClipOut(BaseModel):
    """A recorded clip (MP4) from the camera's own recording around the alarm."""

    url: str
    at: datetime
    actor: str
    note: str | None = None
    start: datetime | None = None
    end: datetime | None = None


class PartOut(BaseModel):
    """协办: an assisting unit's part of a jointly handled case."""

    unit: str
    assigned_at: datetime
    signed_at: datetime | None
    signed_by: str | None
    reported_at: datetime | None
    reported_by: str | None
    note: str


class CaseDetail(CasePublic):
    timeline: list[TimelineOut]
    pauses: list[PauseOut]
    alerts: list[dict[str, Any]] = Field(description="the alert bodies as received, with `received_at`")
    evidence: list[str] = Field(description="paths of the stored evidence: the edge's snapshots and photos")
    photos: list[PhotoOut] = Field(default_factory=list, description="photos taken on the spot, oldest first")
    clips: list[ClipOut] = Field(default_factory=list, description="clips of the camera's recording around the "
                                 "alarm (MP4), oldest first")
    actions: list[str] = Field(default_factory=list, description="the actions the caller may take on the case now")
    requests: list[RequestOut] = Field(default_factory=list,
                                       description="延期 requests and 督办 orders, and their answers")
    controls: list[str] = Field(default_factory=list, description="the controls the caller may use now (each its own "
                                "route): extension, decide_extension, suspension, decide_suspension, send_back, "
                                "supervise, reply_supervision, part_sign, part_report, "
                                "look (视频复核: a camera covers the case's device)")
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
    notices: list[str] = Field(default_factory=list, description="administrators: what needs their hand (a "
                               "working-time calendar running out), in Chinese")
    csrf: str | None = Field(None, description="signed in with the board's cookie: the X-CSRF-Token its changes send")
    limited: str | None = Field(None, description="two_factor | password: the session reaches nothing but that "
                                                  "until it is put right")
    two_factor: bool = Field(False, description="a person with a second factor enrolled")


_COLUMNS = ("id", "status", "manual", "category", "severity", "grid", "device", "owner", "title", "opened_at",
            "accepted_at", "resolved_at", "closed_at", "stage_started_at", "first_seen", "last_seen",
            "first_received", "alert_count", "cleared_at", "escalations", "place", "backup", "repeat_of",
            "reopened", "resolved_by", "assignee", "extensions", "supervisions", "dispatched_at", "verified_at",
            "rejections", "rating", "warning")


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


def case_detail(store: Store, case: Case, timeline: list[TimelineEntry], pauses: list[Pause],
                now: datetime, actions: list[str] | None = None, parts: list[CasePart] | None = None) -> CaseDetail:
    alerts = store.alerts_of(case.id)
    base = f"/api/v1/cases/{case.id}/evidence"
    photos = [e for e in timeline if e.action == "photo" and isinstance(e.detail.get("n"), int)]
    clips = [e for e in timeline if e.action == "clip" and isinstance(e.detail.get("n"), int)]
    # every stored evidence number is named either by its alert (snapshots) or by a photo or clip entry
    numbers = sorted([a["evidence"]["stored"] for a in alerts if isinstance((a.get("evidence") or {}).get("stored"),
                      int)] + [e.detail["n"] for e in photos + clips])
    fields = case_fields(store, case, pauses, now)
    return CaseDetail(
        **fields,
        timeline=[TimelineOut(at=e.at, actor=e.actor, action=e.action, detail=e.detail) for e in timeline],
        pauses=[PauseOut(start=p.start, end=p.end, reason=p.reason) for p in pauses],
        alerts=alerts,
        evidence=[f"{base}/{n}" for n in numbers],
        photos=[PhotoOut(url=f"{base}/{e.detail['n']}", at=e.at, actor=e.actor, note=e.detail.get("note"))
                for e in photos],
        clips=[ClipOut(url=f"{base}/{e.detail['n']}", at=e.at, actor=e.actor, note=e.detail.get("note"),
                       start=e.detail.get("start"), end=e.detail.get("end")) for e in clips],
        actions=actions or [],
        requests=requests_from(timeline),
        parts=[PartOut(unit=p.unit, assigned_at=p.assigned_at, signed_at=p.signed_at, signed_by=p.signed_by,
                       reported_at=p.reported_at, reported_by=p.reported_by, note=p.note) for p in parts or []],
        stages=stages_of(case, timeline, fields.get("clock")))
