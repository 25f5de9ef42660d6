"""The hub's tables (SQLAlchemy 2). The schema itself is owned by the Alembic migrations in
`hub/migrations/`; these classes must match them (a test compares the two).

Stamps are UTC with millisecond precision. Case ids are time-ordered (sortable, and cheap to index:
random ids cut insert rates about 6x, DESIGN §10).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from hub import datakey
from hub.lifecycle import Status, TimelineAction


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite hands back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the hub store; use aware UTC datetimes")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UtcDateTime(), dict[str, Any]: JSON}


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


class Device(Base):
    """One device of the registry: where it is and what it is (issue 15)."""

    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    grid: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    address: Mapped[str] = mapped_column(Text, default="")
    vendor: Mapped[str] = mapped_column(String(64), default="")
    model: Mapped[str] = mapped_column(String(64), default="")
    feed: Mapped[str] = mapped_column(String(64), default="")
    gateway: Mapped[str | None] = mapped_column(String(64))
    notes: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime]


class RuleVersion(Base):
    """A rule set as it was saved: the text, who, when, why."""

    __tablename__ = "rule_versions"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    text: Mapped[str] = mapped_column(Text)
    hash: Mapped[str] = mapped_column(String(64))
    rules: Mapped[int] = mapped_column(Integer)
    author: Mapped[str] = mapped_column(String(128))
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]


class RuleDeploy(Base):
    """A version sent to the agents serving some grids (None: all of them); the newest one that reaches an
    agent is the version it must run, so a rollback is a deploy of an older version."""

    __tablename__ = "rule_deploys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version: Mapped[int] = mapped_column(ForeignKey("rule_versions.version"))
    grids: Mapped[list[str] | None] = mapped_column(JSON)
    actor: Mapped[str] = mapped_column(String(128))
    note: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime]


class AgentRow(Base):
    """An edge agent as its last heartbeat told (and whether the watchdog found it silent)."""

    __tablename__ = "agents"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    key: Mapped[str] = mapped_column(String(64))
    grids: Mapped[list[str]] = mapped_column(JSON)
    version: Mapped[str] = mapped_column(String(32))
    rule_version: Mapped[int | None] = mapped_column(Integer)
    rule_hash: Mapped[str] = mapped_column(String(64), default="")
    broker: Mapped[str] = mapped_column(String(16))
    outbox_depth: Mapped[int] = mapped_column(Integer, default=0)
    oldest_unsent: Mapped[datetime | None]
    dropped_frames: Mapped[int] = mapped_column(BigInteger, default=0)
    devices: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime | None]
    last_seen: Mapped[datetime]
    offline_since: Mapped[datetime | None]
    problem: Mapped[str] = mapped_column(Text, default="")  # the last rule set it refused, with the reasons


class Maintenance(Base):
    """A maintenance window (检修/屏蔽) over one device, grid or rule: once, or recurring within its span."""

    __tablename__ = "maintenance"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String(8))  # device | grid | rule
    target: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime | None]
    recurrence: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # {days: [1..7], start: HH:MM, end: HH:MM}
    actor: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]
    cancelled_at: Mapped[datetime | None]


class HeldAlert(Base):
    """A firing alert that arrived inside a maintenance window: recorded, no case; released when the window
    ends (a case opens if it has not resolved by then)."""

    __tablename__ = "held_alerts"

    alert_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_id: Mapped[int] = mapped_column(ForeignKey("maintenance.id"), index=True)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime]
    resolved: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # the resolved alert, when it came
    released_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(16))  # opened | cleared | cancelled

    __table_args__ = (
        Index("ix_held_alerts_pending", "released_at", postgresql_where=text("released_at IS NULL"),
              sqlite_where=text("released_at IS NULL")),
    )


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


class Sealed(TypeDecorator[str]):
    """Text stored encrypted (`hub.datakey`): personal data the database file must not show."""

    impl = String(512)
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else datakey.seal(value)

    def process_result_value(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else datakey.unseal(value)


class User(Base):
    """A person who signs in to the board (网格员, a command center's staff, an administrator): a name, the
    unit they work for, a role, and a password hashed with Argon2id (argon2-cffi)."""

    __tablename__ = "users"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    unit: Mapped[str | None] = mapped_column(String(64))  # None: an administrator of the whole tree
    role: Mapped[str] = mapped_column(String(16))  # operator | viewer | admin
    password_hash: Mapped[str] = mapped_column(String(256))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # per-account protection: wrong passwords since the last success or lock, locks in a row, until when
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locks: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[datetime | None]
    # two-factor (TOTP, RFC 6238): the secret sealed at rest, one being enrolled, the last time step used
    totp_secret: Mapped[str | None] = mapped_column(Sealed())
    totp_pending: Mapped[str | None] = mapped_column(Sealed())
    totp_step: Mapped[int | None] = mapped_column(BigInteger)
    password_changed_at: Mapped[datetime | None]  # None: before issue 30 (counted from updated_at)
    removed_at: Mapped[datetime | None]  # removed: contact points and second factor erased, cannot sign in


class RecoveryCode(Base):
    """A two-factor recovery code (shown once): its SHA-256, and when it was used (each works once)."""

    __tablename__ = "recovery_codes"

    hash: Mapped[str] = mapped_column(String(80), primary_key=True)
    username: Mapped[str] = mapped_column(ForeignKey("users.username"), index=True)
    used_at: Mapped[datetime | None]


class AuditRow(Base):
    """One security-relevant act (hub.audit): who, when, from where, what, how it ended; chained by hashes."""

    __tablename__ = "audit"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(128), index=True)
    role: Mapped[str | None] = mapped_column(String(16))
    address: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str | None] = mapped_column(String(256))
    outcome: Mapped[str] = mapped_column(String(16))  # ok | refused | failed
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The chain's head, one row: appenders take it (a row lock) so the chain never forks across replicas."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[str] = mapped_column(String(64))


class UserSession(Base):
    """A signed-in session: the SHA-256 of its bearer token (the token itself is never stored)."""

    __tablename__ = "user_sessions"

    token_hash: Mapped[str] = mapped_column(String(80), primary_key=True)
    username: Mapped[str | None] = mapped_column(ForeignKey("users.username"), index=True)  # a person's, or
    key_name: Mapped[str | None] = mapped_column(String(64))  # a key signed in on the board
    last_seen: Mapped[datetime | None]  # for the idle timeout
    limited: Mapped[str | None] = mapped_column(String(16))  # "two_factor" | "password": only to put that right
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class KeyRow(Base):
    """An API key for a machine (an edge agent, an integration) added through the API: live without a
    restart, beside the keys of hub.yaml. Only its hash is kept."""

    __tablename__ = "api_keys"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    unit: Mapped[str | None] = mapped_column(String(64))
    grids: Mapped[list[str] | None] = mapped_column(JSON)
    hash: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime]
    disabled_at: Mapped[datetime | None]
    actor: Mapped[str] = mapped_column(String(128))
    sources: Mapped[list[str] | None] = mapped_column(JSON)  # the addresses it may be used from (none: any)


class Contact(Base):
    """How a person is reached (issue 26): shown in full only to administrators and to the person, masked
    elsewhere, never logged, sealed at rest (issue 30)."""

    __tablename__ = "contacts"

    username: Mapped[str] = mapped_column(ForeignKey("users.username"), primary_key=True)
    mobile: Mapped[str | None] = mapped_column(Sealed())
    email: Mapped[str | None] = mapped_column(Sealed())
    wecom_user: Mapped[str | None] = mapped_column(Sealed())  # 企业微信 userid, for <@userid> in a group robot
    dingtalk_mobile: Mapped[str | None] = mapped_column(Sealed())  # 钉钉 atMobiles
    updated_at: Mapped[datetime]


class Notice(Base):
    """One notice to one recipient on one channel (hub.notifier): planned from a case event once (its `key`,
    event + recipient + channel, is unique), then sent, retried with back-off, grouped per robot, or stopped
    by its `guard` when the case moved on (签收 stops the escalation notices of the stage)."""

    __tablename__ = "notices"
    __table_args__ = (Index("ix_notices_state_due", "state", "due_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    event_id: Mapped[int | None] = mapped_column(BigInteger)
    case_id: Mapped[str | None] = mapped_column(String(32), index=True)
    kind: Mapped[str] = mapped_column(String(32))  # opened | yellow | red | still_red | escalated | ...
    channel: Mapped[str] = mapped_column(String(64))  # the channel's id in notify.yaml
    target: Mapped[str] = mapped_column(String(200))  # where it goes: a robot, a mobile, a mailbox (masked here)
    recipient: Mapped[str | None] = mapped_column(String(64))  # the person (username), None for a unit's webhook
    urgent: Mapped[bool] = mapped_column(Boolean)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)  # the rendered message: title, text, sms params
    guard: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # {status, stage_started_at}: stop when changed
    state: Mapped[str] = mapped_column(String(16))  # pending | sending | delivered | failed | stopped
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    due_at: Mapped[datetime]
    claimed_at: Mapped[datetime | None]
    done_at: Mapped[datetime | None]
    error: Mapped[str] = mapped_column(Text, default="")


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
