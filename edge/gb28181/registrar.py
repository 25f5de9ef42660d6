"""The registrar (§9.1) with digest auth, MESSAGE dispatch (keepalive, catalog, alarm) and the clock's tick:
keepalive misses, registration expiry, catalog retries, subscription renewals, streams to pull."""

from __future__ import annotations

import asyncio
import logging
import time

from edge.gb28181.base import CATALOG_TRIES, CATALOG_WAIT, Addr, date, expires_of, tag
from edge.gb28181.clips import Clips
from gridwatch.core.gb28181 import digest, manscdp
from gridwatch.core.gb28181.sip import SipMessage, response

logger = logging.getLogger(__name__)


class Registrar(Clips):
    def register(self, msg: SipMessage, addr: Addr, transport: str, writer: asyncio.StreamWriter | None) -> None:
        now = self.clock()
        if not self.limit.take(addr[0], time.monotonic()):
            self.refuse("register_flood", addr, "over registration.per_source")
            self.send(response(msg, 503, headers=[("Retry-After", "5")]), addr, transport, writer)
            return
        dev_id = msg.from_user()
        peer = self.peers.get(dev_id)
        if peer is None:
            self.refuse("unknown_device", addr, f"REGISTER from {dev_id[:40]!r}")
            self.send(response(msg, 403, to_tag=tag()), addr, transport, writer)
            return
        password = peer.dev.secret() or self.cfg.sip.secret() or ""
        auth = msg.get("Authorization")
        ttl = self.cfg.registration.nonce_ttl
        verdict = digest.verify(auth, method="REGISTER", user=dev_id, realm=self.cfg.sip.domain,
                                password=password, secret=self.nonce_key, now=now, ttl=ttl, counts=self.nonce_counts)
        if not verdict.ok:
            if verdict.reason in ("no_credentials", "stale_nonce", "bad_nonce"):  # challenge (again): not a failure
                nonce = digest.make_nonce(self.nonce_key, now)  # yet; stale=TRUE: retry without a new password
                self.send(response(msg, 401, to_tag=tag(), headers=[("WWW-Authenticate", digest.challenge(
                    self.cfg.sip.domain, nonce, stale=verdict.reason == "stale_nonce"))]), addr, transport, writer)
                if verdict.reason != "no_credentials":
                    self.handled[f"challenge_{verdict.reason}"] += 1
                return
            self.refuse(verdict.reason, addr, f"REGISTER of {dev_id}")
            self.send(response(msg, 403, to_tag=tag()), addr, transport, writer)
            return
        expires = expires_of(msg)
        if expires == 0:
            self.send(response(msg, 200, to_tag=tag(), headers=[("Expires", "0"), ("Date", date())]),
                      addr, transport, writer)
            self._status(peer, peer.presence.unregistered(), "unregistered")
            return
        if expires < self.cfg.registration.min_expires:
            self.refuse("interval_too_brief", addr, f"Expires {expires}")
            self.send(response(msg, 423, headers=[("Min-Expires", str(self.cfg.registration.min_expires))]),
                      addr, transport, writer)
            return
        expires = min(expires, self.cfg.registration.max_expires)
        was = peer.presence.registered_now
        peer.addr, peer.transport, peer.writer = addr, transport, writer
        self.send(response(msg, 200, to_tag=tag(), headers=[
            ("Contact", msg.get("Contact") or f"<sip:{dev_id}@{addr[0]}:{addr[1]}>"),
            ("Expires", str(expires)), ("Date", date())]), addr, transport, writer)
        self._status(peer, peer.presence.registered(now, expires), "registered")
        if not was and peer.dev.catalog:
            self.query_catalog(peer)
        if not was:
            peer.subscribed_until.clear()
            self.subscribe(peer, now)

    def command(self, msg: SipMessage, addr: Addr, transport: str, writer: asyncio.StreamWriter | None) -> None:
        now = self.clock()  # when it came, not when it was answered
        sender = msg.from_user()
        peer = self.peers.get(sender)
        if peer is None:
            self.refuse("unknown_device", addr, f"{msg.method} from {sender[:40]!r}")
            self.send(response(msg, 403, to_tag=tag()), addr, transport, writer)
            return
        if not peer.presence.registered_now:
            self.refuse("not_registered", addr, f"{msg.method} from {sender} before it registered")
            self.send(response(msg, 403, to_tag=tag()), addr, transport, writer)
            return
        if peer.addr is not None and addr[0] != peer.addr[0]:
            self.refuse("wrong_source", addr, f"{msg.method} of {sender} from {addr[0]}, registered from "
                                              f"{peer.addr[0]}")
            self.send(response(msg, 403, to_tag=tag()), addr, transport, writer)
            return
        if manscdp.keepalive(msg.body) is not None:  # the plain keepalive: no XML parser (10,000 devices a minute)
            self.send(response(msg, 200, to_tag=tag()), addr, transport, writer)
            self._status(peer, peer.presence.heard(now), "message")
            return
        try:
            body = manscdp.parse(msg.body)
        except manscdp.XmlError as exc:
            self.refuse(exc.reason, addr, str(exc))
            self.send(response(msg, 400, to_tag=tag()), addr, transport, writer)
            return
        self.send(response(msg, 200, to_tag=tag()), addr, transport, writer)
        self._status(peer, peer.presence.heard(now), "message")
        what = f"{body.root}/{body.cmd}"
        if what == "Notify/Keepalive":
            return
        try:
            if what == "Response/Catalog":
                self.catalog_page(peer, manscdp.catalog(body))
            elif what == "Notify/Catalog":
                self.catalog_change(peer, manscdp.catalog(body))
            elif what == "Response/DeviceControl":
                self.guard_answered(peer, body)
            elif what == "Response/RecordInfo":
                self.records_answered(peer, body)
            elif what == "Notify/MediaStatus":
                self.media_status(peer, body)
            elif what == "Notify/Alarm":
                self.alarm(peer, manscdp.alarm(body), now)
                self.request(peer, "MESSAGE", manscdp.reply_ok("Alarm", body.sn, body.device_id))
            else:
                self.handled[f"ignored_{body.cmd}"] += 1
        except manscdp.XmlError as exc:
            self.refuse(exc.reason, addr, str(exc))

    def tick(self) -> None:
        now = self.clock()
        for peer in self.peers.values():  # ten thousand a second: the common case (online, nothing due) is cheap
            presence = peer.presence
            if presence.state == "online":
                state, why = presence.check(now)
                if state is not None:
                    self._status(peer, state, why)
            if not peer.catalog_sn and not peer.dev.subscribe:
                continue
            incomplete = peer.catalog_sn and (peer.catalog_sum == 0 or len(peer.catalog_got) < peer.catalog_sum)
            if (incomplete and peer.presence.state == "online" and now - peer.catalog_at > CATALOG_WAIT
                    and peer.catalog_tries < CATALOG_TRIES):
                peer.catalog_tries += 1
                self.handled["catalog_retry"] += 1
                logger.warning("gb28181: %s catalog has %d of %d channel(s) after %.0f s: asking again (%d/%d)",
                               peer.dev.id, len(peer.catalog_got), peer.catalog_sum, CATALOG_WAIT,
                               peer.catalog_tries, CATALOG_TRIES)
                self.query_catalog(peer, again=True)
            if peer.dev.subscribe and peer.presence.state == "online":
                self.subscribe(peer, now)
        if self.cfg.streams and self.loop is not None:
            self.pull_streams(now)
        if self.snapshot_runs or self.clip_runs or self.look_frames:
            self.snapshot_timeouts(now)
