"""Calendars running out, said loudly: which working-time calendars in use have no data for today's year or
for the next `HORIZON`, and which SLA policy names a calendar that is not there.

`notices()` is pure (calendars, policies, today); the hub logs its warnings at start and once a day
(`hub.cases.scheduler`), exports the days left (`gridwatch_hub_calendar_days_left`), puts the warnings on
`/healthz`'s body and shows them all on the board to administrators; `gridwatch hub check` prints them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import Any, Literal

from hub.policy.calendar import Calendar
from hub.policy.sla import SlaFile

HORIZON = timedelta(days=60)
"""A calendar whose data ends sooner than this from today is named: clocks started now can run past it."""


@dataclass(frozen=True)
class CalendarNotice:
    calendar: str
    level: Literal["warning", "info"]
    days_left: int
    until: date | None
    text: str
    """Chinese, for the board and /healthz."""
    detail: str
    """English, for the log and `hub check`."""

    def body(self) -> dict[str, Any]:
        d = asdict(self)
        d["until"] = self.until.isoformat() if self.until else None
        return d


def in_use(sla: SlaFile) -> dict[str, list[str]]:
    """Working-time calendars the SLA policies name, with the policies naming each."""
    out: dict[str, list[str]] = {}
    for p in sla.policies:
        if p.calendar != "24x7":
            out.setdefault(p.calendar, []).append(p.id)
    return out


def notices(calendars: dict[str, Calendar], sla: SlaFile, today: date) -> list[CalendarNotice]:
    out: list[CalendarNotice] = []
    for name, policies in sorted(in_use(sla).items()):
        cal = calendars.get(name)
        who = ", ".join(policies)
        if cal is None:
            out.append(CalendarNotice(name, "warning", 0, None,
                                      f"工作日历 {name} 不存在：策略 {who} 的计时按 7×24 小时计算",
                                      f"calendar {name!r} named by policies {who} is not loaded: their clocks "
                                      f"run 24x7"))
            continue
        where = f" ({cal.path})" if cal.path else ""
        cov = cal.coverage(today)
        if cov.until is None:
            out.append(CalendarNotice(name, "warning", 0, None,
                                      f"工作日历 {name} 缺少 {today.year} 年数据：节假日与调休未知，周一至周五均按"
                                      f"工作日计时（策略 {who}），请导入 {today.year} 年放假安排",
                                      f"calendar {name!r}{where} has no data for {today.year}: every Monday-Friday "
                                      f"counts as a working day for policies {who}; import the year's days "
                                      f"(`gridwatch hub calendar import`)"))
            continue
        if today + HORIZON > cov.until:
            out.append(CalendarNotice(name, "warning", cov.days_left, cov.until,
                                      f"工作日历 {name} 的数据截至 {cov.until}，仅剩 {cov.days_left} 天：请导入 "
                                      f"{cov.until.year + 1} 年放假安排（国务院办公厅通知）",
                                      f"calendar {name!r}{where} has data up to {cov.until}, {cov.days_left} days "
                                      f"from now: import {cov.until.year + 1}'s days (State Council notice) "
                                      f"before clocks run past it"))
        for y in cov.provisional:
            if date(y, 1, 1) <= today + HORIZON:
                out.append(CalendarNotice(name, "info", cov.days_left, cov.until,
                                          f"工作日历 {name} 的 {y} 年为法定节假日推定数据，尚无调休安排：国务院"
                                          f"办公厅通知发布后请导入",
                                          f"calendar {name!r}{where}: {y} holds the statutory days only "
                                          f"(provisional); import the State Council's notice for {y} when it "
                                          f"is out"))
    return out


def days_left(calendars: dict[str, Calendar], sla: SlaFile, today: date) -> dict[str, int]:
    """Days of data left from today for each working-time calendar in use (0: none for this year)."""
    return {name: calendars[name].coverage(today).days_left if name in calendars else 0 for name in in_use(sla)}
