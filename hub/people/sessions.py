"""Sessions: random bearer tokens (`gws_` + 32 bytes, URL-safe), only their SHA-256 stored, with an expiry
(`sign_in.session_max`) and the time last used (`sign_in.session_idle`, the idle timeout). Disabling a person or
changing their password ends their sessions at once. The board holds its session in an HttpOnly cookie, and a
key typed into the board becomes such a session too. A new session may be limited ("two_factor", "password")
until the person puts that right."""

from __future__ import annotations

import logging
import secrets
import time
from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from hub.config import ADMINS
from hub.people.base import CACHE_S
from hub.people.keys import Keys
from hub.people.model import SESSION_PREFIX, Login, Signed, person_of, token_hash
from hub.people.passwords import DUMMY, Lockout, hasher, verify
from hub.people.second_factor import SMS_RESEND_S, recovery_ok, sms_hash, sms_ok, totp_ok
from hub.store.models import User, UserSession

logger = logging.getLogger(__name__)
TOUCH_S = 30.0  # a session's last use is written at most this often (the idle timeout's grain)


class Sessions(Lockout, Keys):
    def login(self, username: str, password: str, code: str | None = None) -> Login | str | None:
        """A new session for a right name and password (and second factor, once enrolled) of an enabled,
        unlocked person. None for a wrong name or password (the same time is spent on an unknown name); "code"
        when the password is right but the second factor is missing, "wrong_code" when it is wrong, "sms" when
        a code was sent by SMS (a person with a mobile number and no authenticator, `sms` set). Wrong passwords
        and wrong codes count against the account."""
        now = self.store.now()
        with Session(self.store.engine) as s:
            u = s.get(User, username)
            stored = u.password_hash if u is not None else DUMMY
            right = verify(stored, password)
            if u is None:
                return None
            locked = u.locked_until is not None and u.locked_until > now
            if not right:
                s.close()
                self._wrong(username, now)
                return None
            if u.disabled or locked or u.removed_at is not None:
                return None
            rehash = hasher.check_needs_rehash(stored)
            enrolled = u.totp_secret is not None
            by_sms = not enrolled and self._needs_second(u.role) and self.sms is not None and self.sms.available()
        mobile = self._mobile(username) if by_sms else None
        if mobile and not code:
            return self._send_code(username, mobile, now)
        if enrolled and not code:
            return "code"
        token = SESSION_PREFIX + secrets.token_urlsafe(32)
        expires = now + timedelta(seconds=self.policy.session_max)
        with self.store.transaction() as s:
            u = s.get(User, username, with_for_update=True)
            if u is None or u.disabled:
                return None
            if mobile:
                wrong_code = not sms_ok(u, code or "", now)
            elif enrolled:
                wrong_code = not (totp_ok(u, code or "", now) or recovery_ok(s, u, code or "", now))
            else:
                wrong_code = False
            if not wrong_code:
                if rehash:
                    u.password_hash = hasher.hash(password)
                u.failed_logins, u.locks, u.locked_until = 0, 0, None
                limited = self._limit(u, now, second=bool(mobile))
                s.add(UserSession(token_hash=token_hash(token), username=username, created_at=now, expires_at=expires,
                                  last_seen=now, limited=limited))
                s.execute(delete(UserSession).where(UserSession.username == username, UserSession.expires_at < now))
                person = person_of(u)
        if wrong_code:
            self._wrong(username, now)
            return "wrong_code"
        return Login(token, person, None, expires, limited)

    def _needs_second(self, role: str) -> bool:
        return role in self.policy.two_factor or role in ADMINS

    def _mobile(self, username: str) -> str | None:
        from hub.store.models import Contact

        with Session(self.store.engine) as s:
            c = s.get(Contact, username)
            return c.mobile if c is not None and c.mobile else None

    def _send_code(self, username: str, mobile: str, now: datetime) -> str:
        """A new code by SMS (at most one a minute: a code still fresh is not sent again); "sms"."""
        code = f"{secrets.randbelow(10 ** 6):06d}"
        with self.store.transaction() as s:
            u = s.get(User, username, with_for_update=True)
            if u is None:
                return "sms"
            if u.sms_sent_at is not None and (now - u.sms_sent_at).total_seconds() < SMS_RESEND_S:
                return "sms"
            u.sms_code, u.sms_sent_at, u.sms_tries = sms_hash(code), now, 0
        if self.sms is None or not self.sms(mobile, code):
            logger.warning("a sign-in code for %s could not be sent by SMS", username)
        return "sms"

    def _limit(self, u: User, now: datetime, second: bool = False) -> str | None:
        """What a new session of this person must put right before anything else: enrol a second factor (unless
        an SMS code was the `second` one), or change an expired password."""
        if self._needs_second(u.role) and u.totp_secret is None and not second:
            return "two_factor"
        since = u.password_changed_at or u.created_at
        if self.policy.password_max_age is not None and (now - since).total_seconds() > self.policy.password_max_age:
            return "password"
        return None

    def key_login(self, key: str, client: str) -> Login | None:
        """The board signed in with a key (a wall display's, an operator's): a session like a person's, held
        in the same cookie, so the key itself stays out of the page. Edge keys do not sign in, and neither do
        administrator keys: they are for machines (bound to `sources`), and a person administering signs in
        with a password and a second factor (等保: two factors for administrators)."""
        k = next((k for k in self.keys() if k.matches(key)), None)
        if k is None or k.role in ("edge", "admin") or not k.allows(client):
            return None
        now = self.store.now()
        token = SESSION_PREFIX + secrets.token_urlsafe(32)
        expires = now + timedelta(seconds=self.policy.session_max)
        with self.store.transaction() as s:
            s.add(UserSession(token_hash=token_hash(token), username=None, key_name=k.name, created_at=now,
                              expires_at=expires, last_seen=now))
            s.execute(delete(UserSession).where(UserSession.key_name == k.name, UserSession.expires_at < now))
        return Login(token, None, k, expires, None)

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
                    signed = Signed(person_of(u), None, row.limited)
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
