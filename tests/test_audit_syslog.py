"""Audit records that leave the host (issue 42): every record reaches a syslog collector started by the test
(a Python server speaking RFC 5425: TLS, octet-counted RFC 5424 messages), in order, and none is lost while
the collector is down for a minute; the messages are RFC 5424 as the RFC's grammar has them, and carry the
chain's hash, so the collector holds the head off the host."""

from __future__ import annotations

import re
import socket
import ssl
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from simulators.services import free_port
from tests.hubkit import api_client
from tests.test_tls import pki  # noqa: F401 (the fixture: a CA and a server certificate for 127.0.0.1)

pytestmark = [pytest.mark.slow, pytest.mark.e2e]  # make e2e-test (a minute of the collector away): keeps make
# test inside its ten minutes
T = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
ADMIN = {"Authorization": "Bearer key-admin"}
# RFC 5424 §6: HEADER SP STRUCTURED-DATA [SP MSG], the header's fields as its ABNF has them
SYSLOG = re.compile(rb'^<(?P<pri>[0-9]{1,3})>1 (?P<ts>[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z) (?P<host>[!-~]{1,255}) '
                    rb'(?P<app>[!-~]{1,48}) (?P<procid>[!-~]{1,128}) (?P<msgid>[!-~]{1,32}) '
                    rb'(?P<sd>\[gridwatch@32473(?: [^ =\]"]+="(?:[^"\\\]]|\\.)*")*\]) \xef\xbb\xbf(?P<msg>.*)$', re.S)


class Collector:
    """An RFC 5425 receiver: TLS, then `MSG-LEN SP SYSLOG-MSG` frames; every message kept."""

    def __init__(self, port: int, certs: Path) -> None:
        self.port, self.messages = port, list[bytes]()
        self.ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ctx.load_cert_chain(certs / "server.pem", certs / "server.key")
        self._lock = threading.Lock()

    def start(self) -> Collector:
        self.server = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        self.server.settimeout(0.2)
        self.running = True
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.running = False
        self.thread.join(5)
        self.server.close()

    def _accept(self) -> None:
        conns = []
        while self.running:
            try:
                raw, _ = self.server.accept()
            except TimeoutError:
                continue
            try:
                conn = self.ctx.wrap_socket(raw, server_side=True)
            except (ssl.SSLError, OSError):
                continue
            conns.append(conn)
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()
        for c in conns:  # down: every connection cut, as a collector that stopped
            try:
                c.shutdown(socket.SHUT_RDWR)
                c.close()
            except OSError:
                pass

    def _read(self, conn: ssl.SSLSocket) -> None:
        buf = b""
        conn.settimeout(0.2)
        while self.running:
            try:
                chunk = conn.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            while (sp := buf.find(b" ")) > 0 and buf[:sp].isdigit() and len(buf) >= sp + 1 + int(buf[:sp]):
                n = int(buf[:sp])
                with self._lock:
                    self.messages.append(buf[sp + 1:sp + 1 + n])
                buf = buf[sp + 1 + n:]

    def seqs(self) -> list[int]:
        with self._lock:
            return [int(m.group(1)) for m in (re.search(rb' seq="([0-9]+)"', x) for x in self.messages) if m]


def wait_for(check, timeout: float) -> bool:  # noqa: ANN001
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(0.2)
    return check()


def test_every_audit_record_reaches_the_collector_in_order_and_none_is_lost_while_it_is_down(tmp_path, pki):  # noqa: F811
    port = free_port()
    collector = Collector(port, pki).start()
    syslog = {"host": "127.0.0.1", "port": port, "transport": "tls", "ca_file": str(pki / "ca.pem")}
    try:
        with api_client(f"sqlite:///{tmp_path / 'hub.sqlite'}", {"admin": ("admin", None)}, T,
                        audit={"syslog": syslog}) as c:
            def person(i: int) -> None:
                r = c.post("/api/v1/users", headers=ADMIN, json={"username": f"p{i}", "name": f"人员{i}",
                                                                "unit": "grid-01", "role": "viewer",
                                                                "password": "Gw!Tq-73-lvNa"})
                assert r.status_code == 201, r.text

            for i in range(5):
                person(i)
            c.post("/api/v1/login", json={"username": "p0", "password": "wrong"})
            from hub.audit import trail

            store = c.app.state.hub.store

            def head() -> int:
                return max(r.seq for r in trail.listing(store, limit=1))

            assert wait_for(lambda: set(collector.seqs()) >= set(range(1, head() + 1)), 15), collector.seqs()
            # each message is RFC 5424, and carries the record's place in the chain
            rows = {r.seq: r for r in trail.listing(store, limit=1000)}
            for raw in collector.messages:
                m = SYSLOG.match(raw)
                assert m, raw[:300]
                seq = int(re.search(rb' seq="([0-9]+)"', raw).group(1))
                row = rows[seq]
                assert f' hash="{row.hash}"'.encode() in raw and m["msgid"] == row.action.encode()
                assert int(m["pri"]) == 10 * 8 + (5 if row.outcome == "ok" else 4)  # authpriv.notice / .warning
            refused = [x for x in collector.messages if b"sign_in" in x and b'outcome="refused"' in x]
            assert refused and b'actor="p0"' in refused[0]

            collector.stop()  # the collector away for a minute, while the hub records
            before = head()
            for i in range(5, 12):
                person(i)
            time.sleep(60)
            forwarder = c.app.state.forwarder
            # kept in the trail: the new records, and those sent on the connection that was cut (sent again)
            assert forwarder.backlog() >= head() - before and forwarder.failures >= 1
            collector = Collector(port, pki).start()
            assert wait_for(lambda: set(collector.seqs()) >= set(range(before + 1, head() + 1)), 45), (
                before, head(), collector.seqs())
            got = collector.seqs()
            assert got == sorted(got)  # in order
            assert forwarder.backlog() == 0
    finally:
        collector.stop()
