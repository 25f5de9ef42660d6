"""SIP messages as GB/T 28181 uses them, parsed and written without I/O.

RFC 3261 §7 (message format), §7.3.1 (header folding is not accepted: GB/T 28181-2016 §4.2 devices send one
line per header), §18.3 (framing over TCP by Content-Length), §20.10/§20.14 (compact forms `v`, `f`, `t`,
`i`, `l`, `c`, `m` for Via, From, To, Call-ID, Content-Length, Content-Type, Contact). GB/T 28181 carries
its commands as MANSCDP XML in MESSAGE and NOTIFY bodies (`Application/MANSCDP+xml`, §A.2) and its
streams' SDP in INVITE. No SIP library for Python is kept up (aiosip's last release is 2017; PJSIP's
binding needs a C build), and gridwatch needs only the upper platform's side of a handful of methods, so
this is a strict parser of that subset: anything outside it raises `SipError` with a reason that is
counted, never an exception that stops the gateway.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

MAX_MESSAGE = 65_536
"""Bytes: a SIP message over UDP fits a datagram; a catalog page of a few items is a few KiB."""
MAX_HEADERS = 64
COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "l": "content-length", "c": "content-type",
           "m": "contact", "k": "supported", "s": "subject"}
METHODS = frozenset({"REGISTER", "MESSAGE", "NOTIFY", "SUBSCRIBE", "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS",
                     "INFO"})
_REQUEST = re.compile(r"^([A-Z]{2,16}) (sips?:[^ ]{1,256}) SIP/2\.0$")
_STATUS = re.compile(r"^SIP/2\.0 ([1-6][0-9]{2}) ([^\r\n]{0,128})$")
_TOKEN = re.compile(r"^[A-Za-z0-9.!%*_+`'~-]{1,64}$")
REASONS = {100: "Trying", 200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
           404: "Not Found", 405: "Method Not Allowed", 413: "Request Entity Too Large", 415: "Unsupported Media Type",
           423: "Interval Too Brief", 481: "Call/Transaction Does Not Exist", 486: "Busy Here",
           488: "Not Acceptable Here", 500: "Server Internal Error", 503: "Service Unavailable"}


class SipError(ValueError):
    """A message gridwatch does not take: `reason` is a short counted name (malformed, too_large, …)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass
class SipMessage:
    """A request (`method`, `uri`) or a response (`status`, `phrase`); headers keep their order and repeats."""

    method: str | None = None
    uri: str = ""
    status: int | None = None
    phrase: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @property
    def is_request(self) -> bool:
        return self.method is not None

    def get(self, name: str, default: str | None = None) -> str | None:
        low = name.lower()
        for k, v in self.headers:
            if k.lower() == low:
                return v
        return default

    def all(self, name: str) -> list[str]:
        low = name.lower()
        return [v for k, v in self.headers if k.lower() == low]

    def set(self, name: str, value: str) -> None:
        low = name.lower()
        self.headers = [(k, v) for k, v in self.headers if k.lower() != low]
        self.headers.append((name, value))

    @property
    def call_id(self) -> str:
        return self.get("Call-ID") or ""

    @property
    def cseq(self) -> tuple[int, str]:
        raw = (self.get("CSeq") or "").split()
        if len(raw) != 2 or not raw[0].isdigit():
            raise SipError("malformed", f"CSeq {self.get('CSeq')!r}")
        return int(raw[0]), raw[1].upper()

    def from_user(self) -> str:
        """The user part of From's URI: the GB/T 28181 id of who sent it."""
        return uri_user(self.get("From") or "")

    def to_bytes(self) -> bytes:
        start = (f"{self.method} {self.uri} SIP/2.0" if self.is_request
                 else f"SIP/2.0 {self.status} {self.phrase or REASONS.get(self.status or 0, '')}")
        lines = [start] + [f"{k}: {v}" for k, v in self.headers if k.lower() != "content-length"]
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


def uri_user(value: str) -> str:
    """`"Name" <sip:34020000001320000001@3402000000>;tag=x` → `34020000001320000001`."""
    m = re.search(r"sips?:([^@;>\s]+)@", value)
    return m.group(1) if m else ""


def header_param(value: str, name: str) -> str | None:
    """A `;name=value` parameter of a header (From's tag, Via's branch)."""
    m = re.search(rf";\s*{re.escape(name)}=([^;,\s>]+)", value)
    return m.group(1) if m else None


def parse(data: bytes) -> SipMessage:
    """One whole message (a UDP datagram, or a TCP frame cut by `frames`)."""
    if len(data) > MAX_MESSAGE:
        raise SipError("too_large", f"{len(data)} bytes, limit {MAX_MESSAGE}")
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        raise SipError("malformed", "no blank line after the headers")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        raise SipError("malformed", "headers are not UTF-8 (RFC 3261 §7.3)") from None
    lines = text.split("\r\n")
    msg = SipMessage()
    start = lines[0]
    if m := _REQUEST.match(start):
        if m.group(1) not in METHODS:
            raise SipError("unsupported_method", m.group(1))
        msg.method, msg.uri = m.group(1), m.group(2)
    elif m := _STATUS.match(start):
        msg.status, msg.phrase = int(m.group(1)), m.group(2)
    else:
        raise SipError("malformed", f"start line {start[:80]!r}")
    if len(lines) - 1 > MAX_HEADERS:
        raise SipError("malformed", f"more than {MAX_HEADERS} headers")
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        name = name.strip()
        if not colon or not _TOKEN.match(name) or line[:1] in (" ", "\t"):
            raise SipError("malformed", f"header line {line[:80]!r}")
        full = COMPACT.get(name.lower(), name) if len(name) == 1 else name
        msg.headers.append((_canonical(full), value.strip()))
    for needed in ("Via", "From", "To", "Call-ID", "CSeq"):
        if msg.get(needed) is None:
            raise SipError("malformed", f"no {needed} header")
    length = msg.get("Content-Length")
    if length is not None:
        if not length.isdigit():
            raise SipError("malformed", f"Content-Length {length!r}")
        if int(length) != len(body):
            if int(length) > len(body):
                raise SipError("malformed", f"Content-Length {length} but {len(body)} bytes of body")
            body = body[:int(length)]
    msg.body = body
    if msg.is_request:
        _, method = msg.cseq
        if method != msg.method:
            raise SipError("malformed", f"CSeq method {method} is not {msg.method}")
    return msg


_SPECIAL = {"call-id": "Call-ID", "cseq": "CSeq", "www-authenticate": "WWW-Authenticate"}


@functools.lru_cache(maxsize=256)
def _canonical(name: str) -> str:
    """A header name as RFC 3261 writes it (`Call-ID`, `CSeq`, `Content-Length`); the few names devices send are
    worked out once each (every keepalive carries the same eight)."""
    return _SPECIAL.get(name.lower(), "-".join(p.capitalize() for p in name.split("-")))


class Framer:
    """SIP over TCP (RFC 3261 §18.3): bytes in as they arrive, whole messages out, cut by Content-Length."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self.buf += data
        out: list[bytes] = []
        while True:
            while self.buf[:2] == b"\r\n":  # keepalive CRLFs between messages (RFC 5626 §3.5.1)
                del self.buf[:2]
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > MAX_MESSAGE:
                    raise SipError("too_large", f"no end of headers in {len(self.buf)} bytes")
                return out
            m = re.search(rb"(?im)^(?:content-length|l)[ \t]*:[ \t]*([0-9]{1,7})[ \t]*$", bytes(self.buf[:end]))
            length = int(m.group(1)) if m else 0
            total = end + 4 + length
            if total > MAX_MESSAGE:
                raise SipError("too_large", f"{total} bytes, limit {MAX_MESSAGE}")
            if len(self.buf) < total:
                return out
            out.append(bytes(self.buf[:total]))
            del self.buf[:total]


def response(req: SipMessage, status: int, *, to_tag: str | None = None,
             headers: list[tuple[str, str]] | None = None, body: bytes = b"",
             content_type: str | None = None) -> SipMessage:
    """The answer to `req` (RFC 3261 §8.2.6): Via, From, Call-ID and CSeq copied, To tagged."""
    out = SipMessage(status=status, phrase=REASONS.get(status, ""))
    for via in req.all("Via"):
        out.headers.append(("Via", via))
    out.headers.append(("From", req.get("From") or ""))
    to = req.get("To") or ""
    if to_tag and header_param(to, "tag") is None:
        to = f"{to};tag={to_tag}"
    out.headers.append(("To", to))
    out.headers.append(("Call-ID", req.call_id))
    out.headers.append(("CSeq", req.get("CSeq") or ""))
    out.headers.extend(headers or [])
    if content_type:
        out.headers.append(("Content-Type", content_type))
    out.body = body
    return out
