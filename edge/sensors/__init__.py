"""Feed kinds as data: which decoder handles which topic, and the one `decode()` entry point."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from edge.errors import Rejected
from edge.message import Event, Message
from edge.sensors import camera, fence, reading, status, thermal
from edge.sensors.common import Limits
from edge.topics import Topic

Decoder = Callable[[Message, Topic, Limits], Event]


@dataclass(frozen=True, slots=True)
class FeedKind:
    kind: str
    leaf: str
    decoder: Decoder


FEEDS: dict[tuple[str, str], FeedKind] = {
    (f.kind, f.leaf): f
    for f in (
        FeedKind("sensor", "reading", reading.decode),
        FeedKind("fence", "event", fence.decode),
        FeedKind("camera", "frame", camera.decode),
        FeedKind("thermal", "frame", thermal.decode),
        FeedKind("sensor", "status", status.decode),
        FeedKind("fence", "status", status.decode),
        FeedKind("camera", "status", status.decode),
        FeedKind("thermal", "status", status.decode),
    )
}


def decode(msg: Message, root: str, limits: Limits) -> Event:
    """Decode one message or raise Rejected with the reason."""
    topic = Topic.parse(msg.topic, root)
    feed = FEEDS.get((topic.kind, topic.leaf))
    if feed is None:
        raise Rejected("unsupported_kind", f"no decoder for {topic.kind}/{topic.leaf} in this agent")
    return feed.decoder(msg, topic, limits)
