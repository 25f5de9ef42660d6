"""What the gateway publishes: retained statuses and events on the MQTT contract's topics.

Statuses are watched ones (issue 41): `{"state": …, "watched_by": …}`, the gateway itself watching each
registered device or platform (its registration and keepalives), a platform each of its catalog's channels
(its Status, ON/OFF notifications). The gateway's own status, online while it runs, is its MQTT will
`offline` when it dies; the agent then takes it for every device it watched (one alert, not one per device)."""

from __future__ import annotations

import json
import logging

from edge.gb28181.base import GatewayBase, Peer

logger = logging.getLogger(__name__)


def watched(state: str, by: str) -> bytes:
    return json.dumps({"state": state, "watched_by": by}, separators=(",", ":")).encode()


class Publishing(GatewayBase):
    def _topic(self, grid: str, device: str, leaf: str) -> str:
        return f"{self.cfg.mqtt.topic_root}/{grid}/camera/{device}/{leaf}"

    def _status(self, peer: Peer, state: str | None, why: str) -> None:
        if state is None:
            return
        logger.info("gb28181: %s %s (%s)", peer.dev.id, state, why)
        self._publish(f"{self.cfg.mqtt.topic_root}/{peer.dev.grid}/camera/{peer.dev.id}/status",
                      watched(state, self.cfg.sip.id), retain=True)

    def _own_status(self) -> tuple[str, bytes]:
        """The gateway's own status topic, and its `online` (the will says `offline`)."""
        return (f"{self.cfg.mqtt.topic_root}/{self.cfg.own_grid}/camera/{self.cfg.sip.id}/status",
                watched("online", self.cfg.sip.id))

    def _publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.published += 1
        self.client.publish(topic, payload, qos=1, retain=retain)
