"""The case life cycle as a pure transition table: (state, action) → new state, or a refusal reason.

The stages as the command centers run them (issue 13), each a state whose clock runs against its limit:

    reported ─dispatch▶ open ─accept▶ accepted ─resolve▶ resolved ─close▶ verified ─callback▶ closed
     派单                签收           办理                办结→核查          回访               结案
                         ▲  └dispatch┘  ▲      └──reject─────┘  (close goes straight to closed when
                         │ (re-dispatch)│                        the policy asks for no callback)
                         └──────────────┴── callback `unsatisfied` reopens (policy `reopen_unsatisfied`)
      any active state ─hold▶ on_hold ─resume▶ (the state it was held from)

A case waits in `reported` only when routing says a command center dispatches it by hand; otherwise it is
dispatched at once and opens in `open`. `transfer` (another owner) keeps the state and is refused once
closed; `comment` is allowed in every state. What an action also needs (a note, a unit, a rating) is
`requirement()`. Nothing here touches a database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Literal, get_args

from hub.policy.sla import Stage

Status = Literal["reported", "open", "accepted", "resolved", "verified", "on_hold", "closed"]
Action = Literal["dispatch", "accept", "resolve", "close", "reject", "callback", "hold", "resume", "transfer",
                 "comment"]
TimelineAction = Action | Literal[
    # intake: alerts and the conditions they report
    "opened", "merged", "repeat", "severity_raised", "condition_returned", "condition_cleared", "reopened",
    # early warning (预警): an episode's level climbed, or fell
    "warning_raised", "warning_lowered",
    # the clocks: the scheduler's lights, escalation, backup grid (AB角) and reminders
    "light", "escalated", "backup_notified", "reminder",
    # people and controls: assignment, photos (and gateways' recorded clips), 延期, 挂起, 督办, 退回, 协办 parts
    "assigned", "photo", "clip", "extension_requested", "extension_approved", "extension_refused",
    "suspension_requested", "suspension_approved", "suspension_refused", "supervised", "supervision_replied",
    "sent_back", "part_signed", "part_reported",
    # 视频复核: a camera asked to turn to a sensor's preset for a picture, and how it went
    "look_asked", "look_done",
    # notices to people (hub.notify.notifier): delivered, failed or stopped
    "notified"]
"""Every action a timeline entry may record: the case actions of the table above and what intake, the
scheduler and the controls write. The stream's and the board's words for them key on these."""
TIMELINE_ACTIONS: Final[tuple[str, ...]] = (*get_args(Action), *get_args(get_args(TimelineAction)[1]))
Rating = Literal["satisfied", "basically", "unsatisfied"]
"""回访评价: 满意 / 基本满意 / 不满意."""
STATUSES: Final[tuple[Status, ...]] = get_args(Status)
ACTIONS: Final[tuple[Action, ...]] = get_args(Action)
RATINGS: Final[tuple[Rating, ...]] = get_args(Rating)
ACTIVE: Final[tuple[Status, ...]] = ("reported", "open", "accepted", "resolved", "verified")

SAME: Final = "same"  # the action keeps the state
HELD_FROM: Final = "held_from"  # back to the state the case was held from
VERIFIED: Final = "after_verify"  # to `verified` when the policy asks for a callback, else `closed`
CALLED: Final = "after_callback"  # to `closed`, or back to `accepted` when the rating reopens it
Target = Status | Literal["same", "held_from", "after_verify", "after_callback"]

# action -> (states it is allowed from, the state it leads to)
TABLE: Final[dict[Action, tuple[tuple[Status, ...], Target]]] = {
    "dispatch": (("reported", "open"), "open"),
    "accept": (("open",), "accepted"),
    "resolve": (("accepted",), "resolved"),
    "close": (("resolved",), VERIFIED),
    "reject": (("resolved",), "accepted"),
    "callback": (("verified",), CALLED),
    "hold": (ACTIVE, "on_hold"),
    "resume": (("on_hold",), HELD_FROM),
    "transfer": ((*ACTIVE, "on_hold"), SAME),
    "comment": (STATUSES, SAME),
}

# action -> (the argument it needs, the reason given when it is missing)
NEEDS: Final[dict[Action, tuple[Literal["note", "unit", "rating"], str]]] = {
    "resolve": ("note", "resolve needs a note saying what was done"),
    "reject": ("note", "reject needs a note saying what the verification found"),
    "hold": ("note", "hold needs a reason"),
    "comment": ("note", "comment needs text"),
    "transfer": ("unit", "transfer needs a unit of the org tree"),
    "dispatch": ("unit", "dispatch needs a unit of the org tree"),
    "callback": ("rating", "callback needs the rating: satisfied, basically or unsatisfied"),
}


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: str
    code: str = "conflict"
    """`wrong_state` (params action, status, allowed) or `needs_note` / `needs_unit` / `needs_rating`."""
    params: dict[str, Any] = field(default_factory=dict)


def transition(status: Status, action: Action, held_from: Status | None = None, *, callback: bool = False,
               rating: Rating | None = None, reopen_unsatisfied: bool = True) -> Status | Refusal:
    """The state after `action`, or why the action is refused in this state. `callback`: the case's policy
    asks for a callback (回访) after verification; `rating`: the callback's answer."""
    allowed, target = TABLE[action]
    if status not in allowed:
        return Refusal(f"cannot {action} a case that is {status} (allowed from: {', '.join(allowed)})",
                       "wrong_state", {"action": action, "status": status, "allowed": list(allowed)})
    if target == SAME:
        return status
    if target == HELD_FROM:
        return held_from or "open"
    if target == VERIFIED:
        return "verified" if callback else "closed"
    if target == CALLED:
        return "accepted" if rating == "unsatisfied" and reopen_unsatisfied else "closed"
    return target


def requirement(action: Action, *, note: str | None, unit: str | None, rating: str | None = None) -> Refusal | None:
    """The argument an action lacks, if any."""
    need = NEEDS.get(action)
    if need is None:
        return None
    field, reason = need
    given = {"note": note, "unit": unit, "rating": rating if rating in RATINGS else None}[field]
    return Refusal(reason, f"needs_{field}", {"action": action}) if not given else None


STAGE_OF: Final[dict[Status, Stage]] = {"reported": "dispatch", "open": "accept", "accepted": "resolve",
                                        "resolved": "feedback", "verified": "callback"}


def clock_stage(status: Status, held_from: Status | None) -> Stage | None:
    """The stage whose clock runs (挂单计时): waiting to be dispatched, signed for, handled, verified or
    called back; a held case keeps the stage it was held in (its clock paused)."""
    effective = held_from if status == "on_hold" else status
    return STAGE_OF.get(effective) if effective is not None else None
