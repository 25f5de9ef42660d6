"""The agent's side of the fleet: heartbeats to the hub, and (with `hub.fleet: true`) the rule set and device
list the hub assigns to its grids, pulled by long-poll.

What it receives is kept in the outbox's meta table before it is applied, so an agent restarted without
its hub starts on the last assignment it had. Applying is the agent's business (`FleetTarget`): a rule set
goes through the same checks and swap as a reloaded rule file (state of unchanged rules kept, last good
kept on error); the refusal's reasons travel back in the next heartbeat.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
from typing import Any, Protocol

import httpx
from pydantic import ValidationError

from edge.config import DeviceEntry, EdgeConfig
from edge.outbox import Outbox
from gridwatch.core.alert import Place

logger = logging.getLogger(__name__)
RULES_META, DEVICES_META = "fleet.rules", "fleet.devices"
POLL_WAIT = 25.0
"""Seconds a long-poll waits at the hub for a change (under the hub's 60 s and common proxies' idle limits)."""


class FleetTarget(Protocol):
    """What the client needs of the agent."""

    def apply_rules(self, version: int, text: str) -> str:
        """Check and take a rule set; '' when taken, else the checker's reasons."""
        ...

    def apply_devices(self, devices: list[dict[str, Any]]) -> str:
        """Take a device list; '' when taken, else why not."""
        ...

    def heartbeat(self) -> dict[str, Any]:
        """The body of the next heartbeat."""
        ...


class FleetClient:
    def __init__(self, cfg: EdgeConfig, outbox: Outbox, target: FleetTarget) -> None:
        self.cfg = cfg
        self.outbox = outbox
        self.target = target
        self.base = cfg.hub.url.rstrip("/") + "/api/v1"
        key = cfg.hub.secret()
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}
        verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=str(cfg.hub.ca_file)) \
            if cfg.hub.ca_file else True
        self._beats = httpx.Client(timeout=cfg.hub.timeout, verify=verify)
        self._polls = httpx.Client(timeout=POLL_WAIT + cfg.hub.timeout, verify=verify)
        self._stop = threading.Event()
        self._poke = threading.Event()
        self._threads: list[threading.Thread] = []
        rules = self.cached_rules()
        devices = self.cached_devices()
        self.rule_version: int | None = rules[0] if rules else None
        self.etag: str = devices[0] if devices else ""
        self.beats_sent = 0

    # ---- the cache ------------------------------------------------------------------------------------
    def cached_rules(self) -> tuple[int, str] | None:
        raw = self.outbox.get_meta(RULES_META)
        if raw is None:
            return None
        d = json.loads(raw)
        return int(d["version"]), str(d["text"])

    def cached_devices(self) -> tuple[str, list[dict[str, Any]]] | None:
        raw = self.outbox.get_meta(DEVICES_META)
        if raw is None:
            return None
        d = json.loads(raw)
        return str(d["etag"]), list(d["list"])

    # ---- life cycle ----------------------------------------------------------------------------------
    def start(self) -> None:
        loops = [("heartbeat", self._beat_loop)] if self.cfg.hub.heartbeat else []
        if self.cfg.hub.fleet:
            loops.append(("assignment", self._poll_loop))
        for name, fn in loops:
            t = threading.Thread(target=fn, name=f"gridwatch-fleet-{name}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        self._poke.set()
        self._polls.close()  # ends a waiting long-poll at once
        for t in self._threads:
            t.join(timeout=5)
        self._beats.close()

    def poke(self) -> None:
        """Send a heartbeat now (after a rule set was applied, so the hub sees the new version at once)."""
        self._poke.set()

    # ---- heartbeats ----------------------------------------------------------------------------------
    def beat(self) -> bool:
        try:
            r = self._beats.post(f"{self.base}/fleet/heartbeat", json=self.target.heartbeat(), headers=self.headers)
        except httpx.HTTPError as exc:
            logger.debug("heartbeat not sent: %s", exc)
            return False
        if r.status_code >= 300:
            logger.warning("hub refused the heartbeat: %s %s", r.status_code, r.text[:300])
            return False
        self.beats_sent += 1
        return True

    def _beat_loop(self) -> None:
        every = self.cfg.hub.heartbeat or 15.0
        while not self._stop.is_set():
            self._poke.clear()
            self.beat()
            self._poke.wait(every)

    # ---- assignments ---------------------------------------------------------------------------------
    def poll(self, wait: float = POLL_WAIT) -> bool:
        """One long-poll; True when something new was applied."""
        params: dict[str, Any] = {"grids": ",".join(self.cfg.grids), "devices": self.etag, "wait": wait}
        if self.rule_version is not None:
            params["rules"] = self.rule_version
        r = self._polls.get(f"{self.base}/fleet/assignment", params=params, headers=self.headers)
        if r.status_code >= 300:
            raise httpx.HTTPStatusError(f"hub answered {r.status_code}: {r.text[:300]}", request=r.request,
                                        response=r)
        body = r.json()
        changed = False
        if body.get("devices") is not None:
            d = body["devices"]
            problem = self.target.apply_devices(d["list"])
            if problem:
                logger.error("device list from the hub refused: %s", problem)
            else:
                self.outbox.set_meta(DEVICES_META, json.dumps(d))
            self.etag = d["etag"]
            changed = True
        if body.get("rules") is not None:
            rules = body["rules"]
            problem = self.target.apply_rules(int(rules["version"]), rules["text"])
            if not problem:
                self.outbox.set_meta(RULES_META, json.dumps({"version": rules["version"], "text": rules["text"]}))
            self.rule_version = int(rules["version"])  # refused or not: do not ask for it again and again
            changed = True
        return changed

    def _poll_loop(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self.poll()
                failures = 0
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                if self._stop.is_set():
                    return
                failures += 1
                delay = min(self.cfg.hub.backoff_max, self.cfg.hub.backoff_min * 2 ** min(failures, 10))
                if failures in (1, 10) or failures % 100 == 0:
                    logger.warning("assignment poll failed (%d in a row), next in %.1fs: %s", failures, delay, exc)
                self._stop.wait(delay)


def device_entries(rows: list[dict[str, Any]]) -> tuple[list[DeviceEntry], dict[str, Place], str]:
    """The hub's device list as device entries and places; the rows that cannot be taken are left out and
    named in the third value."""
    entries, places, bad = [], {}, []
    for row in rows:
        try:
            e = DeviceEntry.model_validate({k: row[k] for k in ("id", "grid", "kind", "gateway") if k in row})
            p = Place.model_validate({k: row[k] for k in ("lat", "lon", "address", "name") if k in row})
        except ValidationError as exc:
            bad.append(f"{row.get('id', '?')}: {exc.errors()[0]['msg']}")
            continue
        entries.append(e)
        if p.lat is not None or p.address or p.name:
            places[e.id] = p
    return entries, places, "; ".join(bad[:20])
