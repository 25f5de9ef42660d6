"""The notification files in force: `notify.yaml` (`hub.policy.notify_config`) and `rosters.yaml`
(`hub.policy.roster`), loaded together, reloaded when either changes on disk (a refused file is logged and
the last good pair kept), and the channels switched off for want of a secret said once per load.

The serving process holds only this (for `GET /duty` and the metrics); the notifier's own process holds it
inside its `Notifier`. Nothing here sends.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from gridwatch.core.errors import ConfigError
from hub.policy.notify_config import Notify, load_notify
from hub.policy.roster import Rosters, load_rosters
from hub.store.cases import Store
from hub.store.models import User

logger = logging.getLogger(__name__)


@dataclass
class Config:
    notify: Notify
    rosters: Rosters


class NoticeFiles:
    def __init__(self, store: Store, notify_path: Path | None, rosters_path: Path | None) -> None:
        self.store, self.notify_path, self.rosters_path = store, notify_path, rosters_path
        self.cfg = Config(Notify.empty(), Rosters.empty())
        self._sigs: tuple[Any, ...] = ()

    def _sig(self) -> tuple[Any, ...]:
        out = []
        for p in (self.notify_path, self.rosters_path):
            try:
                st = p.stat() if p is not None else None
                out.append((st.st_mtime_ns, st.st_size) if st else None)
            except OSError:
                out.append(None)
        return tuple(out)

    def people(self) -> set[str]:
        with self.store.reading() as s:
            return set(s.scalars(select(User.username)))

    def load(self) -> Config:
        """Read both files; a refused one raises (`reload` keeps the last good pair instead)."""
        self._sigs = self._sig()
        notify = (load_notify(self.notify_path, self.store.org) if self.notify_path is not None
                  else Notify.empty())
        rosters = (load_rosters(self.rosters_path, self.store.org, self.people(), self.store.calendars)
                   if self.rosters_path is not None else Rosters.empty())
        for reason in notify.off.values():
            logger.warning("notification channel off: %s", reason)
        self.cfg = Config(notify, rosters)
        return self.cfg

    def reload(self) -> bool | None:
        """Load again when a file changed: True swapped in, False refused (logged; the last good kept)."""
        if self._sig() == self._sigs:
            return None
        try:
            self.load()
        except ConfigError as exc:
            for line in exc.problems:
                logger.error("notification config rejected: %s", line)
            logger.error("keeping the last good notification config")
            return False
        logger.info("reloaded the notification config")
        return True
