"""The GB/T 28181 gateway's state: the configured devices and platforms (`Peer`), the counters, the MQTT client,
the registry writer and the streams; the constants the parts share. The parts build on it in one line:
`publishing` → `transport` → `catalog` → `alarm_intake` → `guard` → `streams` → `registrar` → `gateway`."""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry

from edge.gb28181.config import Device, GbGatewayConfig
from edge.gb28181.evidence import EvidencePoster
from edge.gb28181.guard_sync import GuardSync
from edge.gb28181.media import StreamRun
from edge.gb28181.presence import Presence, RateLimit
from edge.gb28181.registry import RegistryWriter
from gridwatch.core.gb28181 import digest
from gridwatch.core.gb28181.sip import SipMessage, header_param
from gridwatch.core.mqttlink import make_client, secret

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


def tag() -> str:
    return secrets.token_hex(6)


def date() -> str:
    """GB/T 28181 §9.1.2.1: the 200 to REGISTER carries Date for the device's clock, as `YYYY-MM-DDTHH:MM:SS.mmm`
    local time (not RFC 1123)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime()) + ".000"


def expires_of(msg: SipMessage) -> int:
    raw = msg.get("Expires")
    if raw is None:
        raw = header_param(msg.get("Contact") or "", "expires")
    if raw is None or not raw.strip().isdigit():
        return 3600
    return int(raw.strip())


class GatewayBase:
    def __init__(self, cfg: GbGatewayConfig, clock: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.clock = clock
        self.peers = {d.id: Peer(d, Presence(cfg.keepalive.interval, cfg.keepalive.misses)) for d in cfg.devices}
        self.channel_owner: dict[str, str] = {}  # channel id -> device id
        self.nonce_key = secrets.token_bytes(32)  # signs this process's nonces
        self.nonce_counts = digest.NonceCounts(cfg.registration.nonce_ttl)  # nc seen per nonce (qop=auth replays)
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
        self.evidence: EvidencePoster | None = None
        if cfg.hub is not None and cfg.snapshots:
            self.evidence = EvidencePoster(cfg.hub.url, secret(cfg.hub.key_env, cfg.hub.key), timeout=cfg.hub.timeout,
                                           ca_file=str(cfg.hub.ca_file) if cfg.hub.ca_file else None)
        self.guard_wanted: dict[str, str] = {}  # device/channel -> armed/disarmed, as the hub asks (guard)
        self.guard_applied: dict[str, str] = {}  # what each device confirmed
        self.guard_asked: dict[int, tuple[str, str, float]] = {}  # SN -> (device, state, when sent)
        self.guard_sync: GuardSync | None = None  # made by the gateway (`gateway.GbGateway`)
        self.snapped: dict[str, float] = {}  # channel -> when its last alarm snapshot was asked for
        self.snapshot_runs: dict[str, StreamRun] = {}  # channel -> its snapshot's short stream
        self.clip_runs: dict[str, StreamRun] = {}  # channel -> its recording's download
        self.clip_notes: dict[str, str] = {}  # channel -> the description of the alarm its clip is for
        self.clip_asked: dict[int, tuple[str, float, str]] = {}  # RecordInfo SN -> (channel, alarm time, description)
        self.look_frames: dict[str, tuple[int, float]] = {}  # pulled channel -> (look, when) its next frame is for
        self.looks_taken: dict[int, float] = {}  # look id -> when this gateway took it (`looks`)
        self.metrics = CollectorRegistry()
        self._server: Any = None
        self.metrics_port: int | None = None
        self.seq = 0
        self.streams: dict[str, StreamRun] = {}  # channel id -> its stream
        self.invites: dict[str, StreamRun] = {}  # Call-ID -> the stream it asks for
        self.ssrc_serial = 0
        self.v5 = cfg.mqtt.protocol == "v5"
