"""Alarms (§9.4) from a registered peer's channels, published as camera events."""

from __future__ import annotations

import json
import logging

from edge.gb28181.alarms import event_of
from edge.gb28181.base import Peer
from edge.gb28181.catalog import Catalogs
from gridwatch.core.gb28181 import manscdp

logger = logging.getLogger(__name__)


class AlarmIntake(Catalogs):
    def alarm(self, peer: Peer, a: manscdp.Alarm, now: float) -> None:
        event = event_of(a.method, a.alarm_type)
        pair = f"{a.method}/{a.alarm_type if a.alarm_type is not None else '-'}"
        if event is None:
            self.alarms[f"unmapped {pair}"] += 1
            logger.info("gb28181: alarm %s from %s (%s) is not a camera event: answered, not published",
                        pair, a.device_id, a.description[:80])
            return
        channel = a.device_id
        grid = peer.channels.get(channel)
        if grid is None:
            if channel != peer.dev.id:
                self.refuse("unknown_channel", peer.addr, f"alarm from channel {channel} not in {peer.dev.id}'s "
                                                          f"catalog")
                return
            grid = peer.dev.grid
        if "disarmed" in (self.guard_wanted.get(channel), self.guard_wanted.get(peer.dev.id)):
            self.alarms["disarmed"] += 1  # 撤防: answered, not published
            logger.info("gb28181: alarm %s from %s while it is disarmed (撤防): not published", pair, channel)
            return
        self.alarms[event] += 1
        self.seq += 1
        body = {"ts": int(now * 1000), "seq": self.seq, "event": event, "state": "start", "zone": "",
                "code": f"gb28181:{pair}"}
        self._publish(f"{self.cfg.mqtt.topic_root}/{grid}/camera/{channel}/event", json.dumps(body).encode())
        self.snapshot(peer, channel, now, a.description)
        self.clip_later(peer, channel, now, a.description)

    def clip_later(self, peer: Peer, channel: str, now: float, description: str) -> None:
        """The alarm's recorded clip (`clips.Clips.clip_later`)."""

    def snapshot(self, peer: Peer, channel: str, now: float, description: str) -> None:
        """The alarm's evidence (`streams.Streams.snapshot`)."""
