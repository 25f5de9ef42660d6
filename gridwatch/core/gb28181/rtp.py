"""RTP carrying MPEG-PS as GB/T 28181 streams it, and the SDP of its INVITE (pure).

- RTP (RFC 3550 §5.1): a 12-byte header (V=2, P, X, CC, M, PT, sequence, timestamp, SSRC), CSRCs and an
  extension skipped. GB/T 28181-2016 §C.2: the payload is the MPEG-2 Program Stream (GB/T 20090.1 / ISO
  13818-1), payload type 96, clock 90 kHz, one PS pack split over as many packets as it needs, the marker
  on the last packet of a frame.
- Over TCP (GB/T 28181-2016 §4.2.3, RFC 4571 §2): each packet after a 2-byte big-endian length.
- SDP (GB/T 28181-2016 §附录F, RFC 4566): `s=Play` (real-time), `m=video <port> RTP/AVP 96` or
  `TCP/RTP/AVP 96` with `a=setup:passive|active`, `a=rtpmap:96 PS/90000`, `a=recvonly` on the asking side,
  and the GB-specific `y=` line carrying the SSRC as 10 decimal digits (first 0 = real-time, then digits 4-8
  of the SIP domain, then a serial of 4), which the stream's packets must carry.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field

HEADER = struct.Struct("!BBHII")
MTU = 1400


class RtpError(ValueError):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Packet:
    seq: int
    ts: int
    ssrc: int
    marker: bool
    pt: int
    payload: bytes


def parse(data: bytes) -> Packet:
    if len(data) < 12:
        raise RtpError("rtp_malformed", f"{len(data)} bytes")
    b0, b1, seq, ts, ssrc = HEADER.unpack_from(data)
    if b0 >> 6 != 2:
        raise RtpError("rtp_malformed", f"version {b0 >> 6}")
    off = 12 + 4 * (b0 & 0x0F)
    if b0 & 0x10:  # a header extension: 4 bytes, then its length in 32-bit words
        if len(data) < off + 4:
            raise RtpError("rtp_malformed", "extension past the end")
        off += 4 + 4 * struct.unpack_from("!H", data, off + 2)[0]
    end = len(data)
    if b0 & 0x20:  # padding: the last byte says how much
        end -= data[-1]
    if off > end:
        raise RtpError("rtp_malformed", "header past the end")
    return Packet(seq, ts, ssrc, bool(b1 & 0x80), b1 & 0x7F, data[off:end])


def packetize(payload: bytes, seq: int, ts: int, ssrc: int, pt: int = 96, mtu: int = MTU) -> list[bytes]:
    """One frame's PS bytes as RTP packets, the marker on the last; sequence numbers from `seq` (mod 2^16)."""
    out = []
    chunks = [payload[i:i + mtu] for i in range(0, len(payload), mtu)] or [b""]
    for n, chunk in enumerate(chunks):
        marker = 0x80 if n == len(chunks) - 1 else 0
        out.append(HEADER.pack(0x80, marker | pt, (seq + n) & 0xFFFF, ts & 0xFFFFFFFF, ssrc) + chunk)
    return out


def frame_tcp(packet: bytes) -> bytes:
    return struct.pack("!H", len(packet)) + packet


@dataclass
class TcpDeframer:
    """RFC 4571: bytes in, RTP packets out."""

    buf: bytearray = field(default_factory=bytearray)

    def feed(self, data: bytes) -> list[bytes]:
        self.buf += data
        out = []
        while len(self.buf) >= 2:
            n = struct.unpack_from("!H", self.buf)[0]
            if len(self.buf) < 2 + n:
                break
            out.append(bytes(self.buf[2:2 + n]))
            del self.buf[:2 + n]
        return out


@dataclass
class Reorder:
    """A small jitter buffer: packets out in sequence order (16-bit wrap), a gap given up on after `depth`
    later packets arrived (the lost packet is counted and skipped; the decoder resyncs at the next pack)."""

    depth: int = 64
    next_seq: int | None = None
    held: dict[int, bytes] = field(default_factory=dict)
    lost: int = 0
    late: int = 0

    def push(self, seq: int, payload: bytes) -> list[bytes]:
        if seq == self.next_seq and not self.held:  # in order, nothing waiting: the common case, no buffering
            self.next_seq = (seq + 1) & 0xFFFF
            return [payload]
        if self.next_seq is None:
            self.next_seq = seq
        ahead = (seq - self.next_seq) & 0xFFFF
        if ahead >= 0x8000:  # behind what was already given out: a duplicate or too late
            self.late += 1
            return []
        self.held[seq] = payload
        out = []
        while True:
            if self.next_seq in self.held:
                out.append(self.held.pop(self.next_seq))
                self.next_seq = (self.next_seq + 1) & 0xFFFF
            elif len(self.held) > self.depth:
                self.lost += 1
                self.next_seq = (self.next_seq + 1) & 0xFFFF
            else:
                return out


# ---- SDP ----

@dataclass(frozen=True, slots=True)
class Sdp:
    address: str
    port: int
    transport: str  # udp or tcp
    ssrc: str  # the y= line, 10 digits
    setup: str = ""  # tcp: passive (the sender connects to us) or active
    session: str = "Play"  # Play (real time), Playback or Download (a recording, §9.8, §9.9)
    uri: str = ""  # the u= line of a recording's INVITE: "<channel>:0"
    start: int = 0  # the t= line: a recording's start and end, Unix seconds (0 0: real time)
    end: int = 0
    speed: int = 0  # a=downloadspeed: (Download; 0: not said)


def write_sdp(owner: str, address: str, port: int, ssrc: str, *, transport: str = "udp", direction: str = "recvonly",
              setup: str = "passive", session: str = "Play", uri: str = "", times: tuple[int, int] = (0, 0),
              speed: int = 0) -> bytes:
    """An INVITE's (or its answer's) SDP. A recording (§9.8 Playback, §9.9 Download; 附录F): `session`, `uri`
    (`<channel>:0`), `times` (start and end, Unix seconds) and for a download its `speed`."""
    proto = "TCP/RTP/AVP" if transport == "tcp" else "RTP/AVP"
    lines = ["v=0", f"o={owner} 0 0 IN IP4 {address}", f"s={session}", *([f"u={uri}"] if uri else []),
             f"c=IN IP4 {address}", f"t={times[0]} {times[1]}", f"m=video {port} {proto} 96", f"a={direction}",
             "a=rtpmap:96 PS/90000", *([f"a=downloadspeed:{speed}"] if speed else [])]
    if transport == "tcp":
        lines += [f"a=setup:{setup}", "a=connection:new"]
    lines.append(f"y={ssrc}")
    return ("\r\n".join(lines) + "\r\n").encode()


def read_sdp(body: bytes) -> Sdp:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise RtpError("sdp_malformed", "not UTF-8") from None
    addr = re.search(r"(?m)^c=IN IP4 ([0-9.]{7,15})\s*$", text)
    media = re.search(r"(?m)^m=video ([0-9]{1,5}) (RTP/AVP|TCP/RTP/AVP|RTP/AVP/TCP) ", text)
    ssrc = re.search(r"(?m)^y=([0-9]{10})\s*$", text)
    session = re.search(r"(?m)^s=(\S{1,32})\s*$", text)
    setup = re.search(r"(?m)^a=setup:(active|passive|actpass)\s*$", text)
    uri = re.search(r"(?m)^u=([0-9A-Za-z:._-]{1,64})\s*$", text)
    times = re.search(r"(?m)^t=([0-9]{1,12}) ([0-9]{1,12})\s*$", text)
    speed = re.search(r"(?m)^a=downloadspeed:([0-9]{1,2})\s*$", text)
    if addr is None or media is None:
        raise RtpError("sdp_malformed", "no c= address or m=video line")
    return Sdp(addr.group(1), int(media.group(1)), "tcp" if "TCP" in media.group(2) else "udp",
               ssrc.group(1) if ssrc else "", setup.group(1) if setup else "",
               session.group(1) if session else "", uri.group(1) if uri else "",
               int(times.group(1)) if times else 0, int(times.group(2)) if times else 0,
               int(speed.group(1)) if speed else 0)


def ssrc_for(domain: str, serial: int, history: bool = False) -> str:
    """GB/T 28181-2016 §附录F: `0` (real-time) or `1` (a recording), digits 4-8 of the SIP domain, a serial of
    4 digits."""
    return f"{1 if history else 0}{domain[3:8]}{serial % 10_000:04d}"
