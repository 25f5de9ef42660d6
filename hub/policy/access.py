"""Who sees a case and who may do what to it now: the one access policy of the hub.

Pure: every decision takes the org tree, the caller (`Principal`) and the case (or an event's fields) and
returns an answer; nothing here reads the database or the request. The case list (through the store's
`visible_clause`, the SQL twin of `sees`), the case page, the map, the event stream, the MQTT unit topics,
the controls and the board's offered actions all ask this module.

Relations of a caller to a case (`relation`), strongest first:

- ``tree``: no unit (an admin, a machine key of the whole district): everything;
- ``holder``: the case is held within the caller's subtree (its own unit or a level above it);
- ``backup``: the caller is the backup grid (AB角) the case was offered to, not yet signed for;
- ``verifier``: the case waits for 核查 and happened in the caller's subtree (a department's result is
  checked on the spot by the grid);
- ``assist``: the caller's subtree holds a part of its joint handling (协办);
- ``witness``: the case happened in the caller's subtree but is held elsewhere (it sees, it does not act);
- ``outside``: none of these: the case does not exist for the caller (404).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

from hub.config import Role
from hub.policy.lifecycle import ACTIONS, Action, Refusal, transition
from hub.policy.org import Org

if TYPE_CHECKING:  # the stored case, read by attribute only
    from hub.store.models import Case

Scope = set[str] | None
"""The units a caller sees (None: all); `hub.store.cases.visible_clause` is the same rule in SQL."""

Relation = Literal["tree", "holder", "backup", "verifier", "assist", "witness", "outside"]

Control = Literal["extension", "decide_extension", "decide_suspension", "suspension", "send_back", "supervise",
                  "reply_supervision", "part_sign", "part_report"]
"""The case controls beside the lifecycle actions (hub.controls, hub.parts) the board may offer."""

READERS: Final[tuple[Role, ...]] = ("operator", "viewer", "admin")
"""Roles that read cases; edge keys only send alerts and heartbeats."""
ACTORS: Final[tuple[Role, ...]] = ("operator", "admin")
"""Roles that act on cases; viewers and edge keys only read (edge keys only send alerts)."""
BACKUP_ACTIONS: Final[tuple[Action, ...]] = ("accept", "comment")
VERIFY_ACTIONS: Final[tuple[Action, ...]] = ("close", "reject", "comment")


@dataclass(frozen=True)
class Principal:
    name: str  # a key's name, or a person's username: what the timeline records as the actor
    role: Role
    unit: str | None  # None: the whole tree (edge, admin)
    grids: frozenset[str] | None = None  # edge keys: the grids they may send alerts for; None = all
    person: str | None = None  # a signed-in person's own name (None: a machine's key)
    limited: str | None = None  # a session that may only enrol a second factor / change an expired password


@dataclass(frozen=True, slots=True)
class Waiting:
    """A request on the case still waiting for its decision, as the controls see it."""

    kind: str
    requested_by: str


@dataclass(frozen=True, slots=True)
class Part:
    """One assisting unit's part of joint handling (协办) and how far it is."""

    unit: str
    signed: bool
    reported: bool


# ---- seeing ------------------------------------------------------------------------------------------
def scope(org: Org, who: Principal) -> Scope:
    """The units whose cases the caller sees; None = the whole tree (also for a unit at the top of it: no
    `owner IN (...) OR grid IN (...)` clause then, which would keep the database from reading cases in id
    order and make every page of a long walk scan them all)."""
    if not who.unit:
        return None
    units = org.subtree(who.unit)
    return None if len(units) == len(org.units) else units


def seen_from(scope: Scope, *, owner: str, grid: str, backup: str | None, assist: Iterable[str]) -> bool:
    """A case is seen from the subtree that owns it or where it happened, by the backup grid (AB角) it was
    offered to, and by the assisting units of its joint handling (协办). `store.visible_clause` is this rule
    in SQL; `units_seeing` is it turned round."""
    if scope is None:
        return True
    return owner in scope or grid in scope or (backup is not None and backup in scope) or any(
        u in scope for u in assist)


def sees(org: Org, who: Principal, case: Case) -> bool:
    """The caller reads cases and this one lies in its view."""
    return who.role in READERS and seen_from(scope(org, who), owner=case.owner, grid=case.grid,
                                             backup=case.backup, assist=case.assist or ())


def units_seeing(org: Org, *, owner: str, grid: str, backup: str | None, assist: Iterable[str]) -> set[str]:
    """The units that see a case: those on the chains above its grid, its owner, the backup grid it was
    offered to and its assisting units (for the stream's subscribers and the MQTT unit topics)."""
    units: set[str] = set()
    for u in (grid, owner, backup, *assist):
        if u is not None and u in org.units:
            units.update(org.chain(u))
    return units


def grids_seen(org: Org, who: Principal) -> set[str] | None:
    """The grids whose devices the caller sees (None: all)."""
    s = scope(org, who)
    return None if s is None else {u for u in s if org.units[u].level == "grid"}


# ---- relations ---------------------------------------------------------------------------------------
def holds(org: Org, who: Principal, case: Case) -> bool:
    """The case is held within the caller's subtree: the caller may act on it (roles are checked apart)."""
    return who.unit is None or case.owner in org.subtree(who.unit)


def self_held(org: Org, who: Principal, case: Case) -> bool:
    """The caller's own unit holds the case and has a dispatching level above it: a hold (挂起) must be
    asked for and approved, a dispatch is not its to make, and it may send the case back (退回)."""
    return who.unit == case.owner and org.parent(case.owner) is not None


def as_backup(org: Org, who: Principal, case: Case) -> bool:
    """The caller is the backup grid (AB角) the case was offered to, and it has not been signed for yet: it
    may sign for it (accept, which makes the case its own) or comment."""
    return (who.unit is not None and case.backup is not None and case.status == "open"
            and case.backup in org.subtree(who.unit) and not holds(org, who, case))


def verifies(org: Org, who: Principal, case: Case) -> bool:
    """核查 is done by the unit holding the case or above it, or by the grid where the case happened (a
    department's result is checked on the spot by the grid)."""
    return holds(org, who, case) or (who.unit is not None and case.status == "resolved"
                                     and case.grid in org.subtree(who.unit))


def part_holder(org: Org, who: Principal, unit: str) -> bool:
    """The caller works for the assisting unit (协办) or above it."""
    return who.unit is None or unit in org.subtree(who.unit)


def relation(org: Org, who: Principal, case: Case) -> Relation:
    """The strongest relation of the caller to the case (see the module's docstring)."""
    if who.unit is None:
        return "tree"
    if holds(org, who, case):
        return "holder"
    if as_backup(org, who, case):
        return "backup"
    if verifies(org, who, case):
        return "verifier"
    if any(part_holder(org, who, u) for u in case.assist or ()):
        return "assist"
    return "witness" if sees(org, who, case) else "outside"


# ---- acting ------------------------------------------------------------------------------------------
def dispatches(org: Org, who: Principal, case: Case) -> bool:
    """派单 is a command center's: a case waiting for it, a case a level above the caller's was dispatched to
    (re-dispatch), or one a command center holds itself (sent back to it); not a grid's or a department's own."""
    if who.unit is None or case.status == "reported" or not self_held(org, who, case):
        return True
    return org.units[case.owner].level not in ("grid", "department")


def reachable(org: Org, who: Principal, unit: str | None) -> bool:
    """A unit the caller may give a case to: within its subtree, or a functional department attached to a
    level above it (the district's departments serve the streets)."""
    if who.unit is None or unit is None or unit not in org.units:
        return True  # no unit, or not one of the tree: the case layer says what is missing
    if unit in org.subtree(who.unit):
        return True
    u = org.units[unit]
    return u.level == "department" and u.parent in org.chain(who.unit)


def may_decide(org: Org, unit: str | None, case: Case) -> bool:
    """The dispatching level decides (延期, 挂起) and orders 督办: a unit strictly above the one holding the
    case (or the whole tree)."""
    return unit is None or (unit != case.owner and case.owner in org.subtree(unit))


def may_take(org: Org, who: Principal, case: Case, action: Action | None) -> Literal["holder", "backup"] | None:
    """How the caller may take `action` (None: any control reserved to the holder) on the case: as the unit
    holding it, as its backup grid, or not at all. Roles are the route's to check."""
    if holds(org, who, case):
        return "holder"
    if action in BACKUP_ACTIONS and as_backup(org, who, case):
        return "backup"
    if action in VERIFY_ACTIONS and verifies(org, who, case):
        return "holder"
    return None


def allowed(org: Org, who: Principal, case: Case) -> list[Action]:
    """What the caller may do to the case now: its role, its relation to the case and the case's state
    decide (the lifecycle's table, separation of duties for 核查, 挂起 by approval, 派单 by a command center)."""
    if who.role not in ACTORS:
        return []
    if holds(org, who, case):
        choice: tuple[Action, ...] = ACTIONS
    elif as_backup(org, who, case):
        choice = BACKUP_ACTIONS
    elif verifies(org, who, case):
        choice = VERIFY_ACTIONS
    else:
        return []
    own = self_held(org, who, case)
    return [a for a in choice if not isinstance(transition(case.status, a, case.held_from), Refusal)
            and not (a in VERIFY_ACTIONS and a != "comment" and case.resolved_by == who.name)
            and not (own and a == "hold")
            and not (a == "dispatch" and not dispatches(org, who, case))]


def controls(org: Org, who: Principal, case: Case, waiting: Sequence[Waiting], parts: Sequence[Part]
             ) -> list[Control]:
    """The controls the caller may use now (`waiting`: the requests still undecided): `extension` (ask for
    延期) for the unit holding a case waiting to be accepted or resolved, `decide_…` for the dispatching level
    while a 延期 or 挂起 waits, `suspension` (ask for 挂起) for the holding unit itself, `send_back` (退回),
    `supervise` (督办) from above, `reply_supervision` for the holder of an open order, and the parts of
    joint handling."""
    if who.role not in ACTORS:
        return []
    pending = next((w for w in waiting if w.kind in ("extension", "suspension")), None)
    out: list[Control] = []
    held = holds(org, who, case)
    if (pending is None and case.status in ("open", "accepted") and held
            and case.extensions < int((case.policy or {}).get("extensions_max", 2))):
        out.append("extension")
    above = may_decide(org, who.unit, case)
    if pending is not None and pending.requested_by != who.name and above:
        out.append("decide_suspension" if pending.kind == "suspension" else "decide_extension")
    if pending is None and who.unit == case.owner and case.status not in ("on_hold", "closed"):
        out.append("suspension")
    if case.status == "open" and self_held(org, who, case):
        out.append("send_back")
    if above and case.status != "closed":
        out.append("supervise")
    if held and any(w.kind == "supervision" for w in waiting):
        out.append("reply_supervision")
    if case.status not in ("closed", "reported"):
        mine = [p for p in parts if part_holder(org, who, p.unit)]
        if any(not p.signed for p in mine):
            out.append("part_sign")
        if any(not p.reported for p in mine):
            out.append("part_report")
    return out


# ---- the fleet: devices, rule sets, maintenance windows -------------------------------------------------
def manages_rules(org: Org, who: Principal) -> bool:
    """Rule sets (and maintenance windows over rules) are the district's: an admin, or an operator of a
    district unit."""
    if who.role in ("admin", "sysadmin"):
        return True
    return who.role == "operator" and who.unit is not None and org.units[who.unit].level == "district"


def writes_grid(org: Org, who: Principal, grid: str) -> bool:
    """Devices and windows of a grid are set by the grid's subtree: the caller's grids include it."""
    mine = grids_seen(org, who)
    return mine is None or grid in mine
