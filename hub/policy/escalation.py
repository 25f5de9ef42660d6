"""Escalation decisions (逐级上报, AB角, 督办): plain logic over a case's clock reading.

The scheduler asks `decide()` when a case's light turns red or a reminder falls due, and carries out
what comes back; nothing here touches a database or the clock of the machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from hub.policy.org import Org
from hub.policy.sla import ClockReading, Stage

Action = Literal["notify_backup", "escalate", "remind"]


@dataclass(frozen=True, slots=True)
class CaseSituation:
    owner: str  # the unit holding the case
    grid: str  # the grid where it happened
    stage: Stage  # the running stage
    backup_notified: bool  # the grid's backup has already been asked (accept stage)
    last_reminder: datetime | None


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    unit: str  # who is notified / takes the case / is reminded
    reason: str


def decide(case: CaseSituation, reading: ClockReading, org: Org, *, now: datetime,
           remind_every_s: float) -> Decision | None:
    """What to do about a case now; None while its running stage is not red."""
    if reading.light != "red" or reading.paused:
        return None
    owner = org.units[case.owner]
    if case.stage == "accept" and owner.level == "grid" and owner.backup and not case.backup_notified:
        return Decision("notify_backup", owner.backup,
                        f"{owner.id} did not accept in time; backup grid {owner.backup} notified first")
    parent = org.parent(case.owner)
    if parent is not None:
        what = {"dispatch": "dispatched", "accept": "accepted", "resolve": "resolved", "feedback": "verified",
                "callback": "called back"}[case.stage]
        return Decision("escalate", parent, f"not {what} in time at {case.owner}; escalated to {parent}")
    if case.last_reminder is None or now - case.last_reminder >= timedelta(seconds=remind_every_s):
        return Decision("remind", case.owner, f"overdue at the top of the chain ({case.owner}); reminder")
    return None
