"""Maintenance windows (检修/屏蔽): over one device, grid or rule, once (start to end) or recurring (days of
the week and a daily span, within start to end), with a reason.

A firing alert that would open a case inside an active window is held (`held_alerts`): recorded, no case.
When the window ends (or is cancelled), each held alert is released: if its episode resolved meanwhile it
is closed as `cleared`; if the condition still holds the alert goes through intake then and the case opens
with a note naming the window (Alertmanager's re-notify at the end of a silence). The matching and the
calendar arithmetic are pure; `release_due` does the I/O.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, time
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridwatch.core.alert import Alert
from hub.store.models import Device, HeldAlert, Maintenance

logger = logging.getLogger(__name__)
Scope = Literal["device", "grid", "rule"]


def _hhmm(v: str) -> str:
    try:
        time.fromisoformat(v)
    except ValueError:
        raise ValueError(f"{v!r} is not a time of day (HH:MM)") from None
    return v


class Recurrence(BaseModel):
    """Every listed weekday (1 = Monday … 7 = Sunday) from `start` to `end` local time; an `end` before the
    `start` runs past midnight (and counts for the day it starts)."""

    model_config = ConfigDict(extra="forbid")
    days: list[int] = Field(default_factory=lambda: [1, 2, 3, 4, 5, 6, 7], min_length=1)
    start: str
    end: str

    @field_validator("days")
    @classmethod
    def _days(cls, v: list[int]) -> list[int]:
        if any(d < 1 or d > 7 for d in v):
            raise ValueError("days are 1 (Monday) to 7 (Sunday)")
        return sorted(set(v))

    @field_validator("start", "end")
    @classmethod
    def _time(cls, v: str) -> str:
        return _hhmm(v)


class WindowIn(BaseModel):
    """A window as the API takes it."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"scope": "device", "target": "gas-03", "reason": "燃气探测器标定", "starts_at": "2026-11-25T09:00:00+08:00",
         "ends_at": "2026-11-25T11:00:00+08:00"}]})
    scope: Scope
    target: str = Field(min_length=1, max_length=64)
    reason: str = Field(min_length=1, max_length=2000)
    starts_at: datetime
    ends_at: datetime | None = Field(None, description="required unless recurring (then: no end)")
    recurrence: Recurrence | None = None

    @model_validator(mode="after")
    def _span(self) -> WindowIn:
        if self.starts_at.tzinfo is None or (self.ends_at is not None and self.ends_at.tzinfo is None):
            raise ValueError("stamps need an offset (e.g. 2026-11-25T09:00:00+08:00)")
        if self.ends_at is None and self.recurrence is None:
            raise ValueError("a one-off window needs ends_at")
        if self.ends_at is not None and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must come after starts_at")
        if "\x00" in self.reason or "\x00" in self.target:
            raise ValueError("must not contain a NUL character")
        return self


def active(w: Maintenance, now: datetime, tz: str) -> bool:
    """Is the window in force at `now`?"""
    if w.cancelled_at is not None and w.cancelled_at <= now:
        return False
    if now < w.starts_at or (w.ends_at is not None and now >= w.ends_at):
        return False
    if w.recurrence is None:
        return True
    rec = Recurrence.model_validate(w.recurrence)
    local = now.astimezone(ZoneInfo(tz))
    start, end, t = time.fromisoformat(rec.start), time.fromisoformat(rec.end), local.time()
    if start <= end:
        return local.isoweekday() in rec.days and start <= t < end
    # past midnight: the evening of a listed day, or the morning after one
    yesterday = (local.isoweekday() - 2) % 7 + 1
    return (local.isoweekday() in rec.days and t >= start) or (yesterday in rec.days and t < end)


def covers(w: Maintenance, alert: Alert) -> bool:
    """Does the window's scope take in this alert?"""
    if w.scope == "device":
        return alert.device_id == w.target or w.target in alert.labels.get("device_ids", "").split(",")
    if w.scope == "grid":
        return alert.grid_id == w.target
    return alert.rule_id == w.target or alert.rule_id.startswith(w.target + ":")


def holding(windows: Sequence[Maintenance], alert: Alert, now: datetime, tz: str) -> Maintenance | None:
    return next((w for w in windows if covers(w, alert) and active(w, now, tz)), None)


def public(w: Maintenance, now: datetime, tz: str, held: int = 0) -> dict[str, Any]:
    return {"id": w.id, "scope": w.scope, "target": w.target, "reason": w.reason, "starts_at": w.starts_at,
            "ends_at": w.ends_at, "recurrence": w.recurrence, "actor": w.actor, "created_at": w.created_at,
            "cancelled_at": w.cancelled_at, "active": active(w, now, tz), "held": held}


def pending(s: Session, limit: int = 200) -> list[tuple[HeldAlert, Maintenance]]:
    """Held alerts not yet released, with their windows, locked (SKIP LOCKED: hub replicas share them)."""
    q = (select(HeldAlert, Maintenance).join(Maintenance, Maintenance.id == HeldAlert.window_id)
         .where(HeldAlert.released_at.is_(None)).limit(limit).with_for_update(skip_locked=True, of=HeldAlert))
    return [(h, w) for h, w in s.execute(q).all()]


def windows(s: Session, now: datetime, *, every: bool = False) -> list[Maintenance]:
    """Windows not yet over (`every`: all of them), the latest starting first."""
    q = select(Maintenance).order_by(Maintenance.starts_at.desc())
    return [w for w in s.scalars(q) if every or (w.cancelled_at is None and (w.ends_at is None or w.ends_at > now))]


def device_grids(s: Session, rows: Sequence[Maintenance]) -> dict[str, str]:
    """The grid of each registered device a window of `rows` is over."""
    ids = sorted({w.target for w in rows if w.scope == "device"})
    if not ids:
        return {}
    return {d: g for d, g in s.execute(select(Device.id, Device.grid).where(Device.id.in_(ids)))}


def held_counts(s: Session, window_ids: Sequence[int]) -> dict[int, int]:
    """How many alerts each window holds (released or not)."""
    if not window_ids:
        return {}
    q = (select(HeldAlert.window_id, func.count()).where(HeldAlert.window_id.in_(window_ids))
         .group_by(HeldAlert.window_id))
    return {w: n for w, n in s.execute(q)}


def add(s: Session, body: WindowIn, actor: str, now: datetime) -> Maintenance:
    w = Maintenance(scope=body.scope, target=body.target, reason=body.reason, starts_at=body.starts_at,
                    ends_at=body.ends_at, recurrence=body.recurrence.model_dump() if body.recurrence else None,
                    actor=actor, created_at=now, cancelled_at=None)
    s.add(w)
    s.flush()
    return w


def locked(s: Session, window_id: int) -> Maintenance | None:
    """The window, locked for the rest of the transaction (to end it)."""
    return s.get(Maintenance, window_id, with_for_update=True)
