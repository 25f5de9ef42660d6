"""The map: grids as polygons, devices as points with their state, open cases as markers with their light,
all in the caller's view (the access policy's: a backup grid and an assisting unit see the cases offered to
them, as in the list)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from hub.api.deps import HubDep, Reader
from hub.api.errors import GUARD, responses
from hub.fleet import registry
from hub.fleet.devicestate import case_markers, device_states
from hub.policy import access

router = APIRouter(prefix="/api/v1", tags=["map"], responses=responses(*GUARD, 403))


@router.get("/map")
def map_data(hub: HubDep, who: Reader) -> dict[str, Any]:
    """Grids as polygons, devices as points with their state, open cases as markers with their light
    (at the case's place, else its device's), in the caller's view."""
    store = hub.store
    org = store.org
    mine = access.grids_seen(org, who)
    now = store.now()
    units = [u for u in org.units.values() if u.level == "grid" and u.area and (mine is None or u.id in mine)]
    with store.reading() as s:
        _, devs = registry.search(s, grids=mine, limit=20_000)
        states = device_states(s, store, devs, now)
        markers = case_markers(s, store, access.scope(org, who), devs, now)
    return {"tiles": hub.fleet.map_tiles,
            "grids": [{"id": u.id, "name": u.name or u.id, "area": u.area} for u in units],
            "devices": [{"id": d.id, "name": d.name, "kind": d.kind, "grid": d.grid, "lat": d.lat, "lon": d.lon,
                         "address": d.address, "state": states[d.id]} for d in devs if d.lat is not None
                        and d.lon is not None],
            "cases": markers}
