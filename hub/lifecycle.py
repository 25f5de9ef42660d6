"""The case life cycle as a pure transition table: (state, action) → new state, or a refusal reason.

    open ──accept──▶ accepted ──resolve──▶ resolved ──close──▶ closed
      └──────────┬──────┴────────────┬─────────┘
               hold ▶ on_hold ──resume──▶ (the state it was held from)

`transfer` (another owner) keeps the state and is refused once closed; `comment` is allowed in every
state. What an action also needs (a note, a unit) is `requirement()`. Nothing here touches a database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Literal, get_args

from hub.sla import Stage

Status = Literal["open", "accepted", "resolved", "on_hold", "closed"]
Action = Literal["accept", "resolve", "close", "hold", "resume", "transfer", "comment"]
STATUSES: Final[tuple[Status, ...]] = get_args(Status)
ACTIONS: Final[tuple[Action, ...]] = get_args(Action)
ACTIVE: Final[tuple[Status, ...]] = ("open", "accepted", "resolved")

SAME: Final = "same"  # the action keeps the state
HELD_FROM: Final = "held_from"  # back to the state the case was held from
Target = Status | Literal["same", "held_from"]

# action -> (states it is allowed from, the state it leads to)
TABLE: Final[dict[Action, tuple[tuple[Status, ...], Target]]] = {
    "accept": (("open",), "accepted"),
    "resolve": (("accepted",), "resolved"),
    "close": (("resolved",), "closed"),
    "hold": (ACTIVE, "on_hold"),
    "resume": (("on_hold",), HELD_FROM),
    "transfer": ((*ACTIVE, "on_hold"), SAME),
    "comment": (STATUSES, SAME),
}

# action -> (the argument it needs, the reason given when it is missing)
NEEDS: Final[dict[Action, tuple[Literal["note", "unit"], str]]] = {
    "resolve": ("note", "resolve needs a note saying what was done"),
    "hold": ("note", "hold needs a reason"),
    "comment": ("note", "comment needs text"),
    "transfer": ("unit", "transfer needs a unit of the org tree"),
}


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: str
    code: str = "conflict"
    """`wrong_state` (params action, status, allowed) or `needs_note` / `needs_unit` (params action)."""
    params: dict[str, Any] = field(default_factory=dict)


def transition(status: Status, action: Action, held_from: Status | None = None) -> Status | Refusal:
    """The state after `action`, or why the action is refused in this state."""
    allowed, target = TABLE[action]
    if status not in allowed:
        return Refusal(f"cannot {action} a case that is {status} (allowed from: {', '.join(allowed)})",
                       "wrong_state", {"action": action, "status": status, "allowed": list(allowed)})
    if target == SAME:
        return status
    if target == HELD_FROM:
        return held_from or "open"
    return target


def requirement(action: Action, *, note: str | None, unit: str | None) -> Refusal | None:
    """The argument an action lacks, if any."""
    need = NEEDS.get(action)
    if need is None:
        return None
    field, reason = need
    return Refusal(reason, f"needs_{field}", {"action": action}) if not (note if field == "note" else unit) else None


STAGE_OF: Final[dict[Status, Stage]] = {"open": "accept", "accepted": "resolve", "resolved": "feedback"}


def clock_stage(status: Status, held_from: Status | None) -> Stage | None:
    """The stage whose clock runs (挂单计时) in a state: waiting to be accepted, resolved or closed; a
    held case keeps the stage it was held in (its clock paused)."""
    effective = held_from if status == "on_hold" else status
    return STAGE_OF.get(effective) if effective is not None else None
