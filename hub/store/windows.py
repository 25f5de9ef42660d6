"""The maintenance windows not yet over, cached per hub process: intake asks on every batch, the database at
most once a second."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from hub.store.models import Maintenance


class WindowCache:
    """The windows not yet over, read at most once a second per hub process (intake asks on every batch).
    A window set or cancelled in this process is seen at once; one set through another replica within a
    second (`TTL`)."""

    TTL = 1.0

    def __init__(self) -> None:
        self._rows: list[Maintenance] = []
        self._at: datetime | None = None

    def get(self, s: Session, now: datetime) -> list[Maintenance]:
        if self._at is None or abs((now - self._at).total_seconds()) >= self.TTL:
            q = select(Maintenance).where(Maintenance.cancelled_at.is_(None),
                                          or_(Maintenance.ends_at.is_(None), Maintenance.ends_at > now))
            self._rows = list(s.scalars(q))
            for w in self._rows:
                s.expunge(w)  # read-only beyond this session
            self._at = now
        return [w for w in self._rows if w.starts_at <= now and (w.ends_at is None or w.ends_at > now)]

    def invalidate(self) -> None:
        self._at = None
