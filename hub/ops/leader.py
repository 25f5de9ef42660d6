"""Leadership for work that must run once across hub replicas (the MQTT case-event publisher, the notifier),
and the thread such work runs in (`WokenThread`).

PostgreSQL: a session advisory lock held on a dedicated connection; the server releases it when the leader's
process or connection dies, and another replica takes it at its next try. SQLite: an exclusive `flock` on a
file beside the database, released by the kernel when the leader's process dies (SQLite replicas share one
machine). A leader checks `holds()` before each round of work, so a leader that lost its connection stops.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import zlib
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from sqlalchemy import Engine

from hub.store.db import libpq_conninfo

if TYPE_CHECKING:
    from hub.store.cases import Store

logger = logging.getLogger(__name__)


class Leadership:
    def __init__(self, engine: Engine, name: str) -> None:
        self.engine, self.name = engine, name
        self.key = zlib.crc32(f"gridwatch:{name}".encode())
        self._conn: Any = None
        self._file: IO[bytes] | None = None

    @property
    def leading(self) -> bool:
        return self._conn is not None or self._file is not None

    def try_acquire(self) -> bool:
        if self.leading:
            return self.holds()
        if self.engine.dialect.name == "postgresql":
            return self._try_pg()
        return self._try_file()

    def holds(self) -> bool:
        """Still the leader? (PostgreSQL: the lock's connection answers.)"""
        if self._file is not None:
            return True
        if self._conn is None:
            return False
        try:
            self._conn.execute("SELECT 1")
            return True
        except Exception as e:
            logger.warning("lost the %s lock's connection: %s", self.name, str(e).splitlines()[0][:200])
            self.release()
            return False

    def release(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()  # closing the session releases its advisory locks
            self._conn = None
        if self._file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def _try_pg(self) -> bool:
        import psycopg

        try:
            conn = psycopg.connect(libpq_conninfo(self.engine), autocommit=True, connect_timeout=5)
        except Exception as e:
            logger.warning("cannot reach the database for the %s lock: %s", self.name,
                           str(e).splitlines()[0][:200])
            return False
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
        if row and row[0]:
            self._conn = conn
            return True
        conn.close()
        return False

    def _try_file(self) -> bool:
        db = self.engine.url.database
        if not db or db == ":memory:":
            path = Path(f"/tmp/gridwatch-{os.getuid()}-{self.name}.lock")
        else:
            path = Path(f"{db}.{self.name}.lock")
        f = open(path, "a+b")  # held open while leading
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            return False
        self._file = f
        return True


class WokenThread:
    """A daemon thread running `_run` that the store's commits wake (`Store.on_events`): the MQTT publisher
    and the notifier. Subclasses set `store` and call `WokenThread.__init__`."""

    thread_name = "gridwatch-hub-worker"
    store: Store

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        self.store.on_events.append(self._wake.set)
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._wake.set in self.store.on_events:
            self.store.on_events.remove(self._wake.set)
        if self._thread is not None:
            self._thread.join(10)
