"""Passwords and lockout: Argon2id hashes (argon2-cffi's RFC 9106 low-memory profile, verified in constant
time by the library, upgraded at the next sign-in when made with weaker parameters), the password policy, and
wrong passwords counted per account: `lock_after` in a row lock it for `lock_for`, doubled at each further lock
without a right password between (at most a day). The counters are in the database, so every replica sees them."""

from __future__ import annotations

import functools
import logging
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from hub.audit import trail as audit
from hub.config import SignIn
from hub.people.base import PeopleBase
from hub.people.model import Person, person_of
from hub.policy.errors import Conflict, NotFound
from hub.store.models import User

logger = logging.getLogger(__name__)
MAX_LOCK_S = 86400.0  # the longest lock an account gets, however often it is locked
hasher = PasswordHasher()
DUMMY = hasher.hash("not a password of anyone")  # verified against for unknown names: the same time spent


def verify(stored: str, password: str) -> bool:
    try:
        hasher.verify(stored, password)
        return True
    except (VerificationError, InvalidHashError):
        return False


def hashed(policy: SignIn, password: str, username: str) -> str:
    """The password's Argon2id hash, if the policy accepts it (a Conflict saying why otherwise)."""
    least = policy.password_min
    if len(password) < least:
        raise Conflict(f"a password has at least {least} characters", "weak_password", min=least,
                       why="short")
    if password.lower() in common():
        raise Conflict("that password is one of the most common ones; choose another", "weak_password",
                       min=least, why="common")
    if len(username) >= 3 and username.lower() in password.lower():
        raise Conflict("a password may not contain the username", "weak_password", min=least, why="username")
    return hasher.hash(password)


@functools.cache
def common() -> frozenset[str]:
    """The 30,000 most common passwords (zxcvbn's list, from leaked password sets)."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


class Lockout(PeopleBase):
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
            return person_of(u)
