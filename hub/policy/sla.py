"""SLA policies and the pure clock/light computation (挂单计时, 亮灯警告).

Clocks are derived from stored stamps and pauses, never from a stored guess: `stage_clock()` takes the
stage's start, its limit, the pauses (挂起) and `now`, and returns elapsed and remaining working time, the
light, and the next instant the light changes (for the scheduler's index of due cases).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from gridwatch.core.config import Strict, first_repeat
from gridwatch.core.durations import Duration, parse_duration
from gridwatch.core.names import Severity
from hub.policy.calendar import Calendar

Light = Literal["green", "yellow", "red"]
Stage = Literal["dispatch", "accept", "resolve", "feedback", "callback"]
Level = Literal["grid", "community", "street", "district"]
LIGHT_ORDER: dict[str, int] = {"green": 0, "yellow": 1, "red": 2}


def _limit_text(v: Any) -> str:
    text = str(v).strip()
    if parse_duration(text if not text.replace(".", "", 1).isdigit() else float(text)) <= 0:
        raise ValueError("expected a limit longer than 0s")
    return text


LimitText = Annotated[str, BeforeValidator(_limit_text)]


def limit_seconds(text: str, calendar: Calendar) -> float:
    """A limit in working seconds: whole days (`2d`) are working days on a working-time calendar."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)d", text)
    if m:
        return float(m.group(1)) * calendar.day_seconds
    return parse_duration(float(text) if text.replace(".", "", 1).isdigit() else text)


class Limits(Strict):
    dispatch: LimitText = Field("2h", description="派单: a case routed to a command center by hand, until dispatched")
    accept: LimitText = Field(description="签收: from dispatch to signing for it")
    resolve: LimitText = Field(description="办理: from signing for it to reporting the result (办结)")
    feedback: LimitText = Field(description="核查: from the reported result to its verification")
    callback: LimitText = Field("1d", description="回访: from verification to the callback's answer")


class PolicyMatch(Strict):
    categories: list[str] = Field(default_factory=list, description="empty = any")
    severities: list[Severity] = Field(default_factory=list, description="empty = any")
    manual: bool | None = Field(None, description="true: only hand-reported cases; false: only alert cases")

    def selects(self, category: str, severity: str, manual: bool) -> bool:
        return ((not self.categories or category in self.categories)
                and (not self.severities or severity in self.severities)
                and (self.manual is None or self.manual == manual))


class Policy(Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    match: PolicyMatch = Field(default_factory=PolicyMatch)
    start_level: Level = "grid"
    calendar: str = Field("24x7", description="24x7 or a calendar name from configs/calendars/")
    limits: Limits
    yellow_at: float = Field(0.5, gt=0, lt=1, description="share of the limit elapsed when the light turns yellow")
    remind_every: Duration = Field(1800.0, gt=0, description="reminders to the owner while a case stays red")
    extensions_max: int = Field(2, ge=0, le=20, description="延期: extensions a case may be granted in its life")
    callback: bool = Field(False, description="回访: after verification the case waits for a callback "
                                              "(满意 / 基本满意 / 不满意) before it closes")
    reopen_unsatisfied: bool = Field(True, description="a callback answered 不满意 sends the case back to handling")
    repeat_within: Duration = Field(30 * 86400.0, ge=0, description="重复件: a new case of a place and kind closed "
                                                                    "less than this long ago is marked a repeat of it")
    warning_falls: Literal["keep", "follow"] = Field(
        "keep", description="预警: a level that falls within one episode is recorded on the timeline; `follow` also "
                            "lowers the case's level and severity (keep: people go on with what they were told)")


class ManualTiers(Strict):
    """The 2-3-10 tiers for hand-reported cases (general 2 days, important 3, major 10): the resolve limit."""

    general: LimitText = "2d"
    important: LimitText = "3d"
    major: LimitText = "10d"


class SlaFile(Strict):
    policies: list[Policy] = Field(min_length=1)
    manual_tiers: ManualTiers = Field(default_factory=ManualTiers)

    @model_validator(mode="after")
    def _unique(self) -> SlaFile:
        if (twice := first_repeat(p.id for p in self.policies)) is not None:
            raise ValueError(f"duplicate policy id {twice!r}")
        return self

    def policy_for(self, category: str, severity: str, manual: bool = False) -> Policy:
        """First matching policy; the file must end with a catch-all for anything unmatched."""
        for p in self.policies:
            if p.match.selects(category, severity, manual):
                return p
        return self.policies[-1]


@dataclass(frozen=True, slots=True)
class Pause:
    start: datetime
    end: datetime | None = None  # None: still on hold


@dataclass(frozen=True, slots=True)
class ClockReading:
    elapsed_s: float
    remaining_s: float  # negative when overdue
    ratio: float
    light: Light
    paused: bool
    next_change: datetime | None  # when the light changes next; None while paused or once red


def light_of(ratio: float, yellow_at: float) -> Light:
    if ratio >= 1.0:
        return "red"
    return "yellow" if ratio >= yellow_at else "green"


def stage_clock(*, started: datetime, limit_s: float, yellow_at: float, calendar: Calendar,
                now: datetime, pauses: tuple[Pause, ...] | list[Pause] = (), stopped: datetime | None = None
                ) -> ClockReading:
    """A stage's clock at `now` (or frozen at `stopped`, when the stage is finished)."""
    end = min(now, stopped) if stopped is not None else now
    elapsed = calendar.working_seconds(started, end)
    for p in pauses:
        p_end = min(p.end, end) if p.end is not None else end
        elapsed -= calendar.working_seconds(max(p.start, started), p_end)
    elapsed = max(0.0, elapsed)
    ratio = elapsed / limit_s
    light = light_of(ratio, yellow_at)
    paused = any(p.end is None and p.start <= end for p in pauses)
    next_change = None
    if stopped is None and not paused and light != "red":
        target = yellow_at * limit_s if light == "green" else limit_s
        next_change = calendar.add(now, target - elapsed)
    return ClockReading(elapsed, limit_s - elapsed, ratio, light, paused, next_change)


def worst(lights: list[Light]) -> Light:
    return max(lights, key=LIGHT_ORDER.__getitem__) if lights else "green"
