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
  expiry (`sign_in.session_max`) and the time it was last used (`sign_in.session_idle`, the idle timeout).
  Disabling a person, or changing their password, ends their sessions at once. The board holds its session in
  an HttpOnly cookie (hub.api.people), and a key typed into the board becomes such a session too.
- **The second factor** is TOTP (RFC 6238, pyotp), required of the roles in `sign_in.two_factor`: the secret
  is sealed at rest (hub.datakey), each time step is accepted once (a code cannot be replayed), and ten
  recovery codes, kept as SHA-256 hashes, each work once. A person of such a role without one gets a session
  limited to enrolling; a password older than `sign_in.password_max_age` limits it to changing the password.
- **Passwords** follow a policy: at least `sign_in.password_min` characters, not one of the 30,000 most
  common passwords (zxcvbn's list), not containing the username.
- **Keys** added through the API are kept hashed like hub.yaml's; a disabled key stops working at once in
  this process and within `CACHE_S` in the other replicas.

Reads of sessions and keys go through a short cache, so a request costs no query in the common case.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, delete, func, select, text, update
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from hub import audit, datakey
from hub.config import ApiKey, SignIn, hash_key
from hub.errors import Conflict, NotFound
from hub.models import Contact, KeyRow, RecoveryCode, User, UserSession
from hub.store import Store

PersonRole = Literal["operator", "viewer", "admin"]
SESSION_PREFIX = "gws_"
logger = logging.getLogger(__name__)
MAX_LOCK_S = 86400.0  # the longest lock an account gets, however often it is locked
CACHE_S = 2.0
TOUCH_S = 30.0  # a session's last use is written at most this often (the idle timeout's grain)
ISSUER = "gridwatch"  # the name an authenticator app shows beside the account
RECOVERY_CODES = 10
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
    two_factor: bool = False  # a TOTP secret enrolled
    removed: bool = False


@dataclass(frozen=True, slots=True)
class Login:
    """A new session: the token (for the cookie or the Authorization header), whom it stands for, until when,
    and what it is limited to ("two_factor", "password") until put right."""

    token: str
    person: Person | None
    key: ApiKey | None
    expires: datetime
    limited: str | None


@dataclass(frozen=True, slots=True)
class Signed:
    """Whom a valid session stands for: a person, or a key signed in on the board."""

    person: Person | None
    key: ApiKey | None
    limited: str | None


def token_hash(token: str) -> str:
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


def is_session_token(token: str) -> bool:
    return token.startswith(SESSION_PREFIX)


class People:
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

    # ---- people -------------------------------------------------------------------------------
    def _check(self, unit: str | None, role: str) -> None:
        if role not in ("operator", "viewer", "admin"):
            raise Conflict(f"role {role!r} is not one of operator, viewer, admin", "bad_role", role=role)
        if role != "admin" and unit is None:
            raise Conflict(f"a {role} works for a unit", "needs_unit", action="user")
        if unit is not None and unit not in self.store.org.units:
            raise Conflict(f"{unit!r} is not a unit of the org tree", "needs_unit", action="user")

    def _password(self, password: str, username: str) -> str:
        """The password's Argon2id hash, if the policy accepts it (a Conflict saying why otherwise)."""
        least = self.policy.password_min
        if len(password) < least:
            raise Conflict(f"a password has at least {least} characters", "weak_password", min=least,
                           why="short")
        if password.lower() in _common():
            raise Conflict("that password is one of the most common ones; choose another", "weak_password",
                           min=least, why="common")
        if len(username) >= 3 and username.lower() in password.lower():
            raise Conflict("a password may not contain the username", "weak_password", min=least, why="username")
        return _hasher.hash(password)

    def add(self, username: str, name: str, unit: str | None, role: str, password: str) -> Person:
        self._check(unit, role)
        pw = self._password(password, username)
        now = self.store.now()
        with self.store.transaction() as s:
            if s.get(User, username) is not None:
                raise Conflict(f"user {username!r} exists", "exists", username=username)
            s.add(User(username=username, name=name, unit=unit, role=role, password_hash=pw, disabled=False,
                       created_at=now, updated_at=now, password_changed_at=now))
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
            if password is not None:  # an administrator's reset: the person changes it at the next sign-in
                u.password_hash = self._password(password, username)
                u.password_changed_at = None if self.policy.password_max_age else self.store.now()
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
    def login(self, username: str, password: str, code: str | None = None) -> Login | str | None:
        """A new session for a right name and password (and second factor, once enrolled) of an enabled,
        unlocked person. None for a wrong name or password (the same time is spent on an unknown name); "code"
        when the password is right but the second factor is missing, "wrong_code" when it is wrong. Wrong
        passwords and wrong codes count against the account."""
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
            if u.disabled or locked or u.removed_at is not None:
                return None
            rehash = _hasher.check_needs_rehash(stored)
            enrolled = u.totp_secret is not None
        if enrolled and not code:
            return "code"
        token = SESSION_PREFIX + secrets.token_urlsafe(32)
        expires = now + timedelta(seconds=self.policy.session_max)
        with self.store.transaction() as s:
            u = s.get(User, username, with_for_update=True)
            if u is None or u.disabled:
                return None
            if enrolled and not (_totp_ok(u, code or "", now) or _recovery_ok(s, u, code or "", now)):
                wrong_code = True
            else:
                wrong_code = False
                if rehash:
                    u.password_hash = _hasher.hash(password)
                u.failed_logins, u.locks, u.locked_until = 0, 0, None
                limited = self._limit(u, now)
                s.add(UserSession(token_hash=token_hash(token), username=username, created_at=now, expires_at=expires,
                                  last_seen=now, limited=limited))
                s.execute(delete(UserSession).where(UserSession.username == username, UserSession.expires_at < now))
                person = _person(u)
        if wrong_code:
            self._wrong(username, now)
            return "wrong_code"
        return Login(token, person, None, expires, limited)

    def _limit(self, u: User, now: datetime) -> str | None:
        """What a new session of this person must put right before anything else: enrol a second factor, or
        change an expired password."""
        if u.role in self.policy.two_factor and u.totp_secret is None:
            return "two_factor"
        since = u.password_changed_at or u.created_at
        if self.policy.password_max_age is not None and (now - since).total_seconds() > self.policy.password_max_age:
            return "password"
        return None

    def key_login(self, key: str, client: str) -> Login | None:
        """The board signed in with a key (a wall display's, an operator's): a session like a person's, held
        in the same cookie, so the key itself stays out of the page. Edge keys do not sign in."""
        k = next((k for k in self.keys() if k.matches(key)), None)
        if k is None or k.role == "edge" or not k.allows(client):
            return None
        now = self.store.now()
        token = SESSION_PREFIX + secrets.token_urlsafe(32)
        expires = now + timedelta(seconds=self.policy.session_max)
        with self.store.transaction() as s:
            s.add(UserSession(token_hash=token_hash(token), username=None, key_name=k.name, created_at=now,
                              expires_at=expires, last_seen=now))
            s.execute(delete(UserSession).where(UserSession.key_name == k.name, UserSession.expires_at < now))
        return Login(token, None, k, expires, None)

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

    def session(self, token: str) -> Signed | None:
        """Who a session token stands for (a person, or a key signed in on the board), while it is within its
        lifetime, has been used within the idle timeout, and the person or key is still enabled."""
        h = token_hash(token)
        now_m, now = time.monotonic(), self.store.now()
        with self._lock:
            hit = self._sessions.get(h)
        if hit is None or now_m - hit[0] > CACHE_S:
            with Session(self.store.engine) as s:
                row = s.get(UserSession, h)
                u = s.get(User, row.username) if row is not None and row.username is not None else None
                if row is None:
                    signed = None
                elif u is not None:
                    signed = Signed(_person(u), None, row.limited)
                else:
                    k = next((k for k in self.keys() if k.name == row.key_name), None)
                    signed = Signed(None, k, None) if k is not None else None
                seen = (row.last_seen or row.created_at) if row is not None else None
                hit = (now_m, signed, row.expires_at if row is not None else None, seen)
            with self._lock:
                if len(self._sessions) > 10_000:
                    self._sessions.clear()
                self._sessions[h] = hit
        _, signed, expires, seen = hit
        if signed is None or expires is None or seen is None or expires <= now:
            return None
        if signed.person is not None and signed.person.disabled:
            return None
        if (now - seen).total_seconds() > self.policy.session_idle:
            self.logout(token)
            return None
        if (now - seen).total_seconds() > TOUCH_S:  # used now: the idle clock starts again
            with self.store.transaction() as s:
                s.execute(update(UserSession).where(UserSession.token_hash == h).values(last_seen=now))
            with self._lock:
                self._sessions[h] = (hit[0], signed, expires, now)
        return signed

    def lift(self, token: str, limit: str) -> None:
        """This session put right what limited it (enrolled a second factor, changed an expired password)."""
        h = token_hash(token)
        with self.store.transaction() as s:
            s.execute(update(UserSession).where(UserSession.token_hash == h, UserSession.limited == limit)
                      .values(limited=None))
        with self._lock:
            self._sessions.pop(h, None)

    def _forget(self, username: str) -> None:
        with self._lock:
            for h in [h for h, (_, sg, _, _) in self._sessions.items()
                      if sg is not None and sg.person is not None and sg.person.username == username]:
                del self._sessions[h]

    # ---- the second factor (TOTP, RFC 6238, with pyotp) --------------------------------------------
    def begin_totp(self, username: str) -> str:
        """A new TOTP secret for this person, kept (sealed) until a code from it confirms the enrolment; its
        otpauth:// URI for an authenticator app is returned (and shown as a QR code)."""
        secret = pyotp.random_base32()
        with self.store.transaction() as s:
            u = s.get(User, username, with_for_update=True)
            if u is None:
                raise NotFound(f"no user {username!r}")
            u.totp_pending = secret
        return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)

    def confirm_totp(self, username: str, code: str) -> list[str]:
        """A code from the pending secret makes it the person's second factor; the recovery codes returned are
        shown once (only their hashes are kept). Other sessions of the person end."""
        now = self.store.now()
        with self.store.transaction() as s:
            u = s.get(User, username, with_for_update=True)
            if u is None:
                raise NotFound(f"no user {username!r}")
            if u.totp_pending is None:
                raise Conflict("no enrolment begun: ask for a new secret first", "no_enrolment")
            trial = User(totp_secret=u.totp_pending, totp_step=None)
            if not _totp_ok(trial, code, now):
                raise Conflict("that code is not the authenticator's current one", "wrong_code")
            u.totp_secret, u.totp_pending, u.totp_step = u.totp_pending, None, trial.totp_step
            codes = _new_recovery(s, username)
        return codes

    def new_recovery(self, username: str) -> list[str]:
        """New recovery codes (the old ones stop working)."""
        with self.store.transaction() as s:
            u = s.get(User, username)
            if u is None or u.totp_secret is None:
                raise Conflict("no second factor enrolled", "no_enrolment")
            return _new_recovery(s, username)

    def drop_totp(self, username: str) -> Person:
        """The second factor removed (an administrator's reset for a lost phone): the person enrols again at the
        next sign-in if their role needs one; their sessions end."""
        with self.store.transaction() as s:
            u = s.get(User, username, with_for_update=True)
            if u is None:
                raise NotFound(f"no user {username!r}")
            u.totp_secret = u.totp_pending = None
            u.totp_step = None
            s.execute(delete(RecoveryCode).where(RecoveryCode.username == username))
            s.execute(delete(UserSession).where(UserSession.username == username))
            person = _person(u)
        self._forget(username)
        return person

    def two_factor(self, username: str) -> tuple[bool, int]:
        """Whether the person has a second factor, and how many unused recovery codes they hold."""
        with Session(self.store.engine) as s:
            u = s.get(User, username)
            left = s.scalar(select(func.count()).select_from(RecoveryCode).where(
                RecoveryCode.username == username, RecoveryCode.used_at.is_(None))) or 0
            return (u is not None and u.totp_secret is not None), left

    # ---- one's own password, removal ---------------------------------------------------------------
    def change_password(self, username: str, old: str, new: str, token: str | None) -> Person:
        """A person changes their own password (the old one proves it is them); their other sessions end and
        this one, if an expired password limited it, is freed."""
        with Session(self.store.engine) as s:
            u = s.get(User, username)
            if u is None:
                raise NotFound(f"no user {username!r}")
            try:
                _hasher.verify(u.password_hash, old)
            except (VerificationError, InvalidHashError):
                raise Conflict("the current password is wrong", "wrong_password") from None
        keep = token_hash(token) if token else ""
        with self.store.transaction() as s:
            u = s.get(User, username, with_for_update=True)
            assert u is not None
            u.password_hash = self._password(new, username)
            u.password_changed_at = u.updated_at = self.store.now()
            s.execute(delete(UserSession).where(UserSession.username == username, UserSession.token_hash != keep))
            s.execute(update(UserSession).where(UserSession.token_hash == keep, UserSession.limited == "password")
                      .values(limited=None))
            person = _person(u)
        self._forget(username)
        return person

    def remove(self, username: str) -> Person:
        """An account removed: it can no longer sign in, and the person's contact points, second factor and
        sessions are erased (个人信息删除). The name stays on the records of what they did (timelines, audit)."""
        with self.store.transaction() as s:
            u = s.get(User, username, with_for_update=True)
            if u is None or u.removed_at is not None:
                raise NotFound(f"no user {username!r}")
            u.disabled, u.removed_at = True, self.store.now()
            u.totp_secret = u.totp_pending = None
            u.password_hash = "!removed"
            for table in (Contact, RecoveryCode):
                s.execute(delete(table).where(table.username == username))
            s.execute(delete(UserSession).where(UserSession.username == username))
            person = _person(u)
        self._forget(username)
        return person

    # ---- machine keys -------------------------------------------------------------------------
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
            raise Conflict(f"{unit!r} is not a unit of the org tree", "needs_unit", action="key")
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


def _person(u: User) -> Person:
    return Person(u.username, u.name, u.unit, u.role, u.disabled, u.locked_until,  # type: ignore[arg-type]
                  u.totp_secret is not None, u.removed_at is not None)


@functools.cache
def _common() -> frozenset[str]:
    """The 30,000 most common passwords (zxcvbn's list, from leaked password sets)."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def _totp_ok(u: User, code: str, now: datetime) -> bool:
    """A TOTP code of this person's secret for now (one step either side for clock drift), never one of a step
    already used: the step is kept, so a code seen over a shoulder or replayed is refused."""
    code = code.strip().replace(" ", "")
    if u.totp_secret is None or len(code) != 6 or not code.isdigit():
        return False
    totp = pyotp.TOTP(u.totp_secret)
    at = totp.timecode(now)
    for step in (at - 1, at, at + 1):
        if hmac.compare_digest(totp.generate_otp(step), code) and step > (u.totp_step or -1):
            u.totp_step = step
            return True
    return False


def _recovery_hash(code: str) -> str:
    return "sha256:" + hashlib.sha256(code.strip().lower().replace("-", "").replace(" ", "").encode()).hexdigest()


def _recovery_ok(s: Session, u: User, code: str, now: datetime) -> bool:
    """One of the person's unused recovery codes, used up now."""
    if len(code.strip()) <= 8:
        return False
    row = s.get(RecoveryCode, _recovery_hash(code), with_for_update=True)
    if row is None or row.username != u.username or row.used_at is not None:
        return False
    row.used_at = now
    audit.append_in(s, audit.Act(u.username, "recovery_code_used", target=f"users/{u.username}"), now)
    return True


def _new_recovery(s: Session, username: str) -> list[str]:
    """Ten fresh recovery codes (80 random bits each, as xxxx-xxxx-xxxx-xxxx), the old ones dropped."""
    s.execute(delete(RecoveryCode).where(RecoveryCode.username == username))
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = base64.b32encode(secrets.token_bytes(10)).decode().lower()
        codes.append("-".join(raw[i:i + 4] for i in range(0, 16, 4)))
        s.add(RecoveryCode(hash=_recovery_hash(codes[-1]), username=username, used_at=None))
    return codes
