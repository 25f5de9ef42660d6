"""Which decoder handles which topic (kinds and leaves from `gridwatch.core.kinds`), and the one `decode()`
entry point."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from edge.errors import Rejected
from edge.message import Event, Message
from edge.sensors import camera, camera_event, fence, reading, status, thermal
from edge.sensors.common import Limits
from edge.topics import Topic
from gridwatch.core.kinds import DATA_LEAF, EVENT_LEAF, FEED_KINDS, STATUS_LEAF, FeedKind

Decoder = Callable[[Message, Topic, Limits], Event]

DATA_DECODERS: dict[FeedKind, Decoder] = {
    "sensor": reading.decode, "fence": fence.decode, "camera": camera.decode, "thermal": thermal.decode}
"""One decoder per feed kind for its data leaf (`gridwatch.core.kinds.DATA_LEAF`)."""


@dataclass(frozen=True, slots=True)
class Feed:
    kind: FeedKind
    leaf: str
    decoder: Decoder


FEEDS: dict[tuple[str, str], Feed] = {
    **{(k, DATA_LEAF[k]): Feed(k, DATA_LEAF[k], DATA_DECODERS[k]) for k in FEED_KINDS},
    **{(k, STATUS_LEAF): Feed(k, STATUS_LEAF, status.decode) for k in FEED_KINDS},
    ("camera", EVENT_LEAF): Feed("camera", EVENT_LEAF, camera_event.decode),  # the camera's own alarms
}


def decode(msg: Message, root: str, limits: Limits) -> Event:
    """Decode one message or raise Rejected with the reason."""
    topic = Topic.parse(msg.topic, root)
    feed = FEEDS.get((topic.kind, topic.leaf))
    if feed is None:
        raise Rejected("unsupported_kind", f"no decoder for {topic.kind}/{topic.leaf} in this agent")
    ev = feed.decoder(msg, topic, limits)
    ahead = ev.ts - msg.received_at
    if ahead > limits.clock_tolerance_s:  # a clock running ahead: order and windows go by receive time
        ev.ts, ev.clock_ahead = msg.received_at, ahead
    return ev
