"""An emulated ONVIF camera's event service (Profile S/T PullPoint), for tests and demos, on 127.0.0.1.

It answers, over SOAP 1.2 as the ONVIF Core Specification describes (§5 Web services framework, §9 Event
handling; WSDLs `devicemgmt.wsdl` and `event.wsdl`):

- the device service (`/onvif/device_service`): `GetServices` and `GetCapabilities` give the event
  service's XAddr;
- the event service (`/onvif/event_service`): `CreatePullPointSubscription` makes a subscription at its
  own address with a termination time;
- each subscription: `PullMessages` (waits up to its `Timeout` for notifications, returns at most
  `MessageLimit`), `Renew`, `SetSynchronizationPoint`, `Unsubscribe`.

Every request must carry a WS-Security `UsernameToken` with a `PasswordDigest` (Base64(SHA-1(nonce +
created + password))), as ONVIF §5.12 asks; a wrong one gets the `ter:NotAuthorized` fault (HTTP 400).
Notifications are `wsnt:NotificationMessage`s with a `tns1:` topic and a `tt:Message` (`UtcTime`,
`PropertyOperation`, `Source` and `Data` `SimpleItem`s), as in the ONVIF Analytics and Imaging service
specifications; `send()` queues one for every live subscription.

A PTZ dome (视频复核), when made with `views` (preset -> the JPEG it sees there; 0 is where it starts):
- the media service (`/onvif/media_service`, `media.wsdl`): `GetProfiles` (one profile, `Profile_1`) and
  `GetSnapshotUri` (ONVIF Media Service Specification §5.16: an HTTP URI of a JPEG);
- the PTZ service (`/onvif/ptz_service`, `ptz.wsdl`): `GetPresets` and `GotoPreset` (ONVIF PTZ Service
  Specification §5.4); an unknown preset token is the `ter:NoToken` fault. The dome takes `move_seconds` to
  get there: a snapshot before then still shows the view it left, and `GetStatus` (§5.3.3) says `MOVING`;
- the snapshot (`GET /onvif/snapshot.jpg`) behind HTTP digest authentication (RFC 7616, MD5, qop=auth), as
  the cameras that serve one ask.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import queue
import re
import secrets
import threading
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from xml.sax.saxutils import quoteattr

NS = {"s": "http://www.w3.org/2003/05/soap-envelope",
      "wsse": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd",
      "wsu": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"}
ENVELOPE = ('<?xml version="1.0" encoding="UTF-8"?>'
            '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
            'xmlns:trt="http://www.onvif.org/ver10/media/wsdl" xmlns:tptz="http://www.onvif.org/ver20/ptz/wsdl" '
            'xmlns:tt="http://www.onvif.org/ver10/schema" xmlns:tds="http://www.onvif.org/ver10/device/wsdl" '
            'xmlns:tev="http://www.onvif.org/ver10/events/wsdl" xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2" '
            'xmlns:wsa5="http://www.w3.org/2005/08/addressing" xmlns:tns1="http://www.onvif.org/ver10/topics" '
            'xmlns:ter="http://www.onvif.org/ver10/error">'
            "<s:Body>{body}</s:Body></s:Envelope>")
EVENTS_NS = "http://www.onvif.org/ver10/events/wsdl"
DEVICE_NS = "http://www.onvif.org/ver10/device/wsdl"
MEDIA_NS = "http://www.onvif.org/ver10/media/wsdl"
PTZ_NS = "http://www.onvif.org/ver20/ptz/wsdl"
PROFILE = "Profile_1"
REALM = "IP Camera(gridwatch)"


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _duration(text: str | None, default: float) -> float:
    """xs:duration as ONVIF clients send it (PT5S, PT1M, PT0.5S)."""
    m = re.fullmatch(r"PT(?:(\d+)H)?(?:(\d+)M)?(?:([\d.]+)S)?", (text or "").strip())
    if not m:
        return default
    h, mi, s = m.groups()
    return int(h or 0) * 3600 + int(mi or 0) * 60 + float(s or 0)


def notification(topic: str, data: dict[str, str], source: dict[str, str] | None = None,
                 operation: str = "Changed", when: datetime | None = None) -> str:
    """One `wsnt:NotificationMessage` as a camera sends it."""
    src = "".join(f"<tt:SimpleItem Name={quoteattr(k)} Value={quoteattr(v)}/>" for k, v in (source or {}).items())
    dat = "".join(f"<tt:SimpleItem Name={quoteattr(k)} Value={quoteattr(v)}/>" for k, v in data.items())
    return ('<wsnt:NotificationMessage><wsnt:Topic Dialect="http://www.onvif.org/ver10/tev/topicExpression/'
            f'ConcreteSet">{topic}</wsnt:Topic><wsnt:Message><tt:Message UtcTime="{_iso(when or datetime.now(UTC))}"'
            f' PropertyOperation="{operation}"><tt:Source>{src}</tt:Source><tt:Data>{dat}</tt:Data></tt:Message>'
            "</wsnt:Message></wsnt:NotificationMessage>")


class OnvifCameraEmulator:
    def __init__(self, username: str = "admin", password: str = "12345", *, views: dict[int, bytes] | None = None,
                 move_seconds: float = 1.0) -> None:
        self.username, self.password = username, password
        self.views, self.move_seconds = views or {}, move_seconds
        self.preset, self.left, self.arrives = 0, 0, 0.0  # where it is (or goes), where it was, when it gets there
        self.gotos: list[tuple[str, str]] = []  # (profile, preset token) of each GotoPreset
        self.snapshots = 0
        self.subscriptions: dict[str, queue.Queue[str]] = {}
        self.refused = 0
        self.nonces: set[str] = set()  # the digest nonces it gave (a response to another is refused)
        self.challenged = 0  # 401s with a digest challenge
        self.status_reads = 0  # PTZ GetStatus calls
        self.calls: list[str] = []
        self.lock = threading.Lock()
        self._ids = itertools.count(1)
        emu = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path != "/onvif/snapshot.jpg" or not emu.views:
                    self.send_error(404)
                    return
                if not emu._digest_ok(self):
                    return
                data = emu.view()
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status, reply = emu.answer(self.path, body)
                data = reply.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/soap+xml; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> OnvifCameraEmulator:
        threading.Thread(target=self.server.serve_forever, daemon=True, name="onvif-emulator").start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def connected(self) -> int:
        with self.lock:
            return len(self.subscriptions)

    def send(self, topic: str, data: dict[str, str], source: dict[str, str] | None = None,
             operation: str = "Changed") -> None:
        msg = notification(topic, data, source, operation)
        with self.lock:
            for q in self.subscriptions.values():
                q.put(msg)

    # ---- the dome ----

    def view(self) -> bytes:
        """The JPEG it sees now: the preset it was sent to once it got there, the one it left before."""
        with self.lock:
            self.snapshots += 1
            at = self.preset if time.monotonic() >= self.arrives else self.left
        return self.views.get(at, self.views.get(0, b""))

    def _digest_ok(self, h: BaseHTTPRequestHandler) -> bool:
        """RFC 7616 digest (MD5, qop=auth) over the request's method and URI; a 401 challenge otherwise."""
        header = h.headers.get("Authorization", "")
        if header.startswith("Digest "):
            f = {k.strip(): v.strip().strip('"') for k, _, v in
                 (item.partition("=") for item in header[7:].split(","))}
            ha1 = hashlib.md5(f"{self.username}:{REALM}:{self.password}".encode()).hexdigest()
            ha2 = hashlib.md5(f"{h.command}:{f.get('uri', '')}".encode()).hexdigest()
            want = hashlib.md5(f"{ha1}:{f.get('nonce', '')}:{f.get('nc', '')}:{f.get('cnonce', '')}:auth:{ha2}"
                               .encode()).hexdigest()
            if (f.get("username") == self.username and f.get("nonce") in self.nonces
                    and hmac.compare_digest(want, f.get("response", ""))):
                return True
            with self.lock:
                self.refused += 1
        nonce = secrets.token_hex(16)
        with self.lock:
            self.nonces.add(nonce)
            self.challenged += 1
        h.send_response(401)
        h.send_header("WWW-Authenticate", f'Digest realm="{REALM}", qop="auth", nonce="{nonce}", algorithm=MD5')
        h.send_header("Content-Length", "0")
        h.end_headers()
        return False

    def _media(self, op: str, op_el: ET.Element) -> tuple[int, str] | None:
        if op == "GetProfiles":
            return 200, ENVELOPE.format(body=(
                f'<trt:GetProfilesResponse><trt:Profiles token="{PROFILE}" fixed="true"><tt:Name>mainStream'
                "</tt:Name></trt:Profiles></trt:GetProfilesResponse>"))
        if op == "GetSnapshotUri":
            return 200, ENVELOPE.format(body=(
                f"<trt:GetSnapshotUriResponse><trt:MediaUri><tt:Uri>{self.url}/onvif/snapshot.jpg</tt:Uri>"
                "<tt:InvalidAfterConnect>false</tt:InvalidAfterConnect><tt:InvalidAfterReboot>false"
                "</tt:InvalidAfterReboot><tt:Timeout>PT0S</tt:Timeout></trt:MediaUri></trt:GetSnapshotUriResponse>"))
        return None

    def _ptz(self, op: str, op_el: ET.Element) -> tuple[int, str] | None:
        if op == "GetPresets":
            return 200, ENVELOPE.format(body="<tptz:GetPresetsResponse>" + "".join(
                f'<tptz:Preset token="{n}"><tt:Name>预置位{n}</tt:Name></tptz:Preset>' for n in sorted(self.views) if n)
                + "</tptz:GetPresetsResponse>")
        if op == "GetStatus":  # ONVIF PTZ Service §5.3.3: MoveStatus MOVING until it gets there, then IDLE
            with self.lock:
                moving = time.monotonic() < self.arrives
                self.status_reads += 1
            move = "MOVING" if moving else "IDLE"
            return 200, ENVELOPE.format(body=(
                f"<tptz:GetStatusResponse><tptz:PTZStatus><tt:MoveStatus><tt:PanTilt>{move}</tt:PanTilt><tt:Zoom>"
                f"{move}</tt:Zoom></tt:MoveStatus><tt:UtcTime>{_iso(datetime.now(UTC))}</tt:UtcTime></tptz:PTZStatus>"
                "</tptz:GetStatusResponse>"))
        if op == "GotoPreset":
            profile = (op_el.findtext(f"{{{PTZ_NS}}}ProfileToken") or "").strip()
            token = (op_el.findtext(f"{{{PTZ_NS}}}PresetToken") or "").strip()
            if profile != PROFILE or not token.isdigit() or int(token) not in self.views or int(token) == 0:
                return 400, self._fault("env:Sender", "ter:InvalidArgVal", f"ter:NoToken {profile}/{token}")
            with self.lock:
                self.gotos.append((profile, token))
                now = time.monotonic()
                self.left = self.preset if now >= self.arrives else self.left
                self.preset, self.arrives = int(token), now + self.move_seconds
            return 200, ENVELOPE.format(body="<tptz:GotoPresetResponse/>")
        return None

    # ---- SOAP ----

    def _authorised(self, root: ET.Element) -> bool:
        token = root.find("s:Header/wsse:Security/wsse:UsernameToken", NS)
        if token is None:
            return False
        user = token.findtext("wsse:Username", "", NS)
        password = token.find("wsse:Password", NS)
        nonce = token.findtext("wsse:Nonce", "", NS)
        created = token.findtext("wsu:Created", "", NS)
        if password is None or user != self.username:
            return False
        expected = base64.b64encode(hashlib.sha1(base64.b64decode(nonce) + created.encode()
                                                 + self.password.encode()).digest()).decode()
        return (password.text or "").strip() == expected

    def answer(self, path: str, raw: bytes) -> tuple[int, str]:
        try:
            root = ET.fromstring(raw)
        except ET.ParseError:
            return 400, self._fault("env:Sender", "ter:WellFormed", "not XML")
        body = root.find("s:Body", NS)
        op_el = body[0] if body is not None and len(body) else None
        if op_el is None:
            return 400, self._fault("env:Sender", "ter:InvalidArgs", "empty body")
        op = op_el.tag.rsplit("}", 1)[-1]
        with self.lock:
            self.calls.append(op)
        if not self._authorised(root):
            with self.lock:
                self.refused += 1
            return 400, self._fault("env:Sender", "ter:NotAuthorized", "Sender not Authorized")
        now = datetime.now(UTC)
        if path.startswith("/onvif/device_service"):
            if op == "GetServices":
                return 200, ENVELOPE.format(body=(
                    "<tds:GetServicesResponse>"
                    f"<tds:Service><tds:Namespace>{DEVICE_NS}</tds:Namespace><tds:XAddr>{self.url}/onvif/"
                    "device_service</tds:XAddr><tds:Version><tt:Major>2</tt:Major><tt:Minor>60</tt:Minor>"
                    "</tds:Version></tds:Service>"
                    f"<tds:Service><tds:Namespace>{EVENTS_NS}</tds:Namespace><tds:XAddr>{self.url}/onvif/"
                    "event_service</tds:XAddr><tds:Version><tt:Major>2</tt:Major><tt:Minor>60</tt:Minor>"
                    "</tds:Version></tds:Service>" + "".join(
                        f"<tds:Service><tds:Namespace>{ns}</tds:Namespace><tds:XAddr>{self.url}/onvif/{name}"
                        "</tds:XAddr><tds:Version><tt:Major>2</tt:Major><tt:Minor>60</tt:Minor></tds:Version>"
                        "</tds:Service>" for ns, name in ((MEDIA_NS, "media_service"), (PTZ_NS, "ptz_service"))
                        if self.views) + "</tds:GetServicesResponse>"))
            if op == "GetCapabilities":
                return 200, ENVELOPE.format(body=(
                    "<tds:GetCapabilitiesResponse><tds:Capabilities><tt:Events>"
                    f"<tt:XAddr>{self.url}/onvif/event_service</tt:XAddr><tt:WSSubscriptionPolicySupport>false"
                    "</tt:WSSubscriptionPolicySupport><tt:WSPullPointSupport>true</tt:WSPullPointSupport>"
                    "<tt:WSPausableSubscriptionManagerInterfaceSupport>false"
                    "</tt:WSPausableSubscriptionManagerInterfaceSupport></tt:Events>"
                    + (f"<tt:Media><tt:XAddr>{self.url}/onvif/media_service</tt:XAddr><tt:StreamingCapabilities>"
                       "<tt:RTPMulticast>false</tt:RTPMulticast><tt:RTP_TCP>true</tt:RTP_TCP><tt:RTP_RTSP_TCP>true"
                       "</tt:RTP_RTSP_TCP></tt:StreamingCapabilities></tt:Media>"
                       f"<tt:PTZ><tt:XAddr>{self.url}/onvif/ptz_service</tt:XAddr></tt:PTZ>" if self.views else "")
                    + "</tds:Capabilities></tds:GetCapabilitiesResponse>"))
        elif path.startswith("/onvif/media_service") and self.views and (got := self._media(op, op_el)):
            return got
        elif path.startswith("/onvif/ptz_service") and self.views and (got := self._ptz(op, op_el)):
            return got
        elif path.startswith("/onvif/event_service") and op == "CreatePullPointSubscription":
            sid = str(next(self._ids))
            with self.lock:
                self.subscriptions[sid] = queue.Queue()
            return 200, ENVELOPE.format(body=(
                "<tev:CreatePullPointSubscriptionResponse><tev:SubscriptionReference>"
                f"<wsa5:Address>{self.url}/onvif/subscription/{sid}</wsa5:Address></tev:SubscriptionReference>"
                f"<wsnt:CurrentTime>{_iso(now)}</wsnt:CurrentTime>"
                f"<wsnt:TerminationTime>{_iso(now + timedelta(seconds=60))}</wsnt:TerminationTime>"
                "</tev:CreatePullPointSubscriptionResponse>"))
        elif path.startswith("/onvif/subscription/"):
            sid = path.rsplit("/", 1)[-1]
            with self.lock:
                q = self.subscriptions.get(sid)
            if q is None:
                return 400, self._fault("env:Receiver", "ter:InvalidArgVal", "no such subscription")
            if op == "PullMessages":
                wait = min(_duration(op_el.findtext(f"{{{EVENTS_NS}}}Timeout"), 5.0), 10.0)
                limit = int(op_el.findtext(f"{{{EVENTS_NS}}}MessageLimit") or 100)
                msgs = []
                try:
                    msgs.append(q.get(timeout=wait))
                    while len(msgs) < limit:
                        msgs.append(q.get_nowait())
                except queue.Empty:
                    pass
                return 200, ENVELOPE.format(body=(
                    f"<tev:PullMessagesResponse><tev:CurrentTime>{_iso(now)}</tev:CurrentTime>"
                    f"<tev:TerminationTime>{_iso(now + timedelta(seconds=60))}</tev:TerminationTime>"
                    + "".join(msgs) + "</tev:PullMessagesResponse>"))
            if op == "Renew":
                return 200, ENVELOPE.format(body=(
                    f"<wsnt:RenewResponse><wsnt:TerminationTime>{_iso(now + timedelta(seconds=60))}"
                    f"</wsnt:TerminationTime><wsnt:CurrentTime>{_iso(now)}</wsnt:CurrentTime></wsnt:RenewResponse>"))
            if op == "SetSynchronizationPoint":
                return 200, ENVELOPE.format(body="<tev:SetSynchronizationPointResponse/>")
            if op == "Unsubscribe":
                with self.lock:
                    self.subscriptions.pop(sid, None)
                return 200, ENVELOPE.format(body="<wsnt:UnsubscribeResponse/>")
        return 400, self._fault("env:Receiver", "ter:ActionNotSupported", f"{op} at {path}")

    @staticmethod
    def _fault(code: str, subcode: str, reason: str) -> str:
        return ENVELOPE.format(body=(
            f'<s:Fault><s:Code><s:Value>{code.replace("env:", "s:")}</s:Value><s:Subcode><s:Value>{subcode}'
            f'</s:Value></s:Subcode></s:Code><s:Reason><s:Text xml:lang="en">{reason}</s:Text></s:Reason>'
            "</s:Fault>"))
