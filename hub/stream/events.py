"""Case events: a timeline entry with what its case is now, as the SSE stream and the MQTT publisher send
them. The timeline table is the event log; `events_after` reads it through the store."""

from __future__ import annotations

import json
from typing import Any

from hub.policy import access
from hub.policy.org import Org
from hub.store.cases import EventRow, Scope, Store

KINDS = {"opened": "case_opened", "merged": "case_merged", "light": "light_changed", "escalated": "escalated",
         "backup_notified": "backup_notified", "reminder": "reminder"}


def event_body(row: EventRow) -> dict[str, Any]:
    e, c = row.entry, row.case
    return {"id": e.id, "event": KINDS.get(e.action, "case_changed"), "case_id": c.id, "action": e.action,
            "at": e.at.isoformat(), "actor": e.actor, "detail": e.detail, "status": c.status,
            "owner": c.owner, "grid": c.grid, "category": c.category, "severity": c.severity,
            "escalations": c.escalations, "backup": c.backup, "assist": c.assist or []}


def events_after(store: Store, after: int, scope: Scope, limit: int = 500) -> list[dict[str, Any]]:
    """Events with an id above `after`, oldest first, that the scope sees."""
    return [event_body(r) for r in store.events_after(after, scope, limit)]


def units_seeing(org: Org, ev: dict[str, Any]) -> set[str]:
    """The units that see an event's case (`access.units_seeing`), for the stream's subscribers and the MQTT
    unit topics."""
    return access.units_seeing(org, owner=ev["owner"], grid=ev["grid"], backup=ev.get("backup"),
                               assist=ev.get("assist", ()))


def sse(ev: dict[str, Any]) -> bytes:
    """One Server-Sent Event: `id` (for Last-Event-ID), `event` and the body as `data`."""
    return f"id: {ev['id']}\nevent: {ev['event']}\ndata: {json.dumps(ev, ensure_ascii=False)}\n\n".encode()
