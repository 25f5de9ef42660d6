"""Request dependencies in one place: the store, metrics and settings of the running hub, and the caller
by role. Routes declare `store: StoreDep`, `who: Reader` and so on instead of reaching into app state."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request

from hub.api.auth import READERS, Principal, require
from hub.api.guard import IntakeLimiter
from hub.config import ApiKey, FleetSettings
from hub.labels import Labels
from hub.metrics import HubMetrics
from hub.store import Store


@dataclass
class HubState:
    """What the app holds for its requests (set once by `create_app`)."""

    store: Store
    metrics: HubMetrics
    keys: list[ApiKey]
    tz: str
    unknown_grids: str = "district"
    intake: IntakeLimiter | None = None
    fleet: FleetSettings = field(default_factory=FleetSettings)
    rule_tools: Any = None
    """`hub.fleet.RuleTools` lent by the caller of `create_app` (the edge's checker); None: no rule editing."""
    labels: Labels = field(default_factory=Labels)
    max_photo_bytes: int = 8 * 1024 * 1024
    """Display names of categories and other codes (board, exports)."""
    people: Any = None
    """`hub.people.People`: accounts, sessions and live API keys."""
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


StoreDep = Annotated[Store, Depends(get_store)]
MetricsDep = Annotated[HubMetrics, Depends(get_metrics)]
TzDep = Annotated[str, Depends(get_tz)]
HubDep = Annotated[HubState, Depends(hub_state)]

Reader = Annotated[Principal, Depends(require(*READERS))]
"""Operators, viewers and admins: they read cases in their scope."""
Operator = Annotated[Principal, Depends(require("operator", "admin"))]
"""Operators and admins: they act on cases and report."""
EdgeCaller = Annotated[Principal, Depends(require("edge", "admin"))]
"""Edge agents (and admins): they send alerts."""
