"""Case events to MQTT: every stream event is published (QoS 1) on `gw/cases/{unit}` for each unit above
the case's grid and owner, so a subscriber to a unit's topic sees that unit's subtree."""

from __future__ import annotations

import json
import logging
import threading

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from hub.config import HubMqtt
from hub.events import events_after
from hub.store import Store

logger = logging.getLogger(__name__)


class CaseEventPublisher:
    def __init__(self, store: Store, cfg: HubMqtt) -> None:
        self.store, self.cfg = store, cfg
        self.client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=cfg.client_id,
                                  protocol=paho.MQTTv5)
        if cfg.username:
            self.client.username_pw_set(cfg.username, cfg.secret())
        self.client.reconnect_delay_set(1, 30)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.published = 0

    def start(self) -> None:
        self.client.connect_async(self.cfg.host, self.cfg.port)
        self.client.loop_start()
        self._thread = threading.Thread(target=self._run, name="gridwatch-hub-mqtt", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self.client.loop_stop()
        self.client.disconnect()

    def _run(self) -> None:
        after = self.store.last_event_id()  # live events from start-up on; the SSE stream replays history
        while not self._stop.wait(0.25):
            try:
                for ev in events_after(self.store, after, None):
                    units = set(self.store.org.chain(ev["grid"])) if ev["grid"] in self.store.org.units else set()
                    if ev["owner"] in self.store.org.units:
                        units |= set(self.store.org.chain(ev["owner"]))
                    payload = json.dumps(ev, ensure_ascii=False)
                    for unit in sorted(units):
                        self.client.publish(f"{self.cfg.topic_root}/cases/{unit}", payload, qos=1)
                    after = ev["id"]
                    self.published += 1
            except Exception:
                logger.exception("publishing case events failed; retrying")
