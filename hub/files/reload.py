"""Live reload of the org tree, the SLA policies, the routing and the calendars folder (a year imported takes
effect without a restart): a valid new file is swapped in, an invalid
one is logged and the last good version keeps running. Open cases keep the policy snapshotted when they
opened. The routing is checked against the org tree: an org file that would leave a route pointing at a
unit that no longer exists is refused too (the routing names the unit; change both, routing first)."""

from __future__ import annotations

import hashlib
import logging
import threading
from pathlib import Path
from typing import Protocol

from gridwatch.core.errors import ConfigError
from gridwatch.core.yamlconf import load
from hub.audit import trail as audit
from hub.files.calendar_files import load_calendars
from hub.policy.org import Org, OrgFile
from hub.policy.routing import check, load_routing
from hub.policy.sla import SlaFile
from hub.store.cases import Store

logger = logging.getLogger(__name__)


class Reloadable(Protocol):
    def reload(self) -> bool | None: ...


class ConfigWatcher:
    def __init__(self, store: Store, org: Path, sla: Path, interval: float = 1.0, routing: Path | None = None,
                 calendars: Path | None = None) -> None:
        self.store, self.org, self.sla, self.routing, self.interval = store, org, sla, routing, interval
        self.calendars = calendars
        self.paths = [p for p in (org, sla, routing, calendars) if p is not None]
        self.also: list[Reloadable] = []
        """Others reloaded on the same beat (the notification files), each keeping its last good version."""
        self._sigs = {p: self._sig(p) for p in self.paths}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def _sig(p: Path) -> tuple[tuple[str, int, int], ...] | None:
        """A file's (name, mtime, size); a folder's, those of its YAML files."""
        try:
            files = sorted(p.glob("*.yaml")) if p.is_dir() else [p]
            return tuple((f.name, (st := f.stat()).st_mtime_ns, st.st_size) for f in files)
        except OSError:
            return None

    def check(self) -> dict[str, bool]:
        """Reload what changed; {file name: True if swapped in, False if rejected}."""
        done: dict[str, bool] = {}
        for path in self.paths:
            sig = self._sig(path)
            if sig == self._sigs[path]:
                continue
            self._sigs[path] = sig
            try:
                self._load(path)
                done[path.name] = True
                logger.info("reloaded %s", path)
                self._audit(path, "ok", [])
            except ConfigError as exc:
                for line in exc.problems:
                    logger.error("reload rejected: %s", line)
                logger.error("keeping the last good %s", path.name)
                done[path.name] = False
                self._audit(path, "refused", exc.problems)
        for other in self.also:
            try:
                other.reload()  # logs and keeps its last good version itself
            except Exception:  # noqa: BLE001 - the watcher keeps watching
                logger.exception("reloading %s failed", type(other).__name__)
        return done

    def _audit(self, path: Path, outcome: audit.Outcome, problems: list[str]) -> None:
        """A reload in the audit trail, with the SHA-256 of what was read (a folder: of its YAML files)."""
        h = hashlib.sha256()
        try:
            for f in sorted(path.glob("*.yaml")) if path.is_dir() else [path]:
                h.update(f.name.encode() + b"\0" + f.read_bytes())
        except OSError:
            pass
        try:
            audit.append(self.store, audit.Act("system", "config_reload", outcome, target=str(path),
                                               detail={"sha256": h.hexdigest(), "problems": problems[:20]}))
        except Exception:  # noqa: BLE001 - the reload stands; the record's loss is logged
            logger.exception("audit: could not record the reload of %s", path)

    def _load(self, path: Path) -> None:
        if path == self.org:
            org = Org(load(OrgFile, path))
            if self.routing is not None:
                problems = check(self.store.routing.spec, org, self.routing)
                if problems:
                    raise ConfigError([f"{path}: the routing in force would break: {p}" for p in problems])
            self.store.org = org
        elif path == self.sla:
            self.store.sla = load(SlaFile, path)
        elif path == self.calendars:
            self.store.calendars = load_calendars(path)
        else:
            self.store.routing = load_routing(path, self.store.org)

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
