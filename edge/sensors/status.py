"""Gateway status: retained `online` / `offline` on `gw/{grid}/{kind}/{device}/status` (the LWT)."""

from __future__ import annotations

from edge.errors import Rejected
from edge.message import Event, Message
from edge.sensors.common import Limits, check_size
from edge.topics import Topic

STATES = ("online", "offline")


def decode(msg: Message, topic: Topic, limits: Limits) -> Event:
    check_size(msg.payload, limits)
    try:
        text = msg.payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise Rejected("bad_field", "status payload is not UTF-8 text") from None
    if text not in STATES:
        raise Rejected("bad_field", f"status is {text[:40]!r}, expected 'online' or 'offline'")
    # A retained status carries no device time; it counts from when it reached us.
    return Event(kind="status", grid=topic.grid, device=topic.device, ts=msg.received_at,
                 received_at=msg.received_at, event=text, device_kind=topic.kind)
