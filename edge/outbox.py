"""The durable SQLite (WAL) outbox: alerts waiting for the hub, rule state, and the last good rule file.

Alerts and the rule state that produced them are committed in one transaction, and only then are the
MQTT messages acknowledged, so a crash at any point either replays a message or finds its alert here.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gridwatch.core.alert import Alert

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id TEXT NOT NULL,
    state TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    UNIQUE (alert_id, state)
);
CREATE TABLE IF NOT EXISTS sent (
    alert_id TEXT NOT NULL,
    state TEXT NOT NULL,
    acked_at REAL NOT NULL,
    PRIMARY KEY (alert_id, state)
);
CREATE TABLE IF NOT EXISTS dead_letter (
    alert_id TEXT NOT NULL,
    state TEXT NOT NULL,
    body TEXT NOT NULL,
    reason TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (alert_id, state)
);
CREATE TABLE IF NOT EXISTS dead_message (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    reason TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS rule_state (key TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

WAL_LIMIT = 4 * 1024 * 1024
DEAD_MESSAGES_KEEP = 1000  # the newest messages the agent could not process, kept for a person to look at
SENT_KEEP_S = 7 * 86400.0  # remember acknowledged ids this long, so a replayed message is not re-sent


Pending = tuple[int, float, Alert]  # outbox sequence number, created at (epoch s), the alert


class Outbox:
    """Owned by the agent, which closes it; the forwarder's thread only uses it. Each thread gets its own
    connection; `close()` closes them all."""

    def __init__(self, path: str | Path, synchronous: str = "full") -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.synchronous = synchronous.upper()
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._conn().executescript(SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
            conn.execute("PRAGMA busy_timeout=30000")
            # after a checkpoint the write-ahead log shrinks back to this: on a small disk a log grown during
            # a burst (or while the hub was away) must not keep the space it took
            conn.execute(f"PRAGMA journal_size_limit={WAL_LIMIT}")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed when the block ends, rolled back on any exception."""
        c = self._conn()
        c.execute("BEGIN IMMEDIATE")
        try:
            yield c
            c.execute("COMMIT")
        except BaseException:
            # SQLite has already rolled back after some errors (a full disk): a second ROLLBACK would raise
            # "no transaction is active" and hide the reason
            if c.in_transaction:
                c.execute("ROLLBACK")
            raise

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()
        self._local = threading.local()

    # ---- the worker's side ---------------------------------------------------------------------
    def commit(self, alerts: list[Alert], states: dict[str, str],
               deleted: set[str] | None = None, now: float | None = None) -> int:
        """Store alerts (once per alert id and state) and rule state (key -> JSON) atomically."""
        if not alerts and not states and not deleted:
            return 0
        now = time.time() if now is None else now
        added = 0
        with self._tx() as c:
            for a in alerts:
                if c.execute("SELECT 1 FROM sent WHERE alert_id=? AND state=?", a.key).fetchone():
                    continue
                cur = c.execute("INSERT OR IGNORE INTO outbox (alert_id, state, body, created_at) VALUES (?,?,?,?)",
                                (*a.key, a.model_dump_json(), now))
                added += cur.rowcount
            if states:
                c.executemany("INSERT OR REPLACE INTO rule_state (key, data) VALUES (?, ?)", list(states.items()))
            if deleted:
                c.executemany("DELETE FROM rule_state WHERE key = ?", [(k,) for k in deleted])
        return added

    def load_states(self) -> dict[str, dict[str, Any]]:
        return {k: json.loads(v) for k, v in self._conn().execute("SELECT key, data FROM rule_state")}

    def get_meta(self, name: str) -> str | None:
        row = self._conn().execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return str(row[0]) if row else None

    def set_meta(self, name: str, value: str) -> None:
        self.set_metas({name: value})

    def set_metas(self, values: dict[str, str]) -> None:
        with self._tx() as c:
            c.executemany("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", list(values.items()))

    def metas(self, prefix: str) -> dict[str, str]:
        rows = self._conn().execute("SELECT name, value FROM meta WHERE substr(name, 1, ?) = ?", (len(prefix), prefix))
        return {name[len(prefix):]: value for name, value in rows}

    # ---- the forwarder's side ------------------------------------------------------------------
    def pending(self, limit: int) -> list[Pending]:
        """The oldest alerts waiting; a stored body that is no longer a valid alert goes to the dead letters."""
        rows = self._conn().execute("SELECT seq, created_at, body FROM outbox ORDER BY seq LIMIT ?", (limit,))
        out: list[Pending] = []
        for seq, created, body in rows.fetchall():
            try:
                out.append((seq, created, Alert.model_validate_json(body)))
            except ValidationError as exc:
                self.dead_letter(seq, f"stored alert is invalid: {exc.errors()[0]['msg']}")
        return out

    def ack(self, seqs: list[int], now: float | None = None) -> None:
        """The hub has the alerts: move them from the outbox to the list of sent ids."""
        if not seqs:
            return
        now = time.time() if now is None else now
        marks = ",".join("?" * len(seqs))
        with self._tx() as c:
            c.execute(f"INSERT OR IGNORE INTO sent (alert_id, state, acked_at) "
                      f"SELECT alert_id, state, ? FROM outbox WHERE seq IN ({marks})", (now, *seqs))
            c.execute(f"DELETE FROM outbox WHERE seq IN ({marks})", seqs)
            c.execute("DELETE FROM sent WHERE acked_at < ?", (now - SENT_KEEP_S,))

    def attempted(self, seqs: list[int]) -> None:
        if seqs:
            marks = ",".join("?" * len(seqs))
            self._conn().execute(f"UPDATE outbox SET attempts = attempts + 1 WHERE seq IN ({marks})", seqs)

    def dead_letter(self, seq: int, reason: str) -> None:
        """The hub refused an alert as invalid: keep it aside (never dropped) and stop retrying it."""
        with self._tx() as c:
            c.execute("INSERT OR REPLACE INTO dead_letter (alert_id, state, body, reason, at) "
                      "SELECT alert_id, state, body, ?, ? FROM outbox WHERE seq = ?", (reason, time.time(), seq))
            c.execute("DELETE FROM outbox WHERE seq = ?", (seq,))

    def dead_message(self, topic: str, payload: bytes, reason: str, now: float | None = None) -> None:
        """Keep a message the agent failed on (not bad input: a fault of ours) for a person to look at; the
        newest DEAD_MESSAGES_KEEP are kept."""
        with self._tx() as c:
            c.execute("INSERT INTO dead_message (topic, payload, reason, at) VALUES (?, ?, ?, ?)",
                      (topic, payload, reason[:2000], time.time() if now is None else now))
            c.execute("DELETE FROM dead_message WHERE id <= (SELECT max(id) FROM dead_message) - ?",
                      (DEAD_MESSAGES_KEEP,))

    def dead_messages(self) -> list[tuple[str, bytes, str]]:
        rows = self._conn().execute("SELECT topic, payload, reason FROM dead_message ORDER BY id")
        return [(str(t), bytes(p), str(r)) for t, p, r in rows]

    def oldest(self) -> float | None:
        """When the oldest alert still waiting for the hub was committed (epoch seconds)."""
        row = self._conn().execute("SELECT min(created_at) FROM outbox").fetchone()
        return float(row[0]) if row and row[0] is not None else None

    def depth(self) -> int:
        return int(self._conn().execute("SELECT count(*) FROM outbox").fetchone()[0])

    def dead_count(self) -> int:
        return int(self._conn().execute("SELECT count(*) FROM dead_letter").fetchone()[0])


def outbox_error(exc: sqlite3.Error) -> str:
    """A metrics label for an outbox failure."""
    text = str(exc).lower()
    if "full" in text:
        return "disk_full"
    if "locked" in text or "busy" in text:
        return "locked"
    if "readonly" in text or "read-only" in text:
        return "read_only"
    return "io_error" if "i/o" in text or "disk" in text else "other"
