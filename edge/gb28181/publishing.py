"""What the gateway publishes: retained statuses and events on the MQTT contract's topics."""

from __future__ import annotations

import logging

from edge.gb28181.base import GatewayBase, Peer

logger = logging.getLogger(__name__)


class Publishing(GatewayBase):
    def _topic(self, grid: str, device: str, leaf: str) -> str:
        return f"{self.cfg.mqtt.topic_root}/{grid}/camera/{device}/{leaf}"

    def _status(self, peer: Peer, state: str | None, why: str) -> None:
        if state is None:
            return
        logger.info("gb28181: %s %s (%s)", peer.dev.id, state, why)
        self._publish(f"{self.cfg.mqtt.topic_root}/{peer.dev.grid}/camera/{peer.dev.id}/status", state.encode(),
                      retain=True)

    def _publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.published += 1
        self.client.publish(topic, payload, qos=1, retain=retain)
