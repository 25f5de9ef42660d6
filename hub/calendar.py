"""Working-time calendars for SLA clocks: 24x7, or working hours on working days.

A day is a working day when it is Monday-Friday and not a holiday, or when it is listed as a make-up
workday (调休: a weekend day worked in exchange for a holiday). Calendars come from a yearly file in
`configs/calendars/` and carry their own time zone; all arithmetic is on aware datetimes in UTC out.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator, model_validator

from gridwatch.core.config import Strict
from gridwatch.core.yamlconf import load


def _days(spec: str) -> list[date]:
    """`2026-10-01` or a range `2026-10-01..2026-10-07`."""
    first, _, last = spec.partition("..")
    a = date.fromisoformat(first.strip())
    b = date.fromisoformat(last.strip()) if last else a
    if b < a:
        raise ValueError(f"range {spec!r} ends before it starts")
    return [a + timedelta(days=i) for i in range((b - a).days + 1)]


class CalendarFile(Strict):
    name: str
    tz: str = "Asia/Shanghai"
    hours: list[tuple[str, str]] = Field(default_factory=lambda: [("09:00", "12:00"), ("13:30", "17:30")],
                                         description="working periods of a working day, local time")
    holidays: list[str] = Field(default_factory=list, description="dates or ranges a..b off work")
    workdays: list[str] = Field(default_factory=list, description="make-up workdays (调休), e.g. a Saturday")

    @field_validator("holidays", "workdays", mode="before")
    @classmethod
    def _yaml_dates(cls, v: Any) -> Any:
        """YAML reads a bare 2026-10-10 as a date; take it as its ISO text."""
        return [d.isoformat() if isinstance(d, date) else d for d in v] if isinstance(v, list) else v

    @field_validator("holidays", "workdays")
    @classmethod
    def _dates(cls, v: list[str]) -> list[str]:
        for spec in v:
            try:
                _days(spec)
            except ValueError as exc:
                raise ValueError(f"{spec!r}: expected YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD ({exc})") from None
        return v

    @model_validator(mode="after")
    def _hours(self) -> CalendarFile:
        ZoneInfo(self.tz)
        prev = time(0, 0)
        for a, b in self.hours:
            ta, tb = time.fromisoformat(a), time.fromisoformat(b)
            if not prev <= ta < tb:
                raise ValueError(f"hours: periods must be increasing and non-empty, got {a}-{b}")
            prev = tb
        return self


class Calendar:
    """Working time arithmetic. `Calendar.always()` is the 24x7 clock."""

    def __init__(self, spec: CalendarFile | None = None) -> None:
        self.spec = spec
        self.name = spec.name if spec else "24x7"
        if spec is None:
            return
        self.tz = ZoneInfo(spec.tz)
        self.holidays = {d for s in spec.holidays for d in _days(s)}
        self.workdays = {d for s in spec.workdays for d in _days(s)}
        self.periods = [(time.fromisoformat(a), time.fromisoformat(b)) for a, b in spec.hours]

    @classmethod
    def always(cls) -> Calendar:
        return cls(None)

    @classmethod
    def from_file(cls, path: str | Path) -> Calendar:
        return cls(load(CalendarFile, path))

    def is_workday(self, d: date) -> bool:
        if d in self.workdays:
            return True
        return d.weekday() < 5 and d not in self.holidays

    def _periods_of(self, d: date) -> list[tuple[datetime, datetime]]:
        if not self.is_workday(d):
            return []
        return [(datetime.combine(d, a, self.tz), datetime.combine(d, b, self.tz)) for a, b in self.periods]

    @property
    def day_seconds(self) -> float:
        """Working seconds in one working day (what `1d` of a limit means on this calendar)."""
        if self.spec is None:
            return 86400.0
        return sum((datetime.combine(date.min, b) - datetime.combine(date.min, a)).total_seconds()
                   for a, b in self.periods)

    def working_seconds(self, start: datetime, end: datetime) -> float:
        """Working time between two instants (0 when end <= start)."""
        if end <= start:
            return 0.0
        if self.spec is None:
            return (end - start).total_seconds()
        total = 0.0
        day = start.astimezone(self.tz).date()
        last = end.astimezone(self.tz).date()
        while day <= last:
            for a, b in self._periods_of(day):
                lo, hi = max(a, start), min(b, end)
                if hi > lo:
                    total += (hi - lo).total_seconds()
            day += timedelta(days=1)
        return total

    def add(self, start: datetime, seconds: float) -> datetime:
        """The instant when `seconds` of working time have passed since `start`."""
        if self.spec is None:
            return start + timedelta(seconds=seconds)
        left = seconds
        day = start.astimezone(self.tz).date()
        for _ in range(3660):  # ten years of days: a calendar with no working time cannot loop forever
            for a, b in self._periods_of(day):
                lo = max(a, start)
                if b <= lo:
                    continue
                span = (b - lo).total_seconds()
                if left <= span:
                    return (lo + timedelta(seconds=left)).astimezone(UTC)
                left -= span
            day += timedelta(days=1)
        raise ValueError(f"calendar {self.name!r} has no working time within ten years of {start}")
