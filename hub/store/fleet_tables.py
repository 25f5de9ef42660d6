"""The tables of the fleet: devices, rule versions and deploys, agents, maintenance windows and the alerts
they hold."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from hub.store.base import Base


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
    guard: Mapped[str | None] = mapped_column(String(16))
    """布防/撤防 asked for it from the hub (armed, disarmed; None: never asked, as the device is set)."""
    guard_reported: Mapped[str | None] = mapped_column(String(16))
    """What its gateway last heard the device confirm (armed, disarmed)."""
    guard_at: Mapped[datetime | None]
    """When that confirmation came."""
    camera: Mapped[str | None] = mapped_column(String(64))
    """视频复核: the camera that covers this device; an alert of the device turns it to `preset` for a picture."""
    preset: Mapped[int | None] = mapped_column(Integer)


class Look(Base):
    """视频复核 (issue 41): a camera asked to turn to a preset and take a picture for a case, by the linkage of the
    sensor that opened it or by an operator; its gateway takes it and says how it went."""

    __tablename__ = "looks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    camera: Mapped[str] = mapped_column(String(64), index=True)
    preset: Mapped[int | None] = mapped_column(Integer)
    sensor: Mapped[str | None] = mapped_column(String(64))
    """The device whose alert asked (None: an operator)."""
    asked_by: Mapped[str] = mapped_column(String(128))
    asked_at: Mapped[datetime]
    done_at: Mapped[datetime | None]
    result: Mapped[str | None] = mapped_column(String(16))
    """snapshot (a picture is on the case) or failed (`detail` says why)."""
    detail: Mapped[str] = mapped_column(Text, default="")


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
