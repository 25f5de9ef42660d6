"""paho-mqtt behind one thin adapter: the rest of the edge sees `Message` objects, never paho.

MQTT v5 (or 3.1.1), QoS 1, a persistent session (clean start off, session expiry set), automatic
reconnect with back-off, and manual acknowledgement: `Message.ack()` sends the PUBACK when the agent
has committed what the message produced.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.matcher import MQTTMatcher
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge.config import MqttConfig
from edge.message import Message
from gridwatch.core.mqttlink import connect, make_client

logger = logging.getLogger(__name__)


class _NoFilters(MQTTMatcher):
    """paho looks up per-topic callbacks for every message with a recursive closure that leaves a
    reference cycle behind (4 objects a message); at thousands of messages a second the garbage
    collector's passes over them stalled ingestion for 10-40 ms. We register no per-topic callbacks."""

    def __init__(self) -> None:
        super().__init__()

    def iter_match(self, topic: str) -> Iterator[Any]:
        return iter(())


class MqttIngest:
    def __init__(self, cfg: MqttConfig, filters: list[str], client_id: str,
                 deliver: Callable[[Message], None]) -> None:
        self.cfg = cfg
        self.filters = filters
        self.deliver = deliver
        self.client = make_client(cfg, client_id, persistent=True, manual_ack=True)
        self.client.max_inflight_messages_set(cfg.receive_maximum)
        if isinstance(getattr(self.client, "_on_message_filtered", None), MQTTMatcher):
            self.client._on_message_filtered = _NoFilters()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.connected = threading.Event()
        self.reconnected = threading.Event()  # subscribed again after a lost connection
        self._was_connected = False
        self.last_refusal: str | None = None
        self.subscriptions = 0  # SUBACKs so far: one per connection (the agent clears `reconnected`, tests count)
        self.subscribed_at = 0.0  # monotonic time of the last one

    def start(self) -> None:
        props = None
        if self.cfg.protocol == "v5":
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = int(self.cfg.session_expiry)
            props.ReceiveMaximum = self.cfg.receive_maximum
            self.failover = connect(self.client, self.cfg, clean_start=False, properties=props)
        else:
            self.failover = connect(self.client, self.cfg)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def publish(self, topic: str, payload: bytes) -> None:
        """Fire and forget (QoS 0): requests to gateways, such as a Sparkplug B rebirth."""
        self.client.publish(topic, payload, qos=0)

    @property
    def deaf(self) -> bool:
        """Cut off from the broker after having listened: what devices send meanwhile is queued (a persistent
        session) or lost with the broker, and either way the agent cannot tell a silent device from its own
        outage."""
        return self._was_connected and not self.connected.is_set()

    @property
    def moves(self) -> int:
        """Moves to the next broker node so far."""
        failover = getattr(self, "failover", None)  # set by start()
        return failover.switches if failover is not None else 0

    def wait_connected(self, timeout: float) -> bool:
        """True once connected and subscribed."""
        return self.connected.wait(timeout)

    def _on_connect(self, client: paho.Client, userdata: object, flags: paho.ConnectFlags,
                    reason: ReasonCode, properties: Properties | None) -> None:
        if reason.is_failure:
            self.last_refusal = str(reason)
            logger.error("mqtt: broker %s:%d refused the connection: %s", client.host, client.port, reason)
            return
        logger.info("mqtt: connected to %s:%d (session present: %s)", client.host, client.port,
                    flags.session_present)
        client.subscribe([(f, int(self.cfg.qos)) for f in self.filters])

    def _on_subscribe(self, client: paho.Client, userdata: object, mid: int, reasons: list[ReasonCode],
                      properties: Properties | None) -> None:
        refused = [str(r) for r in reasons if r.is_failure]
        if refused:
            logger.error("mqtt: broker refused subscriptions %s: %s", self.filters, refused)
        self.subscriptions += 1
        self.subscribed_at = time.monotonic()
        self.connected.set()  # connected *and* subscribed: what arrives from now on reaches the agent
        if self._was_connected:
            self.reconnected.set()
        self._was_connected = True

    def _on_disconnect(self, client: paho.Client, userdata: object, flags: paho.DisconnectFlags,
                       reason: ReasonCode, properties: Properties | None) -> None:
        self.connected.clear()
        if reason.value != 0:
            logger.warning("mqtt: disconnected (%s); reconnecting with back-off", reason)

    def _on_message(self, client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        props: dict[str, str] = {}
        # vars() rather than getattr(): a missing property would raise and catch inside paho, per message
        user = vars(msg.properties).get("UserProperty") if msg.properties is not None else None
        if user:
            props = {str(k): str(v) for k, v in user}
        ack: Callable[[], object] | None = partial(client.ack, msg.mid, msg.qos) if msg.qos > 0 else None
        self.deliver(Message(msg.topic, bytes(msg.payload), time.time(), props, ack))
