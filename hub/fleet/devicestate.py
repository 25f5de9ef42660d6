"""What the device list and the map show beside the registry: each device's state (maintenance, unknown,
offline, alarm, ok) and the open cases with the place to draw them at. Queries only; the routes call it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.fleet import agents as fleet
from hub.fleet import maintenance
from hub.store.cases import Scope, Store, visible_clause
from hub.store.models import Case, Device


def device_states(s: Session, store: Store, devices: list[Device], now: datetime) -> dict[str, str]:
    """Each device's state: maintenance (a window over it or its grid is in force), unknown (only offline
    agents serve its grid), offline (an open offline case on it or on its gateway: a GB/T 28181 platform's channels,
    a Zigbee coordinator's devices), alarm (another open case), else ok."""
    if not devices:
        return {}
    unknown, everything = fleet.unknown_grids(fleet.agents(s))
    windows = [w for w in store.windows.get(s, now) if maintenance.active(w, now, store.tz)]
    quiet = {(w.scope, w.target) for w in windows}
    ids = list(dict.fromkeys([d.id for d in devices] + [d.gateway for d in devices if d.gateway]))
    open_cases: dict[str, list[str]] = {}
    for i in range(0, len(ids), 5000):
        q = select(Case.device, Case.category).where(Case.device.in_(ids[i:i + 5000]), Case.status != "closed")
        for dev, cat in s.execute(q):
            open_cases.setdefault(dev or "", []).append(cat)
    out = {}
    for d in devices:
        if ("device", d.id) in quiet or ("grid", d.grid) in quiet:
            out[d.id] = "maintenance"
        elif everything or d.grid in unknown:
            out[d.id] = "unknown"
        elif any("offline" in c for c in open_cases.get(d.id, ())) or (
                d.gateway and any("offline" in c for c in open_cases.get(d.gateway, ()))):  # behind a gateway that is
            out[d.id] = "offline"
        elif d.id in open_cases:
            out[d.id] = "alarm"
        else:
            out[d.id] = "ok"
    return out


def case_markers(s: Session, store: Store, scope: Scope, devices: list[Device], now: datetime,
                 limit: int = 2000) -> list[dict[str, Any]]:
    """The open cases the scope sees (the access policy's visibility: owner, grid, backup grid, assisting
    units), newest first, each at its own place or else its device's, with its light; cases with neither
    place are left off."""
    where = [Case.status != "closed"]
    seen = visible_clause(scope)
    if seen is not None:
        where.append(seen)
    cases = list(s.scalars(select(Case).where(*where).order_by(Case.opened_at.desc()).limit(limit)))
    pauses = store.pauses_of(s, [c.id for c in cases])
    at = {d.id: (d.lat, d.lon) for d in devices if d.lat is not None and d.lon is not None}
    markers = []
    for c in cases:
        place = c.place or {}
        lat, lon = place.get("lat"), place.get("lon")
        if (lat is None or lon is None) and c.device in at:
            lat, lon = at[c.device]
        if lat is None or lon is None:
            continue
        found = store.clock_of(c, pauses.get(c.id, []), now)
        markers.append({"id": c.id, "lat": lat, "lon": lon, "light": found[1].light if found else None,
                        "category": c.category, "severity": c.severity, "title": c.title, "device": c.device,
                        "grid": c.grid})
    return markers
