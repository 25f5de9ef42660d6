"""Machine keys: hub.yaml's and those added through the API, kept hashed like hub.yaml's; a disabled key stops
working at once in this process and within `CACHE_S` in the other replicas."""

from __future__ import annotations

import secrets
import time

from sqlalchemy import select
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from hub.config import ApiKey, hash_key
from hub.people.base import CACHE_S, PeopleBase
from hub.policy.errors import Conflict
from hub.store.models import KeyRow


class Keys(PeopleBase):
    def keys(self) -> list[ApiKey]:
        """hub.yaml's keys and the enabled keys added through the API (cached for CACHE_S)."""
        now_m = time.monotonic()
        cached = self._keys
        if cached is not None and now_m - cached[0] <= CACHE_S:
            return cached[1]
        try:
            with Session(self.store.engine) as s:
                rows = list(s.scalars(select(KeyRow).where(KeyRow.disabled_at.is_(None))))
        except (OperationalError, InterfaceError):
            # the database is away (a failover, a restart): the keys last read stand, so the request goes on to
            # its route and gets the 503 every route gives then, instead of failing in the guard
            return cached[1] if cached is not None else list(self.file_keys)
        live = [ApiKey(name=r.name, role=r.role, unit=r.unit, grids=r.grids, hash=r.hash,  # type: ignore[arg-type]
                       sources=r.sources) for r in rows]
        keys = [*self.file_keys, *live]
        self._keys = (now_m, keys)
        return keys

    def add_key(self, name: str, role: str, unit: str | None, grids: list[str] | None, actor: str,
                sources: list[str] | None = None) -> str:
        """A new machine key; the key itself is returned once and never stored."""
        if any(k.name == name for k in self.file_keys):
            raise Conflict(f"key {name!r} is in hub.yaml", "exists", name=name)
        key = "gwk_" + secrets.token_urlsafe(32)
        spec = ApiKey(name=name, role=role, unit=unit, grids=grids, hash=hash_key(key),  # type: ignore[arg-type]
                      sources=sources)
        if spec.unit is not None and spec.unit not in self.store.org.units:
            raise Conflict("the unit is not a unit of the org tree", "needs_unit", action="key")
        with self.store.transaction() as s:
            old = s.get(KeyRow, name, with_for_update=True)
            if old is not None and old.disabled_at is None:
                raise Conflict(f"key {name!r} exists", "exists", name=name)
            if old is not None:
                s.delete(old)
                s.flush()
            s.add(KeyRow(name=name, role=role, unit=unit, grids=grids, hash=spec.hash, created_at=self.store.now(),
                         disabled_at=None, actor=actor, sources=sources))
        self._keys = None
        return key

    def disable_key(self, name: str) -> bool:
        with self.store.transaction() as s:
            row = s.get(KeyRow, name, with_for_update=True)
            if row is None or row.disabled_at is not None:
                return False
            row.disabled_at = self.store.now()
        self._keys = None
        return True

    def key_rows(self) -> list[KeyRow]:
        with Session(self.store.engine, expire_on_commit=False) as s:
            return list(s.scalars(select(KeyRow).order_by(KeyRow.name)))
