"""Audit records that leave the host (issue 42, 等保 安全审计: records protected and kept apart): every record
of the trail sent, in order, to a syslog collector as an RFC 5424 message, over TLS (RFC 5425), TCP (RFC 6587
octet counting, the framing RFC 5425 mandates) or UDP (RFC 5426).

The queue is the trail itself: the forwarder keeps how far it got (the `audit_syslog` cursor) and sends what
follows, so a collector away for a minute or a day gets every record when it is back, and a hub restarted in
between starts where the last one stopped. One replica forwards (leadership as the notifier's). Syslog over
TCP has no acknowledgement: what the kernel took may still be lost when the collector goes away. So the
forwarder looks at the connection before each batch (a collector never writes: anything readable is its
close), and when a connection ends, by a failed send or a close seen, everything sent on it is sent again on
the next one (the collector may see a record twice, never miss one; each carries its sequence number and
chain hash, so the copy is also the chain's head kept off the host).

A message: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [gridwatch@32473 seq=… hash=… …] BOM{detail}`:
facility authpriv (10), severity notice (ok) or warning (refused, failed), MSGID the action. 32473 is the
enterprise number RFC 5612 reserves for documentation; a deployment with its own may change `SD_ID`."""

from __future__ import annotations

import json
import logging
import os
import socket
import ssl
from collections.abc import Callable
from datetime import UTC

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.config import Syslog
from hub.ops.leader import Leadership, WokenThread
from hub.store.cases import Store
from hub.store.models import AuditRow, Cursor

logger = logging.getLogger(__name__)
CURSOR = "audit_syslog"
SD_ID = "gridwatch@32473"
FACILITY = 10  # authpriv: security/authorization messages (RFC 5424 §6.2.1)
SEVERITY = {"ok": 5, "refused": 4, "failed": 4}  # notice, warning
BOM = "\ufeff"


def _param(v: object) -> str:
    """An SD-PARAM value: `"`, `\\` and `]` escaped (RFC 5424 §6.3.3)."""
    return str(v).replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _name(v: str, most: int) -> str:
    """A header field: printable US-ASCII without spaces, or the nil value."""
    out = "".join(c for c in v if "!" <= c <= "~")[:most]
    return out or "-"


def message(row: AuditRow, *, hostname: str, app_name: str, procid: str) -> bytes:
    """One record as an RFC 5424 syslog message."""
    pri = FACILITY * 8 + SEVERITY.get(row.outcome, 5)
    stamp = row.at.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    params = {"seq": row.seq, "actor": row.actor, "role": row.role or "", "address": row.address or "",
              "target": row.target or "", "outcome": row.outcome, "prev": row.prev_hash, "hash": row.hash,
              "mac": row.mac or "sha256"}
    sd = "[" + SD_ID + "".join(f' {k}="{_param(v)}"' for k, v in params.items()) + "]"
    msg = BOM + json.dumps(row.detail or {}, ensure_ascii=False, sort_keys=True, default=str)
    return (f"<{pri}>1 {stamp} {_name(hostname, 255)} {_name(app_name, 48)} {_name(procid, 128)} "
            f"{_name(row.action, 32)} {sd} {msg}").encode()


class Connection:
    """One connection to the collector (TCP, TLS or UDP), opened when first needed."""

    def __init__(self, cfg: Syslog, timeout: float = 10.0) -> None:
        self.cfg, self.timeout = cfg, timeout
        self.sock: socket.socket | None = None

    def open(self) -> socket.socket:
        if self.sock is None:
            c = self.cfg
            if c.transport == "udp":
                s = socket.socket(socket.AF_INET6 if ":" in c.host else socket.AF_INET, socket.SOCK_DGRAM)
                s.connect((c.host, c.port))
            else:
                s = socket.create_connection((c.host, c.port), timeout=self.timeout)
                if c.transport == "tls":
                    ctx = ssl.create_default_context(cafile=str(c.ca_file) if c.ca_file else None)
                    s = ctx.wrap_socket(s, server_hostname=c.host)
            self.sock = s
        return self.sock

    def alive(self) -> bool:
        """The open connection has not been closed by the collector (which never writes to it)."""
        import select

        s = self.sock
        if s is None or self.cfg.transport == "udp":
            return True
        readable, _, _ = select.select([s], [], [], 0)
        if not readable:
            return True
        s.setblocking(False)
        try:
            return bool(s.recv(1))  # data from a collector that writes: not a close
        except (ssl.SSLWantReadError, BlockingIOError):
            return True
        except OSError:
            return False
        finally:
            s.settimeout(self.timeout)

    def send(self, messages: list[bytes]) -> None:
        s = self.open()
        if self.cfg.transport == "udp":
            for m in messages:
                s.send(m[:65000])
            return
        s.sendall(b"".join(b"%d %s" % (len(m), m) for m in messages))  # octet counting (RFC 6587 §3.4.1)

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None


class Forwarder(WokenThread):
    """The thread that sends the trail to the collector from the cursor on (woken by the store's commits, as the
    publisher and the notifier are)."""

    thread_name = "gridwatch-audit-syslog"

    def __init__(self, store: Store, cfg: Syslog, *, batch: int = 500, idle: float = 1.0,
                 backoff: Callable[[int], float] = lambda n: min(30.0, 0.5 * 2 ** min(n, 6))) -> None:
        self.store, self.cfg, self.batch, self.idle, self.backoff = store, cfg, batch, idle, backoff
        self.leader = Leadership(store.engine, CURSOR)
        self.conn = Connection(cfg)
        self.hostname, self.procid = socket.gethostname(), str(os.getpid())
        self.sent = 0
        self.failures = 0
        self.first_on_conn: int | None = None  # the first record sent on the open connection
        WokenThread.__init__(self)

    def stop(self) -> None:
        super().stop()
        self.conn.close()
        self.leader.release()

    def backlog(self) -> int:
        """Records not yet sent."""
        with Session(self.store.engine) as s:
            done = s.get(Cursor, CURSOR)
            last = s.scalar(select(AuditRow.seq).order_by(AuditRow.seq.desc()).limit(1)) or 0
            return max(0, last - (done.last_id if done is not None else 0))

    def round(self) -> int:
        """Send the next batch after the cursor and move it; the records sent (0: nothing waiting)."""
        with Session(self.store.engine) as s:
            done = s.get(Cursor, CURSOR)
            after = done.last_id if done is not None else 0
            rows = list(s.scalars(select(AuditRow).where(AuditRow.seq > after).order_by(AuditRow.seq)
                                  .limit(self.batch)))
            if not rows:
                return 0
            messages = [message(r, hostname=self.hostname, app_name=self.cfg.app_name, procid=self.procid)
                        for r in rows]
            first, last = rows[0].seq, rows[-1].seq
        if not self.conn.alive():
            raise ConnectionError("the log server closed the connection")
        self.conn.send(messages)
        if self.first_on_conn is None:
            self.first_on_conn = first
        with self.store.transaction() as s:
            cur = s.get(Cursor, CURSOR, with_for_update=True)
            if cur is None:
                s.add(Cursor(name=CURSOR, last_id=last))
            elif cur.last_id < last:
                cur.last_id = last
        self.sent += len(messages)
        return len(messages)

    def _rewind(self) -> None:
        """The connection ended: what was sent on it may not have arrived; send it again."""
        first, self.first_on_conn = self.first_on_conn, None
        if first is None:
            return
        try:
            with self.store.transaction() as s:
                cur = s.get(Cursor, CURSOR, with_for_update=True)
                if cur is not None and cur.last_id >= first:
                    cur.last_id = first - 1
        except Exception as e:  # the database away too: the next round finds the cursor where it was
            logger.warning("audit forwarder: cursor not rewound: %s", str(e).splitlines()[0][:200] if str(e) else e)
            self.first_on_conn = first

    def _run(self) -> None:
        tries = 0
        said = False
        while not self._stop.is_set():
            if not self.leader.try_acquire():
                self._stop.wait(5.0)
                continue
            try:
                while not self._stop.is_set() and self.round():
                    pass
                if said:
                    logger.warning("audit records reach the log server %s:%d again", self.cfg.host, self.cfg.port)
                tries, said = 0, False
                self._wake.wait(self.idle)
                self._wake.clear()
            except Exception as e:  # the collector away, a TLS error, the database away: again from the cursor
                self.conn.close()
                self.failures += 1
                self._rewind()
                if not said:
                    logger.warning("audit records cannot reach the log server %s:%d (%s); kept and sent when it "
                                   "is back", self.cfg.host, self.cfg.port, str(e).splitlines()[0][:200] if str(e)
                                   else type(e).__name__)
                    said = True
                self._stop.wait(self.backoff(tries))
                tries += 1
