"""Agents: their heartbeats and long-polled assignments (edge keys, for the grids their key allows), and
the list of agents with their state for readers of the subtree."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.concurrency import run_in_threadpool

from gridwatch.core.heartbeat import Heartbeat
from hub.api.audited import not_audited
from hub.api.deps import EdgeCaller, HubDep, Reader
from hub.api.errors import BODY, GUARD, responses
from hub.api.schemas import Text
from hub.fleet import agents as fleet
from hub.fleet import registry
from hub.policy import access
from hub.policy.access import Principal
from hub.store.models import RuleVersion

router = APIRouter(prefix="/api/v1", tags=["agents"], responses=responses(*GUARD, 403))
MAX_WAIT = 60.0
"""The longest an assignment poll waits (s)."""


def _edge_grids(who: Principal, asked: list[str]) -> list[str]:
    if who.grids is None:
        return asked
    if not asked:
        return sorted(who.grids)
    outside = sorted(set(asked) - who.grids)
    if outside:
        raise HTTPException(403, f"grids {outside} are not grids of edge key {who.name!r}")
    return asked


@router.post("/fleet/heartbeat", responses=responses(*BODY, 422),
             openapi_extra=not_audited("an agent's heartbeat: kept on the agent's row and its offline case"))
def heartbeat(body: Heartbeat, hub: HubDep, who: EdgeCaller) -> dict[str, Any]:
    """An agent's state; an agent marked offline that beats again clears its agent_offline case."""
    store = hub.store
    body.grids = _edge_grids(who, body.grids)
    now = store.now()
    fleet.heartbeat(store, body, who.name, now)
    return {"ok": True, "heartbeat_limit_s": hub.fleet.heartbeat_limit}


@router.get("/fleet/assignment")
async def assignment(hub: HubDep, who: EdgeCaller, grids: Text = "",
                     rules: Annotated[int | None, Query(ge=0, le=2**31 - 1)] = None,
                     devices: Text = "", wait: Annotated[float, Query(ge=0, le=MAX_WAIT)] = 0) -> dict[str, Any]:
    """What the agent serving `grids` must run, long-polled: answers at once when its rule version or its
    devices differ from what it says it has (`rules`, `devices` etag), else when one changes, else after
    `wait` seconds with nothing changed (`rules` and `devices` null)."""
    store = hub.store
    mine = _edge_grids(who, [g for g in grids.split(",") if g])

    def look() -> tuple[RuleVersion | None, str]:
        with store.reading() as s:
            return fleet.version_for(s, mine), fleet.devices_etag(s, mine)

    deadline = time.monotonic() + wait
    while True:
        gen = hub.generation
        version, etag = await run_in_threadpool(look)
        new_rules = version is not None and version.version != rules
        if new_rules or etag != devices or time.monotonic() >= deadline:
            break
        recheck = time.monotonic() + fleet.RECHECK
        while hub.generation == gen and time.monotonic() < min(recheck, deadline):
            await asyncio.sleep(0.05)
    out: dict[str, Any] = {"grids": mine, "rules": None, "devices": None}
    if new_rules and version is not None:
        out["rules"] = {"version": version.version, "hash": version.hash, "text": version.text}
    if etag != devices:
        def listing() -> tuple[str, list[dict[str, Any]]]:
            with store.reading() as s:
                return fleet.devices_etag(s, mine), registry.for_agent(s, mine)[1]
        etag, rows = await run_in_threadpool(listing)
        out["devices"] = {"etag": etag, "list": rows}
    return out


@router.get("/agents")
def list_agents(hub: HubDep, who: Reader) -> list[dict[str, Any]]:
    """The agents seen by their heartbeats, with their state (online, late, offline) and the rule version
    they should run."""
    store = hub.store
    mine = access.grids_seen(store.org, who)
    now = store.now()
    with store.reading() as s:
        return fleet.agent_list(s, now, hub.fleet.heartbeat_limit, mine)
