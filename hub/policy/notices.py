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
from typing import Any, Protocol

from hub.policy.notify_config import ROBOTS, EmailChannel, Notify, Rule, SmsChannel, WebhookChannel
from hub.policy.org import Org
from hub.policy.roster import Rosters

GUARDED = {"yellow", "red", "escalated", "backup", "supervised"}
"""Kinds whose notices stop when the case's stage moves on before they are sent."""


class ContactLike(Protocol):
    mobile: str | None
    email: str | None
    wecom_user: str | None
    dingtalk_mobile: str | None


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
    channels = notify.channels
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
                    ch = channels[cid]
                    if ch.type in (*ROBOTS, "webhook") and ch.units and not any(
                            unit in org.units and org.within(unit, u) for u in ch.units):
                        continue  # another unit's robot
                    key = f"e{ev.event_id}:{template}:{person or '-'}:{cid}"
                    if key in out:
                        continue
                    d = Draft(key, kind, template, cid, cid, person, rule.urgent, due, guard, values={"unit": unit})
                    c = contacts.get(person) if person else None
                    if isinstance(ch, SmsChannel):
                        d.target = (c.mobile if c else None) or ""
                        d.problem = "" if d.target else "没有手机号 (no mobile number)"
                        if template not in ch.templates and kind not in ch.templates:
                            d.problem = d.problem or f"no SMS template for {template}"
                    elif isinstance(ch, EmailChannel):
                        d.target = (c.email if c else None) or ""
                        d.problem = "" if d.target else "没有邮箱 (no email address)"
                    elif isinstance(ch, WebhookChannel):
                        pass
                    elif c is not None:
                        d.mention = c.wecom_user if ch.type == "wecom" else c.dingtalk_mobile
                    if person is None and isinstance(ch, SmsChannel | EmailChannel):
                        continue  # a unit has no phone of its own
                    out[key] = d
