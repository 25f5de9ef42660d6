"""MQTT topics of DESIGN §3 as small value objects that validate themselves."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from edge.errors import Rejected
from gridwatch.core.kinds import LEAVES
from gridwatch.core.names import NAME, RESERVED

if TYPE_CHECKING:
    from edge.config import EdgeConfig
    from edge.feeds import FeedSet


@dataclass(frozen=True, slots=True)
class Topic:
    """`{root}/{grid}/{kind}/{device}/{leaf}`."""

    root: str
    grid: str
    kind: str
    device: str
    leaf: str

    @classmethod
    def parse(cls, text: str, root: str = "gw") -> Topic:
        """Parse and validate; valid topics are cached (a fleet repeats the same few thousand)."""
        hit = _CACHE.get((text, root))
        if hit is not None:
            return hit
        topic = cls._parse(text, root)
        if len(_CACHE) > 200_000:
            _CACHE.clear()
        _CACHE[(text, root)] = topic
        return topic

    @classmethod
    def _parse(cls, text: str, root: str) -> Topic:
        parts = text.split("/")
        if len(parts) != 5 or parts[0] != root:
            raise Rejected("bad_topic", f"{text!r} is not {root}/<grid>/<kind>/<device>/<leaf>")
        _, grid, kind, device, leaf = parts
        if kind not in LEAVES:
            raise Rejected("bad_topic", f"{text!r}: unknown kind {kind!r} (expected one of {sorted(LEAVES)})")
        if leaf not in LEAVES[kind]:
            raise Rejected("bad_topic", f"{text!r}: {kind} topics end in {sorted(LEAVES[kind])}, not {leaf!r}")
        if grid in RESERVED:
            raise Rejected("bad_topic", f"{text!r}: {grid!r} is reserved for case events, not a grid")
        for what, name in (("grid", grid), ("device", device)):
            if not NAME.match(name):
                raise Rejected("bad_topic", f"{text!r}: {what} {name!r} must match [A-Za-z0-9_-]{{1,64}}")
        return cls(root, grid, kind, device, leaf)

    def __str__(self) -> str:
        return f"{self.root}/{self.grid}/{self.kind}/{self.device}/{self.leaf}"


_CACHE: dict[tuple[str, str], Topic] = {}


def subscriptions(root: str, grids: list[str] | None, share_group: str | None = None) -> list[str]:
    """Topic filters for the grids an agent owns (all grids when `grids` is empty)."""
    filters = [f"{root}/{g}/+/+/+" for g in grids] if grids else [f"{root}/+/+/+/+"]
    if share_group:
        filters = [f"$share/{share_group}/{f}" for f in filters]
    return filters


def feed_filters(feeds: FeedSet, cfg: EdgeConfig) -> list[str]:
    """Subscriptions: the native root per owned grid (as before feeds existed), each other feed's filter."""
    out: list[str] = []
    native = f"{cfg.mqtt.topic_root}/+/+/+/+"
    for f in feeds.filters():
        if f == native:
            out += subscriptions(cfg.mqtt.topic_root, cfg.grids, cfg.mqtt.share_group)
        else:
            out.append(f"$share/{cfg.mqtt.share_group}/{f}" if cfg.mqtt.share_group else f)
    return out
