"""The HTTP side of camera-native alarms: hold a vendor's alarm stream open, split it into parts, parse
them (edge/camera_gateway/alarms.py) and hand each start or stop edge on, reconnecting with back-off.

HTTP digest authentication (what Hikvision and Dahua ask for) is httpx's `DigestAuth`."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from edge.camera_gateway.alarms import (
    AlarmFormatError,
    AlarmStates,
    CameraAlarm,
    MultipartReader,
    dahua_alarms,
    isapi_alarm,
)
from edge.camera_gateway.config import AlarmSource, Backoff

logger = logging.getLogger(__name__)

PATHS = {"isapi": "/ISAPI/Event/notification/alertStream",
         "dahua": "/cgi-bin/eventManager.cgi?action=attach&codes=[All]&heartbeat=5"}


@dataclass
class AlarmStats:
    parts: int = 0
    alarms: int = 0
    format_errors: int = 0
    reconnects: int = 0
    connected: bool = False
    by_event: dict[str, int] = field(default_factory=dict)


def parse_part(kind: str, headers: dict[str, str], body: bytes) -> list[CameraAlarm]:
    if kind == "isapi":
        a = isapi_alarm(headers.get("content-type", ""), body)
        return [] if a is None else [a]
    return dahua_alarms(body)


class AlarmStream:
    """One camera's (or NVR channel's) alarm stream, run in its own thread."""

    def __init__(self, src: AlarmSource, emit: Callable[[CameraAlarm], None], backoff: Backoff, timeout: float,
                 quiet: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        if src.kind not in PATHS and type(self) is AlarmStream:
            raise ValueError(f"alarm source kind {src.kind!r} is not an HTTP alarm stream")
        self.src, self.emit, self.backoff, self.timeout, self.clock = src, emit, backoff, timeout, clock
        self.states = AlarmStates(quiet)
        self.stats = AlarmStats()
        self.lock = threading.Lock()
        self.url = src.url.rstrip("/") + PATHS.get(src.kind, "")

    def handle(self, headers: dict[str, str], body: bytes) -> None:
        self.stats.parts += 1
        try:
            alarms = parse_part(self.src.kind, headers, body)
        except AlarmFormatError as exc:
            self.stats.format_errors += 1
            logger.warning("alarms %s: %s", self.src.url, exc)
            return
        self.forward(alarms)

    def forward(self, alarms: list[CameraAlarm]) -> None:
        """The alarms of one part or notification: filtered by channel and code, turned into edges, emitted."""
        for a in alarms:
            if self.src.channel is not None and a.channel is not None and a.channel != self.src.channel:
                continue
            if self.src.events and a.code not in self.src.events:
                continue
            with self.lock:
                edge = self.states.seen(a, self.clock())
            if edge is not None:
                self.stats.alarms += 1
                self.stats.by_event[edge.event] = self.stats.by_event.get(edge.event, 0) + 1
                self.emit(edge)

    def expire(self) -> None:
        """Stops for events the camera stopped repeating (called by the gateway's watchdog each second)."""
        with self.lock:
            ended = self.states.expire(self.clock())
        for a in ended:
            self.emit(a)

    def run(self, stop: threading.Event) -> None:
        delay = self.backoff.min
        while not stop.is_set():
            try:
                self._once(stop)
                delay = self.backoff.min  # the stream ended after working: retry soon
            except (httpx.HTTPError, AlarmFormatError, OSError) as exc:
                logger.warning("alarms %s: %s; again in %.0f s", self.url, exc, delay)
            self.stats.connected = False
            self.stats.reconnects += 1
            if stop.wait(delay):
                return
            delay = min(delay * 2, self.backoff.max)

    def _once(self, stop: threading.Event) -> None:
        user, secret = self.src.username, self.src.secret()
        auth = httpx.DigestAuth(user, secret or "") if user else None
        # the read timeout outlasts the vendors' heartbeats (Dahua every 5 s, Hikvision about every 10 s)
        timeout = httpx.Timeout(self.timeout, read=max(self.timeout, 30.0))
        with httpx.Client(auth=auth, timeout=timeout) as client, client.stream("GET", self.url) as resp:
            if resp.status_code != 200:
                raise AlarmFormatError(f"HTTP {resp.status_code} from {self.url}")
            reader = MultipartReader.for_content_type(resp.headers.get("content-type", ""))
            self.stats.connected = True
            for chunk in resp.iter_raw():
                for headers, body in reader.feed(chunk):
                    self.handle(headers, body)
                if stop.is_set():
                    return
