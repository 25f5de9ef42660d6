"""Catalogs (§9.5): queried after each registration, pages into the hub's registry, change notifications
(ADD, UPDATE, DEL, ON, OFF, VLOST) kept current; SUBSCRIBE for platforms that tell only subscribers."""

from __future__ import annotations

import logging
import secrets

from edge.gb28181.base import Peer
from edge.gb28181.publishing import watched
from edge.gb28181.registry import Channel
from edge.gb28181.transport import Transport
from gridwatch.core.gb28181 import manscdp

logger = logging.getLogger(__name__)


class Catalogs(Transport):
    def query_catalog(self, peer: Peer, again: bool = False) -> None:
        """Ask for the catalog (a new SN). `again`: the pages stopped short of SumNum (a page lost over UDP): the
        device sends all of them again and those already taken are skipped."""
        peer.catalog_sn = secrets.randbelow(900_000) + 100_000
        peer.catalog_at = self.clock()
        if not again:
            peer.catalog_got = set()
            peer.catalog_sum = 0
            peer.catalog_tries = 0
        self.request(peer, "MESSAGE", manscdp.query_catalog(peer.catalog_sn, peer.dev.id))

    def subscribe(self, peer: Peer, now: float) -> None:
        """Subscribe (or renew, a minute before it lapses) to what the device sends only to subscribers: alarms
        (§9.11.1, `Event: Alarm`) and catalog changes (§9.11.2, `Event: Catalog`); they come as NOTIFY."""
        for what in peer.dev.subscribe:
            if peer.subscribed_until.get(what, 0.0) - 60.0 > now:
                continue
            peer.subscribed_until[what] = now + peer.dev.subscribe_expires
            self.seq += 1
            fields = ([("StartAlarmPriority", "0"), ("EndAlarmPriority", "0"), ("AlarmMethod", "0"),
                       ("StartAlarmTime", ""), ("EndAlarmTime", "")] if what == "alarm" else [])
            body = manscdp.write("Query", "Alarm" if what == "alarm" else "Catalog", self.seq, peer.dev.id, fields)
            self.request(peer, "SUBSCRIBE", body, headers=[
                ("Event", f"{'Alarm' if what == 'alarm' else 'Catalog'};id={self.seq}"),
                ("Expires", str(peer.dev.subscribe_expires)),
                ("Contact", f"<sip:{self.cfg.sip.id}@{self.here}:{self.port}>")])
            self.handled[f"subscribe_{what}"] += 1

    def catalog_page(self, peer: Peer, cat: manscdp.Catalog) -> None:
        if cat.sn != peer.catalog_sn:
            self.refuse("stale_catalog", peer.addr, f"catalog page SN {cat.sn}, asked {peer.catalog_sn}")
            return
        peer.catalog_sum = cat.sum_num
        peer.catalog_at = self.clock()
        fresh = [it for it in cat.items if it.device_id not in peer.catalog_got]
        peer.catalog_got.update(it.device_id for it in fresh)
        self._take_channels(peer, fresh)
        if len(peer.catalog_got) >= peer.catalog_sum:
            logger.info("gb28181: %s catalog complete: %d channel(s)", peer.dev.id, len(peer.catalog_got))

    def catalog_change(self, peer: Peer, cat: manscdp.Catalog) -> None:
        gone = [it.device_id for it in cat.items if it.event in ("DEL",) and it.device_id in peer.channels]
        for cid in gone:
            grid = peer.channels.pop(cid)
            self.channel_owner.pop(cid, None)
            self._publish(f"{self.cfg.mqtt.topic_root}/{grid}/camera/{cid}/status", b"", retain=True)
        if gone and self.writer is not None:
            self.writer.delete(gone)
        self._take_channels(peer, [it for it in cat.items if it.event not in ("DEL",)])

    def _take_channels(self, peer: Peer, items: list[manscdp.CatalogItem]) -> None:
        rows = []
        for it in items:
            if it.device_id == peer.dev.id:
                continue
            owner = self.channel_owner.get(it.device_id)
            if owner is not None and owner != peer.dev.id:
                self.refuse("channel_of_another", peer.addr, f"{it.device_id} belongs to {owner}")
                continue
            grid = peer.channels.get(it.device_id) or self.cfg.grid_of(it.civil_code, peer.dev.grid)
            if it.event in ("", "ADD", "UPDATE") or it.device_id not in peer.channels:
                rows.append(Channel(it.device_id, grid, it.name, it.latitude, it.longitude, it.address,
                                    it.manufacturer, it.model, peer.dev.id,
                                    f"GB/T 28181 civil code {it.civil_code or '-'}; parent {it.parent_id or '-'}"))
            peer.channels[it.device_id] = grid
            self.channel_owner[it.device_id] = peer.dev.id
            state = {"ON": "online", "OFF": "offline", "VLOST": "offline", "DEFECT": "offline"}.get(
                it.event or it.status)
            if state is None and (not it.event or it.event == "ADD"):  # no Status: online while its platform is
                state = "online"
            if state is not None:  # watched by its platform: its silence is not staleness (issue 41)
                self._publish(f"{self.cfg.mqtt.topic_root}/{grid}/camera/{it.device_id}/status",
                              watched(state, peer.dev.id), retain=True)
        if rows and self.writer is not None:
            self.writer.put(rows)
