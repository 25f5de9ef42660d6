"""Case events to MQTT: every stream event is published (QoS 1) on `gw/cases/{unit}` for each unit above
the case's grid and owner, so a subscriber to a unit's topic sees that unit's subtree.

It runs once across hub replicas: only the holder of the `mqtt-publisher` leadership (`hub.ops.leader`) connects
and publishes, under a client id of its own (`<client_id>-<random>`), so replicas never knock each other off
the broker or publish an event twice. The last event the broker acknowledged is kept in the database
(`cursors`), so a new leader (or a restarted one) resumes where the last one stopped rather than at "now".
The cursor moves after the PUBACKs of each batch: if a leader dies between a batch's PUBACKs and saving the
cursor, the next leader publishes that batch again. Subscribers that must not see a repeat drop events by
their `id`, which is unique and increasing.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from typing import Any

import paho.mqtt.client as paho

from gridwatch.core.mqttlink import connect, make_client
from hub.config import HubMqtt
from hub.ops.leader import Leadership, WokenThread
from hub.store.cases import Store
from hub.stream.events import events_after, units_seeing

logger = logging.getLogger(__name__)
CURSOR = "mqtt-publisher"
BATCH = 50


class CaseEventPublisher(WokenThread):
    thread_name = "gridwatch-hub-mqtt"

    def __init__(self, store: Store, cfg: HubMqtt, *, retry: float = 2.0) -> None:
        super().__init__()
        self.store, self.cfg, self.retry = store, cfg, retry
        self.client_id = f"{cfg.client_id}-{secrets.token_hex(4)}"
        self.leader = Leadership(store.engine, CURSOR)
        self._acked: set[int] = set()
        self._cond = threading.Condition()
        self._connected = threading.Event()
        self.published = 0
        self.leading = False

    # ---- leadership -------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            if not self.leader.try_acquire():
                self._stop.wait(self.retry)
                continue
            logger.info("MQTT case-event publisher: leading as %s", self.client_id)
            self.leading = True
            client = self._client()
            try:
                self._lead(client)
            except Exception:
                logger.exception("publishing case events failed; retrying")
                self._stop.wait(self.retry)
            finally:
                self.leading = False
                client.loop_stop()
                client.disconnect()
                self.leader.release()

    def _client(self) -> paho.Client:
        client = make_client(self.cfg, self.client_id)
        client.on_publish = self._on_publish
        client.on_connect = lambda *a: self._connected.set()
        client.on_disconnect = lambda *a: self._connected.clear()
        connect(client, self.cfg)
        client.loop_start()
        return client

    def _on_publish(self, _c: Any, _u: Any, mid: int, _rc: Any, _p: Any) -> None:
        with self._cond:
            self._acked.add(mid)
            self._cond.notify_all()

    # ---- publishing -------------------------------------------------------------------------------
    def _lead(self, client: paho.Client) -> None:
        after = self.store.cursor(CURSOR)
        if after is None:  # the first publisher ever: live events from now on (the stream replays history)
            after = self.store.last_event_id()
            self.store.save_cursor(CURSOR, after)
        while not self._stop.is_set() and self.leader.holds():
            self._wake.wait(1.0)
            self._wake.clear()
            while not self._stop.is_set():
                batch = events_after(self.store, after, None, BATCH)
                if not batch:
                    break
                if not self._publish(client, batch):
                    return
                after = batch[-1]["id"]
                self.store.save_cursor(CURSOR, after)
                self.published += len(batch)

    def _publish(self, client: paho.Client, batch: list[dict[str, Any]]) -> bool:
        """Publish a batch and wait for every PUBACK (paho resends after a reconnect); False when this
        process stopped or lost the leadership meanwhile."""
        if not self._connected.wait(1.0):
            while not self._connected.wait(1.0):
                if self._stop.is_set() or not self.leader.holds():
                    return False
        mids: set[int] = set()
        for ev in batch:
            payload = json.dumps(ev, ensure_ascii=False)
            for unit in sorted(units_seeing(self.store.org, ev)):
                mids.add(client.publish(f"{self.cfg.topic_root}/cases/{unit}", payload, qos=1).mid)
        with self._cond:
            while not mids <= self._acked:
                self._cond.wait(1.0)
                if self._stop.is_set():
                    return False
                if not self._connected.is_set() and not self.leader.holds():
                    return False
            self._acked -= mids
        return True
