"""The GB/T 28181 access gateway (`gridwatch gateway gb28181`): gridwatch as the upper platform (上级平台, the
SIP server) of IP cameras, NVRs and lower platforms.

One asyncio loop in a thread of its own serves SIP over UDP and TCP on one port (GB/T 28181-2016 §4.2,
RFC 3261 §18). For each configured device or platform:
- REGISTER (§9.1): challenged with digest (401), checked (`digest.verify`), granted for its Expires within
  the configured bounds (200 with `Expires` and `Date`); an unknown id or a wrong password is refused (403)
  and counted by reason; Expires: 0 unregisters;
- Keepalive (§9.6): each one (and any message) keeps it online; `misses` periods without one, or an
  expired registration, publish `offline` on `gw/{grid}/camera/{id}/status` (retained, QoS 1), and its
  return `online`. Its catalog channels are registered with it as their `gateway`, so an agent that takes
  the hub's device list raises one alert for the platform, not one per channel;
- Catalog (§9.5): queried after each new registration; the pages (`SumNum`, `DeviceList`) go into the hub's
  device registry (`registry.RegistryWriter`), each channel on the grid its CivilCode maps to; catalog
  notifications (ADD, UPDATE, DEL, ON, OFF, VLOST) keep it current, ON/OFF as the channel's status;
- Alarm (§9.4): answered 200 and `<Result>OK</Result>`, and published as a camera event on
  `gw/{grid}/camera/{channel}/event` (`alarms.event_of`), so the `event:` rules that watch Hikvision and
  Dahua alarms watch these.

Anything malformed, oversized, hostile (XML entities, deep nesting), from an unknown or unregistered id, or
beyond the REGISTER rate of its address is refused with a counted reason
(`gridwatch_gb28181_refused_total{reason}`) and the loop goes on serving the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import uvloop
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from edge.camera_gateway.gateway import publish_frame
from edge.camera_gateway.liveness import Liveness
from edge.camera_gateway.stream import Sample
from edge.gb28181.alarms import event_of
from edge.gb28181.config import Device, GbGatewayConfig, Stream
from edge.gb28181.media import StreamRun
from edge.gb28181.presence import Presence, RateLimit
from edge.gb28181.registry import Channel, RegistryWriter
from edge.metrics import serve
from gridwatch.core.gb28181 import digest, manscdp, rtp
from gridwatch.core.gb28181.sip import Framer, SipError, SipMessage, header_param, parse, response
from gridwatch.core.mqttlink import connect, make_client, secret

logger = logging.getLogger(__name__)
MANSCDP = "Application/MANSCDP+xml"
Addr = tuple[str, int]
STREAM_RETRY = 10.0
"""Seconds between INVITEs of a channel whose stream is not playing."""
CATALOG_WAIT = 15.0
"""Seconds without a catalog page, short of SumNum, before it is asked again (`CATALOG_TRIES` times)."""
CATALOG_TRIES = 3
UDP_BUFFER = 4 << 20
"""Bytes of the UDP socket's receive buffer: 10,000 devices' keepalives arrive in bursts."""


@dataclass
class Peer:
    """A configured device or platform and what the gateway knows of it now."""

    dev: Device
    presence: Presence
    addr: Addr | None = None
    transport: str = "udp"
    writer: asyncio.StreamWriter | None = None
    catalog_sn: int = 0
    catalog_sum: int = 0
    catalog_got: set[str] = field(default_factory=set)
    catalog_at: float = 0.0  # when it was asked, or its last page came
    catalog_tries: int = 0
    channels: dict[str, str] = field(default_factory=dict)  # channel id -> grid
    cseq: int = 0
    subscribed_until: dict[str, float] = field(default_factory=dict)  # alarm/catalog -> when it lapses


class GbGateway:
    def __init__(self, cfg: GbGatewayConfig, clock: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.clock = clock
        self.peers = {d.id: Peer(d, Presence(cfg.keepalive.interval, cfg.keepalive.misses)) for d in cfg.devices}
        self.channel_owner: dict[str, str] = {}  # channel id -> device id
        self.nonce_key = secrets.token_bytes(32)  # signs this process's nonces
        self.limit = RateLimit(cfg.registration.per_source)
        self.refused: Counter[str] = Counter()
        self.handled: Counter[str] = Counter()
        self.alarms: Counter[str] = Counter()
        self.published = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None
        self.ready = threading.Event()
        self.stopping: asyncio.Event | None = None
        self.udp: asyncio.DatagramTransport | None = None
        self.tcp: asyncio.Server | None = None
        self.port = cfg.sip.port
        self.tcp_connections = 0
        self.client = make_client(cfg.mqtt, cfg.client_id)
        self.client.max_queued_messages_set(100_000)
        self.writer: RegistryWriter | None = None
        if cfg.hub is not None:
            self.writer = RegistryWriter(cfg.hub.url, secret(cfg.hub.key_env, cfg.hub.key), timeout=cfg.hub.timeout,
                                         ca_file=str(cfg.hub.ca_file) if cfg.hub.ca_file else None,
                                         backoff_min=cfg.hub.backoff_min, backoff_max=cfg.hub.backoff_max)
        self.metrics = CollectorRegistry()
        self.metrics.register(_Collector(self))
        self._server: Any = None
        self.metrics_port: int | None = None
        self.seq = 0
        self.streams: dict[str, StreamRun] = {}  # channel id -> its stream
        self.invites: dict[str, StreamRun] = {}  # Call-ID -> the stream it asks for
        self.ssrc_serial = 0
        self.v5 = cfg.mqtt.protocol == "v5"

    # ---- life ----

    def start(self) -> None:
        connect(self.client, self.cfg.mqtt)
        self.client.loop_start()
        if self.writer is not None:
            self.writer.start()
        self.thread = threading.Thread(target=self._run, name="gridwatch-gb28181", daemon=True)
        self.thread.start()
        if not self.ready.wait(15):
            raise RuntimeError("the SIP listeners did not start")
        if self.cfg.metrics_port is not None:
            self._server = serve(self.metrics, "127.0.0.1", self.cfg.metrics_port, self.health)
            self.metrics_port = int(self._server.server_port)

    def stop(self) -> None:
        if self.loop is not None and self.stopping is not None:
            done = threading.Event()

            def hang_up() -> None:
                for run in list(self.streams.values()):
                    self.end_stream(run, "stopping")
                done.set()
            self.loop.call_soon_threadsafe(hang_up)
            done.wait(5)
            self.loop.call_soon_threadsafe(self.stopping.set)
        if self.thread is not None:
            self.thread.join(timeout=10)
        if self.writer is not None:
            self.writer.stop()
        self.client.loop_stop()
        self.client.disconnect()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def health(self) -> tuple[bool, str]:
        alive = self.thread is not None and self.thread.is_alive()
        return alive, "ok" if alive else "the SIP loop ended"

    def _run(self) -> None:
        # libuv's loop (uvloop, as under the hub): a datagram costs less to take than on asyncio's own loop, and
        # a gateway takes some 300 RTP packets a second per 1080p channel
        uvloop.run(self._main())

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.stopping = asyncio.Event()
        s = self.cfg.sip
        if "tcp" in s.transports:
            self.tcp = await asyncio.start_server(self._tcp_client, s.host, s.port)
            self.port = self.tcp.sockets[0].getsockname()[1]
        if "udp" in s.transports:
            self.udp, _ = await self.loop.create_datagram_endpoint(
                lambda: _Udp(self), local_addr=(s.host, self.port))
            self.port = self.udp.get_extra_info("sockname")[1]
            sock = self.udp.get_extra_info("socket")
            with contextlib.suppress(OSError):  # capped by net.core.rmem_max; the default is some 200 KiB
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_BUFFER)
        self.ready.set()
        logger.info("gb28181: SIP server %s@%s on %s:%d (%s), %d device(s)", s.id, s.domain, s.host, self.port,
                    "/".join(s.transports), len(self.peers))
        try:
            while not self.stopping.is_set():
                self.tick()
                try:
                    await asyncio.wait_for(self.stopping.wait(), timeout=1.0)
                except TimeoutError:
                    pass
        finally:
            if self.udp is not None:
                self.udp.close()
            if self.tcp is not None:
                self.tcp.close()
            for p in self.peers.values():
                if p.writer is not None:
                    p.writer.close()

    # ---- transport ----

    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        addr = writer.get_extra_info("peername")[:2]
        if self.tcp_connections >= self.cfg.limits.max_tcp_connections:
            self.refuse("too_many_connections", addr, "")
            writer.close()
            return
        self.tcp_connections += 1
        framer = Framer()
        try:
            while True:
                data = await reader.read(16_384)
                if not data:
                    return
                try:
                    frames = framer.feed(data)
                except SipError as exc:
                    self.refuse(exc.reason, addr, exc.detail)
                    return  # the stream cannot be re-synchronised: the device connects again
                for frame in frames:
                    self.received(frame, addr, "tcp", writer)
        except (ConnectionError, OSError):
            return
        finally:
            self.tcp_connections -= 1
            writer.close()

    def send(self, msg: SipMessage, addr: Addr, transport: str, writer: asyncio.StreamWriter | None) -> None:
        data = msg.to_bytes()
        if transport == "tcp":
            if writer is not None and not writer.is_closing():
                writer.write(data)
        elif self.udp is not None:
            self.udp.sendto(data, addr)

    def refuse(self, reason: str, addr: Addr | None, detail: str) -> None:
        self.refused[reason] += 1
        logger.warning("gb28181: refused (%s) from %s: %s", reason, f"{addr[0]}:{addr[1]}" if addr else "?",
                       detail[:200])

    # ---- requests ----

    def received(self, data: bytes, addr: Addr, transport: str, writer: asyncio.StreamWriter | None) -> None:
        if len(data) > self.cfg.limits.max_message:
            self.refuse("too_large", addr, f"{len(data)} bytes")
            return
        try:
            msg = parse(data)
        except SipError as exc:
            self.refuse(exc.reason, addr, exc.detail)
            return
        if not msg.is_request:
            self.handled[f"response_{msg.status}"] += 1  # to our queries: a 200 says it will answer by MESSAGE
            run = self.invites.get(msg.call_id)
            if run is not None:
                self.invite_answered(run, msg)
            return
        assert msg.method is not None
        self.handled[msg.method] += 1
        try:
            if msg.method == "REGISTER":
                self.register(msg, addr, transport, writer)
            elif msg.method in ("MESSAGE", "NOTIFY"):
                self.command(msg, addr, transport, writer)
            elif msg.method in ("OPTIONS", "BYE"):
                self.send(response(msg, 200, to_tag=_tag()), addr, transport, writer)
            elif msg.method != "ACK":
                self.send(response(msg, 405, headers=[("Allow", "REGISTER, MESSAGE, NOTIFY, OPTIONS, BYE, ACK")]),
                          addr, transport, writer)
        except SipError as exc:
            self.refuse(exc.reason, addr, exc.detail)
            self.send(response(msg, 400), addr, transport, writer)

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
            self.send(response(msg, 403, to_tag=_tag()), addr, transport, writer)
            return
        password = peer.dev.secret() or self.cfg.sip.secret() or ""
        auth = msg.get("Authorization")
        verdict = digest.verify(auth, method="REGISTER", user=dev_id, realm=self.cfg.sip.domain,
                                password=password, secret=self.nonce_key, now=now)
        if not verdict.ok:
            if verdict.reason in ("no_credentials", "stale_nonce"):  # challenge (again): not a failure yet
                nonce = digest.make_nonce(self.nonce_key, now)
                self.send(response(msg, 401, to_tag=_tag(),
                                   headers=[("WWW-Authenticate", digest.challenge(self.cfg.sip.domain, nonce))]),
                          addr, transport, writer)
                return
            self.refuse(verdict.reason, addr, f"REGISTER of {dev_id}")
            self.send(response(msg, 403, to_tag=_tag()), addr, transport, writer)
            return
        expires = _expires(msg)
        if expires == 0:
            self.send(response(msg, 200, to_tag=_tag(), headers=[("Expires", "0"), ("Date", _date())]),
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
        self.send(response(msg, 200, to_tag=_tag(), headers=[
            ("Contact", msg.get("Contact") or f"<sip:{dev_id}@{addr[0]}:{addr[1]}>"),
            ("Expires", str(expires)), ("Date", _date())]), addr, transport, writer)
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
            self.send(response(msg, 403, to_tag=_tag()), addr, transport, writer)
            return
        if not peer.presence.registered_now:
            self.refuse("not_registered", addr, f"{msg.method} from {sender} before it registered")
            self.send(response(msg, 403, to_tag=_tag()), addr, transport, writer)
            return
        if peer.addr is not None and addr[0] != peer.addr[0]:
            self.refuse("wrong_source", addr, f"{msg.method} of {sender} from {addr[0]}, registered from "
                                              f"{peer.addr[0]}")
            self.send(response(msg, 403, to_tag=_tag()), addr, transport, writer)
            return
        try:
            body = manscdp.parse(msg.body)
        except manscdp.XmlError as exc:
            self.refuse(exc.reason, addr, str(exc))
            self.send(response(msg, 400, to_tag=_tag()), addr, transport, writer)
            return
        self.send(response(msg, 200, to_tag=_tag()), addr, transport, writer)
        self._status(peer, peer.presence.heard(now), "message")
        what = f"{body.root}/{body.cmd}"
        if what == "Notify/Keepalive":
            return
        try:
            if what == "Response/Catalog":
                self.catalog_page(peer, manscdp.catalog(body))
            elif what == "Notify/Catalog":
                self.catalog_change(peer, manscdp.catalog(body))
            elif what == "Notify/Alarm":
                self.alarm(peer, manscdp.alarm(body), now)
                self.request(peer, "MESSAGE", manscdp.reply_ok("Alarm", body.sn, body.device_id))
            else:
                self.handled[f"ignored_{body.cmd}"] += 1
        except manscdp.XmlError as exc:
            self.refuse(exc.reason, addr, str(exc))

    # ---- what the device says ----

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
            if state is not None:
                self._publish(f"{self.cfg.mqtt.topic_root}/{grid}/camera/{it.device_id}/status", state.encode(),
                              retain=True)
        if rows and self.writer is not None:
            self.writer.put(rows)

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
        self.alarms[event] += 1
        self.seq += 1
        body = {"ts": int(now * 1000), "seq": self.seq, "event": event, "state": "start", "zone": "",
                "code": f"gb28181:{pair}"}
        self._publish(f"{self.cfg.mqtt.topic_root}/{grid}/camera/{channel}/event", json.dumps(body).encode())

    # ---- what the gateway asks ----

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

    @property
    def here(self) -> str:
        s = self.cfg.sip
        return s.advertise or (s.host if s.host != "0.0.0.0" else "127.0.0.1")

    def request(self, peer: Peer, method: str, body: bytes, *, target: str | None = None,
                content_type: str = MANSCDP, headers: list[tuple[str, str]] | None = None) -> SipMessage | None:
        """A request to the device (`target`: one of its channels, as the request-URI and To)."""
        if peer.addr is None:
            return None
        s = self.cfg.sip
        peer.cseq += 1
        to = target or peer.dev.id
        msg = SipMessage(method=method, uri=f"sip:{to}@{peer.addr[0]}:{peer.addr[1]}")
        msg.headers = [("Via", f"SIP/2.0/{peer.transport.upper()} {self.here}:{self.port};rport;branch=z9hG4bK"
                               f"{secrets.token_hex(8)}"),
                       ("From", f"<sip:{s.id}@{s.domain}>;tag={_tag()}"),
                       ("To", f"<sip:{to}@{s.domain}>"),
                       ("Call-ID", f"{secrets.token_hex(12)}@{self.here}"), ("CSeq", f"{peer.cseq} {method}"),
                       ("Max-Forwards", "70"), ("User-Agent", "gridwatch"), *(headers or []),
                       ("Content-Type", content_type)]
        msg.body = body
        self.send(msg, peer.addr, peer.transport, peer.writer)
        return msg

    # ---- subscriptions (SUBSCRIBE, GB/T 28181-2016 §9.11) ----

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

    # ---- streams (INVITE, GB/T 28181-2016 §9.2) ----

    def pull_streams(self, now: float) -> None:
        """Ask for each listed channel's stream whose device is online and that is not playing; a stream whose
        frames stopped is `offline`, hung up and asked for again."""
        for spec in self.cfg.streams:
            run = self.streams.get(spec.channel)
            if run is not None and run.state == "playing":
                change = run.liveness.check(now)
                if change is not None:
                    self._publish(self._topic(run.grid, run.channel, "status"), change.encode(), retain=True)
                    self.end_stream(run, "no frames")
                continue
            if run is not None and now - run.asked_at < STREAM_RETRY:  # asked a moment ago (or just ended)
                continue
            owner = self.channel_owner.get(spec.channel) or (spec.channel if spec.channel in self.peers else None)
            peer = self.peers.get(owner) if owner else None
            if peer is None or peer.presence.state != "online" or peer.addr is None:
                continue
            if run is not None:
                self.end_stream(run, "again")
            asyncio.ensure_future(self.invite(peer, spec, now))

    async def invite(self, peer: Peer, spec: Stream, now: float) -> None:
        assert self.loop is not None and peer.addr is not None
        self.ssrc_serial += 1
        grid = peer.channels.get(spec.channel, peer.dev.grid)
        run = StreamRun(spec.channel, grid, peer.dev.id, rtp.ssrc_for(self.cfg.sip.domain, self.ssrc_serial),
                        spec.sample_every, spec.width, spec.jpeg_quality, Liveness(spec.offline_after, now),
                        source_host=peer.addr[0], asked_at=now, state="inviting")
        self.streams[spec.channel] = run
        if spec.transport == "udp":
            run.transport, _ = await self.loop.create_datagram_endpoint(lambda: _Rtp(self, run),
                                                                         local_addr=(self.cfg.sip.host, 0))
            run.rtp_port = run.transport.get_extra_info("sockname")[1]
            with contextlib.suppress(OSError):  # a 1080p keyframe is some 200 packets at once
                run.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_BUFFER)
        else:
            run.transport = await asyncio.start_server(partial(self._rtp_tcp, run), self.cfg.sip.host, 0)
            run.rtp_port = run.transport.sockets[0].getsockname()[1]
        sdp = rtp.write_sdp(self.cfg.sip.id, self.here, run.rtp_port, run.ssrc, transport=spec.transport,
                            setup="passive")
        msg = self.request(peer, "INVITE", sdp, target=spec.channel, content_type="APPLICATION/SDP", headers=[
            ("Contact", f"<sip:{self.cfg.sip.id}@{self.here}:{self.port}>"),
            ("Subject", f"{spec.channel}:{run.ssrc},{self.cfg.sip.id}:0")])  # §8.1.2.2: sender:ssrc,receiver:0
        if msg is None:
            self.end_stream(run, "no address")
            return
        run.invite, run.call_id = msg, msg.call_id
        self.invites[msg.call_id] = run
        logger.info("gb28181: INVITE %s (SSRC %s, RTP %s port %d)", spec.channel, run.ssrc, spec.transport,
                    run.rtp_port)

    def invite_answered(self, run: StreamRun, msg: SipMessage) -> None:
        assert msg.status is not None
        _, method = msg.cseq
        if method != "INVITE" or msg.status < 200:
            return
        if msg.status >= 300:
            self.refuse("invite_refused", None, f"channel {run.channel}: {msg.status} {msg.phrase}")
            self.end_stream(run, f"refused {msg.status}")
            return
        if run.state != "inviting":  # a 200 again (UDP retransmission): ACK again, nothing more
            self._ack(run, msg)
            return
        try:
            answer = rtp.read_sdp(msg.body)
        except rtp.RtpError as exc:
            self.refuse(exc.reason, None, f"channel {run.channel}: {exc}")
            self.end_stream(run, "bad SDP")
            return
        if answer.ssrc and answer.ssrc != run.ssrc:  # the device chose its own (§附录F allows it): that one counts
            run.ssrc = answer.ssrc
        run.answer = msg
        self._ack(run, msg)
        run.state = "playing"
        run.thread = threading.Thread(target=run.run, args=(self._publish_sample,), daemon=True,
                                      name=f"gridwatch-gb-{run.channel[-6:]}")
        run.thread.start()

    def _dialog(self, run: StreamRun, method: str) -> SipMessage | None:
        """ACK or BYE in the INVITE's dialog (RFC 3261 §12.2.1.1, §13.2.2.4, §15.1.1)."""
        peer = self.peers.get(run.device)
        if peer is None or peer.addr is None or run.invite is None or run.answer is None:
            return None
        n, _ = run.invite.cseq
        if method == "BYE":
            peer.cseq += 1
            n = peer.cseq
        msg = SipMessage(method=method, uri=run.invite.uri)
        msg.headers = [("Via", f"SIP/2.0/{peer.transport.upper()} {self.here}:{self.port};rport;branch=z9hG4bK"
                               f"{secrets.token_hex(8)}"),
                       ("From", run.invite.get("From") or ""), ("To", run.answer.get("To") or ""),
                       ("Call-ID", run.call_id), ("CSeq", f"{n} {method}"), ("Max-Forwards", "70")]
        self.send(msg, peer.addr, peer.transport, peer.writer)
        return msg

    def _ack(self, run: StreamRun, answer: SipMessage) -> None:
        run.answer = answer
        self._dialog(run, "ACK")

    def end_stream(self, run: StreamRun, why: str) -> None:
        if run.state == "playing":
            self._dialog(run, "BYE")
        run.state = "ended"
        run.stop.set()
        run.pipe.close()
        if run.transport is not None:
            run.transport.close()
            run.transport = None
        self.invites.pop(run.call_id, None)
        logger.info("gb28181: stream of %s ended (%s)", run.channel, why)

    async def _rtp_tcp(self, run: StreamRun, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host = writer.get_extra_info("peername")[0]
        if host != run.source_host:
            self.refuse("rtp_wrong_source", (host, 0), f"channel {run.channel}: TCP RTP from {host}")
            writer.close()
            return
        deframer = rtp.TcpDeframer()
        try:
            while data := await reader.read(65_536):
                for packet in deframer.feed(data):
                    run.take(packet, host, self._refuse_media)
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    def _refuse_media(self, reason: str, detail: str) -> None:
        self.refuse(reason, None, detail)

    def _publish_sample(self, run: StreamRun, sample: Sample) -> None:
        """In the stream's thread: a sampled frame as the RTSP path publishes it."""
        if not publish_frame(self.client, self.v5, self._topic(run.grid, run.channel, "frame"), sample.image,
                             run.jpeg_quality, sample.ts, run.seq + 1):
            run.stats.decode_errors += 1
            return
        run.seq += 1
        run.stats.published += 1
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self._frame_seen, run)

    def _frame_seen(self, run: StreamRun) -> None:
        change = run.liveness.frame(self.clock())
        if change is not None:
            self._publish(self._topic(run.grid, run.channel, "status"), change.encode(), retain=True)

    def _topic(self, grid: str, device: str, leaf: str) -> str:
        return f"{self.cfg.mqtt.topic_root}/{grid}/camera/{device}/{leaf}"

    # ---- liveness ----

    def tick(self) -> None:
        now = self.clock()
        for peer in self.peers.values():
            state, why = peer.presence.check(now)
            self._status(peer, state, why)
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

    def _status(self, peer: Peer, state: str | None, why: str) -> None:
        if state is None:
            return
        logger.info("gb28181: %s %s (%s)", peer.dev.id, state, why)
        self._publish(f"{self.cfg.mqtt.topic_root}/{peer.dev.grid}/camera/{peer.dev.id}/status", state.encode(),
                      retain=True)

    def _publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.published += 1
        self.client.publish(topic, payload, qos=1, retain=retain)


class _Rtp(asyncio.DatagramProtocol):
    def __init__(self, gw: GbGateway, run: StreamRun) -> None:
        self.gw, self.run = gw, run

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.run.take(data, addr[0], self.gw._refuse_media)


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, gw: GbGateway) -> None:
        self.gw = gw

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        if data.strip(b"\r\n") == b"":
            return  # a NAT keepalive (RFC 5626 §3.5.1)
        self.gw.received(data, (addr[0], addr[1]), "udp", None)

    def error_received(self, exc: Exception) -> None:
        logger.debug("gb28181: UDP error %s", exc)


def _tag() -> str:
    return secrets.token_hex(6)


def _date() -> str:
    """GB/T 28181 §9.1.2.1: the 200 to REGISTER carries Date for the device's clock, as `YYYY-MM-DDTHH:MM:SS.mmm`
    local time (not RFC 1123)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime()) + ".000"


def _expires(msg: SipMessage) -> int:
    raw = msg.get("Expires")
    if raw is None:
        raw = header_param(msg.get("Contact") or "", "expires")
    if raw is None or not raw.strip().isdigit():
        return 3600
    return int(raw.strip())


class _Collector(Collector):
    def __init__(self, gw: GbGateway) -> None:
        self.gw = gw

    def collect(self) -> Iterator[Any]:
        gw = self.gw
        refused = CounterMetricFamily("gridwatch_gb28181_refused", "SIP messages refused, by reason", labels=["reason"])
        for reason, n in sorted(gw.refused.items()):
            refused.add_metric([reason], n)
        yield refused
        handled = CounterMetricFamily("gridwatch_gb28181_requests", "SIP requests taken, by method",
                                      labels=["method"])
        for method, n in sorted(gw.handled.items()):
            handled.add_metric([method], n)
        yield handled
        alarms = CounterMetricFamily("gridwatch_gb28181_alarms", "alarms received, by camera event (or 'unmapped "
                                     "method/type')", labels=["event"])
        for ev, n in sorted(gw.alarms.items()):
            alarms.add_metric([ev], n)
        yield alarms
        yield GaugeMetricFamily("gridwatch_gb28181_online", "devices and platforms online",
                                value=sum(1 for p in gw.peers.values() if p.presence.state == "online"))
        yield GaugeMetricFamily("gridwatch_gb28181_channels", "catalog channels known",
                                value=len(gw.channel_owner))
        yield GaugeMetricFamily("gridwatch_gb28181_streams_playing", "channel streams playing",
                                value=sum(1 for r in gw.streams.values() if r.state == "playing"))
        yield CounterMetricFamily("gridwatch_gb28181_frames", "frames published from channel streams",
                                  value=sum(r.stats.published for r in gw.streams.values()))
        yield CounterMetricFamily("gridwatch_gb28181_rtp_lost", "RTP packets given up on (a gap in the sequence)",
                                  value=sum(r.reorder.lost for r in gw.streams.values()))
        yield GaugeMetricFamily("gridwatch_gb28181_registry_backlog", "channels waiting for the hub's registry",
                                value=gw.writer.backlog if gw.writer is not None else 0)

