"""Gateway status: retained `online` / `offline` on `gw/{grid}/{kind}/{device}/status` (the LWT).

Or, from a gateway that keeps watch over the device's liveness by its own protocol (a GB/T 28181 platform's
registration and keepalives, its catalog's channel Status; issue 41), JSON `{"state": "online", "watched_by":
"<id>"}`: the device is online until the watcher says otherwise, so its silence is not staleness (`stale_for`
waits), and the watcher's own `offline` (its LWT) speaks for every device it watches."""

from __future__ import annotations

import json

from edge.errors import Rejected
from edge.message import Event, Message
from edge.sensors.common import Limits, check_size
from edge.topics import Topic
from gridwatch.core.names import NAME

STATES = ("online", "offline")


def decode(msg: Message, topic: Topic, limits: Limits) -> Event:
    check_size(msg.payload, limits)
    try:
        text = msg.payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise Rejected("bad_field", "status payload is not UTF-8 text") from None
    watcher = None
    if text.startswith("{"):
        try:
            body = json.loads(text)
        except ValueError:
            raise Rejected("bad_json", "status is neither online, offline nor a JSON object") from None
        if not isinstance(body, dict):
            raise Rejected("bad_field", "a JSON status is an object")
        state, watcher = body.get("state"), body.get("watched_by")
        text = state if isinstance(state, str) else repr(state)
        if watcher is not None and (not isinstance(watcher, str) or not NAME.fullmatch(watcher)):
            raise Rejected("bad_field", "status: watched_by is not a device id")
    if text not in STATES:
        raise Rejected("bad_field", f"status is {str(text)[:40]!r}, expected 'online' or 'offline'")
    # A retained status carries no device time; it counts from when it reached us.
    return Event(kind="status", grid=topic.grid, device=topic.device, ts=msg.received_at,
                 received_at=msg.received_at, event=text, device_kind=topic.kind, watched_by=watcher)
