"""SIP out (requests and responses over the peer's transport) and refusals counted by reason."""

from __future__ import annotations

import asyncio
import logging
import secrets

from edge.gb28181.base import MANSCDP, Addr, Peer, tag
from edge.gb28181.publishing import Publishing
from gridwatch.core.gb28181.sip import SipMessage

logger = logging.getLogger(__name__)


class Transport(Publishing):
    def send(self, msg: SipMessage, addr: Addr, transport: str, writer: asyncio.StreamWriter | None) -> None:
        data = msg.to_bytes()
        if transport == "tcp":
            if writer is not None and not writer.is_closing():
                writer.write(data)
        elif self.udp is not None:
            self.udp.sendto(data, addr)

    def refuse(self, reason: str, addr: Addr | None, detail: str) -> None:
        self.refused[reason] += 1
        logger.warning("gb28181: refused (%s) from %s: %s", reason, f"{addr[0]}:{addr[1]}" if addr else "?",
                       detail[:200])

    @property
    def here(self) -> str:
        s = self.cfg.sip
        return s.advertise or (s.host if s.host != "0.0.0.0" else "127.0.0.1")

    def request(self, peer: Peer, method: str, body: bytes, *, target: str | None = None,
                content_type: str = MANSCDP, headers: list[tuple[str, str]] | None = None) -> SipMessage | None:
        """A request to the device (`target`: one of its channels, as the request-URI and To)."""
        if peer.addr is None:
            return None
        s = self.cfg.sip
        peer.cseq += 1
        to = target or peer.dev.id
        msg = SipMessage(method=method, uri=f"sip:{to}@{peer.addr[0]}:{peer.addr[1]}")
        msg.headers = [("Via", f"SIP/2.0/{peer.transport.upper()} {self.here}:{self.port};rport;branch=z9hG4bK"
                               f"{secrets.token_hex(8)}"),
                       ("From", f"<sip:{s.id}@{s.domain}>;tag={tag()}"),
                       ("To", f"<sip:{to}@{s.domain}>"),
                       ("Call-ID", f"{secrets.token_hex(12)}@{self.here}"), ("CSeq", f"{peer.cseq} {method}"),
                       ("Max-Forwards", "70"), ("User-Agent", "gridwatch"), *(headers or []),
                       ("Content-Type", content_type)]
        msg.body = body
        self.send(msg, peer.addr, peer.transport, peer.writer)
        return msg
