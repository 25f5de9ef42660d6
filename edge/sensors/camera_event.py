"""A camera's own alarms: `gw/{grid}/camera/{device}/event` with `{"ts", "seq", "event", "state", "zone"}`.

The camera gateway (edge/camera_gateway/) turns each vendor's alarm (Hikvision ISAPI, Dahua eventManager, ONVIF
events) into this one shape: `event` is one of `gridwatch.core.kinds.CAMERA_EVENTS`, `state` is `start`
(default) or `stop`, `zone` the camera's own region, line or rule name as a gridwatch name. A `stop`
becomes the event `restore` of that zone, which resolves an `event:` rule's episode like a fence restore.
"""

from __future__ import annotations

from edge.errors import Rejected
from edge.message import Event, Message
from edge.sensors.common import Limits, check_size, load_object, parse_seq, parse_ts
from edge.topics import Topic
from gridwatch.core.kinds import CAMERA_EVENTS
from gridwatch.core.names import NAME

STATES = ("start", "stop")


def decode(msg: Message, topic: Topic, limits: Limits) -> Event:
    check_size(msg.payload, limits)
    body = load_object(msg.payload)
    ts = parse_ts(body.get("ts"), msg.received_at, limits)
    event = body.get("event")
    if event is None:
        raise Rejected("missing_field", "field 'event' is required")
    if not isinstance(event, str):
        raise Rejected("wrong_type", f"field 'event' must be a string, got {type(event).__name__}")
    if event not in CAMERA_EVENTS:
        raise Rejected("bad_field", f"field 'event' is {event!r}, expected one of {list(CAMERA_EVENTS)}")
    state = body.get("state", "start")
    if state not in STATES:
        raise Rejected("bad_field", f"field 'state' is {state!r}, expected 'start' or 'stop'")
    zone = body.get("zone", "")
    if not isinstance(zone, str):
        raise Rejected("wrong_type", f"field 'zone' must be a string, got {type(zone).__name__}")
    if zone and not NAME.match(zone):
        raise Rejected("bad_field", f"field 'zone' {zone!r} must match [A-Za-z0-9_-]{{1,64}}")
    return Event(kind="camera", grid=topic.grid, device=topic.device, ts=ts, received_at=msg.received_at,
                 seq=parse_seq(body), zone=zone, event=event if state == "start" else "restore")
