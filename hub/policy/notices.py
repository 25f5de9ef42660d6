"""Which notices a case event makes: pure (the event, the policy, the rosters, the org tree, people's contact
points, an instant), no I/O.

An event's kind and the unit it is about come from its timeline entry (`kind_of`): a case opened or
dispatched to a unit, its light turning yellow or red, escalated to a level, offered to the backup grid
(AB角), 督办 ordered (and its reply overdue: planned with the order, due at its deadline, stopped by the
reply), 延期/挂起 decided, sent back, reopened, an agent's offline case opened. Each rule that
matches names recipients (`duty`, `day`, `leader`, `next_leader` by the rosters at the event's instant, or
`unit`: the unit's robot or webhook without a person) and channels; one notice per (event, template,
recipient, channel) — its `key` makes planning the same event twice harmless. A rule with `after` sends
later, and a guard (the case's status and stage start) stops it when the case moved on meanwhile: 签收 ends
the escalation notices of the stage.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from hub.policy.calendar_watch import CalendarNotice
from hub.policy.notify_config import ContactLike, Notify, Rule
from hub.policy.org import Org
from hub.policy.roster import Rosters

GUARDED = {"yellow", "red", "escalated", "backup", "supervised"}
"""Kinds whose notices stop when the case's stage moves on before they are sent."""


@dataclass(frozen=True)
class EventFacts:
    """What the planner reads of a case event."""

    event_id: int
    at: datetime
    action: str
    detail: dict[str, Any]
    case_id: str
    category: str
    severity: str
    owner: str
    status: str
    stage_started_at: datetime


@dataclass
class Draft:
    key: str
    kind: str
    template: str
    channel: str
    target: str
    recipient: str | None
    urgent: bool
    due_at: datetime
    guard: dict[str, Any] | None
    mention: str | None = None
    values: dict[str, str] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)
    """What the channel needs beside the rendered template (an SMS template code)."""
    problem: str = ""
    """Set when the recipient cannot be reached on the channel (no mobile): recorded as failed, with it."""


def kind_of(action: str, detail: dict[str, Any], category: str, owner: str) -> tuple[str, str] | None:
    """(kind, the unit it is about) of a timeline entry, or None when nobody is told about it."""
    if action == "opened":
        return ("agent_offline" if category == "agent_offline" else "opened", owner)
    if action == "dispatch":
        return "dispatched", owner
    if action == "light" and detail.get("light") in ("yellow", "red"):
        return str(detail["light"]), str(detail.get("owner") or owner)
    if action == "escalated":
        return "escalated", str(detail.get("to") or owner)
    if action == "backup_notified":
        return "backup", str(detail.get("backup") or owner)
    if action == "supervised":
        return "supervised", owner
    if action == "warning_raised":  # an early warning climbed (黄 → 橙 → 红)
        return "warning_raised", owner
    if action in ("extension_approved", "extension_refused"):
        return "extension_decided", owner
    if action in ("suspension_approved", "suspension_refused"):
        return "suspension_decided", owner
    if action in ("sent_back", "reject"):
        return "sent_back", owner
    if action == "reopened" or (action == "callback" and detail.get("rating") == "unsatisfied"):
        return "reopened", owner
    return None


def _matches(rule: Rule, kind: str, unit: str, ev: EventFacts, org: Org) -> bool:
    return (kind in rule.events
            and (not rule.categories or ev.category in rule.categories)
            and (not rule.severities or ev.severity in rule.severities)
            and (not rule.units or any(unit in org.units and org.within(unit, u) for u in rule.units)))


def recipients(role: str, unit: str, rosters: Rosters, org: Org, at: datetime) -> list[str | None]:
    """People of a role for the unit at an instant (`unit`: [None], the unit itself)."""
    if role == "unit":
        return [None]
    if role == "admins":  # the administrators are told of the hub's own matters (calendars), not of cases
        return []
    if role == "next_leader":
        up = org.parent(unit) if unit in org.units else None
        while up is not None:
            duty = rosters.duty(up, at)
            if duty is not None and duty.leader is not None:
                return [duty.leader]
            up = org.parent(up)
        return []
    duty = rosters.duty(unit, at)
    if duty is None:
        return []
    if role == "leader":
        return [duty.leader] if duty.leader else []
    if role == "day":
        r = rosters.by_unit[unit]
        return list(r.day)
    return list(duty.people)


def _later(at: datetime, quiet: tuple[Any, Any] | None, tz: Any) -> datetime:
    """The end of quiet hours when `at` falls in them, else `at`."""
    if quiet is None:
        return at
    start, end = quiet
    local = at.astimezone(tz)
    t = local.time()
    inside = (start <= t or t < end) if start > end else (start <= t < end)
    if not inside:
        return at
    day = local.date() if t < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tz)


def plan(ev: EventFacts, notify: Notify, rosters: Rosters, org: Org, contacts: Mapping[str, ContactLike],
         tz: Any) -> list[Draft]:
    found = kind_of(ev.action, ev.detail, ev.category, ev.owner)
    if found is None:
        return []
    kinds: list[tuple[str, str, datetime, dict[str, Any]]] = [(*found, ev.at, {})]
    if ev.action == "supervised" and ev.detail.get("until") and ev.detail.get("request") is not None:
        # 督办 with a reply deadline: told again when the deadline passes unanswered (the guard: the request)
        kinds.append(("supervision_overdue", ev.owner, datetime.fromisoformat(str(ev.detail["until"])),
                      {"request": int(ev.detail["request"])}))
    out: dict[str, Draft] = {}
    for kind, unit, when, extra in kinds:
        _plan_kind(out, kind, unit, when, extra, ev, notify, rosters, org, contacts, tz)
    return list(out.values())


def _plan_kind(out: dict[str, Draft], kind: str, unit: str, when: datetime, extra: dict[str, Any], ev: EventFacts,
               notify: Notify, rosters: Rosters, org: Org, contacts: Mapping[str, ContactLike], tz: Any) -> None:
    for rule in notify.spec.rules:
        if not _matches(rule, kind, unit, ev, org):
            continue
        template = rule.template or ("still_red" if rule.after > 0 and kind == "red" else kind)
        due = _later(when + timedelta(seconds=rule.after), None if rule.urgent else notify.quiet_times(), tz)
        guard = ({"status": ev.status, "stage_started_at": ev.stage_started_at.isoformat()}
                 if kind in GUARDED or rule.after > 0 else None)
        if extra:
            guard = extra
        for role in rule.to:
            for person in recipients(role, unit, rosters, org, ev.at):
                for cid in rule.via:
                    key = f"e{ev.event_id}:{template}:{person or '-'}:{cid}"
                    d = _draft(key, notify, cid, person, unit, org, contacts, template, kind)
                    if d is None or key in out:
                        continue
                    d.urgent, d.due_at, d.guard = rule.urgent, due, guard
                    out[key] = d


def _draft(key: str, notify: Notify, cid: str, person: str | None, unit: str | None, org: Org | None,
           contacts: Mapping[str, ContactLike], template: str, kind: str) -> Draft | None:
    """One recipient on one channel, or None when the channel does not serve them (another unit's robot; a
    unit, which has no phone or mailbox of its own). `unit` None: the hub's own matter, for every robot."""
    ch = notify.channels.get(cid)
    if ch is None or (ch.personal and person is None):
        return None
    if unit is not None and org is not None and not ch.serves(unit, org):
        return None
    a = ch.address(contacts.get(person) if person else None, template, kind)
    return Draft(key, kind, template, cid, a.target, person, False, datetime.min, None, mention=a.mention,
                 values={"unit": unit or ""}, extra=a.extra, problem=a.problem)


def plan_calendar(said: list[CalendarNotice], notify: Notify, admins: list[str],
                  contacts: Mapping[str, ContactLike], today: Any, now: datetime) -> list[Draft]:
    """A working-time calendar running out (`hub.policy.calendar_watch`, warnings only): one notice a day per
    calendar, recipient and channel, to the rules answering `calendar` (`admins`, or `unit`: a robot or
    webhook with no person). The notice's `unit` value is the calendar's name, `detail` its words."""
    out: list[Draft] = []
    for n in (n for n in said if n.level == "warning"):
        for rule in (r for r in notify.spec.rules if "calendar" in r.events):
            people: list[str | None] = [*(admins if "admins" in rule.to else []),
                                        *([None] if "unit" in rule.to else [])]
            for person in people:
                for cid in rule.via:
                    d = _draft(f"calendar:{n.calendar}:{today}:{person or '-'}:{cid}", notify, cid, person, None, None,
                               contacts, "calendar", "calendar")
                    if d is None:
                        continue
                    d.urgent, d.due_at = rule.urgent, now
                    d.values = {"unit": n.calendar, "detail": n.text}
                    out.append(d)
    return out
