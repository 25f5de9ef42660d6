"""One emulated device or lower platform on its own socket and thread (see the package's docstring)."""

from __future__ import annotations

import queue
import secrets
import socket
import threading
import time
from pathlib import Path

from gridwatch.core.gb28181 import digest, rtp
from gridwatch.core.gb28181.manscdp import PRESET_CALL, local_time, read_local_time
from gridwatch.core.gb28181.manscdp import parse as parse_manscdp
from gridwatch.core.gb28181.manscdp import read_ptz as manscdp_read_ptz
from gridwatch.core.gb28181.sip import Framer, SipError, SipMessage, header_param, parse, uri_user
from simulators.gb28181.catalog import ChannelInfo, Transport, catalog_items, esc, manscdp
from simulators.gb28181.media import Call, ps_stream


class GbDevice:
    """One device or lower platform on its own socket; `got` keeps the gateway's requests to it."""

    def __init__(self, server: tuple[str, int], server_id: str, domain: str, device_id: str, password: str, *,
                 channels: list[ChannelInfo] | None = None, transport: Transport = "udp", keepalive: float = 60.0,
                 page: int = 20, charset: str = "GB2312", expires: int = 3600, page_gap: float = 0.0,
                 footage: Path | None = None, loop_footage: bool = True, wrong_ssrc: bool = False,
                 rtp_from: str = "127.0.0.1", alarms_by_subscription: bool = False,
                 presets: dict[int, Path] | None = None, recording: bool = True) -> None:
        """`footage`: an H.264 file its channels stream when INVITEd (as PS over RTP); `wrong_ssrc` and
        `rtp_from` (another loopback address) make its RTP what the gateway must refuse;
        `alarms_by_subscription`: alarms go only to a subscriber, as NOTIFY (platforms such as 海康 iSecure);
        `presets`: preset -> the H.264 file a channel streams once turned to that preset (a PTZ preset call);
        `recording`: its channels have recorded the `footage` without a break since an hour before it started
        (answered to RecordInfo; a download or playback of any span is the footage from its start)."""
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
        self.guard: dict[str, bool] = {}  # device/channel -> armed (布防) or not (撤防); unset: armed, as shipped
        self.guard_commands: list[tuple[str, str]] = []  # (device id, SetGuard/ResetGuard) as they came
        self.presets = presets or {}
        self.recorded_since = time.time() - 3600 if recording else None
        self.record_queries: list[tuple[str, str, str]] = []  # (channel, StartTime, EndTime) of each RecordInfo
        self.downloads: list[tuple[str, str, int, int, int]] = []  # (channel, s=, t= start, end, speed) INVITEd
        self.media_ended: list[str] = []  # channels whose download it said ended (MediaStatus 121)
        self.preset: dict[str, int] = {}  # channel -> the preset it was last turned to
        self.ptz: list[tuple[str, int, int]] = []  # (channel, instruction, data 2) of each PTZ command
        self.alarms_held = 0  # alarms not sent because the channel or the device was disarmed
        self.challenge: dict[str, str] | None = None  # the last digest challenge: its nonce is reused (RFC 2617)
        self.nc = 0  # requests made with that nonce (qop=auth's nonce count)
        self.stale_challenges = 0  # challenges that said stale=TRUE
        self.authorizations: list[str] = []  # the Authorization headers it sent
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

    def register(self, password: str | None = None, expires: int | None = None, reuse_nonce: bool = False,
                 qop: bool = True) -> int | None:
        """REGISTER, the challenge, REGISTER with credentials: the final status (None: no answer). As an RFC 2617
        client: `qop=auth` with nc and cnonce when the challenge offers it (`qop=False`: as an RFC 2069 camera);
        `reuse_nonce`: a refresh that answers the last challenge's nonce at once (nc counting up), and a
        `stale=TRUE` challenge answered again with the same password and the new nonce."""
        call_id = f"{secrets.token_hex(10)}@{self.here[0]}"
        exp = self.expires if expires is None else expires
        contact = [("Contact", f"<sip:{self.id}@{self.here[0]}:{self.here[1]}>"), ("Expires", str(exp))]
        uri = f"sip:{self.server_id}@{self.domain}"
        pw = self.password if password is None else password

        def answered(ch: dict[str, str]) -> SipMessage | None:
            self.nc += 1
            auth = digest.authorization(self.id, ch.get("realm", ""), ch.get("nonce", ""), uri, "REGISTER", pw,
                                        qop=digest.offered_qop(ch) if qop else None, nc=self.nc)
            self.authorizations.append(auth)
            return self._request("REGISTER", [*contact, ("Authorization", auth)], call_id=call_id)

        if reuse_nonce and self.challenge is not None:
            second = answered(self.challenge)
        else:
            first = self._request("REGISTER", contact, call_id=call_id)
            if first is None or first.status != 401:
                return None if first is None else first.status
            self.challenge, self.nc = digest.parse_params(first.get("WWW-Authenticate") or ""), 0
            second = answered(self.challenge)
        if second is not None and second.status == 401:  # a stale nonce: the new one, the same password
            self.challenge, self.nc = digest.parse_params(second.get("WWW-Authenticate") or ""), 0
            self.stale_challenges += self.challenge.get("stale", "").upper() == "TRUE"
            second = answered(self.challenge)
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
        if not (self.guard.get(channel, True) and self.guard.get(self.id, True)):
            self.alarms_held += 1  # 撤防: a disarmed device reports no alarm (GB/T 28181-2016 §9.3.2)
            return None
        if self.alarms_by_subscription and "Alarm" not in self.subscriptions:
            return None  # a platform that tells subscribers only: nobody subscribed, nobody is told
        how = "NOTIFY" if self.alarms_by_subscription else "MESSAGE"
        return self.message("Notify", "Alarm", channel, method=how, inner=
                            f"<AlarmPriority>{priority}</AlarmPriority>\r\n<AlarmMethod>{method}</AlarmMethod>\r\n"
                            f"<AlarmTime>{time.strftime('%Y-%m-%dT%H:%M:%S')}</AlarmTime>\r\n"
                            f"<AlarmDescription>{esc(description)}</AlarmDescription>\r\n{where}{info}")

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
            if offer.session in ("Download", "Playback"):
                self.downloads.append((channel, offer.session, offer.start, offer.end, offer.speed))
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
        if req.method == "MESSAGE" and b"<CmdType>DeviceControl</CmdType>" in req.body and b"<GuardCmd>" in req.body:
            self._guard(req.body)
            return
        if req.method == "MESSAGE" and b"<CmdType>DeviceControl</CmdType>" in req.body and b"<PTZCmd>" in req.body:
            self._ptz(req.body)  # PTZ commands have no Response (A.2.6.2 lists none for them)
            return
        if req.method == "MESSAGE" and b"<CmdType>RecordInfo</CmdType>" in req.body and b"<Query>" in req.body:
            self._records(req.body)
            return
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

    def _records(self, body: bytes) -> None:
        """录像文件检索 (§9.7, A.2.4.5), answered with the recording that covers the span (A.2.6.6): one item
        from the asked start (or when it began recording) to the asked end (or now)."""
        q = parse_manscdp(body)
        sn, channel, start, end = q.sn, q.device_id, q.text("StartTime"), q.text("EndTime")
        self.record_queries.append((channel, start, end))
        items = ""
        if self.recorded_since is not None:
            t0 = max(read_local_time(start), self.recorded_since)
            t1 = min(read_local_time(end), time.time())
            if t1 > t0:
                items = (f"<Item>\r\n<DeviceID>{channel}</DeviceID>\r\n<Name>{channel}</Name>\r\n"
                         f"<FilePath>/record/{channel}/{int(t0)}.ps</FilePath>\r\n<Address>{esc(channel)}</Address>\r\n"
                         f"<StartTime>{local_time(t0)}</StartTime>\r\n<EndTime>{local_time(t1)}</EndTime>\r\n"
                         f"<Secrecy>0</Secrecy>\r\n<Type>time</Type>\r\n</Item>\r\n")
        n = 1 if items else 0
        inner = (f"<Name>{channel}</Name>\r\n<SumNum>{n}</SumNum>\r\n<RecordList Num=\"{n}\">\r\n{items}"
                 "</RecordList>\r\n")
        self._request("MESSAGE", [("Content-Type", "Application/MANSCDP+xml")],
                      manscdp("Response", "RecordInfo", sn, channel, inner, self.charset), wait=2.0)

    def _guard(self, body: bytes) -> None:
        """报警布防/撤防 (A.2.3.1.3), answered with a DeviceControl Response, Result OK (A.2.6.2)."""
        sn = int(body.split(b"<SN>")[1].split(b"</SN>")[0])
        target = body.split(b"<DeviceID>")[1].split(b"</DeviceID>")[0].decode().strip()
        cmd = body.split(b"<GuardCmd>")[1].split(b"</GuardCmd>")[0].decode().strip()
        ok = cmd in ("SetGuard", "ResetGuard") and (target == self.id or any(c.id == target for c in self.channels))
        if ok:
            self.guard[target] = cmd == "SetGuard"
        self.guard_commands.append((target, cmd))
        result = f"<Result>{'OK' if ok else 'ERROR'}</Result>\r\n"
        self._request("MESSAGE", [("Content-Type", "Application/MANSCDP+xml")],
                      manscdp("Response", "DeviceControl", sn, target, result, self.charset), wait=2.0)

    def _ptz(self, body: bytes) -> None:
        target = body.split(b"<DeviceID>")[1].split(b"</DeviceID>")[0].decode().strip()
        try:
            code, _, data2, _ = manscdp_read_ptz(body.split(b"<PTZCmd>")[1].split(b"</PTZCmd>")[0].decode())
        except ValueError:
            return  # a command that fails its checks is ignored, as a device does
        self.ptz.append((target, code, data2))
        if code == PRESET_CALL:
            self.preset[target] = data2

    def _stream(self, call: Call) -> None:
        """The footage as PS over RTP to the address the INVITE gave, paced at its own frame times (§C.2)."""
        assert self.footage is not None
        recorded = call.offer.session in ("Download", "Playback")
        data, marks = ps_stream(self.footage if recorded else self.presets.get(self.preset.get(call.channel, 0),
                                                                               self.footage))
        if recorded:  # the span asked, at the download speed (Playback: real time), once
            marks = [(t / max(1, call.offer.speed if call.offer.session == "Download" else 1), o) for t, o in marks
                     if t < call.offer.end - call.offer.start]
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
                if recorded:  # §9.9.3: the sender says the file is sent (NotifyType 121)
                    self.media_ended.append(call.channel)
                    self.message("Notify", "MediaStatus", call.channel, "<NotifyType>121</NotifyType>\r\n")
                    return
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
