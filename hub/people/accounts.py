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
  is sealed at rest (hub.store.datakey), each time step is accepted once (a code cannot be replayed), and ten
  recovery codes, kept as SHA-256 hashes, each work once. A person of such a role without one gets a session
  limited to enrolling; a password older than `sign_in.password_max_age` limits it to changing the password.
- **Passwords** follow a policy: at least `sign_in.password_min` characters, not one of the 30,000 most
  common passwords (zxcvbn's list), not containing the username.
- **Keys** added through the API are kept hashed like hub.yaml's; a disabled key stops working at once in
  this process and within `CACHE_S` in the other replicas.

Reads of sessions and keys go through a short cache, so a request costs no query in the common case.
"""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from hub.config import ADMINS
from hub.people.contacts import Contacts
from hub.people.model import PERSON_ROLES, Login, Person, Signed, is_session_token, person_of, token_hash
from hub.people.passwords import hashed, verify
from hub.people.second_factor import SecondFactor
from hub.people.sessions import Sessions
from hub.policy.errors import Conflict, NotFound
from hub.store.models import Contact, RecoveryCode, User, UserSession

__all__ = ["Login", "People", "Person", "Signed", "is_session_token", "token_hash"]


class People(Sessions, SecondFactor, Contacts):
    """Accounts (add, change, remove, one's own password) over the parts: sessions and lockout (`sessions`,
    `passwords`), the second factor, machine keys and contact points."""

    def _check(self, unit: str | None, role: str) -> None:
        if role not in PERSON_ROLES:
            raise Conflict(f"the role is not one of {', '.join(PERSON_ROLES)}", "bad_role")
        if role in ADMINS and unit is not None:
            raise Conflict("an administrator works for no unit", "needs_unit", action="user")
        if role not in ADMINS and unit is None:
            raise Conflict(f"a {role} works for a unit", "needs_unit", action="user")
        if unit is not None and unit not in self.store.org.units:
            raise Conflict("the unit is not a unit of the org tree", "needs_unit", action="user")

    def _password(self, password: str, username: str) -> str:
        """The password's Argon2id hash, if the policy accepts it (a Conflict saying why otherwise)."""
        return hashed(self.policy, password, username)

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
            new_role = role or u.role
            new_unit = None if clear_unit or new_role in ADMINS else (unit if unit is not None else u.unit)
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
            person = person_of(u)
        self._forget(username)
        return person

    def everyone(self) -> list[Person]:
        with Session(self.store.engine) as s:
            return [person_of(u) for u in s.scalars(select(User).order_by(User.username))]

    def get(self, username: str) -> Person | None:
        with Session(self.store.engine) as s:
            u = s.get(User, username)
            return None if u is None else person_of(u)

    def change_password(self, username: str, old: str, new: str, token: str | None) -> Person:
        """A person changes their own password (the old one proves it is them); their other sessions end and
        this one, if an expired password limited it, is freed."""
        now = self.store.now()
        with Session(self.store.engine) as s:
            u = s.get(User, username)
            if u is None:
                raise NotFound("no such user")
            if u.locked_until is not None and u.locked_until > now:
                raise Conflict("the account is locked after wrong passwords; try again later", "locked",
                               until=u.locked_until.isoformat())
            right = verify(u.password_hash, old)
        if not right:  # counted as a wrong sign-in: a stolen session cannot guess the password for ever
            self._wrong(username, now)
            raise Conflict("the current password is wrong", "wrong_password")
        keep = token_hash(token) if token else ""
        with self.store.transaction() as s:
            u = s.get(User, username, with_for_update=True)
            assert u is not None
            u.password_hash = self._password(new, username)
            u.password_changed_at = u.updated_at = self.store.now()
            s.execute(delete(UserSession).where(UserSession.username == username, UserSession.token_hash != keep))
            s.execute(update(UserSession).where(UserSession.token_hash == keep, UserSession.limited == "password")
                      .values(limited=None))
            person = person_of(u)
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
            person = person_of(u)
        self._forget(username)
        return person
