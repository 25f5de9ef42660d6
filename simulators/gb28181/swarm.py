"""Thousands of emulated devices on one UDP socket (each its own From id), for the registration and keepalive
bench."""

from __future__ import annotations

import secrets
import socket
import threading
import time

from gridwatch.core.gb28181 import digest
from gridwatch.core.gb28181.sip import SipError, parse, uri_user
from simulators.gb28181.catalog import manscdp


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
