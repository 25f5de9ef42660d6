"""Request dependencies in one place: the store, metrics and settings of the running hub, and the caller
by role. Routes declare `store: StoreDep`, `who: Reader` and so on instead of reaching into app state."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi import Path as PathParam

from hub.api.auth import Principal, require
from hub.api.guard import IntakeLimiter
from hub.config import ApiKey, FleetSettings
from hub.fleet.agents import RuleTools
from hub.notify.files import NoticeFiles
from hub.ops.metrics import HubMetrics
from hub.people.accounts import People
from hub.policy import access
from hub.policy.access import READERS
from hub.policy.labels import Labels
from hub.store.cases import Store


@dataclass
class HubState:
    """What the app holds for its requests (set once by `create_app`)."""

    store: Store
    metrics: HubMetrics
    keys: list[ApiKey]
    tz: str
    people: People
    """Accounts, sessions and live API keys."""
    unknown_grids: str = "district"
    intake: IntakeLimiter | None = None
    fleet: FleetSettings = field(default_factory=FleetSettings)
    rule_tools: RuleTools | None = None
    """Lent by the caller of `create_app` (the edge's checker); None: no rule editing."""
    labels: Labels = field(default_factory=Labels)
    """Display names of categories and other codes (board, exports)."""
    max_photo_bytes: int = 8 * 1024 * 1024
    max_clip_bytes: int = 12 * 1024 * 1024
    notices: NoticeFiles | None = None
    """The notification policy and rosters in force (None: neither configured); the watcher reloads them."""
    generation: int = 0
    """Bumped by every deploy and device change in this process: waiting assignment polls look again."""

    def changed(self) -> None:
        self.generation += 1


def _state(request: Request) -> HubState:
    state: HubState = request.app.state.hub
    return state


# The dependencies are `async def` although they do no I/O: FastAPI runs a plain `def` dependency in the
# thread pool, one hop there and back per dependency per request, which under load cost more than the work.
async def hub_state(request: Request) -> HubState:
    return _state(request)


async def get_store(request: Request) -> Store:
    return _state(request).store


async def get_metrics(request: Request) -> HubMetrics:
    return _state(request).metrics


async def get_tz(request: Request) -> str:
    return _state(request).tz


async def get_people(request: Request) -> People:
    return _state(request).people


async def get_notice_files(request: Request) -> NoticeFiles:
    files = _state(request).notices
    if files is None:
        raise HTTPException(404, "no rosters or notification policy configured (hub.yaml: rosters, notify)")
    return files


StoreDep = Annotated[Store, Depends(get_store)]
PeopleDep = Annotated[People, Depends(get_people)]
NoticeFilesDep = Annotated[NoticeFiles, Depends(get_notice_files)]
MetricsDep = Annotated[HubMetrics, Depends(get_metrics)]
TzDep = Annotated[str, Depends(get_tz)]
HubDep = Annotated[HubState, Depends(hub_state)]

Reader = Annotated[Principal, Depends(require(*READERS))]
"""Operators, viewers and admins: they read cases in their scope."""
Operator = Annotated[Principal, Depends(require("operator", "admin"))]
"""Operators and admins: they act on cases and report."""
EdgeCaller = Annotated[Principal, Depends(require("edge", "admin"))]
"""Edge agents (and admins): they send alerts."""
Someone = Annotated[Principal, Depends(require("operator", "viewer", "admin", "sysadmin", "secadmin", "auditor"))]
"""Anyone but an edge key: who they are, their own password and second factor, the board's labels."""


Id = Annotated[int, PathParam(ge=1, le=2**31 - 1)]
"""A row number in a path (a rule version, a window): what every database can hold."""


def rule_manager(store: Store, who: Principal) -> None:
    """403 unless the caller manages rule sets (`access.manages_rules`)."""
    if not access.manages_rules(store.org, who):
        raise HTTPException(403, "rule sets are managed by the district (an operator of a district unit, or an admin)")


def grid_writer(store: Store, who: Principal, grid: str) -> None:
    """422 unless `grid` is a grid of the org tree, 403 unless the caller writes it (`access.writes_grid`)."""
    if grid not in store.org.units or store.org.units[grid].level != "grid":
        raise HTTPException(422, "the grid is not a grid of the org tree")
    if not access.writes_grid(store.org, who, grid):
        raise HTTPException(403, f"{grid} is outside {who.unit}'s subtree")


def grids_of(store: Store) -> set[str]:
    """The grids of the org tree."""
    return {u.id for u in store.org.units.values() if u.level == "grid"}
