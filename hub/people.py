"""People and machines who may call the hub, managed while it runs: user accounts (a name, a unit, a role,
an Argon2id password hash from argon2-cffi), their sign-in sessions, and API keys added through the API
beside those of hub.yaml.

- **Passwords** are hashed with Argon2id (argon2-cffi's RFC 9106 low-memory profile) and verified in
  constant time by the library; a hash made with weaker parameters is upgraded at the next sign-in.
- **Wrong passwords are counted per account**, from whatever addresses they come (beside the per-address
  limit of the API's guard): `lock_after` in a row lock the account for `lock_for`, doubled at each further
  lock without a right password between (at most a day); a locked account refuses the right password too,
  until the lock passes or an administrator unlocks it. The counters are in the database, so every replica
  sees them. The refusal says no more than a wrong password does.
- **Sessions** are random bearer tokens (`gws_` + 32 bytes, URL-safe); only their SHA-256 is stored, with an
  expiry (`SESSION_TTL`). Disabling a person, or changing their password, ends their sessions at once.
- **Keys** added through the API are kept hashed like hub.yaml's; a disabled key stops working at once in
  this process and within `CACHE_S` in the other replicas.

Reads of sessions and keys go through a short cache, so a request costs no query in the common case.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, delete, select, text
from sqlalchemy.orm import Session

from hub import audit, datakey
from hub.config import ApiKey, hash_key
from hub.errors import Conflict, NotFound
from hub.models import Contact, KeyRow, User, UserSession
from hub.store import Store

PersonRole = Literal["operator", "viewer", "admin"]
SESSION_PREFIX = "gws_"
logger = logging.getLogger(__name__)
SESSION_TTL = timedelta(hours=12)
MAX_LOCK_S = 86400.0  # the longest lock an account gets, however often it is locked
CACHE_S = 2.0
MIN_PASSWORD = 8
_hasher = PasswordHasher()
_DUMMY = _hasher.hash("not a password of anyone")  # verified against for unknown names: the same time spent


@dataclass(frozen=True, slots=True)
class Person:
    username: str
    name: str
    unit: str | None
    role: PersonRole
    disabled: bool = False
    locked_until: datetime | None = None


def token_hash(token: str) -> str:
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


def is_session_token(token: str) -> bool:
    return token.startswith(SESSION_PREFIX)


class People:
    def __init__(self, store: Store, file_keys: list[ApiKey], lock_after: int = 10, lock_for: float = 900.0) -> None:
        self.store = store
        self.file_keys = file_keys
        self.lock_after, self.lock_for = lock_after, lock_for
        self._lock = threading.Lock()
        self._keys: tuple[float, list[ApiKey]] | None = None
        self._sessions: dict[str, tuple[float, Person | None, datetime | None]] = {}

    # ---- people -------------------------------------------------------------------------------
    def _check(self, unit: str | None, role: str) -> None:
        if role not in ("operator", "viewer", "admin"):
            raise Conflict(f"role {role!r} is not one of operator, viewer, admin", "bad_role", role=role)
        if role != "admin" and unit is None:
            raise Conflict(f"a {role} works for a unit", "needs_unit", action="user")
        if unit is not None and unit not in self.store.org.units:
            raise Conflict(f"{unit!r} is not a unit of the org tree", "needs_unit", action="user")

    @staticmethod
    def _password(password: str) -> str:
        if len(password) < MIN_PASSWORD:
            raise Conflict(f"a password has at least {MIN_PASSWORD} characters", "weak_password", min=MIN_PASSWORD)
        return _hasher.hash(password)

    def add(self, username: str, name: str, unit: str | None, role: str, password: str) -> Person:
        self._check(unit, role)
        pw = self._password(password)
        now = self.store.now()
        with self.store.transaction() as s:
            if s.get(User, username) is not None:
                raise Conflict(f"user {username!r} exists", "exists", username=username)
            s.add(User(username=username, name=name, unit=unit, role=role, password_hash=pw, disabled=False,
                       created_at=now, updated_at=now))
        return Person(username, name, unit, role)  # type: ignore[arg-type]

    def change(self, username: str, *, name: str | None = None, unit: str | None = None, role: str | None = None,
               password: str | None = None, disabled: bool | None = None, clear_unit: bool = False) -> Person:
        with self.store.transaction() as s:
            u = s.get(User, username, with_for_update=True)
            if u is None:
                raise NotFound(f"no user {username}")
            new_unit = None if clear_unit else (unit if unit is not None else u.unit)
            new_role = role or u.role
            self._check(new_unit, new_role)
            if name is not None:
                u.name = name
            u.unit, u.role = new_unit, new_role
            if password is not None:
                u.password_hash = self._password(password)
            if disabled is not None:
                u.disabled = disabled
            u.updated_at = self.store.now()
            if password is not None or disabled or unit is not None or role is not None or clear_unit:
                s.execute(delete(UserSession).where(UserSession.username == username))  # sign in again
            person = _person(u)
        self._forget(username)
        return person

    # ---- contact points (issue 26) -------------------------------------------------------------
    def contacts(self, username: str) -> Contact | None:
        with self.store.reading() as s:
            if s.get(User, username) is None:
                raise NotFound(f"no user {username}")
            return s.get(Contact, username)

    def set_contacts(self, username: str, **points: str | None) -> Contact:
        """Replace a person's contact points (None or "" clears one)."""
        with self.store.transaction() as s:
            if s.get(User, username) is None:
                raise NotFound(f"no user {username}")
            c = s.get(Contact, username, with_for_update=True)
            if c is None:
                c = Contact(username=username, updated_at=self.store.now())
                s.add(c)
            for k, v in points.items():
                setattr(c, k, v or None)
            c.updated_at = self.store.now()
        return c

    @staticmethod
    def seal_contacts(engine: Engine) -> int:
        """At start: every stored contact point sealed with the newest data key (legacy plain text sealed for
        the first time, values under an older key re-sealed: key rotation). Returns the rows rewritten."""
        cols = ("mobile", "email", "wecom_user", "dingtalk_mobile")
        done = 0
        with engine.begin() as conn:
            for row in conn.execute(text(f"SELECT username, {', '.join(cols)} FROM contacts")).all():
                try:
                    values = {c: (datakey.reseal(v) if v is not None else None)
                              for c, v in zip(cols, row[1:], strict=True)}
                except ValueError:  # sealed with a key not given: left as it is, said once per person
                    logger.error("the contact points of %s are sealed with a data key this hub was not given "
                                 "(GRIDWATCH_DATA_KEYS: put the old key after the new one)", row[0])
                    continue
                conn.execute(text(f"UPDATE contacts SET {', '.join(f'{c} = :{c}' for c in cols)} WHERE username = :u"),
                             {**values, "u": row[0]})
                done += 1
        return done

    def names(self, usernames: list[str]) -> dict[str, tuple[str, Contact | None]]:
        """Display names and contact points of these people."""
        with self.store.reading() as s:
            users = {u.username: u.name for u in s.scalars(select(User).where(User.username.in_(usernames)))}
            found = {c.username: c for c in s.scalars(select(Contact).where(Contact.username.in_(usernames)))}
        return {u: (users.get(u, u), found.get(u)) for u in usernames}

    def everyone(self) -> list[Person]:
        with Session(self.store.engine) as s:
            return [_person(u) for u in s.scalars(select(User).order_by(User.username))]

    def get(self, username: str) -> Person | None:
        with Session(self.store.engine) as s:
            u = s.get(User, username)
            return None if u is None else _person(u)

    # ---- sessions -----------------------------------------------------------------------------
    def login(self, username: str, password: str) -> tuple[str, Person, datetime] | None:
        """A new session for a right name and password of an enabled, unlocked person; None otherwise (the same
        time is spent on an unknown name as on a wrong password). A wrong password counts against the account."""
        now = self.store.now()
        with Session(self.store.engine) as s:
            u = s.get(User, username)
            stored = u.password_hash if u is not None else _DUMMY
            try:
                _hasher.verify(stored, password)
                right = True
            except (VerificationError, InvalidHashError):
                right = False
            if u is None:
                return None
            locked = u.locked_until is not None and u.locked_until > now
            if not right:
                s.close()
                self._wrong(username, now)
                return None
            if u.disabled or locked:
                return None
            rehash = _hasher.check_needs_rehash(stored)
        token = SESSION_PREFIX + secrets.token_urlsafe(32)
        expires = now + SESSION_TTL
        with self.store.transaction() as s:
            u = s.get(User, username, with_for_update=True)
            if u is None or u.disabled:
                return None
            if rehash:
                u.password_hash = _hasher.hash(password)
            u.failed_logins, u.locks, u.locked_until = 0, 0, None
            s.add(UserSession(token_hash=token_hash(token), username=username, created_at=now, expires_at=expires))
            s.execute(delete(UserSession).where(UserSession.username == username, UserSession.expires_at < now))
            person = _person(u)
        return token, person, expires

    def _wrong(self, username: str, now: datetime) -> None:
        """One more wrong password for this account: past `lock_after` in a row, lock it (longer each time)."""
        with self.store.transaction() as s:
            u = s.get(User, username, with_for_update=True)
            if u is None:
                return
            u.failed_logins = (u.failed_logins or 0) + 1
            if u.failed_logins < self.lock_after:
                return
            u.locks = (u.locks or 0) + 1
            u.failed_logins = 0
            u.locked_until = now + timedelta(seconds=min(self.lock_for * 2 ** (u.locks - 1), MAX_LOCK_S))
            audit.append_in(s, audit.Act(username, "account_locked", target=f"users/{username}", detail={
                "until": u.locked_until.isoformat(), "wrong_passwords": self.lock_after, "lock": u.locks}), now)
            logger.warning("account %s locked until %s after %d wrong passwords in a row (lock %d)", username,
                           u.locked_until.isoformat(), self.lock_after, u.locks)

    def unlock(self, username: str) -> Person:
        """An administrator lifts the lock and clears the counters."""
        with self.store.transaction() as s:
            u = s.get(User, username, with_for_update=True)
            if u is None:
                raise NotFound(f"no user {username!r}")
            u.failed_logins, u.locks, u.locked_until = 0, 0, None
            return _person(u)

    def logout(self, token: str) -> None:
        h = token_hash(token)
        with self.store.transaction() as s:
            s.execute(delete(UserSession).where(UserSession.token_hash == h))
        with self._lock:
            self._sessions.pop(h, None)

    def session(self, token: str) -> Person | None:
        """The person a session token belongs to, while it is valid and they are enabled."""
        h = token_hash(token)
        now_m = time.monotonic()
        with self._lock:
            hit = self._sessions.get(h)
        if hit is None or now_m - hit[0] > CACHE_S:
            with Session(self.store.engine) as s:
                row = s.execute(select(UserSession.expires_at, User).join(User, User.username == UserSession.username)
                                .where(UserSession.token_hash == h)).first()
            person, expires = (None, None) if row is None else (_person(row[1]), row[0])
            hit = (now_m, person, expires)
            with self._lock:
                if len(self._sessions) > 10_000:
                    self._sessions.clear()
                self._sessions[h] = hit
        _, person, expires = hit
        if person is None or person.disabled or expires is None or expires <= self.store.now():
            return None
        return person

    def _forget(self, username: str) -> None:
        with self._lock:
            for h in [h for h, (_, p, _) in self._sessions.items() if p is not None and p.username == username]:
                del self._sessions[h]

    # ---- machine keys -------------------------------------------------------------------------
    def keys(self) -> list[ApiKey]:
        """hub.yaml's keys and the enabled keys added through the API (cached for CACHE_S)."""
        now_m = time.monotonic()
        cached = self._keys
        if cached is not None and now_m - cached[0] <= CACHE_S:
            return cached[1]
        with Session(self.store.engine) as s:
            rows = list(s.scalars(select(KeyRow).where(KeyRow.disabled_at.is_(None))))
        live = [ApiKey(name=r.name, role=r.role, unit=r.unit, grids=r.grids, hash=r.hash)  # type: ignore[arg-type]
                for r in rows]
        keys = [*self.file_keys, *live]
        self._keys = (now_m, keys)
        return keys

    def add_key(self, name: str, role: str, unit: str | None, grids: list[str] | None, actor: str) -> str:
        """A new machine key; the key itself is returned once and never stored."""
        if any(k.name == name for k in self.file_keys):
            raise Conflict(f"key {name!r} is in hub.yaml", "exists", name=name)
        key = "gwk_" + secrets.token_urlsafe(32)
        spec = ApiKey(name=name, role=role, unit=unit, grids=grids, hash=hash_key(key))  # type: ignore[arg-type]
        if spec.unit is not None and spec.unit not in self.store.org.units:
            raise Conflict(f"{unit!r} is not a unit of the org tree", "needs_unit", action="key")
        with self.store.transaction() as s:
            old = s.get(KeyRow, name, with_for_update=True)
            if old is not None and old.disabled_at is None:
                raise Conflict(f"key {name!r} exists", "exists", name=name)
            if old is not None:
                s.delete(old)
                s.flush()
            s.add(KeyRow(name=name, role=role, unit=unit, grids=grids, hash=spec.hash, created_at=self.store.now(),
                         disabled_at=None, actor=actor))
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


def _person(u: User) -> Person:
    return Person(u.username, u.name, u.unit, u.role, u.disabled, u.locked_until)  # type: ignore[arg-type]
