"""Feeds: which topics the agent takes and how their payloads become events (`feeds:` in edge.yaml).

`FeedSet.decode(msg)` finds the first feed whose topic filter matches and returns its events (a
message may carry many devices, a gateway's status many devices' states), or raises `Rejected`;
a topic no feed matches is `unmapped`, counted per subscription filter. The native contract
(`format: gridwatch`) goes through `edge.sensors.decode` unchanged, but for the status of a device that the
device list names as others' gateway, which becomes the gateway's events (`mapper.gateway_events`).
Sparkplug B rebirth requests wait in `outgoing` for the agent to publish.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable

from paho.mqtt.client import topic_matches_sub

from edge.errors import Rejected
from edge.feeds.mapper import CompiledFeed, Context, gateway_events
from edge.feeds.sparkplug import SparkplugFeed
from edge.feeds.spec import FeedSpec
from edge.message import Event, Message
from edge.sensors import decode as native_decode
from edge.sensors.common import Limits

__all__ = ["FeedSet", "FeedSpec"]


class _Native:
    def __init__(self, spec: FeedSpec, root: str) -> None:
        self.spec = spec
        self.name = spec.name
        self.root = spec.topic.split("/")[0] or root
        self.prefix = self.root + "/"
        self.filter = spec.topic

    def match(self, topic: str) -> dict[str, str] | None:
        return {} if topic.startswith(self.prefix) else None

    def decode(self, msg: Message, caps: dict[str, str], ctx: Context) -> list[Event]:
        ev = native_decode(msg, self.root, ctx.limits)
        if ev.kind == "status" and ev.watched_by is not None and ev.watched_by != ev.device:
            ctx.learn(ev.watched_by, ev.device, ev.grid, ev.device_kind or "sensor")  # its watcher speaks for it
        if ev.kind == "status" and ev.event in ("online", "offline") and ctx.behind(ev.device):
            # a device the registry lists as the gateway of others (a GB/T 28181 platform and its channels):
            # its status speaks for them, one alert for the gateway instead of one per device
            return gateway_events(ev.device, ev.grid, ev.device_kind or "sensor", ev.event, msg.received_at, ctx)
        return [ev]


Compiled = CompiledFeed | SparkplugFeed | _Native


class FeedSet:
    def __init__(self, specs: Iterable[FeedSpec], limits: Limits, root: str = "gw",
                 registry: dict[str, tuple[str, str, str | None]] | None = None,
                 on_unmapped: Callable[[str], object] | None = None) -> None:
        self.feeds: list[Compiled] = []
        for s in specs:
            if s.format == "gridwatch":
                self.feeds.append(_Native(s, root))
            elif s.format == "sparkplug-b":
                self.feeds.append(SparkplugFeed(s))
            else:
                self.feeds.append(CompiledFeed(s))
        self.ctx = Context(limits, dict(registry or {}))
        self.limits = limits
        self.unmapped: Counter[str] = Counter()
        self.on_unmapped = on_unmapped  # called with the subscription filter an unmapped message came through
        self._cache: dict[str, tuple[Compiled, dict[str, str]] | None] = {}
        self._ignore = [(f, rx) for f in self.feeds if isinstance(f, CompiledFeed) for rx in f.ignore]
        self.only_native = len(self.feeds) == 1 and isinstance(self.feeds[0], _Native)

    def filters(self) -> list[str]:
        out: list[str] = []
        for f in self.feeds:
            if f.filter not in out:
                out.append(f.filter)
        return out

    def route(self, topic: str) -> tuple[Compiled, dict[str, str]] | None:
        hit = self._cache.get(topic, False)
        if hit is not False:
            return hit  # type: ignore[return-value]
        found: tuple[Compiled, dict[str, str]] | None = None
        for f in self.feeds:
            caps = f.match(topic)
            if caps is not None:
                found = (f, caps)
                break
        if len(self._cache) > 200_000:
            self._cache.clear()
        self._cache[topic] = found
        return found

    def decode(self, msg: Message) -> list[Event]:
        hit = self.route(msg.topic)
        if hit is None:
            if any(rx.match(msg.topic) for _, rx in self._ignore):
                return []
            sub = next((f for f in self.filters() if topic_matches_sub(f, msg.topic)), "(none)")
            self.unmapped[sub] += 1
            if self.on_unmapped is not None:
                self.on_unmapped(sub)
            raise Rejected("unmapped", f"{msg.topic!r} matches no feed (arrived through {sub})")
        feed, caps = hit
        events = feed.decode(msg, caps, self.ctx)
        tolerance = self.limits.clock_tolerance_s
        for ev in events:
            ahead = ev.ts - msg.received_at
            if ahead > tolerance:  # a clock running ahead: order and windows go by receive time
                ev.ts, ev.clock_ahead = msg.received_at, ahead
        return events

    def take_outgoing(self) -> list[tuple[str, bytes]]:
        out: list[tuple[str, bytes]] = []
        for f in self.feeds:
            if isinstance(f, SparkplugFeed) and f.outgoing:
                out += f.outgoing
                f.outgoing = []
        return out
