"""The hub's tables (SQLAlchemy 2): the case aggregate here, people's and the fleet's in `people_tables` and
`fleet_tables` (re-exported, so `models` names every table). The schema itself is owned by the Alembic migrations in
`hub/store/migrations/`; these classes must match them (a test compares the two).

Stamps are UTC with millisecond precision. Case ids are time-ordered (sortable, and cheap to index:
random ids cut insert rates about 6x, DESIGN §10).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from hub.policy.lifecycle import Status, TimelineAction
from hub.store.base import Base, Sealed, UtcDateTime
from hub.store.fleet_tables import AgentRow, Device, HeldAlert, Look, Maintenance, RuleDeploy, RuleVersion
from hub.store.people_tables import (
    AuditHead,
    AuditRow,
    Contact,
    KeyCheck,
    KeyRow,
    Notice,
    RecoveryCode,
    User,
    UserSession,
)

__all__ = ["AgentRow", "AlertRow", "AuditHead", "AuditRow", "Base", "Case", "KeyCheck", "CaseClock", "CasePart",
           "CaseRequest",
           "Contact", "Cursor", "Device", "Evidence", "HeldAlert", "KeyRow", "Look", "Maintenance", "NewCase", "Notice",
           "Pause", "RecoveryCode", "RuleDeploy", "RuleVersion", "Sealed", "TimelineEntry", "User", "UserSession",
           "UtcDateTime"]


class Case(Base):
    __tablename__ = "cases"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(200))
    status: Mapped[Status] = mapped_column(String(16))  # hub.lifecycle: open accepted resolved on_hold closed
    held_from: Mapped[Status | None] = mapped_column(String(16))  # the status a hold will resume to
    manual: Mapped[bool] = mapped_column(Boolean, default=False)
    category: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))
    grid: Mapped[str] = mapped_column(String(64))
    device: Mapped[str | None] = mapped_column(String(64))
    owner: Mapped[str] = mapped_column(String(64))  # the unit holding the case
    title: Mapped[str] = mapped_column(Text, default="")
    policy: Mapped[dict[str, Any]] = mapped_column(JSON)  # snapshot of the SLA policy at opening
    opened_at: Mapped[datetime]
    accepted_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    stage_started_at: Mapped[datetime]  # the running stage's clock start (a new owner gets a fresh limit)
    first_seen: Mapped[datetime]  # device time of the first alert
    last_seen: Mapped[datetime]  # device time of the latest alert
    first_received: Mapped[datetime]  # hub receive time of the first alert
    alert_count: Mapped[int] = mapped_column(Integer, default=0)
    cleared_at: Mapped[datetime | None]  # the edge reported the condition resolved
    escalations: Mapped[int] = mapped_column(Integer, default=0)
    backup_notified: Mapped[bool] = mapped_column(Boolean, default=False)
    last_reminder: Mapped[datetime | None]
    next_due: Mapped[datetime | None]  # next light change or reminder: the scheduler's index
    light_announced: Mapped[str | None] = mapped_column(String(8))  # last light_changed event sent
    version: Mapped[int] = mapped_column(Integer, default=1)
    place: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # the device's place when the case opened
    # when the current owner got the case: its escalation clock (the stage clock keeps running across
    # escalations, so the light and 已挂单 do not hide how long the case has waited); None = stage_started_at
    level_started_at: Mapped[datetime | None]
    backup: Mapped[str | None] = mapped_column(String(64))  # the backup grid (AB角) offered the case
    repeat_of: Mapped[str | None] = mapped_column(String(32))  # 重复件: the earlier case at this place
    reopened: Mapped[int] = mapped_column(Integer, default=0)  # times the condition's return reopened it
    resolved_by: Mapped[str | None] = mapped_column(String(128))  # who reported the result
    assignee: Mapped[str | None] = mapped_column(String(64))  # the person of the owning unit handling it (网格员)
    stage_extra_s: Mapped[float] = mapped_column(Float, default=0.0)  # approved extensions of the running stage
    extensions: Mapped[int] = mapped_column(Integer, default=0)  # extensions approved over the case's life
    supervisions: Mapped[int] = mapped_column(Integer, default=0)  # 督办 orders the case received
    # what the assessment (考核) counts, fixed when each stage ends: its working time and whether it ran late
    accept_s: Mapped[float | None] = mapped_column(Float)
    accept_late: Mapped[bool | None] = mapped_column(Boolean)
    resolve_s: Mapped[float | None] = mapped_column(Float)
    resolve_late: Mapped[bool | None] = mapped_column(Boolean)
    dispatched_at: Mapped[datetime | None]  # 派单 by hand ended (None: dispatched at opening by routing)
    verified_at: Mapped[datetime | None]  # 核查 passed
    rejections: Mapped[int] = mapped_column(Integer, default=0)  # 核查 failed the result back to handling
    rating: Mapped[str | None] = mapped_column(String(16))  # 回访: satisfied | basically | unsatisfied (latest)
    assist: Mapped[list[str] | None] = mapped_column(JSON)  # 协办: the assisting units (their parts: case_parts)
    warning: Mapped[str | None] = mapped_column(String(8))  # 预警 level of an early-warning case (blue … red)

    __table_args__ = (
        Index("ix_cases_dedup_open", "dedup_key", unique=True,
              postgresql_where=text("status <> 'closed'"), sqlite_where=text("status <> 'closed'")),
        Index("ix_cases_next_due", "next_due", postgresql_where=text("next_due IS NOT NULL"),
              sqlite_where=text("next_due IS NOT NULL")),
        Index("ix_cases_owner_status", "owner", "status"),
        Index("ix_cases_grid_category", "grid", "category", "closed_at"),
        # the assessment reads only this index, in owner order (no sort of a million rows)
        Index("ix_cases_assessment", "owner", "opened_at", "accept_s", "accept_late", "resolve_s", "resolve_late",
              "extensions", "escalations", "reopened", "repeat_of", "closed_at", "supervisions", "rating"),
    )

    def back_to_handling(self, now: datetime) -> None:
        """The reported result did not hold (核查不通过, 回访 不满意, the condition returned): the result and its
        verification are dropped and handling (办理) starts over on a fresh clock, to be judged again. The
        caller sets the status and counts the cause."""
        self.resolved_at, self.resolved_by, self.verified_at = None, None, None
        self.stage_started_at, self.level_started_at, self.stage_extra_s, self.light_announced = now, None, 0.0, None
        self.resolve_s, self.resolve_late = None, None


class AlertRow(Base):
    __tablename__ = "alerts"

    alert_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    observed_at: Mapped[datetime]  # device time
    received_at: Mapped[datetime]  # hub time
    body: Mapped[dict[str, Any]] = mapped_column(JSON)


class Pause(Base):
    __tablename__ = "pauses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    start: Mapped[datetime]
    end: Mapped[datetime | None]
    reason: Mapped[str] = mapped_column(Text)


class TimelineEntry(Base):
    __tablename__ = "timeline"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[TimelineAction] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Cursor(Base):
    """How far a once-per-deployment reader of the timeline got (e.g. the MQTT publisher)."""

    __tablename__ = "cursors"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_id: Mapped[int] = mapped_column(BigInteger)


class Evidence(Base):
    __tablename__ = "evidence"

    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    n: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_id: Mapped[str] = mapped_column(String(64))
    content_type: Mapped[str] = mapped_column(String(64), default="image/jpeg")
    data: Mapped[bytes] = mapped_column(LargeBinary)


class CaseRequest(Base):
    """A request on a case and its answer: 延期 (more time for the running stage, asked by the holder with a
    reason and a new deadline, decided by the dispatching level), or 督办 (a supervision order from a unit
    above the holder, with a deadline for the holder's reply)."""

    __tablename__ = "case_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # extension | supervision
    stage: Mapped[str] = mapped_column(String(16))  # the stage it was asked in
    reason: Mapped[str] = mapped_column(Text)
    until: Mapped[datetime | None]  # the deadline asked for
    unit: Mapped[str] = mapped_column(String(64))  # the unit that asked (the owner then)
    requested_by: Mapped[str] = mapped_column(String(128))
    requested_at: Mapped[datetime]
    decision: Mapped[str | None] = mapped_column(String(16))  # approved | refused | replied (None: pending)
    decided_by: Mapped[str | None] = mapped_column(String(128))
    decided_at: Mapped[datetime | None]
    note: Mapped[str] = mapped_column(Text, default="")


class CasePart(Base):
    """协办: an assisting unit's part of a jointly handled case. The unit signs for its part and reports it;
    the lead unit (the case's owner) cannot report the whole result (办结) until every part is reported."""

    __tablename__ = "case_parts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    unit: Mapped[str] = mapped_column(String(64), index=True)
    assigned_at: Mapped[datetime]
    signed_at: Mapped[datetime | None]
    signed_by: Mapped[str | None] = mapped_column(String(128))
    reported_at: Mapped[datetime | None]
    reported_by: Mapped[str | None] = mapped_column(String(128))
    note: Mapped[str] = mapped_column(Text, default="")


@dataclass(eq=False)
class NewCase:
    """A case opened by alert intake, as the row `bulk_insert` writes: exactly the columns of `Case` (a test
    holds the two together). Intake opens cases a hundred at a time; building them as ORM objects cost a
    quarter of the whole intake, so new cases are plain rows until they are written."""

    id: str
    dedup_key: str
    status: Status
    held_from: Status | None
    manual: bool
    category: str
    severity: str
    grid: str
    device: str | None
    owner: str
    title: str
    policy: dict[str, Any]
    opened_at: datetime
    accepted_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    stage_started_at: datetime
    first_seen: datetime
    last_seen: datetime
    first_received: datetime
    alert_count: int
    cleared_at: datetime | None
    escalations: int
    backup_notified: bool
    last_reminder: datetime | None
    next_due: datetime | None
    light_announced: str | None
    version: int
    place: dict[str, Any] | None
    level_started_at: datetime | None = None
    backup: str | None = None
    repeat_of: str | None = None
    reopened: int = 0
    resolved_by: str | None = None
    assignee: str | None = None
    stage_extra_s: float = 0.0
    extensions: int = 0
    supervisions: int = 0
    accept_s: float | None = None
    accept_late: bool | None = None
    resolve_s: float | None = None
    resolve_late: bool | None = None
    dispatched_at: datetime | None = None
    verified_at: datetime | None = None
    rejections: int = 0
    rating: str | None = None
    assist: list[str] | None = None
    warning: str | None = None

    def row(self) -> dict[str, Any]:
        return vars(self)


class CaseClock(Protocol):
    """What the clocks read of a case, stored (`Case`) or about to be (`NewCase`)."""

    id: str
    status: Status
    held_from: Status | None
    policy: dict[str, Any]
    stage_started_at: datetime
    level_started_at: datetime | None
    stage_extra_s: float
    next_due: datetime | None
