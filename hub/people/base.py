"""What every part of `People` holds: the store, the keys of hub.yaml, the sign-in policy and the lockout
limits, and the short caches of sessions and keys (a request costs no query in the common case)."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Protocol

from hub.config import ApiKey, SignIn
from hub.people.model import Signed
from hub.store.cases import Store

CACHE_S = 2.0


class CodeSender(Protocol):
    def available(self) -> bool: ...

    def __call__(self, mobile: str, code: str) -> bool: ...


class PeopleBase:
    def __init__(self, store: Store, file_keys: list[ApiKey], lock_after: int = 10, lock_for: float = 900.0,
                 policy: SignIn | None = None) -> None:
        self.store = store
        self.file_keys = file_keys
        self.lock_after, self.lock_for = lock_after, lock_for
        self.policy = policy or SignIn()
        self._lock = threading.Lock()
        self._keys: tuple[float, list[ApiKey]] | None = None
        # token hash -> (monotonic read time, whom it stands for, expiry, last use)
        self._sessions: dict[str, tuple[float, Signed | None, datetime | None, datetime | None]] = {}
        self.sms: CodeSender | None = None
        """Sends sign-in codes by SMS (`hub.notify.codes`); without one (or while no SMS channel is on), people
        without an authenticator enrol one."""

    def _forget(self, username: str) -> None:
        """Drop the cached sessions of this person (disabled, password changed, removed)."""
        with self._lock:
            for h in [h for h, (_, sg, _, _) in self._sessions.items()
                      if sg is not None and sg.person is not None and sg.person.username == username]:
                del self._sessions[h]
