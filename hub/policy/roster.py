"""Duty rosters (值班表): who of a unit is told, now.

In working hours on the unit's calendar the unit's day staff are on duty; outside them (nights, weekends,
holidays) one person by rotation, daily or weekly, turning over at `handover`; on the calendar's days off the
holiday rotation when there is one. One-off swaps name who stands in on a duty day. Each unit has a leader
(带班领导, fixed or by rotation), told when a case turns red, and the next level's duty leader after it stays
red. `on_duty()` is pure (roster, calendar, instant); `load_rosters` checks the file against the org tree, the
people and the calendars and names the file, path and line of what it refuses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from gridwatch.core.config import Strict, first_repeat
from gridwatch.core.errors import ConfigError
from gridwatch.core.yamlconf import load_sourced, problem
from hub.policy.calendar import Calendar
from hub.policy.org import Org

Shift = Literal["day", "night", "holiday"]


class Rotation(Strict):
    people: list[str] = Field(min_length=1, description="usernames, in turn")
    every: Literal["day", "week"] = "day"
    start: date = Field(description="the duty day of the first person's first turn")

    @field_validator("people", mode="before")
    @classmethod
    def _one(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    def who(self, duty_day: date) -> str:
        span = 1 if self.every == "day" else 7
        return self.people[((duty_day - self.start).days // span) % len(self.people)]


class Swap(Strict):
    date: date
    person: str
    role: Literal["duty", "leader"] = "duty"


class UnitRoster(Strict):
    unit: str
    calendar: str = Field("cn-mainland", description="working hours and days off of this unit (or 24x7)")
    handover: str = Field("08:30", pattern=r"^\d\d:\d\d$", description="when a duty day begins, local time")
    day: list[str] = Field(default_factory=list, description="day staff: on duty in working hours")
    night: Rotation | None = Field(None, description="out of working hours on working days (and days off, "
                                                     "without a holiday rotation)")
    holiday: Rotation | None = Field(None, description="on the calendar's days off: weekends and holidays")
    leader: Rotation | None = Field(None, description="带班领导: told when a case turns red; a name or a rotation")
    swaps: list[Swap] = Field(default_factory=list, description="one-off: who stands in on a duty day")

    @field_validator("leader", mode="before")
    @classmethod
    def _fixed(cls, v: Any) -> Any:
        return {"people": [v], "start": "2000-01-01"} if isinstance(v, str) else v

    @model_validator(mode="after")
    def _someone(self) -> UnitRoster:
        time.fromisoformat(self.handover)
        if not self.day and self.night is None and self.holiday is None:
            raise ValueError("a roster names day staff or a night rotation")
        return self

    def people(self) -> list[tuple[tuple[Any, ...], str]]:
        """Every username with its path in the file (to check they exist)."""
        out: list[tuple[tuple[Any, ...], str]] = [(("day", i), p) for i, p in enumerate(self.day)]
        for name in ("night", "holiday", "leader"):
            rot = getattr(self, name)
            if rot is not None:
                out += [((name, "people", i), p) for i, p in enumerate(rot.people)]
        out += [(("swaps", i, "person"), s.person) for i, s in enumerate(self.swaps)]
        return out


class RosterFile(Strict):
    rosters: list[UnitRoster] = Field(default_factory=list)

    @model_validator(mode="after")
    def _once(self) -> RosterFile:
        if (u := first_repeat(r.unit for r in self.rosters)) is not None:
            raise ValueError(f"unit {u!r} has two rosters")
        return self


@dataclass(frozen=True)
class Duty:
    unit: str
    shift: Shift
    duty_day: date
    people: tuple[str, ...]
    leader: str | None


def on_duty(roster: UnitRoster, calendar: Calendar, at: datetime) -> Duty:
    """Who of the unit is on duty at `at`: the day staff in working hours, else the night or holiday
    rotation's person of the duty day (a swap for that day first), and the leader of the duty day."""
    tz = calendar.tz if calendar.spec is not None else None
    local = at.astimezone(tz) if tz is not None else at
    hand = time.fromisoformat(roster.handover)
    duty_day = local.date() if local.time() >= hand else local.date() - timedelta(days=1)
    swaps = {(s.date, s.role): s.person for s in roster.swaps}
    leader = swaps.get((duty_day, "leader")) or (roster.leader.who(duty_day) if roster.leader else None)
    if roster.day and calendar.spec is not None and calendar.is_working_time(at):
        return Duty(roster.unit, "day", duty_day, tuple(roster.day), leader)
    off = calendar.spec is not None and not calendar.is_workday(duty_day)
    rot, shift = (roster.holiday, "holiday") if off and roster.holiday is not None else (roster.night, "night")
    if rot is None:  # a unit without anyone out of hours: its day staff are told
        return Duty(roster.unit, "night", duty_day, tuple(roster.day), leader)
    person = swaps.get((duty_day, "duty")) or rot.who(duty_day)
    return Duty(roster.unit, shift, duty_day, (person,), leader)  # type: ignore[arg-type]


class Rosters:
    """The rosters in force, by unit, with the calendars they count on."""

    def __init__(self, spec: RosterFile, calendars: dict[str, Calendar]) -> None:
        self.spec = spec
        self.by_unit = {r.unit: r for r in spec.rosters}
        self.calendars = calendars

    @classmethod
    def empty(cls) -> Rosters:
        return cls(RosterFile(), {})

    def duty(self, unit: str, at: datetime) -> Duty | None:
        r = self.by_unit.get(unit)
        if r is None:
            return None
        return on_duty(r, self.calendars.get(r.calendar, Calendar.always()), at)

    def everyone(self) -> set[str]:
        return {p for r in self.spec.rosters for _, p in r.people()}


def load_rosters(path: Path, org: Org, people: set[str] | None, calendars: dict[str, Calendar]) -> Rosters:
    """The rosters file, checked: units of the org tree, people with an account (None: not checked),
    calendars that exist."""
    spec, src = load_sourced(RosterFile, path)
    problems = []
    for i, r in enumerate(spec.rosters):
        if r.unit not in org.units:
            problems.append(problem(path, src, ("rosters", i, "unit"), f"unit {r.unit!r} is not in the org tree"))
        if r.calendar != "24x7" and r.calendar not in calendars:
            problems.append(problem(path, src, ("rosters", i, "calendar"),
                                    f"no calendar named {r.calendar!r} (known: {', '.join(sorted(calendars))})"))
        for loc, person in r.people():
            if people is not None and person not in people:
                problems.append(problem(path, src, ("rosters", i, *loc), f"no person {person!r} has an account"))
    if problems:
        raise ConfigError(problems)
    return Rosters(spec, calendars)
