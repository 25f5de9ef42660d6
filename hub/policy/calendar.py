"""Working-time calendars for SLA clocks: 24x7, or working hours on working days, year by year.

A day is a working day when it is Monday-Friday and not a holiday, or when it is listed as a make-up
workday (调休: a weekend day worked in exchange for a holiday). A calendar file (`configs/calendars/`) is
named for what it is (`cn-mainland`) and holds its days `years:` by year, each year with the source its days
were checked against; a year marked `provisional` holds the statutory days only, until the State Council's
notice (with its 调休) is imported. A local calendar names a `base:` and adds its own days off and workdays
(a district's own holiday) on top of it.

The calendar knows which years it has data for: a year with no data is still counted Monday-Friday (a clock
must keep running), but `coverage()` says so, and the hub warns at start and daily, exports the days left as
a metric and shows a notice on `/healthz` and the board (`hub.policy.calendar_watch`). All arithmetic is on aware
datetimes, UTC out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BeforeValidator, Field, field_validator, model_validator

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


def _iso(v: Any) -> Any:
    """YAML reads a bare 2026-10-10 as a date; take it as its ISO text."""
    return [d.isoformat() if isinstance(d, date) else d for d in v] if isinstance(v, list) else v


def _checked(v: list[str]) -> list[str]:
    for spec in v:
        try:
            _days(spec)
        except ValueError as exc:
            raise ValueError(f"{spec!r}: expected YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD ({exc})") from None
    return v


def ranges(days: list[date]) -> list[str]:
    """Dates as the shortest list of `a` and `a..b` entries (what `calendar import` writes)."""
    out: list[str] = []
    run: list[date] = []
    for d in sorted(set(days)):
        if run and d - run[-1] == timedelta(days=1):
            run.append(d)
            continue
        if run:
            out.append(run[0].isoformat() if len(run) == 1 else f"{run[0]}..{run[-1]}")
        run = [d]
    if run:
        out.append(run[0].isoformat() if len(run) == 1 else f"{run[0]}..{run[-1]}")
    return out


Days = Annotated[list[str], BeforeValidator(_iso), AfterValidator(_checked)]


class CalendarYear(Strict):
    """One year's days off and make-up workdays, and where they were checked."""

    source: str = Field(min_length=1, description="the notice or package the days were checked against")
    provisional: bool = Field(False, description="statutory days only: the State Council's notice for the year "
                                                 "(with its 调休) is still to be imported")
    holidays: Days = Field(default_factory=list, description="dates or ranges a..b off work")
    workdays: Days = Field(default_factory=list, description="make-up workdays (调休), e.g. a Saturday")



class CalendarFile(Strict):
    name: str = Field(min_length=1, max_length=64)
    tz: str = "Asia/Shanghai"
    hours: list[tuple[str, str]] = Field(default_factory=lambda: [("09:00", "12:00"), ("13:30", "17:30")],
                                         description="working periods of a working day, local time")
    base: str | None = Field(None, description="a calendar whose years this one takes, adding its own days "
                                               "(a district's local days off)")
    years: dict[int, CalendarYear] = Field(default_factory=dict, description="each year's days, by year")
    holidays: Days = Field(default_factory=list, description="days off of this calendar's own (local "
                                                                  "days off; in a file without `years`, the "
                                                                  "days of the years they fall in)")
    workdays: Days = Field(default_factory=list, description="workdays of this calendar's own")


    @field_validator("years")
    @classmethod
    def _in_year(cls, years: dict[int, CalendarYear]) -> dict[int, CalendarYear]:
        for y, spec in years.items():
            for d in (d for s in (*spec.holidays, *spec.workdays) for d in _days(s)):
                if not date(y - 1, 12, 1) <= d <= date(y + 1, 1, 31):
                    raise ValueError(f"{y}: {d} is not in {y} (nor the month either side)")
        return years

    @model_validator(mode="after")
    def _hours(self) -> CalendarFile:
        ZoneInfo(self.tz)
        prev = time(0, 0)
        for a, b in self.hours:
            ta, tb = time.fromisoformat(a), time.fromisoformat(b)
            if not prev <= ta < tb:
                raise ValueError(f"hours: periods must be increasing and non-empty, got {a}-{b}")
            prev = tb
        if self.base is not None and self.years:
            raise ValueError("a calendar with a `base` takes its years from it: give only its own holidays and "
                             "workdays")
        return self

    @property
    def covered(self) -> set[int]:
        """Years the file itself has data for: its `years`, or (a file without them, the old one-year form)
        the years its own days fall in."""
        if self.years:
            return set(self.years)
        return {d.year for s in (*self.holidays, *self.workdays) for d in _days(s)}


@dataclass(frozen=True)
class Coverage:
    """What a calendar knows on a given day: the last day of the run of years with data that starts with the
    current one (None: no data for the current year), and the provisional years in that run."""

    calendar: str
    until: date | None
    days_left: int
    provisional: tuple[int, ...]


class Calendar:
    """Working time arithmetic. `Calendar.always()` is the 24x7 clock."""

    def __init__(self, spec: CalendarFile | None = None, base: Calendar | None = None) -> None:
        self.spec = spec
        self.name = spec.name if spec else "24x7"
        self.path: Path | None = None
        """The file it was loaded from (`hub.files.calendar_files.load_calendars`), for messages."""
        self.years: set[int] = set()
        self.provisional: set[int] = set()
        if spec is None:
            return
        if spec.base is not None and (base is None or base.spec is None):
            raise ValueError(f"calendar {spec.name!r}: base calendar {spec.base!r} is not loaded")
        self.tz = ZoneInfo(spec.tz)
        self.holidays: set[date] = set(base.holidays) if base is not None else set()
        self.workdays: set[date] = set(base.workdays) if base is not None else set()
        if base is not None:
            self.years, self.provisional = set(base.years), set(base.provisional)
        for y, year in sorted(spec.years.items()):
            self.holidays |= {d for s in year.holidays for d in _days(s)}
            self.workdays |= {d for s in year.workdays for d in _days(s)}
            self.years.add(y)
            if year.provisional:
                self.provisional.add(y)
        own_off = {d for s in spec.holidays for d in _days(s)}
        own_work = {d for s in spec.workdays for d in _days(s)}
        self.holidays = (self.holidays - own_work) | own_off
        self.workdays = (self.workdays - own_off) | own_work
        if not spec.years and spec.base is None:
            self.years = spec.covered
        self.periods = [(time.fromisoformat(a), time.fromisoformat(b)) for a, b in spec.hours]

    @classmethod
    def always(cls) -> Calendar:
        return cls(None)

    @classmethod
    def from_file(cls, path: str | Path, base: Calendar | None = None) -> Calendar:
        return cls(load(CalendarFile, path), base)

    def coverage(self, today: date) -> Coverage:
        """How far the data reaches from `today` (24x7 needs none: it reaches for ever)."""
        if self.spec is None:
            return Coverage(self.name, date.max, 10 ** 6, ())
        year = today.year
        if year not in self.years:
            return Coverage(self.name, None, 0, ())
        while year + 1 in self.years:
            year += 1
        until = date(year, 12, 31)
        return Coverage(self.name, until, (until - today).days + 1,
                        tuple(sorted(y for y in self.provisional if today.year <= y <= year)))

    def is_workday(self, d: date) -> bool:
        if d in self.workdays:
            return True
        return d.weekday() < 5 and d not in self.holidays

    def is_working_time(self, at: datetime) -> bool:
        """Within a working period of a working day (24x7: always)."""
        if self.spec is None:
            return True
        local = at.astimezone(self.tz)
        return any(a <= local < b for a, b in self._periods_of(local.date()))

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
