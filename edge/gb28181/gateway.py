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
  Dahua alarms watch these; not while the hub has the channel or its platform disarmed (`guard`);
- 布防/撤防 (§9.3): the hub's wishes sent as DeviceControl guard commands, confirmations told back;
- 视频复核 (`looks`): a channel turned to the preset the hub asks, then its picture sent for the case.

Anything malformed, oversized, hostile (XML entities, deep nesting), from an unknown or unregistered id, or
beyond the REGISTER rate of its address is refused with a counted reason
(`gridwatch_gb28181_refused_total{reason}`) and the loop goes on serving the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import uvloop
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from edge.gb28181.base import UDP_BUFFER, Addr, tag
from edge.gb28181.config import GbGatewayConfig
from edge.gb28181.guard_sync import GuardSync
from edge.gb28181.registrar import Registrar
from edge.metrics import serve
from gridwatch.core.gb28181.sip import Framer, SipError, parse, response
from gridwatch.core.mqttlink import connect, secret

logger = logging.getLogger(__name__)


class GbGateway(Registrar):
    """The gateway: its life (start, stop, health), the loop serving SIP over UDP and TCP, and each message
    routed to its part."""

    def __init__(self, cfg: GbGatewayConfig, clock: Callable[[], float] = time.time) -> None:
        super().__init__(cfg, clock)
        if cfg.hub is not None and cfg.guard_poll > 0:
            self.guard_sync = GuardSync(cfg.hub.url, secret(cfg.hub.key_env, cfg.hub.key), self.guards_read,
                                        poll=cfg.guard_poll, timeout=cfg.hub.timeout,
                                        ca_file=str(cfg.hub.ca_file) if cfg.hub.ca_file else None,
                                        looks=self.looks_read if self.evidence is not None else None)
        self.metrics.register(_Collector(self))

    def start(self) -> None:
        topic, online = self._own_status()
        self.client.will_set(topic, b"offline", qos=1, retain=True)  # dead: every device it watched with it
        connect(self.client, self.cfg.mqtt)
        self.client.loop_start()
        self._publish(topic, online, retain=True)
        if self.writer is not None:
            self.writer.start()
        if self.evidence is not None:
            self.evidence.start()
        self.thread = threading.Thread(target=self._run, name="gridwatch-gb28181", daemon=True)
        self.thread.start()
        if not self.ready.wait(15):
            raise RuntimeError("the SIP listeners did not start")
        if self.guard_sync is not None:
            self.guard_sync.start()
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
        if self.evidence is not None:
            self.evidence.stop()
        if self.guard_sync is not None:
            self.guard_sync.stop()
        info = self.client.publish(self._own_status()[0], b"offline", qos=1, retain=True)  # stopped: unwatched
        with contextlib.suppress(Exception):
            info.wait_for_publish(5)
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
                self.send(response(msg, 200, to_tag=tag()), addr, transport, writer)
            elif msg.method != "ACK":
                self.send(response(msg, 405, headers=[("Allow", "REGISTER, MESSAGE, NOTIFY, OPTIONS, BYE, ACK")]),
                          addr, transport, writer)
        except SipError as exc:
            self.refuse(exc.reason, addr, exc.detail)
            self.send(response(msg, 400), addr, transport, writer)


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, gw: GbGateway) -> None:
        self.gw = gw

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        if data.strip(b"\r\n") == b"":
            return  # a NAT keepalive (RFC 5626 §3.5.1)
        self.gw.received(data, (addr[0], addr[1]), "udp", None)

    def error_received(self, exc: Exception) -> None:
        logger.debug("gb28181: UDP error %s", exc)


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
                                     "method/type', or 'disarmed': not published under 撤防)", labels=["event"])
        for ev, n in sorted(gw.alarms.items()):
            alarms.add_metric([ev], n)
        yield alarms
        snaps = CounterMetricFamily("gridwatch_gb28181_snapshots", "alarm snapshots by result (posted to the case, "
                                    "no_case, no_frame, skipped, refused_<status>, hub_error, dropped)",
                                    labels=["result"])
        for result, n in sorted((gw.evidence.results if gw.evidence is not None else {}).items()):
            snaps.add_metric([result], n)
        yield snaps
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
