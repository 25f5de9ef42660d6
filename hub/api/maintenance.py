"""Maintenance windows: list, set and end them. Readers see the windows of their subtree (rule windows are
everyone's to see); operators set them over grids and devices of their subtree; windows over rules are the
district's."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from hub.api.audited import audited
from hub.api.deps import HubDep, Id, Operator, Reader, grid_writer, rule_manager
from hub.api.errors import BODY, GUARD, responses
from hub.fleet import maintenance, registry
from hub.policy import access
from hub.policy.access import Principal
from hub.store.cases import Store
from hub.store.models import Maintenance

router = APIRouter(prefix="/api/v1/maintenance", tags=["maintenance"], responses=responses(*GUARD, 403))


def _window_target(store: Store, who: Principal, scope: str, target: str) -> None:
    """May the caller set or end a window over this target? Rules are the district's; grids and devices
    their subtree's."""
    if scope == "rule":
        if access.grids_seen(store.org, who) is not None:
            rule_manager(store, who)
        return
    if scope == "grid":
        grid_writer(store, who, target)
        return
    with store.reading() as s:
        d = registry.get(s, target)
    if d is None:
        raise HTTPException(422, "no such device in the registry")
    grid_writer(store, who, d.grid)


def _visible_window(mine: set[str] | None, w: Maintenance, grid_of: dict[str, str]) -> bool:
    """A window over a rule is everyone's to see; one over a grid or a device, its subtree's (`mine`: the
    caller's grids, `access.grids_seen`)."""
    if mine is None or w.scope == "rule":
        return True
    return (w.target if w.scope == "grid" else grid_of.get(w.target)) in mine


@router.get("")
def list_windows(hub: HubDep, who: Reader, all: bool = False) -> list[dict[str, Any]]:
    """Windows not yet over (all=true: every one), with whether each is in force and how many alerts it
    holds."""
    store = hub.store
    now = store.now()
    with store.reading() as s:
        rows = maintenance.windows(s, now, every=all)
        grid_of = maintenance.device_grids(s, rows)
        mine = access.grids_seen(store.org, who)
        shown = [w for w in rows if _visible_window(mine, w, grid_of)]
        held = maintenance.held_counts(s, [w.id for w in shown])
    return [maintenance.public(w, now, store.tz, held.get(w.id, 0)) for w in shown]


@router.post("", status_code=201, responses=responses(*BODY, 422),
             openapi_extra=audited("maintenance_added"))
def add_window(body: maintenance.WindowIn, hub: HubDep, who: Operator) -> dict[str, Any]:
    store = hub.store
    _window_target(store, who, body.scope, body.target)
    now = store.now()
    with store.transaction() as s:
        w = maintenance.add(s, body, who.name, now)
    store.windows.invalidate()
    return maintenance.public(w, now, store.tz)


@router.post("/{window_id}/cancel", responses=responses(404, 409, 422),
             openapi_extra=audited("maintenance_cancelled"))
def cancel_window(window_id: Id, hub: HubDep, who: Operator) -> dict[str, Any]:
    """End a window now: what it holds is released at once (cases open for conditions that still hold)."""
    store = hub.store
    now = store.now()
    with store.transaction() as s:
        w = maintenance.locked(s, window_id)
        if w is None or not _visible_window(access.grids_seen(store.org, who), w, maintenance.device_grids(s, [w])):
            raise HTTPException(404, "no such window")
        _window_target(store, who, w.scope, w.target)
        if w.cancelled_at is not None:
            raise HTTPException(409, "the window was cancelled already")
        w.cancelled_at = now
    store.windows.invalidate()
    return maintenance.public(w, now, store.tz)
