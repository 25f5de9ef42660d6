"""Live reload of the org tree and SLA policies: a valid new file is swapped in, an invalid one is logged
and the last good version keeps running. Open cases keep the policy snapshotted when they opened."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from gridwatch.core.errors import ConfigError
from gridwatch.core.yamlconf import load
from hub.org import Org, OrgFile
from hub.sla import SlaFile
from hub.store import Store

logger = logging.getLogger(__name__)


class ConfigWatcher:
    def __init__(self, store: Store, org: Path, sla: Path, interval: float = 1.0) -> None:
        self.store, self.org, self.sla, self.interval = store, org, sla, interval
        self._sigs = {p: self._sig(p) for p in (org, sla)}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def _sig(p: Path) -> tuple[int, int] | None:
        try:
            st = p.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def check(self) -> dict[str, bool]:
        """Reload what changed; {file name: True if swapped in, False if rejected}."""
        done: dict[str, bool] = {}
        for path in (self.org, self.sla):
            sig = self._sig(path)
            if sig == self._sigs[path]:
                continue
            self._sigs[path] = sig
            try:
                if path == self.org:
                    self.store.org = Org(load(OrgFile, path))
                else:
                    self.store.sla = load(SlaFile, path)
                done[path.name] = True
                logger.info("reloaded %s", path)
            except ConfigError as exc:
                for line in exc.problems:
                    logger.error("reload rejected: %s", line)
                logger.error("keeping the last good %s", path.name)
                done[path.name] = False
        return done

    def start(self) -> None:
        def loop() -> None:
            while not self._stop.wait(self.interval):
                self.check()
        self._thread = threading.Thread(target=loop, name="gridwatch-hub-reload", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
