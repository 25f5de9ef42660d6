"""An emulated GB/T 28181 device or lower platform (下级平台) with N channels, for tests and benches.

Written from GB/T 28181-2016, the clauses as cited: it registers with digest authentication (§9.1.2.1: a
REGISTER, the 401's challenge, a REGISTER with `Authorization`), sends `Keepalive` every period (§9.6.1,
A.2.5 `<Notify><CmdType>Keepalive</CmdType>…<Status>OK</Status>`), answers a `Catalog` query (§9.5.2) with
200 and then its channels in pages of `page` items (`SumNum`, `DeviceList Num`; wvp-GB28181-pro and the
vendors' platforms send 1–20 per page over UDP), pushes `Alarm` notifications (§9.4.1, A.2.5) and catalog
changes (§9.5.4), answers an INVITE (§9.2.2) with its SDP and, after the ACK, streams real footage as MPEG-PS
over RTP (§C.2; UDP, or TCP connecting to the gateway), until a BYE; and unregisters with Expires: 0
(§9.1.2.2). SIP over UDP or TCP (RFC 3261 §18). Bodies
are GB2312 as most devices send them (`charset`). Requests are written here from the standard's examples;
answers are read with the shared parser (`gridwatch.core.gb28181.sip`).

`GbDevice` runs one device on its own socket and thread. `Swarm` runs thousands of devices on one UDP
socket (each its own From id), for the registration and keepalive bench.
"""

from __future__ import annotations

import io
import queue
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import av
from av.bitstream import BitStreamFilterContext

from gridwatch.core.gb28181 import digest, rtp
from gridwatch.core.gb28181.sip import Framer, SipError, SipMessage, header_param, parse, uri_user

Transport = Literal["udp", "tcp"]


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    id: str
    name: str
    civil_code: str
    longitude: float
    latitude: float
    address: str = ""
    manufacturer: str = "Hikvision"
    model: str = "DS-2CD3T47"
    status: str = "ON"


def make_channels(n: int, centre: str = "44030500", civil_codes: tuple[str, ...] = ("440305001", "440305002"),
                  base: tuple[float, float] = (113.9300, 22.5300)) -> list[ChannelInfo]:
    """`n` cameras with ids by GB/T 28181 Annex D (centre code 8, industry 00, type 131 camera, network 0,
    serial 6), named and placed around `base` (Nanshan, Shenzhen), spread over `civil_codes`."""
    out = []
    for i in range(1, n + 1):
        cc = civil_codes[(i - 1) % len(civil_codes)]
        out.append(ChannelInfo(f"{centre}001310{i:06d}", f"{cc[-3:]}街道{i}号路口摄像机", cc,
                               round(base[0] + (i % 100) * 0.0005, 6), round(base[1] + (i // 100) * 0.0005, 6),
                               f"深圳市南山区{cc[-3:]}街道{i}号"))
    return out


def manscdp(root: str, cmd: str, sn: int, device_id: str, inner: str, charset: str) -> bytes:
    text = (f'<?xml version="1.0" encoding="{charset}"?>\r\n<{root}>\r\n<CmdType>{cmd}</CmdType>\r\n'
            f"<SN>{sn}</SN>\r\n<DeviceID>{device_id}</DeviceID>\r\n{inner}</{root}>\r\n")
    return text.encode("gb18030" if charset.upper().startswith("GB") else "utf-8")


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def catalog_items(items: list[ChannelInfo], parent: str, event: str = "") -> str:
    parts = []
    for c in items:
        ev = f"<Event>{event}</Event>\r\n" if event else ""
        parts.append(f"<Item>\r\n<DeviceID>{c.id}</DeviceID>\r\n<Name>{_esc(c.name)}</Name>\r\n"
                     f"<Manufacturer>{_esc(c.manufacturer)}</Manufacturer>\r\n<Model>{_esc(c.model)}</Model>\r\n"
                     f"<Owner>Owner</Owner>\r\n<CivilCode>{c.civil_code}</CivilCode>\r\n"
                     f"<Address>{_esc(c.address)}</Address>\r\n<Parental>0</Parental>\r\n"
                     f"<ParentID>{parent}</ParentID>\r\n<SafetyWay>0</SafetyWay>\r\n<RegisterWay>1</RegisterWay>\r\n"
                     f"<Secrecy>0</Secrecy>\r\n<Status>{c.status}</Status>\r\n"
                     f"<Longitude>{c.longitude:.6f}</Longitude>\r\n<Latitude>{c.latitude:.6f}</Latitude>\r\n"
                     f"{ev}</Item>\r\n")
    return f'<DeviceList Num="{len(items)}">\r\n' + "".join(parts) + "</DeviceList>\r\n"


@dataclass
class Call:
    """An INVITE this device answered: its offer, and the thread streaming after the ACK."""

    channel: str
    offer: rtp.Sdp
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    packets: int = 0


_PS: dict[Path, tuple[bytes, list[tuple[float, int]]]] = {}
_PS_LOCK = threading.Lock()


def ps_stream(path: Path) -> tuple[bytes, list[tuple[float, int]]]:
    """An H.264 file as the MPEG-2 Program Stream a GB/T 28181 camera sends (FFmpeg's `vob` muxer through
    PyAV; the MP4's length-prefixed H.264 turned into Annex B start codes by the `h264_mp4toannexb` bitstream
    filter, as PS carries it), with (seconds, byte offset) marks to pace it by. Made once per file."""
    with _PS_LOCK:  # forty INVITEs at once make it once
        if path not in _PS:
            _PS[path] = _remux_ps(path)
        return _PS[path]


def _remux_ps(path: Path) -> tuple[bytes, list[tuple[float, int]]]:
    buf = io.BytesIO()
    marks: list[tuple[float, int]] = []
    with av.open(str(path)) as inp:
        vs = inp.streams.video[0]
        bsf = BitStreamFilterContext("h264_mp4toannexb", vs)
        out = av.open(buf, "w", format="vob")
        o = out.add_stream_from_template(vs)
        base = float(vs.time_base) if vs.time_base is not None else 1 / 90_000
        for pkt in inp.demux(vs):
            if pkt.dts is None:
                continue
            t = (pkt.pts if pkt.pts is not None else pkt.dts) * base
            for p in bsf.filter(pkt):
                p.stream = o
                out.mux(p)
            marks.append((max(0.0, t), buf.tell()))
        out.close()
    data = buf.getvalue()
    marks.append((marks[-1][0] + 0.1 if marks else 0.0, len(data)))
    return data, marks


class GbDevice:
    """One device or lower platform on its own socket; `got` keeps the gateway's requests to it."""

    def __init__(self, server: tuple[str, int], server_id: str, domain: str, device_id: str, password: str, *,
                 channels: list[ChannelInfo] | None = None, transport: Transport = "udp", keepalive: float = 60.0,
                 page: int = 20, charset: str = "GB2312", expires: int = 3600, page_gap: float = 0.0,
                 footage: Path | None = None, loop_footage: bool = True, wrong_ssrc: bool = False,
                 rtp_from: str = "127.0.0.1", alarms_by_subscription: bool = False) -> None:
        """`footage`: an H.264 file its channels stream when INVITEd (as PS over RTP); `wrong_ssrc` and
        `rtp_from` (another loopback address) make its RTP what the gateway must refuse;
        `alarms_by_subscription`: alarms go only to a subscriber, as NOTIFY (platforms such as 海康 iSecure)."""
        self.server, self.server_id, self.domain = server, server_id, domain
        self.id, self.password = device_id, password
        self.channels = channels or []
        self.transport = transport
        self.keepalive_every, self.page, self.charset, self.expires = keepalive, page, charset, expires
        self.page_gap = page_gap
        self.footage, self.loop_footage, self.wrong_ssrc, self.rtp_from = footage, loop_footage, wrong_ssrc, rtp_from
        self.calls: dict[str, Call] = {}
        self.subscriptions: dict[str, str] = {}  # Alarm / Catalog -> the Event header the upper platform sent
        self.alarms_by_subscription = alarms_by_subscription
        self.sock: socket.socket | None = None
        self.stop_event = threading.Event()
        self.beating = threading.Event()
        self.answering = True
        self.cseq = 0
        self.sn = 0
        self.waiting: dict[str, queue.Queue[SipMessage]] = {}
        self.got: list[SipMessage] = []  # the gateway's requests to this device
        self.threads: list[threading.Thread] = []
        self.framer = Framer()
        self.lock = threading.Lock()
        self.here = ("127.0.0.1", 0)

    # ---- life ----

    def start(self) -> GbDevice:
        if self.transport == "udp":
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind(("127.0.0.1", 0))
        else:
            self.sock = socket.create_connection(self.server, timeout=5)
        self.sock.settimeout(0.2)
        self.here = self.sock.getsockname()[:2]
        for target in (self._receive, self._beat):
            t = threading.Thread(target=target, daemon=True, name=f"gb-device-{self.id[-6:]}")
            t.start()
            self.threads.append(t)
        return self

    def close(self) -> None:
        self.stop_event.set()
        self.beating.clear()
        for t in self.threads:
            t.join(timeout=3)
        if self.sock is not None:
            self.sock.close()

    def silence(self) -> None:
        """The platform goes away: no keepalives, no answers (a cut line, a dead machine)."""
        self.beating.clear()
        self.answering = False

    # ---- requests ----

    def _request(self, method: str, headers: list[tuple[str, str]], body: bytes = b"",
                 call_id: str | None = None, wait: float = 5.0) -> SipMessage | None:
        with self.lock:
            self.cseq += 1
            cseq = self.cseq
        call_id = call_id or f"{secrets.token_hex(10)}@{self.here[0]}"
        transport = self.transport.upper()
        lines = [f"{method} sip:{self.server_id}@{self.domain} SIP/2.0",
                 f"Via: SIP/2.0/{transport} {self.here[0]}:{self.here[1]};rport;branch=z9hG4bK{secrets.token_hex(6)}",
                 f"From: <sip:{self.id}@{self.domain}>;tag={secrets.token_hex(4)}",
                 f"To: <sip:{self.server_id if method != 'REGISTER' else self.id}@{self.domain}>",
                 f"Call-ID: {call_id}", f"CSeq: {cseq} {method}", "Max-Forwards: 70", "User-Agent: gridwatch-emulator"]
        lines += [f"{k}: {v}" for k, v in headers]
        lines.append(f"Content-Length: {len(body)}")
        box: queue.Queue[SipMessage] = queue.Queue()
        self.waiting[call_id] = box
        try:
            self.send_raw(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
            if wait <= 0:
                return None
            deadline = time.monotonic() + wait
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                try:
                    answer = box.get(timeout=left)
                except queue.Empty:
                    return None
                if answer.status is not None and answer.status >= 200:
                    return answer
        finally:
            self.waiting.pop(call_id, None)

    def register(self, password: str | None = None, expires: int | None = None) -> int | None:
        """REGISTER, the challenge, REGISTER with credentials: the final status (None: no answer)."""
        call_id = f"{secrets.token_hex(10)}@{self.here[0]}"
        exp = self.expires if expires is None else expires
        contact = [("Contact", f"<sip:{self.id}@{self.here[0]}:{self.here[1]}>"), ("Expires", str(exp))]
        first = self._request("REGISTER", contact, call_id=call_id)
        if first is None or first.status != 401:
            return None if first is None else first.status
        ch = digest.parse_params(first.get("WWW-Authenticate") or "")
        uri = f"sip:{self.server_id}@{self.domain}"
        auth = digest.authorization(self.id, ch.get("realm", ""), ch.get("nonce", ""), uri, "REGISTER",
                                    self.password if password is None else password)
        second = self._request("REGISTER", [*contact, ("Authorization", auth)], call_id=call_id)
        if second is not None and second.status == 200 and exp > 0:
            self.beating.set()
        return None if second is None else second.status

    def unregister(self) -> int | None:
        self.beating.clear()
        return self.register(expires=0)

    def message(self, root: str, cmd: str, device_id: str, inner: str, wait: float = 5.0,
                method: str = "MESSAGE") -> int | None:
        self.sn += 1
        body = manscdp(root, cmd, self.sn, device_id, inner, self.charset)
        headers = [("Content-Type", "Application/MANSCDP+xml")]
        if method == "NOTIFY":  # within the subscription (RFC 6665 §4.2.2; GB/T 28181-2016 §9.11)
            headers += [("Event", self.subscriptions.get(cmd, cmd)), ("Subscription-State", "active;expires=3600")]
        answer = self._request(method, headers, body, wait=wait)
        return None if answer is None else answer.status

    def keepalive(self) -> int | None:
        return self.message("Notify", "Keepalive", self.id, "<Status>OK</Status>\r\n")

    def alarm(self, channel: str, method: int, alarm_type: int | None, description: str = "",
              priority: int = 1) -> int | None:
        info = f"<Info>\r\n<AlarmType>{alarm_type}</AlarmType>\r\n</Info>\r\n" if alarm_type is not None else ""
        c = next((c for c in self.channels if c.id == channel), None)
        where = (f"<Longitude>{c.longitude:.6f}</Longitude>\r\n<Latitude>{c.latitude:.6f}</Latitude>\r\n"
                 if c is not None else "")
        if self.alarms_by_subscription and "Alarm" not in self.subscriptions:
            return None  # a platform that tells subscribers only: nobody subscribed, nobody is told
        how = "NOTIFY" if self.alarms_by_subscription else "MESSAGE"
        return self.message("Notify", "Alarm", channel, method=how, inner=
                            f"<AlarmPriority>{priority}</AlarmPriority>\r\n<AlarmMethod>{method}</AlarmMethod>\r\n"
                            f"<AlarmTime>{time.strftime('%Y-%m-%dT%H:%M:%S')}</AlarmTime>\r\n"
                            f"<AlarmDescription>{_esc(description)}</AlarmDescription>\r\n{where}{info}")

    def catalog_change(self, items: list[ChannelInfo], event: str) -> int | None:
        return self.message("Notify", "Catalog", self.id, f"<SumNum>{len(items)}</SumNum>\r\n"
                            + catalog_items(items, self.id, event))

    def send_raw(self, data: bytes) -> None:
        assert self.sock is not None
        if self.transport == "udp":
            self.sock.sendto(data, self.server)
        else:
            self.sock.sendall(data)

    # ---- the gateway's requests ----

    def _receive(self) -> None:
        assert self.sock is not None
        while not self.stop_event.is_set():
            try:
                data = self.sock.recv(65_536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            frames = [data] if self.transport == "udp" else self.framer.feed(data)
            for frame in frames:
                try:
                    msg = parse(frame)
                except SipError:
                    continue
                if not msg.is_request:
                    box = self.waiting.get(msg.call_id)
                    if box is not None:
                        box.put(msg)
                    continue
                self.got.append(msg)
                if self.answering:
                    threading.Thread(target=self._answer, args=(msg,), daemon=True).start()

    def _answer(self, req: SipMessage) -> None:
        if req.method == "ACK":  # the INVITE's 200 was taken: the stream starts (§9.2.2)
            call = self.calls.get(req.call_id)
            if call is not None and call.thread is None:
                call.thread = threading.Thread(target=self._stream, args=(call,), daemon=True)
                call.thread.start()
            return
        vias = "".join(f"Via: {v}\r\n" for v in req.all("Via"))
        to = req.get("To") or ""
        if header_param(to, "tag") is None:
            to += f";tag={secrets.token_hex(4)}"
        body, extra = b"", ""
        if req.method == "INVITE":
            try:
                offer = rtp.read_sdp(req.body)
            except rtp.RtpError:
                offer = None
            if offer is None or self.footage is None:
                self.send_raw((f"SIP/2.0 488 Not Acceptable Here\r\n{vias}From: {req.get('From')}\r\nTo: {to}\r\n"
                               f"Call-ID: {req.call_id}\r\nCSeq: {req.get('CSeq')}\r\nContent-Length: 0\r\n\r\n"
                               ).encode())
                return
            channel = uri_user(req.get("To") or "")
            self.calls[req.call_id] = Call(channel, offer)
            body = rtp.write_sdp(channel, self.here[0], self.here[1], offer.ssrc, transport=offer.transport,
                                 direction="sendonly", setup="active")
            extra = (f"Contact: <sip:{channel}@{self.here[0]}:{self.here[1]}>\r\n"
                     "Content-Type: APPLICATION/SDP\r\n")
        elif req.method == "SUBSCRIBE":
            event = (req.get("Event") or "").split(";")[0].strip()
            self.subscriptions[event] = req.get("Event") or event
            extra = f"Expires: {req.get('Expires') or '3600'}\r\n"
        elif req.method == "BYE":
            call = self.calls.pop(req.call_id, None)
            if call is not None:
                call.stop.set()
        self.send_raw((f"SIP/2.0 200 OK\r\n{vias}From: {req.get('From')}\r\nTo: {to}\r\nCall-ID: {req.call_id}\r\n"
                       f"CSeq: {req.get('CSeq')}\r\n{extra}Content-Length: {len(body)}\r\n\r\n").encode() + body)
        if req.method == "MESSAGE" and b"<CmdType>Catalog</CmdType>" in req.body and b"<Query>" in req.body:
            sn = int(req.body.split(b"<SN>")[1].split(b"</SN>")[0])
            for i in range(0, max(len(self.channels), 1), self.page):
                if not self.answering or self.stop_event.is_set():
                    return
                chunk = self.channels[i:i + self.page]
                body = manscdp("Response", "Catalog", sn, self.id,
                               f"<SumNum>{len(self.channels)}</SumNum>\r\n" + catalog_items(chunk, self.id),
                               self.charset)
                # one page at a time, each after the last one's 200 (a non-INVITE transaction, RFC 3261 §17.1.2):
                # what the vendors' platforms do; a burst of pages over UDP overflows a receiver's buffer
                self._request("MESSAGE", [("Content-Type", "Application/MANSCDP+xml")], body, wait=2.0)
                if self.page_gap:
                    time.sleep(self.page_gap)

    def _stream(self, call: Call) -> None:
        """The footage as PS over RTP to the address the INVITE gave, paced at its own frame times (§C.2)."""
        assert self.footage is not None
        data, marks = ps_stream(self.footage)
        ssrc = int(call.offer.ssrc or "0") ^ (1 if self.wrong_ssrc else 0)
        seq = secrets.randbelow(0x10000)
        tcp = None
        if call.offer.transport == "tcp":  # the gateway listens (setup:passive): this side connects
            tcp = socket.create_connection((call.offer.address, call.offer.port), timeout=5)
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind((self.rtp_from, 0))
        try:
            while not call.stop.is_set() and not self.stop_event.is_set():
                start, sent = time.monotonic(), 0
                for t, offset in marks:
                    if call.stop.wait(max(0.0, start + t - time.monotonic())) or self.stop_event.is_set():
                        return
                    packets = rtp.packetize(data[sent:offset], seq, int(t * 90_000), ssrc)
                    sent = offset
                    seq = (seq + len(packets)) & 0xFFFF
                    for p in packets:
                        if tcp is not None:
                            tcp.sendall(rtp.frame_tcp(p))
                        else:
                            udp.sendto(p, (call.offer.address, call.offer.port))
                        call.packets += 1
                if not self.loop_footage:
                    return
        except OSError:
            return
        finally:
            udp.close()
            if tcp is not None:
                tcp.close()

    def _beat(self) -> None:
        while not self.stop_event.is_set():
            if self.beating.wait(0.2) and not self.stop_event.wait(self.keepalive_every):
                if self.beating.is_set():
                    self.keepalive()


class Swarm:
    """`n` devices on one UDP socket (each its own From id and password), for the registration and keepalive
    bench: all register (REGISTER, the 401, REGISTER with credentials), then each sends a Keepalive every
    `keepalive` seconds, spread evenly. Answers are counted, not waited for one by one."""

    def __init__(self, server: tuple[str, int], server_id: str, domain: str, ids: list[str], password: str, *,
                 keepalive: float = 60.0, bind: str = "127.0.0.1") -> None:
        self.server, self.server_id, self.domain = server, server_id, domain
        self.ids, self.password, self.keepalive_every = ids, password, keepalive
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind((bind, 0))
        self.sock.settimeout(0.2)
        self.here = self.sock.getsockname()[:2]
        self.registered: set[str] = set()
        self.answers: dict[int, int] = {}
        self.sent = 0
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._receive, daemon=True)
        self.cseq: dict[str, int] = {}

    def _send(self, method: str, dev: str, call_id: str, headers: list[tuple[str, str]], body: bytes = b"") -> None:
        n = self.cseq.get(dev, 0) + 1
        self.cseq[dev] = n
        lines = [f"{method} sip:{self.server_id}@{self.domain} SIP/2.0",
                 f"Via: SIP/2.0/UDP {self.here[0]}:{self.here[1]};rport;branch=z9hG4bK{secrets.token_hex(6)}",
                 f"From: <sip:{dev}@{self.domain}>;tag={secrets.token_hex(4)}",
                 f"To: <sip:{dev if method == 'REGISTER' else self.server_id}@{self.domain}>",
                 f"Call-ID: {call_id}", f"CSeq: {n} {method}", "Max-Forwards: 70", *(f"{k}: {v}" for k, v in headers),
                 f"Content-Length: {len(body)}"]
        self.sock.sendto(("\r\n".join(lines) + "\r\n\r\n").encode() + body, self.server)
        self.sent += 1

    def _receive(self) -> None:
        uri = f"sip:{self.server_id}@{self.domain}"
        while not self.stop_event.is_set():
            try:
                data = self.sock.recv(65_536)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                msg = parse(data)
            except SipError:
                continue
            if msg.status is None:
                continue
            self.answers[msg.status] = self.answers.get(msg.status, 0) + 1
            dev = uri_user(msg.get("From") or "")
            _, method = msg.cseq
            if method == "REGISTER" and msg.status == 401:
                ch = digest.parse_params(msg.get("WWW-Authenticate") or "")
                auth = digest.authorization(dev, ch.get("realm", ""), ch.get("nonce", ""), uri, "REGISTER",
                                            self.password)
                self._send("REGISTER", dev, msg.call_id, [("Contact", f"<sip:{dev}@{self.here[0]}:{self.here[1]}>"),
                                                          ("Expires", "3600"), ("Authorization", auth)])
            elif method == "REGISTER" and msg.status == 200:
                self.registered.add(dev)

    def register_all(self, timeout: float = 120.0, batch: int = 200) -> float:
        """Seconds until every device is registered (or `timeout`)."""
        self.thread.start()
        t0 = time.monotonic()
        for i in range(0, len(self.ids), batch):
            for dev in self.ids[i:i + batch]:
                self._send("REGISTER", dev, secrets.token_hex(8), [
                    ("Contact", f"<sip:{dev}@{self.here[0]}:{self.here[1]}>"), ("Expires", "3600")])
            while len(self.registered) < i + batch * 0.5 and time.monotonic() - t0 < timeout:
                time.sleep(0.01)  # keep a few hundred transactions in flight, as devices spread over time do
        while len(self.registered) < len(self.ids) and time.monotonic() - t0 < timeout:
            time.sleep(0.05)
        return time.monotonic() - t0

    def beat(self, seconds: float) -> int:
        """Keepalives for `seconds`, each device once per period, spread evenly; how many were sent."""
        gap = self.keepalive_every / len(self.ids)
        t0, n = time.monotonic(), 0
        while time.monotonic() - t0 < seconds:
            dev = self.ids[n % len(self.ids)]
            body = manscdp("Notify", "Keepalive", n, dev, "<Status>OK</Status>\r\n", "GB2312")
            self._send("MESSAGE", dev, secrets.token_hex(8), [("Content-Type", "Application/MANSCDP+xml")], body)
            n += 1
            delay = t0 + n * gap - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        return n

    def close(self) -> None:
        self.stop_event.set()
        self.thread.join(timeout=2)
        self.sock.close()


def main(argv: list[str] | None = None) -> None:
    """`python -m simulators.gb28181`: a lower platform streaming its channels when INVITEd (`platform`), or a
    swarm of devices registering and sending keepalives (`swarm`); prints one JSON line when done."""
    import argparse
    import json

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("mode", choices=["platform", "swarm"])
    ap.add_argument("--server", required=True, help="host:port of the gateway's SIP server")
    ap.add_argument("--server-id", required=True)
    ap.add_argument("--domain", required=True)
    ap.add_argument("--id", default="44030500002160000001", help="the platform's id (platform)")
    ap.add_argument("--ids", type=int, default=10_000, help="how many devices (swarm)")
    ap.add_argument("--password-env", default="GB_EMULATOR_PASSWORD")
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--footage", type=Path)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--keepalive", type=float, default=60.0)
    a = ap.parse_args(argv)
    import os

    host, _, port = a.server.rpartition(":")
    password = os.environ.get(a.password_env, "")
    if a.mode == "platform":
        dev = GbDevice((host, int(port)), a.server_id, a.domain, a.id, password, channels=make_channels(a.channels),
                       footage=a.footage, keepalive=a.keepalive, loop_footage=False).start()
        status = dev.register()
        deadline = time.monotonic() + a.seconds
        while time.monotonic() < deadline:
            time.sleep(0.5)
        print(json.dumps({"registered": status, "streams": len(dev.calls),
                          "packets": sum(c.packets for c in dev.calls.values())}), flush=True)
        dev.close()
        return
    ids = [f"{a.domain[:8]}001320{i:06d}" for i in range(a.ids)]
    swarm = Swarm((host, int(port)), a.server_id, a.domain, ids, password, keepalive=a.keepalive)
    took = swarm.register_all()
    print(json.dumps({"phase": "registered", "devices": len(swarm.registered), "seconds": round(took, 2)}),
          flush=True)
    sent = swarm.beat(a.seconds)
    time.sleep(1)
    print(json.dumps({"phase": "done", "keepalives": sent, "answers": swarm.answers}), flush=True)
    swarm.close()


if __name__ == "__main__":
    main()
