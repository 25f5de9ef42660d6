"""An emulator of IP cameras' alarm streams, in each vendor's documented wire format, for tests and demos.

- Hikvision ISAPI `GET /ISAPI/Event/notification/alertStream`: `multipart/mixed; boundary=boundary`, each
  part `Content-Type: application/xml; charset="UTF-8"` + `Content-Length`, an `EventNotificationAlert`
  (namespace `http://www.hikvision.com/ver20/XMLSchema`, version 2.0) as in Hikvision's "ISAPI Developer
  Guide — Event"; `videoloss`/`inactive` parts as the heartbeat, as the cameras send them.
- Dahua `GET /cgi-bin/eventManager.cgi?action=attach&codes=[All]&heartbeat=N`:
  `multipart/x-mixed-replace; boundary=myboundary`, `text/plain` parts `Code=…;action=…;index=…[;data=…]`
  and `Heartbeat` every N seconds, as in Dahua's "HTTP API for IP Camera and Speed Dome", Event Management.

Both ask for HTTP digest authentication (RFC 7616, MD5, qop=auth), as the cameras do.
"""

from __future__ import annotations

import hashlib
import json
import queue
import secrets
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

ISAPI_PATH = "/ISAPI/Event/notification/alertStream"
DAHUA_PATH = "/cgi-bin/eventManager.cgi"


def isapi_part(event_type: str, state: str = "active", channel: int = 1, region: int | None = None,
               description: str = "", when: datetime | None = None) -> bytes:
    when = when or datetime.now(UTC).astimezone()
    regions = "" if region is None else (
        f"<DetectionRegionList><DetectionRegionEntry><regionID>{region}</regionID><sensitivityLevel>50</sensitivityLevel>"
        "<RegionCoordinatesList><RegionCoordinates><positionX>100</positionX><positionY>200</positionY>"
        "</RegionCoordinates></RegionCoordinatesList></DetectionRegionEntry></DetectionRegionList>")
    xml = ('<?xml version="1.0" encoding="UTF-8"?>\r\n'
           '<EventNotificationAlert version="2.0" xmlns="http://www.hikvision.com/ver20/XMLSchema">\r\n'
           "<ipAddress>192.168.1.64</ipAddress>\r\n<portNo>80</portNo>\r\n<protocol>HTTP</protocol>\r\n"
           "<macAddress>44:19:b6:00:00:01</macAddress>\r\n"
           f"<channelID>{channel}</channelID>\r\n<dateTime>{when.isoformat(timespec='seconds')}</dateTime>\r\n"
           f"<activePostCount>1</activePostCount>\r\n<eventType>{event_type}</eventType>\r\n"
           f"<eventState>{state}</eventState>\r\n<eventDescription>{description or event_type} alarm"
           f"</eventDescription>\r\n{regions}</EventNotificationAlert>\r\n")
    body = xml.encode()
    return (b"--boundary\r\nContent-Type: application/xml; charset=\"UTF-8\"\r\nContent-Length: "
            + str(len(body)).encode() + b"\r\n\r\n" + body + b"\r\n")


def dahua_part(code: str, action: str = "Start", index: int = 0, data: dict[str, Any] | None = None) -> bytes:
    text = f"Code={code};action={action};index={index}"
    if data is not None:
        text += ";data=" + json.dumps(data, indent=1)
    body = text.encode() + b"\r\n"
    return (b"--myboundary\r\nContent-Type: text/plain\r\nContent-Length: " + str(len(body)).encode()
            + b"\r\n\r\n" + body)


DAHUA_HEARTBEAT = b"--myboundary\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\nHeartbeat"


class CameraAlarmEmulator:
    """One emulated camera (or NVR) serving both vendors' alarm streams on 127.0.0.1."""

    def __init__(self, username: str = "admin", password: str = "12345", heartbeat: float = 5.0) -> None:
        self.username, self.password, self.heartbeat = username, password, heartbeat
        self.realm = "IP Camera(gridwatch-emulator)"
        self.listeners: dict[str, list[queue.Queue[bytes | None]]] = {"isapi": [], "dahua": []}
        self.refused = 0  # requests answered 401 after a wrong answer to the challenge
        self.lock = threading.Lock()
        emu = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                path = urlsplit(self.path)
                if path.path == ISAPI_PATH:
                    kind, ctype = "isapi", "multipart/mixed; boundary=boundary"
                elif path.path == DAHUA_PATH and parse_qs(path.query).get("action") == ["attach"]:
                    kind, ctype = "dahua", "multipart/x-mixed-replace; boundary=myboundary"
                else:
                    self.send_error(404)
                    return
                if not emu._authorized(self):
                    return
                q: queue.Queue[bytes | None] = queue.Queue()
                with emu.lock:
                    emu.listeners[kind].append(q)
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Connection", "close")
                self.end_headers()
                try:
                    while True:
                        try:
                            part = q.get(timeout=emu.heartbeat)
                        except queue.Empty:
                            part = isapi_part("videoloss", "inactive", 1) if kind == "isapi" else DAHUA_HEARTBEAT
                        if part is None:
                            return
                        self.wfile.write(part)
                        self.wfile.flush()
                except OSError:
                    return
                finally:
                    with emu.lock:
                        emu.listeners[kind].remove(q)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> CameraAlarmEmulator:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.drop()
        self.server.shutdown()
        self.server.server_close()

    def connected(self, kind: str) -> int:
        with self.lock:
            return len(self.listeners[kind])

    def send(self, kind: str, part: bytes) -> None:
        with self.lock:
            for q in self.listeners[kind]:
                q.put(part)

    def drop(self) -> None:
        """End every open stream (as a camera reboot would)."""
        with self.lock:
            for qs in self.listeners.values():
                for q in qs:
                    q.put(None)

    # RFC 7616 digest, MD5, qop=auth
    def _authorized(self, h: BaseHTTPRequestHandler) -> bool:
        header = h.headers.get("Authorization", "")
        if header.startswith("Digest "):
            f = dict(_pairs(header[7:]))
            ha1 = _md5(f"{self.username}:{self.realm}:{self.password}")
            ha2 = _md5(f"GET:{f.get('uri', '')}")
            want = _md5(f"{ha1}:{f.get('nonce', '')}:{f.get('nc', '')}:{f.get('cnonce', '')}:auth:{ha2}")
            if f.get("username") == self.username and secrets.compare_digest(want, f.get("response", "")):
                return True
            self.refused += 1
        h.send_response(401)
        h.send_header("WWW-Authenticate", f'Digest realm="{self.realm}", qop="auth", '
                                          f'nonce="{secrets.token_hex(16)}", algorithm=MD5')
        h.send_header("Content-Length", "0")
        h.end_headers()
        return False


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def _pairs(text: str) -> list[tuple[str, str]]:
    out = []
    for item in text.split(","):
        k, _, v = item.strip().partition("=")
        out.append((k.strip(), v.strip().strip('"')))
    return out
